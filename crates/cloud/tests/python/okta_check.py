#!/usr/bin/env python3
"""Reads the Okta peer with Okta's own SDK (the `okta` package, its client and models generated
from Okta's published management API description), as an independent party: every user through
the SDK's own `Link` parsing (`PaginationHelper.extract_next_cursor`, then `after`) with a small page, each user's factors, the
users with administrator roles, the password policies and the sign-on and authentication
policies' rules, and the same with an expired token, which must fail. Prints one JSON object:
`users` (login, status, factor types), `pages`, `expired_error`, `admins`, `password_policies`
and `allowing_rules`.

Usage: okta_check.py ORG_URL TOKEN EXPIRED_TOKEN (the peer's CA in SSL_CERT_FILE)."""

import asyncio
import json
import sys

from okta.client import Client
from okta.pagination import PaginationHelper


def plain(value):
    """An SDK enum's wire value, or the string the SDK kept."""
    return getattr(value, "value", value)


def client(org_url, token):
    okta = Client({"orgUrl": org_url, "token": token, "authorizationMode": "SSWS",
                   "rateLimit": {"maxRetries": 0}})
    # okta 3.4.6's generated ApiClient writes `authorization_mode + access_token` ("SSWS00ab…",
    # no space) over the request executor's correct `SSWS 00ab…`; Okta documents
    # `Authorization: SSWS {token}`, which the peer insists on, so the mode gets its space.
    okta.configuration.authorization_mode = "SSWS "
    return okta


async def main(org_url, token, expired):
    okta = client(org_url, token)
    users, pages, after = [], 0, None
    while True:
        page, resp, err = await okta.list_users(limit=5, after=after)
        if err:
            raise SystemExit(f"list_users: {err}")
        users += page
        pages += 1
        after = PaginationHelper.extract_next_cursor(resp.headers)
        if after is None:
            break
    out = []
    for user in users:
        factors, _, err = await okta.list_factors(user.id)
        if err:
            raise SystemExit(f"list_factors {user.id}: {err}")
        out.append({"login": user.profile.login, "status": plain(user.status),
                    "factors": [plain(getattr(f, "actual_instance", f).factor_type)
                                for f in factors]})
    _, _, err = await client(org_url, expired).list_users(limit=5)
    posture = await policies_and_admins(okta, {u.id: u.profile.login for u in users})
    print(json.dumps({"users": out, "pages": pages, "expired_error": str(err), **posture}))


def inner(value):
    """A oneOf wrapper's actual model, or the model itself."""
    return getattr(value, "actual_instance", None) or value


async def policies_and_admins(okta, logins):
    """The administrators (RoleAssignedUsers), the password policies and the allowing sign-on
    rules, each through the SDK's typed models."""
    assignees, _, err = await okta.list_users_with_role_assignments(limit=100)
    if err:
        raise SystemExit(f"list_users_with_role_assignments: {err}")
    admins = sorted(logins[a.id] for a in assignees.value)
    passwords, _, err = await okta.list_policies(type="PASSWORD")
    if err:
        raise SystemExit(f"list_policies PASSWORD: {err}")
    password = []
    for policy in map(inner, passwords):
        rules = policy.settings.password
        password.append({"name": policy.name, "status": plain(policy.status),
                         "min_length": rules.complexity.min_length,
                         "history": rules.age.history_count,
                         "lockout": rules.lockout.max_attempts})
    allowing = []
    for kind in ("OKTA_SIGN_ON", "ACCESS_POLICY"):
        policies, _, err = await okta.list_policies(type=kind)
        if err:
            raise SystemExit(f"list_policies {kind}: {err}")
        for policy in map(inner, policies):
            rules, _, err = await okta.list_policy_rules(policy.id)
            if err:
                raise SystemExit(f"list_policy_rules {policy.id}: {err}")
            for rule in map(inner, rules):
                if plain(rule.status) != "ACTIVE":
                    continue
                if kind == "OKTA_SIGN_ON":
                    signon = rule.actions.signon
                    access = plain(signon.access)
                    mfa = bool(signon.require_factor) or plain(signon.primary_factor) == "PASSWORD_IDP_ANY_FACTOR"
                else:
                    app = rule.actions.app_sign_on
                    access = plain(app.access)
                    mfa = plain(inner(app.verification_method).factor_mode) == "2FA"
                if access == "ALLOW":
                    allowing.append({"rule": f"{policy.name} / {rule.name}", "mfa": mfa})
    return {"admins": admins, "password_policies": password, "allowing_rules": allowing}


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))

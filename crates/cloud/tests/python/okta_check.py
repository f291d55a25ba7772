#!/usr/bin/env python3
"""Reads the Okta peer with Okta's own SDK (the `okta` package, its client and models generated
from Okta's published management API description), as an independent party: every user through
the SDK's own `Link` parsing (`PaginationHelper.extract_next_cursor`, then `after`) with a small page, each user's factors, and the
same with an expired token, which must fail. Prints one JSON object: `users` (login, status,
factor types), `pages` and `expired_error`.

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
    print(json.dumps({"users": out, "pages": pages, "expired_error": str(err)}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))

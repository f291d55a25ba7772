#!/usr/bin/env python3
"""A local Okta Management API peer for the cloud tests, over HTTPS on loopback.

Built from Okta's published API description (the management OpenAPI document the `okta` SDK's
models are generated from): the User object (`id`, `status` ACTIVE/STAGED/PROVISIONED/
SUSPENDED/DEPROVISIONED/LOCKED_OUT/PASSWORD_EXPIRED/RECOVERY, `created`, `activated`,
`statusChanged`, `lastLogin`, `lastUpdated`, `passwordChanged`, `type`, `profile`,
`credentials`, `_links`), the UserFactor object (`id`, `factorType` such as push, sms,
token:software:totp, webauthn, signed_nonce for Okta Verify FastPass, `provider`, `vendorName`,
`status`), cursor paging (`limit` at most 200, `after`, and `Link: <…>; rel="next"` headers),
the error envelope (`errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`:
E0000011 invalid token, E0000006 no permission, E0000047 rate limit) and the rate-limit
headers (`X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset` in UTC epoch
seconds), with Okta's published default limits for /api/v1/users (600 requests a minute) and
/api/v1/users/{id}/factors (the /api/v1/users/{id} bucket, 2,000 a minute).

  POST /oauth2/v1/token                client_credentials with private_key_jwt: the client
                                       assertion verified with PyJWT against --client-cert's key
                                       (RS256, iss = sub = --client-id, aud this endpoint, at most
                                       an hour, jti never reused); each requested scope must be
                                       granted (--granted-scopes) else 400 invalid_scope; the
                                       access token (Bearer) carries the scopes
  GET /api/v1/users                    limit (1..200, default 200), after
  GET /api/v1/users/{id}/factors       the user's enrolled factors
  GET /api/v1/iam/assignees/users      the users with an administrator role, RoleAssignedUsers
                                       (`{"value": [{id, orn, _links}], "_links": {"next"}}`)
  GET /api/v1/policies?type=T          PASSWORD, OKTA_SIGN_ON or ACCESS_POLICY policies (Policy
                                       objects with their type's settings)
  GET /api/v1/policies/{id}/rules      the policy's rules (OKTA_SIGN_ON: actions.signon with
                                       access, requireFactor and primaryFactor; ACCESS_POLICY: actions.appSignOn
                                       with access and verificationMethod.factorMode)

Authorization: `SSWS <token>`; --token is valid, --expired-token answers 401 E0000011; or
`Bearer <access token>` from the token endpoint, which must carry the resource's scope (403
E0000006 with WWW-Authenticate insufficient_scope otherwise).
Scenarios (flags): --profile small (a practice of 12 users) or large (--users generated);
--deny RESOURCE (403 E0000006 with a WWW-Authenticate insufficient_scope naming the scope);
--throttle-first (the first call of each resource 429 with X-Rate-Limit-Reset one second on);
--quota N (requests a minute on /api/v1/users; default 600); --foreign-next-link (the first
page's next link names another host); --hostile (a user's login and a sign-on rule's name hold
markup, quotes and a terminal escape). RESOURCE is `users`, `factors`, `roles` or `policies`.
Buckets: /api/v1/policies and /api/v1/iam 1,200 requests a minute (the peer's figure for
endpoints without a published limit of their own).

Usage: fakeokta.py --port 0 --cert server.pem --key server.key --token T [...] --log FILE;
prints "READY <port>".
"""

import argparse
import datetime as dt
import json
import random
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography import x509
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SCOPES = {"users": "okta.users.read", "factors": "okta.users.read", "roles": "okta.roles.read",
          "policies": "okta.policies.read"}
HOSTILE_LOGIN = 'mal<script>alert("x")</script>\u001b[31m@smithfamilypractice.com'
HOSTILE_RULE = 'Front desk <img src=x onerror=alert(1)> & "kiosk"\u001b]0;pwned\u0007'


def policies(now, hostile=False):
    """The practice's policies: a password policy that meets the expectation (an inactive weak
    one beside it), a global session policy with one rule allowing a password alone, and an
    authentication policy demanding two factors."""
    stamp = iso(now - dt.timedelta(days=200))

    def policy(pid, kind, name, status, settings=None, priority=1):
        out = {"id": pid, "type": kind, "name": name, "status": status, "priority": priority,
               "system": name == "Default Policy", "description": None, "created": stamp,
               "lastUpdated": stamp,
               # Authentication policies carry no conditions (their rules do).
               "conditions": None if kind == "ACCESS_POLICY" else {"people": {"groups": {"include": ["00g1everyone"]}}},
               "_links": {"self": {"href": f"/api/v1/policies/{pid}"}}}
        if settings is not None:
            out["settings"] = settings
        return out

    def password(min_length, lower, upper, number, symbol, history, attempts):
        return {"password": {
            "complexity": {"minLength": min_length, "minLowerCase": lower, "minUpperCase": upper,
                           "minNumber": number, "minSymbol": symbol, "excludeUsername": True,
                           "excludeAttributes": [], "dictionary": {"common": {"exclude": True}}},
            "age": {"maxAgeDays": 0, "expireWarnDays": 0, "minAgeMinutes": 0, "historyCount": history},
            "lockout": {"maxAttempts": attempts, "autoUnlockMinutes": 0, "showLockoutFailures": True,
                        "userLockoutNotificationChannels": ["EMAIL"]}},
            "recovery": {"factors": {"okta_email": {"status": "ACTIVE"}}},
            "delegation": {"options": {"skipUnlock": False}}}

    def rule(rid, name, status, actions, priority=1):
        kind = "SIGN_ON" if "signon" in actions else "ACCESS_POLICY"
        return {"id": rid, "name": name, "status": status, "priority": priority, "system": False,
                "type": kind, "created": stamp, "lastUpdated": stamp, "conditions": None,
                "actions": actions}

    def signon(access, require, primary="PASSWORD_IDP"):
        return {"signon": {"access": access, "requireFactor": require, "factorPromptMode": "ALWAYS" if require else None,
                           "rememberDeviceByDefault": False, "primaryFactor": primary,
                           "session": {"maxSessionIdleMinutes": 120, "maxSessionLifetimeMinutes": 0,
                                       "usePersistentCookie": False}}}

    def app(access, mode):
        return {"appSignOn": {"access": access, "verificationMethod": {
            "type": "ASSURANCE", "factorMode": mode, "reauthenticateIn": "PT2H", "constraints": []}}}

    listing = {
        "PASSWORD": [
            policy("00p1pwddefault", "PASSWORD", "Default Policy", "ACTIVE", password(12, 1, 1, 1, 0, 4, 6), 2),
            policy("00p2pwdlegacy", "PASSWORD", "Legacy vendors", "INACTIVE", password(6, 0, 0, 0, 0, 0, 0), 1),
        ],
        "OKTA_SIGN_ON": [
            policy("00p3signon", "OKTA_SIGN_ON", "Default Policy", "ACTIVE"),
        ],
        "ACCESS_POLICY": [
            policy("rst1anytwo", "ACCESS_POLICY", "Any two factors", "ACTIVE"),
        ],
    }
    rules = {
        "00p3signon": [
            rule("0pr1office", HOSTILE_RULE if hostile else "Office network", "ACTIVE", signon("ALLOW", False), 1),
            rule("0pr2blocked", "Blocked countries", "ACTIVE", signon("DENY", False), 2),
            rule("0pr3old", "Old kiosk", "INACTIVE", signon("ALLOW", False), 3),
            rule("0pr4default", "Default Rule", "ACTIVE", signon("ALLOW", False, "PASSWORD_IDP_ANY_FACTOR"), 99),
        ],
        "rst1anytwo": [
            rule("rul1catchall", "Catch-all Rule", "ACTIVE", app("ALLOW", "2FA"), 99),
        ],
    }
    return listing, rules


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z") if when else None


def user(idx, login, now, status="ACTIVE", last_login_days=1, created_days=400):
    uid = "00u%017d" % idx
    created = now - dt.timedelta(days=created_days)
    return {
        "id": uid,
        "status": status,
        "created": iso(created),
        "activated": iso(created) if status != "STAGED" else None,
        "statusChanged": iso(created),
        "lastLogin": iso(now - dt.timedelta(days=last_login_days)) if last_login_days is not None else None,
        "lastUpdated": iso(now - dt.timedelta(days=3)),
        "passwordChanged": iso(now - dt.timedelta(days=30)),
        "type": {"id": "oty1a2b3c4d5e6f7g8h9"},
        "profile": {"firstName": login.split(".")[0].title(), "lastName": login.split(".")[-1].title(),
                    "login": f"{login}@smithfamilypractice.com", "email": f"{login}@smithfamilypractice.com",
                    "mobilePhone": None, "secondEmail": None},
        "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"/api/v1/users/{uid}"}},
    }


def factor(kind, idx, now):
    types = {"push": ("OKTA", "OKTA"), "signed_nonce": ("OKTA", "OKTA"), "webauthn": ("FIDO", "FIDO"),
             "sms": ("OKTA", "OKTA"), "token:software:totp": ("GOOGLE", "GOOGLE")}
    provider, vendor = types[kind]
    return {"id": "fac%017d" % idx, "factorType": kind, "provider": provider, "vendorName": vendor,
            "status": "ACTIVE", "created": iso(now - dt.timedelta(days=100)),
            "lastUpdated": iso(now - dt.timedelta(days=100)), "profile": {}}


def practice(now, hostile=False):
    """12 users: two active without MFA, one unused for 200 days; administrators ann (WebAuthn),
    carla (FastPass) and bob (push only)."""
    rows = [
        ("ann.smith", ["webauthn", "push"], "ACTIVE", 0),
        ("bob.jones", ["push"], "ACTIVE", 2),
        ("carla.diaz", ["signed_nonce"], "ACTIVE", 1),
        ("dan.wu", ["push"], "ACTIVE", 3),
        ("eve.khan", ["sms"], "ACTIVE", 1),
        ("frank.ode", ["push"], "ACTIVE", 200),
        ("gina.rossi", [], "ACTIVE", 1),
        ("hal.berg", ["token:software:totp"], "ACTIVE", 4),
        ("ivy.chen", [], "ACTIVE", 0),
        ("jon.park", ["push"], "LOCKED_OUT", 6),
        ("kim.lee", [], "DEPROVISIONED", 300),
        ("lou.grant", [], "STAGED", None),
    ] + ([(HOSTILE_LOGIN.split("@")[0], [], "ACTIVE", 1)] if hostile else [])
    users, factors, n = [], {}, 0
    for idx, (login, kinds, status, last) in enumerate(rows, start=1):
        u = user(idx, login, now, status=status, last_login_days=last)
        if login == HOSTILE_LOGIN.split("@")[0]:
            u["profile"]["login"] = u["profile"]["email"] = HOSTILE_LOGIN
        users.append(u)
        factors[u["id"]] = []
        for kind in kinds:
            n += 1
            factors[u["id"]].append(factor(kind, n, now))
    admins = [users[0]["id"], users[1]["id"], users[2]["id"]]
    return users, factors, admins


def large(now, count):
    rng = random.Random(20)
    users, factors = [], {}
    for idx in range(1, count + 1):
        u = user(idx, f"user{idx:05d}.staff", now, last_login_days=rng.randint(0, 60))
        users.append(u)
        factors[u["id"]] = [factor("webauthn" if idx <= 5 else "push", idx, now)]
    return users, factors, [users[i]["id"] for i in range(5)]


class Window:
    """Requests a minute per bucket, as Okta counts them."""

    def __init__(self, limit):
        self.limit, self.start, self.count = limit, int(time.time()), 0

    def take(self):
        now = int(time.time())
        with LOCK:
            if now - self.start >= 60:
                self.start, self.count = now, 0
            self.count += 1
            return self.count <= self.limit, self.limit - min(self.count, self.limit), self.start + 60


class Okta(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"

    def log_message(self, *args):
        pass

    def record(self, status):
        with LOCK, open(self.server.opts.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "status": status}) + "\n")

    def send(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or []):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.record(status)

    def error(self, status, code, summary, headers=None):
        self.send(status, {"errorCode": code, "errorSummary": summary, "errorLink": code,
                           "errorId": "oae" + secrets.token_hex(8), "errorCauses": []}, headers)

    def do_POST(self):
        srv, opts = self.server, self.server.opts
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        one = lambda key: (form.get(key) or [""])[0]
        if urllib.parse.urlsplit(self.path).path != "/oauth2/v1/token":
            return self.error(404, "E0000022", "The endpoint does not support the provided HTTP method")
        oauth = lambda code, text: self.send(400 if code != "invalid_client" else 401,
                                             {"error": code, "error_description": text})
        if one("grant_type") != "client_credentials":
            return oauth("unsupported_grant_type", "The authorization grant type is not supported.")
        if one("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return oauth("invalid_client", "Client authentication failed.")
        audience = f"https://{self.headers.get('Host')}/oauth2/v1/token"
        try:
            claims = jwt.decode(one("client_assertion"), srv.client_key, algorithms=["RS256"],
                                audience=audience, issuer=opts.client_id,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as err:
            return oauth("invalid_client", f"The client_assertion signature or claims are invalid: {err}")
        with LOCK:
            reused = claims["jti"] in srv.jtis
            srv.jtis.add(claims["jti"])
            with open(opts.log + ".assertions", "a", encoding="utf-8") as out:
                out.write(one("client_assertion") + "\n")
        if claims["sub"] != opts.client_id or claims["exp"] - claims["iat"] > 3600 or reused:
            return oauth("invalid_client", "The client_assertion token is invalid.")
        scopes = one("scope").split()
        with LOCK, open(opts.log + ".scopes", "a", encoding="utf-8") as out:
            out.write(" ".join(scopes) + "\n")
        missing = [s for s in scopes if s not in srv.granted]
        if not scopes or missing:
            return oauth("invalid_scope", "The following scopes are not allowed: " + " ".join(missing))
        token = secrets.token_urlsafe(32)
        with LOCK:
            srv.access[token] = set(scopes)
        return self.send(200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token,
                               "scope": " ".join(scopes)})

    def do_GET(self):
        srv, opts = self.server, self.server.opts
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        auth = self.headers.get("Authorization", "")
        scopes = None
        if auth.startswith("Bearer ") and auth[7:] in srv.access:
            scopes = srv.access[auth[7:]]
        elif auth == f"SSWS {opts.expired_token}" or auth != f"SSWS {opts.token}":
            return self.error(401, "E0000011", "Invalid token provided")
        segments = parts.path.strip("/").split("/")
        if segments[:2] != ["api", "v1"]:
            return self.error(404, "E0000022", "The endpoint does not support the provided HTTP method")
        if segments[2:] == ["iam", "assignees", "users"]:
            resource = "roles"
        elif segments[2:3] == ["policies"] and (len(segments) == 3 or (len(segments) == 5 and segments[4] == "rules")):
            resource = "policies"
        elif segments[2:3] != ["users"]:
            resource = None
        else:
            resource = "users" if len(segments) == 3 else "factors" if len(segments) == 5 and segments[4] == "factors" else None
        if resource is None:
            return self.error(404, "E0000007", f"Not found: Resource not found: {parts.path} (Service)")
        window = srv.windows[resource]
        allowed, remaining, reset = window.take()
        rl = [("X-Rate-Limit-Limit", str(window.limit)), ("X-Rate-Limit-Remaining", str(remaining)),
              ("X-Rate-Limit-Reset", str(reset))]
        if resource in opts.deny or (scopes is not None and SCOPES[resource] not in scopes):
            scope = SCOPES[resource]
            return self.error(403, "E0000006", "You do not have permission to perform the requested action",
                              [("WWW-Authenticate", f'Bearer authorization_uri="http://{self.headers.get("Host")}/oauth2/v1/authorize", '
                                f'realm="IdpMyAccountAPI", scope="{scope}", error="insufficient_scope", '
                                'error_description="The access token provided does not contain the required scopes."')])
        with LOCK:
            first = resource not in srv.first_seen
            srv.first_seen.add(resource)
        if (opts.throttle_first and first) or not allowed:
            reset = int(time.time()) + 1 if allowed else reset
            return self.error(429, "E0000047", "API call exceeded rate limit due to too many requests.",
                              [("X-Rate-Limit-Limit", str(window.limit)), ("X-Rate-Limit-Remaining", "0"),
                               ("X-Rate-Limit-Reset", str(reset))])
        if resource == "roles":
            value = [{"id": uid, "orn": f"orn:okta:directory:00o1clinic:users:{uid}",
                      "_links": {"user": {"href": f"https://{self.headers.get('Host')}/api/v1/users/{uid}"}}}
                     for uid in srv.admins]
            return self.send(200, {"value": value, "_links": {}}, rl)
        if resource == "policies":
            if len(segments) == 5:
                found = srv.rules.get(segments[3])
                if found is None:
                    return self.error(404, "E0000007", f"Not found: Resource not found: {segments[3]} (Policy)")
                return self.send(200, found, rl)
            kind = (query.get("type") or [""])[0]
            if kind not in srv.policies:
                return self.error(400, "E0000001", "Api validation failed: type")
            return self.send(200, srv.policies[kind], rl)
        if resource == "factors":
            found = srv.factors.get(segments[3])
            if found is None:
                return self.error(404, "E0000007", f"Not found: Resource not found: {segments[3]} (User)")
            return self.send(200, found, rl)
        try:
            limit = int((query.get("limit") or ["200"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 200:
            return self.error(400, "E0000001", "Api validation failed: limit")
        after = (query.get("after") or [None])[0]
        start = 0
        if after is not None:
            index = srv.index.get(after)
            if index is None:
                return self.error(400, "E0000031", "Invalid search criteria.")
            start = index + 1
        page = srv.users[start:start + limit]
        host = self.headers.get("Host")
        base = f"https://{host}/api/v1/users"
        links = [("Link", f'<{base}?limit={limit}>; rel="self"')]
        if start + limit < len(srv.users):
            cursor = page[-1]["id"]
            target = base if not (opts.foreign_next_link and after is None) else "https://evil.example/api/v1/users"
            links.append(("Link", f'<{target}?after={cursor}&limit={limit}>; rel="next"'))
        return self.send(200, page, rl + links)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--expired-token", default="00expired")
    parser.add_argument("--profile", choices=["small", "large"], default="small")
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--deny", action="append", default=[])
    parser.add_argument("--throttle-first", action="store_true")
    parser.add_argument("--quota", type=int, default=600)
    parser.add_argument("--foreign-next-link", action="store_true")
    parser.add_argument("--hostile", action="store_true")
    parser.add_argument("--client-id", default="0oa1b2c3d4e5f6g7h8i9")
    parser.add_argument("--client-cert", help="PEM certificate of the service app's key")
    parser.add_argument("--granted-scopes", default="okta.users.read,okta.roles.read,okta.policies.read")
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Okta)
    server.daemon_threads = True
    server.opts = opts
    server.users, server.factors, server.admins = (practice(now, opts.hostile) if opts.profile == "small"
                                                   else large(now, opts.users))
    server.policies, server.rules = policies(now, opts.hostile)
    server.index = {u["id"]: i for i, u in enumerate(server.users)}
    server.windows = {"users": Window(opts.quota), "factors": Window(2000), "roles": Window(1200),
                      "policies": Window(1200)}
    server.first_seen = set()
    server.access, server.jtis = {}, set()
    server.granted = {s for s in opts.granted_scopes.split(",") if s}
    server.client_key = None
    if opts.client_cert:
        with open(opts.client_cert, "rb") as pem:
            server.client_key = x509.load_pem_x509_certificate(pem.read()).public_key()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(opts.cert, opts.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())

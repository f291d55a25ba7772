#!/usr/bin/env python3
"""A local Google OAuth 2.0 token endpoint and Admin SDK Directory API peer for the cloud tests,
over HTTPS on loopback.

Built from Google's published descriptions: the Admin SDK Directory API v1 discovery document
(resource paths, parameters with their maximums, the User, MobileDevice, Role and
RoleAssignment schemas and their list envelopes: `kind`, `etag`, `nextPageToken`), "Using
OAuth 2.0 for Server to Server Applications" (the service account's RS256 JWT with `iss`,
`sub`, `scope`, `aud`, `iat`, `exp`, exchanged with grant_type
urn:ietf:params:oauth:grant-type:jwt-bearer; `invalid_grant` and `unauthorized_client`
answers), the JSON error envelope of Google APIs (`error.code`, `message`, `errors[].reason`,
`status`) and the Directory API's limits (2,400 queries per minute per user; over it 429
RESOURCE_EXHAUSTED with reason rateLimitExceeded and no Retry-After).

  POST /token                                          the JWT bearer grant; the JWT must be
                                                       signed by --sa-cert's key with kid
                                                       --sa-key-id, iss --sa-email, aud
                                                       https://oauth2.googleapis.com/token
                                                       (Google's one audience), at most an hour, sub an active
                                                       user; each scope must be authorized for
                                                       domain-wide delegation (--scopes)
  GET  /admin/directory/v1/users                       customer, maxResults (1..500), pageToken
  GET  /admin/directory/v1/customer/{c}/devices/mobile maxResults (1..100), projection, pageToken
  GET  /admin/directory/v1/customer/{c}/roles          maxResults (1..100), pageToken
  GET  /admin/directory/v1/customer/{c}/roleassignments  roleId, maxResults (1..200), pageToken

Each resource needs a token carrying one of the scopes the discovery document lists for it (403
ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise); an expired or unknown token is 401 UNAUTHENTICATED.
Page tokens are opaque; an unknown one is 400 invalid.

Scenarios (flags): --profile small (a practice of 18 users and 12 phones with known failures)
or large (--users, --devices generated, every check passing); --scopes (those authorized under
domain-wide delegation); --deny RESOURCE (403 forbidden: the acting admin lacks the privilege);
--throttle-all (every API call 429); --throttle-first (the first call of each resource 429);
--unavailable-first (the first call of each resource 503 with Retry-After: 1);
--malformed RESOURCE (200 with a cut JSON body); --hostile-page-token RESOURCE (the first page's
nextPageToken holds URL metacharacters); --token-lifetime SECS; --quota N (queries per minute
per user, default 2400); --assertions FILE (every JWT received, one a line, for the cross-check).
RESOURCE is `users`, `devices/mobile`, `roles` or `roleassignments`.

Usage: fakegoogle.py --port 0 --cert server.pem --key server.key --sa-cert sa.crt
       --sa-email E --sa-key-id K --customer-id C [...] --log FILE; prints "READY <port>".
"""

import argparse
import base64
import datetime as dt
import hashlib
import json
import random
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SCOPE = "https://www.googleapis.com/auth/"
USER_SCOPES = [SCOPE + "admin.directory.user", SCOPE + "admin.directory.user.readonly",
               SCOPE + "cloud-platform"]
DEVICE_SCOPES = [SCOPE + "admin.directory.device.mobile", SCOPE + "admin.directory.device.mobile.action",
                 SCOPE + "admin.directory.device.mobile.readonly"]
ROLE_SCOPES = [SCOPE + "admin.directory.rolemanagement", SCOPE + "admin.directory.rolemanagement.readonly"]
READONLY = [SCOPE + "admin.directory.user.readonly", SCOPE + "admin.directory.device.mobile.readonly",
            SCOPE + "admin.directory.rolemanagement.readonly"]
SUPER_ADMIN_ROLE = "9170730350149633"
AUDIENCE = "https://oauth2.googleapis.com/token"
LOCK = threading.Lock()


def iso(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def etag():
    return '"' + base64.urlsafe_b64encode(secrets.token_bytes(27)).decode() + '"'


# ---------------------------------------------------------------- data


def user(customer, domain, idx, name, now, *, admin=False, delegated=False, suspended=False, archived=False,
         enrolled=True, enforced=True, last_login_days=None, created_days=700, ou="/Clinical"):
    given, family = name.split(".")
    last = iso(now - dt.timedelta(days=last_login_days)) if last_login_days is not None else "1970-01-01T00:00:00.000Z"
    record = {
        "kind": "admin#directory#user",
        "id": str(100000000000000000000 + idx),
        "etag": etag(),
        "primaryEmail": f"{name}@{domain}",
        "name": {"givenName": given.title(), "familyName": family.title(),
                 "fullName": f"{given.title()} {family.title()}"},
        "isAdmin": admin,
        "isDelegatedAdmin": delegated,
        "lastLoginTime": last,
        "creationTime": iso(now - dt.timedelta(days=created_days)),
        "agreedToTerms": last_login_days is not None,
        "suspended": suspended,
        "archived": archived,
        "changePasswordAtNextLogin": False,
        "ipWhitelisted": False,
        "emails": [{"address": f"{name}@{domain}", "primary": True}],
        "languages": [{"languageCode": "en", "preference": "preferred"}],
        "nonEditableAliases": [f"{name}@{domain.split('.')[0]}.test-google-a.com"],
        "customerId": customer,
        "orgUnitPath": ou,
        "isMailboxSetup": True,
        "isEnrolledIn2Sv": enrolled,
        "isEnforcedIn2Sv": enforced,
        "includeInGlobalAddressList": True,
        "thumbnailPhotoUrl": f"https://www.google.com/s2/photos/private/{uuid.uuid4().hex}",
    }
    if suspended:
        record["suspensionReason"] = "ADMIN"
    return record


def device(idx, owner, now, *, os_name, model, encryption="Encrypted", compromised="No compromise detected",
           status="APPROVED", kind="ANDROID"):
    record = {
        "kind": "admin#directory#mobiledevice",
        "etag": etag(),
        "resourceId": "AFiQxQ8" + hashlib.sha256(f"dev{idx}".encode()).hexdigest()[:40],
        "deviceId": hashlib.sha1(f"id{idx}".encode()).hexdigest()[:16],
        "name": [owner["name"]["fullName"]],
        "email": [owner["primaryEmail"]],
        "model": model,
        "os": os_name,
        "type": kind,
        "status": status,
        "hardwareId": f"{idx:012d}",
        "firstSync": iso(now - dt.timedelta(days=300 + idx)),
        "lastSync": iso(now - dt.timedelta(hours=2 + idx)),
        "userAgent": "Google Apps Device Policy 20.11.02",
        "managedAccountIsOnOwnerProfile": True,
        "devicePasswordStatus": "On",
        "privilege": "Device Owner",
    }
    if kind == "ANDROID":
        record.update({"encryptionStatus": encryption, "deviceCompromisedStatus": compromised,
                       "securityPatchLevel": "1730419200000", "brand": model.split()[0],
                       "manufacturer": model.split()[0], "releaseVersion": os_name.split()[-1],
                       "developerOptionsStatus": False, "unknownSourcesStatus": False, "adbStatus": False,
                       "supportsWorkProfile": True})
    else:
        record.update({"encryptionStatus": encryption, "deviceCompromisedStatus": compromised})
    return record


def practice(customer, now):
    """Smith Family Practice: 18 users, 12 phones, 2 super admins, with known failures."""
    domain = "smithfamilypractice.com"
    users = [
        user(customer, domain, 1, "ann.smith", now, admin=True, last_login_days=0, ou="/"),
        user(customer, domain, 2, "bob.jones", now, admin=True, last_login_days=2, ou="/"),
        user(customer, domain, 3, "carla.diaz", now, delegated=True, last_login_days=1),
        user(customer, domain, 4, "dan.wu", now, last_login_days=3),
        user(customer, domain, 5, "eve.khan", now, last_login_days=1),
        # Left in the summer; still active.
        user(customer, domain, 6, "frank.ode", now, last_login_days=200),
        # The front desk's unit does not enforce 2-Step Verification.
        user(customer, domain, 7, "gina.rossi", now, enrolled=False, enforced=False, last_login_days=1,
             ou="/Front desk"),
        user(customer, domain, 8, "hal.berg", now, enforced=False, last_login_days=4, ou="/Front desk"),
        user(customer, domain, 9, "ivy.chen", now, enrolled=False, enforced=False, last_login_days=0,
             ou="/Front desk"),
        user(customer, domain, 10, "jon.park", now, last_login_days=6),
        user(customer, domain, 11, "kim.lee", now, last_login_days=2),
        user(customer, domain, 12, "lou.grant", now, last_login_days=9),
        user(customer, domain, 13, "mia.wong", now, last_login_days=1),
        # Created for a locum who never started.
        user(customer, domain, 14, "ned.stark", now, created_days=400),
        user(customer, domain, 15, "ola.nord", now, last_login_days=5),
        # The former office manager: suspended, still a delegated admin.
        user(customer, domain, 16, "pat.kerr", now, delegated=True, suspended=True, last_login_days=120),
        user(customer, domain, 17, "quin.fox", now, archived=True, enforced=False, last_login_days=400),
        user(customer, domain, 18, "rae.lund", now, last_login_days=12),
    ]
    phones = [
        ("Google Pixel 8", "Android 15", "ANDROID"), ("Samsung Galaxy S23", "Android 14", "ANDROID"),
        ("iPhone 15", "iOS 18.1", "IOS_SYNC"), ("iPad Air", "iOS 17.6", "IOS_SYNC"),
    ]
    devices = []
    for idx in range(12):
        model, os_name, kind = phones[idx % 4]
        owner = users[idx % 15]
        encryption = "Unencrypted" if idx == 5 else "Encrypted"
        devices.append(device(idx, owner, now, os_name=os_name, model=model, encryption=encryption, kind=kind))
    # A phone wiped after it was lost: no longer counts.
    devices.append(device(12, users[3], now, os_name="Android 13", model="Samsung Galaxy A54",
                          encryption="Unencrypted", status="WIPED"))
    return build(customer, users, devices)


def large(customer, now, n_users, n_devices):
    """A generated account: every user enforced and enrolled and recently active; the first is
    ann.smith, the super admin the tests act as."""
    rng = random.Random(20)
    domain = "smithfamilypractice.com"
    users = [user(customer, domain, idx + 1, "ann.smith" if idx == 0 else f"user.u{idx:05d}", now,
                  admin=idx < 3, last_login_days=rng.randint(0, 60), ou="/Staff") for idx in range(n_users)]
    devices = [device(idx, users[idx % max(1, n_users)], now, os_name="Android 15", model="Google Pixel 8")
               for idx in range(n_devices)] if n_users else []
    return build(customer, users, devices)


def build(customer, users, devices):
    roles = [
        {"kind": "admin#directory#role", "etag": etag(), "roleId": SUPER_ADMIN_ROLE, "roleName": "_SEED_ADMIN_ROLE",
         "roleDescription": "Super Admin", "rolePrivileges": [{"privilegeName": "SUPER_ADMIN", "serviceId": "00haapch16h1ysv"}],
         "isSystemRole": True, "isSuperAdminRole": True},
        {"kind": "admin#directory#role", "etag": etag(), "roleId": "9170730350149634", "roleName": "_GROUPS_ADMIN_ROLE",
         "roleDescription": "Groups Administrator", "rolePrivileges": [{"privilegeName": "GROUPS_ALL", "serviceId": "00haapch16h1ysv"}],
         "isSystemRole": True, "isSuperAdminRole": False},
        {"kind": "admin#directory#role", "etag": etag(), "roleId": "9170730350149635", "roleName": "_USER_MANAGEMENT_ADMIN_ROLE",
         "roleDescription": "User Management Administrator",
         "rolePrivileges": [{"privilegeName": "USERS_ALL", "serviceId": "00haapch16h1ysv"}],
         "isSystemRole": True, "isSuperAdminRole": False},
    ]
    assignments = []
    for idx, u in enumerate(users):
        role = SUPER_ADMIN_ROLE if u["isAdmin"] else ("9170730350149635" if u["isDelegatedAdmin"] else None)
        if role:
            assignments.append({"kind": "admin#directory#roleAssignment", "etag": etag(),
                                "roleAssignmentId": str(91707303501500 + idx), "roleId": role,
                                "assignedTo": u["id"], "assigneeType": "user", "scopeType": "CUSTOMER"})
    return {"customer": customer, "users": users, "devices": devices, "roles": roles, "assignments": assignments}


# ---------------------------------------------------------------- throttling


class Window:
    """A fixed window of `limit` queries per `seconds`, one per acting user."""

    def __init__(self, limit, seconds):
        self.limit, self.seconds, self.starts, self.counts = limit, seconds, {}, {}

    def take(self, who):
        now = time.monotonic()
        if now - self.starts.get(who, -1e9) >= self.seconds:
            self.starts[who], self.counts[who] = now, 0
        if self.counts[who] >= self.limit:
            return True
        self.counts[who] += 1
        return False


# ---------------------------------------------------------------- server


class Google(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"

    def log_message(self, *args):
        pass

    def record(self, status):
        with LOCK, open(self.server.opts.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "status": status}) + "\n")

    def send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.record(status)

    def api_error(self, code, status, reason, message, headers=None, domain="global"):
        self.send(code, {"error": {"code": code, "message": message,
                                   "errors": [{"message": message, "domain": domain, "reason": reason}],
                                   "status": status}}, headers)

    # -- OAuth 2.0

    def do_POST(self):
        opts = self.server.opts
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if path != "/token":
            return self.send(404, {"error": "not_found"})
        one = lambda key: (form.get(key) or [""])[0]

        def refuse(status, error, description):
            self.send(status, {"error": error, "error_description": description})

        if one("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse(400, "unsupported_grant_type", "Invalid grant_type: " + one("grant_type"))
        assertion = one("assertion")
        if opts.assertions:
            with LOCK, open(opts.assertions, "a", encoding="utf-8") as out:
                out.write(assertion + "\n")
        parts = assertion.split(".")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, IndexError):
            return refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                          "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("iss") != opts.sa_email:
            return refuse(401, "invalid_client", "The OAuth client was not found.")
        if header.get("alg") != "RS256" or header.get("kid") not in (None, opts.sa_key_id):
            return refuse(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            self.server.sa_cert.public_key().verify(signature, f"{parts[0]}.{parts[1]}".encode(),
                                                    padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse(400, "invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        # Google documents one audience for every token endpoint, its own; google-auth sends it
        # whatever the key's token_uri.
        if claims.get("aud") not in (AUDIENCE, "https://www.googleapis.com/oauth2/v4/token"):
            return refuse(400, "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is {AUDIENCE}")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now < exp and exp - iat <= 3600):
            return refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                          "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        subject = claims.get("sub")
        active = {u["primaryEmail"] for u in self.server.data["users"] if not u["suspended"] and not u["archived"]}
        if subject not in active:
            return refuse(400, "invalid_grant", "Invalid email or User ID")
        scopes = claims.get("scope", "").split()
        if not scopes:
            return refuse(400, "invalid_scope", "Empty or missing scope not allowed.")
        if any(s not in self.server.authorized for s in scopes):
            return refuse(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this "
                          "method, or client not authorized for any of the scopes requested.")
        token = "ya29.c." + secrets.token_urlsafe(96)
        with LOCK:
            self.server.tokens[token] = {"scopes": scopes, "sub": subject, "exp": now + opts.token_lifetime}
        self.send(200, {"access_token": token, "expires_in": opts.token_lifetime, "token_type": "Bearer"})

    # -- Directory API

    def do_GET(self):
        opts = self.server.opts
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        prefix = "/admin/directory/v1/"
        if not path.startswith(prefix):
            return self.api_error(404, "NOT_FOUND", "notFound", "Not Found")
        auth = self.headers.get("Authorization") or ""
        grant = self.server.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None or grant["exp"] <= time.time():
            return self.api_error(401, "UNAUTHENTICATED", "authError",
                                  "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                  "login cookie or other valid authentication credential. See "
                                  "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                                  {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        resource, customer = self.route(path[len(prefix):], query)
        if resource is None:
            return self.api_error(404, "NOT_FOUND", "notFound", "Resource Not Found: " + path[len(prefix):])
        if customer not in ("my_customer", self.server.data["customer"]):
            return self.api_error(400, "INVALID_ARGUMENT", "badRequest", "Bad Request")
        needs = {"users": USER_SCOPES, "devices/mobile": DEVICE_SCOPES, "roles": ROLE_SCOPES,
                 "roleassignments": ROLE_SCOPES}[resource]
        if not any(s in grant["scopes"] for s in needs):
            return self.api_error(403, "PERMISSION_DENIED", "insufficientPermissions",
                                  "Request had insufficient authentication scopes.")
        if resource in opts.deny:
            return self.api_error(403, "PERMISSION_DENIED", "forbidden", "Not Authorized to access this resource/api")
        if self.throttled(resource, grant["sub"]):
            return self.api_error(429, "RESOURCE_EXHAUSTED", "rateLimitExceeded",
                                  "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' "
                                  "of service 'admin.googleapis.com' for consumer 'project_number:418572093264'.")
        if opts.unavailable_first:
            with LOCK:
                first = resource not in self.server.unavailable_seen
                self.server.unavailable_seen.add(resource)
            if first:
                return self.api_error(503, "UNAVAILABLE", "backendError", "The service is currently unavailable.",
                                      {"Retry-After": "1"})
        if resource in opts.malformed:
            return self.send(200, b'{\n  "kind": "admin#directory#users",\n  "etag": "\\"x\\"",\n  "users": [\n    {\n      "id": "1')
        data = self.server.data
        if resource == "users":
            return self.page(resource, query, data["users"], "users", "admin#directory#users", 100, 500)
        if resource == "devices/mobile":
            items = data["devices"]
            if query.get("projection", "BASIC") == "BASIC":
                basic = ("kind", "etag", "resourceId", "deviceId", "name", "email", "model", "os", "type", "status",
                         "lastSync", "firstSync")
                items = [{k: v for k, v in d.items() if k in basic} for d in items]
            return self.page(resource, query, items, "mobiledevices", "admin#directory#mobiledevices", 100, 100)
        if resource == "roles":
            return self.page(resource, query, data["roles"], "items", "admin#directory#roles", 100, 100)
        items = [a for a in data["assignments"] if not query.get("roleId") or a["roleId"] == query["roleId"]]
        return self.page(resource, query, items, "items", "admin#directory#roleAssignments", 100, 200)

    def route(self, rest, query):
        if rest == "users":
            if "customer" not in query and "domain" not in query:
                return None, None
            return "users", query.get("customer", "my_customer")
        parts = rest.split("/")
        if len(parts) >= 3 and parts[0] == "customer":
            tail = "/".join(parts[2:])
            if tail in ("devices/mobile", "roles", "roleassignments"):
                return tail, parts[1]
        return None, None

    def throttled(self, resource, subject):
        opts = self.server.opts
        if opts.throttle_all:
            return True
        with LOCK:
            if opts.throttle_first and resource not in self.server.first_seen:
                self.server.first_seen.add(resource)
                return True
            return self.server.window.take(subject)

    def page(self, resource, query, items, key, kind, default_max, maximum):
        opts = self.server.opts
        try:
            size = int(query.get("maxResults", str(default_max)))
        except ValueError:
            return self.api_error(400, "INVALID_ARGUMENT", "invalid", "Invalid value for: maxResults")
        if not 1 <= size <= maximum:
            return self.api_error(400, "INVALID_ARGUMENT", "invalid",
                                  f"Invalid value '{size}'. Values must be within the range: [1, {maximum}]")
        start = 0
        if "pageToken" in query:
            with LOCK:
                start = self.server.page_tokens.get(query["pageToken"])
            if start is None:
                return self.api_error(400, "INVALID_ARGUMENT", "invalid", "Invalid Input: pageToken")
        chunk = items[start:start + size]
        body = {"kind": kind, "etag": etag()}
        if chunk:
            body[key] = chunk
        if start + size < len(items):
            if resource in opts.hostile_page_token and start == 0:
                token = "Q0&customer=C0other&maxResults=1#/../../users?x= +%2F"
            else:
                token = base64.urlsafe_b64encode(secrets.token_bytes(33)).decode()
            with LOCK:
                self.server.page_tokens[token] = start + size
            body["nextPageToken"] = token
        self.send(200, body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sa-cert", required=True, help="PEM certificate of the service account's key")
    parser.add_argument("--sa-email", required=True)
    parser.add_argument("--sa-key-id", required=True)
    parser.add_argument("--customer-id", required=True)
    parser.add_argument("--scopes", default=",".join(READONLY))
    parser.add_argument("--profile", choices=["small", "large"], default="small")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--deny", action="append", default=[])
    parser.add_argument("--throttle-all", action="store_true")
    parser.add_argument("--throttle-first", action="store_true")
    parser.add_argument("--unavailable-first", action="store_true")
    parser.add_argument("--malformed", action="append", default=[])
    parser.add_argument("--hostile-page-token", action="append", default=[])
    parser.add_argument("--token-lifetime", type=int, default=3599)
    parser.add_argument("--quota", type=int, default=2400)
    parser.add_argument("--assertions")
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Google)
    server.daemon_threads = True
    server.opts = opts
    server.authorized = {s for s in opts.scopes.split(",") if s}
    server.data = (practice(opts.customer_id, now) if opts.profile == "small"
                   else large(opts.customer_id, now, opts.users, opts.devices))
    server.tokens, server.page_tokens = {}, {}
    server.first_seen, server.unavailable_seen = set(), set()
    server.window = Window(opts.quota, 60)
    with open(opts.sa_cert, "rb") as pem:
        server.sa_cert = x509.load_pem_x509_certificate(pem.read())
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

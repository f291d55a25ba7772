#!/usr/bin/env python3
"""A local Microsoft Graph and Entra ID token peer for the cloud tests, over HTTPS on loopback.

Built from Microsoft's published descriptions (the Graph v1.0 reference pages of each resource,
the Microsoft identity platform's client-credentials flow and its AADSTS error codes, Graph's
throttling guidance):

  POST /{tenant}/oauth2/v2.0/token          client credentials (grant_type, client_id,
                                            client_secret, scope ending in /.default); a wrong
                                            secret is 401 invalid_client AADSTS7000215; or a
                                            certificate-signed client_assertion (PS256 or RS256,
                                            x5t#S256 or x5t of --client-cert; AADSTS700027 for
                                            another key, 700024 for a wrong audience or time);
                                            the token is a JWT carrying the granted app `roles`
  GET  /{tenant}/v2.0/.well-known/openid-configuration   what MSAL reads before a token
  GET  /v1.0/users                          $select, $top (max 999), @odata.nextLink paging
  GET  /v1.0/reports/authenticationMethods/userRegistrationDetails
  GET  /v1.0/policies/identitySecurityDefaultsEnforcementPolicy
  GET  /v1.0/identity/conditionalAccess/policies
  GET  /v1.0/policies/authorizationPolicy
  GET  /v1.0/directoryRoles(roleTemplateId='...')[/members], /v1.0/directoryRoles/{id}/members
  GET  /v1.0/deviceManagement/managedDevices (max $top 1000)
  GET  /v1.0/security/alerts_v2
  GET  /v1.0/security/secureScores      one score a day for 90 days, newest first ($top)
  GET  /v1.0/auditLogs/directoryAudits

Each Graph path needs the app role Microsoft documents for it (403 Authorization_RequestDenied
otherwise); an expired token is 401 InvalidAuthenticationToken. Throttling at the published
limits per tenant: security endpoints 150 requests a minute, Intune 1,000 per 20 s (reads of
managed devices), everything else 3,500 per 10 s (identity and access, per app and tenant);
over a limit the answer is 429 with Retry-After.

Scenarios (flags): --profile small (a practice of 25 users, 40 devices, a few alerts, with
known failures) or large (--users, --devices generated); --roles (the app roles granted);
--throttle-all (every Graph call 429, Retry-After 1); --throttle-first (the first call of each
path 429, Retry-After 1); --malformed PATH (200 with a cut JSON body); --foreign-link PATH
(the first page's @odata.nextLink on another host); --no-premium (no Entra ID P1: reading
signInActivity is 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant); --token-lifetime SECS.

Usage: fakegraph.py --port 0 --cert server.pem --key server.key --tenant T --client-id C
       --secret S [...] --log FILE; prints "READY <port>" once listening.
"""

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
# The tenant's activated Global Administrator role object (its own ID, not the template's).
GLOBAL_ADMIN_ROLE_ID = "5b7c0e9d-1a2b-4c3d-8e4f-a0b1c2d3e4f5"
ALL_ROLES = [
    "User.Read.All",
    "AuditLog.Read.All",
    "Policy.Read.All",
    "RoleManagement.Read.Directory",
    "DeviceManagementManagedDevices.Read.All",
    "SecurityAlert.Read.All",
    "SecurityEvents.Read.All",
]
SIGNING_KEY = uuid.uuid4().bytes
LOCK = threading.Lock()


def iso(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- data


def practice(now):
    """A small practice: 25 users (3 guests), 40 devices, a few alerts, with known failures."""
    domain = "smithfamilypractice.onmicrosoft.com"
    people = [
        "ann.smith", "bob.jones", "carla.diaz", "dan.wu", "eve.khan", "frank.ode", "gina.rossi",
        "hal.berg", "ivy.chen", "jon.park", "kim.lee", "lou.grant", "mia.wong", "ned.stark",
        "ola.nord", "pat.kerr", "quin.fox", "rae.lund", "sam.cole", "tia.ruiz", "uma.das",
        "vic.hale",
    ]
    users, registration = [], []
    for idx, name in enumerate(people):
        uid = str(uuid.UUID(int=0x1000 + idx))
        last = now - dt.timedelta(hours=3 + idx)
        if name == "frank.ode":
            last = now - dt.timedelta(days=200)  # left the practice; still enabled
        users.append({
            "id": uid,
            "displayName": name.replace(".", " ").title(),
            "userPrincipalName": f"{name}@{domain}",
            "accountEnabled": name != "vic.hale",
            "userType": "Member",
            "createdDateTime": iso(now - dt.timedelta(days=700)),
            "signInActivity": {
                "lastSignInDateTime": iso(last),
                "lastNonInteractiveSignInDateTime": iso(last),
                "lastSuccessfulSignInDateTime": iso(last),
            },
        })
        admin = name in ("ann.smith", "bob.jones", "carla.diaz")
        methods = ["microsoftAuthenticatorPush", "softwareOneTimePasscode"]
        if name in ("ann.smith", "bob.jones"):
            methods.append("fido2SecurityKey")
        mfa = name not in ("gina.rossi", "ivy.chen")
        registration.append({
            "id": uid,
            "userPrincipalName": f"{name}@{domain}",
            "userDisplayName": name,
            "userType": "member",
            "isAdmin": admin,
            "isMfaRegistered": mfa,
            "isMfaCapable": mfa,
            "isSsprRegistered": mfa,
            "isPasswordlessCapable": False,
            "methodsRegistered": methods if mfa else [],
            "lastUpdatedDateTime": iso(now - dt.timedelta(days=30)),
        })
    for idx, (guest, days) in enumerate([("lab.partner", 10), ("billing.co", 150), ("it.vendor", 20)]):
        uid = str(uuid.UUID(int=0x2000 + idx))
        last = now - dt.timedelta(days=days)
        users.append({
            "id": uid,
            "displayName": guest,
            "userPrincipalName": f"{guest}_ext#EXT#@{domain}",
            "accountEnabled": True,
            "userType": "Guest",
            "createdDateTime": iso(now - dt.timedelta(days=400)),
            "signInActivity": {"lastSignInDateTime": iso(last), "lastNonInteractiveSignInDateTime": None,
                               "lastSuccessfulSignInDateTime": iso(last)},
        })
    admins = [member(u) for u in users if u["userPrincipalName"].split("@")[0] in ("ann.smith", "bob.jones", "carla.diaz")]
    devices = []
    for idx in range(40):
        kind = ["Windows", "iOS", "Android", "macOS"][idx % 4]
        state = "compliant"
        if idx in (7, 23):
            state = "noncompliant"
        if idx == 31:
            state = "unknown"
        devices.append({
            "id": str(uuid.UUID(int=0x3000 + idx)),
            "deviceName": f"SFP-{kind[:3].upper()}-{idx:02d}",
            "operatingSystem": kind,
            "complianceState": state,
            "isEncrypted": idx != 12,
            "lastSyncDateTime": iso(now - dt.timedelta(hours=idx)),
            "userPrincipalName": users[idx % 22]["userPrincipalName"],
            "managedDeviceOwnerType": "company",
        })
    alerts = [
        alert(1, "Suspicious inbox forwarding rule", "high", "new", now - dt.timedelta(days=10)),
        alert(2, "Malware detected on SFP-WIN-04", "high", "resolved", now - dt.timedelta(days=20)),
        alert(3, "Unusual sign-in location", "medium", "inProgress", now - dt.timedelta(days=12)),
        alert(4, "Ransomware behaviour blocked", "high", "inProgress", now - dt.timedelta(days=1)),
    ]
    return {
        "users": users,
        "registration": registration,
        "security_defaults": False,
        # The admins' policy only reports: registration is not enforcement.
        "ca_policies": ca_policies("enabledForReportingButNotEnforced"),
        "authorization_policy": authorization_policy("adminsAndGuestInviters", "10dae51f-b6af-4016-8d66-8c2a99b929b3",
                                                     True, ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"]),
        "admins": admins,
        "devices": devices,
        "alerts": alerts,
        "secure_score": (54.4, 80.0),
        # One score a day, newest first: 8 points lost 12 days ago (MFA for all users switched
        # to report-only), a slow rise before.
        "secure_score_history": [54.4] * 12 + [62.4] * 33 + [60.0] * 45,
        "audit_newest": now - dt.timedelta(hours=1),
    }


def large(now, n_users, n_devices):
    """A generated tenant: every user registered and recently active, devices compliant."""
    rng = random.Random(20)
    domain = "bigclinic.onmicrosoft.com"
    users, registration = [], []
    for idx in range(n_users):
        uid = str(uuid.UUID(int=0x100000 + idx))
        last = now - dt.timedelta(hours=rng.randint(1, 24 * 60))
        upn = f"user{idx:05d}@{domain}"
        users.append({
            "id": uid, "displayName": f"User {idx}", "userPrincipalName": upn,
            "accountEnabled": True, "userType": "Member",
            "createdDateTime": iso(now - dt.timedelta(days=900)),
            "signInActivity": {"lastSignInDateTime": iso(last),
                               "lastNonInteractiveSignInDateTime": None,
                               "lastSuccessfulSignInDateTime": iso(last)},
        })
        admin = idx < 3
        methods = ["microsoftAuthenticatorPush"] + (["fido2SecurityKey"] if admin else [])
        registration.append({
            "id": uid, "userPrincipalName": upn, "userDisplayName": f"User {idx}",
            "userType": "member", "isAdmin": admin, "isMfaRegistered": True,
            "isMfaCapable": True, "isSsprRegistered": True, "isPasswordlessCapable": False,
            "methodsRegistered": methods, "lastUpdatedDateTime": iso(now - dt.timedelta(days=5)),
        })
    devices = [{
        "id": str(uuid.UUID(int=0x300000 + idx)),
        "deviceName": f"BC-{idx:05d}",
        "operatingSystem": ["Windows", "iOS", "Android", "macOS"][idx % 4],
        "complianceState": "compliant", "isEncrypted": True,
        "lastSyncDateTime": iso(now - dt.timedelta(hours=idx % 48)),
        "userPrincipalName": users[idx % max(1, n_users)]["userPrincipalName"] if n_users else "",
        "managedDeviceOwnerType": "company",
    } for idx in range(n_devices)]
    return {
        "users": users,
        "registration": registration,
        "security_defaults": False,
        "ca_policies": ca_policies("enabled"),
        "authorization_policy": authorization_policy("adminsAndGuestInviters", "2af84b1e-32c8-42b7-82bc-daa82404023b",
                                                     False, []),
        "admins": [member(u) for u in users[:3]],
        "devices": devices,
        "alerts": [alert(i, f"Alert {i}", "medium", "resolved", now - dt.timedelta(days=i)) for i in range(30)],
        "secure_score": (70.0, 80.0),
        "secure_score_history": [70.0] * 90,
        "audit_newest": now - dt.timedelta(minutes=5),
    }


def member(user):
    """A user as a directoryObject collection lists it: typed by `@odata.type`."""
    return dict({"@odata.type": "#microsoft.graph.user"}, **user)


def alert(idx, title, severity, status, created):
    return {
        "id": f"da{idx:030d}",
        "providerAlertId": f"{idx}",
        "title": title,
        "severity": severity,
        "status": status,
        "classification": None,
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "antivirus",
        "createdDateTime": iso(created),
        "lastUpdateDateTime": iso(created),
    }


def ca_policies(admins_state):
    """MFA for everyone, legacy authentication blocked, phishing-resistant MFA for admins."""
    return [
        ca(1, "Require MFA for all users", "enabled", ["All"], [], ["All"], ["all"], ["mfa"]),
        ca(2, "Block legacy authentication", "enabled", ["All"], [], ["All"],
           ["exchangeActiveSync", "other"], ["block"]),
        ca(3, "Phishing-resistant MFA for admins", admins_state, [], [GLOBAL_ADMIN], ["All"], ["all"], [],
           PHISHING_RESISTANT),
    ]


def ca(idx, name, state, users, roles, apps, client_apps, controls, strength=None):
    grant = {"operator": "OR", "builtInControls": controls, "customAuthenticationFactors": [],
             "termsOfUse": []}
    grant["authenticationStrength"] = ({"id": strength, "displayName": "Phishing-resistant MFA",
                                        "policyType": "builtIn", "requirementsSatisfied": "mfa",
                                        "allowedCombinations": ["windowsHelloForBusiness", "fido2",
                                                                "x509CertificateMultiFactor"]}
                                       if strength else None)
    return {
        "id": str(uuid.UUID(int=0x4000 + idx)),
        "displayName": name,
        "state": state,
        "createdDateTime": "2025-03-01T09:00:00Z",
        "modifiedDateTime": None,
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": client_apps,
            "platforms": None, "locations": None, "devices": None,
            "applications": {"includeApplications": apps, "excludeApplications": [],
                             "includeUserActions": []},
            "users": {"includeUsers": users, "excludeUsers": [], "includeGroups": [],
                      "excludeGroups": [], "includeRoles": roles, "excludeRoles": []},
        },
        "grantControls": grant,
        "sessionControls": None,
    }


def authorization_policy(invites, guest_role, create_apps, grants):
    return {
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": invites,
        "allowedToSignUpEmailBasedSubscriptions": True,
        "allowedToUseSSPR": True,
        "allowEmailVerifiedUsersToJoinOrganization": False,
        "blockMsolPowerShell": False,
        "guestUserRoleId": guest_role,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": create_apps,
            "allowedToCreateSecurityGroups": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": grants,
        },
    }


# ---------------------------------------------------------------- throttling


class Window:
    """A fixed window of `limit` requests per `seconds` (per tenant), as Graph documents it."""

    def __init__(self, limit, seconds):
        self.limit, self.seconds, self.start, self.count = limit, seconds, time.monotonic(), 0

    def take(self):
        now = time.monotonic()
        if now - self.start >= self.seconds:
            self.start, self.count = now, 0
        if self.count >= self.limit:
            return max(1, int(self.seconds - (now - self.start)) + 1)
        self.count += 1
        return 0


# ---------------------------------------------------------------- server


class Graph(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakegraph"

    def log_message(self, *args):
        pass

    def record(self, status):
        with LOCK, open(self.server.opts.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "status": status}) + "\n")

    def send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.record(status)

    def graph_error(self, status, code, message, headers=None):
        self.send(status, {"error": {"code": code, "message": message, "innerError": {
            "date": iso(dt.datetime.now(dt.timezone.utc)), "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4())}}}, headers)

    # -- identity platform

    def do_POST(self):
        opts = self.server.opts
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if path != f"/{opts.tenant}/oauth2/v2.0/token":
            return self.send(404, {"error": "not_found"})

        def refuse(status, error, code, text):
            self.send(status, {"error": error, "error_description": f"AADSTS{code}: {text}",
                               "error_codes": [code], "timestamp": iso(dt.datetime.now(dt.timezone.utc)),
                               "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())})

        one = lambda key: (form.get(key) or [""])[0]
        if one("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if one("client_id") != opts.client_id:
            return refuse(400, "unauthorized_client", 700016,
                          f"Application with identifier '{one('client_id')}' was not found in the directory.")
        if one("client_assertion_type") or one("client_assertion"):
            problem = self.assertion_problem(one("client_assertion_type"), one("client_assertion"))
            if problem:
                return refuse(401, "invalid_client", *problem)
        elif not hmac.compare_digest(one("client_secret"), opts.secret):
            return refuse(401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the request is "
                          "the client secret value, not the client secret ID, for a secret added to app "
                          f"'{opts.client_id}'.")
        if not one("scope").endswith("/.default"):
            return refuse(400, "invalid_scope", 1002012,
                          "The provided value for scope is not valid. Client credential flows must have a "
                          "scope value with /.default suffixed to the resource identifier.")
        now = int(time.time())
        claims = {"aud": "https://graph.microsoft.com", "iss": f"https://sts.windows.net/{opts.tenant}/",
                  "iat": now, "nbf": now, "exp": now + opts.token_lifetime, "appid": opts.client_id,
                  "tid": opts.tenant, "roles": self.server.roles, "idtyp": "app"}
        head = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        body = b64url(json.dumps(claims).encode())
        sig = b64url(hmac.new(SIGNING_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
        self.send(200, {"token_type": "Bearer", "expires_in": opts.token_lifetime,
                        "ext_expires_in": opts.token_lifetime, "access_token": f"{head}.{body}.{sig}"})

    def assertion_problem(self, kind, assertion):
        """Why a certificate-signed client assertion is refused: (AADSTS code, text), or None."""
        if kind != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."
        parts = assertion.split(".")
        if len(parts) != 3:
            return 50027, "JWT token is invalid or malformed."
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return 50027, "JWT token is invalid or malformed."
        cert = self.server.client_cert
        thumbprints = {}
        if cert is not None:
            der = cert.public_bytes(serialization.Encoding.DER)
            thumbprints = {"x5t#S256": b64url(hashlib.sha256(der).digest()), "x5t": b64url(hashlib.sha1(der).digest())}
        # Thumbprints are base64url, with or without padding (MSAL pads, Entra ID accepts both).
        if not any(str(header.get(k, "")).rstrip("=") == v for k, v in thumbprints.items()):
            used = header.get("x5t#S256") or header.get("x5t") or ""
            return 700027, ("The certificate with identifier used to sign the client assertion is not registered "
                            f"on application. [Reason - The key was not found., Thumbprint of key used by client: '{used}']")
        signed = f"{parts[0]}.{parts[1]}".encode()
        try:
            if header.get("alg") == "PS256":
                pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            elif header.get("alg") == "RS256":
                pad = padding.PKCS1v15()
            else:
                return 5002738, f"Invalid JWT token. '{header.get('alg')}' is not a supported signature algorithm."
            cert.public_key().verify(signature, signed, pad, hashes.SHA256())
        except InvalidSignature:
            return 700027, "Client assertion failed signature validation."
        now = time.time()
        endpoint = f"https://{self.headers.get('Host')}/{self.server.opts.tenant}/oauth2/v2.0/token"
        if claims.get("aud") != endpoint:
            return 700024, "Client assertion audience claim does not match Realm issuer."
        if claims.get("iss") != self.server.opts.client_id or claims.get("sub") != self.server.opts.client_id:
            return 700023, "Client assertion issuer or subject is not the application."
        if not claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0):
            return 700024, "Client assertion is not within its valid time range."
        return None

    def claims(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None, "Access token is empty."
        parts = auth[7:].split(".")
        if len(parts) != 3:
            return None, "IDX14100: JWT is not well formed."
        expected = b64url(hmac.new(SIGNING_KEY, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None, "Invalid signature."
        claims = json.loads(b64url_decode(parts[1]))
        if claims["exp"] <= time.time():
            return None, "Lifetime validation failed, the token is expired."
        return claims, None

    # -- Graph

    def do_GET(self):
        opts = self.server.opts
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query).items()}
        if path == f"/{opts.tenant}/v2.0/.well-known/openid-configuration":
            base = f"https://{self.headers.get('Host')}/{opts.tenant}"
            return self.send(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"https://{self.headers.get('Host')}/{opts.tenant}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": "NA",
            })
        if not path.startswith("/v1.0/"):
            return self.graph_error(400, "BadRequest", "Invalid version.")
        resource = path[len("/v1.0/"):]
        claims, problem = self.claims()
        if claims is None:
            return self.graph_error(401, "InvalidAuthenticationToken", problem)
        route = ROUTES.get(resource)
        if route is None:
            return self.graph_error(404, "Request_ResourceNotFound",
                                    f"Resource '{resource}' does not exist or one of its queried reference-property "
                                    "objects are not present.")
        needs, throttle, key, max_top = route
        if resource == "users" and "signInActivity" in query.get("$select", ""):
            needs = needs + ["AuditLog.Read.All"]
            if opts.no_premium:
                return self.graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                        "Neither tenant is B2C or tenant doesn't have premium license")
        missing = [role for role in needs if role not in claims["roles"]]
        if missing:
            return self.graph_error(403, "Authorization_RequestDenied",
                                    "Insufficient privileges to complete the operation.")
        wait = self.throttled(resource, throttle)
        if wait:
            return self.graph_error(429, "TooManyRequests",
                                    "Too many requests. Please retry after the time in the Retry-After header.",
                                    {"Retry-After": str(wait)})
        if resource in opts.malformed:
            data = b'{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#' + resource.encode() + b'","value":[{"id":"'
            return self.send(200, data)
        data = self.server.data
        value = data[key] if key in data else None
        if key == "security_defaults":
            return self.send(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity",
                                   "id": "00000000-0000-0000-0000-000000000005",
                                   "displayName": "Security Defaults",
                                   "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.",
                                   "isEnabled": data["security_defaults"]})
        if key == "global_admin_role":
            return self.send(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryRoles/$entity",
                                   "id": GLOBAL_ADMIN_ROLE_ID, "deletedDateTime": None,
                                   "description": "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
                                   "displayName": "Global Administrator", "roleTemplateId": GLOBAL_ADMIN})
        if key == "authorization_policy":
            return self.send(200, dict(data["authorization_policy"],
                                       **{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/authorizationPolicy/$entity"}))
        if key == "secure_score":
            _, maximum = data["secure_score"]
            today = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
            value = [{"id": f"{opts.tenant}_{(today - dt.timedelta(days=ago)).date()}", "azureTenantId": opts.tenant,
                      "activeUserCount": len(data["users"]),
                      "createdDateTime": iso(today - dt.timedelta(days=ago)),
                      "currentScore": current, "maxScore": maximum, "enabledServices": ["HasExchange"],
                      "licensedUserCount": len(data["users"]), "averageComparativeScores": [],
                      "controlScores": []}
                     for ago, current in enumerate(data["secure_score_history"])]
        if key == "audit_newest":
            value = [{"id": "Directory_" + str(uuid.uuid4()), "category": "UserManagement",
                      "correlationId": str(uuid.uuid4()), "result": "success", "resultReason": "",
                      "activityDisplayName": "Update user", "activityDateTime": iso(data["audit_newest"]),
                      "loggedByService": "Core Directory", "operationType": "Update",
                      "initiatedBy": {"app": None, "user": None}, "targetResources": [],
                      "additionalDetails": []}]
        return self.page(resource, query, value, max_top)

    def throttled(self, resource, throttle):
        opts = self.server.opts
        if opts.throttle_all:
            return 1
        with LOCK:
            if opts.throttle_first and resource not in self.server.first_seen:
                self.server.first_seen.add(resource)
                return 1
            return self.server.windows[throttle].take()

    def page(self, resource, query, items, max_top):
        opts = self.server.opts
        try:
            top = int(query.get("$top", str(max_top if max_top else 100)))
            skip = int(query.get("$skiptoken", "0"))
        except ValueError:
            return self.graph_error(400, "BadRequest", "Invalid $top or $skiptoken value.")
        if max_top and not 1 <= top <= max_top:
            return self.graph_error(400, "Request_UnsupportedQuery",
                                    f"Invalid page size specified: '{top}'. Must be between 1 and {max_top} inclusive.")
        select = [s for s in query.get("$select", "").split(",") if s]
        chunk = items[skip:skip + top]
        if select:
            chunk = [{k: v for k, v in item.items() if k in select or k == "id" or k.startswith("@odata.")}
                     for item in chunk]
        body = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{resource}", "value": chunk}
        if skip + top < len(items) and not resource.startswith(("security/secureScores", "auditLogs/")):
            next_query = dict(query, **{"$skiptoken": str(skip + top)})
            host = self.headers.get("Host")
            if resource in opts.foreign_link:
                host = "graph.attacker.example:" + str(self.server.server_address[1])
            body["@odata.nextLink"] = (f"https://{host}/v1.0/{urllib.parse.quote(resource, safe='/()=,')}?"
                                       + urllib.parse.urlencode(next_query, safe="$,"))
        self.send(200, body)


#: Graph path → (app roles it needs, throttling bucket, data key, max $top or None).
ROUTES = {
    "users": (["User.Read.All"], "identity", "users", 999),
    "reports/authenticationMethods/userRegistrationDetails": (["AuditLog.Read.All"], "identity", "registration", 999),
    "policies/identitySecurityDefaultsEnforcementPolicy": (["Policy.Read.All"], "identity", "security_defaults", None),
    "identity/conditionalAccess/policies": (["Policy.Read.All"], "identity", "ca_policies", None),
    "policies/authorizationPolicy": (["Policy.Read.All"], "identity", "authorization_policy", None),
    f"directoryRoles(roleTemplateId='{GLOBAL_ADMIN}')/members": (["RoleManagement.Read.Directory"], "identity", "admins", 999),
    f"directoryRoles(roleTemplateId='{GLOBAL_ADMIN}')": (["RoleManagement.Read.Directory"], "identity", "global_admin_role", None),
    f"directoryRoles/{GLOBAL_ADMIN_ROLE_ID}/members": (["RoleManagement.Read.Directory"], "identity", "admins", 999),
    "deviceManagement/managedDevices": (["DeviceManagementManagedDevices.Read.All"], "intune", "devices", 1000),
    "security/alerts_v2": (["SecurityAlert.Read.All"], "security", "alerts", 2000),
    "security/secureScores": (["SecurityEvents.Read.All"], "security", "secure_score", None),
    "auditLogs/directoryAudits": (["AuditLog.Read.All"], "identity", "audit_newest", 999),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--client-cert", help="PEM certificate registered on the application")
    parser.add_argument("--roles", default=",".join(ALL_ROLES))
    parser.add_argument("--profile", choices=["small", "large"], default="small")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--throttle-all", action="store_true")
    parser.add_argument("--no-premium", action="store_true",
                        help="the tenant has no Entra ID P1/P2: signInActivity is refused")
    parser.add_argument("--throttle-first", action="store_true")
    parser.add_argument("--malformed", action="append", default=[])
    parser.add_argument("--foreign-link", action="append", default=[])
    parser.add_argument("--token-lifetime", type=int, default=3599)
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Graph)
    server.daemon_threads = True
    server.opts = opts
    server.roles = [r for r in opts.roles.split(",") if r]
    server.data = practice(now) if opts.profile == "small" else large(now, opts.users, opts.devices)
    server.first_seen = set()
    server.client_cert = None
    if opts.client_cert:
        with open(opts.client_cert, "rb") as pem:
            server.client_cert = x509.load_pem_x509_certificate(pem.read())
    server.windows = {"security": Window(150, 60), "intune": Window(1000, 20), "identity": Window(3500, 10)}
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

#!/usr/bin/env python3
"""Reads the Google peer with Google's own clients, as an independent party, and checks the
appliance's service account JWTs with google-auth.

google-auth's service_account.Credentials (with `subject`: domain-wide delegation) gets a token
from the peer's token endpoint, and google-api-python-client's discovery client, built from the
Admin SDK Directory v1 discovery document the package ships, lists users, mobile devices, roles
and role assignments with its own paging (`list_next`). A key the peer does not trust must fail
with invalid_grant. Then every JWT in ASSERTIONS (those the Rust client sent) is verified by
google.auth.jwt.decode against the service account's certificate, audience Google's token
endpoint,
and one of them, altered, must fail verification. Prints one JSON object.

Usage: google_check.py TOKEN_URL API_ROOT KEY_JSON REVOKED_KEY_JSON SUBJECT CUSTOMER SA_CERT
       ASSERTIONS (the peer's CA in SSL_CERT_FILE)."""

import base64
import json
import os
import sys

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.auth import jwt
from google.oauth2 import service_account
from googleapiclient import discovery

# The one audience Google documents for its token endpoint.
AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.device.mobile.readonly",
    "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
]


def directory(key_file, subject, api_root):
    with open(key_file, encoding="utf-8") as key:
        info = json.load(key)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES, subject=subject)
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(ca_certs=os.environ["SSL_CERT_FILE"]))
    return discovery.build("admin", "directory_v1", http=http, static_discovery=True,
                           client_options={"api_endpoint": api_root})


def every(collection, key, **params):
    items, pages = [], 0
    request = collection.list(**params)
    while request is not None:
        page = request.execute()
        items += page.get(key, [])
        pages += 1
        request = collection.list_next(request, page)
    return items, pages


def main():
    _token_url, api_root, key_file, revoked_file, subject, customer, sa_cert, assertions = sys.argv[1:9]
    service = directory(key_file, subject, api_root)
    users, user_pages = every(service.users(), "users", customer=customer, maxResults=5, orderBy="email")
    devices, device_pages = every(service.mobiledevices(), "mobiledevices", customerId=customer,
                                  projection="FULL", maxResults=5)
    roles, _ = every(service.roles(), "items", customer=customer)
    super_roles = [r["roleId"] for r in roles if r.get("isSuperAdminRole")]
    assigned = set()
    for role_id in super_roles:
        found, _ = every(service.roleAssignments(), "items", customer=customer, roleId=role_id)
        assigned |= {a["assignedTo"] for a in found}
    active = [u for u in users if not u.get("suspended") and not u.get("archived")]
    result = {
        "users": len(users),
        "user_pages": user_pages,
        "not_enforced": sorted(u["primaryEmail"] for u in active if not u["isEnforcedIn2Sv"]),
        "not_enrolled": sorted(u["primaryEmail"] for u in active if not u["isEnrolledIn2Sv"]),
        "super_admins": sorted(u["primaryEmail"] for u in users if u["id"] in assigned),
        "suspended_admins": sorted(u["primaryEmail"] for u in users
                                   if (u["isAdmin"] or u["isDelegatedAdmin"]) and u.get("suspended")),
        "devices": len(devices),
        "device_pages": device_pages,
        "unencrypted": sorted(f'{d["model"]} {d["status"]}' for d in devices
                              if d.get("encryptionStatus") not in (None, "Encrypted")),
    }
    try:
        directory(revoked_file, subject, api_root).users().list(customer=customer).execute()
        result["revoked_key"] = "accepted"
    except google.auth.exceptions.RefreshError as err:
        result["revoked_key"] = str(err.args[0]).split(":")[0]

    with open(sa_cert, encoding="utf-8") as cert:
        certs = {}
        pem = cert.read()
    verified = []
    for token in open(assertions, encoding="utf-8").read().split():
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        certs[header["kid"]] = pem
        claims = jwt.decode(token, certs=certs, audience=AUDIENCE)
        verified.append({"iss": claims["iss"], "sub": claims["sub"], "scope": claims["scope"],
                         "lifetime": claims["exp"] - claims["iat"], "alg": header["alg"]})
    result["rust_jwts_verified"] = sorted(verified, key=lambda c: c["scope"])
    head, body, signature = open(assertions, encoding="utf-8").read().split()[0].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "root@other.example"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    try:
        jwt.decode(f"{head}.{forged}.{signature}", certs=certs, audience=AUDIENCE)
        result["altered_jwt"] = "accepted"
    except ValueError as err:
        result["altered_jwt"] = str(err)
    print(json.dumps(result, indent=1, sort_keys=True))


main()

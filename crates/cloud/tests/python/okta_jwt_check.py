#!/usr/bin/env python3
"""Okta's SDK against the appliance's private_key_jwt: the SDK in PrivateKey mode (its own client
assertion from `okta.jwt.JWT.create_token`) signs in at the Okta peer's token endpoint and lists
users, so the peer verifies assertions as the SDK makes them; then every assertion the Rust
client sent (ASSERTIONS) must carry the SDK's header algorithm and exactly its claim names, and
verify with PyJWT against the service app's certificate, with the audience the SDK uses
(`org_url + JWT.OAUTH_ENDPOINT`) and iss = sub = the client ID; one of them, altered, must not.
Prints one JSON object.

Usage: okta_jwt_check.py ORG_URL CLIENT_ID KEY_PEM_FILE CERT_FILE ASSERTIONS (the peer's CA in
SSL_CERT_FILE)."""

import asyncio
import json
import sys

import jwt
from cryptography import x509
from okta.client import Client
from okta.jwt import JWT


async def main(org_url, client_id, key_file, cert_file, assertions_file):
    with open(key_file, encoding="utf-8") as pem:
        private_key = pem.read()
    okta = Client({"orgUrl": org_url, "authorizationMode": "PrivateKey", "clientId": client_id,
                   "scopes": ["okta.users.read"], "privateKey": private_key,
                   "rateLimit": {"maxRetries": 0}})
    users, _, err = await okta.list_users(limit=200)
    if err:
        raise SystemExit(f"SDK sign-in or listing: {err}")
    sdk_token = JWT.create_token(org_url, client_id, private_key)
    sdk_header, sdk_claims = jwt.get_unverified_header(sdk_token), jwt.decode(sdk_token, options={"verify_signature": False})
    with open(cert_file, "rb") as pem:
        public = x509.load_pem_x509_certificate(pem.read()).public_key()
    with open(assertions_file, encoding="utf-8") as lines:
        ours = [line.strip() for line in lines if line.strip()]
    checked = []
    for token in ours:
        claims = jwt.decode(token, public, algorithms=["RS256"], audience=org_url + JWT.OAUTH_ENDPOINT,
                            issuer=client_id)
        header = jwt.get_unverified_header(token)
        checked.append({"alg_matches": header["alg"] == sdk_header["alg"],
                        "claims_match": sorted(claims) == sorted(sdk_claims),
                        "sub": claims["sub"]})
    head, body, sig = ours[0].split(".")
    tampered = head + "." + body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    try:
        jwt.decode(tampered, public, algorithms=["RS256"], audience=org_url + JWT.OAUTH_ENDPOINT)
        tampered_rejected = False
    except jwt.PyJWTError:
        tampered_rejected = True
    print(json.dumps({"sdk_users": len(users), "ours": checked, "tampered_rejected": tampered_rejected}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))

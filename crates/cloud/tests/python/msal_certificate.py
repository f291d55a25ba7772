#!/usr/bin/env python3
"""Signs in to the Graph peer with azure-identity's CertificateCredential (MSAL builds and signs
the client assertion), then reads the users through msgraph-sdk; prints the JWT header MSAL
sent and how many users it read. A certificate the application does not know must fail.

Usage: msal_certificate.py AUTHORITY GRAPH_BASE TENANT CLIENT_ID REGISTERED_PEM OTHER_PEM
(the peer's CA in SSL_CERT_FILE)."""

import asyncio
import json
import sys

from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import CertificateCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient


async def users(authority, graph_base, tenant, client_id, pem):
    host = graph_base.split("/")[2].split(":")[0]
    credential = CertificateCredential(
        tenant, client_id, certificate_path=pem, authority=authority, disable_instance_discovery=True
    )
    try:
        provider = AzureIdentityAuthenticationProvider(
            credential, scopes=[graph_base.rsplit("/", 1)[0] + "/.default"], allowed_hosts=[host]
        )
        adapter = GraphRequestAdapter(provider)
        adapter.base_url = graph_base
        page = await GraphServiceClient(request_adapter=adapter).users.get()
        return len(page.value)
    finally:
        await credential.close()


async def main():
    authority, graph_base, tenant, client_id, registered, other = sys.argv[1:7]
    result = {"users": await users(authority, graph_base, tenant, client_id, registered)}
    try:
        await users(authority, graph_base, tenant, client_id, other)
        result["other_certificate"] = "accepted"
    except ClientAuthenticationError as err:
        result["other_certificate"] = "AADSTS700027" if "AADSTS700027" in str(err) else str(err)
    print(json.dumps(result, sort_keys=True))


asyncio.run(main())

#!/usr/bin/env python3
"""Reads the Graph peer with Microsoft's own clients, as an independent party: azure-identity's
ClientSecretCredential (MSAL underneath) signs in against the peer's authority, and msgraph-sdk's
GraphServiceClient reads users (with paging by @odata.nextLink), the registration report, the
policies, the Global Administrator role, Intune devices, Defender alerts and Secure Score
through its typed models. Prints one JSON object with what it read; a wrong secret must fail
with the authority's AADSTS code.

Usage: msgraph_check.py AUTHORITY GRAPH_BASE TENANT CLIENT_ID SECRET
(the peer's CA in SSL_CERT_FILE)."""

import asyncio
import datetime as dt
import json
import sys

from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.security.secure_scores.secure_scores_request_builder import SecureScoresRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def enum(value):
    return getattr(value, "value", value)


async def read(authority, graph_base, tenant, client_id, secret):
    host = graph_base.split("/")[2].split(":")[0]
    credential = ClientSecretCredential(
        tenant, client_id, secret, authority=authority, disable_instance_discovery=True
    )
    try:
        provider = AzureIdentityAuthenticationProvider(
            credential, scopes=[graph_base.rsplit("/", 1)[0] + "/.default"], allowed_hosts=[host]
        )
        adapter = GraphRequestAdapter(provider)
        adapter.base_url = graph_base
        client = GraphServiceClient(request_adapter=adapter)

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "accountEnabled", "userType", "signInActivity"], top=10
        )
        page = await client.users.get(RequestConfiguration(query_parameters=query))
        users, pages = list(page.value), 1
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
            pages += 1
        registration = await client.reports.authentication_methods.user_registration_details.get()
        defaults = await client.policies.identity_security_defaults_enforcement_policy.get()
        policies = await client.identity.conditional_access.policies.get()
        authorization = await client.policies.authorization_policy.get()
        role = await client.directory_roles_with_role_template_id(GLOBAL_ADMIN).get()
        admins = await client.directory_roles.by_directory_role_id(role.id).members.get()
        devices = await client.device_management.managed_devices.get()
        alerts = await client.security.alerts_v2.get()
        scores = await client.security.secure_scores.get(RequestConfiguration(
            query_parameters=SecureScoresRequestBuilder.SecureScoresRequestBuilderGetQueryParameters(
                select=["currentScore", "maxScore", "createdDateTime"], top=90)))
        history = sorted(scores.value, key=lambda s: s.created_date_time, reverse=True)
        since = history[0].created_date_time - dt.timedelta(days=30)
        month = [s for s in history if s.created_date_time > since]
        return {
            "users": len(users),
            "user_pages": pages,
            "guests": sorted(u.user_principal_name for u in users if u.user_type == "Guest"),
            "disabled": sorted(u.user_principal_name for u in users if u.account_enabled is False),
            "signed_in": sum(1 for u in users if u.sign_in_activity and u.sign_in_activity.last_sign_in_date_time),
            "without_mfa": sorted(r.user_principal_name for r in registration.value if not r.is_mfa_registered),
            "admins_registered": sorted(r.user_principal_name for r in registration.value if r.is_admin),
            "security_defaults": defaults.is_enabled,
            "ca_policies": [
                {
                    "name": p.display_name,
                    "state": enum(p.state),
                    "include_users": p.conditions.users.include_users,
                    "client_app_types": [enum(t) for t in p.conditions.client_app_types],
                    "controls": [enum(c) for c in (p.grant_controls.built_in_controls or [])],
                    "strength": p.grant_controls.authentication_strength.id
                    if p.grant_controls.authentication_strength else None,
                }
                for p in policies.value
            ],
            "allow_invites_from": enum(authorization.allow_invites_from),
            "guest_user_role_id": str(authorization.guest_user_role_id),
            "users_can_register_apps": authorization.default_user_role_permissions.allowed_to_create_apps,
            "global_admins": sorted(m.user_principal_name for m in admins.value),
            "devices": len(devices.value),
            "noncompliant": sorted(d.device_name for d in devices.value if enum(d.compliance_state) == "noncompliant"),
            "unencrypted": sorted(d.device_name for d in devices.value if d.is_encrypted is False),
            "alerts": sorted(f"{enum(a.severity)} {enum(a.status)} {a.title}" for a in alerts.value),
            "secure_score": [history[0].current_score, history[0].max_score],
            "secure_score_days": len(history),
            "secure_score_drop_30_days": round(month[-1].current_score - history[0].current_score, 2),
        }
    finally:
        await credential.close()


async def main():
    authority, graph_base, tenant, client_id, secret = sys.argv[1:6]
    result = await read(authority, graph_base, tenant, client_id, secret)
    try:
        await read(authority, graph_base, tenant, client_id, secret + "-revoked")
        result["wrong_secret"] = "accepted"
    except ClientAuthenticationError as err:
        result["wrong_secret"] = "AADSTS7000215" if "AADSTS7000215" in str(err) else str(err)
    print(json.dumps(result, indent=1, sort_keys=True))


asyncio.run(main())

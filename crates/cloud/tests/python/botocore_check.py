#!/usr/bin/env python3
"""AWS's own client as an independent party, two ways.

`read ENDPOINT ACCOUNT KEY_ID SECRET REGION...`: botocore clients pointed at the AWS peer read
every source the checks use (STS caller identity, IAM account summary and credential report,
S3 buckets with paging and each bucket's Block Public Access, the account's Block Public Access
through S3 Control, CloudTrail trails and status, EBS encryption by default per region), with
botocore's own serializers, signer and parsers. Prints one JSON object with what it read; a
wrong secret must fail with the service's error code.

`sign`: reads JSON cases from stdin (key ID, secret, optional session token, service, region,
time, method, host, path, query pairs, headers, body) and prints, for each, the Authorization
header botocore's SigV4Auth (S3SigV4Auth for s3) computes: the reference for the Rust signer.

Trust for the peer's CA: the file in AWS_CA_BUNDLE."""

import base64
import csv
import datetime as dt
import io
import json
import os
import sys
import urllib.parse

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def client(session, service, endpoint, region):
    return session.create_client(
        service, region_name=region, endpoint_url=endpoint, verify=os.environ["AWS_CA_BUNDLE"],
        config=Config(retries={"mode": "standard", "max_attempts": 10},
                      s3={"addressing_style": "path"}))


def strip_account_host(request, **_):
    # With an endpoint URL, botocore puts the account ID in front of S3 Control's host
    # ({AccountId}.127.0.0.1), which does not resolve on loopback: send it to the peer itself,
    # before signing so the signature covers the host that is sent.
    parts = urllib.parse.urlsplit(request.url)
    host = parts.netloc.split(".", 1)[1] if parts.netloc[0].isdigit() and parts.netloc.count(".") > 3 else parts.netloc
    request.url = urllib.parse.urlunsplit(parts._replace(netloc=host))


def read(endpoint, account, key_id, secret, regions):
    session = botocore.session.get_session()
    session.set_credentials(key_id, secret)
    home = regions[0]
    out = {}
    sts = client(session, "sts", endpoint, home)
    try:
        out["account"] = sts.get_caller_identity()["Account"]
    except ClientError as err:
        print(json.dumps({"error": err.response["Error"]["Code"]}))
        return
    iam = client(session, "iam", endpoint, home)
    summary = iam.get_account_summary()["SummaryMap"]
    out["root_mfa"] = summary["AccountMFAEnabled"]
    out["root_keys"] = summary["AccountAccessKeysPresent"]
    while iam.generate_credential_report()["State"] != "COMPLETE":
        pass
    report = iam.get_credential_report()["Content"].decode()
    rows = list(csv.DictReader(io.StringIO(report)))
    out["console_without_mfa"] = sorted(r["user"] for r in rows
                                        if r["password_enabled"] == "true" and r["mfa_active"] == "false")
    out["active_keys"] = sorted(f"{r['user']} {slot}" for r in rows for slot in ("1", "2")
                                if r[f"access_key_{slot}_active"] == "true")
    s3 = client(session, "s3", endpoint, home)
    buckets, token, pages = [], None, 0
    while True:
        kwargs = {"MaxBuckets": 1000}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_buckets(**kwargs)
        pages += 1
        buckets += [(b["Name"], b.get("BucketRegion")) for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    out["bucket_pages"] = pages
    blocked, open_buckets = 0, []
    for name, region in buckets:
        regional = client(session, "s3", endpoint, region or home)
        try:
            config = regional.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            if all(config.values()) and len(config) == 4:
                blocked += 1
            else:
                open_buckets.append(name)
        except ClientError as err:
            if err.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
                raise
            open_buckets.append(name)
    out["buckets"] = len(buckets)
    out["buckets_blocked"] = blocked
    out["buckets_open"] = open_buckets[:20]
    control = client(session, "s3control", endpoint, home)
    control.meta.events.register("before-sign.s3-control.GetPublicAccessBlock", strip_account_host)
    out["account_block"] = control.get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"]
    trail_client = client(session, "cloudtrail", endpoint, home)
    trails = trail_client.describe_trails(includeShadowTrails=True)["trailList"]
    out["trails"] = [
        {"name": t["Name"], "multi_region": t["IsMultiRegionTrail"],
         "validation": t["LogFileValidationEnabled"],
         "logging": trail_client.get_trail_status(Name=t["TrailARN"])["IsLogging"]}
        for t in trails
    ]
    out["ebs"] = {r: client(session, "ec2", endpoint, r).get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
                  for r in regions}
    print(json.dumps(out, indent=1, sort_keys=True))


def sign():
    for case in json.load(sys.stdin):
        query = urllib.parse.urlencode([tuple(p) for p in case["query"]], quote_via=lambda s, *_: urllib.parse.quote(s, safe="-_.~"))
        url = f"https://{case['host']}{urllib.parse.quote(case['path'], safe='/~')}" + (f"?{query}" if query else "")
        request = AWSRequest(method=case["method"], url=url, headers=dict(case["headers"]),
                             data=case["body"].encode())
        credentials = Credentials(case["key_id"], case["secret"], case.get("token"))
        signer_class = S3SigV4Auth if case["service"] == "s3" else SigV4Auth
        signer = signer_class(credentials, case["service"], case["region"])
        when = dt.datetime.strptime(case["time"], "%Y%m%dT%H%M%SZ")
        import botocore.auth
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *_, **__: when
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = real
        print(request.headers["Authorization"])


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sign()

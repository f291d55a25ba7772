#!/usr/bin/env python3
"""A local AWS peer (STS, IAM, EC2, S3, S3 Control, CloudTrail) for the cloud tests, over HTTPS on
loopback, built from the AWS service models as shipped in botocore.

Every request is matched to an operation of the service's model (botocore's `service-2.json`):
query-protocol `Action`/`Version` (STS, IAM), EC2's, REST-XML method and `requestUri` templates
(S3, S3 Control), JSON 1.1 `X-Amz-Target` (CloudTrail); required input members are checked.
Answers are serialized from each operation's output shape (member names, `locationName`,
`resultWrapper`, list and map wrappers, the protocol's envelope) so an unknown field cannot
slip in, and errors use each protocol's envelope and the codes AWS documents.

Every request must carry a SigV4 signature that botocore's own signer (SigV4Auth, S3SigV4Auth)
recomputes to the same value from the request as received: an unknown access key is refused as
each service refuses it (InvalidClientTokenId, AuthFailure, InvalidAccessKeyId,
UnrecognizedClientException), a wrong signature with SignatureDoesNotMatch (CloudTrail:
InvalidSignatureException), a date more than 15 minutes off with the service's skew error.

The service is the one the signature is scoped to (as with one endpoint for all services); S3
Control is S3's signing name on `/v20180820/...` paths with `x-amz-account-id`.

Scenarios (flags): --profile small (a practice: 7 IAM users, 6 buckets in two regions, one trail,
with known failures) or large (--users, --buckets generated, all compliant); --deny ACTION
(an IAM action such as s3:GetBucketPublicAccessBlock that the key's policy does not allow:
AccessDenied as the service words it); --throttle-first (the first call of each operation is
throttled with the service's code: Throttling, RequestLimitExceeded, SlowDown,
ThrottlingException); --throttle-all; --malformed OPERATION (200 with a cut body);
--evil-bucket NAME (ListBuckets also lists NAME); --session-token T (temporary credentials).

Usage: fakeaws.py --port 0 --cert server.pem --key server.key --account A --access-key-id K
       --secret S [...] --log FILE; prints "READY <port>" once listening.
"""

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import ssl
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOCK = threading.Lock()
SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name)
          for name in ("sts", "iam", "ec2", "s3", "s3control", "cloudtrail")}

#: The IAM action each operation needs (for --deny and AccessDenied messages).
ACTIONS = {
    ("iam", "GetAccountSummary"): "iam:GetAccountSummary",
    ("iam", "GenerateCredentialReport"): "iam:GenerateCredentialReport",
    ("iam", "GetCredentialReport"): "iam:GetCredentialReport",
    ("iam", "ListUsers"): "iam:ListUsers",
    ("ec2", "GetEbsEncryptionByDefault"): "ec2:GetEbsEncryptionByDefault",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("cloudtrail", "DescribeTrails"): "cloudtrail:DescribeTrails",
    ("cloudtrail", "GetTrailStatus"): "cloudtrail:GetTrailStatus",
}

#: Each service's throttling answer (status, code, message), as AWS sends it.
THROTTLE = {
    "sts": (400, "Throttling", "Rate exceeded"),
    "iam": (400, "Throttling", "Rate exceeded"),
    "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "s3": (503, "SlowDown", "Please reduce your request rate."),
    "s3control": (503, "SlowDown", "Please reduce your request rate."),
    "cloudtrail": (400, "ThrottlingException", "Rate exceeded"),
}

#: Each service's answer to an access key it does not know.
UNKNOWN_KEY = {
    "sts": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    "iam": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    "ec2": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    "s3": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "s3control": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "cloudtrail": (400, "UnrecognizedClientException", "The security token included in the request is invalid."),
}

#: REST-XML root elements the models leave implicit (the operation's output has no payload member).
REST_ROOT = {("s3", "ListBuckets"): "ListAllMyBucketsResult"}

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class AwsError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(code)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# ---------------------------------------------------------------- serialization from the models


def iso(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def xml_value(shape, value, protocol):
    """The XML text of `value` (a dict, list or scalar) shaped by `shape`, without its own tag."""
    kind = shape.type_name
    if kind == "structure":
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{shape.name} has no members {sorted(unknown)}")
        return "".join(xml_member(name, shape.members[name], value[name], protocol)
                       for name in shape.members if name in value)
    if kind == "list":
        member = shape.member
        tag = member.serialization.get("name") or ("item" if protocol == "ec2" else "member")
        return "".join(f"<{tag}>{xml_value(member, v, protocol)}</{tag}>" for v in value)
    if kind == "map":
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        return "".join(f"<entry><{key_tag}>{escape(str(k))}</{key_tag}><{value_tag}>"
                       f"{xml_value(shape.value, v, protocol)}</{value_tag}></entry>"
                       for k, v in value.items())
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return iso(value)
    if kind == "blob":
        return base64.b64encode(value).decode()
    return escape(str(value))


def xml_member(name, shape, value, protocol):
    tag = shape.serialization.get("name", name)
    if protocol == "ec2" and "name" not in shape.serialization:
        tag = name[0].lower() + name[1:]
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        member = shape.member
        return "".join(f"<{tag}>{xml_value(member, v, protocol)}</{tag}>" for v in value)
    return f"<{tag}>{xml_value(shape, value, protocol)}</{tag}>"


def json_value(shape, value):
    kind = shape.type_name
    if kind == "structure":
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{shape.name} has no members {sorted(unknown)}")
        return {shape.members[n].serialization.get("name", n): json_value(shape.members[n], v)
                for n, v in value.items()}
    if kind == "list":
        return [json_value(shape.member, v) for v in value]
    if kind == "timestamp":
        return value.timestamp()
    return value


def serialize(service, op, data):
    """(status, content type, body bytes) of a successful answer of `op` holding `data`."""
    model = MODELS[service]
    output = op.output_shape
    protocol = model.protocol
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps(json_value(output, data) if output else {})
        return "application/x-amz-json-1.1", body.encode()
    namespace = model.metadata.get("xmlNamespace") or (
        f"https://{model.endpoint_prefix}.amazonaws.com/doc/{model.api_version}/")
    if protocol == "query":
        wrapper = output.serialization.get("resultWrapper") if output else None
        inner = xml_value(output, data, protocol) if output else ""
        if wrapper:
            inner = f"<{wrapper}>{inner}</{wrapper}>"
        body = (f'<{op.name}Response xmlns="{namespace}">{inner}<ResponseMetadata><RequestId>'
                f"{request_id}</RequestId></ResponseMetadata></{op.name}Response>")
    elif protocol == "ec2":
        namespace = f"http://ec2.amazonaws.com/doc/{model.api_version}/"
        body = (f'<{op.name}Response xmlns="{namespace}"><requestId>{request_id}</requestId>'
                f"{xml_value(output, data, protocol)}</{op.name}Response>")
    else:  # rest-xml
        payload = output.serialization.get("payload") if output else None
        ns = model.metadata.get("xmlNamespace", {}).get("uri", "http://s3.amazonaws.com/doc/2006-03-01/")
        if payload:
            member = output.members[payload]
            tag = member.serialization.get("name", payload)
            body = f'<{tag} xmlns="{ns}">{xml_value(member, data[payload], protocol)}</{tag}>'
        else:
            tag = REST_ROOT[(service, op.name)]
            body = f'<{tag} xmlns="{ns}">{xml_value(output, data, protocol)}</{tag}>'
    return "text/xml", ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def error_body(service, status, code, message):
    """(content type, body) of an error in the service's protocol envelope."""
    request_id = str(uuid.uuid4())
    protocol = MODELS[service].protocol
    if protocol == "json":
        return "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    if protocol == "query":
        kind = "Sender" if status < 500 else "Receiver"
        body = (f'<ErrorResponse xmlns="https://{MODELS[service].endpoint_prefix}.amazonaws.com/doc/'
                f'{MODELS[service].api_version}/"><Error><Type>{kind}</Type><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    elif protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"</Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:
        body = (f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"<RequestId>{request_id[:16].upper()}</RequestId><HostId>{base64.b64encode(request_id.encode()).decode()}</HostId></Error>")
    return "application/xml", ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


# ---------------------------------------------------------------- request matching


def rest_operation(service, method, path, query):
    """The REST-XML operation whose method and requestUri template match, with its labels."""
    best = None
    for name in MODELS[service].operation_names:
        op = MODELS[service].operation_model(name)
        if op.http.get("method") != method:
            continue
        template, _, literal = op.http["requestUri"].partition("?")
        keys = [k.split("=")[0] for k in literal.split("&") if k]
        pattern = "^" + re.sub(r"\\\{(\w+)(\\\+)?\\\}",
                               lambda m: f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)",
                               re.escape(template)) + "$"
        match = re.match(pattern, path)
        if match and all(k in query for k in keys):
            score = (len(keys), len(template))
            if best is None or score > best[0]:
                best = (score, op, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()})
    if best is None:
        raise AwsError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    return best[1], best[2]


def check_required(service, op, params):
    shape = op.input_shape
    if shape is None:
        return
    for name in shape.required_members:
        if name not in params:
            if MODELS[service].protocol == "json":
                raise AwsError(400, "ValidationException",
                               f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null")
            raise AwsError(400, "MissingParameter", f"The request must contain the parameter {name}")


# ---------------------------------------------------------------- data


def report_csv(users, now):
    header = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
              "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
              "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
              "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
              "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
              "cert_1_last_rotated,cert_2_active,cert_2_last_rotated")
    lines = [header]

    def when(days):
        return "N/A" if days is None else (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    for user in users:
        keys = user["keys"] + [None] * (2 - len(user["keys"]))
        fields = [user["name"], user["arn"], when(user["created"]),
                  "not_supported" if user["root"] else str(user["console"]).lower(),
                  when(3) if user["console"] else "N/A", "not_supported" if user["root"] else when(60) if user["console"] else "N/A",
                  "not_supported" if user["root"] else "N/A", str(user["mfa"]).lower()]
        for key in keys:
            if key is None:
                fields += ["false", "N/A", "N/A", "N/A", "N/A"]
            else:
                active, age = key
                fields += [str(active).lower(), when(age), when(1), "us-east-1", "s3"]
        fields += ["false", "N/A", "false", "N/A"]
        lines.append(",".join(fields))
    return "\n".join(lines) + "\n"


def block(all_on=True, policy=True):
    return {"BlockPublicAcls": all_on, "IgnorePublicAcls": all_on,
            "BlockPublicPolicy": all_on and policy, "RestrictPublicBuckets": all_on and policy}


def practice(account, now):
    """A small practice's account: its portal, backups and scans, with known failures."""
    arn = f"arn:aws:iam::{account}:"
    users = [{"name": "<root_account>", "arn": f"{arn}root", "root": True, "console": True,
              "mfa": True, "keys": [], "created": 1900}]
    for name, console, mfa, keys in [
        ("dr.smith", True, True, [(True, 30)]),
        ("office.manager", True, False, []),          # no MFA on a console user
        ("nurse.jones", True, True, []),
        ("billing", True, True, []),
        ("it.contractor", True, True, [(True, 45)]),
        ("backup-agent", False, False, [(True, 400)]),  # a key never rotated
        ("ehr-integration", False, False, [(True, 20), (False, 500)]),
    ]:
        users.append({"name": name, "arn": f"{arn}user/{name}", "root": False, "console": console,
                      "mfa": mfa, "keys": keys, "created": 800})
    buckets = [
        ("smithpractice-ehr-backups", "us-east-1", block()),
        ("smithpractice-scans", "us-east-1", block()),
        ("smithpractice-website", "us-east-1", block(policy=False)),  # a static site left open
        ("smithpractice-cloudtrail-logs", "us-east-1", block()),
        ("smithpractice-billing-exports", "us-west-2", block()),
        ("smithpractice-tmp-share", "us-east-1", None),               # no configuration at all
    ]
    trails = [{
        "Name": "practice-trail", "S3BucketName": "smithpractice-cloudtrail-logs",
        "IncludeGlobalServiceEvents": True, "IsMultiRegionTrail": True, "HomeRegion": "us-east-1",
        "TrailARN": f"arn:aws:cloudtrail:us-east-1:{account}:trail/practice-trail",
        "LogFileValidationEnabled": True, "HasCustomEventSelectors": False,
        "HasInsightSelectors": False, "IsOrganizationTrail": False,
    }]
    return {"users": users, "buckets": buckets, "account_block": block(), "trails": trails,
            "logging": {trails[0]["TrailARN"]: True}, "ebs": {"us-east-1": True}}


def large(account, now, n_users, n_buckets):
    """A large account: every user with a console password has MFA, keys are fresh, every bucket
    blocks public access, across three regions."""
    arn = f"arn:aws:iam::{account}:"
    users = [{"name": "<root_account>", "arn": f"{arn}root", "root": True, "console": True,
              "mfa": True, "keys": [], "created": 3000}]
    for idx in range(n_users):
        name = f"user{idx:05d}"
        console = idx % 5 != 0
        users.append({"name": name, "arn": f"{arn}user/{name}", "root": False, "console": console,
                      "mfa": console, "keys": [(True, idx % 80)] if idx % 3 == 0 else [], "created": 500})
    regions = ["us-east-1", "us-west-2", "eu-west-1"]
    buckets = [(f"org-data-{idx:05d}", regions[idx % 3], block()) for idx in range(n_buckets)]
    trails = [{
        "Name": "org-trail", "S3BucketName": "org-data-00000", "IsMultiRegionTrail": True,
        "HomeRegion": "us-east-1", "TrailARN": f"arn:aws:cloudtrail:us-east-1:{account}:trail/org-trail",
        "LogFileValidationEnabled": True, "IncludeGlobalServiceEvents": True,
    }]
    return {"users": users, "buckets": buckets, "account_block": block(), "trails": trails,
            "logging": {trails[0]["TrailARN"]: True}, "ebs": {r: True for r in regions}}


# ---------------------------------------------------------------- the server


class Aws(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.service, operation = "s3", "?"
        try:
            service, region = self.authenticate(method, body)
            op, params = self.operation(service, method, body)
            operation = op.name
            self.gate(service, op)
            data = HANDLERS[(service, op.name)](self, region, params)
            if op.name in self.server.opts.malformed:
                self.log(method, service, operation, 200)
                cut = serialize(service, op, data)[1][:40]
                return self.send_raw(200, "text/xml", cut)
            content_type, payload = serialize(service, op, data)
            self.log(method, service, operation, 200)
            self.send_raw(200, content_type, payload)
        except Exception as err:  # noqa: BLE001 - a peer bug answers 500 and is logged
            if not isinstance(err, AwsError):
                import traceback
                traceback.print_exc()
                err = AwsError(500, "InternalError", "We encountered an internal error. Please try again.")
            service = self.service
            self.log(method, service, operation, err.status, err.code)
            content_type, payload = error_body(service, err.status, err.code, err.message)
            headers = dict(err.headers)
            if MODELS[service].protocol == "json":
                headers["x-amzn-ErrorType"] = err.code
            self.send_raw(err.status, content_type, payload, headers)

    def log(self, method, service, operation, status, code=None):
        with LOCK:
            with open(self.server.opts.log, "a") as log:
                log.write(json.dumps({"method": method, "path": self.path, "service": service,
                                      "operation": operation, "status": status, "code": code}) + "\n")

    def send_raw(self, status, content_type, payload, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def authenticate(self, method, body):
        """Checks the SigV4 signature with botocore's signer; the service and region it scopes."""
        opts = self.server.opts
        auth = self.headers.get("Authorization", "")
        match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                             r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
        if not match:
            raise AwsError(403, "MissingAuthenticationToken" if not auth else "IncompleteSignature",
                           "Request is missing Authentication Token" if not auth
                           else "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
        key_id, date, region, service, signed, signature = match.groups()
        if service == "s3" and urllib.parse.urlsplit(self.path).path.startswith("/v20180820/"):
            service = "s3control"
        if service not in MODELS:
            raise AwsError(400, "InvalidAction", f"The service {service} is not served here.")
        self.service = service
        if key_id != opts.access_key_id:
            raise AwsError(*UNKNOWN_KEY[service])
        token = self.headers.get("X-Amz-Security-Token")
        if opts.session_token and token != opts.session_token:
            raise AwsError(*UNKNOWN_KEY[service])
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise AwsError(400, "IncompleteSignature", "Date must be in ISO-8601 'basic format'.")
        if abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) > 900 or not amz_date.startswith(date):
            raise AwsError(403, "RequestTimeTooSkewed" if service.startswith("s3") else "SignatureDoesNotMatch",
                           "Signature expired: the request's date is more than 15 minutes from the server's.")
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            raise AwsError(403, "SignatureDoesNotMatch", "The request signature must cover host and x-amz-date.")
        if service.startswith("s3"):
            claimed = self.headers.get("x-amz-content-sha256")
            if claimed is None:
                raise AwsError(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
            if claimed != "UNSIGNED-PAYLOAD" and claimed != hashlib.sha256(body).hexdigest():
                raise AwsError(400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.")
        headers = {name: self.headers.get(name, "") for name in names}
        request = AWSRequest(method=method, url=f"https://{self.headers.get('Host')}{self.path}",
                             headers=headers, data=body)
        request.context["timestamp"] = amz_date
        signing_name = "s3" if service == "s3control" else service
        signer_class = S3SigV4Auth if signing_name == "s3" else SigV4Auth
        signer = signer_class(Credentials(opts.access_key_id, opts.secret, token), signing_name, region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):
            code = "InvalidSignatureException" if service == "cloudtrail" else "SignatureDoesNotMatch"
            raise AwsError(400 if service == "cloudtrail" else 403, code,
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
        return service, region

    def operation(self, service, method, body):
        model = MODELS[service]
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if model.protocol in ("query", "ec2"):
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)) if method == "POST" else query
            action = params.pop("Action", None)
            if action not in model.operation_names:
                raise AwsError(400, "InvalidAction", f"Could not find operation {action} for version {params.get('Version')}")
            if params.pop("Version", None) != model.api_version:
                raise AwsError(400, "InvalidAction", f"Could not find operation {action} for this version")
            op = model.operation_model(action)
        elif model.protocol == "json":
            target = self.headers.get("X-Amz-Target", "")
            prefix, _, action = target.rpartition(".")
            if prefix != model.metadata["targetPrefix"] or action not in model.operation_names:
                raise AwsError(400, "UnknownOperationException", f"Unknown operation {target}")
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise AwsError(400, "SerializationException", "Start of structure or map found where not expected.")
            op = model.operation_model(action)
        else:
            op, labels = rest_operation(service, method, split.path, query)
            params = dict(labels)
            for name, member in (op.input_shape.members.items() if op.input_shape else []):
                where = member.serialization.get("location")
                key = member.serialization.get("name", name)
                if where == "header" and self.headers.get(key) is not None:
                    params[name] = self.headers.get(key)
                elif where == "querystring" and key in query:
                    params[name] = query[key]
        check_required(service, op, params)
        return op, params

    def gate(self, service, op):
        opts = self.server.opts
        action = ACTIONS.get((service, op.name))
        with LOCK:
            first = (service, op.name) not in self.server.seen
            self.server.seen.add((service, op.name))
        if opts.throttle_all or (opts.throttle_first and first):
            raise AwsError(*THROTTLE[service])
        if action and action in opts.deny:
            user = f"arn:aws:iam::{opts.account}:user/osiris-audit"
            reason = f"User: {user} is not authorized to perform: {action}"
            if service == "ec2":
                raise AwsError(403, "UnauthorizedOperation",
                               f"You are not authorized to perform this operation. {reason} because no identity-based policy allows the {action} action")
            if service == "cloudtrail":
                raise AwsError(400, "AccessDeniedException", f"{reason} because no identity-based policy allows the {action} action")
            resource = "*"
            raise AwsError(403, "AccessDenied", f"{reason} on resource: {resource} because no identity-based policy allows the {action} action")


def caller_identity(handler, region, params):
    opts = handler.server.opts
    return {"UserId": "AIDAQ3EGUSERIDEXAMPLE", "Account": opts.account,
            "Arn": f"arn:aws:iam::{opts.account}:user/osiris-audit"}


def account_summary(handler, region, params):
    data = handler.server.data
    root = data["users"][0]
    return {"SummaryMap": {
        "Users": len(data["users"]) - 1, "UsersQuota": 5000, "Groups": 3, "GroupsQuota": 300,
        "Policies": 12, "PoliciesQuota": 1500, "Roles": 9, "RolesQuota": 1000,
        "MFADevices": sum(1 for u in data["users"] if u["mfa"]), "MFADevicesInUse": sum(1 for u in data["users"] if u["mfa"]),
        "AccountMFAEnabled": 1 if root["mfa"] else 0,
        "AccountAccessKeysPresent": 1 if root["keys"] else 0,
        "AccountSigningCertificatesPresent": 0, "AccessKeysPerUserQuota": 2,
    }}


def generate_report(handler, region, params):
    with LOCK:
        handler.server.report_calls += 1
        calls = handler.server.report_calls
    # AWS builds the report in the background: the first call starts it.
    if calls == 1:
        return {"State": "STARTED", "Description": "No report exists. Starting a new report generation task"}
    return {"State": "COMPLETE"}


def get_report(handler, region, params):
    if handler.server.report_calls < 2:
        raise AwsError(404, "ReportInProgress", "Report generation in progress. Try again later.")
    now = dt.datetime.now(dt.timezone.utc)
    csv = report_csv(handler.server.data["users"], now)
    return {"Content": csv.encode(), "ReportFormat": "text/csv", "GeneratedTime": now}


def ebs_default(handler, region, params):
    return {"EbsEncryptionByDefault": handler.server.data["ebs"].get(region, False), "SseType": "sse-ebs"}


def list_buckets(handler, region, params):
    opts = handler.server.opts
    names = [(n, r) for n, r, _ in handler.server.data["buckets"]]
    if opts.evil_bucket:
        names.append((opts.evil_bucket, "us-east-1"))
    start = 0
    token = params.get("ContinuationToken")
    if token:
        start = int(base64.b64decode(token).decode())
    size = int(params.get("MaxBuckets", 10000))
    if not 1 <= size <= 10000:
        raise AwsError(400, "InvalidArgument", "max-buckets must be between 1 and 10000")
    chunk = names[start:start + size]
    now = dt.datetime.now(dt.timezone.utc)
    res = {"Buckets": [{"Name": n, "CreationDate": now - dt.timedelta(days=400), "BucketRegion": r,
                        "BucketArn": f"arn:aws:s3:::{n}"} for n, r in chunk],
           "Owner": {"DisplayName": "smithpractice", "ID": hashlib.sha256(opts.account.encode()).hexdigest()}}
    if start + size < len(names):
        res["ContinuationToken"] = base64.b64encode(str(start + size).encode()).decode()
    return res


def bucket_block(handler, region, params):
    found = [b for b in handler.server.data["buckets"] if b[0] == params["Bucket"]]
    if not found:
        raise AwsError(404, "NoSuchBucket", "The specified bucket does not exist")
    name, home, config = found[0]
    if home != region:
        raise AwsError(301, "PermanentRedirect",
                       "The bucket you are attempting to access must be addressed using the specified endpoint.",
                       {"x-amz-bucket-region": home})
    if config is None:
        raise AwsError(404, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
    return {"PublicAccessBlockConfiguration": config}


def account_block(handler, region, params):
    if params.get("AccountId") != handler.server.opts.account:
        raise AwsError(403, "AccessDenied", "Access Denied")
    config = handler.server.data["account_block"]
    if config is None:
        raise AwsError(404, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
    return {"PublicAccessBlockConfiguration": config}


def describe_trails(handler, region, params):
    return {"trailList": handler.server.data["trails"]}


def trail_status(handler, region, params):
    logging = handler.server.data["logging"]
    if params["Name"] not in logging:
        raise AwsError(400, "TrailNotFoundException", f"Unknown trail: {params['Name']} for the user: {handler.server.opts.account}")
    now = dt.datetime.now(dt.timezone.utc)
    return {"IsLogging": logging[params["Name"]], "LatestDeliveryTime": now - dt.timedelta(minutes=5),
            "StartLoggingTime": now - dt.timedelta(days=600)}


HANDLERS = {
    ("sts", "GetCallerIdentity"): caller_identity,
    ("iam", "GetAccountSummary"): account_summary,
    ("iam", "GenerateCredentialReport"): generate_report,
    ("iam", "GetCredentialReport"): get_report,
    ("ec2", "GetEbsEncryptionByDefault"): ebs_default,
    ("s3", "ListBuckets"): list_buckets,
    ("s3", "GetPublicAccessBlock"): bucket_block,
    ("s3control", "GetPublicAccessBlock"): account_block,
    ("cloudtrail", "DescribeTrails"): describe_trails,
    ("cloudtrail", "GetTrailStatus"): trail_status,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--session-token")
    parser.add_argument("--profile", choices=["small", "large"], default="small")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--deny", action="append", default=[])
    parser.add_argument("--throttle-first", action="store_true")
    parser.add_argument("--throttle-all", action="store_true")
    parser.add_argument("--malformed", action="append", default=[])
    parser.add_argument("--evil-bucket")
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Aws)
    server.daemon_threads = True
    server.opts = opts
    server.data = practice(opts.account, now) if opts.profile == "small" else large(
        opts.account, now, opts.users, opts.buckets)
    server.seen = set()
    server.report_calls = 0
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

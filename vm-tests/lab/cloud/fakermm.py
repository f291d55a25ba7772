#!/usr/bin/env python3
"""A local RMM API peer for the RMM inventory tests, over HTTPS on loopback: Datto RMM's API v2
or ConnectWise Automate's REST API (--vendor).

Datto RMM (built from Datto's published API v2 description, the Swagger document each platform
serves at /api/swagger-ui, and its "Rate limits" page):
  POST /auth/oauth/token               the password grant: HTTP Basic `public-client:public`,
                                       form grant_type=password, username = the API key,
                                       password = the API secret key; a bearer token
                                       (expires_in 360000 s); a wrong key or secret answers
                                       400 invalid_grant "Bad credentials"
  GET /api/v2/site/{siteUid}/devices   max (1..250, default 250), page (from 0); the answer is
                                       {"pageDetails": {count, totalCount, prevPageUrl,
                                       nextPageUrl}, "devices": [Device]}; a site of the account
                                       other than --site answers its own devices (an account key
                                       reads every site: isolation is the client's choice of
                                       site); an unknown site 404
  Device: id, uid, siteId, siteUid, siteName, deviceType {category, type}, hostname,
  intIpAddress, extIpAddress, operatingSystem, lastLoggedInUser, domain, cagVersion,
  displayVersion, a64Bit, rebootRequired, online, suspended, deleted, lastSeen, lastReboot,
  lastAuditDate, creationDate (epoch milliseconds), udf, snmpEnabled, deviceClass (device,
  printer, esxihost, …), portalUrl, warrantyDate, antivirus {antivirusProduct,
  antivirusStatus}, patchManagement {patchStatus, patchesApprovedPending, patchesNotApproved,
  patchesInstalled}, softwareStatus, webRemoteUrl, networkProbe, onboardedViaNetworkMonitor.
  Rate limit: 600 read requests per 60 s per account; beyond it 429.

ConnectWise Automate (the REST API as ConnectWise documents it for integrators; field names as
the `pyconnectwise` client's models, generated from the API's own description, spell them):
  POST /cwa/api/v1/apitoken            header ClientId (the integration's GUID, else 403),
                                       JSON {"UserName", "Password"}; {"AccessToken",
                                       "TokenType": "Bearer", "ExpirationDate"}; wrong
                                       credentials 401 {"Message"}; --two-factor answers
                                       {"IsTwoFactorRequired": true} without a token
  GET /cwa/api/v1/computers            page (from 1), pageSize (default 1000), condition (the
                                       one grammar `Client.Id = N`), orderBy; a JSON array,
                                       short or empty past the end; Bearer token and ClientId
  Computer: Id, ComputerName, Client {Id, Name}, Location {Id, Name}, OperatingSystemName,
  OperatingSystemVersion, DomainName, LocalIPAddress, MACAddress, RemoteAgentLastContact,
  LastUserName, Type (Workstation, Server), Status (Online, Offline), SerialNumber,
  IsVirtualMachine, RemoteAgentVersion, DateAdded. IDs are strings, as that description types
them (the appliance reads a number as well). Routes match case-insensitively, as ASP.NET
Web API's do (the pyconnectwise client asks for /cwa/api/v1/Computers).

Scenarios (flags): --profile small (a practice's machines and a second practice's under another
site or client) or large (--count generated); --devices FILE (the practice's machines: JSON list
of {hostname, domain, os, category, online, deleted, device_class}); --expired-token (the
first data request 401, its token gone, so the client must log in again, which then works); --deny (403 on data);
--throttle-first (the first data request 429); --quota N (requests a minute, default Datto's
600); --foreign-next-link (Datto: the first page's next link names another host);
--malformed (the second page is cut off); --hostile (a host name with markup, quotes and a
terminal escape); --ignore-condition (Automate: every client's computers whatever the
condition).

Usage: fakermm.py --vendor datto|automate --port 0 --cert server.pem --key server.key
--user U --secret S [--site SITE] [--client-id GUID] [...] --log FILE; prints "READY <port>".
"""

import argparse
import base64
import datetime as dt
import json
import random
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
HOSTILE = 'FD-<b>"x"</b>\u001b[31m-07'
OTHER_SITE = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
OTHER_CLIENT = 2

PRACTICE = [
    # hostname, domain, os, category, online, deleted, device_class
    ("FRONT-01", "CLINIC", "Microsoft Windows 11 Pro 23H2", "Desktop", True, False, "device"),
    ("FRONT-02", "CLINIC", "Microsoft Windows 11 Pro 23H2", "Desktop", True, False, "device"),
    ("EXAM-01", "CLINIC", "Microsoft Windows 10 Pro 22H2", "Desktop", True, False, "device"),
    ("EXAM-02", "CLINIC", "Microsoft Windows 10 Pro 22H2", "Desktop", False, False, "device"),
    ("EXAM-02", "CLINIC", "Microsoft Windows 11 Pro 23H2", "Desktop", True, False, "device"),
    ("DR-LAPTOP-01", "CLINIC", "Microsoft Windows 11 Pro 23H2", "Laptop", False, False, "device"),
    ("FILESRV", "CLINIC", "Microsoft Windows Server 2022 Standard", "Server", True, False, "device"),
    ("DC01", "CLINIC", "Microsoft Windows Server 2022 Standard", "Server", True, False, "device"),
    ("HOME-LAPTOP", "WORKGROUP", "Microsoft Windows 11 Home 23H2", "Laptop", False, False, "device"),
    ("OLD-XRAY", "CLINIC", "Microsoft Windows 7 Professional", "Desktop", False, True, "device"),
    ("LOBBY-PRINTER", None, None, "Printer", True, False, "printer"),
]

OTHER_PRACTICE = [
    ("OTHER-RECEPTION", "DENTAL", "Microsoft Windows 11 Pro 23H2", "Desktop", True, False, "device"),
    ("OTHER-OPS", "DENTAL", "Microsoft Windows 10 Pro 22H2", "Desktop", True, False, "device"),
]


def epoch_ms(when):
    return int(when.timestamp() * 1000)


def practice_rows(opts):
    if opts.devices:
        with open(opts.devices, encoding="utf-8") as f:
            rows = [(d["hostname"], d.get("domain"), d.get("os"), d.get("category", "Desktop"),
                     d.get("online", True), d.get("deleted", False), d.get("device_class", "device"))
                    for d in json.load(f)]
    elif opts.profile == "large":
        rows = [(f"WS{i:05d}", "CLINIC", "Microsoft Windows 11 Pro 23H2",
                 "Laptop" if i % 3 == 0 else "Desktop", i % 4 != 0, False, "device")
                for i in range(opts.count)]
    else:
        rows = list(PRACTICE)
    if opts.hostile:
        rows.append((HOSTILE, "CLINIC", "Microsoft Windows 11 Pro", "Desktop", True, False, "device"))
    return rows


def datto_device(idx, row, site_uid, site_name, now):
    hostname, domain, os_name, category, online, deleted, device_class = row
    rng = random.Random(f"{site_uid}/{idx}")
    uid = "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                          rng.getrandbits(12), rng.getrandbits(48))
    seen = now - dt.timedelta(minutes=rng.randint(1, 30) if online else rng.randint(60 * 24, 60 * 24 * 20))
    return {
        "id": 100000 + idx, "uid": uid, "siteId": 4711 if site_uid != OTHER_SITE else 4712,
        "siteUid": site_uid, "siteName": site_name,
        "deviceType": {"category": category, "type": category},
        "hostname": hostname, "intIpAddress": f"10.20.{idx // 250}.{idx % 250 + 2}",
        "extIpAddress": "203.0.113.10", "operatingSystem": os_name,
        "lastLoggedInUser": f"{domain or 'LOCAL'}\\user{idx}", "domain": domain,
        "cagVersion": "4.4.2200.2200", "displayVersion": "4.4.2200.2200", "a64Bit": True,
        "rebootRequired": rng.random() < 0.2, "online": online, "suspended": False, "deleted": deleted,
        "lastSeen": epoch_ms(seen), "lastReboot": epoch_ms(seen - dt.timedelta(days=3)),
        "lastAuditDate": epoch_ms(seen - dt.timedelta(hours=6)),
        "creationDate": epoch_ms(now - dt.timedelta(days=400)),
        "udf": {f"udf{n}": None for n in range(1, 31)}, "snmpEnabled": device_class != "device",
        "deviceClass": device_class, "portalUrl": f"https://concord.centrastage.net/csm/device/{uid}",
        "warrantyDate": None,
        "antivirus": {"antivirusProduct": "Datto AV", "antivirusStatus": "RunningAndUpToDate"},
        "patchManagement": {"patchStatus": "FullyPatched", "patchesApprovedPending": 0,
                            "patchesNotApproved": 0, "patchesInstalled": 120},
        "softwareStatus": "Compliant", "webRemoteUrl": "", "networkProbe": False,
        "onboardedViaNetworkMonitor": False,
    }


def automate_computer(idx, row, client_id, client_name, now):
    hostname, domain, os_name, category, online, _deleted, _device_class = row
    rng = random.Random(f"{client_id}/{idx}")
    seen = now - dt.timedelta(minutes=rng.randint(1, 30) if online else rng.randint(60 * 24, 60 * 24 * 20))
    return {
        "Id": str(client_id * 10000 + idx), "ComputerName": hostname,
        "Client": {"Id": str(client_id), "Name": client_name},
        "Location": {"Id": str(client_id * 10), "Name": "Main office"},
        "OperatingSystemName": os_name, "OperatingSystemVersion": "10.0.22631",
        "DomainName": domain, "LocalIPAddress": f"10.30.{idx // 250}.{idx % 250 + 2}",
        "MACAddress": "00-15-5D-%02X-%02X-%02X" % (client_id, idx // 256, idx % 256),
        "RemoteAgentLastContact": seen.strftime("%Y-%m-%dT%H:%M:%S"),
        "LastUserName": f"{domain or 'LOCAL'}\\user{idx}",
        "Type": "Server" if category == "Server" else "Workstation",
        "Status": "Online" if online else "Offline", "SerialNumber": f"SN{client_id:02d}{idx:06d}",
        "IsVirtualMachine": False, "RemoteAgentVersion": "2023.1.0.42",
        "DateAdded": (now - dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


class Window:
    """Requests a minute per account."""

    def __init__(self, limit):
        self.limit, self.start, self.count = limit, time.time(), 0

    def take(self):
        now = time.time()
        with LOCK:
            if now - self.start >= 60:
                self.start, self.count = now, 0
            self.count += 1
            return self.count <= self.limit


class Rmm(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"

    def log_message(self, *args):
        pass

    def record(self, status):
        with LOCK, open(self.server.opts.log, "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "status": status}) + "\n")

    def send(self, status, body, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or []):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.record(status)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    # ---- shared gates for data requests

    def gate(self):
        """Auth, misbehaviour and rate limit of a data request; True when it may proceed."""
        srv, opts = self.server, self.server.opts
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if token not in srv.tokens:
            self.unauthorized("invalid_token", "Invalid access token")
            return False
        if opts.expired_token and not srv.expired_done:
            srv.expired_done = True
            srv.tokens.discard(token)
            self.unauthorized("invalid_token", "Access token expired")
            return False
        if opts.vendor == "automate" and self.headers.get("ClientId") != opts.client_id:
            self.send(403, {"Message": "ClientId header is missing or not registered"})
            return False
        if opts.deny:
            if opts.vendor == "datto":
                self.send(403, {"error": "access_denied", "error_description": "Access is denied"})
            else:
                self.send(403, {"Message": "The user does not have permission to view computers"})
            return False
        if opts.throttle_first and not srv.throttled:
            srv.throttled = True
            self.send(429, {"message": "Too many requests"}, [("Retry-After", "1")])
            return False
        if not srv.window.take():
            self.send(429, {"message": "Rate limit exceeded: 600 read requests per 60 seconds"})
            return False
        return True

    def unauthorized(self, code, text):
        if self.server.opts.vendor == "datto":
            self.send(401, {"error": code, "error_description": text})
        else:
            self.send(401, {"Message": "Authorization has been denied for this request."})

    # ---- routes

    def do_POST(self):
        srv, opts = self.server, self.server.opts
        path = urllib.parse.urlsplit(self.path).path
        body = self.body()
        if opts.vendor == "datto" and path == "/auth/oauth/token":
            expected = "Basic " + base64.b64encode(b"public-client:public").decode()
            if self.headers.get("Authorization") != expected:
                self.send(401, {"error": "unauthorized", "error_description": "Full authentication is required to access this resource"})
                return
            form = urllib.parse.parse_qs(body.decode())
            if (form.get("grant_type") != ["password"] or form.get("username") != [opts.user]
                    or form.get("password") != [opts.secret]):
                self.send(400, {"error": "invalid_grant", "error_description": "Bad credentials"})
                return
            token = secrets.token_urlsafe(32)
            srv.tokens.add(token)
            self.send(200, {"access_token": token, "token_type": "bearer", "expires_in": 359999,
                            "scope": "default", "jti": secrets.token_hex(16)})
            return
        if opts.vendor == "automate" and path.lower() == "/cwa/api/v1/apitoken":
            if self.headers.get("ClientId") != opts.client_id:
                self.send(403, {"Message": "ClientId header is missing or not registered"})
                return
            try:
                login = json.loads(body)
            except ValueError:
                self.send(400, {"Message": "The request is invalid."})
                return
            if login.get("UserName") != opts.user or login.get("Password") != opts.secret:
                self.send(401, {"Message": "Invalid user name or password"})
                return
            if opts.two_factor:
                self.send(200, {"IsTwoFactorRequired": True, "AccessToken": None, "TokenType": None,
                                "ExpirationDate": None})
                return
            token = secrets.token_urlsafe(32)
            srv.tokens.add(token)
            expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
            self.send(200, {"AccessToken": token, "TokenType": "Bearer",
                            "ExpirationDate": expires.isoformat(), "IsTwoFactorRequired": False})
            return
        self.send(404, {"message": "Not found"})

    def do_GET(self):
        opts = self.server.opts
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        segments = parts.path.strip("/").split("/")
        if opts.vendor == "datto" and len(segments) == 5 and segments[:3] == ["api", "v2", "site"] \
                and segments[4] == "devices":
            if self.gate():
                self.datto_devices(segments[3], query)
            return
        if opts.vendor == "automate" and parts.path.lower() == "/cwa/api/v1/computers":
            if self.gate():
                self.automate_computers(query)
            return
        self.send(404, {"message": "Not found"})

    def datto_devices(self, site, query):
        srv, opts = self.server, self.server.opts
        devices = srv.sites.get(site)
        if devices is None:
            self.send(404, {"message": f"Site {site} not found"})
            return
        try:
            size = max(1, min(250, int(query.get("max", ["250"])[0])))
            page = max(0, int(query.get("page", ["0"])[0]))
        except ValueError:
            self.send(400, {"message": "max and page must be numbers"})
            return
        chunk = devices[page * size:(page + 1) * size]
        host = self.headers.get("Host")
        base = f"https://{host}/api/v2/site/{site}/devices"
        nxt = f"{base}?max={size}&page={page + 1}" if (page + 1) * size < len(devices) else None
        if nxt and opts.foreign_next_link and page == 0:
            nxt = f"https://evil.example/api/v2/site/{site}/devices?max={size}&page=1"
        answer = {"pageDetails": {"count": len(chunk), "totalCount": len(devices),
                                  "prevPageUrl": f"{base}?max={size}&page={page - 1}" if page else None,
                                  "nextPageUrl": nxt},
                  "devices": chunk}
        if opts.malformed and page == 1:
            self.send(200, None, raw=json.dumps(answer).encode()[:200])
            return
        self.send(200, answer)

    def automate_computers(self, query):
        srv, opts = self.server, self.server.opts
        condition = query.get("condition", [""])[0].strip()
        computers = srv.computers
        if condition:
            words = condition.split()
            if len(words) != 3 or words[0] != "Client.Id" or words[1] != "=" or not words[2].isdigit():
                self.send(400, {"Message": f"The condition '{condition}' is invalid."})
                return
            if not opts.ignore_condition:
                computers = [c for c in computers if c["Client"]["Id"] == words[2]]
        try:
            size = max(1, int(query.get("pageSize", ["1000"])[0]))
            page = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            self.send(400, {"Message": "page and pageSize must be numbers"})
            return
        chunk = computers[(page - 1) * size:page * size]
        if opts.malformed and page == 2:
            self.send(200, None, raw=json.dumps(chunk).encode()[:200])
            return
        self.send(200, chunk)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendor", choices=["datto", "automate"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--site", default="8a2f3c4d-1b2c-4d5e-8f90-0123456789ab")
    parser.add_argument("--client", type=int, default=17)
    parser.add_argument("--client-id", default="c8b2f1d3-5a6e-4f70-9b1c-2d3e4f5a6b7c")
    parser.add_argument("--profile", choices=["small", "large"], default="small")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--devices")
    parser.add_argument("--expired-token", action="store_true")
    parser.add_argument("--deny", action="store_true")
    parser.add_argument("--throttle-first", action="store_true")
    parser.add_argument("--quota", type=int, default=600)
    parser.add_argument("--foreign-next-link", action="store_true")
    parser.add_argument("--malformed", action="store_true")
    parser.add_argument("--hostile", action="store_true")
    parser.add_argument("--ignore-condition", action="store_true")
    parser.add_argument("--two-factor", action="store_true")
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Rmm)
    server.daemon_threads = True
    server.opts = opts
    rows = practice_rows(opts)
    server.sites = {
        opts.site: [datto_device(i, r, opts.site, "Smith Family Practice", now) for i, r in enumerate(rows)],
        OTHER_SITE: [datto_device(i, r, OTHER_SITE, "Other Dental", now) for i, r in enumerate(OTHER_PRACTICE)],
    }
    # Automate lists every client's computers by ID; the other practice's are interleaved.
    # Automate's computers are machines with its agent; printers are network devices elsewhere.
    ours = [automate_computer(i, r, opts.client, "Smith Family Practice", now)
            for i, r in enumerate(rows) if r[6] == "device"]
    theirs = [automate_computer(i, r, OTHER_CLIENT, "Other Dental", now) for i, r in enumerate(OTHER_PRACTICE)]
    server.computers = sorted(ours + theirs, key=lambda c: int(c["Id"]))
    server.tokens, server.expired_done = set(), False
    server.throttled = False
    server.window = Window(opts.quota)
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

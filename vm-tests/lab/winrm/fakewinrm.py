#!/usr/bin/env python3
"""The lab WinRM peer: a WS-Man/WinRS server at /wsman that simulates Windows hosts from fixtures.

Wire contract: docs/WINDOWS-PROTOCOL.md. Auth: Basic (HTTPS only), Negotiate/Kerberos over HTTPS
(gsskrb5.py, MIT GSS-API with the keytab in KRB5_KTNAME, channel binding checked), Negotiate/NTLM via pyspnego
(one handshake per TCP connection unless --ntlm-any-connection), MS-WSMV sealing required over HTTP,
channel binding (tls-server-end-point, SHA-256 of the listener cert) checked over HTTPS with NTLM at
the level pyspnego's acceptor implements, between Windows' CbtHardeningLevel=Relaxed and Strict: a
matching binding or the all-zero binding is accepted; a wrong binding, or an NTLMv2 response with no
binding AV pair at all (which Relaxed would accept), is refused with 401.

--replay FILE.yml answers the requests with the recorded responses of one pypsrp test recording
(tests/responses/*.yml in pypsrp's sdist), in order, after checking that each request's wsa:Action is
the recorded one (with --replay-skip, recorded pairs are skipped forward to the next one with the
request's action, for clients that send fewer requests); RelatesTo is rewritten to the request's MessageID. No auth is checked in replay mode.

--host-users FILE.json gives hosts local accounts of their own, as LAPS manages them:
{"ADDRESS": [["COMPUTER", "account", "password"], ...]}. Such an account logs in by NTLM only at its
own address (COMPUTER\\account); at any other address it is refused. The file is read again when it
changes. Every NTLM login attempt is logged with the account its AUTHENTICATE message names
(method "ntlm"), accepted or not.

--shell-idle-timeout SECONDS deletes a shell nobody used for that long, as Windows does after its WinRS
IdleTimeout (two hours by default): later requests naming it get the "shell was not found" fault, and
the peer logs {"action": "ShellExpired"}.

--idle-connection-timeout SECONDS closes a keep-alive connection that sent no request for that long, as
HTTP.sys does after its IdleConnectionTimeout (two minutes by default): the client's next request needs a
new connection, and with it a new login.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET

import gsskrb5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ACT_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACT_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACT_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
ACT_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
ACT_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
ACT_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SPNEGO_ENC = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"

BOOTSTRAP = (
    "$ErrorActionPreference = 'Stop'\n"
    "$ProgressPreference = 'SilentlyContinue'\n"
    "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false\n"
    "$osirisPayload = [Console]::In.ReadToEnd()\n"
    "$osirisScript = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($osirisPayload.Trim()))\n"
    "& ([ScriptBlock]::Create($osirisScript))"
)

BUILTIN = {
    "hostname": lambda host: (host["name"] + "\r\n", "", 0),
    "whoami": lambda host: (host["user"].lower() + "\r\n", "", 0),
    "ipconfig": lambda host: (
        "\r\nWindows IP Configuration\r\n\r\n\r\nEthernet adapter Ethernet:\r\n\r\n"
        "   Connection-specific DNS Suffix  . : lab\r\n"
        f"   IPv4 Address. . . . . . . . . . . : {host['addr']}\r\n"
        "   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r\n",
        "",
        0,
    ),
    "ver": lambda host: ("\r\nMicrosoft Windows [Version 10.0.20348.2113]\r\n", "", 0),
}


def not_recognized_term(name):
    return (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again."
    )


class Peer:
    """Shared state: fixtures, per-host state, shells, the log."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.users = load_users(args.users)
        self.fixtures = args.fixtures
        self.hosts = json.load(open(args.hosts)) if args.hosts else {}
        self.host_state = {}
        self.shells = {}
        self.log_file = open(args.log, "a", buffering=1)
        self.pending_ntlm = {}
        self.replay = load_replay(args.replay) if args.replay else None
        self.replay_idx = 0
        self.replay_skip = bool(args.replay_skip)
        self.cert_hash = None
        self.host_users = {}
        self.host_users_mtime = None
        self.ntlm_store = None
        self.store_written = False

    def refresh_host_users(self):
        """Re-reads --host-users when it changed and rewrites the NTLM store pyspnego reads
        (the domain accounts plus every host's own accounts; who may log in where is checked after
        the handshake, in owner_of)."""
        path = self.args.host_users
        if not path:
            return
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        with self.lock:
            if self.store_written and mtime == self.host_users_mtime:
                return
            self.host_users = {}
            if mtime is not None:
                with open(path) as f:
                    self.host_users = {addr: [tuple(u) for u in users] for addr, users in json.load(f).items()}
            self.host_users_mtime = mtime
            lines = [f"{d}:{u}:{p}" for d, u, p in self.users]
            lines += [f"{d}:{u}:{p}" for users in self.host_users.values() for d, u, p in users]
            tmp = self.ntlm_store + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, self.ntlm_store)
            self.store_written = True

    def owner_of(self, domain, user):
        """The address whose own local account DOMAIN\\user is, or None for other accounts."""
        with self.lock:
            for addr, users in self.host_users.items():
                for u_domain, u_user, _ in users:
                    if u_domain.lower() == (domain or "").lower() and u_user.lower() == (user or "").lower():
                        return addr
        return None

    def log(self, entry):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
        with self.lock:
            self.log_file.write(json.dumps(entry) + "\n")

    def profile_for(self, addr):
        name = self.hosts.get(addr, self.args.default_profile)
        return name

    def host(self, addr):
        """Per-address state, created from the profile on first use (caller holds the lock)."""
        if addr not in self.host_state:
            name = self.profile_for(addr)
            prof = {"platform": "windows-server", "states": {}, "sticky": []}
            if name:
                path = os.path.join(self.fixtures, "profiles", name + ".json")
                try:
                    with open(path) as f:
                        prof.update(json.load(f))
                except FileNotFoundError:
                    self.log_file.write(json.dumps({"action": "profile", "host": addr,
                                                    "error": f"profile {path} missing; every runbook starts compliant"}) + "\n")
            self.host_state[addr] = {
                "profile": name,
                "states": dict(prof.get("states", {})),
                "sticky": set(prof.get("sticky", [])),
            }
        return self.host_state[addr]

    def runbook(self, check_id):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", check_id):
            return None
        path = os.path.join(self.fixtures, "runbooks", check_id + ".json")
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            # A broken fixture is that check's error, not the whole batch's.
            return {"states": {}, "fixture_error": f"fixture {path} is unreadable or not JSON: {err}; fix the file"}

    def simulate(self, addr, phase, checks):
        results = []
        with self.lock:
            host = self.host(addr)
            for check in checks:
                check_id = str(check.get("id", ""))
                rb = self.runbook(check_id)
                if rb is None:
                    results.append({"id": check_id, "ok": False, "error": not_recognized_term(check_id)})
                    continue
                if "fixture_error" in rb:
                    results.append({"id": check_id, "ok": False, "error": rb["fixture_error"]})
                    continue
                state = host["states"].get(check_id, "compliant")
                if phase == "detect":
                    answer = rb.get("states", {}).get(state)
                    if answer is None:
                        answer = {"error": f"fixture {check_id} has no state {state}"}
                elif phase in ("remediate", "rollback") and phase in rb:
                    answer = rb[phase]
                    if "to" in answer and check_id not in host["sticky"]:
                        host["states"][check_id] = answer["to"]
                else:
                    answer = {"error": f"fixture {check_id} has no {phase} step"}
                if "error" in answer:
                    results.append({"id": check_id, "ok": False, "error": answer["error"]})
                else:
                    results.append({"id": check_id, "ok": True, "output": answer.get("output")})
        return {"osiris": 1, "phase": phase, "results": results}


def load_users(path):
    users = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            domain, user, password = line.split(":", 2)
            users.append((domain, user, password))
    return users


def load_replay(path):
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f)
    return data.get("messages", data) if isinstance(data, dict) else data


def ntlm_authenticate_names(token):
    """(domain, user) named by an NTLM AUTHENTICATE message (raw or inside SPNEGO), else None."""
    start = token.find(b"NTLMSSP\x00\x03\x00\x00\x00")
    if start < 0:
        return None
    msg = token[start:]
    try:
        flags = struct.unpack_from("<I", msg, 60)[0]

        def field(at):
            length, _, offset = struct.unpack_from("<HHI", msg, at)
            raw = msg[offset:offset + length]
            return raw.decode("utf-16-le" if flags & 1 else "latin-1", errors="replace")

        return field(28), field(36)
    except struct.error:
        return None


def negotiate_token(header):
    try:
        return base64.b64decode(header.partition(" ")[2].strip())
    except Exception:
        return b""


def kerberos_user(peer, principal):
    """The account a Kerberos principal (`name@REALM`) is: a domain account of the users file whose
    domain is the realm's first label."""
    name, _, realm = principal.partition("@")
    for u_domain, u_user, _ in peer.users:
        if u_domain and u_user.lower() == name.lower() and u_domain.lower() == realm.split(".")[0].lower():
            return f"{u_domain}\\{u_user}"
    return None


def basic_ok(peer, header):
    try:
        raw = base64.b64decode(header.split(" ", 1)[1]).decode("utf-8")
        name, password = raw.split(":", 1)
    except Exception:
        return None
    domain = ""
    if "\\" in name:
        domain, name = name.split("\\", 1)
    elif "@" in name:
        name, domain = name.split("@", 1)
    for u_domain, u_user, u_password in peer.users:
        if u_user.lower() == name.lower() and u_password == password:
            if not u_domain or not domain or u_domain.lower() == domain.split(".")[0].lower():
                return f"{u_domain or domain}\\{u_user}" if (u_domain or domain) else u_user
    return None


def soap(action, relates_to, body_xml, extra_header=""):
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:x="{NS["x"]}" '
        f'xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" xmlns:p="{NS["p"]}">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo>{extra_header}</s:Header>"
        f"<s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode("utf-8")


def fault(relates_to, code, subcode, reason, wsman_code, detail):
    body = (
        f"<s:Fault><s:Code><s:Value>s:{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{wsman_code}" Machine="localhost"><f:Message>{detail}</f:Message></f:WSManFault>'
        "</s:Detail></s:Fault>"
    )
    return soap("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


def xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def decode_command(command, args):
    """Returns (command line, decoded script or None)."""
    line = " ".join([command] + args)
    tokens = line.split()
    for i, tok in enumerate(tokens):
        if tok.lower() in ("-encodedcommand", "-enc", "-e", "-ec") and i + 1 < len(tokens):
            try:
                return line, base64.b64decode(tokens[i + 1]).decode("utf-16-le")
            except Exception:
                return line, None
    return line, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus the client's delayed ACK
        # add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ctx = None
        self.user = None
        self.sealed = False

    def log_message(self, fmt, *args):
        pass

    @property
    def peer(self):
        return self.server.peer

    @property
    def https(self):
        return isinstance(self.connection, ssl.SSLSocket)

    def local_addr(self):
        return self.connection.getsockname()[0]

    def client(self):
        return f"{self.client_address[0]}:{self.client_address[1]}"

    def reply(self, status, body=b"", content_type="application/soap+xml;charset=UTF-8", headers=None):
        self.send_response(status)
        # The AP-REP of a Kerberos login goes with the answer to the request that carried the AP-REQ.
        auth_reply = getattr(self, "auth_reply", None)
        if auth_reply is not None:
            self.auth_reply = None
            self.send_header("WWW-Authenticate", auth_reply)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def challenge(self, token=None):
        headers = {}
        if token is not None:
            headers["WWW-Authenticate"] = token
        else:
            headers["WWW-Authenticate"] = "Negotiate"
        if self.https and token is None:
            # http.server can only send one header per name through a dict; add Basic separately.
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Negotiate")
            self.send_header("WWW-Authenticate", 'Basic realm="WSMAN"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.reply(401, headers=headers)

    def do_GET(self):
        self.reply(405, headers={"Allow": "POST"})

    def do_POST(self):
        try:
            self.handle_post()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:
            self.peer.log({"client": self.client(), "host": self.local_addr(), "action": "error",
                           "error": repr(err), "trace": traceback.format_exc()})
            try:
                self.reply(500, fault("", "Receiver", "w:InternalError", "Internal error", 1,
                                      xml_escape(repr(err))))
            except Exception:
                self.close_connection = True

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 64 * 1024 * 1024:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def handle_post(self):
        body = self.read_body()
        if self.path.split("?")[0].lower() != "/wsman":
            self.reply(404)
            return
        if self.peer.replay is not None:
            self.handle_replay(body)
            return
        auth = self.headers.get("Authorization", "")
        scheme = auth.split(" ", 1)[0].lower() if auth else ""
        if scheme == "basic":
            if not self.https:
                self.peer.log({"client": self.client(), "host": self.local_addr(), "action": "auth",
                               "error": "Basic auth refused over HTTP (AllowUnencrypted=false)"})
                self.challenge()
                return
            user = basic_ok(self.peer, auth)
            if user is None:
                self.peer.log({"client": self.client(), "host": self.local_addr(), "action": "auth",
                               "error": "Basic auth failed: wrong user or password"})
                self.challenge()
                return
            self.user = user
            self.sealed = False
        elif scheme == "negotiate" and gsskrb5.is_kerberos(negotiate_token(auth)):
            if not self.kerberos_step(negotiate_token(auth)):
                return
        elif scheme in ("negotiate", "ntlm"):
            if not self.ntlm_step(auth):
                return
        elif self.user is None:
            self.challenge()
            return
        if not body:
            self.reply(200)
            return
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/encrypted"):
            if self.ctx is None or not self.ctx.complete:
                self.reply(400)
                return
            body = self.unseal(body)
            self.sealed = True
        elif not self.https:
            self.peer.log({"client": self.client(), "host": self.local_addr(), "user": self.user,
                           "action": "refused", "error": "plaintext body over HTTP after auth"})
            self.reply(400)
            return
        response, status = self.dispatch(body)
        if self.sealed:
            sealed = self.seal(response)
            self.reply(status, sealed,
                       content_type=f'multipart/encrypted;protocol="{SPNEGO_ENC}";boundary="Encrypted Boundary"')
        else:
            self.reply(status, response)

    def kerberos_step(self, token):
        """Kerberos as HTTP.sys does it over HTTPS: the AP-REQ authenticates this connection, its
        channel binding must name this listener's certificate, and the answer carries the AP-REP."""
        base = {"client": self.client(), "host": self.local_addr(), "action": "auth", "method": "kerberos"}
        if not os.environ.get("KRB5_KTNAME"):
            self.peer.log({**base, "error": "Kerberos offered, but this peer has no keytab (KRB5_KTNAME)"})
            self.challenge()
            return False
        if not self.https:
            self.peer.log({**base, "error": "Kerberos over HTTP (unsealed) is not served"})
            self.challenge()
            return False
        try:
            principal, ap_rep = gsskrb5.accept(token, self.peer.cert_hash)
        except gsskrb5.KerberosError as err:
            self.peer.log({**base, "error": f"Kerberos authentication failed: {err}"})
            self.user = None
            self.challenge()
            return False
        user = kerberos_user(self.peer, principal)
        if user is None:
            self.peer.log({**base, "principal": principal, "error": "principal is not an account of this host"})
            self.user = None
            self.challenge()
            return False
        self.peer.log({**base, "principal": principal, "user": user})
        self.user = user
        self.ctx = None
        self.sealed = False
        self.auth_reply = "Negotiate " + base64.b64encode(ap_rep).decode()
        return True

    def ntlm_step(self, auth):
        import spnego
        from spnego.channel_bindings import GssChannelBindings

        scheme, _, token_b64 = auth.partition(" ")
        try:
            token = base64.b64decode(token_b64.strip())
        except Exception:
            self.reply(400)
            return False
        is_type1 = token.startswith(b"NTLMSSP\x00\x01") or (not token.startswith(b"NTLMSSP") and self.ctx is None)
        if is_type1 or self.ctx is None or self.ctx.complete:
            if not is_type1 and self.peer.args.ntlm_any_connection:
                with self.peer.lock:
                    pending = list(self.peer.pending_ntlm.items())
                if pending:
                    key, ctx = pending[-1]
                    with self.peer.lock:
                        self.peer.pending_ntlm.pop(key, None)
                    self.ctx = ctx
                    self.peer.log({"client": self.client(), "host": self.local_addr(), "action": "auth",
                                   "note": "NOTE: NTLM Type 3 completed on another connection"})
            if is_type1 or self.ctx is None:
                cbt = None
                if self.https and self.peer.cert_hash:
                    cbt = GssChannelBindings(application_data=b"tls-server-end-point:" + self.peer.cert_hash)
                protocol = "ntlm" if token.startswith(b"NTLMSSP") else "negotiate"
                self.ctx = spnego.server(protocol=protocol, channel_bindings=cbt)
                self.ntlm_scheme = scheme
        names = ntlm_authenticate_names(token)
        attempt = None
        if names is not None:
            self.peer.refresh_host_users()
            attempt = {"client": self.client(), "host": self.local_addr(), "action": "auth", "method": "ntlm",
                       "https": self.https, "account": f"{names[0]}\\{names[1]}" if names[0] else names[1]}
        try:
            out = self.ctx.step(token)
        except Exception as err:
            self.peer.log({**(attempt or {"client": self.client(), "host": self.local_addr(), "action": "auth"}),
                           "error": f"NTLM authentication failed: {err}"})
            self.ctx = None
            self.user = None
            self.challenge()
            return False
        if attempt is not None:
            owner = self.peer.owner_of(*names)
            if owner is not None and owner != self.local_addr():
                self.peer.log({**attempt, "error": f"a local account of the host at {owner}, not of this one"})
                self.ctx = None
                self.user = None
                self.challenge()
                return False
            self.peer.log({**attempt, "user": self.ctx.client_principal})
        if not self.ctx.complete:
            if self.peer.args.ntlm_any_connection:
                with self.peer.lock:
                    self.peer.pending_ntlm[self.client()] = self.ctx
            self.reply(401, headers={"WWW-Authenticate": f"{scheme} {base64.b64encode(out or b'').decode()}"})
            return False
        self.user = self.ctx.client_principal
        return True

    def unseal(self, body):
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        message = b""
        for i in range(0, len(parts) - 1, 2):
            header, payload = parts[i].strip(), parts[i + 1]
            expected = int(header.split(b"Length=")[1])
            if payload.endswith(BOUNDARY + b"--\r\n"):
                payload = payload[: -len(BOUNDARY + b"--\r\n")]
            payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"")
            sig_len = struct.unpack("<i", payload[:4])[0]
            data = self.ctx.unwrap_winrm(payload[4:4 + sig_len], payload[4 + sig_len:])
            if len(data) != expected:
                raise ValueError("sealed message length does not match OriginalContent")
            message += data
        return message

    def seal(self, message):
        wrapped = self.ctx.wrap_winrm(message)
        stream = struct.pack("<i", len(wrapped.header)) + wrapped.header + wrapped.data
        return (
            BOUNDARY + b"\r\n"
            + f"\tContent-Type: {SPNEGO_ENC}\r\n".encode()
            + f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message)}\r\n".encode()
            + BOUNDARY + b"\r\n"
            + b"\tContent-Type: application/octet-stream\r\n" + stream
            + BOUNDARY + b"--\r\n"
        )

    def dispatch(self, body):
        peer = self.peer
        try:
            root = ET.fromstring(body)
        except ET.ParseError as err:
            return fault("", "Sender", "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.", 2150858817, xml_escape(str(err))), 400
        header = root.find("s:Header", NS)
        body_el = root.find("s:Body", NS)
        if header is None or body_el is None:
            return fault("", "Sender", "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.", 2150858817, "missing Header or Body"), 400
        action = (header.findtext("a:Action", "", NS) or "").strip()
        message_id = (header.findtext("a:MessageID", "", NS) or "").strip()
        shell_id = None
        for sel in header.findall("w:SelectorSet/w:Selector", NS):
            if sel.get("Name") == "ShellId":
                shell_id = (sel.text or "").strip()
        entry = {"client": self.client(), "host": self.local_addr(), "user": self.user,
                 "action": action.rsplit("/", 1)[-1], "shell_id": shell_id}
        addr = self.local_addr()

        if action == ACT_CREATE:
            shell_id = str(uuid.uuid4()).upper()
            with peer.lock:
                peer.shells[shell_id] = {"addr": addr, "commands": {}, "used": time.monotonic()}
            entry["shell_id"] = shell_id
            peer.log(entry)
            host_url = f"http{'s' if self.https else ''}://{addr}:{self.connection.getsockname()[1]}/wsman"
            res = (
                f"<x:ResourceCreated><a:Address>{host_url}</a:Address><a:ReferenceParameters>"
                f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet>"
                f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
                "</a:ReferenceParameters></x:ResourceCreated>"
                f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{shell_id}</rsp:ShellId>'
                f"<rsp:ResourceUri>{SHELL_URI}</rsp:ResourceUri><rsp:Owner>{xml_escape(self.user or '')}</rsp:Owner>"
                f"<rsp:ClientIP>{self.client_address[0]}</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
                "<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
                "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
                "</rsp:Shell>"
            )
            return soap("http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", message_id, res), 200

        if action not in (ACT_DELETE, ACT_COMMAND, ACT_SEND, ACT_RECEIVE, ACT_SIGNAL):
            entry["error"] = "ActionNotSupported"
            peer.log(entry)
            return fault(message_id, "Sender", "a:ActionNotSupported",
                         "The action is not supported by the service.", 2150858792,
                         f"The WS-Management service cannot process the request because the action {xml_escape(action)} is not supported."), 500

        expired = False
        with peer.lock:
            shell = peer.shells.get(shell_id)
            idle = peer.args.shell_idle_timeout
            if shell is not None and idle is not None and time.monotonic() - shell["used"] > idle:
                peer.shells.pop(shell_id, None)
                shell, expired = None, True
            if shell is not None:
                shell["used"] = time.monotonic()
        if expired:
            peer.log({"client": entry["client"], "host": addr, "action": "ShellExpired", "shell_id": shell_id})
        if shell is None:
            entry["error"] = "InvalidSelectors"
            peer.log(entry)
            return fault(message_id, "Sender", "w:InvalidSelectors",
                         "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
                         2150858843, "The request for the Windows Remote Shell with ShellId "
                         f"{xml_escape(shell_id or '')} failed because the shell was not found on the server. "
                         "Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "
                         "Provide the correct ShellId or create a new shell and retry the operation."), 500

        if action == ACT_DELETE:
            with peer.lock:
                peer.shells.pop(shell_id, None)
            peer.log(entry)
            return soap("http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", message_id, ""), 200

        if action == ACT_COMMAND:
            cmd_el = body_el.find("rsp:CommandLine", NS)
            command = (cmd_el.findtext("rsp:Command", "", NS) if cmd_el is not None else "") or ""
            args = [a.text or "" for a in (cmd_el.findall("rsp:Arguments", NS) if cmd_el is not None else [])]
            command = command.strip().strip('"') if command.strip().startswith('"') else command.strip()
            command_id = str(uuid.uuid4()).upper()
            line, encoded = decode_command(command, args)
            cmd = {"line": line, "encoded": encoded, "stdin": b"", "stdin_done": False,
                   "stdout": b"", "stderr": b"", "rc": None, "sent": False}
            entry.update({"command_id": command_id, "command_line": line})
            if encoded is not None:
                entry["encoded_script"] = encoded
            cmd["bootstrap"] = encoded is not None and encoded.replace("\r\n", "\n").strip() == BOOTSTRAP
            if not cmd["bootstrap"]:
                self.run_plain(cmd, addr)
            with peer.lock:
                shell["commands"][command_id] = cmd
            peer.log(entry)
            res = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
            return soap(ACT_COMMAND + "Response", message_id, res), 200

        if action == ACT_SEND:
            for stream in body_el.findall("rsp:Send/rsp:Stream", NS):
                command_id = stream.get("CommandId")
                with peer.lock:
                    cmd = shell["commands"].get(command_id)
                if cmd is None:
                    continue
                cmd["stdin"] += base64.b64decode(stream.text or "")
                if stream.get("End", "").lower() == "true" and not cmd["stdin_done"]:
                    cmd["stdin_done"] = True
                    if cmd["bootstrap"]:
                        self.run_batch(cmd, addr, entry)
                entry["command_id"] = command_id
            peer.log(entry)
            return soap(ACT_SEND + "Response", message_id, "<rsp:SendResponse/>"), 200

        if action == ACT_SIGNAL:
            sig = body_el.find("rsp:Signal", NS)
            command_id = sig.get("CommandId") if sig is not None else None
            entry.update({"command_id": command_id, "signal": (sig.findtext("rsp:Code", "", NS) if sig is not None else "")})
            with peer.lock:
                cmd = shell["commands"].get(command_id)
                if cmd is not None and cmd["rc"] is None:
                    cmd["rc"] = -1073741510
            peer.log(entry)
            return soap(ACT_SIGNAL + "Response", message_id, "<rsp:SignalResponse/>"), 200

        # Receive.
        desired = body_el.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = desired.get("CommandId") if desired is not None else None
        entry["command_id"] = command_id
        with peer.lock:
            cmd = shell["commands"].get(command_id)
        peer.log(entry)
        if cmd is None:
            return fault(message_id, "Sender", "w:InvalidSelectors", "The request contained invalid selectors for the resource.", 2150858843, "unknown CommandId"), 500
        if cmd["rc"] is None:
            res = (f'<rsp:ReceiveResponse><rsp:CommandState CommandId="{command_id}" State="{STATE_RUNNING}">'
                   "</rsp:CommandState></rsp:ReceiveResponse>")
            time.sleep(0.05)
            return soap(ACT_RECEIVE + "Response", message_id, res), 200
        out = []
        for name in ("stdout", "stderr"):
            data = cmd[name]
            if data and not cmd["sent"]:
                for i in range(0, len(data), 64 * 1024):
                    chunk = base64.b64encode(data[i:i + 64 * 1024]).decode()
                    out.append(f'<rsp:Stream Name="{name}" CommandId="{command_id}">{chunk}</rsp:Stream>')
            out.append(f'<rsp:Stream Name="{name}" CommandId="{command_id}" End="true"></rsp:Stream>')
        cmd["sent"] = True
        res = ("<rsp:ReceiveResponse>" + "".join(out)
               + f'<rsp:CommandState CommandId="{command_id}" State="{STATE_DONE}">'
               + f"<rsp:ExitCode>{cmd['rc']}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>")
        return soap(ACT_RECEIVE + "Response", message_id, res), 200

    def run_plain(self, cmd, addr):
        line = cmd["encoded"] if cmd["encoded"] is not None else cmd["line"]
        word = line.strip().split()[0] if line.strip() else ""
        host = {"name": hostname_for(self.peer, addr), "addr": addr, "user": self.user or ""}
        if word.lower() == "echo":
            cmd["stdout"], cmd["rc"] = (line.strip()[5:] + "\r\n").encode(), 0
        elif word.lower() in BUILTIN:
            stdout, stderr, rc = BUILTIN[word.lower()](host)
            cmd["stdout"], cmd["stderr"], cmd["rc"] = stdout.encode(), stderr.encode(), rc
        else:
            cmd["stderr"] = (f"'{word}' is not recognized as an internal or external command,\r\n"
                             "operable program or batch file.\r\n").encode()
            cmd["rc"] = 1

    def run_batch(self, cmd, addr, entry):
        try:
            script = base64.b64decode(cmd["stdin"].strip()).decode("utf-8")
        except Exception:
            cmd["stderr"] = b"Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string\"\r\n"
            cmd["rc"] = 1
            return
        entry["script"] = script
        match = re.search(r"^\$OsirisInput = .*FromBase64String\('([A-Za-z0-9+/=]*)'\)", script, re.M)
        if not match:
            entry["error"] = "script has no $OsirisInput line"
            cmd["stderr"] = b"The script is not an osiris powershell batch.\r\n"
            cmd["rc"] = 1
            return
        try:
            osiris_input = json.loads(base64.b64decode(match.group(1)).decode("utf-8"))
            phase = osiris_input["phase"]
            checks = osiris_input["checks"]
        except Exception as err:
            entry["error"] = f"bad $OsirisInput: {err}"
            cmd["stderr"] = f"ConvertFrom-Json : Invalid JSON primitive: {err}\r\n".encode()
            cmd["rc"] = 1
            return
        entry["phase"] = phase
        entry["check_ids"] = [str(c.get("id", "")) for c in checks]
        doc = self.peer.simulate(addr, phase, checks)
        cmd["stdout"] = (json.dumps(doc, separators=(",", ":")) + "\r\n").encode("utf-8")
        cmd["rc"] = 0

    def handle_replay(self, body):
        """Answers with the next recorded response of the pypsrp recording, in order."""
        peer = self.peer
        with peer.lock:
            idx = peer.replay_idx
            peer.replay_idx += 1
        if idx >= len(peer.replay):
            self.reply(500, fault("", "Receiver", "w:InternalError", "replay exhausted", 1, "no more recorded responses"))
            return
        recorded = peer.replay[idx]
        response = recorded.get("response", "")
        want = re.search(r"<[A-Za-z]*:?Action[^>]*>([^<]*)<", recorded.get("request", ""))
        got = re.search(r"<[A-Za-z]*:?Action[^>]*>([^<]*)<", body.decode("utf-8", "replace"))
        want_action = want.group(1).strip() if want else ""
        got_action = got.group(1).strip() if got else ""
        if want_action != got_action and peer.replay_skip:
            # --replay-skip: a client that makes fewer requests than the recorded one (e.g. one Send
            # instead of two, no Signal before Delete) gets the next recorded answer to its action.
            skipped = None
            with peer.lock:
                for later in range(idx + 1, len(peer.replay)):
                    found = re.search(r"<[A-Za-z]*:?Action[^>]*>([^<]*)<", peer.replay[later].get("request", ""))
                    if found and found.group(1).strip() == got_action:
                        skipped = list(range(idx, later))
                        idx = later
                        peer.replay_idx = later + 1
                        recorded = peer.replay[idx]
                        response = recorded.get("response", "")
                        want_action = got_action
                        break
            if skipped is not None:
                # Logged outside the lock: peer.log takes it too.
                peer.log({"client": self.client(), "host": self.local_addr(), "action": "replay", "skipped": skipped})
        if want_action != got_action:
            peer.log({"client": self.client(), "host": self.local_addr(), "action": "replay", "index": idx,
                      "error": f"request {idx} has action {got_action!r}, the recording has {want_action!r}"})
            self.reply(500, fault("", "Sender", "a:ActionNotSupported", "replay mismatch", 2150858792,
                                  xml_escape(f"expected action {want_action}, got {got_action}")))
            return
        # The recording's RelatesTo is the recorded request's MessageID; rewrite it to this request's.
        try:
            message_id = ET.fromstring(body).findtext("s:Header/a:MessageID", "", NS)
            response = re.sub(r"(<a:RelatesTo>)[^<]*(</a:RelatesTo>)", lambda m: m.group(1) + message_id + m.group(2), response)
        except ET.ParseError:
            pass
        peer.log({"client": self.client(), "host": self.local_addr(), "action": "replay", "index": idx,
                  "replayed": got_action.rsplit("/", 1)[-1]})
        self.reply(200, response.encode("utf-8"))


def hostname_for(peer, addr):
    names = list(peer.hosts)
    if addr in peer.hosts:
        return f"WIN{names.index(addr) + 1}"
    return "WIN-LOCAL"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--http-port", type=int, default=-1)
    parser.add_argument("--https-port", type=int, default=-1)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--users", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--hosts")
    parser.add_argument("--host-users", help="JSON: each address's own local accounts (LAPS)")
    parser.add_argument("--log", required=True)
    parser.add_argument("--default-profile")
    parser.add_argument("--ntlm-any-connection", action="store_true")
    parser.add_argument("--shell-idle-timeout", type=float, help="seconds a shell may sit unused before the peer deletes it")
    parser.add_argument("--idle-connection-timeout", type=float,
                        help="seconds a keep-alive connection may wait for its next request before the peer closes it")
    parser.add_argument("--replay")
    parser.add_argument("--replay-skip", action="store_true",
                        help="in --replay, answer a request with the next recorded response to the same action, skipping others")
    args = parser.parse_args()
    if args.https_port >= 0 and not (args.cert and args.key):
        parser.error("--https-port needs --cert and --key")
    peer = Peer(args)
    # StreamRequestHandler applies it to the socket: a connection that sends nothing for this long
    # (between requests, or stalled within one) is closed.
    Handler.timeout = args.idle_connection_timeout
    if args.host_users:
        # Beside the users file, private like it.
        peer.ntlm_store = os.path.abspath(args.users) + ".ntlm"
        peer.refresh_host_users()
        os.environ["NTLM_USER_FILE"] = peer.ntlm_store
    else:
        os.environ["NTLM_USER_FILE"] = os.path.abspath(args.users)
    if args.ntlm_any_connection:
        peer.log({"action": "start", "note": "NOTE: --ntlm-any-connection: NTLM handshakes may span TCP connections"})
    servers = []
    http_port = https_port = 0
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    Server.address_family = family
    if args.http_port >= 0:
        srv = Server((args.listen, args.http_port), Handler)
        srv.peer = peer
        http_port = srv.server_address[1]
        servers.append(srv)
    if args.https_port >= 0:
        srv = Server((args.listen, args.https_port), Handler)
        srv.peer = peer
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        srv.socket = tls.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        with open(args.cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        peer.cert_hash = hashlib.sha256(der).digest()
        https_port = srv.server_address[1]
        servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write(f"READY http={http_port} https={https_port}\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

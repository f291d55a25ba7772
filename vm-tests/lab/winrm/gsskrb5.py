"""Kerberos acceptor for the lab WinRM peer: MIT's GSS-API (libgssapi_krb5) through ctypes.

The peer's service keys come from the keytab named by KRB5_KTNAME (the Samba DC exports it). One
`accept(token, cert_hash)` call takes the client's AP-REQ (a raw RFC 4121 token or SPNEGO),
checks it with the keytab and, when `cert_hash` is given, checks the RFC 5929
tls-server-end-point channel binding; it returns the client principal and the AP-REP the client
needs for mutual authentication. PyPI's `gssapi` ships no Linux wheels, hence ctypes.
"""

import ctypes
import ctypes.util

GSS_S_COMPLETE = 0
GSS_S_CONTINUE_NEEDED = 1
GSS_C_GSS_CODE = 1
GSS_C_MECH_CODE = 2
GSS_C_AF_UNSPEC = 0

# The krb5 mechanism OID (1.2.840.113554.1.2.2) as it appears inside tokens.
KRB5_OID_DER = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"


class _Buffer(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("value", ctypes.c_void_p)]


class _ChannelBindings(ctypes.Structure):
    _fields_ = [
        ("initiator_addrtype", ctypes.c_uint32),
        ("initiator_address", _Buffer),
        ("acceptor_addrtype", ctypes.c_uint32),
        ("acceptor_address", _Buffer),
        ("application_data", _Buffer),
    ]


_lib = None


def _gss():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("gssapi_krb5") or "libgssapi_krb5.so.2"
        lib = ctypes.CDLL(name)
        u32p = ctypes.POINTER(ctypes.c_uint32)
        vp = ctypes.c_void_p
        vpp = ctypes.POINTER(ctypes.c_void_p)
        bufp = ctypes.POINTER(_Buffer)
        lib.gss_accept_sec_context.argtypes = [
            u32p, vpp, vp, bufp, ctypes.POINTER(_ChannelBindings), vpp, vpp, bufp, u32p, u32p, vpp]
        lib.gss_accept_sec_context.restype = ctypes.c_uint32
        lib.gss_display_name.argtypes = [u32p, vp, bufp, vpp]
        lib.gss_display_name.restype = ctypes.c_uint32
        lib.gss_release_buffer.argtypes = [u32p, bufp]
        lib.gss_release_name.argtypes = [u32p, vpp]
        lib.gss_delete_sec_context.argtypes = [u32p, vpp, bufp]
        lib.gss_display_status.argtypes = [u32p, ctypes.c_uint32, ctypes.c_int, vp, u32p, bufp]
        lib.gss_display_status.restype = ctypes.c_uint32
        _lib = lib
    return _lib


def is_kerberos(token):
    """Whether a Negotiate token carries the krb5 mechanism (raw, or offered inside SPNEGO)."""
    return not token.startswith(b"NTLMSSP") and KRB5_OID_DER in token[:128]


def _status_text(major, minor):
    lib = _gss()
    parts = []
    for code, kind in ((major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)):
        ctx = ctypes.c_uint32(0)
        while True:
            m = ctypes.c_uint32(0)
            buf = _Buffer()
            lib.gss_display_status(ctypes.byref(m), code, kind, None, ctypes.byref(ctx), ctypes.byref(buf))
            if buf.length:
                parts.append(ctypes.string_at(buf.value, buf.length).decode(errors="replace"))
            lib.gss_release_buffer(ctypes.byref(m), ctypes.byref(buf))
            if ctx.value == 0:
                break
    return "; ".join(p for p in parts if p)


class KerberosError(Exception):
    pass


def accept(token, cert_hash=None):
    """Accepts one AP-REQ; returns (client principal, AP-REP bytes) or raises KerberosError."""
    lib = _gss()
    minor = ctypes.c_uint32(0)
    ctx = ctypes.c_void_p(None)
    src_name = ctypes.c_void_p(None)
    out = _Buffer()
    flags = ctypes.c_uint32(0)
    token_buf = ctypes.create_string_buffer(token, len(token))
    inp = _Buffer(len(token), ctypes.cast(token_buf, ctypes.c_void_p))
    bindings = None
    keep = []
    if cert_hash is not None:
        data = b"tls-server-end-point:" + cert_hash
        data_buf = ctypes.create_string_buffer(data, len(data))
        keep.append(data_buf)
        bindings = _ChannelBindings()
        bindings.initiator_addrtype = GSS_C_AF_UNSPEC
        bindings.acceptor_addrtype = GSS_C_AF_UNSPEC
        bindings.application_data = _Buffer(len(data), ctypes.cast(data_buf, ctypes.c_void_p))
    major = lib.gss_accept_sec_context(
        ctypes.byref(minor), ctypes.byref(ctx), None, ctypes.byref(inp),
        ctypes.byref(bindings) if bindings is not None else None,
        ctypes.byref(src_name), None, ctypes.byref(out), ctypes.byref(flags), None, None)
    try:
        if major != GSS_S_COMPLETE:
            # A raw krb5 AP-REQ completes in one step; anything else is refused.
            raise KerberosError(_status_text(major, minor.value) or f"GSS major status {major:#x}")
        reply = ctypes.string_at(out.value, out.length) if out.length else b""
        name_buf = _Buffer()
        m = ctypes.c_uint32(0)
        if lib.gss_display_name(ctypes.byref(m), src_name, ctypes.byref(name_buf), None) != GSS_S_COMPLETE:
            raise KerberosError("cannot read the client principal")
        principal = ctypes.string_at(name_buf.value, name_buf.length).decode()
        lib.gss_release_buffer(ctypes.byref(m), ctypes.byref(name_buf))
        return principal, reply
    finally:
        m = ctypes.c_uint32(0)
        lib.gss_release_buffer(ctypes.byref(m), ctypes.byref(out))
        if src_name.value:
            lib.gss_release_name(ctypes.byref(m), ctypes.byref(src_name))
        if ctx.value:
            lib.gss_delete_sec_context(ctypes.byref(m), ctypes.byref(ctx), None)

"""An independent agent for the cross-check: grpcio with stubs generated from agent.proto.

Enrolls with a one-time token (a fresh P-256 key and PKCS#10 request, an Ed25519 device key,
no client certificate), then opens Connect with the issued certificate, sends Hello and one
check result signed over the canonical signing bytes (built here from docs/AGENT-PROTOCOL.md,
not by the Rust code) and waits for its acknowledgement. Prints one JSON object.

Usage: agent_client.py HOST:PORT CA_PEM_FILE TOKEN   (the stubs must be on PYTHONPATH)
"""

import json
import os
import queue
import struct
import sys

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from osiris.agent.v1 import agent_pb2, agent_pb2_grpc

# The name the gateway's certificate carries: the toy gateway's, or the real gateway's
# (`agent-gateway.osiris.invalid`, agent_proto::GATEWAY_TLS_NAME) when the caller says so.
SERVER_NAME = os.environ.get("OSIRIS_GATEWAY_NAME", "localhost")
MAX_MESSAGE_BYTES = 256 * 1024
DOMAIN = b"osiris.agent.v1.CheckResult\x00"
WAIT_SECONDS = 10


def channel_options():
    return [
        ("grpc.ssl_target_name_override", SERVER_NAME),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]


def put_str(out, text):
    data = text.encode("utf-8")
    out += struct.pack(">I", len(data)) + data


def signing_bytes(result):
    out = bytearray(DOMAIN)
    out += struct.pack(">Q", result.seq)
    put_str(out, result.check_id)
    out += struct.pack(">i", result.status)
    out += struct.pack(">q", result.observed_at_unix_ms)
    put_str(out, result.catalog_version)
    facts = sorted(result.facts.items(), key=lambda item: item[0].encode("utf-8"))
    out += struct.pack(">I", len(facts))
    for key, value in facts:
        put_str(out, key)
        put_str(out, value)
    return bytes(out)


def main():
    address, ca_file, token = sys.argv[1:4]
    with open(ca_file, "rb") as file:
        ca_pem = file.read()

    tls_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python-agent")]))
        .sign(tls_key, hashes.SHA256())
    )
    device_key = ed25519.Ed25519PrivateKey.generate()
    device_public = device_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )

    # Enroll without a client certificate.
    anonymous = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(address, anonymous, options=channel_options()) as channel:
        enrolled = agent_pb2_grpc.AgentGatewayStub(channel).Enroll(
            agent_pb2.EnrollRequest(
                token=token,
                csr_der=csr.public_bytes(serialization.Encoding.DER),
                device_public_key=device_public,
                device=agent_pb2.DeviceFacts(
                    hostname="py-workstation",
                    os="Debian GNU/Linux",
                    os_version="12",
                    agent_version="0.1.0-python",
                    platform=agent_pb2.PLATFORM_LINUX_X86_64,
                ),
            ),
            timeout=WAIT_SECONDS,
        )

    # Connect with the issued certificate.
    chain_pem = b"".join(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        for der in enrolled.certificate_chain_der
    )
    key_pem = tls_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    mutual = grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=chain_pem
    )
    outbound = queue.Queue()

    def requests():
        while True:
            message = outbound.get()
            if message is None:
                return
            yield message

    result = agent_pb2.CheckResult(
        seq=1,
        check_id="LIN-FW-001",
        status=agent_pb2.CHECK_STATUS_PASS,
        facts={"zone": "drop", "enabled": "true", "label": "état: actif"},
        observed_at_unix_ms=1_764_000_000_000,
        catalog_version="py-catalog-1",
    )
    to_sign = signing_bytes(result)
    result.signature = device_key.sign(to_sign)

    seen = []
    with grpc.secure_channel(address, mutual, options=channel_options()) as channel:
        responses = agent_pb2_grpc.AgentGatewayStub(channel).Connect(
            requests(), timeout=WAIT_SECONDS
        )
        outbound.put(
            agent_pb2.AgentMessage(
                hello=agent_pb2.Hello(
                    agent_id=enrolled.agent_id,
                    agent_version="0.1.0-python",
                    last_acked_seq=0,
                    protocol_version=1,
                    config_revision=enrolled.config.revision,
                )
            )
        )
        for response in responses:
            kind = response.WhichOneof("kind")
            if kind == "ack":
                seen.append({"ack": response.ack.up_to_seq})
                if response.ack.up_to_seq == 0:
                    outbound.put(agent_pb2.AgentMessage(result=result))
                elif response.ack.up_to_seq == 1:
                    outbound.put(None)
                    break
            elif kind == "config":
                seen.append({"config": response.config.revision})
            else:
                seen.append({kind: None})
        responses.cancel()

    print(
        json.dumps(
            {
                "agent_id": enrolled.agent_id,
                "certificates": len(enrolled.certificate_chain_der),
                "ca_der_hex": enrolled.agent_ca_der.hex(),
                "checks": [check.check_id for check in enrolled.config.checks],
                "seen": seen,
                "device_public_key_hex": device_public.hex(),
                "signing_bytes_hex": to_sign.hex(),
            }
        )
    )


if __name__ == "__main__":
    main()

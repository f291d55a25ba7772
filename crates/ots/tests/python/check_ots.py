"""Independent check of an .ots file with the reference opentimestamps library.

Usage: check_ots.py FILE.ots [HEIGHT=HEADER_HEX ...]
Prints one JSON object: file hash op, digest, whether re-serialisation is byte-identical,
and every attestation (Bitcoin ones verified against the given headers).
"""

import json
import sys

from bitcoin.core import CBlockHeader
from opentimestamps.core.notary import (
    BitcoinBlockHeaderAttestation,
    PendingAttestation,
    VerificationError,
)
from opentimestamps.core.serialize import BytesDeserializationContext, BytesSerializationContext
from opentimestamps.core.timestamp import DetachedTimestampFile


def main(argv):
    with open(argv[1], "rb") as fd:
        raw = fd.read()
    headers = {}
    for arg in argv[2:]:
        height, header_hex = arg.split("=", 1)
        headers[int(height)] = CBlockHeader.deserialize(bytes.fromhex(header_hex))

    detached = DetachedTimestampFile.deserialize(BytesDeserializationContext(raw))
    ctx = BytesSerializationContext()
    detached.serialize(ctx)

    attestations = []
    for msg, attestation in detached.timestamp.all_attestations():
        if isinstance(attestation, PendingAttestation):
            attestations.append({"kind": "pending", "uri": attestation.uri, "msg": msg.hex()})
        elif isinstance(attestation, BitcoinBlockHeaderAttestation):
            entry = {"kind": "bitcoin", "height": attestation.height, "msg": msg.hex()}
            header = headers.get(attestation.height)
            if header is not None:
                try:
                    entry["verified_time"] = attestation.verify_against_blockheader(msg, header)
                except VerificationError as exc:
                    entry["verify_error"] = str(exc)
            attestations.append(entry)
        else:
            attestations.append({"kind": "other", "repr": repr(attestation), "msg": msg.hex()})
    attestations.sort(key=lambda entry: json.dumps(entry, sort_keys=True))

    print(json.dumps({
        "file_hash_op": str(detached.file_hash_op),
        "digest": detached.file_digest.hex(),
        "reserialized_identical": ctx.getbytes() == raw,
        "attestations": attestations,
    }, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)

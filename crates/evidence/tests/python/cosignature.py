"""An independent implementation of C2SP tlog-cosignature (Ed25519, cosignature/v1), written from
the specification alone with pycryptodomex, to cross-check the Rust code in both directions.

usage: cosignature.py verify VKEY NOTE_FILE      -> prints the cosignature's time, exit 0
       cosignature.py sign NAME SEED_HEX TIME BODY_FILE -> prints "VKEY\nSIGNATURE LINE"
"""
import base64
import hashlib
import struct
import sys

from Cryptodome.PublicKey import ECC
from Cryptodome.Signature import eddsa


def key_id(name, public):
    return hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]


def message(body, time):
    return b"cosignature/v1\ntime " + str(time).encode() + b"\n" + body


def verify(vkey, note):
    name, kid_hex, material = vkey.split("+", 2)
    material = base64.b64decode(material)
    assert material[0] == 0x04, "not a cosignature/v1 key"
    public = material[1:]
    assert key_id(name, public).hex() == kid_hex, "key id mismatch"
    split = note.rindex(b"\n\n")
    body, sigs = note[: split + 1], note[split + 2 :]
    for line in sigs.decode().splitlines():
        assert line.startswith("\u2014 ")
        line_name, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if line_name != name or blob[:4].hex() != kid_hex:
            continue
        assert len(blob) == 4 + 8 + 64
        (time,) = struct.unpack(">Q", blob[4:12])
        verifier = eddsa.new(eddsa.import_public_key(public), "rfc8032")
        verifier.verify(message(body, time), blob[12:])
        return time
    raise SystemExit("no cosignature by " + name)


def sign(name, seed_hex, time, body):
    key = ECC.construct(curve="Ed25519", seed=bytes.fromhex(seed_hex))
    public = key.public_key().export_key(format="raw")
    kid = key_id(name, public)
    signature = eddsa.new(key, "rfc8032").sign(message(body, time))
    material = base64.b64encode(b"\x04" + public).decode()
    vkey = f"{name}+{kid.hex()}+{material}"
    line = f"\u2014 {name} {base64.b64encode(kid + struct.pack('>Q', time) + signature).decode()}"
    return vkey, line


if __name__ == "__main__":
    if sys.argv[1] == "verify":
        print(verify(sys.argv[2], open(sys.argv[3], "rb").read()))
    elif sys.argv[1] == "sign":
        vkey, line = sign(sys.argv[2], sys.argv[3], int(sys.argv[4]), open(sys.argv[5], "rb").read())
        print(vkey)
        print(line)
    else:
        raise SystemExit(__doc__)

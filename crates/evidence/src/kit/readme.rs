//! The README.md written into every kit: what it holds and how to verify it, with and without OsirisCare's tool.

use crate::keys::ApplianceKey;

/// The kit's README for the key, the number of bundles and the number of checkpoints.
pub(crate) fn readme(key: &ApplianceKey, bundles: u64, checkpoints: usize) -> String {
    format!(
        "# OsirisCare evidence kit

This directory is a self-contained, signed copy of the compliance evidence log of appliance `{origin}`.
It holds {bundles} evidence bundles and {checkpoints} signed checkpoints.
Nothing in it requires trusting OsirisCare: every check below uses public algorithms and standard tools.
The format is described in full in docs/EVIDENCE-FORMAT.md of the OsirisCare source.

## Which key to trust

Everything below proves that this directory is consistent with the key in `appliance.pub`.
Anyone can make a consistent kit with a key of their own, so the key must come from somewhere
else: your MSP's records of this appliance, or `osiris evidence show` run on the appliance itself.
This README is not signed and deliberately does not print the key.

## Verify with the OsirisCare tool

    osiris evidence verify DIR --key KEY

`KEY` is the appliance key obtained as above (the text `<name>+<keyid>+<base64>`, or a file holding it).
It prints every problem it finds and exits 0 only if everything holds against that key;
1 if there is a problem; 3 (UNPINNED) if everything holds but no key was given.

## Verify by hand

1. `appliance.pub` is the appliance's Ed25519 verifier key in the C2SP signed-note format (https://c2sp.org/signed-note); check that it equals the key you obtained independently.
2. `MANIFEST` is a signed note by that key listing the SHA-256 and size of every other file; check it with `sha256sum` and any signed-note verifier.
3. Each line of `bundles.jsonl` is one bundle in RFC 8785 canonical JSON.
   Its `sig` is an Ed25519 signature over the same object without `sig`; its `prev` is the SHA-256 of the previous line; its `seq` is its 0-based line index.
   A bundle of kind `agent_result` also carries the signature of the endpoint device that reported it: its `signature` verifies over the base64-decoded `signed` under the `device_public_key` of the agent's earlier `agent_enrollment` bundle, and its other members repeat what `signed` says (layout in docs/AGENT-PROTOCOL.md, \"What is signed\").
   Each agent numbers its results, gaps and remediations from 1 without a hole or a repeat; an `agent_gap` accounts for the numbers it lost (docs/EVIDENCE-FORMAT.md, \"Bodies of the agent kinds\").
   A bundle of kind `packet` names the files of a month's compliance packet (kept on the appliance, not in this kit) with their SHA-256: `sha256sum` of a packet's files, its `MANIFEST.sha256` included, must give those values (docs/EVIDENCE-FORMAT.md, \"Body of `kind = \"packet\"`\").
4. `checkpoints/<size>.txt` are signed checkpoints (https://c2sp.org/tlog-checkpoint): the RFC 9162 Merkle root of the first `<size>` bundles (leaf = SHA-256(0x00 ‖ line)).
5. `proofs/consistency-<old>-<new>.txt` are RFC 9162 consistency proofs between consecutive checkpoints, one base64 hash per line.
6. `checkpoints/<size>.txt.ots` are OpenTimestamps proofs of the checkpoint files; check them with the standard client:

       ots verify checkpoints/000000000042.txt.ots

   A Bitcoin attestation proves the checkpoint, and therefore every bundle it covers, existed at that block's time.

## Files

| path | content |
|---|---|
| README.md | this file (not signed) |
| MANIFEST | signed list of every other file |
| appliance.pub | appliance verifier key |
| bundles.jsonl | all evidence bundles, one per line |
| checkpoints/ | signed checkpoints and their OpenTimestamps proofs |
| proofs/ | consistency proofs between checkpoints |
",
        origin = key.origin(),
    )
}

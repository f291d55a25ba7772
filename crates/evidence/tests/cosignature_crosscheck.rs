//! Cross-checks `evidence::cosignature` against an independent implementation of the C2SP
//! tlog-cosignature specification (tests/python/cosignature.py, pycryptodomex), both ways, over a
//! real checkpoint signed by an appliance key.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::process::Command;

use evidence::{ApplianceKey, Checkpoint, WitnessKey, WitnessVerifier};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/cosignature.py");

fn checkpoint_note() -> String {
    let appliance = ApplianceKey::from_seed(&[3; 32]);
    Checkpoint {
        origin: appliance.origin().to_owned(),
        size: 42,
        root: [9; 32],
    }
    .sign(&appliance)
}

#[test]
fn rust_cosignatures_verify_in_the_independent_implementation_and_back() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // Rust signs; Python verifies.
    let witness = WitnessKey::from_seed("central.example-msp.com/witness", &[5; 32]).unwrap();
    let note = format!(
        "{}{}",
        checkpoint_note(),
        witness.cosign(&body(&checkpoint_note()), 1_764_000_000)
    );
    std::fs::write(dir.path().join("note"), &note).unwrap();
    let out = Command::new(&python)
        .args([SCRIPT, "verify", &witness.verifier().to_string()])
        .arg(dir.path().join("note"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1764000000");

    // Python signs; Rust parses its vkey and verifies its line.
    std::fs::write(dir.path().join("body"), body(&checkpoint_note())).unwrap();
    let out = Command::new(&python)
        .args([
            SCRIPT,
            "sign",
            "witness.example/py",
            &"11".repeat(32),
            "1764000123",
        ])
        .arg(dir.path().join("body"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let vkey: WitnessVerifier = lines.next().unwrap().parse().unwrap();
    let line = lines.next().unwrap();
    let note = format!("{}{line}\n", checkpoint_note());
    assert_eq!(vkey.verify(&note).unwrap().time, 1_764_000_123);
    // The same key from the same seed in Rust gives the same vkey.
    let same = WitnessKey::from_seed("witness.example/py", &[0x11; 32]).unwrap();
    assert_eq!(same.verifier(), &vkey);
    // And a cosignature over another checkpoint does not carry over.
    let other = checkpoint_note().replace("\n42\n", "\n43\n");
    let split = other.rfind("\n\n").unwrap();
    let moved = format!("{}{line}\n", &other[..split + 2]);
    assert!(vkey.verify(&moved).is_err());
}

/// The note body (text up to and including its last newline before the blank line).
fn body(note: &str) -> String {
    let split = note.rfind("\n\n").unwrap();
    note[..=split].to_owned()
}

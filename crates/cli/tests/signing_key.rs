//! `osiris signing-key generate`: a fresh signer key on stdout that the store can load as a
//! systemd credential, different on every run.

use std::process::Command;

use evidence::ApplianceKey;

#[test]
fn generate_prints_a_fresh_signer_key() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_osiris"))
            .args(["signing-key", "generate"])
            .output()
            .expect("run osiris");
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let key: ApplianceKey = text.parse().expect("a signer key");
        assert!(key.origin().starts_with("osiris-appliance/"), "{text}");
        keys.push(key.verifier());
    }
    assert_ne!(keys[0], keys[1], "two runs gave the same key");
}

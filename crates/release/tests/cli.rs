//! `osiris-release` as the vendor runs it: a key, then the manifest of a release whose UKI is a
//! real EFI binary signed by `sbsign` and added to a real Nix store; the manifest verifies under
//! the printed public key and names the UKI with the SHA-256 of its bytes. An unsigned UKI, one
//! signed by another Secure Boot key, a readable key file, an expiry out of range and a counter
//! that goes back are refused, and nothing is written.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use common::{db_key, run, text, tool};

use sha2::Digest as _;

const STUB: &str = common::EFI_BINARY;

fn in_store(file: &Path) -> String {
    run(Command::new("nix-store").arg("--add").arg(file))
        .trim()
        .to_owned()
}

#[test]
fn a_release_with_a_signed_uki_is_signed_and_what_would_break_appliances_is_refused() {
    if !test_support::require_root(
        "a_release_with_a_signed_uki_is_signed_and_what_would_break_appliances_is_refused",
        &["sbsign", "sbverify", "openssl", "nix-store"],
    ) {
        return;
    }
    if !Path::new(STUB).exists()
        && !test_support::root::require_setup(
            "a_release_with_a_signed_uki_is_signed_and_what_would_break_appliances_is_refused",
            &[format!(
                "{STUB} (systemd-boot-efi; scripts/setup installs it)"
            )],
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("vendor.key");
    let key_str = key_file.to_str().unwrap();

    // The vendor key: 0600, printed as `name:base64`, never overwritten.
    let out = tool(&["keygen", "osiris-vendor-7", key_str]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    assert!(public.starts_with("osiris-vendor-7:"), "{public}");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = tool(&["keygen", "osiris-vendor-7", key_str]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("never overwritten"),
        "{}",
        text(&again.stderr)
    );

    // The UKI: signed by the vendor's Secure Boot key, added to the store.
    let (db, db_cert) = db_key(dir.path(), "vendor-db");
    let (_, other_cert) = db_key(dir.path(), "someone-else");
    let signed = dir.path().join("osiris_1.2.0.efi");
    run(Command::new("sbsign")
        .arg("--key")
        .arg(&db)
        .arg("--cert")
        .arg(&db_cert)
        .arg("--output")
        .arg(&signed)
        .arg(STUB));
    let uki = in_store(&signed);
    let unsigned_copy = dir.path().join("unsigned_1.2.0.efi");
    std::fs::copy(STUB, &unsigned_copy).unwrap();
    let unsigned = in_store(&unsigned_copy);

    let cache_key = "cache.example-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let manifest = dir.path().join("manifest.json");
    let manifest_str = manifest.to_str().unwrap().to_owned();
    let sign = |counter: &str, extra: &[&str]| {
        let mut args = vec![
            "manifest",
            "--signing-key",
            key_str,
            "--version",
            "1.2.0",
            "--min-version",
            "1.0.0",
            "--system",
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-osiris-1.2.0",
            "--cache-url",
            "https://updates.example/cache",
            "--cache-key",
            cache_key,
            "--counter",
            counter,
            "--out",
            &manifest_str,
        ];
        args.extend_from_slice(extra);
        tool(&args)
    };
    let uki_args = ["--uki", &uki, "--db-cert", db_cert.to_str().unwrap()];

    // Refused, nothing written: an unsigned UKI, one another key signed, an expiry out of range.
    for (extra, expected) in [
        (
            vec![
                "--uki",
                unsigned.as_str(),
                "--db-cert",
                db_cert.to_str().unwrap(),
            ],
            "is not signed by the Secure Boot key",
        ),
        (
            vec![
                "--uki",
                uki.as_str(),
                "--db-cert",
                other_cert.to_str().unwrap(),
            ],
            "is not signed by the Secure Boot key",
        ),
        (vec!["--uki", uki.as_str()], "--db-cert"),
        (vec!["--expires-days", "91"], "give 1 to 90 days"),
        (vec!["--expires-days", "0"], "give 1 to 90 days"),
    ] {
        let out = sign("5", &extra);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{expected:?}: {}",
            text(&out.stderr)
        );
        assert!(!manifest.exists(), "{extra:?} wrote a manifest");
    }

    // Signed: verifies under the printed key and names the UKI by the hash of its bytes.
    let out = sign("5", &uki_args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let signed_manifest =
        update_manifest::SignedManifest::from_json(&std::fs::read(&manifest).unwrap()).unwrap();
    let (checked, named) = signed_manifest
        .verify_release(&update_manifest::VendorKey::parse(&public).unwrap())
        .unwrap();
    assert_eq!(checked.version, "1.2.0");
    assert_eq!(checked.counter, 5);
    let named = named.unwrap();
    assert_eq!(named.path, uki);
    assert_eq!(
        named.sha256,
        hex::encode(sha2::Sha256::digest(std::fs::read(&uki).unwrap()))
    );
    update_manifest::check_secure_boot(&checked, Some(&named), true).unwrap();
    let shown = tool(&["show", "--vendor-key", &public, &manifest_str]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(text(&shown.stdout).contains(&format!("uki {uki} sha256 {}", named.sha256)));

    // A counter that does not go up does not replace the published manifest.
    let before = std::fs::read(&manifest).unwrap();
    let out = sign("5", &uki_args);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("use 6"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    assert!(sign("6", &uki_args).status.success());

    // A key file others can read is refused.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sign("7", &uki_args);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
}

//! Issue 14, finding 9: whoever sits between the appliance and the vendor (or holds an old
//! update medium) offers an old, validly signed manifest, or a stale one long after it was
//! published. The state machine must refuse both, and record the refusal.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::Duration;

use ed25519_dalek::SigningKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use update::{
    MANIFEST_SCHEMA_V1, Manifest, Policy, SignedManifest, SystemdBoot, Updater, VendorKey,
};

fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn signed(version: &str, counter: u64, expires: &str) -> SignedManifest {
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA_V1.to_owned(),
        version: version.to_owned(),
        min_version: "1.0.0".to_owned(),
        system: format!("/nix/store/fasxgd8wp5lvfmc49983i5c39alw3qfy-osiris-system-{version}"),
        cache_url: "https://updates.example.invalid/cache".to_owned(),
        cache_keys: vec!["cache-1:AAAA".to_owned()],
        released: "2026-11-28T00:00:00Z".to_owned(),
        expires: expires.to_owned(),
        counter,
    };
    SignedManifest::sign(&manifest, "osiris-vendor-test", &vendor())
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

#[test]
fn an_old_or_expired_signed_manifest_is_refused_by_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let boot = SystemdBoot::new(&dir.path().join("esp"), &dir.path().join("efivars"));
    let mut updater = Updater::open(&dir.path().join("state"), boot).unwrap();
    let policy = Policy {
        vendor_key: VendorKey::from_signing_key("osiris-vendor-test", &vendor()),
        cache_keys: vec!["cache-1:AAAA".to_owned()],
        installed: "1.0.0".parse().unwrap(),
        tries: 3,
        health_deadline: Duration::from_secs(600),
        secure_boot: false,
    };
    let now = at("2026-12-01T00:00:00Z");

    // Stale: signed correctly, but past its expiry.
    let step = updater.accept_manifest(&signed("1.1.0", 5, "2026-11-30T00:00:00Z"), &policy, now);
    let err = step.result.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(step.records[0].step, "manifest_refused");
    assert_eq!(updater.phase().name(), "idle");

    // The current manifest is accepted; offering it again is harmless.
    let current = signed("1.2.1", 9, "2026-12-31T00:00:00Z");
    updater
        .accept_manifest(&current, &policy, now)
        .result
        .unwrap();
    updater
        .accept_manifest(&current, &policy, now)
        .result
        .unwrap();

    // Replay of the withdrawn 1.2.0 (still newer than the installed release, not expired).
    let step = updater.accept_manifest(&signed("1.2.0", 8, "2026-12-31T00:00:00Z"), &policy, now);
    let err = step.result.unwrap_err();
    assert!(err.to_string().contains("replayed"), "{err}");
    assert_eq!(step.records[0].step, "manifest_refused");
    // Nor can another manifest reuse the counter.
    let step = updater.accept_manifest(&signed("1.3.0", 9, "2026-12-31T00:00:00Z"), &policy, now);
    assert!(step.result.is_err());
    assert_eq!(updater.phase().manifest().unwrap().version, "1.2.1");

    // The refusal survives a restart: the state file holds the accepted manifest.
    drop(updater);
    let boot = SystemdBoot::new(&dir.path().join("esp"), &dir.path().join("efivars"));
    let mut updater = Updater::open(&dir.path().join("state"), boot).unwrap();
    let step = updater.accept_manifest(&signed("1.2.0", 8, "2026-12-31T00:00:00Z"), &policy, now);
    assert!(step.result.is_err());
    updater
        .accept_manifest(&signed("1.3.0", 10, "2026-12-31T00:00:00Z"), &policy, now)
        .result
        .unwrap();
}

//! The trust model end to end with real signatures: offers, root rotation, thresholds, expiry,
//! and every refusal with the error that names it.

mod common;

use agent_release::vendor::{self, RootSpec};
use agent_release::{Platform, TrustedRoot, VerifyError, limits, signing_bytes, verify_offer};
use base64::Engine as _;

use common::*;

const NO_ROOTS: &[&[u8]] = &[];

#[test]
fn a_newer_release_verifies_and_reports_what_to_fetch() {
    let (root, _, release_1) = first_root();
    let manifest = manifest("1.1.0", &release_1);
    let release = verify_offer(
        &root,
        NO_ROOTS,
        &manifest,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap();
    assert_eq!(release.version(), v("1.1.0"));
    assert_eq!(release.platform(), Platform::LinuxX86_64);
    assert_eq!(release.file_name(), "osiris-agent");
    assert_eq!(release.size(), 12);
    assert_eq!(release.manifest(), &manifest[..]);
    assert_eq!(release.root().version(), 1);
    use sha2::Digest as _;
    assert_eq!(
        release.sha256(),
        &<[u8; 32]>::from(sha2::Sha256::digest(b"agent binary"))
    );
}

#[test]
fn downgrade_same_version_and_wrong_platform_are_refused() {
    let (root, _, release_1) = first_root();
    let manifest = manifest("1.1.0", &release_1);
    for running in ["1.1.0", "1.2.0", "2.0.0"] {
        let err = verify_offer(
            &root,
            NO_ROOTS,
            &manifest,
            v(running),
            Platform::LinuxX86_64,
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, VerifyError::NotNewer { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("downgrades and re-installs are refused"),
            "{err}"
        );
    }
    let err = verify_offer(
        &root,
        NO_ROOTS,
        &manifest,
        v("1.0.0"),
        Platform::WindowsX86_64,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "release is for linux-x86_64, but this agent runs on windows-x86_64"
    );
}

#[test]
fn a_tampered_manifest_or_a_foreign_key_is_refused() {
    let (root, _, release_1) = first_root();
    // The payload of 9.9.9 under the signature of 1.1.0.
    let good: serde_json::Value = serde_json::from_slice(&manifest("1.1.0", &release_1)).unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&manifest("9.9.9", &release_1)).unwrap();
    forged["signatures"] = good["signatures"].clone();
    let forged = serde_json::to_vec(&forged).unwrap();
    let err = verify_offer(
        &root,
        NO_ROOTS,
        &forged,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "release manifest: the signature by `release-1` does not verify under the release keys of root 1 (altered or forged); 0 valid of 1 required"
    );

    // A key the root does not list, even under a listed name's neighbour.
    let stranger = key("release-2", 99);
    let err = verify_offer(
        &root,
        NO_ROOTS,
        &manifest("1.1.0", &stranger),
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains("[\"release-2\"]"), "{err}");

    // A listed name with another key's signature is a bad signature, not a pass.
    let impostor = key("release-1", 98);
    let err = verify_offer(
        &root,
        NO_ROOTS,
        &manifest("1.1.0", &impostor),
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
}

/// The point of the root: the vendor replaces a release key (and a root key) by publishing
/// root 2 and root 3; an agent that pins root 1 walks to root 3 by itself, accepts releases
/// signed by the newest release key and refuses the rotated-out ones.
#[test]
fn key_rotation_across_two_roots() {
    let (root_1, root_a, release_1) = first_root();
    let root_b = key("root-b", 2);
    let release_2 = key("release-2", 12);
    let release_3 = key("release-3", 13);

    // Root 2: new release key; signed by root 1's root key (the same root key stays).
    let root_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release_2]), &[&root_a]).unwrap();
    // Root 3: root key a replaced by b, release key 3; signed by a (old) and b (new).
    let root_3 = vendor::sign_root(
        &root_spec(3, &[&root_b], &[&release_3]),
        &[&root_a, &root_b],
    )
    .unwrap();

    // Relayed in any order, older roots included: the agent lands on root 3.
    let chain = [root_3.clone(), root_1.bytes().to_vec(), root_2.clone()];
    let walked = root_1.walk(&chain).unwrap();
    assert_eq!(walked.version(), 3);
    assert_eq!(walked.bytes(), &root_3[..]);

    let offer = |manifest: &[u8]| {
        verify_offer(
            &root_1,
            &chain,
            manifest,
            v("1.0.0"),
            Platform::LinuxX86_64,
            NOW,
        )
    };
    let release = offer(&manifest("1.3.0", &release_3)).unwrap();
    assert_eq!(release.root().version(), 3);
    for old in [&release_1, &release_2] {
        let err = offer(&manifest("1.3.0", old)).unwrap_err();
        assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
        assert!(
            err.to_string().contains("the release keys of root 3"),
            "{err}"
        );
    }

    // The stored root 3 is pinned from then on: it trusts only root key b.
    let stored = TrustedRoot::pin(walked.bytes()).unwrap();
    let rogue_4 = vendor::sign_root(&root_spec(4, &[&root_a], &[&release_1]), &[&root_a]).unwrap();
    let err = stored.walk(&[rogue_4]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "root 4 has 0 valid signatures of the 1 required by the root keys of root 3; it is also signed by [\"root-a\"], which are not among the root keys of root 3"
    );
}

#[test]
fn a_new_root_needs_both_the_old_and_its_own_root_keys() {
    let (root_1, root_a, _) = first_root();
    let root_b = key("root-b", 2);
    let release = key("release-2", 12);
    let spec = root_spec(2, &[&root_b], &[&release]);

    // Only the new key: the old root did not approve it.
    let only_new = vendor::sign_root(&spec, &[&root_b]).unwrap();
    let err = root_1.walk(&[only_new]).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnknownKey { ref role, .. } if role == "the root keys of root 1"),
        "{err}"
    );

    // Only the old key: the new root keys never proved they exist (a typo would brick rotation).
    let only_old = vendor::sign_root(&spec, &[&root_a]).unwrap();
    let err = root_1.walk(std::slice::from_ref(&only_old)).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnknownKey { ref role, .. } if role == "its own root keys"),
        "{err}"
    );

    // Holders sign in turn.
    let both = vendor::add_signature(&only_old, &root_b).unwrap();
    assert_eq!(root_1.walk(&[both]).unwrap().version(), 2);
}

#[test]
fn thresholds_count_distinct_valid_keys() {
    let (k1, k2, k3) = (key("root-1", 1), key("root-2", 2), key("root-3", 3));
    let release = key("release-1", 11);
    let spec = RootSpec {
        root_threshold: 2,
        ..root_spec(1, &[&k1, &k2, &k3], &[&release])
    };
    // A root with threshold 2 signed by one key is not even pinnable.
    let err = TrustedRoot::pin(&vendor::sign_root(&spec, &[&k1]).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    let root_1 = TrustedRoot::pin(&vendor::sign_root(&spec, &[&k1, &k3]).unwrap()).unwrap();

    // The same signature twice counts once.
    let next = RootSpec {
        version: 2,
        ..spec.clone()
    };
    let once = vendor::sign_root(&next, &[&k1]).unwrap();
    let mut doubled: serde_json::Value = serde_json::from_slice(&once).unwrap();
    let signature = doubled["signatures"][0].clone();
    doubled["signatures"]
        .as_array_mut()
        .unwrap()
        .push(signature);
    let err = root_1
        .walk(&[serde_json::to_vec(&doubled).unwrap()])
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "root 2 has 1 valid signatures by the root keys of root 1, 2 required"
    );
    let twice = vendor::sign_root(&next, &[&k2, &k3]).unwrap();
    assert_eq!(root_1.walk(&[twice]).unwrap().version(), 2);

    // A release threshold of 2 needs two release keys on the manifest.
    let (r1, r2) = (key("release-1", 11), key("release-2", 12));
    let spec = RootSpec {
        release_threshold: 2,
        ..root_spec(1, &[&k1], &[&r1, &r2])
    };
    let root = TrustedRoot::pin(&vendor::sign_root(&spec, &[&k1]).unwrap()).unwrap();
    let one = manifest("1.1.0", &r1);
    let err = verify_offer(
        &root,
        NO_ROOTS,
        &one,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    let two = vendor::add_signature(&one, &r2).unwrap();
    verify_offer(
        &root,
        NO_ROOTS,
        &two,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap();

    // Impossible thresholds are refused when signing.
    let err = vendor::sign_root(
        &RootSpec {
            root_threshold: 4,
            ..spec
        },
        &[&k1],
    )
    .unwrap_err();
    assert!(err.to_string().contains("root_threshold is 4"), "{err}");
}

/// Expiry is checked on the newest root only: an agent whose pinned root expired still walks
/// to the fresh one (nobody touches it by hand); an expired newest root refuses every release.
#[test]
fn expired_roots_refuse_releases_but_still_lead_to_their_successor() {
    let root_a = key("root-a", 1);
    let release = key("release-1", 11);
    let expired = RootSpec {
        expires_unix: NOW - 1,
        ..root_spec(1, &[&root_a], &[&release])
    };
    let root_1 = TrustedRoot::pin(&vendor::sign_root(&expired, &[&root_a]).unwrap()).unwrap();
    let manifest = manifest("1.1.0", &release);
    let err = verify_offer(
        &root_1,
        NO_ROOTS,
        &manifest,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::RootExpired { version: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the vendor must publish a new root"),
        "{err}"
    );
    // Exactly at the expiry time is expired too.
    assert!(root_1.check_fresh(NOW - 1).is_err());
    assert!(root_1.check_fresh(NOW - 2).is_ok());

    let root_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release]), &[&root_a]).unwrap();
    verify_offer(
        &root_1,
        &[root_2],
        &manifest,
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap();
}

#[test]
fn root_skips_rollbacks_and_conflicts_are_refused() {
    let (root_1, root_a, release_1) = first_root();
    let release_2 = key("release-2", 12);
    let root_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release_2]), &[&root_a]).unwrap();
    let root_3 = vendor::sign_root(&root_spec(3, &[&root_a], &[&release_2]), &[&root_a]).unwrap();

    let err = root_1.walk(&[&root_3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "root chain skips from version 1 to 3: root 2 is missing; every root must be walked in turn"
    );

    // An agent on root 2 offered root 1 again stays on root 2 and refuses release key 1.
    let on_2 = TrustedRoot::pin(&root_2).unwrap();
    assert_eq!(on_2.walk(&[root_1.bytes()]).unwrap().version(), 2);
    let err = verify_offer(
        &on_2,
        &[root_1.bytes()],
        &manifest("1.1.0", &release_1),
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");

    // Two different roots of one version.
    let other_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release_1]), &[&root_a]).unwrap();
    let err = root_1.walk(&[root_2.clone(), other_2.clone()]).unwrap_err();
    assert!(
        matches!(err, VerifyError::RootConflict { version: 2 }),
        "{err}"
    );
    let err = on_2.walk(&[other_2]).unwrap_err();
    assert!(
        matches!(err, VerifyError::RootConflict { version: 2 }),
        "{err}"
    );
    // The same root twice is fine.
    assert_eq!(root_1.walk(&[&root_2, &root_2]).unwrap().version(), 2);
}

#[test]
fn malformed_oversized_and_misplaced_documents_are_refused() {
    let (root, _, release_1) = first_root();
    let check = |manifest: &[u8], expected: &str| {
        let err = verify_offer(
            &root,
            NO_ROOTS,
            manifest,
            v("1.0.0"),
            Platform::LinuxX86_64,
            NOW,
        )
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    };
    check(
        &vec![b' '; limits::MAX_DOCUMENT_BYTES + 1],
        "over the limit of 65536",
    );
    check(
        b"not json",
        "release manifest is malformed: not a signed envelope",
    );
    check(b"{}", "missing field");
    check(
        root.bytes(),
        "has payload type `osiris.agent-release.root/v1`, expected `osiris.agent-release.manifest/v1`",
    );

    // Payloads signed properly by the release key, so only their form can be refused.
    let signed = |payload: &[u8]| {
        let unsigned = serde_json::json!({
            "payload_type": agent_release::MANIFEST_TYPE,
            "payload": base64::engine::general_purpose::STANDARD.encode(payload),
            "signatures": [],
        });
        vendor::add_signature(&serde_json::to_vec(&unsigned).unwrap(), &release_1).unwrap()
    };
    let good = r#"{"platform":"linux-x86_64","version":"1.1.0","file_name":"osiris-agent","size":5,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}"#;
    verify_offer(
        &root,
        NO_ROOTS,
        &signed(good.as_bytes()),
        v("1.0.0"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap();
    for (payload, expected) in [
        (
            good.replace("\"size\":5", "\"size\":5,\"extra\":1"),
            "unknown field `extra`",
        ),
        (
            good.replace("linux-x86_64", "linux"),
            "platform `linux` is unknown",
        ),
        (good.replace("1.1.0", "1.1"), "version `1.1` is invalid"),
        (
            good.replace("osiris-agent", "../agent"),
            "file_name `../agent`",
        ),
        (
            good.replace("\"size\":5", "\"size\":0"),
            "size 0 is out of range",
        ),
        (
            good.replace("2cf24d", "2CF24D"),
            "sha256 is not 64 lowercase hex digits",
        ),
    ] {
        check(&signed(payload.as_bytes()), expected);
    }

    let many = vec![root.bytes().to_vec(); limits::MAX_ROOT_CHAIN + 1];
    let err = root.walk(&many).unwrap_err();
    assert_eq!(
        err.to_string(),
        "33 roots offered, over the limit of 32 per walk"
    );
    let err = root.walk(&[b"{\"payload_type\":1}".to_vec()]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("root #1 of the chain offered is malformed"),
        "{err}"
    );
}

#[test]
fn a_pinned_root_must_be_signed_by_its_own_keys() {
    let root_a = key("root-a", 1);
    let release = key("release-1", 11);
    let by_stranger =
        vendor::sign_root(&root_spec(1, &[&root_a], &[&release]), &[&key("root-z", 9)]).unwrap();
    let err = TrustedRoot::pin(&by_stranger).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
    let duplicate_key = RootSpec {
        root_keys: vec![root_a.public(), key("root-b", 1).public()],
        ..root_spec(1, &[&root_a], &[&release])
    };
    let err = vendor::sign_root(&duplicate_key, &[&root_a]).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

/// The signing layout is a format: pinned byte for byte.
#[test]
fn signing_bytes_are_domain_separated_and_length_prefixed() {
    let bytes = signing_bytes("t", b"ab");
    assert_eq!(
        bytes,
        b"osiris-agent-release/v1\0\0\0\0\x01t\0\0\0\x02ab".to_vec()
    );
    // A root signature never verifies as a manifest signature.
    assert_ne!(
        signing_bytes(agent_release::ROOT_TYPE, b"x"),
        signing_bytes(agent_release::MANIFEST_TYPE, b"x")
    );
}

/// A relay (Central Command without the vendor's root) reads what a document says without
/// vouching for it; a root, or a payload that is not a manifest, is refused with its reason.
#[test]
fn a_relay_reads_a_manifest_without_its_root_but_only_a_manifest() {
    let (root, _, release_1) = first_root();
    let document = manifest("1.1.0", &release_1);
    let read = agent_release::read_unverified(&document).unwrap();
    assert_eq!(
        (read.platform, read.version, read.file_name.as_str()),
        (Platform::LinuxX86_64, v("1.1.0"), "osiris-agent")
    );
    let verified = root.verify_manifest(&document, NOW).unwrap();
    assert_eq!(
        (read.size, &read.sha256),
        (verified.size(), verified.sha256())
    );
    let err = agent_release::read_unverified(root.bytes()).unwrap_err();
    assert!(matches!(err, VerifyError::WrongType { .. }), "{err}");
    let err = agent_release::read_unverified(b"{\"not\": \"an envelope\"}").unwrap_err();
    assert!(err.to_string().contains("not a signed envelope"), "{err}");
}

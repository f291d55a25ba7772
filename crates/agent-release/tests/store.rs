//! The appliance's release store on a real directory: adding, refusing, staged rollout,
//! rotation, and what an agent receives verifying end to end.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]
#![cfg(unix)]
mod common;

use std::path::Path;

use agent_release::store::{ReleaseStore, StoreError, rollout_bucket};
use agent_release::vendor;
use agent_release::{Platform, TrustedRoot, VerifyError, verify_offer};

use common::*;

fn release(
    dir: &Path,
    version: &str,
    key: &agent_release::SecretKey,
) -> (Vec<u8>, std::path::PathBuf) {
    let binary = format!("#!/bin/sh\necho {version}\n").into_bytes();
    let path = dir.join(format!("agent-{version}"));
    std::fs::write(&path, &binary).unwrap();
    let manifest = vendor::sign_manifest(
        &manifest_spec(Platform::LinuxX86_64, version, &binary),
        &[key],
    )
    .unwrap();
    (manifest, path)
}

#[test]
fn added_releases_are_listed_offered_served_and_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let (root, _, release_1) = first_root();
    let mut store = ReleaseStore::open(&store_dir, root.clone(), NOW).unwrap();
    let (manifest, binary) = release(tmp.path(), "1.1.0", &release_1);
    let info = store.add(&manifest, &binary, 100, NOW).unwrap();
    assert_eq!(info.version, v("1.1.0"));
    assert_eq!(info.rollout_percent, 100);
    assert_eq!(info.problem, None);

    let offer = store
        .offer_for("agent-1", Platform::LinuxX86_64, v("1.0.0"))
        .unwrap();
    assert_eq!(
        offer.download_path,
        "/agent-releases/linux-x86_64/1.1.0/osiris-agent"
    );
    assert_eq!(offer.manifest, &manifest[..]);
    assert_eq!(offer.roots.len(), 1);
    let served = store.binary_for_download(offer.download_path).unwrap();
    assert_eq!(
        std::fs::read(&served).unwrap(),
        std::fs::read(&binary).unwrap()
    );
    assert_eq!(
        store.binary_for_download("/agent-releases/../etc/passwd"),
        None
    );

    // Nothing for the same or a newer agent, or another platform.
    assert!(
        store
            .offer_for("agent-1", Platform::LinuxX86_64, v("1.1.0"))
            .is_none()
    );
    assert!(
        store
            .offer_for("agent-1", Platform::WindowsX86_64, v("1.0.0"))
            .is_none()
    );

    // The agent accepts exactly what it is offered.
    let verified = verify_offer(
        &root,
        offer.roots,
        offer.manifest,
        v("1.0.0"),
        offer.platform,
        NOW,
    )
    .unwrap();
    assert_eq!(verified.version(), offer.version);

    let reopened = ReleaseStore::open(&store_dir, root, NOW).unwrap();
    assert_eq!(reopened.list(), store.list());
}

#[test]
fn tampered_binaries_downgrades_and_replays_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _, release_1) = first_root();
    let mut store = ReleaseStore::open(&tmp.path().join("store"), root, NOW).unwrap();
    let (manifest, binary) = release(tmp.path(), "1.2.0", &release_1);

    std::fs::write(&binary, b"#!/bin/sh\necho 6.6.6\n").unwrap();
    let err = store.add(&manifest, &binary, 100, NOW).unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    assert!(
        err.to_string().contains("does not match its manifest"),
        "{err}"
    );
    std::fs::write(&binary, b"#!/bin/sh\necho 1.2.0\n\n").unwrap();
    let err = store.add(&manifest, &binary, 100, NOW).unwrap_err();
    assert!(err.to_string().contains("longer"), "{err}");
    assert!(store.list().is_empty());
    let kept = tmp.path().join("store/releases/linux-x86_64/1.2.0");
    assert_eq!(
        std::fs::read_dir(&kept).unwrap().count(),
        0,
        "nothing half-written is kept"
    );

    let (manifest, binary) = release(tmp.path(), "1.2.0", &release_1);
    store.add(&manifest, &binary, 100, NOW).unwrap();
    for version in ["1.2.0", "1.1.9"] {
        let (manifest, binary) = release(tmp.path(), version, &release_1);
        let err = store.add(&manifest, &binary, 100, NOW).unwrap_err();
        assert!(matches!(err, StoreError::NotNewer { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("downgrades and replays are refused"),
            "{err}"
        );
    }
    let (manifest, binary) = release(tmp.path(), "1.3.0", &key("release-9", 99));
    let err = store.add(&manifest, &binary, 100, NOW).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::UnknownKey { .. })),
        "{err}"
    );
    let err = store.add(&manifest, &binary, 101, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rollout percentage 101 is out of range (0 to 100)"
    );
}

#[test]
fn staged_rollout_is_deterministic_and_only_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _, release_1) = first_root();
    let mut store = ReleaseStore::open(&tmp.path().join("store"), root, NOW).unwrap();
    let (manifest, binary) = release(tmp.path(), "1.1.0", &release_1);
    store.add(&manifest, &binary, 0, NOW).unwrap();
    let agents: Vec<String> = (0..1000).map(|idx| format!("agent-{idx}")).collect();
    let offered = |store: &ReleaseStore| -> Vec<&String> {
        agents
            .iter()
            .filter(|agent| {
                store
                    .offer_for(agent, Platform::LinuxX86_64, v("1.0.0"))
                    .is_some()
            })
            .collect()
    };
    assert!(offered(&store).is_empty());
    store
        .set_rollout(Platform::LinuxX86_64, v("1.1.0"), 30, NOW)
        .unwrap();
    let at_30 = offered(&store);
    assert!((250..=350).contains(&at_30.len()), "{}", at_30.len());
    assert_eq!(offered(&store), at_30, "the same agents every time");
    store
        .set_rollout(Platform::LinuxX86_64, v("1.1.0"), 60, NOW)
        .unwrap();
    let at_60 = offered(&store);
    assert!(at_30.iter().all(|agent| at_60.contains(agent)));
    store
        .set_rollout(Platform::LinuxX86_64, v("1.1.0"), 100, NOW)
        .unwrap();
    assert_eq!(offered(&store).len(), 1000);

    // Each release draws its own cohort.
    let differ = agents
        .iter()
        .filter(|agent| rollout_bucket(agent, v("1.1.0")) != rollout_bucket(agent, v("1.2.0")))
        .count();
    assert!(differ > 900, "{differ}");

    // A newer release not yet rolled out to an agent leaves it the older one.
    let (manifest, binary) = release(tmp.path(), "1.2.0", &release_1);
    store.add(&manifest, &binary, 0, NOW).unwrap();
    let offer = store
        .offer_for("agent-1", Platform::LinuxX86_64, v("1.0.0"))
        .unwrap();
    assert_eq!(offer.version, v("1.1.0"));
    let err = store
        .set_rollout(Platform::LinuxX86_64, v("9.0.0"), 10, NOW)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no release linux-x86_64 9.0.0 in the store"
    );
}

/// The vendor rotates the release key: the store takes root 2, keeps the old release listed
/// but no longer offers it, offers the new one with the roots an agent pinned to root 1 needs.
#[test]
fn rotation_reaches_agents_through_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (root_1, root_a, release_1) = first_root();
    let store_dir = tmp.path().join("store");
    let mut store = ReleaseStore::open(&store_dir, root_1.clone(), NOW).unwrap();
    let (manifest, binary) = release(tmp.path(), "1.1.0", &release_1);
    store.add(&manifest, &binary, 100, NOW).unwrap();

    let release_2 = key("release-2", 12);
    let root_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release_2]), &[&root_a]).unwrap();
    assert_eq!(store.add_roots(&[&root_2], NOW).unwrap(), 2);
    let listed = store.list();
    assert!(
        listed[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("the release keys of root 2"),
        "{listed:?}"
    );
    assert!(
        store
            .offer_for("agent-1", Platform::LinuxX86_64, v("1.0.0"))
            .is_none()
    );
    assert_eq!(
        store.binary_for_download("/agent-releases/linux-x86_64/1.1.0/osiris-agent"),
        None
    );

    let (manifest, binary) = release(tmp.path(), "1.2.0", &release_2);
    store.add(&manifest, &binary, 100, NOW).unwrap();
    let offer = store
        .offer_for("agent-1", Platform::LinuxX86_64, v("1.0.0"))
        .unwrap();
    assert_eq!(offer.roots.len(), 2);
    let verified = verify_offer(
        &root_1,
        offer.roots,
        offer.manifest,
        v("1.0.0"),
        offer.platform,
        NOW,
    )
    .unwrap();
    assert_eq!(verified.root().version(), 2);

    // Reopened with the image's root 1, the store still stands on root 2.
    let reopened = ReleaseStore::open(&store_dir, root_1.clone(), NOW).unwrap();
    assert_eq!(reopened.current_root().version(), 2);

    // An appliance configured with root 2 relays root 1 once given it, for agents built with it.
    let mut newer = ReleaseStore::open(
        &tmp.path().join("store-2"),
        TrustedRoot::pin(&root_2).unwrap(),
        NOW,
    )
    .unwrap();
    assert_eq!(newer.roots().len(), 1);
    newer.add_roots(&[root_1.bytes()], NOW).unwrap();
    assert_eq!(newer.roots(), &[root_1.bytes().to_vec(), root_2.clone()]);
    // A foreign "root 1" that did not sign root 2 is refused.
    let stranger = key("root-z", 77);
    let foreign_1 =
        vendor::sign_root(&root_spec(1, &[&stranger], &[&release_1]), &[&stranger]).unwrap();
    let mut other = ReleaseStore::open(
        &tmp.path().join("store-3"),
        TrustedRoot::pin(&root_2).unwrap(),
        NOW,
    )
    .unwrap();
    let err = other.add_roots(&[foreign_1], NOW).unwrap_err();
    assert!(
        matches!(err, StoreError::OlderRoot { version: 1, .. }),
        "{err}"
    );
}

#[test]
fn an_expired_root_refuses_new_releases() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _, release_1) = first_root();
    let mut store = ReleaseStore::open(&tmp.path().join("store"), root, NOW).unwrap();
    let (manifest, binary) = release(tmp.path(), "1.1.0", &release_1);
    let err = store.add(&manifest, &binary, 100, EXPIRES).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::RootExpired { .. })),
        "{err}"
    );
}

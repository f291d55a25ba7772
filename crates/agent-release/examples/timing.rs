//! Measures what the agent and the appliance pay: `verify_offer` with and without a root walk,
//! and adding a 2 MB release to the store (`cargo run --release --example timing`).

#![allow(
    clippy::print_stdout,
    reason = "a program that prints its results, like a main.rs"
)]
use std::time::Instant;

use agent_release::store::ReleaseStore;
use agent_release::vendor::{self, ManifestSpec, RootSpec};
use agent_release::{Platform, SecretKey, TrustedRoot, Version, verify_offer};

fn main() -> anyhow::Result<()> {
    let key = |name: &str, seed: u8| SecretKey::from_seed(name, &[seed; 32]);
    let (root_a, root_b, root_c) = (key("root-a", 1)?, key("root-b", 2)?, key("root-c", 3)?);
    let (release_1, release_2) = (key("release-1", 11)?, key("release-2", 12)?);
    let now = 1_796_083_200;
    let spec = |version: u64, release: &SecretKey| RootSpec {
        version,
        expires_unix: now + 365 * 86_400,
        root_keys: vec![root_a.public(), root_b.public(), root_c.public()],
        root_threshold: 2,
        release_keys: vec![release.public()],
        release_threshold: 1,
    };
    let root_1 = TrustedRoot::pin(&vendor::sign_root(
        &spec(1, &release_1),
        &[&root_a, &root_b],
    )?)?;
    let root_2 = vendor::sign_root(&spec(2, &release_1), &[&root_a, &root_b])?;
    let root_3 = vendor::sign_root(&spec(3, &release_2), &[&root_b, &root_c])?;
    let binary = vec![0x5a; 2 * 1024 * 1024];
    let version: Version = "1.4.0".parse()?;
    let manifest = |key: &SecretKey| {
        vendor::sign_manifest(
            &ManifestSpec::for_binary(Platform::LinuxX86_64, version, "osiris-agent", &binary),
            &[key],
        )
    };
    let (manifest_1, manifest_2) = (manifest(&release_1)?, manifest(&release_2)?);
    let running: Version = "1.3.0".parse()?;

    let n = 2000u32;
    let start = Instant::now();
    for _ in 0..n {
        verify_offer(
            &root_1,
            &[] as &[&[u8]],
            &manifest_1,
            running,
            Platform::LinuxX86_64,
            now,
        )?;
    }
    let plain = start.elapsed() / n;
    let chain = [root_2.clone(), root_3.clone()];
    let start = Instant::now();
    for _ in 0..n {
        verify_offer(
            &root_1,
            &chain,
            &manifest_2,
            running,
            Platform::LinuxX86_64,
            now,
        )?;
    }
    let walked = start.elapsed() / n;
    println!("verify_offer, no root walk: {plain:?}");
    println!("verify_offer, walking 2 roots (threshold 2 of 3): {walked:?}");

    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("osiris-agent");
    std::fs::write(&path, &binary)?;
    let mut store = ReleaseStore::open(&tmp.path().join("store"), root_1.clone(), now)?;
    let start = Instant::now();
    store.add(&manifest_1, &path, 10, now)?;
    println!(
        "ReleaseStore::add of a 2 MiB release: {:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let mut offered = 0;
    for idx in 0..10_000 {
        if store
            .offer_for(&format!("agent-{idx}"), Platform::LinuxX86_64, running)
            .is_some()
        {
            offered += 1;
        }
    }
    println!(
        "offer_for, 10,000 agents at 10 %: {:?} per call, {offered} offered",
        start.elapsed() / 10_000
    );
    Ok(())
}

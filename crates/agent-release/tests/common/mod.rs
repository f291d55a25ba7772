//! Fixtures shared by the integration tests: deterministic keys, roots and manifests.

#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use agent_release::vendor::{self, ManifestSpec, RootSpec};
use agent_release::{Platform, PublicKey, SecretKey, TrustedRoot, Version};

/// 2030-01-01T00:00:00Z.
pub const EXPIRES: u64 = 1_893_456_000;
/// 2026-12-01T00:00:00Z.
pub const NOW: u64 = 1_796_083_200;

pub fn key(name: &str, seed: u8) -> SecretKey {
    SecretKey::from_seed(name, &[seed; 32]).unwrap()
}

pub fn publics(keys: &[&SecretKey]) -> Vec<PublicKey> {
    keys.iter().map(|key| key.public()).collect()
}

pub fn v(text: &str) -> Version {
    text.parse().unwrap()
}

pub fn root_spec(version: u64, root_keys: &[&SecretKey], release_keys: &[&SecretKey]) -> RootSpec {
    RootSpec {
        version,
        expires_unix: EXPIRES,
        root_keys: publics(root_keys),
        root_threshold: 1,
        release_keys: publics(release_keys),
        release_threshold: 1,
    }
}

pub fn manifest_spec(platform: Platform, version: &str, binary: &[u8]) -> ManifestSpec {
    let file_name = match platform {
        Platform::WindowsX86_64 => "osiris-agent.exe",
        _ => "osiris-agent",
    };
    ManifestSpec::for_binary(platform, v(version), file_name, binary)
}

pub fn manifest(version: &str, release_key: &SecretKey) -> Vec<u8> {
    vendor::sign_manifest(
        &manifest_spec(Platform::LinuxX86_64, version, b"agent binary"),
        &[release_key],
    )
    .unwrap()
}

/// Root 1 with root key `root-a` (seed 1) and release key `release-1` (seed 11).
pub fn first_root() -> (TrustedRoot, SecretKey, SecretKey) {
    let root_a = key("root-a", 1);
    let release_1 = key("release-1", 11);
    let bytes = vendor::sign_root(&root_spec(1, &[&root_a], &[&release_1]), &[&root_a]).unwrap();
    (TrustedRoot::pin(&bytes).unwrap(), root_a, release_1)
}

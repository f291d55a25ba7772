//! The per-platform release manifest and the verification the agent runs on an offer.
//!
//! Payload (JSON, unknown fields refused):
//!
//! ```json
//! {"platform": "linux-x86_64", "version": "1.4.2", "file_name": "osiris-agent",
//!  "size": 2412345, "sha256": "<64 lowercase hex digits>"}
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::{self, MANIFEST_TYPE};
use crate::error::VerifyError;
use crate::limits::{MAX_BINARY_BYTES, MAX_FILE_NAME_BYTES};
use crate::root::TrustedRoot;
use crate::version::{Platform, Version};

/// A release whose manifest verified under a trusted root: what to fetch and how to check it.
///
/// Only verification makes one, so a function that takes it knows the signatures were checked.
#[derive(Clone)]
pub struct VerifiedRelease {
    manifest: Vec<u8>,
    platform: Platform,
    version: Version,
    file_name: String,
    size: u64,
    sha256: [u8; 32],
    root: TrustedRoot,
}

/// The payload as it is written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestPayload {
    pub(crate) platform: String,
    pub(crate) version: String,
    pub(crate) file_name: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// Everything the agent checks before it fetches a release: walks `newer_roots` from
/// `trusted_root` (see [`TrustedRoot::walk`]), refuses the newest root if it expired at
/// `now_unix`, verifies the manifest's signatures against that root's release keys and
/// threshold, and refuses another platform than `platform` and any version not above `running`.
///
/// Persist `release.root()` when its version is above `trusted_root`'s, so the walk is not
/// repeated and an older chain can never be brought back.
pub fn verify_offer<B: AsRef<[u8]>>(
    trusted_root: &TrustedRoot,
    newer_roots: &[B],
    manifest: &[u8],
    running: Version,
    platform: Platform,
    now_unix: u64,
) -> Result<VerifiedRelease, VerifyError> {
    let root = trusted_root.walk(newer_roots)?;
    let release = root.verify_manifest(manifest, now_unix)?;
    if release.platform != platform {
        return Err(VerifyError::WrongPlatform {
            offered: release.platform,
            running: platform,
        });
    }
    if release.version <= running {
        return Err(VerifyError::NotNewer {
            offered: release.version,
            running,
        });
    }
    Ok(release)
}

impl TrustedRoot {
    /// Verifies a manifest's signatures and form under this root, refusing it if this root
    /// expired at `now_unix`; platform and version rules are the caller's (see [`verify_offer`]).
    pub fn verify_manifest(
        &self,
        manifest: &[u8],
        now_unix: u64,
    ) -> Result<VerifiedRelease, VerifyError> {
        self.check_fresh(now_unix)?;
        let what = "release manifest";
        let opened = document::open(manifest, MANIFEST_TYPE, what)?;
        opened.check_threshold(
            what,
            &format!("the release keys of root {}", self.version()),
            self.release_keys(),
            self.release_threshold(),
        )?;
        let raw: ManifestPayload =
            serde_json::from_slice(&opened.payload).map_err(|err| VerifyError::Malformed {
                what: what.to_owned(),
                reason: format!("not a manifest payload: {err}"),
            })?;
        let checked = check_payload(&raw).map_err(|reason| VerifyError::Malformed {
            what: what.to_owned(),
            reason,
        })?;
        Ok(VerifiedRelease {
            manifest: manifest.to_vec(),
            platform: checked.0,
            version: checked.1,
            file_name: raw.file_name,
            size: raw.size,
            sha256: checked.2,
            root: self.clone(),
        })
    }
}

impl VerifiedRelease {
    /// The platform the binary is for.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The release's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The binary's file name (informational; the agent installs over its own executable).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The binary's exact size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The binary's SHA-256.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The signed manifest, verbatim.
    pub fn manifest(&self) -> &[u8] {
        &self.manifest
    }

    /// The root it verified under (the newest reached by the walk).
    pub fn root(&self) -> &TrustedRoot {
        &self.root
    }
}

impl fmt::Debug for VerifiedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRelease")
            .field("platform", &self.platform)
            .field("version", &self.version)
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .field("sha256", &hex(&self.sha256))
            .field("root", &self.root.version())
            .finish_non_exhaustive()
    }
}

/// Checks a manifest payload: a known platform, a version, a safe file name, a size within
/// bounds and a SHA-256 in lowercase hex.
pub(crate) fn check_payload(
    raw: &ManifestPayload,
) -> Result<(Platform, Version, [u8; 32]), String> {
    let platform: Platform = raw.platform.parse().map_err(|err| format!("{err}"))?;
    let version: Version = raw.version.parse().map_err(|err| format!("{err}"))?;
    check_file_name(&raw.file_name)?;
    if raw.size == 0 || raw.size > MAX_BINARY_BYTES {
        return Err(format!(
            "size {} is out of range (1 to {MAX_BINARY_BYTES} bytes)",
            raw.size
        ));
    }
    let sha256 = parse_sha256(&raw.sha256)
        .ok_or_else(|| "sha256 is not 64 lowercase hex digits".to_owned())?;
    Ok((platform, version, sha256))
}

/// Checks a release file name: 1–64 ASCII letters, digits, `.`, `_` or `-`, not starting with `.`.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FILE_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "file_name `{}` must be 1 to {MAX_FILE_NAME_BYTES} ASCII letters, digits, `.`, `_` or `-`, not starting with `.`",
            document::shown(name)
        ))
    }
}

/// Lowercase hex of 32 bytes.
pub(crate) fn hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; 32];
    for (idx, pair) in digits.as_chunks::<2>().0.iter().enumerate() {
        bytes[idx] = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(bytes)
}

/// What a manifest says, read **without** checking its signatures: for a relay (Central
/// Command) that keeps documents verbatim and is not configured with the vendor's root. Whoever
/// installs or offers the release verifies it with [`TrustedRoot::verify_manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedManifest {
    /// The platform the binary is for.
    pub platform: Platform,
    /// The release's version.
    pub version: Version,
    /// The binary's file name.
    pub file_name: String,
    /// The binary's exact size in bytes.
    pub size: u64,
    /// The binary's SHA-256.
    pub sha256: [u8; 32],
}

/// Reads a manifest envelope and checks its payload's form (platform, version, file name, size,
/// SHA-256), not its signatures; see [`UnverifiedManifest`].
pub fn read_unverified(manifest: &[u8]) -> Result<UnverifiedManifest, VerifyError> {
    let what = "release manifest";
    let opened = document::open(manifest, MANIFEST_TYPE, what)?;
    let raw: ManifestPayload =
        serde_json::from_slice(&opened.payload).map_err(|err| VerifyError::Malformed {
            what: what.to_owned(),
            reason: format!("not a manifest payload: {err}"),
        })?;
    let (platform, version, sha256) =
        check_payload(&raw).map_err(|reason| VerifyError::Malformed {
            what: what.to_owned(),
            reason,
        })?;
    Ok(UnverifiedManifest {
        platform,
        version,
        file_name: raw.file_name,
        size: raw.size,
        sha256,
    })
}

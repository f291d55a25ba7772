//! The vendor's side: sign roots and manifests, and add signatures one holder at a time.
//!
//! A rotation (docs/AGENT-UPDATES.md): build the next [`RootSpec`] from the current root
//! ([`RootSpec::next_after`]), change its keys, then have a threshold of the *current* root keys
//! and a threshold of the *new* root keys sign it (with [`sign_root`] when one person holds them
//! all, or [`add_signature`] passed from holder to holder).

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::document::{self, EnvelopeSignature, MANIFEST_TYPE, ROOT_TYPE};
use crate::error::VerifyError;
use crate::key::{PublicKey, SecretKey};
use crate::manifest::{self, ManifestPayload};
use crate::root::{Root, RootPayload, TrustedRoot};
use crate::version::{Platform, Version};

/// What a root says. Deliberately no `Default`: every field is a decision.
#[derive(Debug, Clone)]
pub struct RootSpec {
    /// 1 for the first root, then each rotation adds exactly 1.
    pub version: u64,
    /// Unix seconds after which agents refuse releases under this root until a newer one arrives.
    pub expires_unix: u64,
    /// The keys that sign the next root.
    pub root_keys: Vec<PublicKey>,
    /// How many of them must sign it.
    pub root_threshold: u32,
    /// The keys that sign release manifests.
    pub release_keys: Vec<PublicKey>,
    /// How many of them must sign a manifest.
    pub release_threshold: u32,
}

/// What a release manifest says.
#[derive(Debug, Clone)]
pub struct ManifestSpec {
    /// The platform the binary is for.
    pub platform: Platform,
    /// The release's version.
    pub version: Version,
    /// The binary's file name (1–64 ASCII letters, digits, `.`, `_`, `-`).
    pub file_name: String,
    /// The binary's size in bytes.
    pub size: u64,
    /// The binary's SHA-256.
    pub sha256: [u8; 32],
}

/// Why a document could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The spec does not make a valid document.
    #[error("{what} is invalid: {reason}")]
    Spec {
        /// `root` or `release manifest`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No key was given.
    #[error("no signing key given")]
    NoKey,
    /// The document to add a signature to is not a signed envelope.
    #[error(transparent)]
    Document(#[from] VerifyError),
}

impl RootSpec {
    /// The next root after `current`: version + 1, same keys, thresholds and expiry (change what
    /// the rotation changes).
    pub fn next_after(current: &TrustedRoot) -> RootSpec {
        RootSpec {
            version: current.version() + 1,
            expires_unix: current.expires_unix(),
            root_keys: current.root_keys().to_vec(),
            root_threshold: threshold_u32(current.root_threshold()),
            release_keys: current.release_keys().to_vec(),
            release_threshold: threshold_u32(current.release_threshold()),
        }
    }
}

impl ManifestSpec {
    /// The spec for `binary`, hashing its bytes.
    pub fn for_binary(
        platform: Platform,
        version: Version,
        file_name: &str,
        binary: &[u8],
    ) -> ManifestSpec {
        ManifestSpec {
            platform,
            version,
            file_name: file_name.to_owned(),
            size: binary.len() as u64,
            sha256: Sha256::digest(binary).into(),
        }
    }
}

/// Signs a root with every key in `keys` (for a rotation: a threshold of the current root keys
/// and a threshold of the new ones).
pub fn sign_root(spec: &RootSpec, keys: &[&SecretKey]) -> Result<Vec<u8>, SignError> {
    let raw = RootPayload {
        version: spec.version,
        expires_unix: spec.expires_unix,
        root_keys: spec.root_keys.iter().map(ToString::to_string).collect(),
        root_threshold: spec.root_threshold,
        release_keys: spec.release_keys.iter().map(ToString::to_string).collect(),
        release_threshold: spec.release_threshold,
    };
    Root::from_raw(&raw).map_err(|reason| SignError::Spec {
        what: "root",
        reason,
    })?;
    let payload = to_json(&raw);
    sign(ROOT_TYPE, &payload, keys)
}

/// Signs a release manifest with every key in `keys` (release keys of the current root).
pub fn sign_manifest(spec: &ManifestSpec, keys: &[&SecretKey]) -> Result<Vec<u8>, SignError> {
    let raw = ManifestPayload {
        platform: spec.platform.as_str().to_owned(),
        version: spec.version.to_string(),
        file_name: spec.file_name.clone(),
        size: spec.size,
        sha256: manifest::hex(&spec.sha256),
    };
    manifest::check_payload(&raw).map_err(|reason| SignError::Spec {
        what: "release manifest",
        reason,
    })?;
    let payload = to_json(&raw);
    sign(MANIFEST_TYPE, &payload, keys)
}

/// Adds (or replaces) `key`'s signature on a signed root or manifest, leaving the payload and
/// the other signatures as they are: how separate key holders sign one root in turn.
pub fn add_signature(document_bytes: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignError> {
    let envelope: document::Envelope =
        serde_json::from_slice(document_bytes).map_err(|err| VerifyError::Malformed {
            what: "document to sign".to_owned(),
            reason: format!("not a signed envelope: {err}"),
        })?;
    let payload_type = match envelope.payload_type.as_str() {
        ROOT_TYPE => ROOT_TYPE,
        MANIFEST_TYPE => MANIFEST_TYPE,
        other => {
            return Err(VerifyError::WrongType {
                what: "document to sign".to_owned(),
                got: document::shown(other),
                expected: ROOT_TYPE,
            }
            .into());
        }
    };
    // Reuse the verifier's parsing, so what is signed is exactly what agents will read.
    let opened = document::open(document_bytes, payload_type, "document to sign")?;
    let mut signatures: Vec<EnvelopeSignature> = envelope
        .signatures
        .into_iter()
        .filter(|signature| signature.key != key.name())
        .collect();
    signatures.push(signature(payload_type, &opened.payload, key));
    Ok(document::seal(payload_type, &opened.payload, signatures))
}

fn sign(payload_type: &str, payload: &[u8], keys: &[&SecretKey]) -> Result<Vec<u8>, SignError> {
    if keys.is_empty() {
        return Err(SignError::NoKey);
    }
    let mut signatures: Vec<EnvelopeSignature> = Vec::with_capacity(keys.len());
    for key in keys {
        if signatures
            .iter()
            .all(|signature| signature.key != key.name())
        {
            signatures.push(signature(payload_type, payload, key));
        }
    }
    Ok(document::seal(payload_type, payload, signatures))
}

fn signature(payload_type: &str, payload: &[u8], key: &SecretKey) -> EnvelopeSignature {
    let signature = key.sign(&document::signing_bytes(payload_type, payload));
    EnvelopeSignature {
        key: key.name().to_owned(),
        sig: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn threshold_u32(value: usize) -> u32 {
    // A verified root's thresholds are at most `MAX_KEYS_PER_ROLE`.
    u32::try_from(value).unwrap_or(u32::MAX)
}

//! The signed-document envelope shared by roots and manifests, its signing bytes, and the
//! threshold check.
//!
//! ```json
//! {"payload_type": "osiris.agent-release.root/v1",
//!  "payload": "<standard base64 of the payload JSON>",
//!  "signatures": [{"key": "<key name>", "sig": "<standard base64 Ed25519 signature>"}]}
//! ```
//!
//! A signature covers [`signing_bytes`]: the domain [`SIGNING_DOMAIN`], then the payload type and
//! the payload bytes, each after its big-endian `u32` length, so a root signature can never pass
//! for a manifest signature (or for anything else the same key might sign), and no JSON is
//! re-serialised to check it.

use std::collections::BTreeSet;

use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::key::PublicKey;
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_SIGNATURES};

/// The domain every signature starts with (including the trailing NUL).
pub const SIGNING_DOMAIN: &[u8] = b"osiris-agent-release/v1\0";
/// The payload type of a root.
pub const ROOT_TYPE: &str = "osiris.agent-release.root/v1";
/// The payload type of a release manifest.
pub const MANIFEST_TYPE: &str = "osiris.agent-release.manifest/v1";

/// The bytes a signature covers: `SIGNING_DOMAIN ‖ u32be(len(type)) ‖ type ‖ u32be(len(payload)) ‖ payload`.
///
/// Exposed so a vendor can sign with other tools (an HSM, `openssl pkeyutl -sign -rawin`).
///
/// # Panics
/// If the payload type or payload exceed 4 GiB (the verifier reads at most 64 KiB).
pub fn signing_bytes(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes =
        Vec::with_capacity(SIGNING_DOMAIN.len() + 8 + payload_type.len() + payload.len());
    bytes.extend_from_slice(SIGNING_DOMAIN);
    for part in [payload_type.as_bytes(), payload] {
        let len = u32::try_from(part.len()).expect("a signed part is under 4 GiB");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(part);
    }
    bytes
}

/// The envelope as it is stored and sent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Envelope {
    pub(crate) payload_type: String,
    pub(crate) payload: String,
    pub(crate) signatures: Vec<EnvelopeSignature>,
}

/// One signature in an envelope.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvelopeSignature {
    pub(crate) key: String,
    pub(crate) sig: String,
}

/// An envelope whose encoding was checked; its signatures are not verified yet.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) payload: Vec<u8>,
    signed: Vec<u8>,
    signatures: Vec<(String, Signature)>,
}

/// Parses an envelope of `expected` type, bounded by [`MAX_DOCUMENT_BYTES`].
pub(crate) fn open(
    bytes: &[u8],
    expected: &'static str,
    what: &str,
) -> Result<Opened, VerifyError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(VerifyError::TooLarge {
            what: what.to_owned(),
            size: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let malformed = |reason: String| VerifyError::Malformed {
        what: what.to_owned(),
        reason,
    };
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|err| malformed(format!("not a signed envelope: {err}")))?;
    if envelope.payload_type != expected {
        return Err(VerifyError::WrongType {
            what: what.to_owned(),
            got: envelope.payload_type.chars().take(80).collect(),
            expected,
        });
    }
    if envelope.signatures.len() > MAX_SIGNATURES {
        return Err(malformed(format!(
            "{} signatures, over the limit of {MAX_SIGNATURES}",
            envelope.signatures.len()
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(&envelope.payload)
        .map_err(|err| malformed(format!("payload is not base64: {err}")))?;
    let mut signatures = Vec::with_capacity(envelope.signatures.len());
    for signature in envelope.signatures {
        let raw = b64.decode(&signature.sig).map_err(|err| {
            malformed(format!(
                "the signature by `{}` is not base64: {err}",
                shown(&signature.key)
            ))
        })?;
        let raw: [u8; 64] = raw.try_into().map_err(|raw: Vec<u8>| {
            malformed(format!(
                "the signature by `{}` is {} bytes, not 64",
                shown(&signature.key),
                raw.len()
            ))
        })?;
        signatures.push((signature.key, Signature::from_bytes(&raw)));
    }
    Ok(Opened {
        signed: signing_bytes(expected, &payload),
        payload,
        signatures,
    })
}

impl Opened {
    /// Checks that at least `threshold` distinct keys of `keys` signed; `role` names them in errors.
    pub(crate) fn check_threshold(
        &self,
        what: &str,
        role: &str,
        keys: &[PublicKey],
        threshold: usize,
    ) -> Result<(), VerifyError> {
        let mut valid = BTreeSet::new();
        let mut bad = None;
        let mut unknown = Vec::new();
        for (name, signature) in &self.signatures {
            match keys.iter().find(|key| key.name() == name) {
                Some(key) if key.verify(&self.signed, signature) => {
                    valid.insert(key.name());
                }
                Some(key) => {
                    bad.get_or_insert_with(|| key.name().to_owned());
                }
                None => unknown.push(shown(name)),
            }
        }
        let valid = valid.len();
        if valid >= threshold {
            return Ok(());
        }
        let (what, role) = (what.to_owned(), role.to_owned());
        Err(match bad {
            Some(key) => VerifyError::BadSignature {
                what,
                key,
                role,
                valid,
                threshold,
            },
            None if !unknown.is_empty() => VerifyError::UnknownKey {
                what,
                keys: unknown,
                role,
                valid,
                threshold,
            },
            None => VerifyError::ThresholdNotMet {
                what,
                role,
                valid,
                threshold,
            },
        })
    }
}

/// Builds an envelope's JSON from a payload and its signatures.
pub(crate) fn seal(
    payload_type: &str,
    payload: &[u8],
    signatures: Vec<EnvelopeSignature>,
) -> Vec<u8> {
    let envelope = Envelope {
        payload_type: payload_type.to_owned(),
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
        signatures,
    };
    // Serialising strings into a vector cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&envelope).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A name from untrusted input, shortened for an error message.
pub(crate) fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

//! The canonical signing bytes of a check result and its Ed25519 signature by the device key.
//!
//! Protobuf encoding is not canonical (field order, map order, default values and unknown fields
//! may all differ between two encoders of the same message), so the device key signs a byte
//! string of our own instead: fixed, domain-separated and length-prefixed, built only from the
//! fields the result carries. The appliance keeps these bytes and the signature, so the evidence
//! proves what the device itself reported without any protobuf library.
//!
//! Layout (version 1; every integer big-endian, every string UTF-8 with a `u32` byte-length
//! prefix):
//!
//! | bytes | content |
//! |---|---|
//! | 28 | [`RESULT_SIGNING_DOMAIN`]: `osiris.agent.v1.CheckResult` and one `0x00` byte |
//! | 8 | `seq` (`u64`) |
//! | 4 + n | `check_id` |
//! | 4 | `status` (`i32`, the enum's wire number) |
//! | 8 | `observed_at_unix_ms` (`i64`) |
//! | 4 + n | `catalog_version` |
//! | 4 | the number of facts (`u32`) |
//! | per fact | its key (4 + n), then its value (4 + n), facts in ascending byte order of key |
//!
//! The `signature` field is not part of it. A future field that must be signed needs a new
//! layout with a new domain string; this one never changes.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::limits::{DEVICE_KEY_BYTES, SIGNATURE_BYTES};
use crate::v1::CheckResult;

/// The first bytes of every result's signing bytes: the message's full name and a NUL, so a
/// device key's signature over a result can never be taken for a signature over anything else.
pub const RESULT_SIGNING_DOMAIN: &[u8; 28] = b"osiris.agent.v1.CheckResult\0";

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The device public key is not 32 bytes.
    #[error("the device public key is {len} bytes; an Ed25519 key is {DEVICE_KEY_BYTES}")]
    KeyLength {
        /// Its length.
        len: usize,
    },
    /// The 32 bytes are not an Ed25519 public key.
    #[error("the device public key is not a valid Ed25519 point")]
    KeyInvalid,
    /// The signature is not 64 bytes.
    #[error("CheckResult.signature is {len} bytes; an Ed25519 signature is {SIGNATURE_BYTES}")]
    SignatureLength {
        /// Its length.
        len: usize,
    },
    /// The signature does not verify over the result's signing bytes with this key.
    #[error("CheckResult.signature does not verify with the device key")]
    Mismatch,
}

/// The canonical bytes a device key signs for `result` (layout in the module documentation).
///
/// # Panics
/// When a string or the fact count is longer than `u32::MAX`, which a decoded message cannot be
/// (its size is bounded by the codec far below that).
#[must_use]
pub fn result_signing_bytes(result: &CheckResult) -> Vec<u8> {
    let facts_len: usize = result
        .facts
        .iter()
        .map(|(key, value)| 8 + key.len() + value.len())
        .sum();
    let mut out = Vec::with_capacity(
        RESULT_SIGNING_DOMAIN.len()
            + 8
            + 4
            + result.check_id.len()
            + 4
            + 8
            + 4
            + result.catalog_version.len()
            + 4
            + facts_len,
    );
    out.extend_from_slice(RESULT_SIGNING_DOMAIN);
    out.extend_from_slice(&result.seq.to_be_bytes());
    put_str(&mut out, &result.check_id);
    out.extend_from_slice(&result.status.to_be_bytes());
    out.extend_from_slice(&result.observed_at_unix_ms.to_be_bytes());
    put_str(&mut out, &result.catalog_version);
    put_len(&mut out, result.facts.len());
    // A BTreeMap iterates in ascending key order, and `String`'s order is its bytes' order.
    for (key, value) in &result.facts {
        put_str(&mut out, key);
        put_str(&mut out, value);
    }
    out
}

/// Signs `result`'s signing bytes with the device key; the caller puts the signature into
/// `result.signature`.
#[must_use]
pub fn sign_result(device_key: &SigningKey, result: &CheckResult) -> [u8; SIGNATURE_BYTES] {
    device_key.sign(&result_signing_bytes(result)).to_bytes()
}

/// Verifies `result.signature` over `result`'s signing bytes with the device's public key
/// (strict verification: no malleable or small-order signatures).
///
/// # Errors
/// When the signature has the wrong length or does not verify.
pub fn verify_result(
    device_key: &VerifyingKey,
    result: &CheckResult,
) -> Result<(), SignatureError> {
    let bytes: &[u8; SIGNATURE_BYTES] =
        result
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::SignatureLength {
                len: result.signature.len(),
            })?;
    device_key
        .verify_strict(&result_signing_bytes(result), &Signature::from_bytes(bytes))
        .map_err(|_| SignatureError::Mismatch)
}

/// Reads a device public key as sent in `EnrollRequest.device_public_key`.
///
/// # Errors
/// When it is not 32 bytes or not a point on the curve.
pub fn device_key(bytes: &[u8]) -> Result<VerifyingKey, SignatureError> {
    let bytes: &[u8; DEVICE_KEY_BYTES] = bytes
        .try_into()
        .map_err(|_| SignatureError::KeyLength { len: bytes.len() })?;
    VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::KeyInvalid)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a decoded message's lengths fit in u32");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

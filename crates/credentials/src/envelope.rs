//! The vault file's byte layout: a fixed header, a random nonce, and the AEAD ciphertext.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "OSIRISCV"
//! 8       1     format version (1)
//! 9       1     AEAD algorithm id (1 = XChaCha20-Poly1305)
//! 10      24    nonce, fresh from the OS random generator on every write
//! 34      n+16  ciphertext of the JSON contents, with the Poly1305 tag at the end
//! ```
//!
//! The associated data is the 10-byte header, so a changed magic, version or algorithm id
//! fails authentication as surely as a changed ciphertext byte.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::key::{KEY_LEN, KeyError, VaultKey, fill_random};

/// The file's first bytes.
pub(crate) const MAGIC: &[u8; 8] = b"OSIRISCV";
/// The only format version this code writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Algorithm id of XChaCha20-Poly1305.
pub(crate) const ALG_XCHACHA20_POLY1305: u8 = 1;
/// Magic, version and algorithm id.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + 2;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a file could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Not a vault file this code understands (bad magic, unknown version or algorithm, truncated).
    Unrecognized(String),
    /// Authentication failed: wrong key or modified bytes.
    Undecryptable,
}

/// Encrypts `plaintext` under `key` with a fresh random nonce.
pub(crate) fn seal(key: &VaultKey, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let header = header();
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let cipher = cipher(key);
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &header,
            },
        )
        .map_err(|_| KeyError::Random {
            reason: "encryption refused the input (too long)".to_owned(),
        })?;
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Checks the header and decrypts.
pub(crate) fn open(key: &VaultKey, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if bytes.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
        return Err(OpenError::Unrecognized(format!(
            "{} bytes is shorter than the smallest vault file",
            bytes.len()
        )));
    }
    let (header, rest) = bytes.split_at(HEADER_LEN);
    if &header[..MAGIC.len()] != MAGIC {
        return Err(OpenError::Unrecognized(
            "it does not start with the vault magic `OSIRISCV`".to_owned(),
        ));
    }
    if header[MAGIC.len()] != VERSION {
        return Err(OpenError::Unrecognized(format!(
            "format version {} is not supported (this build reads version {VERSION})",
            header[MAGIC.len()]
        )));
    }
    if header[MAGIC.len() + 1] != ALG_XCHACHA20_POLY1305 {
        return Err(OpenError::Unrecognized(format!(
            "algorithm id {} is not supported (this build reads {ALG_XCHACHA20_POLY1305}, XChaCha20-Poly1305)",
            header[MAGIC.len() + 1]
        )));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let cipher = cipher(key);
    cipher
        .decrypt(
            &XNonce::from(nonce_bytes),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Undecryptable)
}

fn cipher(key: &VaultKey) -> XChaCha20Poly1305 {
    let key_bytes: &[u8; KEY_LEN] = &key.bytes;
    XChaCha20Poly1305::new(key_bytes.into())
}

fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    header[MAGIC.len()] = VERSION;
    header[MAGIC.len() + 1] = ALG_XCHACHA20_POLY1305;
    header
}

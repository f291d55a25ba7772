//! Signed tree-head checkpoints in the C2SP tlog-checkpoint format.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{ApplianceKey, VerifierKey};
use crate::note::{self, NoteError};

/// A checkpoint: the log origin, its size and its RFC 9162 root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log origin, `osiris-appliance/<appliance id>`.
    pub origin: String,
    /// Number of bundles the checkpoint covers.
    pub size: u64,
    /// Merkle root of the first `size` bundles.
    pub root: [u8; 32],
}

/// Why a checkpoint note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed-note layer failed (structure or signature).
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The signed body is not `<origin>\n<size>\n<base64 root>\n`.
    #[error("malformed checkpoint body: {0}")]
    Body(String),
    /// The checkpoint names a different log than the key.
    #[error(
        "checkpoint origin {found:?} is not the origin of key {expected:?}: it belongs to another log"
    )]
    WrongOrigin {
        /// The origin of the verifying key.
        expected: String,
        /// The origin found in the checkpoint.
        found: String,
    },
}

impl Checkpoint {
    /// Returns the checkpoint body: origin, decimal size, base64 root, each followed by a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Signs the checkpoint and returns the full signed-note text.
    pub fn sign(&self, key: &ApplianceKey) -> String {
        note::sign(&self.body(), key)
    }

    /// Parses a signed checkpoint note and verifies its signature by `key` and its origin.
    pub fn parse_and_verify(text: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let body = note::open(text, key)?;
        let checkpoint = Self::parse_body(body)?;
        if checkpoint.origin != key.name() {
            return Err(CheckpointError::WrongOrigin {
                expected: key.name().to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }

    /// Parses an (unverified) checkpoint body.
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::Body(reason.to_owned());
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .unwrap_or(body)
            .split('\n')
            .collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(malformed(
                "expected exactly three lines: origin, size, root",
            ));
        };
        if origin.is_empty() {
            return Err(malformed("the origin line is empty"));
        }
        let size_is_canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == &"0" || !size.starts_with('0'));
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| size_is_canonical)
            .ok_or_else(|| malformed("the size is not a canonical decimal number"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| malformed("the root is not 32 bytes of standard base64"))?;
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
        })
    }
}

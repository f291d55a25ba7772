//! C2SP signed notes (https://c2sp.org/signed-note): signing a text and opening a signed note with one Ed25519 key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{ApplianceKey, VerifierKey};

/// Why a signed note could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not a well-formed signed note.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// No signature line carries the expected key name and key id.
    #[error("no signature by key {name} (key id {key_id}): the note was signed by another key")]
    NoSignature {
        /// The expected key name.
        name: String,
        /// The expected key id, hex.
        key_id: String,
    },
    /// A signature line for the key exists but does not verify.
    #[error(
        "signature by {name} does not verify: the note text was altered after signing, or signed by another key"
    )]
    BadSignature {
        /// The key name.
        name: String,
    },
}

/// Signs `text` and returns the full note: text, blank line, one signature line.
///
/// A text without a final newline gets one appended before signing.
pub fn sign(text: &str, key: &ApplianceKey) -> String {
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let signature = key.sign(text.as_bytes());
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&key.key_id());
    blob.extend_from_slice(&signature);
    format!(
        "{text}\n\u{2014} {} {}\n",
        key.origin(),
        BASE64.encode(&blob)
    )
}

/// Opens a signed note: checks its structure and the signature by `key`, and returns the signed text.
///
/// Signature lines by other keys are allowed and ignored, as the C2SP spec requires.
pub fn open<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    let malformed = |reason: &str| NoteError::Malformed(reason.to_owned());
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line separates the text from the signatures"))?;
    let text = &note[..=split];
    let signatures = &note[split + 2..];
    if !signatures.ends_with('\n') {
        return Err(malformed("the last signature line has no final newline"));
    }
    if text.len() == 1 {
        return Err(malformed("the signed text is empty"));
    }
    let mut found = None;
    for line in signatures[..signatures.len() - 1].split('\n') {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| {
            malformed("a signature line does not start with an em dash and a space")
        })?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("a signature line has no key name"))?;
        let blob = BASE64
            .decode(blob)
            .map_err(|_| malformed("a signature is not valid base64"))?;
        if blob.len() < 5 {
            return Err(malformed("a signature is shorter than a key id"));
        }
        if name == key.name() && blob[..4] == key.key_id() {
            found = Some(blob);
        }
    }
    let Some(blob) = found else {
        return Err(NoteError::NoSignature {
            name: key.name().to_owned(),
            key_id: key.key_id_hex(),
        });
    };
    let signature = <[u8; 64]>::try_from(&blob[4..]).map_err(|_| NoteError::BadSignature {
        name: key.name().to_owned(),
    })?;
    if !key.verify_strict(text.as_bytes(), &signature) {
        return Err(NoteError::BadSignature {
            name: key.name().to_owned(),
        });
    }
    Ok(text)
}

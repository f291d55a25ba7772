//! `Secret`: a credential value that is wiped from memory on drop and never printed.

use std::fmt;
use std::io::Read;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::vault::CredentialKind;

/// A secret value (password or private key text).
///
/// `Debug` and `Display` print `[redacted]`; the value is only reachable through
/// [`Secret::expose`] and [`Secret::as_bytes`], and its memory is zeroed on drop.
#[derive(Clone)]
pub struct Secret(String);

/// A secret could not be read from input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadSecretError {
    /// Reading failed.
    #[error("cannot read the secret from stdin")]
    Io(#[from] std::io::Error),
    /// The input is longer than any password or private key should be.
    #[error("the secret on stdin is longer than {max} bytes: pipe only the password or key file")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The input is not UTF-8 text.
    #[error(
        "the secret on stdin is not UTF-8 text: give the password, or the key in OpenSSH/PEM text form"
    )]
    NotUtf8,
    /// Nothing was read.
    #[error("the secret on stdin is empty: pipe the password or key file into the command")]
    Empty,
}

impl Secret {
    /// The longest secret [`Secret::read`] accepts, in bytes.
    pub const MAX_LEN: usize = 64 * 1024;

    /// Wraps a value; the `String` is moved, not copied.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// Reads a secret from `input` (at most [`Secret::MAX_LEN`] bytes) without leaving copies in
    /// memory; for a password, one trailing newline (`\n` or `\r\n`) is dropped.
    pub fn read(mut input: impl Read, kind: CredentialKind) -> Result<Secret, ReadSecretError> {
        // Allocated once at full size so growing never leaves unwiped copies behind.
        let mut buf = Zeroizing::new(vec![0u8; Secret::MAX_LEN + 1]);
        let mut len = 0;
        while len < buf.len() {
            match input.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(ReadSecretError::Io(err)),
            }
        }
        if len > Secret::MAX_LEN {
            return Err(ReadSecretError::TooLong {
                max: Secret::MAX_LEN,
            });
        }
        let mut text = &buf[..len];
        if kind == CredentialKind::Password {
            text = text
                .strip_suffix(b"\r\n")
                .or_else(|| text.strip_suffix(b"\n"))
                .unwrap_or(text);
        }
        if text.is_empty() {
            return Err(ReadSecretError::Empty);
        }
        let text = std::str::from_utf8(text).map_err(|_| ReadSecretError::NotUtf8)?;
        Ok(Secret(text.to_owned()))
    }

    /// The secret value, for handing to a transport; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret value as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_strips_one_newline_from_passwords_only() {
        // Expected: the stored value, or a phrase of the error message.
        let cases: [(&[u8], CredentialKind, Result<&str, &str>); 9] = [
            (b"hunter2\n", CredentialKind::Password, Ok("hunter2")),
            (b"hunter2\r\n", CredentialKind::Password, Ok("hunter2")),
            (b"hunter2\n\n", CredentialKind::Password, Ok("hunter2\n")),
            (b"hunter2", CredentialKind::Password, Ok("hunter2")),
            (b" pass word ", CredentialKind::Password, Ok(" pass word ")),
            (b"KEY\n", CredentialKind::SshKey, Ok("KEY\n")),
            (b"\n", CredentialKind::Password, Err("is empty")),
            (b"", CredentialKind::SshKey, Err("is empty")),
            (b"\xff\xfe", CredentialKind::Password, Err("not UTF-8")),
        ];
        for (input, kind, expected) in cases {
            match (Secret::read(input, kind), expected) {
                (Ok(secret), Ok(text)) => assert_eq!(secret.expose(), text, "{input:?}"),
                (Err(err), Err(phrase)) => {
                    assert!(err.to_string().contains(phrase), "{input:?}: {err}");
                }
                (res, expected) => panic!("{input:?}: got {res:?}, expected {expected:?}"),
            }
        }
        let too_long = vec![b'a'; Secret::MAX_LEN + 1];
        assert!(matches!(
            Secret::read(&too_long[..], CredentialKind::SshKey),
            Err(ReadSecretError::TooLong { .. })
        ));
        let max = vec![b'a'; Secret::MAX_LEN];
        assert_eq!(
            Secret::read(&max[..], CredentialKind::SshKey)
                .unwrap()
                .len(),
            Secret::MAX_LEN
        );
    }
}

//! Ed25519 keys written as in `update-manifest`: a public key is `name:base64(32 bytes)`, a
//! secret key `name:base64(32-byte seed)`; names are short ASCII labels that signatures refer to.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::limits::MAX_KEY_NAME_BYTES;

/// A public key allowed to sign, with the name signatures refer to it by.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

/// A vendor's signing key (root or release). Never printed: `Debug` shows only its name.
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

/// A key string that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("key `{shown}` is invalid: {reason}")]
pub struct KeyError {
    shown: String,
    reason: String,
}

impl PublicKey {
    /// Parses `name:base64(32-byte Ed25519 public key)`; small-order keys are refused.
    pub fn parse(input: &str) -> Result<PublicKey, KeyError> {
        let input = input.trim();
        let fail = |reason: &str| KeyError {
            shown: input.chars().take(120).collect(),
            reason: format!("{reason}; expected `name:base64` of a 32-byte Ed25519 public key"),
        };
        let (name, encoded) = input.split_once(':').ok_or_else(|| fail("no `:`"))?;
        check_name(name).map_err(|reason| fail(&reason))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| fail("not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| fail("not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| fail("not a valid point"))?;
        if key.is_weak() {
            return Err(fail("a weak (small-order) key"));
        }
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32 public key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify_strict(message, signature).is_ok()
    }
}

impl SecretKey {
    /// A new key named `name` from the operating system's randomness.
    pub fn generate(name: &str) -> Result<SecretKey, KeyError> {
        check_name(name).map_err(|reason| KeyError {
            shown: name.chars().take(120).collect(),
            reason,
        })?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| KeyError {
            shown: name.to_owned(),
            reason: format!("the operating system gave no randomness: {err}"),
        })?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(SecretKey {
            name: name.to_owned(),
            key,
        })
    }

    /// A key from a known seed (tests and reproducible fixtures only).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        check_name(name).map_err(|reason| KeyError {
            shown: name.chars().take(120).collect(),
            reason,
        })?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Parses `name:base64(32-byte seed)`, the form [`SecretKey::encode`] writes.
    pub fn parse(input: &str) -> Result<SecretKey, KeyError> {
        let input = input.trim();
        let (name, encoded) = input.split_once(':').ok_or_else(|| KeyError {
            // Never echo secret material: only the part before the colon, if any.
            shown: "(secret key)".to_owned(),
            reason: "no `:`; expected `name:base64` of a 32-byte Ed25519 seed".to_owned(),
        })?;
        let fail = |reason: &str| KeyError {
            shown: format!("{}:…", name.chars().take(64).collect::<String>()),
            reason: format!("{reason}; expected `name:base64` of a 32-byte Ed25519 seed"),
        };
        check_name(name).map_err(|reason| fail(&reason))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| fail("not base64"))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| fail("not 32 bytes"))?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret key's text form, `name:base64(seed)`, for a 0600 file.
    pub fn encode(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.key.to_bytes());
        format!("{}:{encoded}", self.name)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public half, for a root's key lists.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(input: &str) -> Result<PublicKey, KeyError> {
        PublicKey::parse(input)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes());
        write!(f, "{}:{encoded}", self.name)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}:[redacted])", self.name)
    }
}

/// Checks a key name: 1–64 ASCII letters, digits, `.`, `_` or `-`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_KEY_NAME_BYTES {
        return Err(format!("its name must be 1 to {MAX_KEY_NAME_BYTES} bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("its name may hold only ASCII letters, digits, `.`, `_` and `-`".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_secrets_are_not_shown() {
        let secret = SecretKey::from_seed("release-1", &[7; 32]).unwrap();
        let public = secret.public();
        assert_eq!(PublicKey::parse(&public.to_string()).unwrap(), public);
        let again = SecretKey::parse(&secret.encode()).unwrap();
        assert_eq!(again.public(), public);
        assert_eq!(format!("{secret:?}"), "SecretKey(release-1:[redacted])");
        let err = SecretKey::parse("release-1:AAAA").unwrap_err().to_string();
        assert!(!err.contains("AAAA"), "{err}");
        assert!(err.contains("not 32 bytes"), "{err}");
    }

    #[test]
    fn bad_public_keys_are_refused_with_the_reason() {
        let good = SecretKey::from_seed("k", &[1; 32])
            .unwrap()
            .public()
            .to_string();
        let (_, encoded) = good.split_once(':').unwrap();
        for (input, reason) in [
            ("nocolon", "no `:`"),
            (&format!(":{encoded}") as &str, "name must be 1 to 64"),
            (&format!("a b:{encoded}"), "ASCII letters"),
            ("k:!!!", "not base64"),
            ("k:AAAA", "not 32 bytes"),
            // The identity point has small order.
            ("k:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "weak"),
        ] {
            let err = PublicKey::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
        assert!(SecretKey::generate("bad name").is_err());
    }
}

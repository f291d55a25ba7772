//! Appliance signing key and verifier key in the C2SP signed-note key encodings, and the key file on disk.

use std::fmt;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The Ed25519 key of one appliance, with its signed-note name (the log origin) and key id.
#[derive(Clone)]
pub struct ApplianceKey {
    signing: SigningKey,
    verifier: VerifierKey,
}

/// A C2SP signed-note verifier key: `<name>+<keyid hex>+<base64(0x01 ‖ public key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

/// Why a key could not be loaded, created or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or inspecting the key file, or creating its directory, failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The new key file could not be written.
    #[error("cannot save the new appliance key")]
    Write(#[source] durable::Error),
    /// The key file is readable or writable by group or others.
    #[error(
        "key file {path} has mode {mode:o}, which lets other users read the appliance signing key: run `chmod 600 {path}` (and check nobody copied it)"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The text is not a valid key in the expected encoding.
    #[error("invalid {what}: {reason}")]
    Malformed {
        /// Which encoding was expected (signer key, verifier key).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A systemd credential holding the key was requested but cannot be used.
    #[error("systemd credential `{name}` {problem}")]
    Credential {
        /// The credential name.
        name: String,
        /// What is wrong, with what to do about it.
        problem: String,
    },
}

/// Algorithm byte of Ed25519 in the signed-note key encodings.
const ALG_ED25519: u8 = 0x01;

impl ApplianceKey {
    /// Generates a fresh key from the operating system's randomness, named `osiris-appliance/<appliance id>`.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// Builds the key for a 32-byte Ed25519 seed, named `osiris-appliance/<appliance id>`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = signing.verifying_key();
        let name = format!("osiris-appliance/{}", appliance_id_of(&public));
        Self::with_name(signing, name)
    }

    /// Loads the key file at `path`, or creates it (directory 0700, file 0600, atomically) if it does not exist.
    ///
    /// Refuses a key file that group or others may read or write.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match fs::symlink_metadata(path) {
            Ok(metadata) => {
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::InsecurePermissions {
                        path: path.to_owned(),
                        mode,
                    });
                }
                let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
                    action: "reading key file",
                    path: path.to_owned(),
                    source,
                })?;
                text.parse()
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_key_file(path, &key.private_key_text())?;
                Ok(key)
            }
            Err(source) => Err(KeyError::Io {
                action: "inspecting key file",
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Returns the verifier (public) key.
    pub fn verifier(&self) -> VerifierKey {
        self.verifier.clone()
    }

    /// Returns the appliance id: the first 16 hex digits of SHA-256 of the public key.
    pub fn appliance_id(&self) -> &str {
        self.verifier.appliance_id()
    }

    /// Returns the key name, which is the log origin `osiris-appliance/<appliance id>`.
    pub fn origin(&self) -> &str {
        &self.verifier.name
    }

    /// Returns the key id as 8 lowercase hex digits.
    pub fn key_id_hex(&self) -> String {
        self.verifier.key_id_hex()
    }

    /// Returns the 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.verifier.key_id
    }

    /// Signs `msg` with Ed25519.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// Returns the signer key text `PRIVATE+KEY+<name>+<keyid hex>+<base64(0x01 ‖ seed)>`, without newline.
    pub fn private_key_text(&self) -> String {
        let mut material = Vec::with_capacity(33);
        material.push(ALG_ED25519);
        material.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.verifier.name,
            self.key_id_hex(),
            BASE64.encode(&material)
        )
    }

    fn with_name(signing: SigningKey, name: String) -> Self {
        let key = signing.verifying_key();
        let key_id = key_id_of(&name, &key);
        Self {
            signing,
            verifier: VerifierKey { name, key_id, key },
        }
    }
}

impl FromStr for ApplianceKey {
    type Err = KeyError;

    /// Parses `PRIVATE+KEY+<name>+<keyid hex>+<base64(0x01 ‖ seed)>`, with an optional trailing newline.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            what: "signer key",
            reason: reason.to_owned(),
        };
        let text = text.strip_suffix('\n').unwrap_or(text);
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed("it does not start with PRIVATE+KEY+"))?;
        let (name, key_id, material) =
            split_key_fields(rest).ok_or_else(|| malformed("expected <name>+<keyid>+<key>"))?;
        let seed = match material.as_slice() {
            [ALG_ED25519, seed @ ..] => <[u8; 32]>::try_from(seed)
                .map_err(|_| malformed("the Ed25519 seed must be 32 bytes"))?,
            _ => return Err(malformed("the key is not an Ed25519 (type 0x01) key")),
        };
        let key = Self::with_name(SigningKey::from_bytes(&seed), name.to_owned());
        if key.key_id() != key_id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(key)
    }
}

impl fmt::Debug for ApplianceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplianceKey")
            .field("verifier", &self.verifier.to_string())
            .finish_non_exhaustive()
    }
}

impl VerifierKey {
    /// Returns the key name (for appliance keys, the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Returns the key id as 8 lowercase hex digits.
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key_id)
    }

    /// Returns the appliance id derived from the public key (first 16 hex digits of its SHA-256).
    pub fn appliance_id(&self) -> &str {
        // The name of an appliance key is `osiris-appliance/<id>`; other names fall back to the whole name.
        self.name
            .strip_prefix("osiris-appliance/")
            .unwrap_or(&self.name)
    }

    /// Returns the appliance id computed from the public key bytes.
    pub fn derived_appliance_id(&self) -> String {
        appliance_id_of(&self.key)
    }

    /// Returns the Ed25519 public key.
    pub fn ed25519(&self) -> &VerifyingKey {
        &self.key
    }

    /// Verifies `signature` over `msg` with Ed25519 strict verification (RFC 8032 §5.1.7, no small-order keys or R, canonical S).
    pub fn verify_strict(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.key.verify_strict(msg, &signature).is_ok()
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    /// Parses `<name>+<keyid hex>+<base64(0x01 ‖ public key)>`, with an optional trailing newline.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            what: "verifier key",
            reason: reason.to_owned(),
        };
        let text = text.strip_suffix('\n').unwrap_or(text);
        let (name, key_id, material) =
            split_key_fields(text).ok_or_else(|| malformed("expected <name>+<keyid>+<key>"))?;
        let public = match material.as_slice() {
            [ALG_ED25519, public @ ..] => <[u8; 32]>::try_from(public)
                .map_err(|_| malformed("the Ed25519 public key must be 32 bytes"))?,
            _ => return Err(malformed("the key is not an Ed25519 (type 0x01) key")),
        };
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| malformed("the public key is not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(malformed(
                "the public key has small order, so signatures under it prove nothing",
            ));
        }
        if key_id_of(name, &key) != key_id {
            return Err(malformed("the key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = Vec::with_capacity(33);
        material.push(ALG_ED25519);
        material.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.key_id_hex(),
            BASE64.encode(&material)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// Returns the signed-note key id: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
fn key_id_of(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALG_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn appliance_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Splits `<name>+<keyid hex>+<base64>`; the base64 may itself contain `+`.
fn split_key_fields(text: &str) -> Option<(&str, [u8; 4], Vec<u8>)> {
    let (name, rest) = text.split_once('+')?;
    let (key_id_hex, material) = rest.split_once('+')?;
    if name.is_empty() || name.chars().any(|ch| ch.is_whitespace() || ch == '+') {
        return None;
    }
    if key_id_hex.len() != 8
        || key_id_hex
            .bytes()
            .any(|byte| !matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut key_id = [0u8; 4];
    hex::decode_to_slice(key_id_hex, &mut key_id).ok()?;
    let material = BASE64.decode(material).ok()?;
    Some((name, key_id, material))
}

fn write_key_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|source| KeyError::Io {
            action: "creating key directory",
            path: parent.to_owned(),
            source,
        })?;
    durable::write(path, format!("{text}\n").as_bytes(), 0o600).map_err(KeyError::Write)
}

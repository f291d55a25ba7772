//! `Vault`: the credential map, its locked read-modify-write cycle and durable file replacement.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use crate::envelope::{self, OpenError};
use crate::key::{KeyError, KeySource, VaultKey, parent_dir};
use crate::secret::Secret;

/// The credential vault: a snapshot of the decrypted map plus the key to change it.
///
/// Reads ([`Vault::get`], [`Vault::list`]) use the snapshot taken by [`Vault::open`] or the last
/// change; [`Vault::reload`] refreshes it. Every change re-reads the file under an exclusive
/// lock, applies itself and atomically replaces the file, so concurrent writers never lose
/// updates.
#[derive(Debug)]
pub struct Vault {
    path: PathBuf,
    key: VaultKey,
    entries: BTreeMap<String, Entry>,
}

/// What kind of secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A password (WinRM account, AD bind, SSH password).
    Password,
    /// An SSH private key in OpenSSH or PEM text form.
    SshKey,
}

/// A credential with its secret; `Debug` shows the secret as `[redacted]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Credential {
    /// The credential's name.
    pub name: String,
    /// What the secret is.
    pub kind: CredentialKind,
    /// The secret value.
    pub secret: Secret,
    /// When it was first stored.
    pub created: OffsetDateTime,
    /// When its value was last set.
    pub updated: OffsetDateTime,
}

/// A credential without its secret, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialInfo {
    /// The credential's name.
    pub name: String,
    /// What the secret is.
    pub kind: CredentialKind,
    /// When it was first stored.
    pub created: OffsetDateTime,
    /// When its value was last set.
    pub updated: OffsetDateTime,
}

/// A vault operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The vault file could not be read.
    #[error("cannot read vault {}", path.display())]
    Read {
        /// The vault file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Authentication failed: the key is not the vault's key, or the file was changed.
    #[error(
        "vault {} cannot be decrypted with {key}: wrong key or the file was modified; restore from backup or re-enter credentials",
        path.display()
    )]
    Undecryptable {
        /// The vault file.
        path: PathBuf,
        /// The key that was tried (its [`KeySource`] description).
        key: String,
    },
    /// The file is not a vault this build can read (damaged header, unknown version or algorithm).
    #[error(
        "vault {} is not readable: {reason}; restore from backup or re-enter credentials",
        path.display()
    )]
    Unrecognized {
        /// The vault file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The decrypted contents are not a valid credential map (a bug in the writer).
    #[error(
        "vault {} decrypted but its contents are invalid: {reason}; restore from backup or re-enter credentials",
        path.display()
    )]
    Contents {
        /// The vault file.
        path: PathBuf,
        /// What is wrong with them.
        reason: String,
    },
    /// The lock that serialises writers could not be taken.
    #[error("cannot lock vault {} (check that its directory exists and is writable)", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The new vault could not be written; the previous file is unchanged.
    #[error("cannot write vault {} (the previous vault is unchanged)", path.display())]
    Write {
        /// The vault file.
        path: PathBuf,
        /// The step that failed.
        source: durable::Error,
    },
    /// A credential name breaks the naming rule.
    #[error(
        "invalid credential name `{name}`: use 1 to 64 characters from a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
    )]
    InvalidName {
        /// The rejected name (names are not secret).
        name: String,
    },
    /// An empty secret was offered.
    #[error("refusing to store an empty secret for `{name}`: provide the value on stdin")]
    EmptySecret {
        /// The credential name.
        name: String,
    },
}

impl Vault {
    /// Opens the vault at `path` with the key from `key`; a missing file is an empty vault.
    pub fn open(path: &Path, key: &KeySource) -> Result<Vault, VaultError> {
        let key = key.load()?;
        let entries = read_entries(path, &key)?;
        Ok(Vault {
            path: path.to_path_buf(),
            key,
            entries,
        })
    }

    /// Creates a new key file of 32 random bytes, mode 0600; never overwrites an existing file.
    pub fn init_key(path: &Path) -> Result<(), KeyError> {
        KeySource::init_key_file(path)
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many credentials the snapshot holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the snapshot holds no credentials.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credential called `name`, if stored.
    pub fn get(&self, name: &str) -> Result<Option<Credential>, VaultError> {
        validate_name(name)?;
        Ok(self.entries.get(name).map(|entry| Credential {
            name: name.to_owned(),
            kind: entry.kind,
            secret: entry.secret.clone(),
            created: entry.created,
            updated: entry.updated,
        }))
    }

    /// Every credential's name, kind and times, sorted by name; never the secrets.
    pub fn list(&self) -> Vec<CredentialInfo> {
        self.entries
            .iter()
            .map(|(name, entry)| CredentialInfo {
                name: name.clone(),
                kind: entry.kind,
                created: entry.created,
                updated: entry.updated,
            })
            .collect()
    }

    /// Re-reads the file, picking up changes made by other processes.
    pub fn reload(&mut self) -> Result<(), VaultError> {
        self.entries = read_entries(&self.path, &self.key)?;
        Ok(())
    }

    /// Stores or replaces a credential (keeping its creation time when replacing).
    ///
    /// Refuses to write when the current file cannot be decrypted, so a damaged vault or a
    /// wrong key never replaces good data.
    pub fn set(
        &mut self,
        name: &str,
        kind: CredentialKind,
        secret: Secret,
    ) -> Result<(), VaultError> {
        validate_name(name)?;
        if secret.is_empty() {
            return Err(VaultError::EmptySecret {
                name: name.to_owned(),
            });
        }
        let now = now_secs();
        self.modify(|entries| {
            let created = entries.get(name).map_or(now, |entry| entry.created);
            entries.insert(
                name.to_owned(),
                Entry {
                    kind,
                    secret,
                    created,
                    updated: now,
                },
            );
            true
        })
    }

    /// Deletes a credential; `Ok(false)` when there was none by that name.
    pub fn remove(&mut self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        let mut removed = false;
        self.modify(|entries| {
            removed = entries.remove(name).is_some();
            removed
        })?;
        Ok(removed)
    }

    /// Locks, re-reads, applies `change` and writes the result when `change` returns true.
    fn modify(
        &mut self,
        change: impl FnOnce(&mut BTreeMap<String, Entry>) -> bool,
    ) -> Result<(), VaultError> {
        let _lock = lock(&self.path)?;
        let mut entries = read_entries(&self.path, &self.key)?;
        if change(&mut entries) {
            write_entries(&self.path, &self.key, &entries)?;
        }
        self.entries = entries;
        Ok(())
    }
}

impl CredentialKind {
    /// The kind's name on the command line and in the vault: `password` or `ssh-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::SshKey => "ssh-key",
        }
    }

    fn from_name(name: &str) -> Option<CredentialKind> {
        match name {
            "password" => Some(CredentialKind::Password),
            "ssh-key" => Some(CredentialKind::SshKey),
            _ => None,
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Re-encrypts the vault at `path` under a new random key written to `new_key_path` (mode 0600,
/// never overwriting a file); returns how many credentials were re-encrypted.
///
/// The new key file is made durable before the vault is replaced, and the vault is replaced
/// atomically under the writers' lock: at every instant one of the two keys opens the vault.
/// If replacing the vault fails, the new key file is removed and the vault still opens with
/// `old`. Afterwards, point the configuration at the new key and delete the old one.
pub fn rotate_key(path: &Path, old: &KeySource, new_key_path: &Path) -> Result<usize, VaultError> {
    let old_key = old.load()?;
    let _lock = lock(path)?;
    let entries = read_entries(path, &old_key)?;
    let new_source = KeySource::File(new_key_path.to_path_buf());
    KeySource::init_key_file(new_key_path)?;
    let written = new_source
        .load()
        .map_err(VaultError::from)
        .and_then(|new_key| write_entries(path, &new_key, &entries));
    if let Err(err) = written {
        let _ = std::fs::remove_file(new_key_path);
        return Err(err);
    }
    Ok(entries.len())
}

/// The vault path the appliance uses: the configured one, else `<data_dir>/credentials.vault`.
pub fn default_vault_path(configured: Option<&Path>, data_dir: &Path) -> PathBuf {
    configured.map_or_else(|| data_dir.join("credentials.vault"), Path::to_path_buf)
}

/// Checks a credential name against `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    let bytes = name.as_bytes();
    let allowed = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let ok = (1..=64).contains(&bytes.len())
        && bytes.first().is_some_and(allowed)
        && bytes
            .iter()
            .all(|byte| allowed(byte) || matches!(byte, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// One stored credential in memory.
#[derive(Debug)]
struct Entry {
    kind: CredentialKind,
    secret: Secret,
    created: OffsetDateTime,
    updated: OffsetDateTime,
}

/// The plaintext inside the envelope.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireVault {
    credentials: BTreeMap<String, WireEntry>,
}

/// One credential inside the envelope; times are Unix seconds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    kind: String,
    secret: String,
    created: i64,
    updated: i64,
}

impl Drop for WireEntry {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Holds the writers' lock until dropped.
struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn now_secs() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// The writers' lock file beside the vault: `<vault name>.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "vault".into(), |name| name.to_string_lossy());
    parent_dir(path).join(format!("{name}.lock"))
}

fn lock(path: &Path) -> Result<LockGuard, VaultError> {
    let lock_path = lock_path(path);
    let lock_err = |source| VaultError::Lock {
        path: lock_path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(lock_err)?;
    file.lock().map_err(lock_err)?;
    Ok(LockGuard(file))
}

fn read_entries(path: &Path, key: &VaultKey) -> Result<BTreeMap<String, Entry>, VaultError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(VaultError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let plaintext = envelope::open(key, &bytes).map_err(|err| match err {
        OpenError::Undecryptable => VaultError::Undecryptable {
            path: path.to_path_buf(),
            key: key.source.clone(),
        },
        OpenError::Unrecognized(reason) => VaultError::Unrecognized {
            path: path.to_path_buf(),
            reason,
        },
    })?;
    let contents_err = |reason: String| VaultError::Contents {
        path: path.to_path_buf(),
        reason,
    };
    let wire: WireVault =
        serde_json::from_slice(&plaintext).map_err(|err| contents_err(err.to_string()))?;
    let mut entries = BTreeMap::new();
    for (name, mut wire_entry) in wire.credentials {
        validate_name(&name)?;
        let kind = CredentialKind::from_name(&wire_entry.kind).ok_or_else(|| {
            contents_err(format!("`{name}` has unknown kind `{}`", wire_entry.kind))
        })?;
        let time = |secs: i64| {
            OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|err| contents_err(format!("`{name}` has a bad time: {err}")))
        };
        let entry = Entry {
            kind,
            created: time(wire_entry.created)?,
            updated: time(wire_entry.updated)?,
            secret: Secret::new(std::mem::take(&mut wire_entry.secret)),
        };
        entries.insert(name, entry);
    }
    Ok(entries)
}

fn write_entries(
    path: &Path,
    key: &VaultKey,
    entries: &BTreeMap<String, Entry>,
) -> Result<(), VaultError> {
    let wire = WireVault {
        credentials: entries
            .iter()
            .map(|(name, entry)| {
                (
                    name.clone(),
                    WireEntry {
                        kind: entry.kind.as_str().to_owned(),
                        secret: entry.secret.expose().to_owned(),
                        created: entry.created.unix_timestamp(),
                        updated: entry.updated.unix_timestamp(),
                    },
                )
            })
            .collect(),
    };
    // Sized up front so the buffer holding plaintext is never reallocated (and left unwiped).
    let capacity = entries
        .iter()
        .map(|(name, entry)| name.len() + entry.secret.len() * 6 + 96)
        .sum::<usize>()
        + 32;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *plaintext, &wire).map_err(|err| VaultError::Contents {
        path: path.to_path_buf(),
        reason: format!("cannot serialise credentials: {err}"),
    })?;
    let sealed = envelope::seal(key, &plaintext)?;
    // Callers hold the writers' lock, so no other writer replaces the file in between.
    durable::write(path, &sealed, 0o600).map_err(|source| VaultError::Write {
        path: path.to_path_buf(),
        source,
    })
}

//! Vault keys: where the 32-byte key comes from (a 0600 key file or a systemd credential),
//! how it is checked, and how a new one is created.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The systemd credential name the NixOS module passes the vault key under (`LoadCredential=`).
pub const SYSTEMD_CREDENTIAL_NAME: &str = "credentials-key";

/// Where the vault key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// A key file holding exactly 32 bytes, readable by its owner only (mode 0600 or 0400).
    File(PathBuf),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>`, provided by `LoadCredential=`.
    SystemdCredential(String),
}

/// The vault key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file or credential could not be read.
    #[error("cannot read {key}")]
    Read {
        /// Which key (its [`KeySource`] description).
        key: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error(
        "key file {} is accessible by group or others (mode {mode:03o}): run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key does not hold exactly 32 bytes.
    #[error(
        "{key} holds {len} bytes, expected 32: point at the right key, or create one with `osiris credentials init-key`"
    )]
    WrongLength {
        /// Which key.
        key: String,
        /// How many bytes it held (capped at 33).
        len: usize,
    },
    /// A systemd credential was asked for outside a systemd unit that loads credentials.
    #[error(
        "systemd credential `{name}` requested but CREDENTIALS_DIRECTORY is not set: run under systemd with `LoadCredential={name}:<key file>`, or use a key file"
    )]
    NoCredentialsDirectory {
        /// The credential name.
        name: String,
    },
    /// The systemd credential name is not a plain file name.
    #[error("invalid systemd credential name `{name}`: use a plain file name without `/`")]
    InvalidCredentialName {
        /// The rejected name.
        name: String,
    },
    /// A new key file would overwrite an existing file.
    #[error(
        "key file {} already exists: refusing to overwrite a key (the vault it opens would become unreadable); choose another path",
        path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A new key file could not be written.
    #[error("cannot create key file {}", path.display())]
    Create {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {reason}")]
    Random {
        /// What the generator reported.
        reason: String,
    },
}

impl KeySource {
    /// The key source the appliance uses when the configuration names no key file:
    /// the `credentials-key` systemd credential when running under a unit that loads
    /// credentials, else `<data_dir>/keys/credentials.key`.
    pub fn resolve(configured: Option<&Path>, data_dir: &Path) -> KeySource {
        if let Some(path) = configured {
            return KeySource::File(path.to_path_buf());
        }
        let under_systemd = std::env::var_os("CREDENTIALS_DIRECTORY")
            .is_some_and(|dir| Path::new(&dir).join(SYSTEMD_CREDENTIAL_NAME).exists());
        if under_systemd {
            KeySource::SystemdCredential(SYSTEMD_CREDENTIAL_NAME.to_owned())
        } else {
            KeySource::File(data_dir.join("keys").join("credentials.key"))
        }
    }

    /// Creates a new key file of 32 random bytes with mode 0600; never overwrites a file.
    pub fn init_key_file(path: &Path) -> Result<(), KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut_slice())?;
        let create_err = |source| KeyError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    create_err(source)
                }
            })?;
        let res = file
            .write_all(bytes.as_slice())
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                durable::sync_parent(path).map_err(|err| std::io::Error::new(err.kind(), err))
            });
        if let Err(source) = res {
            // A half-written key must not be mistaken for a usable one later.
            let _ = std::fs::remove_file(path);
            return Err(create_err(source));
        }
        Ok(())
    }

    /// Reads and checks the key.
    pub(crate) fn load(&self) -> Result<VaultKey, KeyError> {
        match self {
            KeySource::File(path) => self.load_file(path, true),
            KeySource::SystemdCredential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
                self.load_credential(name, dir.as_deref().map(Path::new))
            }
        }
    }

    fn load_credential(&self, name: &str, dir: Option<&Path>) -> Result<VaultKey, KeyError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(KeyError::InvalidCredentialName {
                name: name.to_owned(),
            });
        }
        let Some(dir) = dir else {
            return Err(KeyError::NoCredentialsDirectory {
                name: name.to_owned(),
            });
        };
        // systemd owns the credential's permissions (0400, service user, non-swappable fs).
        self.load_file(&dir.join(name), false)
    }

    fn load_file(&self, path: &Path, check_mode: bool) -> Result<VaultKey, KeyError> {
        let read_err = |source| KeyError::Read {
            key: self.to_string(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        if check_mode {
            let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut buf = Zeroizing::new([0u8; KEY_LEN + 1]);
        let mut len = 0;
        let mut limited = file.take(KEY_LEN as u64 + 1);
        loop {
            let n = limited.read(&mut buf[len..]).map_err(read_err)?;
            if n == 0 {
                break;
            }
            len += n;
        }
        if len != KEY_LEN {
            return Err(KeyError::WrongLength {
                key: self.to_string(),
                len,
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&buf[..KEY_LEN]);
        Ok(VaultKey {
            bytes,
            source: self.to_string(),
        })
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "key file {}", path.display()),
            KeySource::SystemdCredential(name) => write!(f, "systemd credential `{name}`"),
        }
    }
}

/// Key length in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// A loaded vault key; wiped on drop, never printed.
pub(crate) struct VaultKey {
    pub(crate) bytes: Zeroizing<[u8; KEY_LEN]>,
    /// The [`KeySource`] description, for error messages.
    pub(crate) source: String,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKey({}, [redacted])", self.source)
    }
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|err| KeyError::Random {
        reason: err.to_string(),
    })
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_credential_is_read_from_the_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::SystemdCredential("credentials-key".to_owned());
        let err = source.load_credential("credentials-key", None).unwrap_err();
        assert!(
            matches!(err, KeyError::NoCredentialsDirectory { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("LoadCredential=credentials-key:"),
            "{err}"
        );

        std::fs::write(dir.path().join("credentials-key"), [7u8; 32]).unwrap();
        let key = source
            .load_credential("credentials-key", Some(dir.path()))
            .unwrap();
        assert_eq!(*key.bytes, [7u8; 32]);
        assert!(!format!("{key:?}").contains('7'));

        let err = source
            .load_credential("../etc", Some(dir.path()))
            .unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidCredentialName { .. }),
            "{err}"
        );
    }
}

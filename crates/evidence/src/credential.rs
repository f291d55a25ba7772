//! The appliance signing key as a systemd credential, and the choice between it and the key file.
//!
//! On the appliance the key never lies in the data directory: a boot-time unit seals it to the
//! TPM with `systemd-creds encrypt --with-key=tpm2`, and osirisd's unit decrypts it into its private
//! credentials directory with `LoadCredentialEncrypted=appliance-key:…` (docs/DISK-ENCRYPTION.md).
//! Outside systemd (the CLI on a workstation, tests) the key file `<data_dir>/keys/appliance.key`
//! keeps working.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::keys::{ApplianceKey, KeyError};

/// The systemd credential name the NixOS unit passes the signing key under.
pub const APPLIANCE_KEY_CREDENTIAL: &str = "appliance-key";

/// Environment variable naming the credential that must hold the signing key.
///
/// When set, the key comes from `$CREDENTIALS_DIRECTORY/<name>` or not at all: a missing
/// credential is an error, never a reason to create a key file.
pub const APPLIANCE_KEY_CREDENTIAL_ENV: &str = "OSIRIS_APPLIANCE_KEY_CREDENTIAL";

/// Where the appliance signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplianceKeySource {
    /// The key file, created (0600) on first use.
    File(PathBuf),
    /// A systemd credential `<dir>/<name>`; `dir` is `$CREDENTIALS_DIRECTORY`, if set.
    SystemdCredential {
        /// The credential name.
        name: String,
        /// The credentials directory systemd gave the process.
        dir: Option<PathBuf>,
    },
}

/// Credentials larger than this are not signing keys (the key text is under 120 bytes).
const MAX_CREDENTIAL_LEN: u64 = 4096;

impl ApplianceKeySource {
    /// The source for this process: the credential named by [`APPLIANCE_KEY_CREDENTIAL_ENV`] if
    /// that is set; else the `appliance-key` credential if systemd passed one; else `key_file`.
    pub fn from_env(key_file: &Path) -> ApplianceKeySource {
        let requested = std::env::var(APPLIANCE_KEY_CREDENTIAL_ENV).ok();
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        ApplianceKeySource::resolve(key_file, requested.as_deref(), dir.as_deref())
    }

    /// [`ApplianceKeySource::from_env`] with the environment passed in.
    pub fn resolve(
        key_file: &Path,
        requested: Option<&str>,
        credentials_dir: Option<&Path>,
    ) -> ApplianceKeySource {
        let credential = |name: &str| ApplianceKeySource::SystemdCredential {
            name: name.to_owned(),
            dir: credentials_dir.map(Path::to_path_buf),
        };
        match (requested, credentials_dir) {
            (Some(name), _) => credential(name),
            (None, Some(dir)) if dir.join(APPLIANCE_KEY_CREDENTIAL).exists() => {
                credential(APPLIANCE_KEY_CREDENTIAL)
            }
            _ => ApplianceKeySource::File(key_file.to_path_buf()),
        }
    }

    /// Loads the key: a credential is only read; a key file is created if it does not exist.
    pub fn load(&self) -> Result<ApplianceKey, KeyError> {
        match self {
            ApplianceKeySource::File(path) => ApplianceKey::load_or_create(path),
            ApplianceKeySource::SystemdCredential { name, dir } => {
                ApplianceKey::from_systemd_credential(name, dir.as_deref())
            }
        }
    }
}

impl ApplianceKey {
    /// Reads the signing key from the systemd credential `<credentials_dir>/<name>`.
    ///
    /// Never creates or writes anything: a missing credential, a missing credentials directory
    /// (not running under a unit that loads credentials) or an invalid name is
    /// [`KeyError::Credential`]; a credential that is not a signer key is [`KeyError::Malformed`].
    pub fn from_systemd_credential(
        name: &str,
        credentials_dir: Option<&Path>,
    ) -> Result<ApplianceKey, KeyError> {
        let refuse = |problem: String| KeyError::Credential {
            name: name.to_owned(),
            problem,
        };
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(refuse("is not a plain file name".to_owned()));
        }
        let Some(dir) = credentials_dir else {
            return Err(refuse(format!(
                "was requested, but CREDENTIALS_DIRECTORY is not set: run under a systemd unit with `LoadCredentialEncrypted={name}:<sealed key>` (or `LoadCredential=`), or unset {APPLIANCE_KEY_CREDENTIAL_ENV} to use the key file"
            )));
        };
        let path = dir.join(name);
        let file = File::open(&path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                refuse(format!(
                    "was requested, but {} does not exist: the unit does not load it (check `LoadCredentialEncrypted={name}:` and that the sealed key was created at first boot)",
                    path.display()
                ))
            } else {
                refuse(format!("cannot be read from {}: {err}", path.display()))
            }
        })?;
        let mut text = String::new();
        file.take(MAX_CREDENTIAL_LEN + 1)
            .read_to_string(&mut text)
            .map_err(|err| refuse(format!("cannot be read from {}: {err}", path.display())))?;
        if text.len() as u64 > MAX_CREDENTIAL_LEN {
            return Err(refuse(format!(
                "in {} is larger than {MAX_CREDENTIAL_LEN} bytes: it is not a signer key",
                path.display()
            )));
        }
        let res = text.parse();
        // The text held the private key; overwrite it before the allocation is freed.
        zero_string(&mut text);
        res
    }
}

/// Overwrites a string's bytes with zeros (a best effort: the allocation is then freed).
fn zero_string(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    bytes.iter_mut().for_each(|byte| *byte = 0);
    std::hint::black_box(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file() -> PathBuf {
        PathBuf::from("/data/keys/appliance.key")
    }

    #[test]
    fn resolve_prefers_a_requested_credential_then_a_present_one_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ApplianceKeySource::resolve(&key_file(), None, None),
            ApplianceKeySource::File(key_file())
        );
        // A credentials directory without the key (osirisd loading only the vault key) keeps the file.
        assert_eq!(
            ApplianceKeySource::resolve(&key_file(), None, Some(dir.path())),
            ApplianceKeySource::File(key_file())
        );
        std::fs::write(dir.path().join(APPLIANCE_KEY_CREDENTIAL), "x").unwrap();
        assert_eq!(
            ApplianceKeySource::resolve(&key_file(), None, Some(dir.path())),
            ApplianceKeySource::SystemdCredential {
                name: APPLIANCE_KEY_CREDENTIAL.to_owned(),
                dir: Some(dir.path().to_path_buf()),
            }
        );
        // Requested: the credential, even where nothing provides it.
        assert_eq!(
            ApplianceKeySource::resolve(&key_file(), Some("signing"), None),
            ApplianceKeySource::SystemdCredential {
                name: "signing".to_owned(),
                dir: None,
            }
        );
    }

    #[test]
    fn credential_loads_the_same_key_and_refuses_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let key = ApplianceKey::from_seed(&[9u8; 32]);
        let path = dir.path().join(APPLIANCE_KEY_CREDENTIAL);
        std::fs::write(&path, format!("{}\n", key.private_key_text())).unwrap();
        let loaded =
            ApplianceKey::from_systemd_credential(APPLIANCE_KEY_CREDENTIAL, Some(dir.path()))
                .unwrap();
        assert_eq!(loaded.verifier(), key.verifier());
        assert_eq!(loaded.sign(b"m"), key.sign(b"m"));

        let err = ApplianceKey::from_systemd_credential("absent", Some(dir.path())).unwrap_err();
        assert!(matches!(err, KeyError::Credential { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`absent`") && text.contains("does not exist"),
            "{text}"
        );
        assert!(text.contains("LoadCredentialEncrypted=absent:"), "{text}");

        let err =
            ApplianceKey::from_systemd_credential(APPLIANCE_KEY_CREDENTIAL, None).unwrap_err();
        assert!(
            err.to_string().contains("CREDENTIALS_DIRECTORY is not set"),
            "{err}"
        );
        let err = ApplianceKey::from_systemd_credential("../x", Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("plain file name"), "{err}");

        std::fs::write(&path, "not a key").unwrap();
        let err = ApplianceKey::from_systemd_credential(APPLIANCE_KEY_CREDENTIAL, Some(dir.path()))
            .unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        // Anything larger than a key is refused before it is parsed.
        std::fs::write(&path, vec![b'A'; 5000]).unwrap();
        let err = ApplianceKey::from_systemd_credential(APPLIANCE_KEY_CREDENTIAL, Some(dir.path()))
            .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn a_credential_source_never_creates_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = ApplianceKeySource::SystemdCredential {
            name: APPLIANCE_KEY_CREDENTIAL.to_owned(),
            dir: Some(dir.path().to_path_buf()),
        };
        assert!(source.load().is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

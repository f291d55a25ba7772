//! Secrets for targets, the directory and workstations: read from 0600 files or from the
//! encrypted credential vault (one source of truth: `osiris credentials set NAME`). The vault is
//! opened once, on first use, so a site that uses only files never needs a vault key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use zeroize::Zeroizing;

use config::{PasswordSource, SshLogin};

use crate::{BadConfig, setup};

/// Where this run's secrets come from.
pub struct Secrets {
    vault_path: PathBuf,
    key: credentials::KeySource,
    vault: OnceLock<Result<credentials::Vault, String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("vault_path", &self.vault_path)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// The vault and key the configuration names (defaults under `data_dir`).
    pub fn new(config: &config::Config, data_dir: &Path) -> Secrets {
        Secrets {
            vault_path: credentials::default_vault_path(
                config.credentials.vault.as_deref(),
                data_dir,
            ),
            key: credentials::KeySource::resolve(config.credentials.key_file.as_deref(), data_dir),
            vault: OnceLock::new(),
        }
    }

    /// The vault file.
    pub fn vault_path(&self) -> &Path {
        &self.vault_path
    }

    /// The key source.
    pub fn key(&self) -> &credentials::KeySource {
        &self.key
    }

    fn credential(&self, name: &str) -> anyhow::Result<credentials::Credential> {
        let vault = self.vault.get_or_init(|| {
            credentials::Vault::open(&self.vault_path, &self.key)
                .map_err(|err| format!("{:#}", anyhow::Error::new(err)))
        });
        let vault = vault
            .as_ref()
            .map_err(|err| BadConfig(format!("credential `{name}`: {err}")))?;
        vault
            .get(name)
            .map_err(|err| BadConfig(format!("credential `{name}`: {err}")))?
            .ok_or_else(|| {
                BadConfig(format!(
                    "credential `{name}` is not in the vault {}: add it with `osiris credentials set {name} --kind password` (the secret is read from stdin)",
                    self.vault_path.display()
                ))
                .into()
            })
    }

    /// A password from its file or its vault entry; `what` names the setting in messages.
    pub fn password(
        &self,
        what: &str,
        source: &PasswordSource,
    ) -> anyhow::Result<Zeroizing<String>> {
        labelled(what, self.password_inner(source))
    }

    fn password_inner(&self, source: &PasswordSource) -> anyhow::Result<Zeroizing<String>> {
        match source {
            PasswordSource::File(path) => read_password_file(path),
            PasswordSource::Directory => Err(BadConfig(
                "a password from the directory (LAPS) exists only for a discovered workstation during its cycle".to_owned(),
            )
            .into()),
            PasswordSource::Credential(name) => {
                let found = self.credential(name)?;
                if found.kind != credentials::CredentialKind::Password {
                    return Err(BadConfig(format!(
                        "credential `{name}` holds an SSH key, but a password is needed"
                    ))
                    .into());
                }
                Ok(Zeroizing::new(found.secret.expose().to_owned()))
            }
        }
    }

    /// How an SSH target logs in: a key file, a password file, or a vault entry of either kind;
    /// `what` names the target in messages.
    pub fn ssh_auth(&self, what: &str, login: &SshLogin) -> anyhow::Result<scan_ssh::SshAuth> {
        labelled(what, self.ssh_auth_inner(login))
    }

    fn ssh_auth_inner(&self, login: &SshLogin) -> anyhow::Result<scan_ssh::SshAuth> {
        match login {
            SshLogin::KeyFile(key) => {
                setup::check_secret_file(key)?;
                Ok(scan_ssh::SshAuth::Key {
                    private_key: key.clone(),
                })
            }
            SshLogin::PasswordFile(path) => Ok(scan_ssh::SshAuth::Password {
                password: read_password_file(path)?,
            }),
            SshLogin::Credential(name) => {
                let found = self.credential(name)?;
                Ok(match found.kind {
                    credentials::CredentialKind::SshKey => scan_ssh::SshAuth::KeyData {
                        name: name.clone(),
                        private_key: Zeroizing::new(found.secret.expose().to_owned()),
                    },
                    _ => scan_ssh::SshAuth::Password {
                        password: Zeroizing::new(found.secret.expose().to_owned()),
                    },
                })
            }
        }
    }
}

/// Per-host passwords for one cycle only (the workstations' LAPS passwords read from the
/// directory), by target name: held in memory, wiped when dropped, never written or logged.
#[derive(Default)]
pub struct HostPasswords(BTreeMap<String, Zeroizing<String>>);

impl HostPasswords {
    /// Keeps `password` for the target `name`.
    pub fn insert(&mut self, name: String, password: Zeroizing<String>) {
        self.0.insert(name, password);
    }

    /// The password of target `name`, if this cycle read one.
    pub fn get(&self, name: &str) -> Option<&Zeroizing<String>> {
        self.0.get(name)
    }

    /// The targets that have one.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for HostPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Puts `what` (the target or setting) in front of a secret's error, keeping a [`BadConfig`]
/// a `BadConfig` so the caller still exits 78.
fn labelled<T>(what: &str, res: anyhow::Result<T>) -> anyhow::Result<T> {
    res.map_err(|err| match err.downcast::<BadConfig>() {
        Ok(BadConfig(message)) => BadConfig(format!("{what}: {message}")).into(),
        Err(err) => err.context(what.to_owned()),
    })
}

/// Reads a password file, refusing one others can read; the trailing newline is not part of it.
pub fn read_password_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    setup::check_secret_file(path)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading password file {}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

//! The appliance's encrypted credential vault: target secrets (SSH keys, passwords) at rest
//! under one 32-byte key, one vault file as the single source of truth.
//!
//! The vault file is an XChaCha20-Poly1305 envelope (the `envelope` module documents the
//! byte layout); every change is a locked read-modify-write followed by an atomic replace, so
//! concurrent writers (CLI and daemon) never lose updates and a failed write never loses the
//! previous vault. Secret values never appear in `Debug`/`Display` output.

mod envelope;
mod key;
mod secret;
mod vault;

pub use crate::key::{KeyError, KeySource, SYSTEMD_CREDENTIAL_NAME};
pub use crate::secret::{ReadSecretError, Secret};
pub use crate::vault::{
    Credential, CredentialInfo, CredentialKind, Vault, VaultError, default_vault_path, rotate_key,
    validate_name,
};

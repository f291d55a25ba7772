//! Secrets typed into the console's wizard go to the encrypted credential vault (the same one
//! `osiris credentials set` writes and the scans read): one source of truth.

use axum::http::StatusCode;

use crate::Shared;
use crate::api::{Fail, internal};

/// Stores `secret` as password `name` in the vault, creating the vault key on first use when
/// it is a file the daemon owns (a systemd credential must be provided by the unit).
pub(crate) fn put(shared: &Shared, name: &str, secret: &str) -> Result<(), Fail> {
    let secrets = ops::secrets::Secrets::new(&shared.settings.config, &shared.settings.data_dir);
    if let credentials::KeySource::File(path) = secrets.key()
        && !path.exists()
    {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(internal)?;
        }
        credentials::Vault::init_key(path).map_err(internal)?;
        tracing::info!(key = %path.display(), "Created the credential vault key.");
    }
    let mut vault =
        credentials::Vault::open(secrets.vault_path(), secrets.key()).map_err(|err| {
            Fail(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the credential vault cannot be opened: {err}"),
                Some("call your IT partner: the vault or its key needs attention".to_owned()),
            )
        })?;
    vault
        .set(
            name,
            credentials::CredentialKind::Password,
            credentials::Secret::new(secret.to_owned()),
        )
        .map_err(internal)?;
    tracing::info!(credential = name, "Stored a credential from the console.");
    Ok(())
}

//! Target secrets entered through the wizard go to the encrypted credential vault.

use crate::Shared;
use crate::api::Fail;

/// Stores `secret` under `slot` in the vault.
pub(crate) fn put(_shared: &Shared, slot: &str, _secret: &str) -> Result<(), Fail> {
    Err(Fail(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot store the {slot} credential: the credential vault is not set up"),
        Some("use `osiris credentials set` on the appliance".to_owned()),
    ))
}

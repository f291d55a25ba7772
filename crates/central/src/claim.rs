//! Claiming an appliance: a partner types the code the appliance's console shows; the open
//! enrollment whose claim proof matches is bound to the partner's site and its client
//! certificate is issued. A code works once; requests expire.

use sqlx::PgPool;

use crate::link_ca::{LinkCa, ed25519_from_spki};

/// A claim that was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// Not a claim code at all.
    #[error(transparent)]
    BadCode(#[from] link_proto::ClaimCodeError),
    /// No such site for this partner.
    #[error("site {0} does not exist (or belongs to another partner)")]
    NoSuchSite(i64),
    /// No open request matches the code.
    #[error(
        "no appliance is waiting with this code: check the code on the appliance's console, that the appliance can reach Central Command, and that it asked less than 24 hours ago (codes work once)"
    )]
    UnknownCode,
    /// Issuing the certificate failed.
    #[error("issuing the appliance certificate")]
    Certificate(#[from] crate::link_ca::CaError),
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

/// The appliance as claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its id here.
    pub appliance_id: i64,
    /// Its evidence key (the log's origin is its name).
    pub appliance_key: String,
    /// The partner it now belongs to.
    pub partner_id: i64,
}

/// Binds the appliance waiting with `code` to `site_id` of `partner_id`, issuing its
/// certificate; recorded in the audit log as done by `actor` (`user_id` when a user did it).
pub async fn claim_appliance(
    pool: &PgPool,
    ca: &LinkCa,
    partner_id: i64,
    site_id: i64,
    code: &str,
    actor: &str,
    user_id: Option<i64>,
) -> Result<Claimed, ClaimError> {
    let code = link_proto::normalize_claim_code(code)?;
    let mut tx = pool.begin().await?;
    let site: Option<i64> =
        sqlx::query_scalar("SELECT id FROM sites WHERE id = $1 AND partner_id = $2")
            .bind(site_id)
            .bind(partner_id)
            .fetch_optional(&mut *tx)
            .await?;
    if site.is_none() {
        return Err(ClaimError::NoSuchSite(site_id));
    }
    // Every open request, newest first; the HMAC is checked here, in constant time per request.
    let open: Vec<(i64, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT id, appliance_key, tls_public_key, claim_proof FROM enrollments
         WHERE appliance_id IS NULL AND expires_at > now() ORDER BY id DESC FOR UPDATE",
    )
    .fetch_all(&mut *tx)
    .await?;
    let found = open.into_iter().find(|(_, key, spki, proof)| {
        let spki_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki);
        link_proto::claim_proof_matches(&code, key, &spki_b64, proof)
    });
    let Some((enrollment_id, appliance_key, spki, _)) = found else {
        return Err(ClaimError::UnknownCode);
    };
    let public = ed25519_from_spki(&spki).ok_or(ClaimError::UnknownCode)?;
    let appliance_id: i64 = sqlx::query_scalar("SELECT nextval('appliances_id_seq')")
        .fetch_one(&mut *tx)
        .await?;
    let (der, _pem) = ca.issue(&public, appliance_id)?;
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&der).into();
    sqlx::query(
        "INSERT INTO appliances (id, partner_id, site_id, appliance_key, cert_sha256, certificate, claimed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(appliance_id)
    .bind(partner_id)
    .bind(site_id)
    .bind(&appliance_key)
    .bind(digest.as_slice())
    .bind(&der)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    // This request and any older ones of the same appliance are used up.
    sqlx::query(
        "UPDATE enrollments SET appliance_id = $1 WHERE appliance_id IS NULL AND (id = $2 OR appliance_key = $3)",
    )
    .bind(appliance_id)
    .bind(enrollment_id)
    .bind(&appliance_key)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, 'appliance.claim', $3)",
    )
    .bind(partner_id)
    .bind(actor)
    .bind(serde_json::json!({"appliance_id": appliance_id, "site_id": site_id, "appliance_key": appliance_key}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        appliance_id,
        partner_id,
        site_id,
        actor,
        "appliance claimed"
    );
    Ok(Claimed {
        appliance_id,
        appliance_key,
        partner_id,
    })
}

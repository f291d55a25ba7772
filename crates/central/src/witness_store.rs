//! The witness over the database: one transaction per pushed checkpoint that locks the
//! appliance's head, judges the checkpoint (`witness::judge`) and records the outcome — a new
//! head and its cosignature, or a fork kept as proof with a critical alert to the partner.

use evidence::{VerifierKey, WitnessKey};
use sqlx::PgPool;

use crate::witness::{self, Head, Verdict, WitnessError};

/// What the appliance is told about its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Cosigned: the C2SP cosignature line to keep and put in kits.
    Cosigned {
        /// The signature line, with its final newline.
        cosignature: String,
    },
    /// Refused as a fork; recorded and alerted. The appliance's history does not extend what
    /// was witnessed before.
    Fork {
        /// Why.
        reason: String,
    },
}

/// A push that could not be processed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessStoreError {
    /// The checkpoint cannot be judged (malformed, foreign, stale, oversized proof).
    #[error(transparent)]
    Refused(#[from] WitnessError),
    /// No such appliance (or it belongs to nobody any more).
    #[error("unknown appliance {0}")]
    UnknownAppliance(i64),
    /// The stored appliance key does not parse (never expected).
    #[error("the stored key of appliance {0} is not a verifier key")]
    BadStoredKey(i64),
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

/// Judges and records `note` with a consistency `proof` from size `proof_from` for appliance
/// `appliance_id`, cosigning with `witness` at `now` (POSIX seconds).
pub async fn push_checkpoint(
    pool: &PgPool,
    appliance_id: i64,
    note: &str,
    proof_from: u64,
    proof: &[[u8; 32]],
    witness: &WitnessKey,
    now: u64,
) -> Result<Outcome, WitnessStoreError> {
    let mut tx = pool.begin().await?;
    let outcome =
        push_checkpoint_in(&mut tx, appliance_id, note, proof_from, proof, witness, now).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// [`push_checkpoint`] inside the caller's transaction (the link also advances the push
/// sequence in it); the caller commits.
pub async fn push_checkpoint_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    note: &str,
    proof_from: u64,
    proof: &[[u8; 32]],
    witness: &WitnessKey,
    now: u64,
) -> Result<Outcome, WitnessStoreError> {
    // Lock the appliance row: concurrent pushes of one appliance are judged one at a time.
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT appliance_key, partner_id FROM appliances WHERE id = $1 FOR UPDATE")
            .bind(appliance_id)
            .fetch_optional(&mut **tx)
            .await?;
    let (key_text, partner_id) = row.ok_or(WitnessStoreError::UnknownAppliance(appliance_id))?;
    let key: VerifierKey = key_text
        .parse()
        .map_err(|_| WitnessStoreError::BadStoredKey(appliance_id))?;
    let head: Option<(i64, Vec<u8>, String)> =
        sqlx::query_as("SELECT size, root, note FROM witness_heads WHERE appliance_id = $1")
            .bind(appliance_id)
            .fetch_optional(&mut **tx)
            .await?;
    let head = head.and_then(|(size, root, note)| {
        Some(Head {
            size: u64::try_from(size).ok()?,
            root: <[u8; 32]>::try_from(root).ok()?,
            note,
        })
    });
    let verdict = witness::judge(&key, head.as_ref(), note, proof_from, proof, witness, now)?;
    let outcome = match verdict {
        Verdict::Cosign {
            head: new,
            cosignature,
        } => {
            let size = i64::try_from(new.size).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO witness_heads (appliance_id, size, root, note, cosignature) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (appliance_id) DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root,
                 note = EXCLUDED.note, cosignature = EXCLUDED.cosignature, cosigned_at = now()",
            )
            .bind(appliance_id)
            .bind(size)
            .bind(new.root.as_slice())
            .bind(&new.note)
            .bind(&cosignature)
            .execute(&mut **tx)
            .await?;
            record_cosignature(tx, appliance_id, size, &new.root, &cosignature).await?;
            Outcome::Cosigned { cosignature }
        }
        Verdict::Repeat { cosignature } => {
            if let Some(head) = &head {
                let size = i64::try_from(head.size).unwrap_or(i64::MAX);
                record_cosignature(tx, appliance_id, size, &head.root, &cosignature).await?;
            }
            Outcome::Cosigned { cosignature }
        }
        Verdict::Fork { reason, offered } => {
            let head_note = head.as_ref().map(|h| h.note.clone()).unwrap_or_default();
            let proof_json: Vec<String> = proof.iter().map(hex::encode).collect();
            sqlx::query(
                "INSERT INTO witness_forks (appliance_id, head_note, offered_note, proof, reason) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(appliance_id)
            .bind(&head_note)
            .bind(note)
            .bind(serde_json::json!(proof_json))
            .bind(&reason)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO alerts (partner_id, appliance_id, severity, kind, message) VALUES ($1, $2, 'critical', 'evidence_fork', $3)",
            )
            .bind(partner_id)
            .bind(appliance_id)
            .bind(format!(
                "The evidence log of appliance {} was rewritten: {reason}. The witnessed history and the offered checkpoint (size {}) are kept as proof; nothing was cosigned.",
                key.name(),
                offered.size
            ))
            .execute(&mut **tx)
            .await?;
            tracing::error!(appliance_id, partner_id, %reason, "evidence fork refused");
            Outcome::Fork { reason }
        }
    };
    sqlx::query("UPDATE appliances SET last_seen = now() WHERE id = $1")
        .bind(appliance_id)
        .execute(&mut **tx)
        .await?;
    Ok(outcome)
}

/// The size of the newest checkpoint witnessed for the appliance, if any.
pub async fn head_size(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
) -> Result<Option<u64>, sqlx::Error> {
    let size: Option<i64> =
        sqlx::query_scalar("SELECT size FROM witness_heads WHERE appliance_id = $1")
            .bind(appliance_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(size.and_then(|size| u64::try_from(size).ok()))
}

async fn record_cosignature(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    size: i64,
    root: &[u8; 32],
    cosignature: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cosignatures (appliance_id, size, root, cosignature) VALUES ($1, $2, $3, $4)",
    )
    .bind(appliance_id)
    .bind(size)
    .bind(root.as_slice())
    .bind(cosignature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

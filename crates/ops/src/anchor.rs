//! OpenTimestamps: submit a fresh signed checkpoint to the calendars, and upgrade pending proofs
//! once the calendars have put them in a Bitcoin block.

use std::time::Duration;

use anyhow::Context;
use sha2::Digest;

/// What submitting one checkpoint achieved.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub checkpoint_size: u64,
    /// Calendars that accepted it.
    pub accepted: Vec<String>,
    /// `url: why` for each calendar that did not.
    pub refused: Vec<String>,
}

/// Where one pending proof stands after an upgrade attempt.
#[derive(Debug, Clone)]
pub struct Upgraded {
    pub checkpoint_size: u64,
    /// The Bitcoin block height, once anchored.
    pub bitcoin_height: Option<u64>,
    /// Why it could not be upgraded this time, if the calendars were not reachable.
    pub problem: Option<String>,
}

/// Signs a checkpoint and submits its digest to every calendar; stores the merged pending proof.
/// Fails only when no calendar accepted it (nothing is stored then).
pub async fn submit_checkpoint(
    store: &store::Store,
    calendars: &[String],
    timeout: Duration,
) -> anyhow::Result<Submitted> {
    if calendars.is_empty() {
        return Err(crate::BadConfig(
            "no calendars: set evidence.calendars or pass --calendar URL".to_owned(),
        )
        .into());
    }
    let checkpoint = store
        .create_checkpoint()
        .await
        .context("signing a checkpoint")?;
    let size = checkpoint.size;
    let digest: [u8; 32] = sha2::Sha256::digest(checkpoint.note.as_bytes()).into();
    let client = ots::client::CalendarClient::new(timeout)?;
    let mut detached = ots::DetachedTimestamp::from_sha256_digest(digest);
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for url in calendars {
        match client.submit(url, &digest).await {
            Ok(timestamp) => match detached.timestamp.merge(timestamp) {
                Ok(()) => accepted.push(url.clone()),
                Err(err) => refused.push(format!("{url}: {err}")),
            },
            Err(err) => refused.push(format!("{url}: {:#}", anyhow::Error::new(err))),
        }
    }
    for problem in &refused {
        tracing::warn!(problem = %problem, "Calendar did not accept the checkpoint.");
    }
    if accepted.is_empty() {
        return Err(crate::Failed(format!(
            "no calendar accepted checkpoint {size}:\n  {}",
            refused.join("\n  ")
        ))
        .into());
    }
    let update = store::OtsUpdate {
        checkpoint_size: size,
        proof: detached.to_bytes(),
        status: store::OtsStatus::Pending,
        calendars: accepted.clone(),
        bitcoin_height: None,
    };
    store
        .put_ots(update)
        .await
        .context("storing the pending proof")?;
    Ok(Submitted {
        checkpoint_size: size,
        accepted,
        refused,
    })
}

/// Asks the calendars for every pending proof's completion; stores what they return.
pub async fn upgrade_pending(
    store: &store::Store,
    timeout: Duration,
) -> anyhow::Result<Vec<Upgraded>> {
    let client = ots::client::CalendarClient::new(timeout)?;
    let proofs = store.ots_proofs().await?;
    let mut out = Vec::new();
    for proof in proofs
        .into_iter()
        .filter(|p| p.status == store::OtsStatus::Pending)
    {
        let mut detached = ots::DetachedTimestamp::from_bytes(&proof.proof).with_context(|| {
            format!(
                "stored proof for checkpoint {} is unreadable",
                proof.checkpoint_size
            )
        })?;
        if let Err(err) = client.upgrade(&mut detached).await {
            out.push(Upgraded {
                checkpoint_size: proof.checkpoint_size,
                bitcoin_height: None,
                problem: Some(format!("{:#}", anyhow::Error::new(err))),
            });
            continue;
        }
        let height =
            detached
                .timestamp
                .all_attestations()
                .into_iter()
                .find_map(|(_, att)| match att {
                    ots::Attestation::Bitcoin { height } => Some(height),
                    _ => None,
                });
        let status = if height.is_some() {
            store::OtsStatus::Anchored
        } else {
            store::OtsStatus::Pending
        };
        store
            .put_ots(store::OtsUpdate {
                checkpoint_size: proof.checkpoint_size,
                proof: detached.to_bytes(),
                status,
                calendars: proof.calendars.clone(),
                bitcoin_height: height,
            })
            .await
            .context("storing the upgraded proof")?;
        out.push(Upgraded {
            checkpoint_size: proof.checkpoint_size,
            bitcoin_height: height,
            problem: None,
        });
    }
    Ok(out)
}

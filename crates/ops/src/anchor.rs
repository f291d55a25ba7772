//! OpenTimestamps: submit a fresh signed checkpoint to the calendars, and upgrade pending proofs
//! once the calendars have put them in a Bitcoin block.
//!
//! Upgrades ask only the calendars the proof was submitted to (recorded by the appliance, never
//! read from the proof), and a proof counts as anchored only once one of its Bitcoin
//! attestations matches a block header that meets the proof-of-work floor; until then a
//! Bitcoin attestation is "unverified" and the proof stays pending, so the other calendars are
//! still asked.

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
    /// The Bitcoin block height, once anchored: the attestation matched a checked header.
    pub bitcoin_height: Option<u64>,
    /// A Bitcoin height some calendar claims, not (yet) checked against a header: without
    /// `evidence.esplora_url`, or while the header does not match or cannot be fetched.
    pub unverified_height: Option<u64>,
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
/// With `esplora_url`, Bitcoin attestations are checked against the explorer's headers (at the
/// floor of [`ots::client::work_floor`]) and a proof whose attestation matches is anchored;
/// without it no proof becomes anchored here.
pub async fn upgrade_pending(
    store: &store::Store,
    esplora_url: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Vec<Upgraded>> {
    let client = ots::client::CalendarClient::new(timeout)?;
    let floor = ots::client::work_floor();
    if floor != ots::bitcoin::WorkFloor::MAINNET {
        tracing::warn!(
            variable = ots::client::REGTEST_ENV,
            "Regtest proof-of-work accepted: test mode, never for a real appliance."
        );
    }
    let esplora = esplora_url
        .map(|url| ots::client::EsploraClient::new(url, floor))
        .transpose()
        .context("evidence.esplora_url")?;
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
        let mut problems = Vec::new();
        let allowed = ots::client::CalendarAllowlist::for_submitted(&proof.calendars);
        match client.upgrade(&mut detached, &allowed).await {
            Err(err) => problems.push(format!("{:#}", anyhow::Error::new(err))),
            Ok(report) => {
                for outcome in report.outcomes {
                    match outcome.status {
                        ots::client::UpgradeStatus::Failed { error } => problems.push(format!(
                            "{}: {:#}",
                            outcome.calendar,
                            anyhow::Error::new(error)
                        )),
                        ots::client::UpgradeStatus::NotAllowed => problems.push(format!(
                            "{}: not a calendar this proof was submitted to; not asked",
                            outcome.calendar
                        )),
                        _ => {}
                    }
                }
            }
        }
        let (height, unverified_height) =
            check_bitcoin(&detached, esplora.as_ref(), &mut problems).await;
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
            unverified_height: if height.is_some() {
                None
            } else {
                unverified_height
            },
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
        });
    }
    Ok(out)
}

/// Checks the proof's Bitcoin attestations against the explorer's headers: returns the first
/// height whose header matches, and the first claimed height (checked or not).
async fn check_bitcoin(
    detached: &ots::DetachedTimestamp,
    esplora: Option<&ots::client::EsploraClient>,
    problems: &mut Vec<String>,
) -> (Option<u64>, Option<u64>) {
    let mut claimed = None;
    for (msg, attestation) in detached.timestamp.all_attestations() {
        let ots::Attestation::Bitcoin { height } = attestation else {
            continue;
        };
        claimed.get_or_insert(height);
        let Some(esplora) = esplora else {
            continue;
        };
        let checked = match esplora.header(height).await {
            Ok(header) => ots::bitcoin::verify_attestation(&msg, &header).map(|_| ()),
            Err(err) => Err(err),
        };
        match checked {
            Ok(()) => return (Some(height), claimed),
            Err(err) => problems.push(format!("Bitcoin attestation at height {height}: {err}")),
        }
    }
    (None, claimed)
}

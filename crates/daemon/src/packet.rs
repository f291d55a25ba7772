//! The monthly compliance packet: on the 1st of each month (and at start, when the previous
//! month's is missing because the daemon was off then) `ops::report::make_packet` makes every
//! framework's report of the previous month, keeps it under `<data_dir>/packets/` and seals a
//! `packet` bundle naming each file's SHA-256. Once per month: the log's `packet` bundles say
//! which months are done, so a restart does not make one again.

use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::schedule;
use crate::shared::Shared;

/// How long the loop sleeps at most before it looks at the clock again (the wall clock may jump).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Makes the packet whenever one is due, until shutdown.
pub(crate) async fn packet_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = OffsetDateTime::now_utc();
        if let Err(err) = round(&shared, now).await {
            tracing::error!(error = %format!("{err:#}"), "Making the monthly compliance packet failed; will retry within the hour.");
        }
        let until_next = (schedule::next_month_start(now) - now)
            .try_into()
            .unwrap_or(RECHECK);
        tokio::select! {
            () = tokio::time::sleep(RECHECK.min(until_next)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Reads which months have their packet, publishes the newest for status, and makes the due one.
async fn round(shared: &Shared, now: OffsetDateTime) -> anyhow::Result<()> {
    let store = &shared.store;
    let sealed = ops::report::sealed_packets(store.reads(), store.size()).await?;
    if let Some((_, newest)) = sealed.last_key_value() {
        shared.set_last_packet(Some(state_of(&newest.body, newest.seq, &newest.sealed_at)));
    }
    let first = first_bundle_at(store).await?;
    let done = sealed.keys().cloned().collect();
    let Some(period) = schedule::packet_due(now, first, &done) else {
        return Ok(());
    };
    tracing::info!(period = %period, "Making the monthly compliance packet.");
    let made = ops::report::make_packet(
        store,
        &shared.settings.data_dir,
        Arc::clone(&shared.settings.catalog),
        &period,
        now,
    )
    .await?;
    tracing::info!(
        period = %made.period,
        dir = %made.dir.display(),
        seq = made.seq,
        files = made.body.files.len(),
        evidence = made.body.evidence,
        "Monthly compliance packet made and sealed."
    );
    shared.set_last_packet(Some(state_of(&made.body, made.seq, &made.sealed_at)));
    Ok(())
}

/// The time of the log's first bundle, as it says (not when it was stored).
async fn first_bundle_at(store: &store::Store) -> anyhow::Result<Option<OffsetDateTime>> {
    let Some(entry) = store.entry(0).await.context("reading bundle #0")? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Line {
        time: String,
    }
    let line: Line = serde_json::from_slice(&entry.line).context("reading bundle #0's time")?;
    Ok(Some(
        OffsetDateTime::parse(&line.time, &Rfc3339).context("reading bundle #0's time")?,
    ))
}

pub(crate) fn state_of(
    body: &evidence_schema::PacketBody,
    seq: u64,
    sealed_at: &str,
) -> api::PacketState {
    api::PacketState {
        period: body.period.clone(),
        made_at: OffsetDateTime::parse(sealed_at, &Rfc3339)
            .map(OffsetDateTime::unix_timestamp)
            .unwrap_or_default(),
        seq,
        files: u32::try_from(body.files.len()).unwrap_or(u32::MAX),
        evidence: body.evidence,
    }
}

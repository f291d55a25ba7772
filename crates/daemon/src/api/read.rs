//! The API's reads: status, devices, incidents, the healing log and the evidence state. Each
//! copies what it needs under the state's lock and builds the answer after; none runs a
//! subprocess (the box's addresses and proof counts are cached by background tasks).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};

use api::CycleKind;

use crate::api::{Answer, Fail, internal};
use crate::{Shared, derive, host, now};

pub(crate) async fn status(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
) -> Answer<api::Status> {
    // An unlocked console asks for status every 2 s: its token lives as long as it does.
    if let Some(peer) = crate::api::current_peer() {
        shared
            .console_pin
            .session_valid(&headers, peer.uid, std::time::Instant::now());
    }
    let evidence = evidence_state(&shared).await?;
    let settings = &shared.settings;
    let mut health = host::health(&settings.data_dir, shared.facts.addresses());
    health.support_code = support_code(&shared);
    health.update = crate::updates::state(&settings.config.daemon.update_state_dir);
    let state = shared.state();
    let devices = derive::device_counts(state.saved.devices.values());
    let last_scan_at = state
        .saved
        .devices
        .values()
        .filter_map(|d| d.last_scan_at)
        .max();
    let cycles = CycleKind::ALL
        .iter()
        .map(|&kind| {
            let control = shared.cycle(kind);
            let record = state
                .saved
                .cycles
                .get(kind.as_str())
                .cloned()
                .unwrap_or_default();
            api::CycleState {
                kind,
                enabled: control.enabled,
                running: control.running(),
                runs: record.runs,
                last_started_at: record.last_started_at,
                last_finished_at: record.last_finished_at,
                last_outcome: record.last_outcome,
                last_failed: record.last_failed,
                next_due_at: if control.enabled {
                    control.next_due()
                } else {
                    None
                },
            }
        })
        .collect();
    let mut incident_counts = api::IncidentCounts::default();
    for incident in state.ledger.all() {
        match incident.phase {
            incidents::Phase::Open => incident_counts.open += 1,
            incidents::Phase::Healing => incident_counts.healing += 1,
            incidents::Phase::Escalated => {
                incident_counts.escalated += 1;
                if !incident.acknowledged {
                    incident_counts.needs_you += 1;
                }
            }
            incidents::Phase::Resolved => incident_counts.resolved += 1,
            incidents::Phase::Closed => {}
        }
    }
    let compliance = derive::site_compliance(
        &settings.catalog,
        derive::frameworks(),
        &shared.accepted(),
        state.scores.iter(),
    )
    .into_iter()
    .map(
        |(framework, passing, failing, controls, permille)| api::FrameworkScore {
            trend: state
                .saved
                .trend
                .get(&framework)
                .cloned()
                .unwrap_or_default(),
            framework,
            passing,
            failing,
            controls,
            permille,
        },
    )
    .collect();
    Ok(Json(api::Status {
        site: settings.config.site.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        now: now(),
        started_at: shared.started_at,
        setup_complete: state.saved.setup.complete,
        devices,
        last_scan_at,
        cycles,
        healing: healing_state(&state.saved),
        incidents: incident_counts,
        compliance,
        evidence,
        health,
        console: api::ConsoleLock {
            pin_set: shared.console_pin.is_set(),
            lock_after_secs: shared.console_pin.lock_after().as_secs(),
        },
    }))
}

pub(crate) async fn evidence(State(shared): State<Arc<Shared>>) -> Answer<api::EvidenceState> {
    Ok(Json(evidence_state(&shared).await?))
}

async fn evidence_state(shared: &Shared) -> Result<api::EvidenceState, Fail> {
    let store = &shared.store;
    let latest = store.latest_checkpoint().await.map_err(internal)?;
    let (ots_pending, ots_anchored) = shared.facts.ots_counts();
    Ok(api::EvidenceState {
        bundles: store.size(),
        head_hash: store.head().map(|head| hex(&head.line_hash)),
        last_checkpoint_at: latest.as_ref().and_then(|c| {
            time::OffsetDateTime::parse(
                &c.created_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(|t| t.unix_timestamp())
        }),
        checkpoint_size: latest.map_or(0, |c| c.size),
        ots_pending,
        ots_anchored,
        key_id: store.verifier().key_id_hex(),
        last_packet: shared.last_packet(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short code the partner asks for on the phone: the key id's first 8 hex digits, grouped.
fn support_code(shared: &Shared) -> String {
    let id = shared.store.verifier().key_id_hex().to_uppercase();
    let id: String = id.chars().take(8).collect();
    match id.split_at_checked(4) {
        Some((a, b)) => format!("{a}-{b}"),
        None => id,
    }
}

/// Pause and the maintenance windows that are not over.
pub(crate) fn healing_state(saved: &crate::state::Saved) -> api::HealingState {
    let now = now();
    api::HealingState {
        paused: saved.pause.is_some(),
        paused_reason: saved.pause.as_ref().map(|p| p.reason.clone()),
        paused_by: saved.pause.as_ref().map(|p| p.by.clone()),
        paused_at: saved.pause.as_ref().map(|p| p.at),
        maintenance: saved
            .maintenance
            .iter()
            .filter(|m| m.window.end > now)
            .map(crate::state::Maintenance::to_api)
            .collect(),
    }
}

pub(crate) async fn targets(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::Device>> {
    let state = shared.state();
    let mut devices: Vec<api::Device> = state.saved.devices.values().cloned().collect();
    // Configured targets that were never scanned are devices too.
    for target in &shared.settings.config.targets {
        if !state.saved.devices.contains_key(&target.name) {
            devices.push(derive::unscanned(
                target.name.clone(),
                target.platform,
                target.address().map(str::to_owned),
            ));
        }
    }
    drop(state);
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(devices))
}

pub(crate) async fn incidents(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::Incident>> {
    let state = shared.state();
    let list = state
        .ledger
        .all()
        .into_iter()
        .filter(|i| i.phase != incidents::Phase::Closed)
        .map(|i| incident(&shared, i))
        .collect();
    Ok(Json(list))
}

/// An incident as the API shows it.
pub(crate) fn incident(shared: &Shared, i: &incidents::Incident) -> api::Incident {
    api::Incident {
        id: i.id,
        target: i.target.clone(),
        check: i.check.clone(),
        title: shared
            .settings
            .catalog
            .get(&i.check)
            .map(|rb| rb.title.clone())
            .unwrap_or_default(),
        severity: i.severity.as_str().to_owned(),
        phase: i.phase.as_str().to_owned(),
        opened_at: i.opened_at,
        updated_at: i.updated_at,
        occurrences: i.occurrences,
        flapping: i.flapping,
        acknowledged: i.acknowledged,
        needs_human: i.phase == incidents::Phase::Escalated
            || (i.phase == incidents::Phase::Open && i.flapping),
        history: i.transitions.iter().map(|t| t.why.clone()).collect(),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Limit {
    limit: Option<usize>,
}

pub(crate) async fn healing(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Limit>,
) -> Answer<Vec<api::HealingEntry>> {
    let limit = query
        .limit
        .unwrap_or(100)
        .min(crate::state::HEALING_LOG_MAX);
    let state = shared.state();
    Ok(Json(
        state
            .saved
            .healing_log
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect(),
    ))
}

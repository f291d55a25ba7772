//! Operator actions: acknowledge an incident, trigger a scan, pause or resume healing, add or
//! remove a maintenance window. Each is sealed as an `operator_action` bundle before it takes
//! effect; when sealing fails the action does not happen and the caller is told. When a console
//! PIN is set, every action but a scan trigger needs an unlock (`crate::pin::ConsoleUnlocked`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;

use api::{CycleKind, PauseRequest};

use crate::api::read::{healing_state, incident};
use crate::api::{Answer, Fail, bad_request, internal};
use crate::pin::ConsoleUnlocked;
use crate::state::{Maintenance, Pause};
use crate::{Shared, now};

/// Seals an `operator_action` bundle; returns its sequence number.
pub(crate) async fn operator_action(
    shared: &Shared,
    action: &str,
    by: &str,
    reason: &str,
    details: serde_json::Value,
) -> Result<u64, Fail> {
    let body = evidence_schema::OperatorActionBody {
        action: action.to_owned(),
        by: by.to_owned(),
        reason: reason.to_owned(),
        details,
        // Who really asked, from the kernel; `by` is only what they typed.
        peer: crate::api::current_peer(),
    };
    let appended = shared
        .store
        .append(evidence::BundleDraft {
            site: shared.settings.config.site.clone(),
            kind: evidence_schema::KIND_OPERATOR_ACTION.to_owned(),
            catalog: shared.settings.catalog.version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::to_value(&body).map_err(internal)?,
        })
        .await
        .map_err(|err| {
            Fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the action was not recorded as evidence, so it was not done: {}",
                    crate::api::chain(&err)
                ),
                Some("see the daemon log (`journalctl -u osirisd`)".to_owned()),
            )
        })?;
    Ok(appended.seq)
}

pub(crate) async fn acknowledge(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<u64>,
    Json(request): Json<api::AckRequest>,
) -> Answer<api::Incident> {
    let by = person(&request.by)?;
    let found = shared
        .state()
        .ledger
        .all()
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| (i.target.clone(), i.check.clone()));
    let Some((target, check)) = found else {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no incident #{id}"),
            Some("list them with GET /v1/incidents".to_owned()),
        ));
    };
    operator_action(
        &shared,
        "acknowledge",
        &by,
        "",
        serde_json::json!({"incident": id, "target": target, "check": check}),
    )
    .await?;
    crate::cycles::incident_event(
        &shared,
        &target,
        &check,
        incidents::Event::Acknowledged { by: by.clone() },
    )
    .await;
    let state = shared.state();
    let current = state
        .ledger
        .get(&target, &check)
        .map(|i| incident(&shared, i));
    current
        .map(Json)
        .ok_or_else(|| internal("the incident vanished"))
}

fn trigger(shared: &Shared, kind: CycleKind, what: &str) -> Answer<api::Triggered> {
    let control = shared.cycle(kind);
    if !control.enabled {
        return Err(Fail(
            StatusCode::CONFLICT,
            format!("{what} is not configured on this appliance"),
            Some("add targets (or [directory]/[workstations]) to the configuration".to_owned()),
        ));
    }
    let queued = control.running();
    control.trigger.notify_one();
    let message = if queued {
        format!("{what} is running; another run will follow it")
    } else {
        format!("{what} started")
    };
    Ok(Json(api::Triggered {
        cycle: kind,
        queued,
        message,
    }))
}

pub(crate) async fn scan_now(State(shared): State<Arc<Shared>>) -> Answer<api::Triggered> {
    trigger(&shared, CycleKind::ServerScan, "the server scan")
}

pub(crate) async fn heal_now(State(shared): State<Arc<Shared>>) -> Answer<api::Triggered> {
    // Healing follows every server scan, on fresh results.
    trigger(
        &shared,
        CycleKind::ServerScan,
        "a scan followed by L1 healing",
    )
}

/// A name someone gave for themselves: 1–64 printable characters.
pub(crate) fn person(by: &str) -> Result<String, Fail> {
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 64 || by.chars().any(char::is_control) {
        return Err(bad_request(
            "`by` must be your name (1 to 64 printable characters)",
            "say who you are, e.g. \"Dr. Smith\" or \"alice@msp\"",
        ));
    }
    Ok(by.to_owned())
}

pub(crate) fn reason(reason: &str) -> Result<String, Fail> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > 500
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(bad_request(
            "a reason is required (up to 500 characters)",
            "say why, e.g. \"server migration tonight\"; it is recorded as evidence",
        ));
    }
    Ok(reason.to_owned())
}

pub(crate) async fn pause(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<PauseRequest>,
) -> Answer<api::HealingState> {
    let by = person(&request.by)?;
    let why = reason(&request.reason)?;
    operator_action(&shared, "pause_healing", &by, &why, serde_json::json!({})).await?;
    shared.state().saved.pause = Some(Pause {
        reason: why,
        by,
        at: now(),
    });
    shared.save().await;
    Ok(Json(healing_state(&shared.state().saved)))
}

pub(crate) async fn resume(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<PauseRequest>,
) -> Answer<api::HealingState> {
    let by = person(&request.by)?;
    let why = reason(&request.reason)?;
    operator_action(&shared, "resume_healing", &by, &why, serde_json::json!({})).await?;
    shared.state().saved.pause = None;
    shared.save().await;
    Ok(Json(healing_state(&shared.state().saved)))
}

pub(crate) async fn add_maintenance(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::MaintenanceRequest>,
) -> Answer<api::Maintenance> {
    let why = reason(&request.reason)?;
    if request.end <= request.start || request.end <= now() {
        return Err(bad_request(
            "the window must end after it starts, and in the future",
            "give start and end as Unix seconds",
        ));
    }
    if request.end - request.start > 7 * 24 * 3600 {
        return Err(bad_request(
            "a maintenance window may last at most 7 days",
            "pause healing instead for longer stops",
        ));
    }
    for target in &request.targets {
        if !model::is_valid_host(target) {
            return Err(bad_request(
                format!("`{}` is not a device name", target.escape_debug()),
                "use names as listed by GET /v1/targets",
            ));
        }
    }
    // The number is taken first (a refused seal leaves a gap, never two windows with one number).
    let id = {
        let mut state = shared.state();
        state.saved.next_maintenance_id += 1;
        state.saved.next_maintenance_id
    };
    let window = Maintenance {
        id,
        window: incidents::MaintenanceWindow {
            start: request.start,
            end: request.end,
            targets: request.targets,
            reason: why,
        },
    };
    operator_action(
        &shared,
        "maintenance",
        "local API",
        &window.window.reason,
        serde_json::json!({"id": id, "start": window.window.start, "end": window.window.end, "targets": window.window.targets}),
    )
    .await?;
    let answer = window.to_api();
    {
        let mut state = shared.state();
        let now = now();
        state.saved.maintenance.retain(|m| m.window.end > now);
        state.saved.maintenance.push(window);
    }
    shared.save().await;
    Ok(Json(answer))
}

pub(crate) async fn remove_maintenance(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<u64>,
) -> Answer<api::HealingState> {
    let exists = shared.state().saved.maintenance.iter().any(|m| m.id == id);
    if !exists {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no maintenance window #{id}"),
            None,
        ));
    }
    operator_action(
        &shared,
        "maintenance_removed",
        "local API",
        "",
        serde_json::json!({"id": id}),
    )
    .await?;
    shared.state().saved.maintenance.retain(|m| m.id != id);
    shared.save().await;
    Ok(Json(healing_state(&shared.state().saved)))
}

/// Applying or rolling back an image reboots the appliance: that stays with the partner, who
/// runs `osiris update apply` / `rollback` (status shows where an update stands).
pub(crate) async fn update_unavailable() -> Answer<api::UpdateState> {
    Err(Fail(
        StatusCode::CONFLICT,
        "updates are applied by your IT partner, not from the console".to_owned(),
        Some("call your IT partner; they run `osiris update apply` on the appliance".to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reasons_are_checked() {
        assert!(person("  ").is_err());
        assert!(person("alice\u{7}").is_err());
        assert_eq!(person(" Dr. Smith ").ok(), Some("Dr. Smith".to_owned()));
        assert!(reason("").is_err());
        assert!(reason(&"x".repeat(501)).is_err());
        assert!(reason("vendor is upgrading the PACS server").is_ok());
    }
}

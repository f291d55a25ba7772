//! A person's L2 decisions while the daemon runs: the plans waiting for approval (approve runs
//! the plan now, reject drops it) and the flywheel's patterns (an approval is in effect for the
//! next L1 decision, without a restart). Each decision is sealed as an `operator_action` bundle
//! with the caller's uid before it takes effect, as every operator action is.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;

use crate::Shared;
use crate::api::actions::person;
use crate::api::{Answer, Fail, bad_request, current_peer, internal};
use crate::pin::ConsoleUnlocked;

pub(crate) async fn pending(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::L2Plan>> {
    let plans = ops::l2::pending_plans(&shared.settings.data_dir).map_err(anyhow_internal)?;
    Ok(Json(
        plans
            .into_iter()
            .map(|plan| api::L2Plan {
                id: plan.id,
                target: plan.target,
                check: plan.check,
                runbook: plan.runbook,
                params: plan.params,
                confidence: plan.confidence,
                rationale: plan.rationale,
                at: plan.at,
            })
            .collect(),
    ))
}

pub(crate) async fn approve_plan(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<api::DecisionRequest>,
) -> Answer<api::L2Decided> {
    decide_plan(&shared, &id, true, &request.by).await
}

pub(crate) async fn reject_plan(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<api::DecisionRequest>,
) -> Answer<api::L2Decided> {
    decide_plan(&shared, &id, false, &request.by).await
}

async fn decide_plan(shared: &Shared, id: &str, approve: bool, by: &str) -> Answer<api::L2Decided> {
    let by = person(by)?;
    if !id
        .strip_prefix("l2-")
        .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad_request(
            format!("`{id}` is not an L2 plan id"),
            "plan ids look like `l2-1234`; GET /v1/l2/pending (`osiris l2 list`) shows them",
        ));
    }
    let settings = &shared.settings;
    let waiting = ops::l2::pending_plans(&settings.data_dir).map_err(anyhow_internal)?;
    let Some(plan) = waiting.into_iter().find(|plan| plan.id == id) else {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no L2 plan `{id}` waits for approval"),
            Some("GET /v1/l2/pending (`osiris l2 list`) shows them".to_owned()),
        ));
    };
    let decided = ops::l2::decide_pending(
        &shared.store,
        &settings.config,
        &settings.catalog,
        &settings.data_dir,
        id,
        approve,
        &by,
        current_peer(),
        crate::now(),
    )
    .await
    .map_err(anyhow_internal)?;
    let outcome = decided.record.as_ref().map(|record| match &record.result {
        heal::HealResult::Fixed => "fixed".to_owned(),
        heal::HealResult::NotFixed { reason, .. } => format!("not fixed: {reason}"),
        other => format!("{other:?}"),
    });
    tracing::info!(plan = %id, approved = approve, by = %by, outcome = ?outcome, "An L2 plan was decided through the local API.");
    Ok(Json(api::L2Decided {
        id: id.to_owned(),
        approved: approve,
        action_seq: decided.action_seq,
        outcome,
        target: plan.target,
        check: plan.check,
        heal_seq: decided.heal_seq,
    }))
}

pub(crate) async fn flywheel(State(shared): State<Arc<Shared>>) -> Answer<api::FlywheelState> {
    let list = ops::l2::flywheel_list(&shared.store, &shared.settings.data_dir)
        .await
        .map_err(anyhow_internal)?;
    let tiers = ops::l2::tier_shares(&shared.store)
        .await
        .map_err(anyhow_internal)?;
    let rules = shared.l1.get();
    Ok(Json(api::FlywheelState {
        patterns: list
            .iter()
            .map(|(pattern, standing)| api::FlywheelPattern {
                id: pattern.id.clone(),
                check: pattern.key.check.clone(),
                runbook: pattern.key.runbook.clone(),
                successes: pattern.successes,
                attempts: pattern.attempts,
                hosts: u32::try_from(pattern.hosts.len()).unwrap_or(u32::MAX),
                standing: standing.to_string(),
                proposed_rule: (*standing == l2::flywheel::Standing::Proposed)
                    .then(|| l2::flywheel::proposed_rule(pattern)),
                in_effect: crate::flywheel::in_effect(&rules, &pattern.id),
            })
            .collect(),
        tiers: tiers
            .iter()
            .map(|day| api::TierDay {
                day: day.day,
                l1: day.l1,
                l2: day.l2,
                l3: day.l3,
            })
            .collect(),
    }))
}

pub(crate) async fn approve_pattern(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<api::DecisionRequest>,
) -> Answer<api::FlywheelDecided> {
    decide_pattern(&shared, &id, l2::flywheel::Decision::Approved, &request.by).await
}

pub(crate) async fn reject_pattern(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<api::DecisionRequest>,
) -> Answer<api::FlywheelDecided> {
    decide_pattern(&shared, &id, l2::flywheel::Decision::Rejected, &request.by).await
}

async fn decide_pattern(
    shared: &Shared,
    id: &str,
    decision: l2::flywheel::Decision,
    by: &str,
) -> Answer<api::FlywheelDecided> {
    let by = person(by)?;
    if !id
        .strip_prefix("fw-")
        .is_some_and(|hex| hex.len() == 10 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad_request(
            format!("`{id}` is not a flywheel pattern id"),
            "pattern ids look like `fw-0a1b2c3d4e`; GET /v1/flywheel (`osiris flywheel list`) shows them",
        ));
    }
    let settings = &shared.settings;
    let list = ops::l2::flywheel_list(&shared.store, &settings.data_dir)
        .await
        .map_err(anyhow_internal)?;
    let Some((_, standing)) = list.iter().find(|(pattern, _)| pattern.id == id) else {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no flywheel pattern `{id}`"),
            Some("GET /v1/flywheel (`osiris flywheel list`) shows the ids".to_owned()),
        ));
    };
    if decision == l2::flywheel::Decision::Approved && *standing != l2::flywheel::Standing::Proposed
    {
        return Err(Fail(
            StatusCode::CONFLICT,
            format!("pattern {id} is {standing}, not proposed"),
            Some(
                "a pattern needs 5 verified fixes on 2 hosts at 90 % before it can be approved"
                    .to_owned(),
            ),
        ));
    }
    let action_seq = ops::l2::flywheel_decide(
        &shared.store,
        &settings.config,
        &settings.catalog,
        &settings.data_dir,
        id,
        decision,
        &by,
        current_peer(),
    )
    .await
    .map_err(anyhow_internal)?;
    crate::flywheel::reload(shared).await;
    let rules_in_effect = u32::try_from(shared.l1.get().rules().len()).unwrap_or(u32::MAX);
    tracing::info!(pattern = %id, decision = ?decision, by = %by, rules = rules_in_effect, "A flywheel pattern was decided through the local API.");
    Ok(Json(api::FlywheelDecided {
        id: id.to_owned(),
        decision: match decision {
            l2::flywheel::Decision::Approved => "approved",
            _ => "rejected",
        }
        .to_owned(),
        action_seq,
        rules_in_effect,
    }))
}

fn anyhow_internal(err: anyhow::Error) -> Fail {
    internal(format!("{err:#}"))
}

//! L1 healing through an endpoint agent: the same rules and policy as over WinRM and SSH decide;
//! a remediation is asked of the agent by runbook ID with typed parameters (it runs only its own
//! catalogue), its phases come back as sealed `agent_remediation` bundles, and the outcome is
//! sealed as a `heal` or `escalation` bundle and applied to incidents like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_gateway::AgentInfo;
use agent_proto::v1::{
    Param, RemediationAction, RemediationOutcome, RemediationPhase, RemediationStatus,
    RunRemediation, gateway_message, param,
};
use heal::{HealRecord, HealResult, StepRecord};
use model::{CheckStatus, Target};
use rules::{Decision, Finding, RunbookFacts};

use crate::{Shared, now};

/// How long a requested remediation may take before it counts as not fixed.
const OUTCOME_WITHIN_SECS: i64 = 15 * 60;

/// Remediations asked of agents and not finished, by request ID.
#[derive(Default)]
pub(crate) struct Pending {
    fixes: Mutex<HashMap<String, PendingFix>>,
}

struct PendingFix {
    agent_id: String,
    target: Target,
    record: HealRecord,
    asked_at: i64,
    /// The ID of the rollback asked after a failed verification.
    rollback_id: Option<String>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingFix>> {
        self.fixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Decides about the checks of `fresh` (this batch's results) that failed on an agent's host and
/// asks the agent to fix what L1 covers. Older results wait for the agent's next report of them
/// (after a fix the agent reports the check again), so a stale failure is never decided twice.
pub(crate) async fn consider(
    shared: &Arc<Shared>,
    agent: &AgentInfo,
    report: &scan::TargetReport,
    fresh: &[String],
) {
    let Some(runtime) = shared.agents.get() else {
        return;
    };
    expire(shared).await;
    let failed: Vec<&scan::CheckResult> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == CheckStatus::Fail && fresh.contains(&r.runbook_id))
        .collect();
    if failed.is_empty() {
        return;
    }
    let now = now();
    let history = match ops::heal::history(&shared.store, now).await {
        Ok(history) => history,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "Cannot read the healing history; agent findings wait for the next report.");
            return;
        }
    };
    let settings = &shared.settings;
    let mut policy = ops::heal::policy(&settings.config.healing);
    {
        let state = shared.state();
        policy.paused |= state.saved.pause.is_some();
        let windows: Vec<incidents::MaintenanceWindow> = state
            .saved
            .maintenance
            .iter()
            .map(|m| m.window.clone())
            .collect();
        policy.in_maintenance =
            incidents::maintenance_for(&windows, &report.target.name, now).is_some();
    }
    let facts = |id: &str| {
        settings.catalog.get(id).map(|rb| RunbookFacts {
            auto_heal: rb.auto_heal,
        })
    };
    for result in failed {
        let busy = runtime.pending.lock().values().any(|fix| {
            fix.target.name == report.target.name && fix.record.check == result.runbook_id
        });
        if busy {
            continue;
        }
        let finding = Finding {
            target: &report.target.name,
            check: &result.runbook_id,
            status: result.outcome.status,
            observed: &result.outcome.observed,
            declarative: false,
        };
        let decision = rules::decide(&finding, &shared.l1.get(), &facts, &history, &policy, now);
        tracing::info!(agent = %agent.agent_id, host = %report.target.name, check = %result.runbook_id, decision = ?decision, "L1 decision for an agent's finding.");
        let mut record = HealRecord {
            target: report.target.name.clone(),
            check: result.runbook_id.clone(),
            decision: decision.clone(),
            before: result.outcome.clone(),
            remediation: None,
            after: None,
            rollback: None,
            result: HealResult::NoRule,
        };
        match decision {
            Decision::NotFailing | Decision::NoRule | Decision::Hold { .. } => {}
            Decision::Escalate { reason, .. } => {
                record.result = HealResult::Escalated { reason };
                finish(shared, &report.target, record).await;
            }
            Decision::Remediate { runbook, .. } => {
                let request_id = format!("r-{}", hex(&rand::random::<[u8; 8]>()));
                let request = RunRemediation {
                    request_id: request_id.clone(),
                    runbook_id: runbook.clone(),
                    action: RemediationAction::Remediate as i32,
                    parameters: parameters(&settings.config, &runbook),
                };
                match runtime.handle.send(
                    &agent.agent_id,
                    gateway_message::Kind::RunRemediation(request),
                ) {
                    Ok(()) => {
                        tracing::info!(agent = %agent.agent_id, request = %request_id, runbook = %runbook, "Asked the agent to remediate.");
                        runtime.pending.lock().insert(
                            request_id,
                            PendingFix {
                                agent_id: agent.agent_id.clone(),
                                target: report.target.clone(),
                                record,
                                asked_at: now,
                                rollback_id: None,
                            },
                        );
                    }
                    Err(err) => {
                        tracing::info!(error = %err, "The agent went away before its remediation could be asked; the next report decides again.");
                    }
                }
            }
        }
    }
}

/// The configured parameter overrides of `runbook`, typed for the wire.
fn parameters(config: &config::Config, runbook: &str) -> std::collections::BTreeMap<String, Param> {
    config
        .checks
        .get(runbook)
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = match value {
                model::ParamValue::Integer(n) => param::Value::IntValue(*n),
                model::ParamValue::Boolean(b) => param::Value::BoolValue(*b),
                model::ParamValue::Text(s) => param::Value::StringValue(s.clone()),
            };
            (name.clone(), Param { value: Some(value) })
        })
        .collect()
}

/// One phase of a remediation came back (already sealed as `agent_remediation` bundle
/// `bundle_seq`).
pub(crate) async fn on_outcome(
    shared: &Arc<Shared>,
    agent: &AgentInfo,
    outcome: RemediationOutcome,
    bundle_seq: u64,
) {
    let Some(runtime) = shared.agents.get() else {
        return;
    };
    let step = StepRecord {
        exit_code: match outcome.status() {
            RemediationStatus::Succeeded => Some(0),
            RemediationStatus::Failed => Some(1),
            _ => None,
        },
        stdout: String::new(),
        stderr: outcome.detail.clone(),
        error: match outcome.status() {
            RemediationStatus::Refused => Some(format!("the agent refused: {}", outcome.detail)),
            RemediationStatus::TimedOut => Some("timed out on the agent".to_owned()),
            _ => None,
        },
    };
    let finished = {
        let mut pending = runtime.pending.lock();
        let key = pending
            .iter()
            .find(|(id, fix)| {
                fix.agent_id == agent.agent_id
                    && (**id == outcome.request_id
                        || fix.rollback_id.as_deref() == Some(outcome.request_id.as_str()))
            })
            .map(|(id, _)| id.clone());
        let Some(key) = key else {
            tracing::info!(agent = %agent.agent_id, request = %outcome.request_id, bundle = bundle_seq, "A remediation outcome for no pending request (already finished or from before a restart); sealed, nothing else to do.");
            return;
        };
        let Some(fix) = pending.get_mut(&key) else {
            return;
        };
        let phase = outcome.phase();
        let status = outcome.status();
        let done = match phase {
            RemediationPhase::Accepted if status == RemediationStatus::Succeeded => false,
            RemediationPhase::Accepted | RemediationPhase::Unspecified => {
                fix.record.result = HealResult::Escalated {
                    reason: format!("the agent refused the remediation: {}", outcome.detail),
                };
                true
            }
            RemediationPhase::Remediate => {
                fix.record.remediation = Some(step);
                false
            }
            RemediationPhase::Verify if status == RemediationStatus::Succeeded => {
                fix.record.after = Some(model::CheckOutcome {
                    status: CheckStatus::Pass,
                    observed: serde_json::Value::Null,
                    expected: String::new(),
                    reason: format!("verified by the agent (bundle #{bundle_seq})"),
                });
                fix.record.result = HealResult::Fixed;
                true
            }
            RemediationPhase::Verify => {
                fix.record.after = Some(model::CheckOutcome {
                    status: CheckStatus::Fail,
                    observed: serde_json::Value::Null,
                    expected: String::new(),
                    reason: format!("{} (bundle #{bundle_seq})", outcome.detail),
                });
                let has_rollback = shared
                    .settings
                    .catalog
                    .get(&outcome.runbook_id)
                    .is_some_and(|rb| rb.rollback.is_some());
                fix.record.result = HealResult::NotFixed {
                    rolled_back: false,
                    reason: "the fix did not verify on the device".to_owned(),
                };
                if has_rollback && fix.rollback_id.is_none() {
                    let rollback_id = format!("{key}-rollback");
                    let asked = runtime.handle.send(
                        &agent.agent_id,
                        gateway_message::Kind::RunRemediation(RunRemediation {
                            request_id: rollback_id.clone(),
                            runbook_id: outcome.runbook_id.clone(),
                            action: RemediationAction::Rollback as i32,
                            parameters: parameters(&shared.settings.config, &outcome.runbook_id),
                        }),
                    );
                    fix.rollback_id = Some(rollback_id);
                    asked.is_err()
                } else {
                    true
                }
            }
            RemediationPhase::Rollback => {
                let rolled_back = status == RemediationStatus::Succeeded;
                fix.record.rollback = Some(step);
                let reason = match &fix.record.result {
                    HealResult::NotFixed { reason, .. } => reason.clone(),
                    _ => "the fix did not verify on the device".to_owned(),
                };
                fix.record.result = HealResult::NotFixed {
                    rolled_back,
                    reason,
                };
                true
            }
        };
        if done { pending.remove(&key) } else { None }
    };
    if let Some(fix) = finished {
        finish(shared, &fix.target, fix.record).await;
    }
}

/// Remediations that never finished count as not fixed.
async fn expire(shared: &Arc<Shared>) {
    let Some(runtime) = shared.agents.get() else {
        return;
    };
    let now = now();
    let expired: Vec<PendingFix> = {
        let mut pending = runtime.pending.lock();
        let keys: Vec<String> = pending
            .iter()
            .filter(|(_, fix)| now - fix.asked_at > OUTCOME_WITHIN_SECS)
            .map(|(id, _)| id.clone())
            .collect();
        keys.iter().filter_map(|key| pending.remove(key)).collect()
    };
    for mut fix in expired {
        fix.record.result = HealResult::NotFixed {
            rolled_back: false,
            reason: "the agent did not report how the remediation went within 15 minutes"
                .to_owned(),
        };
        finish(shared, &fix.target, fix.record).await;
    }
}

/// Seals the outcome and applies it to incidents and the healing log.
async fn finish(shared: &Arc<Shared>, target: &Target, record: HealRecord) {
    let settings = &shared.settings;
    let now = now();
    let seq = match ops::heal::record_evidence(
        &shared.store,
        &settings.config,
        &settings.catalog,
        target,
        &record,
        now,
    )
    .await
    {
        Ok(seq) => seq,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), host = %target.name, check = %record.check, "Could not seal an agent remediation's outcome.");
            return;
        }
    };
    let for_person = !matches!(record.result, HealResult::Fixed);
    {
        let mut state = shared.state();
        crate::cycles::apply_heal(&mut state, settings, &target.name, &record, seq, now);
    }
    shared.save().await;
    if for_person {
        shared.notifier.notify_one();
    }
    tracing::info!(host = %target.name, check = %record.check, result = ?record.result, bundle = ?seq, "Agent remediation finished.");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! L1 healing of scanned targets: decide per finding, remediate, verify, roll back, and seal a
//! `heal` or `escalation` bundle for every attempt.

use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;

use evidence_schema::{CheckState, HealBody, TargetRecord};
use heal::{HealContext, HealRecord, HealResult};
use model::{CheckOutcome, Target};
use rules::{Attempt, AttemptResult, Policy, RuleSet};

use crate::scan::Scanned;

/// How far back the healing history reaches (longer than any window the policy uses).
const HISTORY_SECS: i64 = 24 * 3600;

/// What healing did about one failed check.
#[derive(Debug, Clone)]
pub struct Healed {
    pub target: Target,
    pub record: HealRecord,
    /// The evidence bundle sealed for it (none for holds, plans and uncovered findings).
    pub seq: Option<u64>,
}

/// How one healing pass runs.
pub struct HealOptions<'a> {
    pub policy: Policy,
    /// Whether a target is inside a maintenance window now (remediation held, detection goes on).
    pub in_maintenance: &'a (dyn Fn(&str) -> bool + Sync),
    /// Plan only: change nothing, record nothing (L2 is not consulted either).
    pub dry_run: bool,
    /// The L2 planner, consulted about findings L1 leaves to a person (`[l2]`; none: off).
    pub l2: Option<&'a crate::l2::Planner>,
}

/// Heals every scanned target in turn (so the site-wide limits see every attempt); within a
/// target, findings are handled one at a time over its one session.
pub async fn heal_scanned(
    store: &store::Store,
    config: &config::Config,
    catalog: &Arc<catalog::Catalog>,
    rules: &RuleSet,
    scanned: Vec<Scanned>,
    options: &HealOptions<'_>,
) -> anyhow::Result<Vec<Healed>> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut history = history(store, now).await?;
    let overrides = config.param_overrides();
    let mut all = Vec::new();
    for Scanned {
        target,
        transport,
        mut report,
    } in scanned
    {
        // Only what this scan observed is acted on; carried results were handled when they ran.
        let carried = std::mem::take(&mut report.carried);
        report
            .results
            .retain(|result| !carried.contains_key(&result.runbook_id));
        let mut policy = options.policy;
        policy.in_maintenance = (options.in_maintenance)(&target.name);
        let ctx = HealContext {
            catalog,
            rules,
            policy,
            overrides: &overrides,
            dry_run: options.dry_run,
            now,
        };
        // Remediation is blocking IO over the target's session; keep the runtime's other tasks
        // (the daemon's API) answering meanwhile.
        let (records, diagnostics) = tokio::task::block_in_place(|| {
            heal::heal_target(&target, transport.as_ref(), &report, &mut history, &ctx)
        });
        for diagnostic in diagnostics {
            tracing::warn!(target_name = %diagnostic.target, error = %diagnostic.message, "Healing problem.");
        }
        for mut record in records {
            if let Some(planner) = options.l2.filter(|_| {
                !options.dry_run
                    && !policy.paused
                    && !policy.in_maintenance
                    && crate::l2::is_candidate(&record, rules)
            }) {
                let consulted = crate::l2::consult(
                    planner, store, config, catalog, &target, &transport, &record, now,
                )
                .await?;
                record = consulted.record;
            }
            let seq = if options.dry_run {
                None
            } else {
                record_evidence(store, config, catalog, &target, &record, now).await?
            };
            all.push(Healed {
                target: target.clone(),
                record,
                seq,
            });
        }
    }
    Ok(all)
}

/// The remediation attempts the L1 decision weighs (cool-downs, flapping, limits, the breaker):
/// those of the last day, oldest first.
///
/// # Errors
/// When the store cannot be read.
pub async fn history(store: &store::Store, now: i64) -> anyhow::Result<Vec<Attempt>> {
    Ok(store
        .heal_attempts_since(now - HISTORY_SECS)
        .await
        .context("reading the healing history")?
        .into_iter()
        .map(|a| Attempt {
            rule: a.rule,
            target: a.target,
            at: a.at,
            result: if a.verified {
                AttemptResult::Verified
            } else {
                AttemptResult::Failed
            },
        })
        .collect())
}

/// The L1 policy the configuration asks for (pause and maintenance are applied per target).
pub fn policy(cfg: &config::HealingConfig) -> Policy {
    Policy {
        paused: cfg.paused,
        in_maintenance: false,
        max_per_hour: cfg.max_per_hour,
        flap_max: cfg.flap_max,
        flap_window_secs: i64::from(cfg.flap_window_minutes) * 60,
        breaker_failures: cfg.breaker_failures,
        breaker_cooldown_secs: i64::from(cfg.breaker_cooldown_minutes) * 60,
    }
}

/// Seals a `heal` bundle for a remediation attempt (and records it in the history) or an
/// `escalation` bundle; holds, plans and uncovered findings leave no bundle. Also used for
/// remediations an endpoint agent ran at the daemon's request.
pub async fn record_evidence(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    target: &model::Target,
    record: &HealRecord,
    now: i64,
) -> anyhow::Result<Option<u64>> {
    let (kind, result, reason) = match &record.result {
        HealResult::Fixed => (evidence_schema::KIND_HEAL, "fixed", String::new()),
        HealResult::NotFixed {
            reason,
            rolled_back,
        } => {
            let rolled = if *rolled_back { " (rolled back)" } else { "" };
            (
                evidence_schema::KIND_HEAL,
                "not_fixed",
                format!("{reason}{rolled}"),
            )
        }
        HealResult::Escalated { reason } => (
            evidence_schema::KIND_ESCALATION,
            "escalated",
            reason.clone(),
        ),
        HealResult::Held { .. } | HealResult::Planned { .. } | HealResult::NoRule => {
            return Ok(None);
        }
    };
    let runbook = match &record.decision {
        rules::Decision::Remediate { runbook, .. } => Some(runbook.clone()),
        _ => None,
    };
    let body = HealBody {
        target: TargetRecord {
            name: target.name.clone(),
            platform: target.platform.as_str().to_owned(),
            device_type: target.device_type.as_str().to_owned(),
        },
        check: record.check.clone(),
        rule: record.rule().map(str::to_owned),
        runbook,
        result: result.to_owned(),
        reason,
        before: state(&record.before),
        after: record.after.as_ref().map(state),
        remediation: record.remediation.as_ref().map(step),
        rollback: record.rollback.as_ref().map(step),
    };
    let draft = evidence::BundleDraft {
        site: config.site.clone(),
        kind: kind.to_owned(),
        catalog: catalog.version().to_owned(),
        time: OffsetDateTime::now_utc(),
        body: serde_json::to_value(body)?,
    };
    let appended = store
        .append(draft)
        .await
        .context("recording healing evidence")?;
    if kind == evidence_schema::KIND_HEAL {
        let attempt = store::HealAttempt {
            rule: record.rule().unwrap_or_default().to_owned(),
            target: target.name.clone(),
            check: record.check.clone(),
            at: now,
            verified: record.result == HealResult::Fixed,
            evidence_seq: Some(appended.seq),
        };
        store
            .record_heal_attempt(attempt)
            .await
            .context("recording the heal attempt")?;
    }
    Ok(Some(appended.seq))
}

fn state(outcome: &CheckOutcome) -> CheckState {
    CheckState {
        status: outcome.status.as_str().to_owned(),
        observed: outcome.observed.clone(),
        reason: outcome.reason.clone(),
    }
}

fn step(record: &heal::StepRecord) -> evidence_schema::StepRecord {
    evidence_schema::StepRecord {
        exit_code: record.exit_code,
        stdout: record.stdout.clone(),
        stderr: record.stderr.clone(),
        error: record.error.clone(),
    }
}

//! `osiris heal`: scan the configured targets, let L1 fix what its rules cover, verify each fix,
//! and record every attempt and escalation as evidence.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;

use evidence_schema::{CheckState, HealBody, TargetRecord};
use heal::{HealContext, HealRecord, HealResult};
use model::CheckOutcome;
use rules::{Attempt, AttemptResult, Policy};

use crate::scan_cmd::{self, Scanned};
use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct HealArgs {
    /// Configuration file (targets, credentials, healing limits).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Show what L1 would do; change nothing and record nothing.
    #[arg(long)]
    dry_run: bool,
}

/// How far back the healing history reaches (longer than any window the policy uses).
const HISTORY_SECS: i64 = 24 * 3600;

pub(crate) fn run(args: HealArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    setup::check_overrides(&config, &catalog)?;
    let rules = rules::embedded(catalog.runbooks())
        .map_err(|err| crate::BadConfig(format!("built-in L1 rules are invalid:\n{err}")))?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let policy = policy(&config.healing);
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let catalog = Arc::new(catalog);
        let scanned = scan_cmd::scan_all(&config, &catalog, &data_dir).await?;
        if !args.dry_run {
            let reports: Vec<_> = scanned.iter().map(|s| s.report.clone()).collect();
            scan_cmd::record_scans(&store, &config, &catalog, &reports).await?;
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut history: Vec<Attempt> = store
            .heal_attempts_since(now - HISTORY_SECS)
            .await
            .context("reading the healing history")?
            .into_iter()
            .map(|a| Attempt {
                rule: a.rule,
                target: a.target,
                at: a.at,
                result: if a.verified { AttemptResult::Verified } else { AttemptResult::Failed },
            })
            .collect();
        let overrides = config.param_overrides();
        // Targets are healed one after another so the site-wide limits see every attempt;
        // within a target, findings are handled one at a time over one session.
        let mut all = Vec::new();
        for Scanned { target, transport, report } in scanned {
            let ctx = HealContext { catalog: &catalog, rules: &rules, policy, overrides: &overrides, dry_run: args.dry_run, now };
            let (records, diagnostics) = heal::heal_target(&target, transport.as_ref(), &report, &mut history, &ctx);
            for diagnostic in diagnostics {
                tracing::warn!(target_name = %diagnostic.target, error = %diagnostic.message, "Healing problem.");
            }
            all.extend(records.into_iter().map(|record| (target.clone(), record)));
        }
        let mut out = String::new();
        let mut sealed = Vec::new();
        for (target, record) in &all {
            let seq = if args.dry_run { None } else { record_evidence(&store, &config, &catalog, target, record, now).await? };
            if let Some(seq) = seq {
                sealed.push(seq);
            }
            out.push_str(&line(record, seq));
        }
        if !args.dry_run {
            store.create_checkpoint().await.context("signing a checkpoint")?;
        }
        store.close().await;
        let mut stdout = std::io::stdout().lock();
        let mode = if args.dry_run { " (dry run: nothing was changed)" } else { "" };
        writeln!(stdout, "L1 healing{mode}: {} failed checks on {} targets", all.len(), config.targets.len())?;
        write!(stdout, "{out}")?;
        if !sealed.is_empty() {
            writeln!(stdout, "evidence: {} bundles recorded (#{}–#{}), checkpoint signed", sealed.len(), sealed[0], sealed[sealed.len() - 1])?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn policy(cfg: &config::HealingConfig) -> Policy {
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
/// `escalation` bundle; holds, plans and uncovered findings leave no bundle.
async fn record_evidence(
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

fn line(record: &HealRecord, seq: Option<u64>) -> String {
    let evidence = seq
        .map(|seq| format!(" [bundle #{seq}]"))
        .unwrap_or_default();
    let (label, detail) = match &record.result {
        HealResult::Fixed => (
            "FIXED",
            format!("was: {}; passes now", record.before.reason),
        ),
        HealResult::NotFixed {
            rolled_back,
            reason,
        } => (
            "NOT FIXED",
            format!(
                "{reason}{}; needs a person",
                if *rolled_back { " (rolled back)" } else { "" }
            ),
        ),
        HealResult::Escalated { reason } => ("ESCALATED", reason.clone()),
        HealResult::Held { reason } => ("HELD", reason.clone()),
        HealResult::Planned { runbook } => (
            "WOULD FIX",
            format!(
                "would run {runbook} remediation; found: {}",
                record.before.reason
            ),
        ),
        HealResult::NoRule => (
            "OPEN",
            format!(
                "no L1 rule covers this: needs a person; found: {}",
                record.before.reason
            ),
        ),
    };
    format!(
        "  {label:<10} {:<12} {:<15} {detail}{evidence}\n",
        record.target, record.check
    )
}

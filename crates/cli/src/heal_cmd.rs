//! `osiris heal`: scan the configured targets, let L1 fix what its rules cover, verify each fix,
//! and record every attempt and escalation as evidence.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use heal::{HealRecord, HealResult};
use ops::heal::HealOptions;

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

pub(crate) fn run(args: HealArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    setup::check_overrides(&config, &catalog)?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    // `[l2]` on: what L1 leaves to a person is put to the planner too (not in a dry run).
    let planner = if args.dry_run {
        None
    } else {
        ops::l2::Planner::from_config(&config, &data_dir)?
    };
    let options = HealOptions {
        policy: ops::heal::policy(&config.healing),
        in_maintenance: &|_| false,
        dry_run: args.dry_run,
        l2: planner.as_ref(),
    };
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        // Patterns a person promoted from L2 join the L1 rules.
        let local = ops::l2::flywheel_rules(&store, &config, &catalog, &data_dir).await?;
        let rules = rules::embedded_with(catalog.runbooks(), "flywheel.json", &local)
            .map_err(|err| crate::BadConfig(format!("L1 rules are invalid:\n{err}")))?;
        let catalog = Arc::new(catalog);
        let scanned = ops::scan::scan_all(&config, &catalog, &data_dir).await?;
        if !args.dry_run {
            let reports: Vec<_> = scanned.iter().map(|s| s.report.clone()).collect();
            ops::scan::record_scans(&store, &config, &catalog, &reports).await?;
        }
        let all =
            ops::heal::heal_scanned(&store, &config, &catalog, &rules, scanned, &options).await?;
        let mut out = String::new();
        let mut sealed = Vec::new();
        for healed in &all {
            if let Some(seq) = healed.seq {
                sealed.push(seq);
            }
            out.push_str(&line(&healed.record, healed.seq));
        }
        if !args.dry_run {
            store
                .create_checkpoint()
                .await
                .context("signing a checkpoint")?;
        }
        store.close().await;
        let mut stdout = std::io::stdout().lock();
        let mode = if args.dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        };
        writeln!(
            stdout,
            "L1 healing{mode}: {} failed checks on {} targets",
            all.len(),
            config.targets.len()
        )?;
        write!(stdout, "{out}")?;
        if !sealed.is_empty() {
            writeln!(
                stdout,
                "evidence: {} bundles recorded (#{}–#{}), checkpoint signed",
                sealed.len(),
                sealed[0],
                sealed[sealed.len() - 1]
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
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

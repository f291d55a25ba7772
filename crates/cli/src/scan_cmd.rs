//! `osiris scan`: scan the configured targets, seal one signed bundle per target, report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;

use scan::TargetReport;

use crate::report::{self, EvidenceNote};
use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// Configuration file (default: scan this machine with built-in settings).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory for the database and keys (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of the report.
    #[arg(long)]
    json: bool,
    /// Run every check now, including those whose interval has not passed since they last
    /// passed (by default those are carried, with the time they were observed).
    #[arg(long)]
    all: bool,
}

pub(crate) fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    setup::check_overrides(&config, &catalog)?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    ops::workstations::prepare_kerberos(&config, &data_dir)?;
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        // Open the store first: a data directory we cannot write should stop us before scanning.
        let store = setup::open_store(&data_dir, &config.site).await?;
        let catalog = Arc::new(catalog);
        // Workstations from the last AD inventory join the configured targets once they answer.
        let plan = ops::workstations::plan(&config, &data_dir).await?;
        let mut config = config;
        if let Some(plan) = &plan {
            config.targets.extend(plan.targets.iter().cloned());
        }
        let no_passwords = ops::secrets::HostPasswords::default();
        let passwords = plan.as_ref().map_or(&no_passwords, |plan| &plan.passwords);
        let options = ops::scan::ScanOptions {
            due: if args.all {
                scan::cadence::Due::All
            } else {
                scan::cadence::Due::Cadence
            },
            ..Default::default()
        };
        let scanned =
            ops::scan::scan_with(&config, &catalog, &data_dir, passwords, &options).await?;
        let reports: Vec<TargetReport> =
            scanned.into_iter().map(|scanned| scanned.report).collect();
        let mut bundles = ops::scan::record_scans(&store, &config, &catalog, &reports).await?;
        let summary = match &plan {
            Some(plan) => {
                let ws_reports: Vec<&TargetReport> = reports
                    .iter()
                    .filter(|r| plan.targets.iter().any(|t| t.name == r.target.name))
                    .collect();
                let body = ops::workstations::summary(plan, &ws_reports, &[]);
                let appended = store
                    .append(evidence::BundleDraft {
                        site: config.site.clone(),
                        kind: evidence_schema::KIND_WORKSTATION_SUMMARY.to_owned(),
                        catalog: catalog.version().to_owned(),
                        time: OffsetDateTime::now_utc(),
                        body: serde_json::to_value(&body)?,
                    })
                    .await
                    .context("recording the workstation summary")?;
                bundles.push(("workstations".to_owned(), appended.seq));
                Some(body)
            }
            None => None,
        };
        let note = EvidenceNote::checkpoint(&store, &data_dir, bundles).await?;
        let mut out = std::io::stdout().lock();
        if args.json {
            let mut json = report::render_json(&catalog, &reports, &note);
            if let (Some(summary), Some(map)) = (&summary, json.as_object_mut()) {
                map.insert("workstations".to_owned(), serde_json::to_value(summary)?);
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        } else {
            write!(out, "{}", report::render_text(&catalog, &reports, &note))?;
            if let Some(s) = &summary {
                writeln!(
                    out,
                    "Workstations: {} of {} known checked ({}.{}% coverage): {} compliant, {} need attention; {} not checked (disabled, offline or not in DNS)",
                    s.checked,
                    s.known,
                    s.coverage_permille / 10,
                    s.coverage_permille % 10,
                    s.compliant,
                    s.drifted,
                    s.not_checked.len()
                )?;
            }
        }
        out.flush()?;
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

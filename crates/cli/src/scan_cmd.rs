//! `osiris scan`: scan the configured targets, seal one signed bundle per target, report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use time::OffsetDateTime;

use evidence_schema::{CheckResultRecord, ScanBody, Summary, TargetRecord};
use model::{DeviceType, Platform, Target};
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
}

pub(crate) fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    setup::check_overrides(&config, &catalog)?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        // Open the store first: a data directory we cannot write should stop us before scanning.
        let store = setup::open_store(&data_dir, &config.site).await?;
        let overrides = config.param_overrides();
        let mut reports = Vec::new();
        for target_config in &config.targets {
            let platform: Platform = target_config
                .platform
                .parse()
                .map_err(|err| crate::BadConfig(format!("target `{}`: {err}", target_config.name)))?;
            let target = Target { name: target_config.name.clone(), platform, device_type: DeviceType::Server };
            let catalog = catalog.clone();
            let overrides = overrides.clone();
            let (report, diagnostics) = tokio::task::spawn_blocking(move || {
                let runbooks: Vec<_> = catalog.for_platform(target.platform).collect();
                scan::scan_target(&target, &scan_local::LocalTransport, &runbooks, &overrides)
            })
            .await
            .context("scan task failed")?;
            for diagnostic in diagnostics {
                tracing::warn!(target_name = %diagnostic.target, error = %diagnostic.message, "Scan problem.");
            }
            reports.push(report);
        }

        let mut bundles = Vec::new();
        for report in &reports {
            let body = scan_body(&catalog, report)?;
            let draft = evidence::BundleDraft {
                site: config.site.clone(),
                kind: evidence_schema::KIND_SCAN.to_owned(),
                catalog: catalog.version().to_owned(),
                time: OffsetDateTime::now_utc(),
                body,
            };
            let appended = store.append(draft).await.context("recording scan evidence")?;
            bundles.push((report.target.name.clone(), appended.seq));
        }
        let checkpoint = store.create_checkpoint().await.context("signing a checkpoint")?;
        let note = EvidenceNote {
            data_dir: data_dir.display().to_string(),
            bundles,
            log_size: checkpoint.size,
            origin: store.origin().to_owned(),
            key_id: store.verifier().key_id_hex(),
        };
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = report::render_json(&catalog, &reports, &note);
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        } else {
            write!(out, "{}", report::render_text(&catalog, &reports, &note))?;
        }
        out.flush()?;
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The evidence body of one target's scan (schema: docs/EVIDENCE-FORMAT.md).
fn scan_body(
    catalog: &catalog::Catalog,
    report: &TargetReport,
) -> anyhow::Result<serde_json::Value> {
    let summary = report.summary();
    let results = report
        .results
        .iter()
        .map(|result| {
            let runbook = catalog.get(&result.runbook_id);
            CheckResultRecord {
                check: result.runbook_id.clone(),
                title: runbook.map(|rb| rb.title.clone()).unwrap_or_default(),
                severity: runbook
                    .map(|rb| rb.severity.as_str().to_owned())
                    .unwrap_or_default(),
                status: result.outcome.status.as_str().to_owned(),
                observed: result.outcome.observed.clone(),
                expected: result.outcome.expected.clone(),
                reason: result.outcome.reason.clone(),
                controls: runbook.map(report::control_refs).unwrap_or_default(),
            }
        })
        .collect();
    let body = ScanBody {
        target: TargetRecord {
            name: report.target.name.clone(),
            platform: report.target.platform.as_str().to_owned(),
            device_type: report.target.device_type.as_str().to_owned(),
        },
        started: evidence::log::format_time(report.started)?,
        finished: evidence::log::format_time(report.finished)?,
        results,
        summary: Summary {
            total: summary.total as u64,
            pass: summary.pass as u64,
            fail: summary.fail as u64,
            error: summary.error as u64,
            skipped: summary.skipped as u64,
        },
    };
    Ok(serde_json::to_value(body)?)
}

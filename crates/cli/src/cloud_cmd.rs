//! `osiris cloud scan`: check the configured cloud tenants (`[[cloud]]`) through their
//! providers' APIs, seal one signed scan bundle per tenant, report like `osiris scan`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::report::{self, EvidenceNote};
use crate::setup;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CloudCommand {
    /// Scan the configured tenants (or one) and record signed evidence.
    Scan(CloudScanArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CloudScanArgs {
    /// Configuration file with the `[[cloud]]` tenants.
    #[arg(long)]
    config: PathBuf,
    /// Data directory for the database, keys and vault (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Scan only the tenant of this name.
    #[arg(long)]
    tenant: Option<String>,
    /// Print machine-readable JSON instead of the report.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: CloudCommand) -> anyhow::Result<ExitCode> {
    let CloudCommand::Scan(args) = command;
    let config = setup::load_config(Some(&args.config))?;
    let catalog = setup::load_catalog()?;
    setup::check_overrides(&config, &catalog)?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let reports: Vec<scan::TargetReport> =
            ops::cloud::scan_tenants(&config, &catalog, &data_dir, args.tenant.as_deref())
                .await?
                .into_iter()
                .map(|scan| scan.report)
                .collect();
        let bundles = ops::scan::record_scans(&store, &config, &catalog, &reports).await?;
        let note = EvidenceNote::checkpoint(&store, &data_dir, bundles).await?;
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

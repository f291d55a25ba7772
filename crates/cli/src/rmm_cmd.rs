//! `osiris rmm import`: read the configured RMMs' device inventories (`[[rmm]]`), reconcile each
//! with the last Active Directory inventory, seal a signed `rmm_inventory` bundle per RMM, and
//! print what only one side knows.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use evidence_schema::RmmInventoryBody;

use crate::setup;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RmmCommand {
    /// Import the device inventory of the configured RMMs (or one) and record it as evidence.
    Import(RmmImportArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmmImportArgs {
    /// Configuration file with the `[[rmm]]` tables.
    #[arg(long)]
    config: PathBuf,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Import only the RMM of this name.
    #[arg(long)]
    name: Option<String>,
    /// Print machine-readable JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: RmmCommand) -> anyhow::Result<ExitCode> {
    let RmmCommand::Import(args) = command;
    let config = setup::load_config(Some(&args.config))?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let chosen = ops::rmm::selected(&config, args.name.as_deref())?;
    // Every secret first, so a credential problem stops the run before any request.
    let secrets = ops::secrets::Secrets::new(&config, &data_dir);
    let settings = chosen
        .iter()
        .map(|rmm| ops::rmm::settings(rmm, &secrets))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let mut imported = Vec::new();
        let mut failed = Vec::new();
        for (rmm, settings) in chosen.iter().zip(&settings) {
            match ops::rmm::import_and_record(&store, &config, rmm, settings, &data_dir).await {
                Ok((body, seq)) => imported.push((body, seq)),
                Err(err) => {
                    tracing::warn!(rmm = %rmm.name, error = %format!("{err:#}"), "RMM import failed.");
                    failed.push((rmm.name.clone(), format!("{err:#}")));
                }
            }
        }
        store.close().await;
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({
                "imported": imported
                    .iter()
                    .map(|(body, seq)| serde_json::json!({"inventory": body, "evidence": {"seq": seq}}))
                    .collect::<Vec<_>>(),
                "failed": failed
                    .iter()
                    .map(|(name, error)| serde_json::json!({"rmm": name, "error": error}))
                    .collect::<Vec<_>>(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        } else {
            for (body, seq) in &imported {
                write!(out, "{}", render(body, *seq))?;
            }
            for (name, error) in &failed {
                writeln!(out, "rmm `{name}`: not imported, nothing recorded: {error}")?;
            }
        }
        out.flush()?;
        Ok(if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn render(body: &RmmInventoryBody, seq: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &body.counts;
    let _ = writeln!(
        out,
        "{} ({}, site {}): {} devices",
        body.source, body.provider, body.site, c.devices
    );
    let Some(directory) = &body.directory else {
        let _ = writeln!(
            out,
            "  Not reconciled: no Active Directory inventory yet (run `osiris discover`, then import again)."
        );
        let _ = writeln!(out, "Recorded as evidence bundle #{seq}.");
        return out;
    };
    let _ = writeln!(
        out,
        "  against {} computers of {}: {} matched, {} only in the RMM, {} only in the directory (no RMM agent), {} inactive in the directory",
        directory.computers,
        if directory.domain.is_empty() {
            "the directory"
        } else {
            &directory.domain
        },
        c.matched,
        c.rmm_only,
        c.directory_only,
        c.directory_only_inactive
    );
    for (standing, heading) in [
        ("rmm_only", "Only in the RMM (not in the directory):"),
        ("directory_only", "Only in the directory (no RMM agent):"),
    ] {
        let lines: Vec<_> = body
            .reconciliation
            .iter()
            .filter(|l| l.standing == standing)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {heading}");
        for line in lines {
            let who = line
                .directory_account
                .clone()
                .unwrap_or_else(|| line.rmm_ids.join(", "));
            let _ = writeln!(out, "    {:<24} {:<24} {}", line.name, who, line.note);
        }
    }
    let notes: Vec<_> = body
        .reconciliation
        .iter()
        .filter(|l| l.standing == "matched" && !l.note.is_empty())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "  Matched, with something to look at:");
        for line in notes {
            let _ = writeln!(out, "    {:<24} {}", line.name, line.note);
        }
    }
    let _ = writeln!(out, "Recorded as evidence bundle #{seq}.");
    out
}

//! `osiris discover`: read the computer inventory from Active Directory, record it (with what
//! changed since the last one) as a signed `inventory` bundle, and print it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use evidence_schema::InventoryBody;

use crate::setup;

#[derive(Debug, clap::Args)]
pub(crate) struct DiscoverArgs {
    /// Configuration file with a `[directory]` section.
    #[arg(long)]
    config: PathBuf,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DiscoverArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(Some(&args.config))?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let secrets = ops::secrets::Secrets::new(&config, &data_dir);
    let cfg =
        ops::discover::directory_config(&config, &secrets).map_err(|err| match err
            .downcast::<crate::BadConfig>()
        {
            Ok(bad) => crate::BadConfig(format!("{}: {bad}", args.config.display())).into(),
            Err(err) => err,
        })?;
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let (body, seq) =
            ops::discover::discover_and_record(&store, &config, &cfg, &data_dir).await?;
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({"inventory": body, "evidence": {"seq": seq}});
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        } else {
            write!(out, "{}", render(&body, seq))?;
        }
        out.flush()?;
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn render(body: &InventoryBody, seq: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &body.counts;
    let _ = writeln!(
        out,
        "{}: {} computers from {} ({} domain controllers, {} servers, {} workstations, {} other; {} disabled, {} stale)",
        body.domain,
        c.total,
        body.domain_controller,
        c.domain_controllers,
        c.servers,
        c.workstations,
        c.other,
        c.disabled,
        c.stale
    );
    let _ = writeln!(
        out,
        "  {:<18} {:<17} {:<32} OPERATING SYSTEM / FLAGS",
        "ACCOUNT", "CLASS", "DNS NAME"
    );
    for computer in &body.computers {
        let mut flags = Vec::new();
        if computer.disabled {
            flags.push("disabled");
        }
        if computer.stale {
            flags.push("stale");
        }
        if computer.duplicate_dns_host_name {
            flags.push("duplicate DNS name");
        }
        let os = computer
            .operating_system
            .as_deref()
            .unwrap_or("(no OS recorded)");
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        let _ = writeln!(
            out,
            "  {:<18} {:<17} {:<32} {os}{flags}",
            computer.account,
            computer.class,
            computer.dns_host_name.as_deref().unwrap_or("-")
        );
    }
    if !body.changes.is_empty() {
        let _ = writeln!(out, "Changes since the last inventory:");
        for change in &body.changes {
            let detail = match (&change.from, &change.to) {
                (Some(from), Some(to)) => format!(": {from} → {to}"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {:<12} {}{detail}", change.change, change.account);
        }
    }
    let _ = writeln!(out, "Recorded as evidence bundle #{seq}.");
    out
}

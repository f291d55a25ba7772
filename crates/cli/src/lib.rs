//! The `osiris` command line: argument schema, dispatch, and exit-code policy.
//!
//! Exit codes: 0 success, 1 runtime failure (including a kit that does not verify),
//! 2 usage error, 78 invalid configuration or catalogue.

mod agent_cmd;
mod bench;
mod bench_agents;
mod bench_cloud;
mod bench_daemon;
mod bench_scan;
mod cloud_cmd;
mod compliance_cmd;
mod credentials_cmd;
mod discover_cmd;
mod evidence_cmd;
mod flywheel_cmd;
mod heal_cmd;
mod l2_cmd;
mod report;
mod rmm_cmd;
mod scan_cmd;
mod signing_key_cmd;
mod status_cmd;
mod update_cmd;
mod verify_report;

use ops::setup;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// OsirisCare appliance: scan machines, heal drift, and prove it with signed evidence.
#[derive(Debug, Parser)]
#[command(name = "osiris", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan the configured targets (by default: this machine) and record signed evidence.
    Scan(scan_cmd::ScanArgs),
    /// Cloud tenants (`[[cloud]]`, Microsoft 365): scan them through their providers' APIs.
    #[command(subcommand)]
    Cloud(cloud_cmd::CloudCommand),
    /// Read the computer inventory from Active Directory and record it as evidence.
    Discover(discover_cmd::DiscoverArgs),
    /// RMMs (`[[rmm]]`, Datto RMM, ConnectWise Automate): import their device inventory,
    /// reconciled with Active Directory, as evidence.
    #[command(subcommand)]
    Rmm(rmm_cmd::RmmCommand),
    /// Fix what L1 rules cover on the configured targets, verify each fix, record it as evidence.
    Heal(heal_cmd::HealArgs),
    /// L2 plans for high-risk runbooks that wait for a person: list, approve (runs it), reject.
    L2(l2_cmd::L2Args),
    /// L2 patterns that keep working: list them, approve or reject their promotion to L1.
    Flywheel(flywheel_cmd::FlywheelArgs),
    /// Export, verify, anchor and inspect the evidence log.
    #[command(subcommand)]
    Evidence(evidence_cmd::EvidenceCommand),
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check or list the runbook catalogue.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Store, list and re-key target credentials in the encrypted vault (secrets via stdin only).
    Credentials(credentials_cmd::CredentialsArgs),
    /// Show what the running daemon (osirisd) reports: devices, cycles, evidence, incidents.
    Status(status_cmd::StatusArgs),
    /// Endpoint agents: enrollment tokens, the enrolled agents, revocation (through osirisd).
    Agent(agent_cmd::AgentArgs),
    /// Check for, apply, health-gate and roll back signed image updates.
    Update {
        /// Update settings (written by the NixOS module).
        #[arg(long, default_value = "/etc/osiris/update.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: update_cmd::UpdateCommand,
    },
    /// Record a signed attestation that a control holds (for what no scan can check).
    Attest(compliance_cmd::AttestArgs),
    /// Accepted risks: a check failing on one target that does not count until a date.
    #[command(subcommand)]
    Exception(compliance_cmd::ExceptionCommand),
    /// Write a framework's compliance report for a month (HTML, CSV or OSCAL) from the evidence log.
    Report(compliance_cmd::ReportArgs),
    /// Measure the evidence pipeline's performance.
    Bench(bench::BenchArgs),
    /// Create the appliance signing key for sealing into a systemd credential.
    #[command(subcommand)]
    SigningKey(signing_key_cmd::SigningKeyCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file against the schema and the catalogue; exit 78 if invalid.
    Validate {
        /// The TOML file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Validate a catalogue directory (default: the catalogue built into this binary).
    Check {
        /// Directory of runbook TOML files and scripts.
        dir: Option<PathBuf>,
    },
    /// List the runbooks in the built-in catalogue.
    List,
    /// List a framework's controls (hipaa, soc2, pci, nist-csf, cis) and what covers each.
    Controls {
        /// The framework.
        framework: String,
    },
}

pub use ops::{BadConfig, Failed};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Scan(args) => scan_cmd::run(args),
        Command::Cloud(command) => cloud_cmd::run(command),
        Command::Heal(args) => heal_cmd::run(args),
        Command::Discover(args) => discover_cmd::run(args),
        Command::Rmm(command) => rmm_cmd::run(command),
        Command::Evidence(cmd) => evidence_cmd::run(cmd),
        Command::Flywheel(args) => flywheel_cmd::run(args),
        Command::L2(args) => l2_cmd::run(args),
        Command::Config(ConfigCommand::Validate { file }) => {
            let config = setup::load_config(Some(&file))?;
            let catalog = setup::load_catalog()?;
            setup::check_overrides(&config, &catalog)?;
            writeln!(
                std::io::stdout(),
                "{}: valid ({} targets, {} cloud tenants, {} RMMs, site `{}`)",
                file.display(),
                config.targets.len(),
                config.cloud.len(),
                config.rmm.len(),
                config.site
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(CatalogCommand::Check { dir }) => {
            let catalog = match dir {
                Some(dir) => setup::load_catalog_dir(&dir)?,
                None => setup::load_catalog()?,
            };
            let frameworks = catalog::embedded_frameworks()
                .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
            let n_controls: usize = frameworks.catalogs().iter().map(|c| c.controls.len()).sum();
            writeln!(
                std::io::stdout(),
                "catalogue valid: {} runbooks, version {}; every mapped control exists in the {} framework catalogues ({n_controls} controls, version {})",
                catalog.runbooks().len(),
                catalog.version(),
                frameworks.catalogs().len(),
                frameworks.version()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(CatalogCommand::List) => {
            let catalog = setup::load_catalog()?;
            let mut out = std::io::stdout().lock();
            for runbook in catalog.runbooks() {
                let platforms: Vec<&str> = runbook.platforms.iter().map(|p| p.as_str()).collect();
                writeln!(
                    out,
                    "{:<16} {:<9} {:<20} {}",
                    runbook.id,
                    runbook.severity.as_str(),
                    platforms.join(","),
                    runbook.title
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(CatalogCommand::Controls { framework }) => {
            let framework = model::Framework::from_cli_name(&framework).map_err(|_| {
                anyhow::anyhow!(
                    "unknown framework `{framework}` (known: hipaa, soc2, pci, nist-csf, cis)"
                )
            })?;
            let catalog = setup::load_catalog()?;
            let frameworks = catalog::embedded_frameworks()
                .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
            let Some(controls) = frameworks.get(framework) else {
                anyhow::bail!("no catalogue for {}", framework.display_name());
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{} — {}", controls.name, controls.version)?;
            for control in &controls.controls {
                let covered: Vec<String> = catalog
                    .runbooks()
                    .iter()
                    .flat_map(|rb| {
                        rb.controls
                            .iter()
                            .filter(|c| c.framework == framework && c.id == control.id)
                            .map(|c| match c.partial {
                                Some(_) => format!("{} (partial)", rb.id),
                                None => rb.id.clone(),
                            })
                    })
                    .collect();
                let coverage = match (&control.not_applicable, covered.is_empty()) {
                    (Some(_), _) => "not applicable".to_owned(),
                    (None, true) => "attestation".to_owned(),
                    (None, false) => covered.join(", "),
                };
                writeln!(out, "{:<22} {:<40} {}", control.id, coverage, control.title)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Attest(args) => compliance_cmd::attest(args),
        Command::Exception(command) => compliance_cmd::exception(command),
        Command::Report(args) => compliance_cmd::report(args),
        Command::Status(args) => status_cmd::run(args),
        Command::Agent(args) => agent_cmd::run(args),
        Command::Credentials(args) => credentials_cmd::run_args(args),
        Command::Update { config, command } => {
            update_cmd::run(command, &config).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench::run(args),
        Command::SigningKey(cmd) => signing_key_cmd::run(cmd),
    }
}

/// Installs the log subscriber: `RUST_LOG` wins, else `warn` (or more with `-v`), text on stderr.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The exit code for an error that ended a command.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<BadConfig>().is_some() {
        ExitCode::from(78)
    } else {
        ExitCode::FAILURE
    }
}

/// Whether the error is a closed stdout (e.g. `osiris catalog list | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

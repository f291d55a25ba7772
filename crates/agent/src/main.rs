//! The `osiris-agent` binary: parse arguments, run, report. Today: `check --once`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// OsirisCare's endpoint agent: checks this machine with the appliance's own catalogue.
#[derive(Debug, Parser)]
#[command(name = "osiris-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check for this platform once and print the results.
    Check {
        /// Run once and exit (the only mode until the agent is enrolled with an appliance).
        #[arg(long, required = true)]
        once: bool,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[allow(
    clippy::print_stderr,
    reason = "the binary reports its final error on stderr"
)]
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { once: _, json } => {
            let results = agent::check_once().context("checking this machine")?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "results": results }))?;
                writeln!(out)?;
            } else {
                for result in &results {
                    writeln!(
                        out,
                        "{:<8} {}  {}",
                        result.status, result.check, result.reason
                    )?;
                }
            }
            // Like `osiris scan`: failing checks are results, not an error of the run.
            Ok(ExitCode::SUCCESS)
        }
    }
}

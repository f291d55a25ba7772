//! `osiris flywheel list | approve | reject`: the L2 patterns that keep working, and a person's
//! decision about promoting one to an L1 rule (sealed as an `operator_action` bundle). Reads the
//! store directly, so it runs while `osirisd` is stopped, like `osiris heal`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use ops::setup;

#[derive(Debug, Args)]
pub(crate) struct FlywheelArgs {
    /// Configuration file (default: only this machine).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: FlywheelCommand,
}

#[derive(Debug, Subcommand)]
enum FlywheelCommand {
    /// List the patterns of executed L2 plans with their record and standing.
    List,
    /// Approve a proposed pattern (5 verified fixes on 2 hosts at 90 %) and print its L1 rule.
    Approve {
        /// The pattern id from `osiris flywheel list` (`fw-…`).
        id: String,
        /// Who approves (recorded as a claim in the evidence).
        #[arg(long)]
        by: String,
    },
    /// Reject a pattern: it is never proposed again.
    Reject {
        /// The pattern id from `osiris flywheel list` (`fw-…`).
        id: String,
        /// Who rejects (recorded as a claim in the evidence).
        #[arg(long)]
        by: String,
    },
}

pub(crate) fn run(args: FlywheelArgs) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let mut out = String::new();
        let res = match &args.command {
            FlywheelCommand::List => {
                let list = ops::l2::flywheel_list(&store, &data_dir).await?;
                if list.is_empty() {
                    out.push_str("no executed L2 plans yet\n");
                }
                for (pattern, standing) in &list {
                    out.push_str(&format!(
                        "{}  {standing:<9} {} → {}  {}/{} verified on {} hosts\n",
                        pattern.id,
                        pattern.key.check,
                        pattern.key.runbook,
                        pattern.successes,
                        pattern.attempts,
                        pattern.hosts.len()
                    ));
                    if *standing == l2::flywheel::Standing::Proposed {
                        for line in l2::flywheel::proposed_rule(pattern).lines() {
                            out.push_str(&format!("    {line}\n"));
                        }
                    }
                }
                out.push_str(&tiers(&ops::l2::tier_shares(&store).await?));
                Ok(())
            }
            FlywheelCommand::Approve { id, by } | FlywheelCommand::Reject { id, by } => {
                let decision = if matches!(args.command, FlywheelCommand::Approve { .. }) {
                    l2::flywheel::Decision::Approved
                } else {
                    l2::flywheel::Decision::Rejected
                };
                match ops::l2::flywheel_decide(
                    &store, &config, &catalog, &data_dir, id, decision, by,
                )
                .await
                {
                    Ok(seq) => {
                        out.push_str(&format!(
                            "{id}: {} (sealed as bundle {seq})\n",
                            if decision == l2::flywheel::Decision::Approved {
                                "approved"
                            } else {
                                "rejected"
                            }
                        ));
                        Ok(())
                    }
                    Err(err) => Err(err),
                }
            }
        };
        if res.is_ok() && !matches!(args.command, FlywheelCommand::List) {
            store.create_checkpoint().await?;
        }
        store.close().await;
        res?;
        std::io::stdout().lock().write_all(out.as_bytes())?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolutions by tier per day and in all, e.g. `2026-12-04  L1 7 (70 %)  L2 2 (20 %)  L3 1 (10 %)`.
fn tiers(days: &[ops::l2::TierDay]) -> String {
    let mut out =
        String::from("resolutions by tier (L1 fixed, L2 fixed, L3 handed to a person):\n");
    let line = |label: String, l1: u64, l2: u64, l3: u64| {
        let total = (l1 + l2 + l3).max(1);
        let share = |n: u64| n * 100 / total;
        format!(
            "  {label}  L1 {l1} ({} %)  L2 {l2} ({} %)  L3 {l3} ({} %)\n",
            share(l1),
            share(l2),
            share(l3)
        )
    };
    let (mut l1, mut l2, mut l3) = (0, 0, 0);
    for day in days {
        let date = time::OffsetDateTime::from_unix_timestamp(day.day * 86_400)
            .map(|t| t.date().to_string())
            .unwrap_or_else(|_| day.day.to_string());
        out.push_str(&line(date, day.l1, day.l2, day.l3));
        (l1, l2, l3) = (l1 + day.l1, l2 + day.l2, l3 + day.l3);
    }
    out.push_str(&line("all       ".to_owned(), l1, l2, l3));
    out
}

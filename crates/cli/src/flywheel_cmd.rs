//! `osiris flywheel list | approve | reject`: the L2 patterns that keep working, and a person's
//! decision about promoting one to an L1 rule (sealed as an `operator_action` bundle). Goes
//! through the running `osirisd`'s local API, where an approval is in effect at once; while the
//! daemon is stopped, it opens the store itself (the rule then joins L1 when the daemon starts).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    let client = api::Client::new(&config.daemon.socket).with_timeout(Duration::from_secs(60));
    let out = match &args.command {
        FlywheelCommand::List => {
            let state = match client.call(&api::endpoint::Flywheel, &()) {
                Ok(state) => state,
                Err(api::ClientError::DaemonDown { .. }) => list_offline(&config, &data_dir)?,
                Err(err) => return Err(crate::Failed(err.to_string()).into()),
            };
            listing(&state)
        }
        FlywheelCommand::Approve { id, by } | FlywheelCommand::Reject { id, by } => {
            let approve = matches!(args.command, FlywheelCommand::Approve { .. });
            let request = api::DecisionRequest { by: by.clone() };
            let id = id.clone();
            let answer = if approve {
                client.call(&api::endpoint::ApproveFlywheel { id: id.clone() }, &request)
            } else {
                client.call(&api::endpoint::RejectFlywheel { id: id.clone() }, &request)
            };
            let verb = if approve { "approved" } else { "rejected" };
            match answer {
                Ok(decided) => format!(
                    "{id}: {verb} (sealed as bundle {}); the appliance's L1 rules now number {}\n",
                    decided.action_seq, decided.rules_in_effect
                ),
                Err(api::ClientError::DaemonDown { .. }) => {
                    let seq = decide_offline(&config, &catalog, &data_dir, &id, approve, by)?;
                    format!(
                        "{id}: {verb} (sealed as bundle {seq}); osirisd applies it when it starts\n"
                    )
                }
                Err(err) => return Err(crate::Failed(err.to_string()).into()),
            }
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The patterns and tiers, read from the store here (`osirisd` is stopped).
fn list_offline(
    config: &config::Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<api::FlywheelState> {
    setup::runtime()?.block_on(async {
        let store = setup::open_store(data_dir, &config.site).await?;
        let read = async {
            let list = ops::l2::flywheel_list(&store, data_dir).await?;
            let tiers = ops::l2::tier_shares(&store).await?;
            anyhow::Ok((list, tiers))
        }
        .await;
        store.close().await;
        let (list, tiers) = read?;
        Ok(api::FlywheelState {
            patterns: list
                .iter()
                .map(|(pattern, standing)| api::FlywheelPattern {
                    id: pattern.id.clone(),
                    check: pattern.key.check.clone(),
                    runbook: pattern.key.runbook.clone(),
                    successes: pattern.successes,
                    attempts: pattern.attempts,
                    hosts: u32::try_from(pattern.hosts.len()).unwrap_or(u32::MAX),
                    standing: standing.to_string(),
                    proposed_rule: (*standing == l2::flywheel::Standing::Proposed)
                        .then(|| l2::flywheel::proposed_rule(pattern)),
                    // Promoted rules join L1 when the daemon starts.
                    in_effect: false,
                })
                .collect(),
            tiers: tiers
                .iter()
                .map(|day| api::TierDay {
                    day: day.day,
                    l1: day.l1,
                    l2: day.l2,
                    l3: day.l3,
                })
                .collect(),
        })
    })
}

/// The decision with the store opened here; the sealed bundle's sequence number.
fn decide_offline(
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &std::path::Path,
    id: &str,
    approve: bool,
    by: &str,
) -> anyhow::Result<u64> {
    let decision = if approve {
        l2::flywheel::Decision::Approved
    } else {
        l2::flywheel::Decision::Rejected
    };
    setup::runtime()?.block_on(async {
        let store = setup::open_store(data_dir, &config.site).await?;
        let res =
            ops::l2::flywheel_decide(&store, config, catalog, data_dir, id, decision, by, None)
                .await;
        if res.is_ok() {
            store.create_checkpoint().await?;
        }
        store.close().await;
        res
    })
}

/// `osiris flywheel list`'s text.
fn listing(state: &api::FlywheelState) -> String {
    let mut out = String::new();
    if state.patterns.is_empty() {
        out.push_str("no executed L2 plans yet\n");
    }
    for pattern in &state.patterns {
        let standing = if pattern.in_effect {
            format!("{} (in effect)", pattern.standing)
        } else {
            pattern.standing.clone()
        };
        out.push_str(&format!(
            "{}  {standing:<9} {} → {}  {}/{} verified on {} hosts\n",
            pattern.id,
            pattern.check,
            pattern.runbook,
            pattern.successes,
            pattern.attempts,
            pattern.hosts
        ));
        for line in pattern.proposed_rule.iter().flat_map(|rule| rule.lines()) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str(&tiers(&state.tiers));
    out
}

/// Resolutions by tier per day and in all, e.g. `2026-12-04  L1 7 (70 %)  L2 2 (20 %)  L3 1 (10 %)`.
fn tiers(days: &[api::TierDay]) -> String {
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

//! `osiris l2 list | approve | reject`: L2 plans for high-risk runbooks wait for a person; an
//! approval runs the plan now (remediate → verify → rollback) and both the decision and the run
//! are sealed. Reads the store directly, so it runs while `osirisd` is stopped.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use ops::setup;

#[derive(Debug, Args)]
pub(crate) struct L2Args {
    /// Configuration file (default: only this machine).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (default: the config's `data_dir`, else ./osiris-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: L2Command,
}

#[derive(Debug, Subcommand)]
enum L2Command {
    /// List the plans waiting for approval.
    List,
    /// Run a waiting plan now (its check is re-run first; a check that passes is left alone).
    Approve {
        /// The plan id from `osiris l2 list` (`l2-…`).
        id: String,
        /// Who approves (recorded as a claim in the evidence).
        #[arg(long)]
        by: String,
    },
    /// Drop a waiting plan.
    Reject {
        /// The plan id from `osiris l2 list` (`l2-…`).
        id: String,
        /// Who rejects (recorded as a claim in the evidence).
        #[arg(long)]
        by: String,
    },
}

pub(crate) fn run(args: L2Args) -> anyhow::Result<ExitCode> {
    let config = setup::load_config(args.config.as_deref())?;
    let catalog = setup::load_catalog()?;
    let data_dir = setup::data_dir(args.data_dir, &config);
    let mut out = String::new();
    let (id, approve, by) = match &args.command {
        L2Command::List => {
            let plans = ops::l2::pending_plans(&data_dir)?;
            if plans.is_empty() {
                out.push_str("no L2 plans wait for approval\n");
            }
            for plan in plans {
                let params: Vec<String> = plan
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                out.push_str(&format!(
                    "{}  {} {}: {} {} (confidence {})\n    {}\n",
                    plan.id,
                    plan.target,
                    plan.check,
                    plan.runbook,
                    if params.is_empty() {
                        "with the site's parameters".to_owned()
                    } else {
                        params.join(", ")
                    },
                    plan.confidence,
                    plan.rationale
                ));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        L2Command::Approve { id, by } => (id, true, by),
        L2Command::Reject { id, by } => (id, false, by),
    };
    setup::runtime()?.block_on(async {
        let store = setup::open_store(&data_dir, &config.site).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let res =
            ops::l2::decide_pending(&store, &config, &catalog, &data_dir, id, approve, by, now)
                .await;
        if res.is_ok() {
            store.create_checkpoint().await?;
        }
        store.close().await;
        let decided = res?;
        match (&decided.record, approve) {
            (_, false) => out.push_str(&format!(
                "{id}: rejected (sealed as bundle {})\n",
                decided.action_seq
            )),
            (None, true) => out.push_str(&format!(
                "{id}: approved (bundle {}); the check passes now, nothing was run\n",
                decided.action_seq
            )),
            (Some(record), true) => out.push_str(&format!(
                "{id}: approved (bundle {}); {} on {}: {}{}\n",
                decided.action_seq,
                record.check,
                record.target,
                match &record.result {
                    heal::HealResult::Fixed => "fixed".to_owned(),
                    heal::HealResult::NotFixed { reason, .. } => format!("not fixed: {reason}"),
                    other => format!("{other:?}"),
                },
                decided
                    .heal_seq
                    .map(|seq| format!(" (sealed as bundle {seq})"))
                    .unwrap_or_default()
            )),
        }
        std::io::stdout().lock().write_all(out.as_bytes())?;
        Ok(ExitCode::SUCCESS)
    })
}

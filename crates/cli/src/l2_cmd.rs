//! `osiris l2 list | approve | reject`: L2 plans for high-risk runbooks wait for a person; an
//! approval runs the plan now (remediate → verify → rollback) and both the decision and the run
//! are sealed. A decision goes through the running `osirisd`'s local API (which holds the
//! store); while it is stopped, the command opens the store itself.

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
    let request = api::DecisionRequest { by: by.clone() };
    let client = api::Client::new(&config.daemon.socket).with_timeout(DECISION_TIMEOUT);
    let answer = if approve {
        client.call(&api::endpoint::ApproveL2 { id: id.clone() }, &request)
    } else {
        client.call(&api::endpoint::RejectL2 { id: id.clone() }, &request)
    };
    let decided = match answer {
        Ok(decided) => decided,
        Err(api::ClientError::DaemonDown { .. }) => {
            decide_offline(&config, &catalog, &data_dir, id, approve, by)?
        }
        Err(err) => return Err(crate::Failed(err.to_string()).into()),
    };
    out.push_str(&said(&decided));
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// How long an approval may take through the daemon: the check, the fix, its verification and
/// a rollback run on the target before the answer.
const DECISION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The decision with the store opened here (`osirisd` is stopped).
fn decide_offline(
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &std::path::Path,
    id: &str,
    approve: bool,
    by: &str,
) -> anyhow::Result<api::L2Decided> {
    let plan = ops::l2::pending_plans(data_dir)?
        .into_iter()
        .find(|plan| plan.id == id);
    setup::runtime()?.block_on(async {
        let store = setup::open_store(data_dir, &config.site).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let res = ops::l2::decide_pending(
            &store, config, catalog, data_dir, id, approve, by, None, now,
        )
        .await;
        if res.is_ok() {
            store.create_checkpoint().await?;
        }
        store.close().await;
        let decided = res?;
        let (target, check) = plan
            .map(|plan| (plan.target, plan.check))
            .unwrap_or_default();
        Ok(api::L2Decided {
            id: id.to_owned(),
            approved: approve,
            action_seq: decided.action_seq,
            outcome: decided.record.as_ref().map(|record| match &record.result {
                heal::HealResult::Fixed => "fixed".to_owned(),
                heal::HealResult::NotFixed { reason, .. } => format!("not fixed: {reason}"),
                other => format!("{other:?}"),
            }),
            target,
            check,
            heal_seq: decided.heal_seq,
        })
    })
}

/// What the decision did, in one line.
fn said(decided: &api::L2Decided) -> String {
    let id = &decided.id;
    match (&decided.outcome, decided.approved) {
        (_, false) => format!("{id}: rejected (sealed as bundle {})\n", decided.action_seq),
        (None, true) => format!(
            "{id}: approved (bundle {}); the check passes now, nothing was run\n",
            decided.action_seq
        ),
        (Some(outcome), true) => format!(
            "{id}: approved (bundle {}); {} on {}: {outcome}{}\n",
            decided.action_seq,
            decided.check,
            decided.target,
            decided
                .heal_seq
                .map(|seq| format!(" (sealed as bundle {seq})"))
                .unwrap_or_default()
        ),
    }
}

//! What partner users did about this appliance's incidents at Central Command (acknowledge,
//! assign, comment), brought by the link: each action sealed once as an `operator_action` bundle
//! marked as coming from Central Command, an acknowledgement applied to the incident ledger
//! afterwards (as the console's own acknowledge does), and the durable record of which action
//! was sealed as which bundle (`<data_dir>/central-actions.json`, 0600), so an action handed out
//! again, or after a crash, is answered from the record or the log and never sealed twice.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Shared;

/// The record's file in the data directory.
pub(crate) const FILE: &str = "central-actions.json";

/// The `source` an action from Central Command carries in its bundle's details.
pub(crate) const SOURCE: &str = "central_command";

/// Sealed actions remembered (the newest by id): Central Command stops handing out an action
/// once it took the report, so only a recent one can come again.
const KEEP: usize = 2000;

/// The record: which actions were sealed as which bundle, and the one being sealed.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// Central Command's action id → the bundle that seals it.
    sealed: BTreeMap<i64, Sealed>,
    /// The action being sealed and the log's size just before: after a crash between sealing
    /// and recording, its bundle is looked for from there instead of sealing it again.
    sealing: Option<Sealing>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    seq: u64,
    at: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealing {
    id: i64,
    from: u64,
}

/// Seals each action not sealed before (in order) and applies acknowledgements; returns every
/// action of `actions` with the bundle that seals it. Stops at the first one that cannot be
/// sealed or recorded (the rest are tried at the next step).
pub(crate) async fn seal(
    shared: &Shared,
    actions: Vec<link_proto::OperatorAction>,
) -> Result<Vec<link_proto::SealedAction>, String> {
    let path = shared.settings.data_dir.join(FILE);
    let mut record = load(path.clone()).await?;
    let mut answered = Vec::with_capacity(actions.len());
    for action in actions {
        if let Some(sealed) = record.sealed.get(&action.id) {
            answered.push(answer(action.id, *sealed));
            continue;
        }
        let found = match record.sealing {
            Some(sealing) if sealing.id == action.id => {
                find_in_log(shared, sealing.from, action.id).await?
            }
            _ => None,
        };
        let sealed = match found {
            Some(sealed) => {
                tracing::info!(
                    action_id = action.id,
                    seq = sealed.seq,
                    "An operator action from Central Command was sealed before a restart; not sealing it again."
                );
                sealed
            }
            None => {
                record.sealing = Some(Sealing {
                    id: action.id,
                    from: shared.store.size(),
                });
                save(path.clone(), &record).await?;
                seal_one(shared, &action).await?
            }
        };
        record.sealed.insert(action.id, sealed);
        record.sealing = None;
        while record.sealed.len() > KEEP {
            record.sealed.pop_first();
        }
        save(path.clone(), &record).await?;
        apply(shared, &action).await;
        answered.push(answer(action.id, sealed));
    }
    Ok(answered)
}

fn answer(id: i64, sealed: Sealed) -> link_proto::SealedAction {
    link_proto::SealedAction {
        id,
        seq: sealed.seq,
        at: sealed.at,
    }
}

/// The incident an action is about, if the ledger still keeps it: (target, check, acknowledged).
fn incident_of(
    shared: &Shared,
    action: &link_proto::OperatorAction,
) -> Option<(String, String, bool)> {
    shared
        .state()
        .ledger
        .all()
        .into_iter()
        .find(|i| i.id == action.incident && i.opened_at == action.opened_at)
        .map(|i| (i.target.clone(), i.check.clone(), i.acknowledged))
}

/// Seals one action as an `operator_action` bundle: `by` the partner user's e-mail, `source`
/// Central Command, its action id, the incident (with its device and check while the ledger
/// keeps it), the assignee or comment.
async fn seal_one(shared: &Shared, action: &link_proto::OperatorAction) -> Result<Sealed, String> {
    let incident = incident_of(shared, action);
    if incident.is_none() {
        tracing::info!(
            action_id = action.id,
            incident = action.incident,
            "The appliance no longer keeps the incident of an operator action; it is sealed all the same."
        );
    }
    let (target, check) = match &incident {
        Some((target, check, _)) => (Some(target.clone()), Some(check.clone())),
        None => (None, None),
    };
    let body = evidence_schema::OperatorActionBody {
        action: action.kind.clone(),
        by: action.by.clone(),
        reason: String::new(),
        details: serde_json::json!({
            "source": SOURCE,
            "central_action": action.id,
            "incident": action.incident,
            "opened_at": action.opened_at,
            "target": target,
            "check": check,
            "assignee": action.assignee,
            "text": action.text,
            "done_at": action.at,
        }),
        // Not a local API caller: Central Command authenticated `by`.
        peer: None,
    };
    let now = time::OffsetDateTime::now_utc();
    let appended = shared
        .store
        .append(evidence::BundleDraft {
            site: shared.settings.config.site.clone(),
            kind: evidence_schema::KIND_OPERATOR_ACTION.to_owned(),
            catalog: shared.settings.catalog.version().to_owned(),
            time: now,
            body: serde_json::to_value(&body).map_err(|err| err.to_string())?,
        })
        .await
        .map_err(|err| format!("sealing operator action {}: {err}", action.id))?;
    tracing::info!(
        action_id = action.id,
        kind = %action.kind,
        by = %action.by,
        seq = appended.seq,
        "An operator action from Central Command is sealed as evidence."
    );
    Ok(Sealed {
        seq: appended.seq,
        at: now.unix_timestamp(),
    })
}

/// After sealing: an acknowledgement acknowledges the incident in the ledger (once; an incident
/// the appliance no longer keeps, or that is no longer open, is left as it is).
async fn apply(shared: &Shared, action: &link_proto::OperatorAction) {
    if action.kind != "acknowledge" {
        return;
    }
    let Some((target, check, acknowledged)) = incident_of(shared, action) else {
        return;
    };
    if acknowledged {
        return;
    }
    crate::cycles::incident_event(
        shared,
        &target,
        &check,
        incidents::Event::Acknowledged {
            by: format!("{} (Central Command)", action.by),
        },
    )
    .await;
}

/// Looks for the bundle that sealed action `id` among the bundles from `from` on.
async fn find_in_log(shared: &Shared, from: u64, id: i64) -> Result<Option<Sealed>, String> {
    for seq in from..shared.store.size() {
        let Some(entry) = shared
            .store
            .entry(seq)
            .await
            .map_err(|err| format!("reading evidence bundle {seq}: {err}"))?
        else {
            continue;
        };
        if entry.kind != evidence_schema::KIND_OPERATOR_ACTION {
            continue;
        }
        let bundle: serde_json::Value = serde_json::from_slice(&entry.line)
            .map_err(|err| format!("evidence bundle {seq} does not parse: {err}"))?;
        let details = &bundle["body"]["details"];
        if details["source"] == SOURCE && details["central_action"] == id {
            let at = bundle["time"]
                .as_str()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or_else(crate::now, time::OffsetDateTime::unix_timestamp);
            return Ok(Some(Sealed { seq, at }));
        }
    }
    Ok(None)
}

async fn load(path: PathBuf) -> Result<Record, String> {
    tokio::task::spawn_blocking(move || match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|err| format!("{} is damaged: {err}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
        Err(err) => Err(format!("reading {}: {err}", path.display())),
    })
    .await
    .map_err(|err| err.to_string())?
}

async fn save(path: PathBuf, record: &Record) -> Result<(), String> {
    let bytes = serde_json::to_vec(record).map_err(|err| err.to_string())?;
    tokio::task::spawn_blocking(move || {
        durable::write(&path, &bytes, 0o600).map_err(|err| crate::api::chain(&err))
    })
    .await
    .map_err(|err| err.to_string())?
}

//! `osiris-agent status`: what the agent knows about itself, read from the state directory
//! without the gateway.
//!
//! The queue file is held exclusively while `run` runs, so `run` replaces `status.json` every
//! heartbeat interval and whenever the link comes up or goes down (and once more, marked not
//! running, when it stops). `status` first tries to open the queue itself: when that works, no
//! agent is running and the queue's figures are current; when the queue is in use, the agent
//! is running and the figures are those of `status.json`, as of the time it says.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::run::{Agent, queue_limits};
use crate::state::{QUEUE_FILE, STATUS_FILE, StateDir, StateError};

/// The link's state as `run` knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub(crate) connected: bool,
    pub(crate) connected_since_unix_ms: Option<i64>,
    pub(crate) last_connected_unix_ms: Option<i64>,
    pub(crate) last_heartbeat_unix_ms: Option<i64>,
    pub(crate) last_error: Option<String>,
}

/// `status.json` as `run` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatusFile {
    written_at_unix_ms: i64,
    pid: u32,
    running: bool,
    connected: bool,
    connected_since_unix_ms: Option<i64>,
    last_connected_unix_ms: Option<i64>,
    last_heartbeat_unix_ms: Option<i64>,
    last_error: Option<String>,
    config_revision: u64,
    queue: Option<QueueFigures>,
}

/// The queue's figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct QueueFigures {
    items: u64,
    bytes: u64,
    oldest_age_seconds: Option<u64>,
    newest_seq: u64,
    acked_through: u64,
    dropped: u64,
}

/// Writes `status.json` for the running agent (`running: false` when it stops).
pub(crate) async fn write_status(agent: &Agent, running: bool) {
    let queue = match agent.queue.stats(time::OffsetDateTime::now_utc()).await {
        Ok(stats) => Some(figures(&stats)),
        Err(err) => {
            tracing::warn!(error = %err, "The queue could not be read for the status file.");
            None
        }
    };
    let link = agent
        .link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let file = StatusFile {
        written_at_unix_ms: crate::now_unix_ms(),
        pid: std::process::id(),
        running,
        connected: link.connected && running,
        connected_since_unix_ms: link.connected_since_unix_ms.filter(|_| link.connected),
        last_connected_unix_ms: link.last_connected_unix_ms,
        last_heartbeat_unix_ms: link.last_heartbeat_unix_ms,
        last_error: link.last_error,
        config_revision: agent.config.borrow().revision,
        queue,
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    if let Err(err) = agent.state_dir.write(STATUS_FILE, &bytes) {
        tracing::warn!(error = %crate::error_chain(&err), "The status file could not be written.");
    }
}

/// What `status` reports, as one JSON document (the `--json` output; the text output is
/// rendered from it).
///
/// Keys: `enrolled`, `state_dir`; when enrolled also `agent_id`, `gateway`, `enrolled_at`,
/// `config_revision`, `running` (whether `run` holds the queue), `connected` (`null` when not
/// running), `last_connected_at`, `last_error`, `status_written_at` (when the figures were
/// taken), and `queue` (`items`, `bytes`, `oldest_age_seconds`, `newest_seq`, `acked_through`,
/// `dropped`; `null` when unknown). Times are RFC 3339 in UTC or `null`.
///
/// # Errors
/// When the state directory cannot be read.
pub async fn report(state_dir: &StateDir) -> Result<Value, StateError> {
    let base = json!({
        "enrolled": false,
        "state_dir": state_dir.path().display().to_string(),
    });
    let Some(identity) = state_dir.read_identity()? else {
        return Ok(base);
    };
    let config = state_dir.read_config()?;
    let status = read_status_file(&state_dir.file(STATUS_FILE));
    let queue_path = state_dir.file(QUEUE_FILE);
    let (running, queue, taken_at) = if queue_path.exists() {
        match agent_queue::Queue::open(&queue_path, queue_limits(&config)).await {
            Ok(queue) => {
                let now = time::OffsetDateTime::now_utc();
                let stats = queue.stats(now).await;
                let _ = queue.close().await;
                let figures = stats.ok().map(|stats| figures(&stats));
                (false, figures, Some(crate::now_unix_ms()))
            }
            Err(agent_queue::QueueError::InUse { .. }) => (
                true,
                status.as_ref().and_then(|status| status.queue),
                status.as_ref().map(|status| status.written_at_unix_ms),
            ),
            Err(err) => {
                tracing::warn!(error = %err, "The queue could not be read.");
                (false, None, None)
            }
        }
    } else {
        (false, None, None)
    };
    let connected = if running {
        Value::from(status.as_ref().is_some_and(|status| status.connected))
    } else {
        Value::Null
    };
    Ok(json!({
        "enrolled": true,
        "state_dir": state_dir.path().display().to_string(),
        "agent_id": identity.agent_id,
        "gateway": identity.gateway,
        "enrolled_at": rfc3339(Some(identity.enrolled_at_unix_ms)),
        "config_revision": status
            .as_ref()
            .filter(|_| running)
            .map_or(config.revision, |status| status.config_revision),
        "running": running,
        "connected": connected,
        "last_connected_at": rfc3339(status.as_ref().and_then(|status| status.last_connected_unix_ms)),
        "last_error": status.as_ref().and_then(|status| status.last_error.clone()),
        "status_written_at": rfc3339(taken_at),
        "queue": queue.map(|queue| json!({
            "items": queue.items,
            "bytes": queue.bytes,
            "oldest_age_seconds": queue.oldest_age_seconds,
            "newest_seq": queue.newest_seq,
            "acked_through": queue.acked_through,
            "dropped": queue.dropped,
        })),
    }))
}

/// The report as text for a person.
#[must_use]
pub fn render(report: &Value) -> String {
    let text = |key: &str| report[key].as_str().unwrap_or("-").to_owned();
    if report["enrolled"] != Value::Bool(true) {
        return format!(
            "enrolled:        no (state directory {})\n",
            text("state_dir")
        );
    }
    let running = report["running"].as_bool().unwrap_or(false);
    let connection = match report["connected"].as_bool() {
        Some(true) => "connected".to_owned(),
        Some(false) => "not connected".to_owned(),
        None => "the agent is not running".to_owned(),
    };
    let queue = &report["queue"];
    let queue_line = if queue.is_null() {
        "unknown".to_owned()
    } else {
        let age = queue["oldest_age_seconds"].as_u64().map_or_else(
            || "none waiting".to_owned(),
            |age| format!("oldest {age} s old"),
        );
        format!(
            "{} items, {} bytes, {age}; newest seq {}, acknowledged through {}",
            queue["items"], queue["bytes"], queue["newest_seq"], queue["acked_through"]
        )
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<17}{value}\n"));
    };
    line("enrolled:", "yes".to_owned());
    line("agent id:", text("agent_id"));
    line("gateway:", text("gateway"));
    line("enrolled at:", text("enrolled_at"));
    line("running:", if running { "yes" } else { "no" }.to_owned());
    line("connection:", connection);
    line("last connected:", text("last_connected_at"));
    if let Some(error) = report["last_error"].as_str() {
        line("last error:", error.to_owned());
    }
    line("queue:", queue_line);
    line("config revision:", report["config_revision"].to_string());
    line("as of:", text("status_written_at"));
    out
}

fn figures(stats: &agent_queue::Stats) -> QueueFigures {
    QueueFigures {
        items: stats.items,
        bytes: stats.bytes,
        oldest_age_seconds: stats.oldest_age.map(|age| age.as_secs()),
        newest_seq: stats.next_seq - 1,
        acked_through: stats.acked_through,
        dropped: stats.dropped,
    }
}

fn read_status_file(path: &Path) -> Option<StatusFile> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn rfc3339(unix_ms: Option<i64>) -> Value {
    unix_ms
        .and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::from)
}

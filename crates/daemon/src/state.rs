//! What the daemon remembers across restarts: devices' last results, incidents, notifications
//! sent, the healing log, pause and maintenance, compliance trend, cycle history, setup choices.
//!
//! Saved as one JSON file in the data directory, replaced atomically (write, fsync, rename,
//! fsync the directory) after every change, so a crash at any instant leaves the previous or the
//! new state, never half of one. The evidence itself lives in the store, not here.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the saved state inside the data directory.
pub(crate) const STATE_FILE: &str = "daemon-state.json";

/// Entries kept in the healing log.
pub(crate) const HEALING_LOG_MAX: usize = 500;

/// Points kept per framework's compliance trend.
pub(crate) const TREND_MAX: usize = 30;

/// The daemon's live state (the ledger is kept as the incidents crate's type).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) ledger: incidents::Ledger,
    pub(crate) saved: Saved,
}

/// Everything in [`State`] besides the ledger, as saved.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Saved {
    pub(crate) devices: BTreeMap<String, api::Device>,
    /// Notification state per incident key (`site/target/check`).
    pub(crate) sent: BTreeMap<String, Sent>,
    /// Newest last.
    pub(crate) healing_log: VecDeque<api::HealingEntry>,
    pub(crate) pause: Option<Pause>,
    pub(crate) maintenance: Vec<api::Maintenance>,
    pub(crate) next_maintenance_id: u64,
    /// Per framework name: compliance ‰ after each server scan, oldest first.
    pub(crate) trend: BTreeMap<String, Vec<u32>>,
    pub(crate) cycles: BTreeMap<String, CycleRecord>,
    pub(crate) setup: SetupRecord,
}

/// On disk: the ledger snapshot next to the rest.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    ledger: incidents::LedgerSnapshot,
    #[serde(flatten)]
    saved: Saved,
}

/// What was sent for one escalated incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sent {
    pub(crate) incident: u64,
    /// Last time a notification reached at least one channel.
    pub(crate) last_sent: i64,
    pub(crate) reminders: u32,
    /// False when the last attempt reached no channel (then `retry_at` says when to try again).
    #[serde(default = "yes")]
    pub(crate) delivered: bool,
    #[serde(default)]
    pub(crate) failures: u32,
    #[serde(default)]
    pub(crate) retry_at: i64,
}

fn yes() -> bool {
    true
}

/// Why and by whom healing is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pause {
    pub(crate) reason: String,
    pub(crate) by: String,
    pub(crate) at: i64,
}

/// One cycle's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CycleRecord {
    pub(crate) runs: u64,
    pub(crate) last_started_at: Option<i64>,
    pub(crate) last_finished_at: Option<i64>,
    pub(crate) last_outcome: Option<String>,
    pub(crate) last_failed: bool,
}

/// The first-boot wizard's choices (secrets go to the credential vault, never here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct SetupRecord {
    pub(crate) complete: bool,
    pub(crate) network: Option<api::NetworkSettings>,
    pub(crate) claimed_with: Option<String>,
    pub(crate) directory: Option<api::DirectorySettings>,
    /// Slot → account name, for the slots whose secret is in the vault.
    pub(crate) accounts: BTreeMap<String, String>,
    pub(crate) timezone: Option<String>,
}

/// Why the saved state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum StateError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Current format of the state file.
const VERSION: u32 = 1;

impl State {
    /// Loads the saved state. A missing file is a fresh start. A damaged file is moved aside
    /// (to `daemon-state.json.damaged-<unix time>`) and the daemon starts fresh: the evidence
    /// log is untouched and the next cycles rebuild devices and incidents.
    pub(crate) fn load(data_dir: &Path, now: i64) -> Result<State, StateError> {
        let path = data_dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        match serde_json::from_slice::<OnDisk>(&bytes) {
            Ok(disk) => Ok(State {
                ledger: incidents::Ledger::restore(disk.ledger),
                saved: disk.saved,
            }),
            Err(err) => {
                let aside = data_dir.join(format!("{STATE_FILE}.damaged-{now}"));
                tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %err, "Saved daemon state is damaged; starting fresh (evidence is not affected).");
                std::fs::rename(&path, &aside).map_err(|source| StateError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(State::default())
            }
        }
    }

    /// Replaces the saved state atomically.
    #[cfg(test)]
    pub(crate) fn save(&self, data_dir: &Path) -> Result<(), StateError> {
        write(data_dir, &self.to_bytes(data_dir)?)
    }

    /// The saved form, to write with [`write`] (without holding the state's lock).
    pub(crate) fn to_bytes(&self, data_dir: &Path) -> Result<Vec<u8>, StateError> {
        let disk = OnDisk {
            version: VERSION,
            ledger: self.ledger.snapshot(),
            saved: self.saved.clone(),
        };
        serde_json::to_vec(&disk).map_err(|err| StateError::Io {
            path: data_dir.join(STATE_FILE),
            source: std::io::Error::other(err),
        })
    }
}

/// Writes saved state bytes: temporary file, fsync, rename, fsync the directory.
pub(crate) fn write(data_dir: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let path = data_dir.join(STATE_FILE);
    let tmp = data_dir.join(format!("{STATE_FILE}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, source }
    };
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io(data_dir))?;
    Ok(())
}

impl State {
    /// Appends to the healing log, dropping the oldest entries beyond the cap.
    pub(crate) fn log_healing(&mut self, entry: api::HealingEntry) {
        self.saved.healing_log.push_back(entry);
        while self.saved.healing_log.len() > HEALING_LOG_MAX {
            self.saved.healing_log.pop_front();
        }
    }

    /// Records one compliance point per framework.
    pub(crate) fn push_trend(&mut self, scores: &[(String, Option<u32>)]) {
        for (framework, permille) in scores {
            if let Some(permille) = permille {
                let points = self.saved.trend.entry(framework.clone()).or_default();
                points.push(*permille);
                if points.len() > TREND_MAX {
                    points.remove(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Severity;

    #[test]
    fn saved_state_comes_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::default();
        let policy = incidents::IncidentPolicy::default();
        state.ledger.apply(
            "h1",
            "LIN-SSH-001",
            incidents::Event::Failed {
                severity: Severity::High,
            },
            100,
            &policy,
        );
        state.saved.pause = Some(Pause {
            reason: "vendor upgrade".into(),
            by: "alice".into(),
            at: 5,
        });
        state.push_trend(&[("HIPAA".into(), Some(950))]);
        state.save(dir.path()).unwrap();
        let loaded = State::load(dir.path(), 200).unwrap();
        assert_eq!(loaded.ledger.snapshot(), state.ledger.snapshot());
        assert_eq!(loaded.saved.pause, state.saved.pause);
        assert_eq!(loaded.saved.trend["HIPAA"], vec![950]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(STATE_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_file_is_kept_aside_and_the_daemon_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{\"ledger\": [truncated").unwrap();
        let loaded = State::load(dir.path(), 77).unwrap();
        assert!(loaded.ledger.all().is_empty());
        let aside = dir.path().join(format!("{STATE_FILE}.damaged-77"));
        assert_eq!(
            std::fs::read(aside).unwrap(),
            b"{\"ledger\": [truncated".to_vec()
        );
        assert!(!dir.path().join(STATE_FILE).exists());
    }

    #[test]
    fn the_healing_log_and_trend_are_bounded() {
        let mut state = State::default();
        for i in 0..(HEALING_LOG_MAX as i64 + 10) {
            state.log_healing(api::HealingEntry {
                at: i,
                target: "h".into(),
                check: "c".into(),
                runbook: None,
                tier: "L1".into(),
                result: "fixed".into(),
                reason: String::new(),
                evidence_seq: None,
            });
        }
        assert_eq!(state.saved.healing_log.len(), HEALING_LOG_MAX);
        assert_eq!(state.saved.healing_log.front().map(|e| e.at), Some(10));
        for i in 0..40 {
            state.push_trend(&[("HIPAA".into(), Some(i))]);
        }
        assert_eq!(state.saved.trend["HIPAA"].len(), TREND_MAX);
        assert_eq!(state.saved.trend["HIPAA"][0], 10);
    }
}

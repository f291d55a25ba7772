//! What the daemon remembers across restarts: devices' last results, incidents, notifications
//! sent, the healing log, pause and maintenance, compliance trend, cycle history, setup choices.
//!
//! Saved as one JSON file in the data directory, replaced durably with `durable::write` after
//! every change, so a crash at any instant leaves the previous or the new state, never half of
//! one. The file has its own types (`disk`), not the local API's: a change to the wire types
//! cannot silently change what an existing file means. The evidence itself lives in the store.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod disk;

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
    /// Device scores for compliance (rebuilt by scans; not saved: the trend is).
    pub(crate) scores: BTreeMap<String, crate::derive::Scores>,
    /// What the cloud tenants' Intune last reported, by machine name (the first DNS label,
    /// lowercase); not saved: the cloud cycle reads it again minutes after a start.
    pub(crate) intune: BTreeMap<String, api::IntuneState>,
}

/// Everything in [`State`] that is saved besides the ledger.
#[derive(Debug, Default, Clone)]
pub(crate) struct Saved {
    pub(crate) devices: BTreeMap<String, api::Device>,
    /// Notification state per incident key (`site/target/check`).
    pub(crate) sent: BTreeMap<String, Sent>,
    /// Newest last.
    pub(crate) healing_log: VecDeque<api::HealingEntry>,
    pub(crate) pause: Option<Pause>,
    pub(crate) maintenance: Vec<Maintenance>,
    pub(crate) next_maintenance_id: u64,
    /// Per framework name: compliance ‰ after each server scan, oldest first.
    pub(crate) trend: BTreeMap<String, Vec<u32>>,
    pub(crate) cycles: BTreeMap<String, CycleRecord>,
    pub(crate) setup: SetupRecord,
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

/// A maintenance window and the number the API knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Maintenance {
    pub(crate) id: u64,
    pub(crate) window: incidents::MaintenanceWindow,
}

impl Maintenance {
    /// The window as the local API shows it.
    pub(crate) fn to_api(&self) -> api::Maintenance {
        api::Maintenance {
            id: self.id,
            start: self.window.start,
            end: self.window.end,
            reason: self.window.reason.clone(),
            targets: self.window.targets.clone(),
        }
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Reading the file or moving a damaged one aside failed.
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding the state failed.
    #[error("encoding the daemon state")]
    Encode(#[source] serde_json::Error),
    /// Replacing the file failed.
    #[error(transparent)]
    Write(#[from] durable::Error),
}

/// The state as it goes to disk: taken under the state's lock, encoded and written outside it.
pub(crate) struct Snapshot(disk::File);

impl State {
    /// Loads the saved state. A missing file is a fresh start. A damaged file is moved aside
    /// (to `daemon-state.json.damaged-<unix time>`) and the daemon starts fresh: the evidence
    /// log is untouched and the next cycles rebuild devices and incidents.
    pub(crate) fn load(data_dir: &Path, now: i64) -> Result<State, StateError> {
        let path = data_dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StateError::Io {
                    what: "reading",
                    path,
                    source,
                });
            }
        };
        match serde_json::from_slice::<disk::File>(&bytes) {
            Ok(file) => Ok(file.into_state()),
            Err(err) => {
                let aside = data_dir.join(format!("{STATE_FILE}.damaged-{now}"));
                tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %err, "Saved daemon state is damaged; starting fresh (evidence is not affected).");
                std::fs::rename(&path, &aside).map_err(|source| StateError::Io {
                    what: "moving aside",
                    path: path.clone(),
                    source,
                })?;
                Ok(State::default())
            }
        }
    }

    /// Replaces the saved state durably.
    #[cfg(test)]
    pub(crate) fn save(&self, data_dir: &Path) -> Result<(), StateError> {
        self.snapshot().write(data_dir)
    }

    /// What to save, taken quickly (under the state's lock); write it with [`Snapshot::write`].
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot(disk::File::of(self))
    }
}

impl Snapshot {
    /// Encodes and durably writes the state file (blocking: call it off the async workers).
    pub(crate) fn write(&self, data_dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(&self.0).map_err(StateError::Encode)?;
        durable::write(&data_dir.join(STATE_FILE), &bytes, 0o600)?;
        Ok(())
    }
}

impl State {
    /// Files a device's new record with what Intune last said about a machine of its name
    /// (a scan of the machine itself does not know it).
    pub(crate) fn put_device(&mut self, mut device: api::Device) {
        device.intune = self
            .intune
            .get(&crate::derive::machine_key(&device.name))
            .cloned();
        self.saved.devices.insert(device.name.clone(), device);
    }

    /// Replaces what one tenant's Intune reported and joins it to the known machines; returns
    /// how many of them it describes.
    pub(crate) fn set_intune(
        &mut self,
        tenant: &str,
        reported: BTreeMap<String, api::IntuneState>,
    ) -> usize {
        self.intune.retain(|_, state| state.tenant != tenant);
        self.intune.extend(reported);
        let mut joined = 0;
        for device in self.saved.devices.values_mut() {
            device.intune = self
                .intune
                .get(&crate::derive::machine_key(&device.name))
                .cloned();
            joined += usize::from(device.intune.is_some());
        }
        joined
    }

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
    fn a_file_written_by_version_1_loads_and_is_written_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let written = include_str!("../tests/data/daemon-state-v1.json");
        std::fs::write(dir.path().join(STATE_FILE), written).unwrap();
        let loaded = State::load(dir.path(), 1_767_000_400).unwrap();
        let incident = loaded.ledger.get("fs1", "LIN-SSH-001").unwrap();
        assert_eq!(incident.id, 7);
        assert_eq!(incident.phase, incidents::Phase::Escalated);
        assert_eq!(
            loaded.saved.devices["fs1"].status,
            api::DeviceStatus::Drifted
        );
        assert_eq!(loaded.saved.devices["fs1"].failing[0].check, "LIN-SSH-001");
        assert_eq!(loaded.saved.healing_log[0].evidence_seq, Some(41));
        assert_eq!(
            loaded.saved.pause.as_ref().map(|p| p.by.as_str()),
            Some("alice")
        );
        assert!(
            loaded.saved.maintenance[0]
                .window
                .covers("fs1", 1_767_000_400)
        );
        assert_eq!(loaded.saved.cycles["server_scan"].runs, 4);
        let network = loaded.saved.setup.network.as_ref().unwrap();
        assert_eq!(network.mode, api::NetworkMode::Static);
        assert_eq!(
            loaded.saved.setup.timezone.as_deref(),
            Some("America/Chicago")
        );
        loaded.save(dir.path()).unwrap();
        let again: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        let before: serde_json::Value = serde_json::from_str(written).unwrap();
        assert_eq!(again, before, "the file keeps its meaning and shape");
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

//! The agent's side of an update: install a verified release over the running executable,
//! keep the old one until the new one proves it can reach the appliance, and roll back when it
//! cannot (docs/AGENT-UPDATES.md, "Rollback").
//!
//! Files, beside the executable `<exe>` and in the agent's state directory:
//!
//! ```text
//! <exe dir>/.<exe name>.new      the downloaded binary, copied and checked, before the swap
//! <exe>.old                      the previous binary while an update is on trial
//! <exe>.failed                   (Windows) the rolled-back binary, removed at the next start
//! <state>/update-state.json      the pending-update marker, the last outcome, refused versions
//! <state>/agent-root.json        the newest root this agent walked to
//! ```
//!
//! The swap. Linux: the old binary is hard-linked to `<exe>.old`, the marker is written, and the
//! new binary is renamed over `<exe>` (one atomic `rename(2)`; the running process keeps its
//! inode). Windows: a running executable cannot be replaced or deleted, but it can be renamed, so
//! the marker is written, `<exe>` is renamed to `<exe>.old` and the new binary renamed to `<exe>`;
//! the service manager starts the new file at the next start. Either way the caller then exits
//! (non-zero, so restart-on-failure applies) and the service manager starts the new binary.
//!
//! Every start calls [`Updater::startup`] first. While an update is on trial, each start is
//! counted; after the deadline or more than [`MAX_TRIAL_STARTS`] starts without
//! [`Updater::confirm_connected`], the old binary is put back, the version is remembered as
//! refused, and the caller exits so the old binary runs: a crash loop ends on the old binary.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::fsx::{self, BinaryMismatch, CopyError, IoError};
use crate::manifest::VerifiedRelease;
use crate::root::TrustedRoot;
use crate::version::Version;

/// Starts of a new version allowed without a confirmed connection before it is rolled back.
pub const MAX_TRIAL_STARTS: u32 = 3;

/// Versions remembered as rolled back (and so refused), newest last.
const MAX_REFUSED: usize = 16;
/// The state file's size limit.
const MAX_STATE_BYTES: u64 = 64 * 1024;
const STATE_FILE: &str = "update-state.json";
const ROOT_FILE: &str = "agent-root.json";

/// The agent's executable and state directory.
#[derive(Debug, Clone)]
pub struct Updater {
    exe: PathBuf,
    state_dir: PathBuf,
}

/// An installed update: exit now so the service manager starts `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The version that was running.
    pub from: Version,
    /// The version now in place.
    pub to: Version,
    /// Unix seconds by which `to` must confirm a connection.
    pub deadline_unix: u64,
}

/// What the agent does after [`Updater::startup`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Startup {
    /// No update on trial: run normally.
    Normal,
    /// This version is on trial: run, call [`Updater::confirm_connected`] after the first
    /// acknowledged Hello, and if `deadline_unix` passes first call [`Updater::roll_back`] and exit.
    Trial {
        /// The version it replaced.
        from: Version,
        /// This version.
        to: Version,
        /// When the trial ends, Unix seconds.
        deadline_unix: u64,
        /// Starts of this version so far, this one included.
        starts: u32,
    },
    /// The old binary is back in place: exit now (non-zero) so the service manager starts it.
    RolledBack(Outcome),
}

/// How an update ended, kept until the agent reports it ([`Updater::take_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The version before the update.
    pub from: String,
    /// The version the update installed.
    pub to: String,
    /// How it ended.
    pub result: OutcomeKind,
    /// Why, in words.
    pub reason: String,
    /// When, Unix seconds.
    pub at_unix: u64,
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeKind {
    /// The new version connected and stays.
    Confirmed,
    /// The new version did not confirm in time (or crash-looped); the old one is back.
    RolledBack,
    /// The swap did not complete (the old version started again); nothing changed.
    Abandoned,
    /// The new version should be rolled back but the old binary is gone; the new one stays.
    RollbackImpossible,
}

/// Why an update step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The downloaded binary does not match the manifest; nothing was changed.
    #[error(transparent)]
    Mismatch(#[from] BinaryMismatch),
    /// The release is not newer than the running version.
    #[error("release {offered} is not newer than the running {running}; downgrades are refused")]
    NotNewer {
        /// The release's version.
        offered: Version,
        /// The running version.
        running: Version,
    },
    /// This version was rolled back here before.
    #[error(
        "release {version} was rolled back on this machine before; it is refused until a newer release"
    )]
    RolledBackBefore {
        /// The version.
        version: Version,
    },
    /// Another update is on trial.
    #[error("update from {from} to {to} is still on trial; confirm or roll it back first")]
    Pending {
        /// Its old version.
        from: String,
        /// Its new version.
        to: String,
    },
    /// The built-in root did not verify.
    #[error(transparent)]
    Root(#[from] VerifyError),
    /// The executable's path has no file name or directory.
    #[error("executable path {} has no directory and file name", .0.display())]
    ExePath(PathBuf),
}

/// `update-state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    pending: Option<Pending>,
    last_outcome: Option<Outcome>,
    rolled_back: Vec<String>,
}

/// The pending-update marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    from: String,
    to: String,
    applied_unix: u64,
    deadline_unix: u64,
    starts: u32,
    /// Set (durably) just before the old binary is put back, so a crash in between still
    /// reports the rollback.
    rollback_reason: Option<String>,
}

impl Updater {
    /// An updater for the executable at `exe`, keeping its state in `state_dir`.
    pub fn new(exe: PathBuf, state_dir: PathBuf) -> Result<Updater, UpdateError> {
        if exe.file_name().is_none() || exe.parent().is_none() {
            return Err(UpdateError::ExePath(exe));
        }
        Ok(Updater { exe, state_dir })
    }

    /// An updater for the running executable (call before any update replaced it).
    pub fn for_current_exe(state_dir: PathBuf) -> Result<Updater, UpdateError> {
        let exe = std::env::current_exe()
            .map_err(|err| IoError::new("finding", Path::new("the running executable"), err))?;
        Updater::new(exe, state_dir)
    }

    /// The root to verify offers with: the newer of the root built in (`pinned`) and the one
    /// this agent stored after its last walk. A damaged stored root is ignored (the walk from the
    /// built-in root reaches it again).
    pub fn trusted_root(&self, pinned: &[u8]) -> Result<TrustedRoot, UpdateError> {
        let pinned = TrustedRoot::pin(pinned)?;
        let stored = fsx::read_small(&self.state_dir.join(ROOT_FILE), MAX_STATE_BYTES)?
            .and_then(|bytes| TrustedRoot::pin(&bytes).ok());
        Ok(match stored {
            Some(stored) if stored.version() > pinned.version() => stored,
            _ => pinned,
        })
    }

    /// Stores `root` if it is newer than the stored one, so the next start begins there.
    pub fn save_root(&self, root: &TrustedRoot) -> Result<(), UpdateError> {
        let path = self.state_dir.join(ROOT_FILE);
        let stored = fsx::read_small(&path, MAX_STATE_BYTES)?
            .and_then(|bytes| TrustedRoot::pin(&bytes).ok());
        if stored.is_none_or(|stored| stored.version() < root.version()) {
            fsx::create_dirs(&self.state_dir)?;
            fsx::write(&path, root.bytes(), 0o600)?;
        }
        Ok(())
    }

    /// Installs `release` from the downloaded file at `downloaded` over the executable: checks
    /// its size and SHA-256 while copying it beside the executable, refuses a version not above
    /// `running` or rolled back before, writes the pending-update marker with a deadline of
    /// `now_unix + trial_seconds`, and swaps. The caller then exits so the new binary starts.
    pub fn install(
        &self,
        release: &VerifiedRelease,
        downloaded: &Path,
        running: Version,
        trial_seconds: u64,
        now_unix: u64,
    ) -> Result<Installed, UpdateError> {
        let to = release.version();
        if to <= running {
            return Err(UpdateError::NotNewer {
                offered: to,
                running,
            });
        }
        let mut state = self.read_state()?.unwrap_or_default();
        if state.rolled_back.contains(&to.to_string()) {
            return Err(UpdateError::RolledBackBefore { version: to });
        }
        if let Some(pending) = &state.pending {
            return Err(UpdateError::Pending {
                from: pending.from.clone(),
                to: pending.to.clone(),
            });
        }
        let staged = self.sibling_hidden("new");
        fsx::copy_verified(downloaded, &staged, 0o755, release.size(), release.sha256()).map_err(
            |err| match err {
                CopyError::Io(err) => UpdateError::Io(err),
                CopyError::Mismatch(err) => UpdateError::Mismatch(err),
            },
        )?;
        let backup = self.sibling("old");
        fsx::remove(&backup)?;
        #[cfg(unix)]
        std::fs::hard_link(&self.exe, &backup).map_err(|err| {
            IoError::new(format!("linking {} to", self.exe.display()), &backup, err)
        })?;
        let deadline_unix = now_unix.saturating_add(trial_seconds);
        state.pending = Some(Pending {
            from: running.to_string(),
            to: to.to_string(),
            applied_unix: now_unix,
            deadline_unix,
            starts: 0,
            rollback_reason: None,
        });
        self.write_state(&state)?;
        if let Err(err) = self.swap_in(&staged, &backup) {
            // Nothing was replaced: take the marker back so the next start is normal.
            state.pending = None;
            let _ = self.write_state(&state);
            let _ = fsx::remove(&staged);
            return Err(err.into());
        }
        Ok(Installed {
            from: running,
            to,
            deadline_unix,
        })
    }

    /// Call first at every start, with the running version and the time: cleans up after
    /// earlier updates and decides whether this version is on trial or must roll back now.
    pub fn startup(&self, running: Version, now_unix: u64) -> Result<Startup, UpdateError> {
        fsx::remove(&self.sibling_hidden("new"))?;
        // On Windows a rolled-back binary may still be in use right after the rollback.
        let _ = fsx::remove(&self.sibling("failed"));
        let backup = self.sibling("old");
        let mut state = match self.read_state() {
            Ok(state) => state.unwrap_or_default(),
            Err(err) => {
                // An unreadable marker: end on the old binary if there is one.
                let reason = format!("the update state was unreadable ({err})");
                let mut state = State::default();
                if backup.exists() {
                    let pending = Pending {
                        from: "unknown".to_owned(),
                        to: running.to_string(),
                        applied_unix: now_unix,
                        deadline_unix: now_unix,
                        starts: 0,
                        rollback_reason: None,
                    };
                    return self.rollback(&mut state, pending, reason, now_unix);
                }
                self.write_state(&state)?;
                return Ok(Startup::Normal);
            }
        };
        let Some(mut pending) = state.pending.clone() else {
            // A confirmed update whose backup removal did not finish.
            fsx::remove(&backup)?;
            return Ok(Startup::Normal);
        };
        let to = pending.to.parse::<Version>().ok();
        let from = pending.from.parse::<Version>().ok();
        if to == Some(running) {
            if let Some(reason) = pending.rollback_reason.clone() {
                return self.rollback(&mut state, pending, reason, now_unix);
            }
            pending.starts = pending.starts.saturating_add(1);
            if now_unix >= pending.deadline_unix {
                let reason = format!(
                    "version {running} did not confirm a connection to the appliance by its deadline (unix {})",
                    pending.deadline_unix
                );
                return self.rollback(&mut state, pending, reason, now_unix);
            }
            if pending.starts > MAX_TRIAL_STARTS {
                let reason = format!(
                    "version {running} started {} times without confirming a connection to the appliance",
                    pending.starts
                );
                return self.rollback(&mut state, pending, reason, now_unix);
            }
            let res = Startup::Trial {
                from: from.unwrap_or(running),
                to: running,
                deadline_unix: pending.deadline_unix,
                starts: pending.starts,
            };
            state.pending = Some(pending);
            self.write_state(&state)?;
            return Ok(res);
        }
        // The old version (or another) started: the swap did not happen, or a rollback finished.
        let (result, reason) = match pending.rollback_reason.take() {
            Some(reason) => (OutcomeKind::RolledBack, reason),
            None => (
                OutcomeKind::Abandoned,
                format!(
                    "the update from {} to {} did not complete; version {running} started",
                    pending.from, pending.to
                ),
            ),
        };
        state.pending = None;
        state.last_outcome = Some(Outcome {
            from: pending.from,
            to: pending.to,
            result,
            reason,
            at_unix: now_unix,
        });
        self.write_state(&state)?;
        fsx::remove(&backup)?;
        Ok(Startup::Normal)
    }

    /// Call after the first Hello the appliance acknowledged: ends a trial of the running
    /// version (the update stays; the old binary is removed). `Ok(false)` when nothing was on
    /// trial.
    pub fn confirm_connected(&self, running: Version, now_unix: u64) -> Result<bool, UpdateError> {
        let mut state = self.read_state()?.unwrap_or_default();
        let Some(pending) = state.pending.clone() else {
            return Ok(false);
        };
        if pending.to.parse::<Version>().ok() != Some(running) || pending.rollback_reason.is_some()
        {
            return Ok(false);
        }
        state.pending = None;
        state.last_outcome = Some(Outcome {
            reason: format!("version {running} connected to the appliance"),
            from: pending.from,
            to: pending.to,
            result: OutcomeKind::Confirmed,
            at_unix: now_unix,
        });
        self.write_state(&state)?;
        fsx::remove(&self.sibling("old"))?;
        Ok(true)
    }

    /// Rolls the running version back now (its trial deadline passed while it ran); the caller
    /// exits after an `Ok(Some(_))` so the service manager starts the old binary. `Ok(None)`
    /// when the running version is not on trial.
    pub fn roll_back(
        &self,
        running: Version,
        reason: &str,
        now_unix: u64,
    ) -> Result<Option<Outcome>, UpdateError> {
        let mut state = self.read_state()?.unwrap_or_default();
        let Some(pending) = state.pending.clone() else {
            return Ok(None);
        };
        if pending.to.parse::<Version>().ok() != Some(running) {
            return Ok(None);
        }
        match self.rollback(&mut state, pending, reason.to_owned(), now_unix)? {
            Startup::RolledBack(outcome) => Ok(Some(outcome)),
            _ => Ok(None),
        }
    }

    /// The last update's outcome, removed once taken (report it to the appliance).
    pub fn take_outcome(&self) -> Result<Option<Outcome>, UpdateError> {
        let Some(mut state) = self.read_state()? else {
            return Ok(None);
        };
        let outcome = state.last_outcome.take();
        if outcome.is_some() {
            self.write_state(&state)?;
        }
        Ok(outcome)
    }

    /// The executable this updater replaces.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Puts the old binary back and records why.
    fn rollback(
        &self,
        state: &mut State,
        mut pending: Pending,
        reason: String,
        now_unix: u64,
    ) -> Result<Startup, UpdateError> {
        let backup = self.sibling("old");
        if !backup.exists() {
            let outcome = Outcome {
                from: pending.from,
                to: pending.to,
                result: OutcomeKind::RollbackImpossible,
                reason: format!("{reason}; the old binary is gone, so this version stays"),
                at_unix: now_unix,
            };
            state.pending = None;
            state.last_outcome = Some(outcome);
            self.write_state(state)?;
            return Ok(Startup::Normal);
        }
        // First make the refusal and the reason durable, then swap, then clear the marker.
        if !state.rolled_back.contains(&pending.to) {
            state.rolled_back.push(pending.to.clone());
            let excess = state.rolled_back.len().saturating_sub(MAX_REFUSED);
            state.rolled_back.drain(..excess);
        }
        pending.rollback_reason = Some(reason.clone());
        state.pending = Some(pending.clone());
        self.write_state(state)?;
        self.swap_back(&backup)?;
        let outcome = Outcome {
            from: pending.from,
            to: pending.to,
            result: OutcomeKind::RolledBack,
            reason,
            at_unix: now_unix,
        };
        state.pending = None;
        state.last_outcome = Some(outcome.clone());
        self.write_state(state)?;
        Ok(Startup::RolledBack(outcome))
    }

    #[cfg(unix)]
    fn swap_in(&self, staged: &Path, _backup: &Path) -> Result<(), IoError> {
        fsx::rename(staged, &self.exe)
    }

    #[cfg(windows)]
    fn swap_in(&self, staged: &Path, backup: &Path) -> Result<(), IoError> {
        fsx::rename(&self.exe, backup)?;
        if let Err(err) = fsx::rename(staged, &self.exe) {
            // Put the running binary back under its name.
            let _ = fsx::rename(backup, &self.exe);
            return Err(err);
        }
        Ok(())
    }

    #[cfg(unix)]
    fn swap_back(&self, backup: &Path) -> Result<(), IoError> {
        fsx::rename(backup, &self.exe)
    }

    #[cfg(windows)]
    fn swap_back(&self, backup: &Path) -> Result<(), IoError> {
        let failed = self.sibling("failed");
        let _ = fsx::remove(&failed);
        fsx::rename(&self.exe, &failed)?;
        fsx::rename(backup, &self.exe)
    }

    /// `<exe>.<suffix>`.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.exe.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{suffix}"));
        self.exe.with_file_name(name)
    }

    /// `<exe dir>/.<exe name>.<suffix>`.
    fn sibling_hidden(&self, suffix: &str) -> PathBuf {
        let mut name = std::ffi::OsString::from(".");
        name.push(self.exe.file_name().unwrap_or_default());
        name.push(format!(".{suffix}"));
        self.exe.with_file_name(name)
    }

    fn read_state(&self) -> Result<Option<State>, IoError> {
        let path = self.state_dir.join(STATE_FILE);
        let Some(bytes) = fsx::read_small(&path, MAX_STATE_BYTES)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|err| {
            IoError::new(
                "parsing",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, err),
            )
        })
    }

    fn write_state(&self, state: &State) -> Result<(), IoError> {
        fsx::create_dirs(&self.state_dir)?;
        // Serialising strings and numbers cannot fail.
        let mut bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        bytes.push(b'\n');
        fsx::write(&self.state_dir.join(STATE_FILE), &bytes, 0o600)
    }
}

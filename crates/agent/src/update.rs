//! Self-update (docs/AGENT-UPDATES.md): an `UpdateOffer` is verified against the release root
//! this agent pins before anything is fetched; the binary is downloaded over the same mutual TLS
//! (`Download`), checked against the manifest, swapped in atomically by `agent_release::swap`,
//! and the agent exits so the service manager starts the new version. A new version on trial
//! confirms itself after its first acknowledged `Hello`; one that does not by its deadline (or
//! that keeps crashing) is rolled back to the old binary. Downgrades and re-installs are refused.
//!
//! The pinned root: `osiris-agent-release-root.json` beside the executable (the package or MSI
//! installs it with the binary; both are the local administrator's), newer roots walked to are
//! kept in the state directory. Without a pinned root every offer is refused, with the reason.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_proto::v1::UpdateOffer;
use agent_release::swap::{Startup, Updater};
use agent_release::{Platform, Version};
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;

/// The pinned release root's file name, beside the executable.
pub const ROOT_FILE_NAME: &str = "osiris-agent-release-root.json";

/// How long a new version has to reach the appliance before it is rolled back.
const TRIAL: Duration = Duration::from_secs(10 * 60);

/// The agent's version, kept in the binary as one marker string (`osiris-agent-version=X.Y.Z;`)
/// read at run time, so a release's version is exactly what its binary says.
static VERSION_MARKER: &str = concat!("osiris-agent-version=", env!("CARGO_PKG_VERSION"), ";");

/// The version this binary reports.
#[must_use]
pub fn agent_version() -> &'static str {
    let marker: &'static str = std::hint::black_box(VERSION_MARKER);
    marker
        .strip_prefix("osiris-agent-version=")
        .and_then(|rest| rest.strip_suffix(';'))
        .unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// Why the agent stops at start instead of running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RolledBack(pub String);

/// The agent's updates for one run.
pub(crate) struct Updates {
    updater: Option<Updater>,
    pinned: Option<Vec<u8>>,
    running: Option<Version>,
    /// The deadline of this version's trial, while it is on trial (unix seconds).
    trial: Mutex<Option<u64>>,
    /// Manifests refused this run (offers repeat on every connection).
    refused: Mutex<HashSet<Vec<u8>>>,
    busy: AtomicBool,
}

fn now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

impl Updates {
    /// Reads the update state at start: a version on trial is counted, a failed trial is rolled
    /// back (then this process exits, and the old binary starts).
    pub(crate) fn start(state_dir: PathBuf) -> Result<Updates, RolledBack> {
        let running = agent_version().parse::<Version>().ok();
        let updater = match Updater::for_current_exe(state_dir) {
            Ok(updater) => Some(updater),
            Err(err) => {
                tracing::warn!(error = %err, "Self-update is off: the executable's path is unusable.");
                None
            }
        };
        let pinned = updater
            .as_ref()
            .and_then(|u| u.exe().parent().map(|dir| dir.join(ROOT_FILE_NAME)))
            .and_then(|path| std::fs::read(path).ok());
        let updates = Updates {
            updater,
            pinned,
            running,
            trial: Mutex::new(None),
            refused: Mutex::new(HashSet::new()),
            busy: AtomicBool::new(false),
        };
        let (Some(updater), Some(running)) = (&updates.updater, running) else {
            return Ok(updates);
        };
        match updater.startup(running, now()) {
            Ok(Startup::Normal) => {}
            Ok(Startup::Trial {
                from,
                to,
                deadline_unix,
                starts,
            }) => {
                tracing::info!(%from, %to, deadline_unix, starts, "This version is on trial until it reaches the appliance.");
                *updates
                    .trial
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(deadline_unix);
            }
            Ok(Startup::RolledBack(outcome)) => {
                return Err(RolledBack(format!(
                    "version {running} was rolled back ({}); exiting so the previous version starts",
                    outcome.reason
                )));
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, "Reading the update state failed; running as is.")
            }
        }
        if let Ok(Some(outcome)) = updater.take_outcome() {
            tracing::warn!(from = %outcome.from, to = %outcome.to, reason = %outcome.reason, "The last update did not stay.");
        }
        Ok(updates)
    }

    /// The deadline of this version's trial, if it is on one.
    pub(crate) fn trial_deadline(&self) -> Option<u64> {
        *self
            .trial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After the first acknowledged `Hello`: a version on trial has proved itself.
    pub(crate) fn connected(&self) {
        let (Some(updater), Some(running)) = (&self.updater, self.running) else {
            return;
        };
        if self
            .trial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .is_some()
        {
            match updater.confirm_connected(running, now()) {
                Ok(true) => {
                    tracing::info!(version = %running, "Update confirmed: this version reached the appliance.")
                }
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "Confirming the update failed."),
            }
        }
    }

    /// The trial's deadline passed without a connection: put the old binary back and exit.
    pub(crate) fn trial_failed(&self) -> ! {
        if let (Some(updater), Some(running)) = (&self.updater, self.running) {
            match updater.roll_back(
                running,
                "no acknowledged Hello before the trial's deadline",
                now(),
            ) {
                Ok(_) => {
                    tracing::error!(version = %running, "This version could not reach the appliance in time; rolled back.")
                }
                Err(err) => tracing::error!(error = %err, "Rolling back failed."),
            }
        }
        std::process::exit(75);
    }

    /// Handles an offer: verify, download, install, exit. Returns the refusal in words, if any.
    pub(crate) async fn offer(&self, offer: UpdateOffer, channel: Channel) -> Result<(), String> {
        if self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&offer.manifest)
        {
            return Ok(());
        }
        if self.busy.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = self.try_offer(&offer, channel).await;
        self.busy.store(false, Ordering::SeqCst);
        if let Err(why) = &result {
            tracing::warn!(version = %offer.version, reason = %why, "Update offer refused.");
            self.refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(offer.manifest.clone());
        }
        result
    }

    async fn try_offer(&self, offer: &UpdateOffer, channel: Channel) -> Result<(), String> {
        let Some(updater) = &self.updater else {
            return Err("the executable's path is unusable".to_owned());
        };
        let Some(pinned) = &self.pinned else {
            return Err(format!(
                "no release root is pinned ({ROOT_FILE_NAME} beside the executable): updates are refused"
            ));
        };
        let running = self
            .running
            .ok_or("this build's version is not MAJOR.MINOR.PATCH")?;
        let platform = Platform::current().ok_or("this platform takes no releases")?;
        let root = updater
            .trusted_root(pinned)
            .map_err(|err| err.to_string())?;
        let release = agent_release::verify_offer(
            &root,
            &offer.roots,
            &offer.manifest,
            running,
            platform,
            now(),
        )
        .map_err(|err| err.to_string())?;
        if release.root().version() > root.version() {
            updater
                .save_root(release.root())
                .map_err(|err| err.to_string())?;
        }
        tracing::info!(version = %release.version(), size = release.size(), "Verified an update; downloading it.");
        let file = updater
            .exe()
            .with_file_name(format!(".osiris-agent-download-{}", std::process::id()));
        let downloaded = download(channel, &offer.download_path, release.size(), &file).await;
        let installed = match downloaded {
            Ok(()) => updater
                .install(&release, &file, running, TRIAL.as_secs(), now())
                .map_err(|err| err.to_string()),
            Err(err) => Err(err),
        };
        let _ = std::fs::remove_file(&file);
        let installed = installed?;
        tracing::warn!(from = %installed.from, to = %installed.to, "Update installed; exiting so the service manager starts the new version.");
        std::process::exit(75);
    }
}

/// Fetches `path` into `file`, at most `size` bytes (one more is a refusal).
async fn download(
    channel: Channel,
    path: &str,
    size: u64,
    file: &std::path::Path,
) -> Result<(), String> {
    let mut client = agent_proto::gateway_client(channel);
    let mut chunks = client
        .download(agent_proto::v1::DownloadRequest {
            path: path.to_owned(),
        })
        .await
        .map_err(|status| format!("the download was refused: {}", status.message()))?
        .into_inner();
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|err| format!("creating {}: {err}", file.display()))?;
    let mut got = 0u64;
    while let Some(chunk) = chunks
        .message()
        .await
        .map_err(|status| format!("the download broke off: {}", status.message()))?
    {
        got += chunk.data.len() as u64;
        if got > size {
            return Err(format!(
                "the download is larger than the manifest's {size} bytes"
            ));
        }
        out.write_all(&chunk.data)
            .await
            .map_err(|err| format!("writing {}: {err}", file.display()))?;
    }
    out.sync_all()
        .await
        .map_err(|err| format!("writing {}: {err}", file.display()))?;
    Ok(())
}

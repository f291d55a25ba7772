//! What the daemon's components share, split by owner: the settings fixed at start, the store,
//! the live state (one lock held only to read or change it; encoded and saved outside it), each
//! cycle's schedule (owned by its loop, published through atomics), and facts about the box that
//! background tasks refresh so that the API never waits for a subprocess.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use api::CycleKind;

use crate::state::State;

/// State shared by the cycles, the notifier and the API.
pub(crate) struct Shared {
    /// What the configuration fixed at start; never changes while the daemon runs.
    pub(crate) settings: Settings,
    /// The evidence log (its own writer task serialises appends); shared with the agent gateway.
    pub(crate) store: Arc<store::Store>,
    /// The incident ledger and everything saved in `daemon-state.json`.
    pub(crate) state: StateCell,
    /// Each cycle's trigger and schedule.
    pub(crate) cycles: BTreeMap<CycleKind, CycleControl>,
    /// Facts about the box for status, refreshed in the background.
    pub(crate) facts: Facts,
    /// Wakes the notifier (an incident was escalated).
    pub(crate) notifier: Notify,
    /// Held while an evidence kit is written: one export at a time.
    pub(crate) export: tokio::sync::Mutex<()>,
    pub(crate) started_at: i64,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Where the link to Central Command stands (`None`: not configured or not started).
    pub(crate) link: std::sync::Mutex<Option<link_client::LinkStatus>>,
    /// The console PIN, the wait after wrong ones and the unlock tokens.
    pub(crate) console_pin: crate::pin::ConsolePin,
    /// The escalation channels the partner set at Central Command (besides the configured ones).
    pub(crate) partner_channels: std::sync::RwLock<Vec<escalate::Channel>>,
    /// Attestations and exceptions from the evidence log, for the compliance figures (read at
    /// start, and again after one is sealed through the local API).
    pub(crate) accepted: std::sync::RwLock<Arc<crate::derive::Accepted>>,
    /// The agent gateway, once started (`[agents]` configured).
    pub(crate) agents: std::sync::OnceLock<crate::agents::Runtime>,
    /// The keys of the expiry notices sealed so far (`notify::expiry_key`).
    pub(crate) expiry_notices: Mutex<std::collections::BTreeSet<String>>,
    /// The L1 rules in effect: the built-in ones plus the flywheel's promoted patterns.
    pub(crate) l1: crate::flywheel::L1Rules,
    /// After a server scan that found drift: the checks that still failed, per target. The
    /// quicker re-scan that follows runs only those (`ops::scan::ScanOptions::focus`); a
    /// trigger or a regular run clears it.
    pub(crate) drift_focus: Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>,
    /// The newest monthly compliance packet sealed (`packet.rs`), for status.
    pub(crate) last_packet: Mutex<Option<api::PacketState>>,
}

impl Shared {
    /// Every channel a notification goes to: the configured ones, then the partner's.
    pub(crate) fn all_channels(&self) -> Vec<escalate::Channel> {
        let mut all = self.settings.channels.clone();
        if let Ok(partner) = self.partner_channels.read() {
            all.extend(partner.iter().cloned());
        }
        all
    }

    /// The attestations and exceptions the compliance figures count now.
    pub(crate) fn accepted(&self) -> Arc<crate::derive::Accepted> {
        Arc::clone(
            &self
                .accepted
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Replaces them after a record was sealed through the local API.
    pub(crate) fn set_accepted(&self, accepted: crate::derive::Accepted) {
        *self
            .accepted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(accepted);
    }

    /// The newest monthly packet, for status.
    pub(crate) fn last_packet(&self) -> Option<api::PacketState> {
        self.last_packet
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the newest monthly packet.
    pub(crate) fn set_last_packet(&self, packet: Option<api::PacketState>) {
        *self
            .last_packet
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = packet;
    }

    /// Records the link's state for status.
    pub(crate) fn set_link_status(&self, status: Option<link_client::LinkStatus>) {
        if let Ok(mut link) = self.link.lock() {
            *link = status;
        }
    }
}

/// The parts of the configuration the daemon works from.
pub(crate) struct Settings {
    pub(crate) config: config::Config,
    pub(crate) catalog: Arc<catalog::Catalog>,
    /// The built-in L1 rules (the ones in effect, with promoted patterns, are `Shared::l1`).
    pub(crate) rules: rules::RuleSet,
    pub(crate) channels: Vec<escalate::Channel>,
    pub(crate) notify_policy: escalate::NotifyPolicy,
    pub(crate) incident_policy: incidents::IncidentPolicy,
    pub(crate) data_dir: PathBuf,
    /// The random claim code the console shows (see `claim`).
    pub(crate) claim_code: String,
    /// The L2 planner, none when `[l2]` is off.
    pub(crate) l2: Option<ops::l2::Planner>,
}

/// The live state and the one writer of its file.
pub(crate) struct StateCell {
    live: Mutex<State>,
    data_dir: PathBuf,
    /// Serialises writers of the file, so an older snapshot never replaces a newer one.
    writer: tokio::sync::Mutex<()>,
}

/// One cycle's trigger and schedule. Written by its loop only; read by the API and metrics.
pub(crate) struct CycleControl {
    pub(crate) enabled: bool,
    pub(crate) trigger: Notify,
    running: AtomicBool,
    /// Unix seconds, or [`NOT_DUE`].
    next_due: AtomicI64,
}

/// Cached facts about the box.
pub(crate) struct Facts {
    /// The appliance's own addresses (listing them runs `ip`, so a background task does it).
    addresses: Mutex<Vec<String>>,
    /// OpenTimestamps proofs pending and anchored, refreshed by the anchor cycle.
    ots_pending: AtomicU64,
    ots_anchored: AtomicU64,
}

const NOT_DUE: i64 = i64::MIN;

impl Shared {
    /// The live state, even if a panicking task poisoned the lock (every change is a single
    /// assignment or push under the lock, so the data is still consistent).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Saves the state; a failure is logged (the next change retries) but never stops a cycle.
    pub(crate) async fn save(&self) {
        self.state.save().await;
    }

    pub(crate) fn cycle(&self, kind: CycleKind) -> &CycleControl {
        &self.cycles[&kind]
    }
}

impl StateCell {
    pub(crate) fn new(state: State, data_dir: PathBuf) -> StateCell {
        StateCell {
            live: Mutex::new(state),
            data_dir,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// The live state, ignoring poison.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a snapshot under the lock, then encodes and writes it on a blocking thread.
    pub(crate) async fn save(&self) {
        let _writer = self.writer.lock().await;
        let snapshot = self.lock().snapshot();
        let data_dir = self.data_dir.clone();
        let written = tokio::task::spawn_blocking(move || snapshot.write(&data_dir)).await;
        let res = match written {
            Ok(res) => res.map_err(anyhow::Error::from),
            Err(err) => Err(anyhow::Error::from(err)),
        };
        if let Err(err) = res {
            tracing::error!(error = %format!("{err:#}"), "Could not save the daemon state; will retry on the next change.");
        }
    }
}

impl CycleControl {
    pub(crate) fn new(enabled: bool) -> CycleControl {
        CycleControl {
            enabled,
            trigger: Notify::new(),
            running: AtomicBool::new(false),
            next_due: AtomicI64::new(NOT_DUE),
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// When the cycle runs next, once its loop has planned it.
    pub(crate) fn next_due(&self) -> Option<i64> {
        Some(self.next_due.load(Ordering::Relaxed)).filter(|&at| at != NOT_DUE)
    }

    pub(crate) fn set_next_due(&self, at: i64) {
        self.next_due.store(at, Ordering::Relaxed);
    }
}

impl Facts {
    pub(crate) fn new() -> Facts {
        Facts {
            addresses: Mutex::new(Vec::new()),
            ots_pending: AtomicU64::new(0),
            ots_anchored: AtomicU64::new(0),
        }
    }

    pub(crate) fn addresses(&self) -> Vec<String> {
        self.addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_addresses(&self, addresses: Vec<String>) {
        *self
            .addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = addresses;
    }

    /// OpenTimestamps proofs (pending, anchored).
    pub(crate) fn ots_counts(&self) -> (u64, u64) {
        (
            self.ots_pending.load(Ordering::Relaxed),
            self.ots_anchored.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn set_ots_counts(&self, pending: u64, anchored: u64) {
        self.ots_pending.store(pending, Ordering::Relaxed);
        self.ots_anchored.store(anchored, Ordering::Relaxed);
    }
}

//! `osirisd`, the appliance daemon: runs the scan, heal, discovery, anchoring and checkpoint
//! cycles on their schedule, keeps incidents and escalates what L1 cannot fix, and serves the
//! local API on a Unix socket for `osiris status` and the console.
//!
//! Start-up order matters: the configuration is validated (exit 78 on a bad one) and the data
//! directory locked (a second daemon refuses to start) before any socket is bound.
//!
//! Modules: `derive` (pure result → state translations), `schedule` (pure timing), `state`
//! (persisted state), `cycles` (one run of each cycle), `notify` (L3 delivery), `api` (HTTP
//! routes and the peer-credential check), `setup` (first-boot wizard), `host` (box health),
//! `systemd` (sd_notify), `metrics` (optional Prometheus text).

mod api;
mod cycles;
mod derive;
mod host;
mod metrics;
mod notify;
mod schedule;
mod secrets;
mod setup;
mod state;
mod systemd;
mod updates;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};

use ::api::CycleKind;

/// Command line of `osirisd`.
#[derive(Debug, clap::Parser)]
#[command(name = "osirisd", version, about = "OsirisCare appliance daemon")]
pub struct Args {
    /// The appliance configuration (the same TOML `osiris` reads).
    #[arg(long, default_value = "/etc/osiris/appliance.toml")]
    pub config: PathBuf,
    /// Log as JSON lines (default: plain text, without timestamps under systemd).
    #[arg(long)]
    pub log_json: bool,
}

/// Exit code for a configuration that cannot work (`EX_CONFIG`; systemd does not restart it).
const EXIT_CONFIG: u8 = 78;

/// Runs the daemon until SIGTERM/SIGINT; returns the process exit code.
pub fn main(args: Args) -> ExitCode {
    init_tracing(args.log_json);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = match Loaded::from_config(&args.config) {
        Ok(loaded) => loaded,
        Err(err) => {
            tracing::error!(config = %args.config.display(), error = %format!("{err:#}"), "Invalid configuration; not starting.");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let bad_config = err.downcast_ref::<ops::BadConfig>().is_some();
            tracing::error!(error = %format!("{err:#}"), "osirisd stopped.");
            if bad_config {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Everything read and checked from the configuration before anything is opened or bound.
pub(crate) struct Loaded {
    pub(crate) config: config::Config,
    pub(crate) config_path: PathBuf,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) rules: rules::RuleSet,
    pub(crate) channels: Vec<escalate::Channel>,
    pub(crate) notify_policy: escalate::NotifyPolicy,
    pub(crate) data_dir: PathBuf,
}

impl Loaded {
    fn from_config(path: &std::path::Path) -> anyhow::Result<Loaded> {
        let config = ops::setup::load_config(Some(path))?;
        let catalog = ops::setup::load_catalog()?;
        ops::setup::check_overrides(&config, &catalog)?;
        let rules = rules::embedded(catalog.runbooks())
            .map_err(|err| ops::BadConfig(format!("built-in L1 rules are invalid:\n{err}")))?;
        let (channels, notify_policy) = match &config.escalation {
            Some(escalation) => notify::channels(escalation)?,
            None => (Vec::new(), escalate::NotifyPolicy::default()),
        };
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/osiris"));
        Ok(Loaded {
            config,
            config_path: path.to_path_buf(),
            catalog: Arc::new(catalog),
            rules,
            channels,
            notify_policy,
            data_dir,
        })
    }
}

/// State shared by the cycles, the notifier and the API.
pub(crate) struct Shared {
    pub(crate) config: config::Config,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) rules: rules::RuleSet,
    pub(crate) channels: Vec<escalate::Channel>,
    pub(crate) notify_policy: escalate::NotifyPolicy,
    pub(crate) incident_policy: incidents::IncidentPolicy,
    pub(crate) data_dir: PathBuf,
    pub(crate) store: store::Store,
    pub(crate) state: Mutex<state::State>,
    /// Device scores for compliance (rebuilt by scans; not persisted: the trend is).
    pub(crate) scores: Mutex<BTreeMap<String, derive::Scores>>,
    pub(crate) cycles: BTreeMap<CycleKind, CycleControl>,
    /// Wakes the notifier (an incident was escalated).
    pub(crate) notifier: Notify,
    pub(crate) started_at: i64,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The box's own addresses and when they were read (listing them runs `ip`).
    pub(crate) addresses: Mutex<Option<(std::time::Instant, Vec<String>)>>,
    /// OpenTimestamps proofs (pending, anchored), refreshed by the anchor cycle.
    pub(crate) ots_counts: Mutex<(u64, u64)>,
    /// Serialises writers of the state file.
    pub(crate) saving: Mutex<()>,
}

/// Per-cycle scheduling handles.
pub(crate) struct CycleControl {
    pub(crate) enabled: bool,
    pub(crate) trigger: Notify,
    pub(crate) running: Mutex<bool>,
    pub(crate) next_due: Mutex<Option<i64>>,
}

impl Shared {
    /// The state, even if a panicking task poisoned the lock (the data is still consistent:
    /// every change is a single assignment or push under the lock).
    pub(crate) fn state(&self) -> MutexGuard<'_, state::State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves the state; a failure is logged (the next change retries) but never stops a cycle.
    pub(crate) fn save(&self) {
        // One writer at a time; the state lock is held only while serialising.
        let _writing = lock(&self.saving);
        let bytes = self.state().to_bytes(&self.data_dir);
        let result = bytes.and_then(|bytes| state::write(&self.data_dir, &bytes));
        if let Err(err) = result {
            tracing::error!(error = %err, "Could not save the daemon state; will retry on the next change.");
        }
    }

    pub(crate) fn cycle(&self, kind: CycleKind) -> &CycleControl {
        &self.cycles[&kind]
    }

    /// The appliance's addresses, read at most every 30 s.
    pub(crate) fn addresses(&self) -> Vec<String> {
        let mut cached = lock(&self.addresses);
        match &*cached {
            Some((at, addresses)) if at.elapsed() < Duration::from_secs(30) => addresses.clone(),
            _ => {
                let addresses = host::addresses();
                *cached = Some((std::time::Instant::now(), addresses.clone()));
                addresses
            }
        }
    }
}

/// Locks ignoring poison, for the small scheduling mutexes.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let Loaded {
        config,
        config_path,
        catalog,
        rules,
        channels,
        notify_policy,
        data_dir,
    } = loaded;
    // The store's lock file makes a second daemon (or a CLI write) on this data dir refuse.
    let store = ops::setup::open_store(&data_dir, &config.site)
        .await
        .map_err(|err| match err.downcast_ref::<store::StoreError>() {
            Some(store::StoreError::InUse { .. }) => err.context(
                "another osirisd (or an `osiris` command) is using this data directory; only one may run",
            ),
            _ => err,
        })?;
    let state = state::State::load(&data_dir, now()).context("loading the daemon state")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cycles = CycleKind::ALL
        .into_iter()
        .map(|kind| {
            let control = CycleControl {
                enabled: schedule::enabled(&config, kind),
                trigger: Notify::new(),
                running: Mutex::new(false),
                next_due: Mutex::new(None),
            };
            (kind, control)
        })
        .collect();
    let shared = Arc::new(Shared {
        incident_policy: incidents::IncidentPolicy {
            flap_count: config.healing.flap_max.max(1),
            flap_window_secs: i64::from(config.healing.flap_window_minutes) * 60,
            close_after_secs: 24 * 3600,
        },
        config,
        catalog,
        rules,
        channels,
        notify_policy,
        data_dir,
        store,
        state: Mutex::new(state),
        scores: Mutex::new(BTreeMap::new()),
        cycles,
        notifier: Notify::new(),
        started_at: now(),
        shutdown: shutdown_rx,
        addresses: Mutex::new(None),
        ots_counts: Mutex::new((0, 0)),
        saving: Mutex::new(()),
    });
    cycles::refresh_ots_counts(&shared).await;
    updates::seal_pending(&shared).await;
    let listener = api::bind(&shared.config.daemon)?;
    let metrics = match &shared.config.daemon.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    tracing::info!(
        config = %config_path.display(),
        site = %shared.config.site,
        socket = %shared.config.daemon.socket.display(),
        data_dir = %shared.data_dir.display(),
        targets = shared.config.targets.len(),
        "osirisd started."
    );
    let mut tasks = tokio::task::JoinSet::new();
    for kind in CycleKind::ALL {
        if shared.cycle(kind).enabled {
            tasks.spawn(cycles::cycle_loop(Arc::clone(&shared), kind));
        }
    }
    tasks.spawn(notify::notifier_loop(Arc::clone(&shared)));
    let api_task = tokio::spawn(api::serve(listener, Arc::clone(&shared)));
    let metrics_task = metrics.map(|m| tokio::spawn(metrics::serve(m, Arc::clone(&shared))));
    systemd::notify("READY=1\nSTATUS=running");
    let watchdog = systemd::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                systemd::notify("WATCHDOG=1");
            }
        })
    });

    wait_for_signal().await?;
    let drain = Duration::from_secs(shared.config.daemon.drain_secs);
    tracing::info!(
        drain_secs = drain.as_secs(),
        "Stopping: letting running cycles finish."
    );
    systemd::notify("STOPPING=1\nSTATUS=finishing running cycles");
    let _ = shutdown_tx.send(true);
    shared.notifier.notify_one();
    let drained =
        tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            drain_secs = drain.as_secs(),
            "Cycles still running at the drain deadline; stopping them (evidence already written is kept)."
        );
        tasks.abort_all();
    }
    api_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(task) = watchdog {
        task.abort();
    }
    shared.save();
    let _ = std::fs::remove_file(&shared.config.daemon.socket);
    match Arc::try_unwrap(shared) {
        Ok(shared) => shared.store.close().await,
        Err(_) => tracing::debug!("Store still referenced at exit; SQLite keeps committed data."),
    }
    tracing::info!("osirisd stopped.");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd the journal stamps each line; a second timestamp is noise.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match (json, journald) {
        (true, _) => builder.json().try_init(),
        (false, true) => builder.without_time().try_init(),
        (false, false) => builder.try_init(),
    };
}

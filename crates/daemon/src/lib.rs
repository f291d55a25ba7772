//! `osirisd`, the appliance daemon: runs the scan, heal, discovery, anchoring and checkpoint
//! cycles on their schedule, keeps incidents and escalates what L1 cannot fix, and serves the
//! local API on a Unix socket for `osiris status` and the console.
//!
//! Start-up order matters: the configuration is validated (exit 78 on a bad one) and the data
//! directory locked (a second daemon refuses to start) before any socket is bound.
//! SIGTERM or SIGINT drains: running cycles finish (up to `daemon.drain_secs`); a second signal
//! during the drain stops at once (exit 1).
//!
//! Modules: `shared` (what the components share, split by owner), `derive` (pure result →
//! state translations), `schedule` (pure timing), `state` (persisted state), `cycles` (one run
//! of each cycle), `notify` (L3 delivery), `api` (the socket, its routes and handlers), `setup`
//! (first-boot wizard), `pin` (the console PIN and unlock tokens), `central` and
//! `central_actions` (the link to Central Command and the partner users' incident actions),
//! `agents` and `agent_heal` (the endpoint agents' gateway, their results and L1 through them),
//! `host` (box health), `systemd` (sd_notify), `metrics` (optional Prometheus text).

mod agent_heal;
mod agents;
mod api;
mod central;
mod central_actions;
mod central_agents;
mod claim;
mod cycles;
mod derive;
mod flywheel;
mod host;
mod metrics;
mod notify;
mod packet;
mod partner_channels;
mod pin;
mod schedule;
mod secrets;
mod setup;
mod shared;
mod state;
mod systemd;
mod updates;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};

use ::api::CycleKind;

pub(crate) use crate::shared::Shared;
use crate::shared::{CycleControl, Facts, Settings, StateCell};

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
    if let Err(err) = ops::workstations::prepare_kerberos(&loaded.config, &loaded.data_dir) {
        tracing::error!(error = %format!("{err:#}"), "Cannot set up the Kerberos logins; not starting.");
        return ExitCode::from(EXIT_CONFIG);
    }
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
        Ok(Stopped::Cleanly) => ExitCode::SUCCESS,
        Ok(Stopped::Forced) => {
            // Blocking work still running (an SSH connect, a kit being written) is not waited for.
            runtime.shutdown_background();
            ExitCode::FAILURE
        }
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
    /// The L2 planner (`[l2]`; its API key already read), none when off.
    pub(crate) l2: Option<ops::l2::Planner>,
}

impl Loaded {
    fn from_config(path: &std::path::Path) -> anyhow::Result<Loaded> {
        let config = ops::setup::load_config(Some(path))?;
        let catalog = ops::setup::load_catalog()?;
        ops::setup::check_overrides(&config, &catalog)?;
        if let Some(agents) = &config.agents {
            let unknown: Vec<&str> = agents
                .checks
                .iter()
                .filter(|id| catalog.get(id).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(ops::BadConfig(format!(
                    "agents.checks names checks the catalogue does not have: {} (`osiris catalog list` shows them)",
                    unknown.join(", ")
                ))
                .into());
            }
        }
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
        if let Some(l2) = &config.l2 {
            let unknown: Vec<&str> = l2
                .approval_required
                .iter()
                .filter(|id| catalog.get(id).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(ops::BadConfig(format!(
                    "l2.approval_required names runbooks the catalogue does not have: {} (`osiris catalog list` shows them)",
                    unknown.join(", ")
                ))
                .into());
            }
        }
        let l2 = ops::l2::Planner::from_config(&config, &data_dir)?;
        Ok(Loaded {
            l2,
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

/// How the daemon stopped.
enum Stopped {
    /// After SIGTERM/SIGINT, once running cycles finished or the drain deadline passed.
    Cleanly,
    /// A second signal during the drain: exit now.
    Forced,
}

/// SSH connections kept open between cycles (each holds two file descriptors).
const WARM_SSH_SESSIONS: usize = 256;

/// WinRS shells kept open between cycles (each holds an idle thread and its HTTP connection):
/// the servers and workstations of a practice, which has at most about a hundred.
const WARM_WINRM_SHELLS: usize = 128;

/// Kept WinRS shells are dropped before Windows' default WinRS `IdleTimeout` (two hours) would.
const WINRM_SHELL_MAX_AGE_SECS: u64 = 90 * 60;

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn run(loaded: Loaded) -> anyhow::Result<Stopped> {
    let Loaded {
        config,
        config_path,
        catalog,
        rules,
        channels,
        notify_policy,
        data_dir,
        l2,
    } = loaded;
    // Signals are caught from the start, so a SIGTERM while starting is a clean stop too.
    let mut signals = Signals::install()?;
    // The store's lock file makes a second daemon (or a CLI write) on this data dir refuse.
    let store = ops::setup::open_store(&data_dir, &config.site)
        .await
        .map_err(|err| match err.downcast_ref::<store::StoreError>() {
            Some(store::StoreError::InUse { .. }) => err.context(
                "another osirisd (or an `osiris` command) is using this data directory; only one may run",
            ),
            _ => err,
        })?;
    // Patterns a person promoted from L2 join the L1 rules (docs/L2.md, "The flywheel"); they are
    // loaded again before every heal and after each decision (`flywheel`).
    let (l1_rules, promoted) = flywheel::load(&store, &config, &catalog, &rules, &data_dir).await;
    if !promoted.is_empty() {
        tracing::info!(
            rules = l1_rules.rules().len(),
            "L1 rules include the flywheel's promoted patterns."
        );
    }
    let state = state::State::load(&data_dir, now()).context("loading the daemon state")?;
    // Attestations and accepted risks in the log count in the compliance figures: those sealed by
    // `osiris attest` / `osiris exception add` while no daemon ran are read here, those sealed
    // through the local API since are added as they come (`api/compliance.rs`).
    let accepted = derive::accepted_risks(&store).await?;
    let expiry_notices = notify::expiry_keys(&store).await?;
    let claim_code = claim::load_or_create(&data_dir)?;
    // The partner's channels as last brought by the link; unreadable ones are reported, and the
    // link brings them again.
    let partner_channels = partner_channels::load(&config, &data_dir).unwrap_or_else(|err| {
        tracing::error!(error = %format!("{err:#}"), "The partner's escalation channels cannot be loaded; the link fetches them again.");
        Vec::new()
    });
    let console_pin = pin::ConsolePin::load(
        &data_dir,
        Duration::from_secs(config.daemon.console_lock_secs),
    )?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cycles = CycleKind::ALL
        .into_iter()
        .map(|kind| (kind, CycleControl::new(schedule::enabled(&config, kind))))
        .collect();
    let shared = Arc::new(Shared {
        settings: Settings {
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
            data_dir: data_dir.clone(),
            claim_code,
            l2,
        },
        store: Arc::new(store),
        state: StateCell::new(state, data_dir),
        cycles,
        facts: Facts::new(),
        notifier: Notify::new(),
        export: tokio::sync::Mutex::new(()),
        started_at: now(),
        shutdown: shutdown_rx,
        link: std::sync::Mutex::new(None),
        console_pin,
        accepted: std::sync::RwLock::new(Arc::new(accepted)),
        partner_channels: std::sync::RwLock::new(partner_channels),
        agents: std::sync::OnceLock::new(),
        l1: flywheel::L1Rules::new(l1_rules, promoted),
        expiry_notices: std::sync::Mutex::new(expiry_notices),
        drift_focus: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        last_packet: std::sync::Mutex::new(None),
    });
    // SSH logins once, not every cycle: connections wait for the next scan (a missed cycle
    // included) and are replaced when the target closed them.
    ops::scan::keep_ssh_sessions_warm(
        WARM_SSH_SESSIONS,
        std::time::Duration::from_secs(3 * shared.settings.config.daemon.server_scan_secs.max(60)),
    );
    // WinRS shells likewise, for servers and workstations; replaced when the host dropped them.
    let daemon_config = &shared.settings.config.daemon;
    ops::scan::keep_winrm_shells_warm(
        WARM_WINRM_SHELLS,
        std::time::Duration::from_secs(
            (3 * daemon_config
                .server_scan_secs
                .max(daemon_config.workstation_scan_secs)
                .max(60))
            .min(WINRM_SHELL_MAX_AGE_SECS),
        ),
    );
    cycles::refresh_ots_counts(&shared).await;
    refresh_addresses(&shared).await;
    updates::seal_pending(&shared).await;
    let config = &shared.settings.config;
    let listener = api::bind(&config.daemon)?;
    let metrics = match &config.daemon.metrics_listen {
        Some(addr) => Some(metrics::bind(*addr).await?),
        None => None,
    };
    tracing::info!(
        config = %config_path.display(),
        site = %config.site,
        socket = %config.daemon.socket.display(),
        data_dir = %shared.settings.data_dir.display(),
        targets = config.targets.len(),
        "osirisd started."
    );
    // Drained at shutdown: the cycles and the notifier.
    let mut tasks = tokio::task::JoinSet::new();
    for kind in CycleKind::ALL {
        if shared.cycle(kind).enabled {
            tasks.spawn(cycles::cycle_loop(Arc::clone(&shared), kind));
        }
    }
    tasks.spawn(notify::notifier_loop(Arc::clone(&shared)));
    tasks.spawn(packet::packet_loop(Arc::clone(&shared)));
    // Stopped at once at shutdown: serving and housekeeping.
    let mut services = tokio::task::JoinSet::new();
    // The gateway before the API: once the API answers, `osiris agent …` finds the gateway up.
    agents::start(&shared, &mut services)?;
    services.spawn(api::serve(listener, Arc::clone(&shared)));
    if let Some(m) = metrics {
        services.spawn(metrics::serve(m, Arc::clone(&shared)));
    }
    services.spawn(addresses_loop(Arc::clone(&shared)));
    services.spawn(central::link_loop(Arc::clone(&shared)));
    systemd::notify("READY=1\nSTATUS=running");
    if let Some(every) = systemd::watchdog_interval() {
        services.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                systemd::notify("WATCHDOG=1");
            }
        });
    }

    signals.next().await;
    let drain = Duration::from_secs(shared.settings.config.daemon.drain_secs);
    tracing::info!(
        drain_secs = drain.as_secs(),
        "Stopping: letting running cycles finish (a second signal stops at once)."
    );
    systemd::notify("STOPPING=1\nSTATUS=finishing running cycles");
    let _ = shutdown_tx.send(true);
    shared.notifier.notify_one();
    let drain_end = {
        let drained = async { while tasks.join_next().await.is_some() {} };
        tokio::select! {
            res = tokio::time::timeout(drain, drained) => match res {
                Ok(()) => DrainEnd::Done,
                Err(_) => DrainEnd::Deadline,
            },
            () = signals.next() => DrainEnd::Signal,
        }
    };
    match drain_end {
        DrainEnd::Done => {}
        DrainEnd::Deadline => {
            tracing::warn!(
                drain_secs = drain.as_secs(),
                "Cycles still running at the drain deadline; stopping them (evidence already written is kept)."
            );
            tasks.abort_all();
        }
        DrainEnd::Signal => {
            tracing::warn!(
                "Second signal while draining; stopping now without waiting for running cycles (evidence already written is kept)."
            );
            tasks.abort_all();
            services.abort_all();
            let _ = std::fs::remove_file(&shared.settings.config.daemon.socket);
            return Ok(Stopped::Forced);
        }
    }
    services.abort_all();
    while services.join_next().await.is_some() {}
    shared.save().await;
    let _ = std::fs::remove_file(&shared.settings.config.daemon.socket);
    match Arc::try_unwrap(shared).map(|shared| Arc::try_unwrap(shared.store)) {
        Ok(Ok(store)) => store.close().await,
        _ => tracing::debug!("Store still referenced at exit; SQLite keeps committed data."),
    }
    tracing::info!("osirisd stopped.");
    Ok(Stopped::Cleanly)
}

/// How the drain ended.
enum DrainEnd {
    Done,
    Deadline,
    Signal,
}

/// SIGTERM and SIGINT, whichever comes.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// How often the box's addresses are read again.
const ADDRESSES_EVERY: Duration = Duration::from_secs(30);

/// Keeps the cached addresses fresh, so status never runs `ip` itself.
async fn addresses_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(ADDRESSES_EVERY).await;
        refresh_addresses(&shared).await;
    }
}

async fn refresh_addresses(shared: &Shared) {
    match tokio::task::spawn_blocking(host::addresses).await {
        Ok(addresses) => shared.facts.set_addresses(addresses),
        Err(err) => tracing::warn!(error = %err, "Could not list the appliance's addresses."),
    }
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

//! Endpoint agents in `osirisd` (`[agents]`): starts the gateway, and feeds what agents report
//! into the same pipeline as WinRM and SSH scans — device records, scores, incidents, L1
//! decisions (`agent_heal`) — under the host name the agent enrolled with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_gateway::{AgentEvent, AgentInfo, GatewayHandle, GatewaySettings, ReportedResult};
use agent_proto::v1::{AgentConfig, CheckSchedule, Platform as WirePlatform, QueueLimits};
use anyhow::Context;
use model::{CheckOutcome, CheckStatus, DeviceType, Platform, Target};
use tokio::sync::mpsc;

use crate::{Shared, derive, now};

/// Events waiting for the daemon; when full, agent streams wait (their items are sealed already).
const EVENTS: usize = 4096;

/// The gateway as the rest of the daemon sees it.
pub(crate) struct Runtime {
    pub(crate) handle: GatewayHandle,
    pub(crate) pin: agent_proto::CaPin,
    pub(crate) listen: std::net::SocketAddr,
    pub(crate) drafts: agent_gateway::DraftContext,
    /// How long an agent's results keep its host off the WinRM cycle.
    pub(crate) fresh_secs: i64,
    /// The newest result of every check per host (since start; the device record is saved).
    pub(crate) hosts: Mutex<BTreeMap<String, AgentHost>>,
    /// Remediations asked of agents and not finished.
    pub(crate) pending: crate::agent_heal::Pending,
    /// Signed agent releases (`[agents] release_root` configured).
    pub(crate) releases: Option<agent_gateway::Releases>,
    /// The state changed since it was last saved (results are saved in batches, see
    /// [`SAVE_EVERY`]; the items themselves are sealed before they are acknowledged).
    pub(crate) dirty: std::sync::atomic::AtomicBool,
}

/// How often what agents reported is saved to `daemon-state.json` at most: saving per result
/// (the whole file, fsynced) held every stream up at 1,000 results/s (docs/PERFORMANCE.md).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// What the daemon keeps of one agent's host.
#[derive(Debug, Clone)]
pub(crate) struct AgentHost {
    pub(crate) agent_id: String,
    pub(crate) platform: Platform,
    pub(crate) results: BTreeMap<String, ReportedResult>,
    /// When its last results arrived (unix seconds).
    pub(crate) last_at: i64,
}

impl Runtime {
    fn hosts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AgentHost>> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the workstation named `name` (a DNS name from AD) is covered by a fresh agent:
    /// connected now, or reporting within `fresh_secs`. Matched by full name or first label.
    pub(crate) fn covers(&self, name: &str, now: i64) -> bool {
        let matches = host_matcher(name);
        self.hosts()
            .iter()
            .any(|(host, seen)| matches(host) && now - seen.last_at <= self.fresh_secs)
            || self
                .handle
                .connected()
                .iter()
                .any(|agent| matches(&agent.hostname))
    }
}

impl Runtime {
    /// The newest result of each check that the agent of workstation `name` reported (matched as
    /// in [`Runtime::covers`]); empty when it has not reported since the daemon started.
    pub(crate) fn latest(&self, name: &str) -> Vec<(String, CheckStatus)> {
        let matches = host_matcher(name);
        self.hosts()
            .iter()
            .filter(|(host, _)| matches(host))
            .flat_map(|(_, seen)| seen.results.values())
            .map(|result| {
                let status = match result.status {
                    "pass" => CheckStatus::Pass,
                    "fail" => CheckStatus::Fail,
                    "not_applicable" => CheckStatus::Skipped,
                    _ => CheckStatus::Error,
                };
                (result.check_id.clone(), status)
            })
            .collect()
    }
}

/// Whether an agent's host name is the workstation `name` (a DNS name from AD): the same full
/// name, or the same first label.
fn host_matcher(name: &str) -> impl Fn(&str) -> bool {
    let name = name.to_lowercase();
    let short = name.split('.').next().unwrap_or_default().to_owned();
    move |host: &str| host == name || host.split('.').next() == Some(short.as_str())
}

/// The appliance's agent releases, when `[agents] release_root` names the vendor's root.
fn releases(
    agents: &config::AgentsConfig,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<agent_gateway::Releases>> {
    let Some(root_path) = &agents.release_root else {
        return Ok(None);
    };
    let bytes = std::fs::read(root_path)
        .with_context(|| format!("reading the agent release root {}", root_path.display()))?;
    let root = agent_release::TrustedRoot::pin(&bytes).map_err(|err| {
        ops::BadConfig(format!(
            "agents.release_root {} is not a valid signed agent root: {err}",
            root_path.display()
        ))
    })?;
    let now = u64::try_from(now()).unwrap_or(0);
    let store =
        agent_release::store::ReleaseStore::open(&data_dir.join("agent-releases"), root, now)
            .context("opening the agent releases")?;
    Ok(Some(Arc::new(std::sync::RwLock::new(store))))
}

/// The gateway's settings from the configuration and the catalogue.
pub(crate) fn settings(
    config: &config::Config,
    agents: &config::AgentsConfig,
    catalog: &catalog::Catalog,
    data_dir: &std::path::Path,
    releases: Option<agent_gateway::Releases>,
) -> GatewaySettings {
    let config_for = |platform: Platform| AgentConfig {
        revision: 0,
        checks: catalog
            .for_platform(platform)
            .filter(|runbook| agents.checks.is_empty() || agents.checks.contains(&runbook.id))
            .take(agent_proto::limits::MAX_CHECKS)
            .map(|runbook| CheckSchedule {
                check_id: runbook.id.clone(),
                interval_seconds: agents.check_secs,
                jitter_seconds: agents.check_secs / 10,
            })
            .collect(),
        heartbeat_interval_seconds: agents.heartbeat_secs,
        full_report_interval_seconds: agents.full_report_hours * 3600,
        queue: Some(QueueLimits {
            max_items: agents.queue_items,
            max_bytes: agents.queue_mib * 1024 * 1024,
            max_age_seconds: agents.queue_hours * 3600,
        }),
        protocol_version: agent_proto::limits::PROTOCOL_VERSION,
    };
    let configs = [
        (WirePlatform::LinuxX8664 as i32, config_for(Platform::Linux)),
        (
            WirePlatform::WindowsX8664 as i32,
            config_for(Platform::WindowsWorkstation),
        ),
    ]
    .into_iter()
    .collect();
    let per_minute = f64::from(agents.enroll_per_minute);
    GatewaySettings {
        listen: agents.listen,
        dir: data_dir.join("agents"),
        drafts: agent_gateway::DraftContext {
            site: config.site.clone(),
            catalog: catalog.version().to_owned(),
        },
        certificate_lifetime: Duration::from_secs(u64::from(agents.certificate_hours) * 3600),
        configs,
        enroll_limits: agent_gateway::EnrollLimits {
            per_address_per_minute: per_minute,
            total_per_minute: per_minute * 10.0,
            burst: (per_minute * 2.0).max(10.0),
            ..agent_gateway::EnrollLimits::STANDARD
        },
        server_limits: agent_proto::ServerLimits::STANDARD,
        releases,
    }
}

/// Starts the gateway when `[agents]` is configured, and the task that takes its events.
pub(crate) fn start(
    shared: &Arc<Shared>,
    services: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let settings_all = &shared.settings;
    let Some(agents) = &settings_all.config.agents else {
        return Ok(());
    };
    let releases = releases(agents, &settings_all.data_dir)?;
    let settings = settings(
        &settings_all.config,
        agents,
        &settings_all.catalog,
        &settings_all.data_dir,
        releases.clone(),
    );
    let drafts = settings.drafts.clone();
    let (events_tx, events_rx) = mpsc::channel(EVENTS);
    let gateway = agent_gateway::start(settings, Arc::clone(&shared.store), events_tx)
        .context("starting the agent gateway")?;
    let runtime = Runtime {
        handle: gateway.handle,
        pin: gateway.pin,
        listen: gateway.local_addr,
        drafts,
        fresh_secs: i64::from(agents.fresh_minutes) * 60,
        hosts: Mutex::new(BTreeMap::new()),
        pending: crate::agent_heal::Pending::default(),
        releases,
        dirty: std::sync::atomic::AtomicBool::new(false),
    };
    if shared.agents.set(runtime).is_err() {
        anyhow::bail!("the agent gateway was started twice");
    }
    let server = gateway.task;
    services.spawn(async move {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "The agent gateway stopped."),
            Err(err) if err.is_cancelled() => {}
            Err(err) => tracing::error!(error = %err, "The agent gateway failed."),
        }
    });
    services.spawn(event_loop(Arc::clone(shared), events_rx));
    services.spawn(saver(Arc::clone(shared)));
    Ok(())
}

/// Saves the state when agents changed it, at most every [`SAVE_EVERY`] (the daemon's own
/// shutdown saves whatever is left).
async fn saver(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAVE_EVERY);
    loop {
        tick.tick().await;
        let changed = shared.agents.get().is_some_and(|runtime| {
            runtime
                .dirty
                .swap(false, std::sync::atomic::Ordering::AcqRel)
        });
        if changed {
            shared.save().await;
        }
    }
}

/// Takes the gateway's events until it stops.
async fn event_loop(shared: Arc<Shared>, mut events: mpsc::Receiver<AgentEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            AgentEvent::Results { agent, results } => on_results(&shared, &agent, results).await,
            AgentEvent::Gap {
                agent,
                first_seq,
                last_seq,
                reason,
                bundle_seq,
            } => {
                tracing::warn!(agent = %agent.agent_id, host = %agent.hostname, first_seq, last_seq, reason, bundle = bundle_seq, "An agent lost items; the gap is sealed as evidence.");
            }
            AgentEvent::Remediation {
                agent,
                outcome,
                bundle_seq,
            } => crate::agent_heal::on_outcome(&shared, &agent, outcome, bundle_seq).await,
            AgentEvent::Connected(agent) => {
                tracing::debug!(agent = %agent.agent_id, host = %agent.hostname, "Agent connected.");
            }
            AgentEvent::Disconnected(agent) => {
                tracing::debug!(agent = %agent.agent_id, host = %agent.hostname, "Agent disconnected.");
            }
        }
    }
}

/// The platform the device is filed under.
pub(crate) fn platform_of(agent: &AgentInfo) -> Platform {
    if agent.platform == "windows-x86_64" {
        Platform::WindowsWorkstation
    } else {
        Platform::Linux
    }
}

/// Results are filed under the host, evaluated like a scan of it, and failing checks go to L1.
async fn on_results(shared: &Arc<Shared>, agent: &AgentInfo, results: Vec<ReportedResult>) {
    let Some(runtime) = shared.agents.get() else {
        return;
    };
    let now = now();
    let fresh: Vec<String> = results.iter().map(|r| r.check_id.clone()).collect();
    let report = {
        let mut hosts = runtime.hosts();
        let host = hosts
            .entry(agent.hostname.clone())
            .or_insert_with(|| AgentHost {
                agent_id: agent.agent_id.clone(),
                platform: platform_of(agent),
                results: BTreeMap::new(),
                last_at: now,
            });
        host.agent_id.clone_from(&agent.agent_id);
        host.last_at = now;
        for result in results {
            host.results.insert(result.check_id.clone(), result);
        }
        report_of(&agent.hostname, host)
    };
    let catalog = &shared.settings.catalog;
    let device = derive::device(catalog, &report, None);
    let scores = derive::scores(&report);
    let events = derive::scan_events(catalog, &report);
    {
        let mut state = shared.state();
        state.scores.insert(device.name.clone(), scores);
        state.put_device(device);
        for (target, check, event) in events {
            state.ledger.apply(
                &target,
                &check,
                event,
                now,
                &shared.settings.incident_policy,
            );
        }
    }
    runtime
        .dirty
        .store(true, std::sync::atomic::Ordering::Release);
    crate::agent_heal::consider(shared, agent, &report, &fresh).await;
}

/// A host's newest results as a scan report, so derivations and L1 treat them like any scan.
pub(crate) fn report_of(hostname: &str, host: &AgentHost) -> scan::TargetReport {
    let time = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let observed: Vec<i64> = host
        .results
        .values()
        .map(|r| r.observed_at_unix_ms)
        .collect();
    let started = time(observed.iter().copied().min().unwrap_or_default());
    let finished = time(host.last_at.saturating_mul(1000));
    scan::TargetReport {
        target: Target {
            name: hostname.to_owned(),
            platform: host.platform,
            device_type: DeviceType::Workstation,
        },
        started,
        finished,
        carried: Default::default(),
        target_cpu: Default::default(),
        results: host
            .results
            .values()
            .map(|result| scan::CheckResult {
                runbook_id: result.check_id.clone(),
                outcome: outcome_of(&host.agent_id, result),
                elapsed: Duration::ZERO,
            })
            .collect(),
    }
}

fn outcome_of(agent_id: &str, result: &ReportedResult) -> CheckOutcome {
    let status = match result.status {
        "pass" => CheckStatus::Pass,
        "fail" => CheckStatus::Fail,
        "not_applicable" => CheckStatus::Skipped,
        _ => CheckStatus::Error,
    };
    let observed = serde_json::Value::Object(
        result
            .facts
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    CheckOutcome {
        status,
        observed,
        expected: String::new(),
        reason: format!(
            "reported by agent {agent_id} (sealed as bundle #{})",
            result.bundle_seq
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(hosts: &[(&str, i64)]) -> Runtime {
        Runtime {
            handle: GatewayHandle::default(),
            pin: agent_proto::CaPin::of(b"ca"),
            listen: "127.0.0.1:7443".parse().unwrap(),
            drafts: agent_gateway::DraftContext {
                site: "s".to_owned(),
                catalog: "c".to_owned(),
            },
            fresh_secs: 7_200,
            hosts: Mutex::new(
                hosts
                    .iter()
                    .map(|(name, at)| {
                        (
                            (*name).to_owned(),
                            AgentHost {
                                agent_id: format!("a-{name}"),
                                platform: Platform::WindowsWorkstation,
                                results: BTreeMap::new(),
                                last_at: *at,
                            },
                        )
                    })
                    .collect(),
            ),
            pending: crate::agent_heal::Pending::default(),
            releases: None,
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    #[test]
    fn a_workstation_with_a_fresh_agent_is_left_to_it_by_full_or_short_name() {
        let now = 100_000;
        let agents = runtime(&[
            ("ws-frontdesk", now - 60),
            ("ws-billing.clinic.local", now - 7_201),
        ]);
        // AD knows the DNS name; a Windows agent reports its short computer name.
        assert!(agents.covers("WS-FRONTDESK.clinic.local", now));
        assert!(agents.covers("ws-frontdesk", now));
        // Reported more than `fresh_minutes` ago: WinRM checks it again.
        assert!(!agents.covers("ws-billing.clinic.local", now));
        // Another machine whose name merely starts the same is not covered.
        assert!(!agents.covers("ws-front.clinic.local", now));
        assert!(!agents.covers("ws-reception.clinic.local", now));
    }
}

//! `osiris bench agents`: a real `osirisd` (built next to this binary) with its agent gateway on
//! loopback, driven over real mutual TLS by a load generator in this process: N agents enroll
//! (the first 100 at once), each opens its own TLS connection with its own client certificate and
//! keeps a `Connect` stream open, then signed results flow at a steady aggregate rate while every
//! result's time to its acknowledgement is measured, with `osirisd`'s memory and CPU from /proc.
//!
//! The generator is the agents' side of docs/AGENT-PROTOCOL.md, built like the daemon's own agent
//! test (`crates/daemon/tests/agents.rs`): an rcgen CSR for a P-256 TLS key, an Ed25519 device key
//! that signs every result, `Hello` first, heartbeats at the configured interval, sequence numbers
//! from 1 per agent, at most 256 items in flight.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_proto::v1::agent_gateway_client::AgentGatewayClient;
use agent_proto::v1::{
    AgentConfig, AgentMessage, CheckResult, CheckStatus, DeviceFacts, EnrollRequest, Heartbeat,
    Hello, Platform, agent_message, gateway_message,
};
use agent_proto::{ClientLimits, GATEWAY_TLS_NAME};
use anyhow::Context;
use ed25519_dalek::SigningKey;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentsBench {
    /// Agents enrolled and connected at once.
    pub(crate) n_agents: usize,
    /// Results per second, all agents together.
    pub(crate) rate: u32,
    /// How long the steady load lasts.
    pub(crate) secs: u64,
}

/// Agents that enroll at the same moment (the target: ≤ 5 s for 100).
const ENROLL_BURST: usize = 100;

/// Enrollments in flight after the burst.
const ENROLL_IN_FLIGHT: usize = 100;

/// Connections being set up at once (TCP + TLS handshake + `Hello` + first `Ack`).
const CONNECT_IN_FLIGHT: usize = 256;

/// File descriptors beyond one per agent (the store, the runtime, the log, enrollments in flight).
const SPARE_FDS: u64 = 1_024;

/// How long acknowledgements may take to arrive after the last result was sent.
const DRAIN_WITHIN: Duration = Duration::from_secs(60);

/// Error messages kept for the report (all are counted).
const ERRORS_KEPT: usize = 5;

/// Runs the benchmark; returns the report.
pub(crate) fn run(cfg: AgentsBench) -> anyhow::Result<String> {
    anyhow::ensure!(cfg.n_agents >= 1, "--agents must be at least 1");
    anyhow::ensure!(cfg.rate >= 1, "--rate must be at least 1");
    let osirisd = std::env::current_exe()
        .context("locating this binary")?
        .with_file_name("osirisd");
    anyhow::ensure!(
        osirisd.exists(),
        "{} is missing: build it first (cargo build --release -p daemon -p cli)",
        osirisd.display()
    );
    // Raised before osirisd starts, so it inherits the same limit.
    let fd_limit = raise_fd_limit(cfg.n_agents as u64 + SPARE_FDS)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = write_config(dir.path())?;
    let socket = dir.path().join("api.sock");
    let log_path = dir.path().join("osirisd.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let child = Command::new(&osirisd)
        .args(["--config", config.to_str().unwrap_or_default()])
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", osirisd.display()))?;
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    progress(format_args!(
        "osirisd started (pid {pid}), log in {}",
        log_path.display()
    ));
    let res = measure(cfg, pid, dir.path(), &socket, fd_limit);
    daemon.stop();
    res.map_err(|err| err.context(log_tail(&log_path)))
}

/// The whole measurement against the running daemon `pid`.
fn measure(
    cfg: AgentsBench,
    pid: u32,
    dir: &Path,
    socket: &Path,
    fd_limit: u64,
) -> anyhow::Result<String> {
    let client = api::Client::new(socket).with_timeout(Duration::from_secs(60));
    // The API may answer a moment before the gateway listens.
    let mut gateway = None;
    wait(Duration::from_secs(30), || {
        gateway = client
            .call(&api::endpoint::Agents, &())
            .ok()
            .and_then(|agents| agents.gateway);
        gateway.is_some()
    })
    .context("osirisd did not report its agent gateway within 30 s")?;
    let gateway = gateway.context("osirisd runs no agent gateway")?;
    let ca_der = std::fs::read(dir.join("data/agents/ca.der")).context("reading the agent CA")?;
    let tokens = tokens(&client, cfg.n_agents)?;
    let sampler = Sampler::start(pid);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let target = Target {
        uri: format!("https://{gateway}"),
        ca: Certificate::from_pem(pem(&ca_der)),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "agents: osirisd (pid {pid}) with its gateway on {gateway}, real mutual TLS on loopback; {} agents, {} results/s for {} s; file descriptor limit {fd_limit} (this process and osirisd)",
        cfg.n_agents, cfg.rate, cfg.secs
    );

    // Keys and requests are made before any clock runs: an agent makes them before it enrolls.
    progress(format_args!(
        "making {} TLS keys, CSRs and device keys",
        cfg.n_agents
    ));
    let started = Instant::now();
    let prepared: Vec<Prepared> = (0..cfg.n_agents)
        .map(Prepared::new)
        .collect::<anyhow::Result<_>>()?;
    let keys_took = started.elapsed();

    let cpu_enroll = proc_cpu(pid)?;
    let enrolled = runtime.block_on(enroll_all(&target, prepared, &tokens))?;
    let cpu_enrolled = proc_cpu(pid)?;
    let _ = writeln!(
        out,
        "enrollment: {} at once in {:.2} s (target ≤ 5 s); the other {} at {} in flight in {:.1} s = {:.0} enrollments/s; {} refused or failed{}; osirisd {:.1} CPU-s",
        enrolled.burst,
        enrolled.burst_took.as_secs_f64(),
        enrolled.rest,
        ENROLL_IN_FLIGHT,
        enrolled.rest_took.as_secs_f64(),
        enrolled.rest as f64 / enrolled.rest_took.as_secs_f64().max(1e-9),
        enrolled.errors.count(),
        enrolled.errors.first(),
        cpu_enrolled - cpu_enroll,
    );
    anyhow::ensure!(
        !enrolled.agents.is_empty(),
        "no agent enrolled{}",
        enrolled.errors.first()
    );

    let errors = Arc::new(Errors::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect_started = Instant::now();
    let cpu_connect = proc_cpu(pid)?;
    let connected = runtime.block_on(connect_all(&target, enrolled.agents, &errors, &stop_rx));
    let connect_took = connect_started.elapsed();
    let cpu_connected = proc_cpu(pid)?;
    let rss_connected = proc_memory(pid)?.rss;
    let daemon_view = client
        .call(&api::endpoint::Agents, &())
        .context("listing agents")?;
    let open_per_daemon = daemon_view.agents.iter().filter(|a| a.connected).count();
    let _ = writeln!(
        out,
        "connections: {} of {} agents connected (each its own TLS connection and Connect stream, {} set up at once) in {:.1} s = {:.0}/s; osirisd says {open_per_daemon} connected; {} failed{}; osirisd {:.1} CPU-s, RSS {} with all connected",
        connected.len(),
        cfg.n_agents,
        CONNECT_IN_FLIGHT,
        connect_took.as_secs_f64(),
        connected.len() as f64 / connect_took.as_secs_f64().max(1e-9),
        errors.count(),
        errors.first(),
        cpu_connected - cpu_connect,
        mib(rss_connected),
    );
    anyhow::ensure!(!connected.is_empty(), "no agent could connect");
    let connect_errors = errors.count();

    // Steady load.
    let bundles_before = client.status().context("status")?.evidence.bundles;
    let self_cpu0 = proc_cpu(std::process::id())?;
    let cpu_load = proc_cpu(pid)?;
    sampler.reset_peak();
    let load_started = Instant::now();
    let load = runtime.block_on(steady_load(&connected, cfg.rate, cfg.secs));
    let drained = runtime.block_on(drain(&connected, DRAIN_WITHIN));
    let load_took = load_started.elapsed();
    let cpu_loaded = proc_cpu(pid)?;
    let self_cpu1 = proc_cpu(std::process::id())?;
    let rss_load_peak = sampler.peak();
    let memory = proc_memory(pid)?;
    let load_secs = load.sending.as_secs_f64();
    let cpu_percent = (cpu_loaded - cpu_load) / load_took.as_secs_f64() * 100.0;

    let mut timed: Vec<(Instant, Duration)> = Vec::new();
    let mut tally = Tally::default();
    for agent in &connected {
        let mut flight = agent.flight();
        timed.append(&mut flight.latencies);
        tally.acked += flight.n_acked;
        tally.pending += flight.pending.len() as u64;
        tally.backwards += flight.backwards;
        tally.beyond += flight.beyond;
        tally.repeated += flight.repeated;
        tally.ended += u64::from(flight.ended);
    }
    let windows = by_window(
        &timed,
        load_started,
        Duration::from_secs(10),
        cfg.secs.div_ceil(10) as usize,
    );
    let mut latencies: Vec<Duration> = timed.iter().map(|&(_, latency)| latency).collect();
    latencies.sort();
    let status = client.status().context("status after the load")?;
    let daemon_view = client
        .call(&api::endpoint::Agents, &())
        .context("listing agents")?;
    let stored: u64 = daemon_view.agents.iter().map(|a| a.stored_seq).sum();
    let bundles = status.evidence.bundles - bundles_before;
    let pct = |p: f64| -> f64 {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let _ = writeln!(
        out,
        "load: {} results sent in {load_secs:.1} s = {:.0}/s aggregate (target 1,000/s), each signed by its agent's device key, over {} connections; {} held back (256 in flight){}",
        load.sent,
        load.sent as f64 / load_secs.max(1e-9),
        connected.len(),
        load.held_back,
        if load.behind > 0 {
            format!(
                "; the sender fell behind its schedule by up to {:.0} ms",
                load.behind as f64
            )
        } else {
            String::new()
        },
    );
    let _ = writeln!(
        out,
        "result → acknowledgement: p50 {:.1} ms, p99 {:.1} ms (target ≤ 100), max {:.1} ms over {} acknowledged results{}; p50/p99 by 10 s of sending: {windows}",
        pct(0.50),
        pct(0.99),
        latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        latencies.len(),
        if tally.pending > 0 {
            format!(
                " ({} never acknowledged are not in these figures)",
                tally.pending
            )
        } else {
            String::new()
        },
    );
    let exactly_once = tally.acked == load.sent
        && tally.pending == 0
        && tally.backwards == 0
        && tally.beyond == 0
        && stored == load.sent;
    let _ = writeln!(
        out,
        "acknowledgements: {} of {} results acknowledged{}, {} still unacknowledged after {} s, {} acks went backwards, {} acknowledged unsent items, {} repeated; osirisd's registry holds {stored} stored items{}; {}",
        tally.acked,
        load.sent,
        if exactly_once { " exactly once" } else { "" },
        tally.pending,
        DRAIN_WITHIN.as_secs(),
        tally.backwards,
        tally.beyond,
        tally.repeated,
        if stored == load.sent {
            " (= sent)"
        } else {
            " (≠ sent)"
        },
        if drained {
            "all drained"
        } else {
            "NOT all drained"
        },
    );
    let _ = writeln!(
        out,
        "streams: {} ended during the load, {} errors after connecting{}",
        tally.ended,
        errors.count() - connect_errors,
        errors.first(),
    );
    let _ = writeln!(
        out,
        "osirisd: peak RSS {} (VmHWM over the whole run; target ≤ 1 GiB), {} peak during the load, {} at the end; CPU {cpu_percent:.0} % of one core during the load ({:.1} CPU-s over {:.1} s, {:.2} CPU-ms per result)",
        mib(memory.hwm),
        mib(rss_load_peak),
        mib(memory.rss),
        cpu_loaded - cpu_load,
        load_took.as_secs_f64(),
        (cpu_loaded - cpu_load) * 1e3 / (load.sent as f64).max(1.0),
    );
    let _ = writeln!(
        out,
        "evidence: {bundles} bundles sealed during the load ({} in the store); devices known to osirisd: {}",
        status.evidence.bundles, status.devices.total,
    );
    let generator = proc_memory(std::process::id())?;
    let _ = write!(
        out,
        "generator (this process, not the appliance): peak RSS {}, {:.0} % of one core during the load; keys for {} agents made in {:.1} s; machine: {} cores shared by osirisd and the generator",
        mib(generator.hwm),
        (self_cpu1 - self_cpu0) / load_took.as_secs_f64() * 100.0,
        cfg.n_agents,
        keys_took.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );

    let _ = stop_tx.send(true);
    drop(connected);
    runtime.shutdown_timeout(Duration::from_secs(5));
    sampler.stop();
    Ok(out)
}

struct Daemon(Child);

impl Daemon {
    /// SIGTERM, a few seconds to close the store, then SIGKILL.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway as the agents reach it.
struct Target {
    uri: String,
    ca: Certificate,
}

impl Target {
    /// A new TLS connection of its own (no sharing between agents), optionally with a client
    /// certificate.
    async fn channel(&self, identity: Option<Identity>) -> anyhow::Result<Channel> {
        // `agent_proto::endpoint`'s connect timeout covers TCP only; the handshake has its own.
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .domain_name(GATEWAY_TLS_NAME)
            .timeout(ClientLimits::STANDARD.connect_timeout);
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        let channel = agent_proto::endpoint(&self.uri, &ClientLimits::STANDARD)?
            .tls_config(tls)?
            .connect()
            .await
            .map_err(|err| anyhow::anyhow!("{}", error_chain(&err)))?;
        Ok(channel)
    }
}

/// An agent before enrollment: what it makes on its own device.
struct Prepared {
    hostname: String,
    tls_key: KeyPair,
    csr_der: Vec<u8>,
    device: SigningKey,
}

impl Prepared {
    fn new(n: usize) -> anyhow::Result<Self> {
        let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("making a TLS key")?;
        let csr_der = CertificateParams::default()
            .serialize_request(&tls_key)
            .context("making a certificate request")?
            .der()
            .to_vec();
        Ok(Self {
            hostname: format!("bench-{n:05}"),
            tls_key,
            csr_der,
            device: SigningKey::from_bytes(&rand::random()),
        })
    }

    async fn enroll(self, target: &Target, token: &str) -> anyhow::Result<Enrolled> {
        let mut client = agent_proto::gateway_client(target.channel(None).await?);
        let response = client
            .enroll(EnrollRequest {
                token: token.to_owned(),
                csr_der: self.csr_der,
                device_public_key: self.device.verifying_key().to_bytes().to_vec(),
                device: Some(DeviceFacts {
                    hostname: self.hostname,
                    os: "Debian GNU/Linux".to_owned(),
                    os_version: "12".to_owned(),
                    agent_version: "0.1.0".to_owned(),
                    platform: Platform::LinuxX8664 as i32,
                }),
            })
            .await
            .map_err(|status| anyhow::anyhow!("Enroll: {:?}: {}", status.code(), status.message()))?
            .into_inner();
        let chain: String = response
            .certificate_chain_der
            .iter()
            .map(|der| pem(der))
            .collect();
        let config = response.config.context("EnrollResponse without a config")?;
        anyhow::ensure!(!config.checks.is_empty(), "the configuration has no checks");
        Ok(Enrolled {
            agent_id: response.agent_id,
            identity: Identity::from_pem(chain, self.tls_key.serialize_pem()),
            device: self.device,
            config,
        })
    }
}

/// An enrolled agent.
struct Enrolled {
    agent_id: String,
    identity: Identity,
    device: SigningKey,
    config: AgentConfig,
}

struct Enrollment {
    agents: Vec<Enrolled>,
    burst: usize,
    burst_took: Duration,
    rest: usize,
    rest_took: Duration,
    errors: Errors,
}

/// One token per 10,000 agents (the most one token allows).
fn tokens(client: &api::Client, n_agents: usize) -> anyhow::Result<Vec<String>> {
    const MAX_USES: usize = 10_000;
    let mut tokens = Vec::new();
    let mut left = n_agents;
    while left > 0 {
        let uses = left.min(MAX_USES);
        let token = client
            .call(
                &api::endpoint::CreateAgentToken,
                &api::AgentTokenRequest {
                    uses: u32::try_from(uses).unwrap_or(u32::MAX),
                    expires_secs: 6 * 3600,
                    by: "osiris bench agents".to_owned(),
                },
            )
            .context("creating an enrollment token")?;
        tokens.extend(std::iter::repeat_n(token.token, uses));
        left -= uses;
    }
    Ok(tokens)
}

/// Enrolls the first [`ENROLL_BURST`] agents at the same moment, then the rest with
/// [`ENROLL_IN_FLIGHT`] at a time; each enrollment on its own new TLS connection.
async fn enroll_all(
    target: &Target,
    prepared: Vec<Prepared>,
    tokens: &[String],
) -> anyhow::Result<Enrollment> {
    let target = Arc::new(Target {
        uri: target.uri.clone(),
        ca: target.ca.clone(),
    });
    let n_agents = prepared.len();
    let mut agents = Vec::with_capacity(n_agents);
    let errors = Errors::default();
    let mut prepared = prepared.into_iter().zip(tokens.iter().cloned());

    let burst: Vec<(Prepared, String)> = prepared.by_ref().take(ENROLL_BURST).collect();
    let n_burst = burst.len();
    progress(format_args!("enrolling {n_burst} agents at once"));
    let (go_tx, go_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (agent, token) in burst {
        let target = Arc::clone(&target);
        let mut go = go_rx.clone();
        tasks.spawn(async move {
            let _ = go.wait_for(|go| *go).await;
            agent.enroll(&target, &token).await
        });
    }
    // Every task is waiting at the start line; release them together.
    tokio::task::yield_now().await;
    let started = Instant::now();
    let _ = go_tx.send(true);
    while let Some(joined) = tasks.join_next().await {
        match joined.context("an enrollment task failed")? {
            Ok(agent) => agents.push(agent),
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    let burst_took = started.elapsed();

    let rest = n_agents - n_burst;
    progress(format_args!("enrolling the other {rest} agents"));
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(ENROLL_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut done = 0usize;
    for (agent, token) in prepared {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .context("the semaphore closed")?;
        let target = Arc::clone(&target);
        tasks.spawn(async move {
            let res = agent.enroll(&target, &token).await;
            drop(permit);
            res
        });
        while let Some(joined) = tasks.try_join_next() {
            collect(joined, &mut agents, &errors, &mut done, rest)?;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, &mut agents, &errors, &mut done, rest)?;
    }
    Ok(Enrollment {
        agents,
        burst: n_burst,
        burst_took,
        rest,
        rest_took: started.elapsed(),
        errors,
    })
}

fn collect(
    joined: Result<anyhow::Result<Enrolled>, tokio::task::JoinError>,
    agents: &mut Vec<Enrolled>,
    errors: &Errors,
    done: &mut usize,
    rest: usize,
) -> anyhow::Result<()> {
    match joined.context("an enrollment task failed")? {
        Ok(agent) => agents.push(agent),
        Err(err) => errors.push(format!("{err:#}")),
    }
    *done += 1;
    if (*done).is_multiple_of(1_000) {
        progress(format_args!("enrolled {done} of {rest}"));
    }
    Ok(())
}

/// A connected agent: its stream, its device key, what it has in flight.
struct Live {
    agent_id: String,
    device: SigningKey,
    checks: Vec<String>,
    catalog: String,
    outbound: mpsc::Sender<AgentMessage>,
    state: Mutex<Flight>,
}

/// One agent's items in flight and what its acknowledgements said.
#[derive(Default)]
struct Flight {
    /// The last sequence number sent.
    sent: u64,
    /// The highest acknowledgement.
    acked: u64,
    /// Sent and not acknowledged yet: sequence number and when it was handed to the stream.
    pending: VecDeque<(u64, Instant)>,
    /// When each acknowledged result was sent, and how long its acknowledgement took.
    latencies: Vec<(Instant, Duration)>,
    /// Results acknowledged (each counted once, by the first acknowledgement covering it).
    n_acked: u64,
    /// Acknowledgements lower than an earlier one.
    backwards: u64,
    /// Acknowledgements of numbers never sent.
    beyond: u64,
    /// Acknowledgements that acknowledged nothing new.
    repeated: u64,
    /// The stream ended before the benchmark did.
    ended: bool,
}

impl Live {
    fn flight(&self) -> std::sync::MutexGuard<'_, Flight> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the agent's next result, signed by its device key. `false` when 256 are in flight.
    fn send_result(&self) -> bool {
        let mut flight = self.flight();
        if flight.ended || flight.sent - flight.acked >= agent_proto::limits::MAX_ITEMS_IN_FLIGHT {
            return false;
        }
        let seq = flight.sent + 1;
        let check_id = self.checks[(seq as usize) % self.checks.len()].clone();
        let mut result = CheckResult {
            seq,
            check_id,
            status: CheckStatus::Pass as i32,
            facts: [
                ("observed".to_owned(), format!("run {seq}")),
                ("source".to_owned(), "osiris bench agents".to_owned()),
            ]
            .into(),
            observed_at_unix_ms: now_ms(),
            catalog_version: self.catalog.clone(),
            signature: Vec::new(),
        };
        result.signature = agent_proto::sign_result(&self.device, &result).to_vec();
        let message = AgentMessage {
            kind: Some(agent_message::Kind::Result(result)),
        };
        // Timed from the moment the agent hands the result to its stream.
        flight.pending.push_back((seq, Instant::now()));
        flight.sent = seq;
        if self.outbound.try_send(message).is_err() {
            flight.pending.pop_back();
            flight.sent = seq - 1;
            return false;
        }
        true
    }

    fn on_ack(&self, up_to: u64) {
        let now = Instant::now();
        let mut flight = self.flight();
        if up_to < flight.acked {
            flight.backwards += 1;
            return;
        }
        if up_to > flight.sent {
            flight.beyond += 1;
        }
        if up_to == flight.acked {
            flight.repeated += 1;
            return;
        }
        flight.acked = up_to;
        while let Some(&(seq, sent_at)) = flight.pending.front() {
            if seq > up_to {
                break;
            }
            flight.pending.pop_front();
            flight.latencies.push((sent_at, now - sent_at));
            flight.n_acked += 1;
        }
    }

    fn heartbeat(&self) -> AgentMessage {
        let flight = self.flight();
        AgentMessage {
            kind: Some(agent_message::Kind::Heartbeat(Heartbeat {
                newest_seq: flight.sent,
                queue_items: flight.pending.len() as u64,
                queue_bytes: 0,
                oldest_queued_age_seconds: flight.pending.front().map_or(0, |(_, at)| {
                    u32::try_from(at.elapsed().as_secs()).unwrap_or(u32::MAX)
                }),
                sent_at_unix_ms: now_ms(),
            })),
        }
    }
}

/// Connects every enrolled agent ([`CONNECT_IN_FLIGHT`] at a time) and keeps its stream read.
async fn connect_all(
    target: &Target,
    enrolled: Vec<Enrolled>,
    errors: &Arc<Errors>,
    stop: &watch::Receiver<bool>,
) -> Vec<Arc<Live>> {
    let target = Arc::new(Target {
        uri: target.uri.clone(),
        ca: target.ca.clone(),
    });
    let total = enrolled.len();
    progress(format_args!("connecting {total} agents"));
    let permits = Arc::new(Semaphore::new(CONNECT_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut live = Vec::with_capacity(total);
    let handle = |joined: Result<anyhow::Result<Arc<Live>>, tokio::task::JoinError>,
                  live: &mut Vec<Arc<Live>>| {
        match joined {
            Ok(Ok(agent)) => live.push(agent),
            Ok(Err(err)) => errors.push(format!("{err:#}")),
            Err(err) => errors.push(format!("a connecting task failed: {err}")),
        }
        let done = live.len() + errors.count() as usize;
        if done.is_multiple_of(1_000) {
            progress(format_args!(
                "{} connected, {} failed",
                live.len(),
                errors.count()
            ));
        }
    };
    for agent in enrolled {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let target = Arc::clone(&target);
        let errors = Arc::clone(errors);
        let stop = stop.clone();
        tasks.spawn(async move {
            let res = connect(&target, agent, errors, stop).await;
            drop(permit);
            res
        });
        while let Some(joined) = tasks.try_join_next() {
            handle(joined, &mut live);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        handle(joined, &mut live);
    }
    live
}

/// Opens the agent's own connection and stream, sends `Hello`, waits for the first `Ack`, then
/// leaves a task reading the stream and sending heartbeats.
async fn connect(
    target: &Target,
    agent: Enrolled,
    errors: Arc<Errors>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<Live>> {
    let Enrolled {
        agent_id,
        identity,
        device,
        config,
    } = agent;
    let mut client: AgentGatewayClient<Channel> =
        agent_proto::gateway_client(target.channel(Some(identity)).await?);
    let (outbound, rx) = mpsc::channel(agent_proto::limits::MAX_ITEMS_IN_FLIGHT as usize + 64);
    outbound
        .send(AgentMessage {
            kind: Some(agent_message::Kind::Hello(Hello {
                agent_id: agent_id.clone(),
                agent_version: "0.1.0".to_owned(),
                last_acked_seq: 0,
                protocol_version: 1,
                config_revision: config.revision,
            })),
        })
        .await
        .context("queueing Hello")?;
    let mut inbound = client
        .connect(ReceiverStream::new(rx))
        .await
        .map_err(|status| anyhow::anyhow!("Connect: {:?}: {}", status.code(), status.message()))?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(30), inbound.message())
        .await
        .context("no Ack within 30 s of Hello")?
        .map_err(|status| anyhow::anyhow!("Connect: {:?}: {}", status.code(), status.message()))?
        .context("the stream ended before the first Ack")?;
    match first.kind {
        Some(gateway_message::Kind::Ack(ack)) if ack.up_to_seq == 0 => {}
        other => anyhow::bail!("expected Ack 0 first, got {other:?}"),
    }
    let heartbeat_every = Duration::from_secs(u64::from(config.heartbeat_interval_seconds));
    let live = Arc::new(Live {
        agent_id,
        device,
        checks: config.checks.iter().map(|c| c.check_id.clone()).collect(),
        catalog: "osiris-bench".to_owned(),
        outbound,
        state: Mutex::new(Flight::default()),
    });
    let reader = Arc::clone(&live);
    tokio::spawn(async move {
        // The client keeps the connection; the first heartbeat comes at a random point of the
        // interval, so 10,000 agents do not beat in step.
        let _client = client;
        let offset = Duration::from_millis(
            rand::random::<u64>() % u64::try_from(heartbeat_every.as_millis()).unwrap_or(60_000),
        );
        let mut beat =
            tokio::time::interval_at(tokio::time::Instant::now() + offset, heartbeat_every);
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                _ = beat.tick() => {
                    let _ = reader.outbound.try_send(reader.heartbeat());
                }
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        if let Some(gateway_message::Kind::Ack(ack)) = message.kind {
                            reader.on_ack(ack.up_to_seq);
                        }
                    }
                    Ok(None) => {
                        errors.push(format!("agent {}: the gateway ended the stream", reader.agent_id));
                        reader.flight().ended = true;
                        break;
                    }
                    Err(status) => {
                        errors.push(format!("agent {}: {:?}: {}", reader.agent_id, status.code(), status.message()));
                        reader.flight().ended = true;
                        break;
                    }
                },
            }
        }
    });
    Ok(live)
}

struct Load {
    sent: u64,
    held_back: u64,
    /// The most milliseconds the sender was behind its schedule.
    behind: u64,
    sending: Duration,
}

/// Sends `rate` results per second, round-robin over the agents, for `secs` seconds.
async fn steady_load(agents: &[Arc<Live>], rate: u32, secs: u64) -> Load {
    progress(format_args!(
        "sending {rate} results/s over {} agents for {secs} s",
        agents.len()
    ));
    let total = u64::from(rate) * secs;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut load = Load {
        sent: 0,
        held_back: 0,
        behind: 0,
        sending: Duration::ZERO,
    };
    let mut attempts = 0u64;
    let mut reported = 0u64;
    let mut next = 0usize;
    while attempts < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64).min(total);
        if due > attempts + u64::from(rate) / 100 {
            // More than 10 ms of results are due at once: the sender itself is late.
            let late_ms = (due - attempts) * 1_000 / u64::from(rate);
            load.behind = load.behind.max(late_ms);
        }
        while attempts < due {
            if agents[next % agents.len()].send_result() {
                load.sent += 1;
            } else {
                load.held_back += 1;
            }
            next += 1;
            attempts += 1;
        }
        if attempts >= reported + u64::from(rate) * 10 && attempts < total {
            reported = attempts;
            progress(format_args!("{attempts} of {total} results sent"));
        }
    }
    load.sending = started.elapsed();
    load
}

/// Waits until every result sent is acknowledged (or a stream ended), at most `within`; `true`
/// when nothing is left in flight.
async fn drain(agents: &[Arc<Live>], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left: usize = agents
            .iter()
            .map(|agent| {
                let flight = agent.flight();
                if flight.ended {
                    0
                } else {
                    flight.pending.len()
                }
            })
            .sum();
        if left == 0 {
            return agents.iter().all(|agent| agent.flight().pending.is_empty());
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// p50/p99 of the latencies of results sent in each `window` from `start`, in milliseconds.
fn by_window(
    timed: &[(Instant, Duration)],
    start: Instant,
    window: Duration,
    n_windows: usize,
) -> String {
    let last = n_windows.max(1) - 1;
    let mut windows: Vec<Vec<Duration>> = vec![Vec::new(); last + 1];
    for &(sent_at, latency) in timed {
        // The last few milliseconds of sending count to the last window.
        let n = (sent_at.saturating_duration_since(start).as_secs_f64() / window.as_secs_f64())
            as usize;
        windows[n.min(last)].push(latency);
    }
    let parts: Vec<String> = windows
        .iter_mut()
        .map(|latencies| {
            latencies.sort();
            let pct = |p: f64| {
                latencies
                    .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
            };
            if latencies.is_empty() {
                "none acknowledged".to_owned()
            } else {
                format!("{:.0}/{:.0}", pct(0.50), pct(0.99))
            }
        })
        .collect();
    format!("{} ms", parts.join(", "))
}

#[derive(Default)]
struct Tally {
    acked: u64,
    pending: u64,
    backwards: u64,
    beyond: u64,
    repeated: u64,
    ended: u64,
}

/// Errors counted, the first few kept.
#[derive(Default)]
struct Errors {
    count: AtomicU64,
    kept: Mutex<Vec<String>>,
}

impl Errors {
    fn push(&self, message: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < ERRORS_KEPT {
            kept.push(message);
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// ` (first: …)` when there were errors.
    fn first(&self) -> String {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match kept.first() {
            Some(first) => format!(" (first: {first})"),
            None => String::new(),
        }
    }
}

/// Samples `osirisd`'s resident memory every 200 ms, keeping the peak.
struct Sampler {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let peak = Arc::clone(&peak);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Ok(memory) = proc_memory(pid) {
                        peak.fetch_max(memory.rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Self { peak, done, thread }
    }

    fn reset_peak(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

struct Memory {
    rss: u64,
    hwm: u64,
}

/// Resident and peak resident bytes of `pid`, from /proc.
fn proc_memory(pid: u32) -> anyhow::Result<Memory> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_default()
            * 1024
    };
    Ok(Memory {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    })
}

/// CPU seconds `pid` has used (user + system), from /proc.
fn proc_cpu(pid: u32) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: utime and stime are the 12th and 13th fields.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or_default();
    Ok(ticks / 100.0)
}

/// Raises this process's open-file limit to at least `needed` (children inherit it); the limit
/// now in force.
fn raise_fd_limit(needed: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return Ok(current);
    }
    // Up to the hard limit, or beyond it when this process may (root).
    let wanted = if hard >= needed { hard } else { needed };
    let set = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: Some(hard.max(wanted)),
        },
    );
    match set {
        Ok(()) => Ok(wanted),
        Err(err) => anyhow::bail!(
            "{needed} open files are needed (one connection per agent, here and in osirisd, plus {SPARE_FDS}) but the limit is {current} (hard limit {hard}) and could not be raised: {err}; raise it (`ulimit -n {needed}` as root, or LimitNOFILE) or run fewer agents (--agents)"
        ),
    }
}

/// The configuration: no targets, the gateway on a loopback port chosen by the kernel,
/// enrollment limits high enough for thousands of agents from one loopback address.
fn write_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let text = format!(
        "site = \"bench\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:0\"\nenroll_per_minute = 100000\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
        dir.join("data").display(),
        dir.join("api.sock").display()
    );
    let path = dir.join("appliance.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The last lines of osirisd's log, for an error.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    format!("osirisd's log ended with:\n{tail}")
}

/// A DER certificate as PEM.
fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A progress line on stderr (the report goes to stdout at the end).
fn progress(what: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "bench agents: {what}");
}

//! What the agent's tests share: a test gateway built from `agent_proto`'s generated server over
//! real mutual TLS on loopback, and a handle on the real `osiris-agent` binary run as a
//! subprocess with its own state directory.
//!
//! The gateway honours the contract the real one must (docs/AGENT-PROTOCOL.md and the "Agent"
//! section there): its certificate carries only `agent_proto::GATEWAY_TLS_NAME` and comes with
//! the chain `[leaf, agent CA]`; one-time tokens, used up only by a successful enrollment; a
//! client certificate for the request's key; `Ack` of the highest stored number then the
//! configuration after `Hello`; results verified with the device key; deduplication by sequence
//! number; a `Gap` stands for its numbers. It keeps everything in memory and records what it
//! received so the tests can check order and exactly-once delivery.
//!
//! Pointing these tests at osirisd's gateway needs the same operations from it: create a token,
//! the CA pin and address, the stored items of an agent (with their device key), and for the
//! fault tests: drop an agent's stream, push a message to an agent, stop and start the gateway
//! on the same address, and hold acknowledgements. Those are the methods of [`ToyGateway`] and
//! [`RunningGateway`].

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err,
    clippy::print_stderr,
    reason = "test helpers shared by several test crates, each using some of them; a failing test prints the agent's log"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_proto::v1::agent_gateway_server::AgentGateway;
use agent_proto::v1::{
    Ack, AgentConfig, AgentMessage, CheckSchedule, EnrollRequest, EnrollResponse, GatewayMessage,
    Heartbeat, Hello, QueueLimits, agent_message, gateway_message,
};
use agent_proto::{ServerLimits, Validate};
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Identity;
use tonic::{Request, Response, Status, Streaming};

/// How long a test waits for something the agent should do.
pub const WAIT: Duration = Duration::from_secs(60);

/// The checks the tests configure: quick Linux detect scripts that run on any test machine.
pub const TEST_CHECKS: [&str; 3] = ["LIN-SSH-001", "LIN-ACCT-001", "LIN-DISK-001"];

/// DER as PEM with the given label.
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An agent CA (ECDSA P-256).
pub struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { key, params, der }
    }

    /// The pin an operator types.
    pub fn pin(&self) -> String {
        agent_proto::CaPin::of(&self.der).to_string()
    }

    /// The gateway's identity: a certificate for `names` only, presented with the CA after it.
    pub fn server_identity(&self, names: &[&str]) -> Identity {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let chain = format!("{}{}", cert.pem(), pem("CERTIFICATE", &self.der));
        Identity::from_pem(chain, key.serialize_pem())
    }

    /// A client certificate for `agent_id` over `public_key`.
    pub fn client_certificate(
        &self,
        public_key: &impl PublicKeyData,
        agent_id: &str,
    ) -> Result<Vec<u8>, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(public_key, &Issuer::from_params(&self.params, &self.key))?;
        Ok(cert.der().to_vec())
    }
}

/// A configuration with `checks` run every hour with no jitter (so they run at once when the
/// agent starts), heartbeats every 10 s (the protocol's shortest) and generous queue bounds.
pub fn config(revision: u64, checks: &[&str]) -> AgentConfig {
    AgentConfig {
        revision,
        checks: checks
            .iter()
            .map(|check_id| CheckSchedule {
                check_id: (*check_id).to_owned(),
                interval_seconds: 3600,
                jitter_seconds: 0,
            })
            .collect(),
        heartbeat_interval_seconds: 10,
        full_report_interval_seconds: 86_400,
        queue: Some(QueueLimits {
            max_items: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_age_seconds: 30 * 86_400,
        }),
        protocol_version: agent_proto::limits::PROTOCOL_VERSION,
    }
}

/// How the gateway treats sequenced items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Store and acknowledge each (the contract).
    Normal,
    /// Record them as received, store nothing, acknowledge nothing (a gateway that is slow to
    /// commit; the agent must keep them and resend them after a reconnect).
    Hold,
    /// Store them but send no `Ack` (acknowledgements lost in flight).
    StoreSilently,
}

/// One enrolled agent.
#[derive(Clone)]
pub struct EnrolledAgent {
    pub agent_id: String,
    pub device_key: VerifyingKey,
    /// The agent's TLS public key, from its request.
    pub tls_key: rcgen::PublicKey,
    /// Every certificate issued to it (enrollment, renewals).
    pub certificates: Vec<Vec<u8>>,
}

/// A sequenced message as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    /// The connection it came on (from 1).
    pub connection: u64,
    /// Its sequence number (a gap's last).
    pub seq: u64,
    pub message: AgentMessage,
}

/// What the gateway holds; tests read and steer it.
pub struct GatewayState {
    pub tokens: HashSet<String>,
    pub enroll_calls: u64,
    pub agents: Vec<EnrolledAgent>,
    /// The configuration sent after every Hello.
    pub config: AgentConfig,
    pub mode: AckMode,
    /// Stored sequenced items per agent, by sequence number (a gap under its last).
    pub stored: HashMap<String, BTreeMap<u64, AgentMessage>>,
    /// Every sequenced message received, in order.
    pub received: Vec<Received>,
    pub hellos: Vec<Hello>,
    pub heartbeats: Vec<Heartbeat>,
    /// Items received again after they were stored.
    pub duplicates: u64,
    /// Connect streams opened, and the client certificate each presented.
    pub connections: Vec<Vec<u8>>,
    /// How each stream ended (`None`: the agent closed it).
    pub stream_ends: Vec<Option<Status>>,
}

impl GatewayState {
    /// The highest stored sequence number of `agent_id` (every number below is stored too).
    pub fn acked(&self, agent_id: &str) -> u64 {
        self.stored
            .get(agent_id)
            .and_then(|items| items.keys().next_back().copied())
            .unwrap_or(0)
    }

    /// The stored items of the (only) agent.
    pub fn items(&self) -> BTreeMap<u64, AgentMessage> {
        self.stored.values().next().cloned().unwrap_or_default()
    }
}

type Outbound = mpsc::Sender<Result<GatewayMessage, Status>>;

/// A connected agent's stream, as the gateway holds it.
#[derive(Clone)]
struct Connected {
    tx: Outbound,
    drop: Arc<Notify>,
}

/// The test gateway.
#[derive(Clone)]
pub struct ToyGateway {
    pub state: Arc<Mutex<GatewayState>>,
    pub ca: Arc<TestCa>,
    connected: Arc<Mutex<HashMap<String, Connected>>>,
}

impl ToyGateway {
    pub fn new(tokens: &[&str], config: AgentConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(GatewayState {
                tokens: tokens.iter().map(|token| (*token).to_owned()).collect(),
                enroll_calls: 0,
                agents: Vec::new(),
                config,
                mode: AckMode::Normal,
                stored: HashMap::new(),
                received: Vec::new(),
                hellos: Vec::new(),
                heartbeats: Vec::new(),
                duplicates: 0,
                connections: Vec::new(),
                stream_ends: Vec::new(),
            })),
            ca: Arc::new(TestCa::new("osiris test agent CA")),
            connected: Arc::default(),
        }
    }

    /// Reads the state.
    pub fn with<T>(&self, read: impl FnOnce(&mut GatewayState) -> T) -> T {
        read(&mut self.state.lock().unwrap())
    }

    /// Whether `agent_id` has a stream open.
    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.connected.lock().unwrap().contains_key(agent_id)
    }

    /// Sends `message` to `agent_id`'s open stream.
    pub async fn send(&self, agent_id: &str, kind: gateway_message::Kind) {
        let connected = self.connected.lock().unwrap().get(agent_id).cloned();
        let connected = connected.expect("the agent is connected");
        connected
            .tx
            .send(Ok(GatewayMessage { kind: Some(kind) }))
            .await
            .expect("the stream is open");
    }

    /// Ends `agent_id`'s stream with UNAVAILABLE, as a gateway that goes away would.
    pub fn drop_stream(&self, agent_id: &str) {
        if let Some(connected) = self.connected.lock().unwrap().get(agent_id) {
            connected.drop.notify_one();
        }
    }

    fn find_agent(&self, certificate: &[u8]) -> Option<EnrolledAgent> {
        self.with(|state| {
            state
                .agents
                .iter()
                .find(|agent| agent.certificates.iter().any(|cert| cert == certificate))
                .cloned()
        })
    }
}

#[tonic::async_trait]
impl AgentGateway for ToyGateway {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let request = request.into_inner();
        request.validate()?;
        let device_key = agent_proto::device_key(&request.device_public_key)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let csr = CertificateSigningRequestParams::from_der(&request.csr_der.clone().into())
            .map_err(|err| Status::invalid_argument(format!("EnrollRequest.csr_der: {err}")))?;
        let mut state = self.state.lock().unwrap();
        state.enroll_calls += 1;
        if !state.tokens.contains(&request.token) {
            return Err(Status::permission_denied(
                "the enrollment token is unknown, used or expired",
            ));
        }
        let agent_id = format!("agent-{}", state.agents.len() + 1);
        let certificate = self
            .ca
            .client_certificate(&csr.public_key, &agent_id)
            .map_err(|err| Status::invalid_argument(format!("EnrollRequest.csr_der: {err}")))?;
        state.tokens.remove(&request.token);
        state.agents.push(EnrolledAgent {
            agent_id: agent_id.clone(),
            device_key,
            tls_key: csr.public_key.clone(),
            certificates: vec![certificate.clone()],
        });
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_chain_der: vec![certificate],
            agent_ca_der: self.ca.der.clone(),
            config: Some(state.config.clone()),
        }))
    }

    type ConnectStream = Pin<Box<dyn Stream<Item = Result<GatewayMessage, Status>> + Send>>;

    type DownloadStream =
        Pin<Box<dyn Stream<Item = Result<agent_proto::v1::DownloadChunk, Status>> + Send>>;

    /// The test gateway offers no releases.
    async fn download(
        &self,
        _request: Request<agent_proto::v1::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        Err(Status::not_found("the test gateway offers no releases"))
    }

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let certificate = agent_proto::client_certificate(&request)?;
        let agent = self.find_agent(certificate.as_ref()).ok_or_else(|| {
            Status::permission_denied("this certificate belongs to no enrolled agent")
        })?;
        let connection = self.with(|state| {
            state.connections.push(certificate.to_vec());
            state.connections.len() as u64
        });
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(agent_proto::limits::MAX_ITEMS_IN_FLIGHT as usize + 16);
        let toy = self.clone();
        tokio::spawn(async move {
            let drop = Arc::new(Notify::new());
            let end = tokio::select! {
                end = toy.serve_stream(&agent, connection, inbound, &tx, &drop) => end,
                () = drop.notified() => Err(Status::unavailable("the test gateway dropped the stream")),
            };
            toy.connected.lock().unwrap().remove(&agent.agent_id);
            toy.with(|state| state.stream_ends.push(end.clone().err()));
            if let Err(status) = end {
                let _gone = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl ToyGateway {
    async fn serve_stream(
        &self,
        agent: &EnrolledAgent,
        connection: u64,
        mut inbound: Streaming<AgentMessage>,
        tx: &Outbound,
        drop: &Arc<Notify>,
    ) -> Result<(), Status> {
        let send = |kind: gateway_message::Kind| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(GatewayMessage { kind: Some(kind) }))
                    .await
                    .map_err(|_| Status::cancelled("the agent went away"))
            }
        };
        let Some(first) = inbound.message().await? else {
            return Ok(());
        };
        first.validate()?;
        let Some(agent_message::Kind::Hello(hello)) = first.kind else {
            return Err(Status::failed_precondition(
                "the first message must be Hello",
            ));
        };
        if hello.agent_id != agent.agent_id {
            return Err(Status::permission_denied(
                "Hello.agent_id is not the agent of this certificate",
            ));
        }
        let (acked, config) = self.with(|state| {
            state.hellos.push(hello.clone());
            (state.acked(&agent.agent_id), state.config.clone())
        });
        send(gateway_message::Kind::Ack(Ack { up_to_seq: acked })).await?;
        send(gateway_message::Kind::Config(config)).await?;
        self.connected.lock().unwrap().insert(
            agent.agent_id.clone(),
            Connected {
                tx: tx.clone(),
                drop: Arc::clone(drop),
            },
        );
        while let Some(message) = inbound.message().await? {
            message.validate()?;
            let (seq, first_seq) = match &message.kind {
                Some(agent_message::Kind::Result(result)) => {
                    agent_proto::verify_result(&agent.device_key, result)
                        .map_err(|err| Status::invalid_argument(err.to_string()))?;
                    (result.seq, result.seq)
                }
                Some(agent_message::Kind::Gap(gap)) => (gap.last_seq, gap.first_seq),
                Some(agent_message::Kind::RemediationOutcome(outcome)) => {
                    (outcome.seq, outcome.seq)
                }
                Some(agent_message::Kind::Heartbeat(heartbeat)) => {
                    self.with(|state| state.heartbeats.push(*heartbeat));
                    continue;
                }
                Some(agent_message::Kind::Hello(_)) => {
                    return Err(Status::failed_precondition("Hello comes once, first"));
                }
                None => return Err(Status::invalid_argument("AgentMessage.kind is missing")),
            };
            let ack = {
                let mut state = self.state.lock().unwrap();
                let acked = state.acked(&agent.agent_id);
                let mode = state.mode;
                state.received.push(Received {
                    connection,
                    seq,
                    message: message.clone(),
                });
                agent_proto::check_in_flight("seq", seq, acked)
                    .map_err(|err| Status::resource_exhausted(err.to_string()))?;
                if mode == AckMode::Hold {
                    None
                } else {
                    if seq <= acked {
                        state.duplicates += 1;
                    } else if first_seq == acked + 1 {
                        state
                            .stored
                            .entry(agent.agent_id.clone())
                            .or_default()
                            .insert(seq, message);
                    } else {
                        return Err(Status::failed_precondition(format!(
                            "expected sequence number {} next, got {first_seq}",
                            acked + 1
                        )));
                    }
                    (mode == AckMode::Normal).then(|| state.acked(&agent.agent_id))
                }
            };
            if let Some(up_to_seq) = ack {
                send(gateway_message::Kind::Ack(Ack { up_to_seq })).await?;
            }
        }
        Ok(())
    }
}

/// A running test gateway on loopback.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub toy: ToyGateway,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// Serves `toy` on 127.0.0.1:`port` (0: any free port) with its certificate for
    /// [`agent_proto::GATEWAY_TLS_NAME`] only.
    pub async fn start(toy: ToyGateway, port: u16) -> Self {
        Self::start_named(toy, port, &[agent_proto::GATEWAY_TLS_NAME]).await
    }

    /// The same with a certificate for `names`.
    pub async fn start_named(toy: ToyGateway, port: u16, names: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let limits = ServerLimits::STANDARD;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // A restarted gateway may find its port in TIME_WAIT for a moment.
        let started = Instant::now();
        let incoming = loop {
            match agent_proto::bind(addr, &limits) {
                Ok(incoming) => break incoming,
                Err(err) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("binding {addr}: {err}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("binding {addr}: {err}"),
            }
        };
        let addr = incoming.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let tls = agent_proto::server_tls(
            toy.ca.server_identity(names),
            tonic::transport::Certificate::from_pem(pem("CERTIFICATE", &toy.ca.der)),
            &limits,
        );
        let router = agent_proto::server_builder(&limits)
            .tls_config(tls)
            .unwrap()
            .add_service(agent_proto::gateway_service(toy.clone()));
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            toy,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// `HOST:PORT` as the agent is given it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Stops serving (every stream ends) and hands back the gateway's state for a restart.
    pub async fn stop(mut self) -> ToyGateway {
        let agents: Vec<String> = self.toy.connected.lock().unwrap().keys().cloned().collect();
        for agent_id in agents {
            self.toy.drop_stream(&agent_id);
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        self.toy
    }
}

/// Polls `check` every 50 ms until it holds, failing after [`WAIT`] with `what`.
pub async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real `osiris-agent` with its own state directory.
pub struct AgentProcess {
    pub dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
    log: PathBuf,
}

/// A finished command's outcome.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl AgentProcess {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        Self {
            dir,
            child: None,
            log,
        }
    }

    /// The state directory (inside the temporary directory, so the test can see it created).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs `osiris-agent ARGS --state-dir DIR` (without `--state-dir` for `uninstall`), with
    /// `stdin` as standard input.
    pub async fn command(&self, args: &[&str], stdin: &str) -> Finished {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_osiris-agent"));
        command.args(args);
        if !matches!(args.first(), Some(&"uninstall" | &"check")) {
            command.arg("--state-dir").arg(self.state_dir());
        }
        command
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut input, stdin.as_bytes())
            .await
            .unwrap();
        drop(input);
        let output = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .expect("the command finishes")
            .unwrap();
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Enrolls with `gateway` using `token` (through stdin) and `pin`.
    pub async fn enroll(&self, gateway: &str, token: &str, pin: &str) -> Finished {
        self.command(
            &[
                "enroll",
                "--appliance",
                gateway,
                "--token",
                "-",
                "--ca-pin",
                pin,
            ],
            &format!("{token}\n"),
        )
        .await
    }

    /// Enrolls and asserts it worked.
    pub async fn enroll_ok(&self, gateway: &RunningGateway, token: &str) {
        let done = self
            .enroll(&gateway.address(), token, &gateway.toy.ca.pin())
            .await;
        assert!(done.status.success(), "{done:?}");
    }

    /// Starts `osiris-agent run`, its log appended to `agent.log`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the agent is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_osiris-agent"))
            .arg("run")
            .arg("--state-dir")
            .arg(self.state_dir())
            .env("RUST_LOG", "info,agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the agent is running");
        let pid = child.id().unwrap().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("the agent stops within 20 s of SIGTERM")
            .unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("the agent is running");
        child.kill().await.unwrap();
    }

    /// `status --json`.
    pub async fn status(&self) -> serde_json::Value {
        let done = self.command(&["status", "--json"], "").await;
        assert!(done.status.success(), "{done:?}");
        serde_json::from_str(&done.stdout).unwrap()
    }

    /// The device key's public half, from the state directory (Linux keeps the seed as is).
    pub fn device_public_key(&self) -> VerifyingKey {
        let seed: [u8; 32] = std::fs::read(self.state_dir().join("device.key"))
            .unwrap()
            .try_into()
            .unwrap();
        ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log());
        }
    }
}

/// Whether `path` is private to its owner (no group or other bits).
pub fn is_private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o077 == 0
}

/// The check IDs of the results in `items`, in sequence order.
pub fn result_checks(items: &BTreeMap<u64, AgentMessage>) -> Vec<String> {
    items
        .values()
        .filter_map(|message| match &message.kind {
            Some(agent_message::Kind::Result(result)) => Some(result.check_id.clone()),
            _ => None,
        })
        .collect()
}

impl AgentProcess {
    /// Polls `status --json` until `check` holds, failing after [`WAIT`] with `what`.
    pub async fn wait_status(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if check(&status) {
                return status;
            }
            assert!(
                started.elapsed() < WAIT,
                "timed out waiting for {what}; status: {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Whether every sequence number from 1 to the last is stored exactly once, as an item or
/// inside a gap, in `items` (gaps stored under their last number).
pub fn accounts_for_every_number(items: &BTreeMap<u64, AgentMessage>) -> bool {
    let mut next = 1;
    for (seq, message) in items {
        let first = match &message.kind {
            Some(agent_message::Kind::Gap(gap)) => gap.first_seq,
            _ => *seq,
        };
        if first != next {
            return false;
        }
        next = seq + 1;
    }
    true
}

/// The sequence numbers received on `connection`, in arrival order.
pub fn received_on(state: &GatewayState, connection: u64) -> Vec<u64> {
    state
        .received
        .iter()
        .filter(|received| received.connection == connection)
        .map(|received| received.seq)
        .collect()
}

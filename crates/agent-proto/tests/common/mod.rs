//! What the gRPC tests share: a throwaway PKI made with rcgen, a toy gateway that implements the
//! contract's rules (one-time tokens, certificates from CSRs, Hello first, signed results,
//! acknowledgements by sequence number, duplicates re-acknowledged, gaps accounted for) over a real
//! tonic server with mutual TLS on loopback, and a Rust agent client.
//!
//! The toy keeps everything in memory; the real gateway lives in osirisd.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "test helpers shared by several test crates, each using some of them"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_proto::v1::agent_gateway_client::AgentGatewayClient;
use agent_proto::v1::agent_gateway_server::{AgentGateway, AgentGatewayServer};
use agent_proto::v1::{
    Ack, AgentConfig, AgentMessage, CheckSchedule, EnrollRequest, EnrollResponse, GatewayMessage,
    QueueLimits, agent_message, gateway_message,
};
use agent_proto::{ClientLimits, ServerLimits, Validate};
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Response, Status, Streaming};

/// The name in the gateway's certificate, and the one clients ask for.
pub const SERVER_NAME: &str = "localhost";

/// Installs ring as the process's rustls provider (once; later calls find it installed).
pub fn install_ring() {
    let _already = rustls::crypto::ring::default_provider().install_default();
}

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

/// A CA (ECDSA P-256, which every TLS stack in the tests speaks).
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

    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    pub fn certificate(&self) -> Certificate {
        Certificate::from_pem(self.pem())
    }

    /// The gateway's server identity (`localhost`, 127.0.0.1).
    pub fn server_identity(&self) -> Identity {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            CertificateParams::new(vec![SERVER_NAME.to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        Identity::from_pem(cert.pem(), key.serialize_pem())
    }

    /// A client certificate for `agent_id` over the public key of `csr_der`, whose other contents
    /// are ignored (a CSR does not choose its own name or usages). Errors are the CSR's.
    pub fn sign_csr(&self, csr_der: &[u8], agent_id: &str) -> Result<Vec<u8>, rcgen::Error> {
        let csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(
            &csr.public_key,
            &Issuer::from_params(&self.params, &self.key),
        )?;
        Ok(cert.der().to_vec())
    }

    /// A client key and certificate issued directly (for an agent that never enrolled here).
    pub fn client_identity(&self, agent_id: &str) -> Identity {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let der = self.sign_csr(csr.der(), agent_id).unwrap();
        Identity::from_pem(pem("CERTIFICATE", &der), key.serialize_pem())
    }
}

/// An agent's TLS key and its CSR, as an agent makes them before enrolling.
pub struct AgentTlsKey {
    pub key: KeyPair,
    pub csr_der: Vec<u8>,
}

impl AgentTlsKey {
    pub fn new() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let csr_der = CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .der()
            .to_vec();
        Self { key, csr_der }
    }

    /// The identity an enrolled agent connects with.
    pub fn identity(&self, certificate_chain_der: &[Vec<u8>]) -> Identity {
        let chain: String = certificate_chain_der
            .iter()
            .map(|der| pem("CERTIFICATE", der))
            .collect();
        Identity::from_pem(chain, self.key.serialize_pem())
    }
}

/// A configuration inside every limit.
pub fn config(revision: u64) -> AgentConfig {
    AgentConfig {
        revision,
        checks: vec![
            CheckSchedule {
                check_id: "WIN-FW-001".to_owned(),
                interval_seconds: 3600,
                jitter_seconds: 300,
            },
            CheckSchedule {
                check_id: "WIN-BITLOCKER-001".to_owned(),
                interval_seconds: 86_400,
                jitter_seconds: 3600,
            },
        ],
        heartbeat_interval_seconds: 60,
        full_report_interval_seconds: 86_400,
        queue: Some(QueueLimits {
            max_items: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_age_seconds: 30 * 86_400,
        }),
        protocol_version: agent_proto::limits::PROTOCOL_VERSION,
    }
}

/// One enrolled agent, as the toy gateway knows it.
#[derive(Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub device_key: VerifyingKey,
    pub certificate_der: Vec<u8>,
}

/// What the toy gateway holds; tests read it.
#[derive(Default)]
pub struct GatewayState {
    /// Unused one-time tokens.
    pub tokens: HashSet<String>,
    /// Enrolled agents by ID.
    pub agents: HashMap<String, Enrolled>,
    /// Stored sequenced items per agent, by sequence number (a Gap under its last_seq).
    pub stored: HashMap<String, BTreeMap<u64, AgentMessage>>,
    /// Heartbeats received per agent.
    pub heartbeats: HashMap<String, Vec<AgentMessage>>,
    /// The status each Connect stream ended with, as the toy saw it (`None`: the agent closed).
    pub stream_ends: Vec<Option<Status>>,
    /// Items received again after they were stored.
    pub duplicates: u64,
}

impl GatewayState {
    /// The highest sequence number stored for `agent_id` with nothing missing below it.
    pub fn acked(&self, agent_id: &str) -> u64 {
        self.stored
            .get(agent_id)
            .and_then(|items| items.keys().next_back().copied())
            .unwrap_or(0)
    }
}

type Outbound = mpsc::Sender<Result<GatewayMessage, Status>>;

/// The toy gateway.
#[derive(Clone)]
pub struct ToyGateway {
    pub state: Arc<Mutex<GatewayState>>,
    ca: Arc<TestCa>,
    /// Messages sent to every agent right after the Ack and Config that answer its Hello.
    after_hello: Arc<Vec<GatewayMessage>>,
    /// The sender of each connected agent's stream, so a test can push messages.
    pub connected: Arc<Mutex<HashMap<String, Outbound>>>,
}

impl ToyGateway {
    pub fn new(ca: Arc<TestCa>, tokens: &[&str], after_hello: Vec<GatewayMessage>) -> Self {
        let state = GatewayState {
            tokens: tokens.iter().map(|token| (*token).to_owned()).collect(),
            ..GatewayState::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            ca,
            after_hello: Arc::new(after_hello),
            connected: Arc::default(),
        }
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
        let mut state = self.state.lock().unwrap();
        if !state.tokens.contains(&request.token) {
            return Err(Status::permission_denied(
                "the enrollment token is unknown, used or expired",
            ));
        }
        let agent_id = format!("agent-{}", state.agents.len() + 1);
        let certificate_der = self
            .ca
            .sign_csr(&request.csr_der, &agent_id)
            .map_err(|err| Status::invalid_argument(format!("EnrollRequest.csr_der: {err}")))?;
        // Only a successful enrollment uses the token up.
        state.tokens.remove(&request.token);
        state.agents.insert(
            agent_id.clone(),
            Enrolled {
                agent_id: agent_id.clone(),
                device_key,
                certificate_der: certificate_der.clone(),
            },
        );
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_chain_der: vec![certificate_der],
            agent_ca_der: self.ca.der.clone(),
            config: Some(config(1)),
        }))
    }

    type ConnectStream = Pin<Box<dyn Stream<Item = Result<GatewayMessage, Status>> + Send>>;

    type DownloadStream =
        Pin<Box<dyn Stream<Item = Result<agent_proto::v1::DownloadChunk, Status>> + Send>>;

    /// The toy offers no releases.
    async fn download(
        &self,
        _request: Request<agent_proto::v1::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        Err(Status::not_found("the toy gateway offers no releases"))
    }

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let certificate = agent_proto::client_certificate(&request)?;
        let enrolled = {
            let state = self.state.lock().unwrap();
            state
                .agents
                .values()
                .find(|agent| agent.certificate_der == certificate.as_ref())
                .cloned()
        }
        .ok_or_else(|| {
            Status::permission_denied("this certificate belongs to no enrolled agent")
        })?;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(agent_proto::limits::MAX_ITEMS_IN_FLIGHT as usize);
        let toy = self.clone();
        tokio::spawn(async move {
            let end = toy.serve_stream(&enrolled, inbound, &tx).await;
            toy.connected.lock().unwrap().remove(&enrolled.agent_id);
            toy.state
                .lock()
                .unwrap()
                .stream_ends
                .push(end.clone().err());
            if let Err(status) = end {
                let _gone = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl ToyGateway {
    /// Runs one stream until the agent closes it (`Ok`) or it breaks a rule (`Err`, sent to the
    /// agent as the stream's status).
    async fn serve_stream(
        &self,
        agent: &Enrolled,
        mut inbound: Streaming<AgentMessage>,
        tx: &Outbound,
    ) -> Result<(), Status> {
        let send = |message: gateway_message::Kind| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(GatewayMessage {
                    kind: Some(message),
                }))
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
        let acked = self.state.lock().unwrap().acked(&agent.agent_id);
        send(gateway_message::Kind::Ack(Ack { up_to_seq: acked })).await?;
        send(gateway_message::Kind::Config(config(1))).await?;
        for message in self.after_hello.iter() {
            tx.send(Ok(message.clone()))
                .await
                .map_err(|_| Status::cancelled("the agent went away"))?;
        }
        self.connected
            .lock()
            .unwrap()
            .insert(agent.agent_id.clone(), tx.clone());
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
                Some(agent_message::Kind::Heartbeat(_)) => {
                    let mut state = self.state.lock().unwrap();
                    state
                        .heartbeats
                        .entry(agent.agent_id.clone())
                        .or_default()
                        .push(message);
                    continue;
                }
                Some(agent_message::Kind::Hello(_)) => {
                    return Err(Status::failed_precondition("Hello comes once, first"));
                }
                None => unreachable!("validate refuses a message without a kind"),
            };
            let up_to_seq = {
                let mut state = self.state.lock().unwrap();
                let acked = state.acked(&agent.agent_id);
                agent_proto::check_in_flight("seq", seq, acked)?;
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
                        "expected sequence number {} next, got {first_seq}; a drop must be a Gap",
                        acked + 1
                    )));
                }
                state.acked(&agent.agent_id)
            };
            send(gateway_message::Kind::Ack(Ack { up_to_seq })).await?;
        }
        Ok(())
    }
}

/// A running toy gateway on loopback.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub toy: ToyGateway,
    pub ca: Arc<TestCa>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// Serves `toy` with mutual TLS against its CA and `limits`.
    pub async fn start(toy: ToyGateway, limits: ServerLimits) -> Self {
        let service = agent_proto::gateway_service(toy.clone());
        Self::start_with(toy, limits, service).await
    }

    /// The same, but the gateway sends messages of any size (to see the agent refuse them).
    pub async fn start_unlimited_encoding(toy: ToyGateway, limits: ServerLimits) -> Self {
        let service =
            agent_proto::gateway_service(toy.clone()).max_encoding_message_size(usize::MAX);
        Self::start_with(toy, limits, service).await
    }

    async fn start_with(
        toy: ToyGateway,
        limits: ServerLimits,
        service: AgentGatewayServer<ToyGateway>,
    ) -> Self {
        install_ring();
        let ca = Arc::clone(&toy.ca);
        let incoming = agent_proto::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &limits).unwrap();
        let addr = incoming.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let tls = agent_proto::server_tls(ca.server_identity(), ca.certificate(), &limits);
        let router = agent_proto::server_builder(&limits)
            .tls_config(tls)
            .unwrap()
            .add_service(service);
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
            ca,
            shutdown: Some(shutdown),
            task,
        }
    }

    pub fn uri(&self) -> String {
        format!("https://{SERVER_NAME}:{}", self.addr.port())
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // A graceful stop waits for open connections; one a test made silent would hold it until
        // keepalive gives up, so the server is stopped outright after a moment.
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// A channel to `addr` (dialled directly; TLS checks the name `localhost`), trusting `ca`, with
/// an optional client identity.
pub async fn channel(
    addr: SocketAddr,
    ca: Certificate,
    identity: Option<Identity>,
    limits: &ClientLimits,
) -> Result<Channel, tonic::transport::Error> {
    install_ring();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name(SERVER_NAME);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    agent_proto::endpoint(&format!("https://{addr}"), limits)?
        .tls_config(tls)?
        .connect()
        .await
}

/// A client with the contract's limits over `channel`.
pub fn client(channel: Channel) -> AgentGatewayClient<Channel> {
    agent_proto::gateway_client(channel)
}

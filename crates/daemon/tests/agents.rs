//! The agent gateway inside a real `osirisd`, driven by a client built from the contract over real
//! mutual TLS: tokens from `osiris agent token create` enroll once; results are sealed and
//! acknowledged exactly once across reconnects and a daemon restart; a gap is sealed; a failing
//! result becomes a drifted device and an incident; a revoked agent is refused; the kit holds
//! exactly what the agent delivered.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_proto::v1::agent_gateway_client::AgentGatewayClient;
use agent_proto::v1::{
    AgentMessage, CheckResult, CheckStatus, DeviceFacts, EnrollRequest, EnrollResponse, Gap,
    GapReason, GatewayMessage, Hello, Platform, agent_message, gateway_message,
};
use agent_proto::{CaPin, ClientLimits, GATEWAY_TLS_NAME};
use ed25519_dalek::SigningKey;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Streaming};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    fn stop(mut self) {
        // SIGTERM, then wait: the store closes cleanly.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
}

impl Site {
    fn new() -> Self {
        Self::with_agents("")
    }

    /// A site whose `[agents]` table has `extra` lines.
    fn with_agents(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/api.sock");
        let config = dir.path().join("appliance.toml");
        std::fs::write(
            &config,
            format!(
                "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:0\"\n{extra}\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
                dir.path().join("data").display(),
                socket.display()
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            socket,
        }
    }

    fn start(&self) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_osirisd"))
            .args(["--config", self.config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("osirisd.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let daemon = Daemon(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while api::Client::new(&self.socket).status().is_err() {
            assert!(
                Instant::now() < deadline,
                "osirisd did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    /// `osiris <args>` against this site; its stdout, after checking it succeeded.
    fn osiris(&self, args: &[&str]) -> String {
        let out = self.osiris_raw(args);
        assert!(
            out.status.success(),
            "osiris {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn osiris_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new(osiris_bin())
            .args(args)
            .args(["--config", self.config.to_str().unwrap()])
            .output()
            .unwrap()
    }

    fn agents(&self) -> api::AgentsState {
        api::Client::new(&self.socket)
            .call(&api::endpoint::Agents, &())
            .unwrap()
    }
}

/// The `osiris` binary beside `osirisd` (built by `cargo build -p cli`, as scripts/test does).
fn osiris_bin() -> PathBuf {
    let osirisd = PathBuf::from(env!("CARGO_BIN_EXE_osirisd"));
    let osiris = osirisd.with_file_name("osiris");
    assert!(
        osiris.exists(),
        "{} is missing: build it first (`cargo build -p cli`)",
        osiris.display()
    );
    osiris
}

fn pem(der: &[u8]) -> String {
    agent_gateway::pem(der)
}

struct Agent {
    tls_key: KeyPair,
    device: SigningKey,
}

impl Agent {
    fn new() -> Self {
        Self {
            tls_key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
            device: SigningKey::from_bytes(&rand::random()),
        }
    }

    fn enroll_request(&self, token: &str) -> EnrollRequest {
        EnrollRequest {
            token: token.to_owned(),
            csr_der: CertificateParams::default()
                .serialize_request(&self.tls_key)
                .unwrap()
                .der()
                .to_vec(),
            device_public_key: self.device.verifying_key().to_bytes().to_vec(),
            device: Some(DeviceFacts {
                hostname: "WS-FRONTDESK".to_owned(),
                os: "Debian GNU/Linux".to_owned(),
                os_version: "12".to_owned(),
                agent_version: "0.1.0".to_owned(),
                platform: Platform::LinuxX8664 as i32,
            }),
        }
    }

    fn result(&self, seq: u64, check_id: &str, status: CheckStatus) -> AgentMessage {
        let mut result = CheckResult {
            seq,
            check_id: check_id.to_owned(),
            status: status as i32,
            facts: [("observed".to_owned(), format!("run {seq}"))].into(),
            observed_at_unix_ms: 1_780_000_000_000 + i64::try_from(seq).unwrap(),
            catalog_version: "test".to_owned(),
            signature: Vec::new(),
        };
        result.signature = agent_proto::sign_result(&self.device, &result).to_vec();
        AgentMessage {
            kind: Some(agent_message::Kind::Result(result)),
        }
    }
}

async fn channel(
    gateway: &str,
    ca_der: &[u8],
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(ca_der)))
        .domain_name(GATEWAY_TLS_NAME);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    agent_proto::endpoint(&format!("https://{gateway}"), &ClientLimits::STANDARD)?
        .tls_config(tls)?
        .connect()
        .await
}

struct Stream {
    tx: mpsc::Sender<AgentMessage>,
    rx: Streaming<GatewayMessage>,
}

impl Stream {
    async fn open(
        client: &mut AgentGatewayClient<Channel>,
        agent_id: &str,
        last_acked: u64,
    ) -> Result<Self, tonic::Status> {
        let (tx, outbound) = mpsc::channel(300);
        tx.send(AgentMessage {
            kind: Some(agent_message::Kind::Hello(Hello {
                agent_id: agent_id.to_owned(),
                agent_version: "0.1.0".to_owned(),
                last_acked_seq: last_acked,
                protocol_version: 1,
                config_revision: 0,
            })),
        })
        .await
        .unwrap();
        let rx = client
            .connect(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    async fn next(&mut self) -> Result<gateway_message::Kind, tonic::Status> {
        let message = tokio::time::timeout(Duration::from_secs(20), self.rx.message())
            .await
            .expect("the gateway answers within 20 s")?;
        Ok(message.expect("the stream is open").kind.unwrap())
    }

    /// The next acknowledgement (configuration and other messages before it are skipped).
    async fn ack(&mut self) -> u64 {
        loop {
            if let gateway_message::Kind::Ack(ack) = self.next().await.unwrap() {
                return ack.up_to_seq;
            }
        }
    }

    async fn send(&self, message: AgentMessage) {
        self.tx.send(message).await.unwrap();
    }
}

fn token(site: &Site, uses: &str) -> api::AgentToken {
    let out = site.osiris(&[
        "agent",
        "token",
        "create",
        "--uses",
        uses,
        "--expires",
        "1h",
        "--json",
    ]);
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_enroll_once_and_their_items_are_sealed_exactly_once_across_restarts() {
    let site = Site::new();
    let daemon = site.start();
    let issued = token(&site, "1");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    assert_eq!(
        issued.ca_pin,
        CaPin::of(&ca_der).to_string(),
        "the printed pin is the CA's"
    );
    assert!(issued.token.starts_with("osat_"), "{}", issued.token);
    let listed = site.osiris(&["agent", "token", "list"]);
    assert!(
        listed.contains(&issued.id) && listed.contains("usable"),
        "{listed}"
    );
    assert!(
        !listed.contains(&issued.token),
        "the token's text is never shown again"
    );

    // Enrollment: once per use; a used or unknown token is refused and nothing is stored.
    let agent = Agent::new();
    let mut client =
        agent_proto::gateway_client(channel(&issued.gateway, &ca_der, None).await.unwrap());
    let enrolled: EnrollResponse = client
        .enroll(agent.enroll_request(&issued.token))
        .await
        .unwrap()
        .into_inner();
    assert!(enrolled.agent_id.starts_with("a-"), "{}", enrolled.agent_id);
    assert_eq!(enrolled.certificate_chain_der.len(), 2, "leaf and CA");
    assert_eq!(enrolled.agent_ca_der, ca_der);
    let config = enrolled.config.clone().unwrap();
    assert!(
        config.revision >= 1 && !config.checks.is_empty(),
        "{config:?}"
    );
    let check = config.checks[0].check_id.clone();
    for bad in [issued.token.as_str(), "osat_notatokenatall"] {
        let refused = client
            .enroll(Agent::new().enroll_request(bad))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(
            refused.message().contains("token is not valid"),
            "{}",
            refused.message()
        );
    }
    assert_eq!(
        site.agents().agents.len(),
        1,
        "refused enrollments store nothing"
    );
    let tokens = site.osiris(&["agent", "token", "list"]);
    assert!(tokens.contains("used up"), "{tokens}");

    // The stream: results sealed and acknowledged; duplicates acknowledged again, not sealed again.
    let chain: String = enrolled
        .certificate_chain_der
        .iter()
        .map(|der| pem(der))
        .collect();
    let identity = Identity::from_pem(chain, agent.tls_key.serialize_pem());
    let mut client = agent_proto::gateway_client(
        channel(&issued.gateway, &ca_der, Some(identity.clone()))
            .await
            .unwrap(),
    );
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);
    stream
        .send(agent.result(1, &check, CheckStatus::Pass))
        .await;
    stream
        .send(agent.result(2, &check, CheckStatus::Pass))
        .await;
    stream
        .send(agent.result(3, &check, CheckStatus::Fail))
        .await;
    let mut acked = 0;
    while acked < 3 {
        acked = stream.ack().await;
    }
    drop(stream);

    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 1)
        .await
        .unwrap();
    assert_eq!(
        stream.ack().await,
        3,
        "the gateway says what it stored, above what the agent saw"
    );
    stream
        .send(agent.result(2, &check, CheckStatus::Pass))
        .await;
    stream
        .send(agent.result(3, &check, CheckStatus::Fail))
        .await;
    assert_eq!(stream.ack().await, 3);
    stream
        .send(AgentMessage {
            kind: Some(agent_message::Kind::Gap(Gap {
                first_seq: 4,
                last_seq: 6,
                reason: GapReason::QueueFull as i32,
                recorded_at_unix_ms: 1_780_000_000_100,
            })),
        })
        .await;
    assert_eq!(stream.ack().await, 6);
    // A number that skips ahead is a broken agent: the stream ends, nothing more is stored.
    stream
        .send(agent.result(9, &check, CheckStatus::Pass))
        .await;
    let ended = loop {
        match stream.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::FailedPrecondition, "{ended:?}");
    assert!(
        ended.message().contains("expected sequence number 7"),
        "{}",
        ended.message()
    );

    // The failing result went through the pipeline: a drifted device and an incident.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let targets = api::Client::new(&site.socket)
            .call(&api::endpoint::Targets, &())
            .unwrap();
        let incidents = api::Client::new(&site.socket).incidents().unwrap();
        let device = targets.iter().find(|d| d.name == "ws-frontdesk");
        if device.is_some_and(|d| d.status == api::DeviceStatus::Drifted)
            && incidents
                .iter()
                .any(|i| i.target == "ws-frontdesk" && i.check == check)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no drifted device or incident: {targets:?} {incidents:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Across a daemon restart the stored number holds.
    daemon.stop();
    let daemon = site.start();
    let gateway = site.agents().gateway.unwrap();
    let mut client = agent_proto::gateway_client(
        channel(&gateway, &ca_der, Some(identity.clone()))
            .await
            .unwrap(),
    );
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 6)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 6);
    stream
        .send(agent.result(7, &check, CheckStatus::Pass))
        .await;
    assert_eq!(stream.ack().await, 7);
    let listed = site.agents();
    assert_eq!(listed.agents[0].stored_seq, 7);
    assert!(listed.agents[0].connected);

    // Revocation ends the live stream and refuses the certificate from then on.
    let out = site.osiris(&[
        "agent",
        "revoke",
        &enrolled.agent_id,
        "--reason",
        "laptop stolen",
    ]);
    assert!(out.contains("revoked"), "{out}");
    let ended = loop {
        match stream.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Aborted, "{ended:?}");
    let refused = Stream::open(&mut client, &enrolled.agent_id, 7).await;
    let refused = match refused {
        Err(status) => status,
        Ok(mut stream) => stream.next().await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("was revoked"),
        "{}",
        refused.message()
    );

    // The kit holds the enrollment, each item once, the gap and the revocation, in order.
    daemon.stop();
    let kit = site.dir.path().join("kit");
    let out = Command::new(osiris_bin())
        .args([
            "evidence",
            "export",
            "--out",
            kit.to_str().unwrap(),
            "--config",
            site.config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    let agent_items: Vec<(String, serde_json::Value)> = bundles
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|bundle| bundle["kind"].as_str().unwrap().starts_with("agent_"))
        .map(|bundle| {
            (
                bundle["kind"].as_str().unwrap().to_owned(),
                bundle["body"].clone(),
            )
        })
        .collect();
    let summary: Vec<String> = agent_items
        .iter()
        .map(
            |(kind, body)| match body.get("seq").or_else(|| body.get("last_seq")) {
                Some(seq) => format!("{kind} {seq}"),
                None => kind.clone(),
            },
        )
        .collect();
    assert_eq!(
        summary,
        [
            "agent_enrollment",
            "agent_result 1",
            "agent_result 2",
            "agent_result 3",
            "agent_gap 6",
            "agent_result 7",
            "agent_revocation"
        ],
    );
    let out = Command::new(osiris_bin())
        .args([
            "evidence",
            "verify",
            kit.to_str().unwrap(),
            "--trust-kit-key",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("4 results signed by the device")
            && said
                .contains("every number to 7 accounted for; items 4–6 lost: queue full; revoked"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_clear_status_and_never_stored() {
    let site = Site::new();
    let _daemon = site.start();
    let issued = token(&site, "5");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    let mut client =
        agent_proto::gateway_client(channel(&issued.gateway, &ca_der, None).await.unwrap());

    // A malformed request does not use the token up.
    let mut request = Agent::new().enroll_request(&issued.token);
    request.csr_der = b"not a certificate request".to_vec();
    let refused = client.enroll(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let mut request = Agent::new().enroll_request(&issued.token);
    request.device.as_mut().unwrap().hostname = "bad host\n".to_owned();
    assert_eq!(
        client.enroll(request).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let tokens: Vec<api::AgentTokenInfo> =
        serde_json::from_str(&site.osiris(&["agent", "token", "list", "--json"])).unwrap();
    assert_eq!(tokens[0].uses_left, 5, "refused requests take no use");

    // Connect without a certificate, and with one of another CA.
    let refused = Stream::open(&mut client, "a-0", 0)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let foreign_ca = rcgen::KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut foreign_params = CertificateParams::new(vec!["x".to_owned()]).unwrap();
    foreign_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let foreign = foreign_params.self_signed(&foreign_ca).unwrap();
    let identity = Identity::from_pem(foreign.pem(), foreign_ca.serialize_pem());
    let handshake = match channel(&issued.gateway, &ca_der, Some(identity)).await {
        Err(err) => Err(err.to_string()),
        Ok(channel) => {
            let mut client = agent_proto::gateway_client(channel);
            Stream::open(&mut client, "a-0", 0)
                .await
                .map(|_| ())
                .map_err(|status| status.to_string())
        }
    };
    assert!(
        handshake.is_err(),
        "a certificate from another CA must fail"
    );

    // A stream that never says Hello is ended; a wrong signature ends the stream unstored.
    let agent = Agent::new();
    let enrolled = client
        .enroll(agent.enroll_request(&issued.token))
        .await
        .unwrap()
        .into_inner();
    let chain: String = enrolled
        .certificate_chain_der
        .iter()
        .map(|der| pem(der))
        .collect();
    let identity = Identity::from_pem(chain, agent.tls_key.serialize_pem());
    let client_channel = channel(&issued.gateway, &ca_der, Some(identity))
        .await
        .unwrap();
    let mut client = agent_proto::gateway_client(client_channel.clone());
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);
    let mut forged = agent.result(1, "LIN-SSH-001", CheckStatus::Pass);
    if let Some(agent_message::Kind::Result(result)) = &mut forged.kind {
        result.status = CheckStatus::Fail as i32;
    }
    stream.send(forged).await;
    let ended = loop {
        match stream.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");
    assert!(
        ended.message().contains("does not verify"),
        "{}",
        ended.message()
    );
    assert_eq!(
        site.agents()
            .agents
            .iter()
            .find(|a| a.agent_id == enrolled.agent_id)
            .unwrap()
            .stored_seq,
        0
    );
    // A device clock an hour behind shows as the agent's clock skew.
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    stream
        .send(AgentMessage {
            kind: Some(agent_message::Kind::Heartbeat(agent_proto::v1::Heartbeat {
                newest_seq: 0,
                queue_items: 3,
                queue_bytes: 900,
                oldest_queued_age_seconds: 60,
                sent_at_unix_ms: now_ms - 3_600_000,
            })),
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = site
            .agents()
            .agents
            .into_iter()
            .find(|a| a.agent_id == enrolled.agent_id)
            .unwrap();
        if view.queue_items == 3 {
            assert!(
                (-3_610_000..=-3_590_000).contains(&view.clock_skew_ms),
                "{view:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the heartbeat never showed: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A message over 256 KiB is refused before it is decoded, with OUT_OF_RANGE (sent by a client
    // without the contract's own sending limit).
    let mut unlimited = AgentGatewayClient::new(client_channel.clone());
    let mut stream = Stream::open(&mut unlimited, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);
    stream
        .send(agent.result(1, &"X".repeat(300 * 1024), CheckStatus::Pass))
        .await;
    let ended = loop {
        match stream.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::OutOfRange, "{ended:?}");
    // A stream that never says Hello is ended after 30 s.
    let (_silent_tx, outbound) = mpsc::channel::<AgentMessage>(1);
    let started = Instant::now();
    let mut silent = client
        .connect(ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(60), silent.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(started.elapsed() >= Duration::from_secs(29));
    // The gateway still serves.
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_enrollments_are_rate_limited_and_store_nothing() {
    let site = Site::new();
    let _daemon = site.start();
    let issued = token(&site, "1");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    let mut client =
        agent_proto::gateway_client(channel(&issued.gateway, &ca_der, None).await.unwrap());
    let request = Agent::new().enroll_request("osat_bogus");
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..10_000 {
        let code = client.enroll(request.clone()).await.unwrap_err().code();
        *codes.entry(format!("{code:?}")).or_insert(0u32) += 1;
    }
    assert_eq!(
        codes.get("PermissionDenied"),
        Some(&20),
        "20 wrong tokens, then the address is locked out: {codes:?}"
    );
    assert_eq!(codes.get("ResourceExhausted"), Some(&9_980), "{codes:?}");
    assert!(site.agents().agents.is_empty());
    // The real token still works from another address after the lockout? The lockout is per
    // address, so it waits here; the operator sees the refusals in the log.
    let refused = client
        .enroll(Agent::new().enroll_request(&issued.token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("wrong tokens"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_release_is_offered_to_connected_agents_and_downloaded_over_mutual_tls() {
    use agent_release::vendor::{self, ManifestSpec, RootSpec};
    use agent_release::{SecretKey, Version};
    let keys = tempfile::tempdir().unwrap();
    let root_key = SecretKey::generate("vendor-root-1").unwrap();
    let release_key = SecretKey::generate("vendor-release-1").unwrap();
    let root = vendor::sign_root(
        &RootSpec {
            version: 1,
            expires_unix: 4_102_444_800,
            root_keys: vec![root_key.public()],
            root_threshold: 1,
            release_keys: vec![release_key.public()],
            release_threshold: 1,
        },
        &[&root_key],
    )
    .unwrap();
    let root_path = keys.path().join("agent-root.json");
    std::fs::write(&root_path, &root).unwrap();
    let site = Site::with_agents(&format!("release_root = \"{}\"", root_path.display()));
    let _daemon = site.start();
    let issued = token(&site, "1");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    let agent = Agent::new();
    let mut client =
        agent_proto::gateway_client(channel(&issued.gateway, &ca_der, None).await.unwrap());
    let enrolled = client
        .enroll(agent.enroll_request(&issued.token))
        .await
        .unwrap()
        .into_inner();
    let chain: String = enrolled
        .certificate_chain_der
        .iter()
        .map(|der| pem(der))
        .collect();
    let identity = Identity::from_pem(chain, agent.tls_key.serialize_pem());
    let mut client = agent_proto::gateway_client(
        channel(&issued.gateway, &ca_der, Some(identity))
            .await
            .unwrap(),
    );
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);

    // A release whose binary does not match its manifest is refused and nothing is offered.
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let binary_path = keys.path().join("osiris-agent");
    std::fs::write(&binary_path, &binary).unwrap();
    let manifest = vendor::sign_manifest(
        &ManifestSpec::for_binary(
            agent_release::Platform::LinuxX86_64,
            Version::new(0, 2, 0),
            "osiris-agent",
            &binary,
        ),
        &[&release_key],
    )
    .unwrap();
    let manifest_path = keys.path().join("manifest.json");
    std::fs::write(&manifest_path, &manifest).unwrap();
    let wrong_binary = keys.path().join("wrong");
    std::fs::write(&wrong_binary, b"something else").unwrap();
    let out = site.osiris_raw(&[
        "agent",
        "release",
        "add",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--binary",
        wrong_binary.to_str().unwrap(),
        "--rollout",
        "100",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("size") || err.contains("SHA-256") || err.contains("sha256"),
        "{err}"
    );

    let out = site.osiris(&[
        "agent",
        "release",
        "add",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--binary",
        binary_path.to_str().unwrap(),
        "--rollout",
        "100",
    ]);
    assert!(out.contains("offered to 1 connected agent"), "{out}");
    let offer = loop {
        if let gateway_message::Kind::UpdateOffer(offer) = stream.next().await.unwrap() {
            break offer;
        }
    };
    assert_eq!(offer.version, "0.2.0");
    // The agent's side: the offer verifies against the root it pinned.
    let pinned = agent_release::TrustedRoot::pin(&root).unwrap();
    let verified = agent_release::verify_offer(
        &pinned,
        &offer.roots,
        &offer.manifest,
        Version::new(0, 1, 0),
        agent_release::Platform::LinuxX86_64,
        1_800_000_000,
    )
    .unwrap();
    assert_eq!(verified.size(), binary.len() as u64);

    let mut chunks = client
        .download(agent_proto::v1::DownloadRequest {
            path: offer.download_path.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut downloaded = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        assert!(chunk.data.len() <= agent_proto::limits::MAX_CHUNK_BYTES);
        downloaded.extend_from_slice(&chunk.data);
    }
    assert_eq!(downloaded, binary, "the binary arrives whole");

    let missing = client
        .download(agent_proto::v1::DownloadRequest {
            path: "/agent-releases/linux-x86_64/9.9.9/osiris-agent".to_owned(),
        })
        .await;
    let status = match missing {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let listed = site.osiris(&["agent", "release", "list"]);
    assert!(
        listed.contains("0.2.0") && listed.contains("offered to 100 %"),
        "{listed}"
    );
    // Pausing the rollout stops new offers.
    site.osiris(&["agent", "release", "rollout", "linux-x86_64", "0.2.0", "0"]);
    let listed = site.osiris(&["agent", "release", "list", "--json"]);
    assert!(listed.contains("\"rollout_percent\": 0"), "{listed}");
}

/// The independent client (Python grpcio, stubs generated from agent.proto at test time) enrolls
/// and streams against the real gateway, and the result it signed over signing bytes it built
/// itself is sealed.
#[test]
fn a_grpcio_client_enrolls_and_streams_against_osirisd() {
    const PROTO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    const CLIENT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../agent-proto/tests/python/agent_client.py"
    );
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let site = Site::new();
    let stubs = site.dir.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let out = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I", PROTO_ROOT])
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg("osiris/agent/v1/agent.proto")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpc_tools.protoc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _daemon = site.start();
    let issued = token(&site, "1");
    let ca_file = site.dir.path().join("ca.pem");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    std::fs::write(&ca_file, pem(&ca_der)).unwrap();
    let out = Command::new(&python)
        .arg(CLIENT)
        .arg(&issued.gateway)
        .arg(&ca_file)
        .arg(&issued.token)
        .env("PYTHONPATH", &stubs)
        .env("OSIRIS_GATEWAY_NAME", GATEWAY_TLS_NAME)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the grpcio client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["certificates"], 2, "leaf and CA");
    assert_eq!(report["ca_der_hex"].as_str().unwrap(), hex(&ca_der));
    let seen = report["seen"].as_array().unwrap();
    assert_eq!(seen.first(), Some(&serde_json::json!({"ack": 0})));
    assert_eq!(seen.last(), Some(&serde_json::json!({"ack": 1})));
    let state = site.agents();
    let agent = &state.agents[0];
    assert_eq!(
        (agent.hostname.as_str(), agent.stored_seq),
        ("py-workstation", 1)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn outcome(
    seq: u64,
    request: &agent_proto::v1::RunRemediation,
    phase: agent_proto::v1::RemediationPhase,
    status: agent_proto::v1::RemediationStatus,
    detail: &str,
) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::RemediationOutcome(
            agent_proto::v1::RemediationOutcome {
                seq,
                request_id: request.request_id.clone(),
                runbook_id: request.runbook_id.clone(),
                phase: phase as i32,
                status: status as i32,
                detail: detail.to_owned(),
                finished_at_unix_ms: 1_780_000_001_000,
            },
        )),
    }
}

/// The next remediation the appliance asks for.
async fn next_remediation(stream: &mut Stream) -> agent_proto::v1::RunRemediation {
    loop {
        if let gateway_message::Kind::RunRemediation(request) = stream.next().await.unwrap() {
            return request;
        }
    }
}

fn healing(site: &Site, host: &str, check: &str) -> Option<api::HealingEntry> {
    api::Client::new(&site.socket)
        .call(&api::endpoint::Healing { limit: 50 }, &())
        .unwrap()
        .into_iter()
        .find(|entry| entry.target == host && entry.check == check)
}

/// Drift reported by an agent goes through the L1 rules; the appliance asks the agent to run the
/// runbook by ID; the phases come back sealed; a verified fix is sealed as `fixed` and resolves
/// the incident, a fix that does not verify is rolled back through the agent and escalated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_an_agent_reports_is_healed_through_the_agent_and_sealed() {
    use agent_proto::v1::{RemediationAction, RemediationPhase as P, RemediationStatus as S};
    let site = Site::new();
    let _daemon = site.start();
    let issued = token(&site, "1");
    let ca_der = std::fs::read(site.dir.path().join("data/agents/ca.der")).unwrap();
    let agent = Agent::new();
    let mut client =
        agent_proto::gateway_client(channel(&issued.gateway, &ca_der, None).await.unwrap());
    let enrolled = client
        .enroll(agent.enroll_request(&issued.token))
        .await
        .unwrap()
        .into_inner();
    let chain: String = enrolled
        .certificate_chain_der
        .iter()
        .map(|der| pem(der))
        .collect();
    let identity = Identity::from_pem(chain, agent.tls_key.serialize_pem());
    let mut client = agent_proto::gateway_client(
        channel(&issued.gateway, &ca_der, Some(identity))
            .await
            .unwrap(),
    );
    let mut stream = Stream::open(&mut client, &enrolled.agent_id, 0)
        .await
        .unwrap();
    assert_eq!(stream.ack().await, 0);

    // SSH root login allowed: L1 covers it with runbook LIN-SSH-001.
    stream
        .send(agent.result(1, "LIN-SSH-001", CheckStatus::Fail))
        .await;
    let request = next_remediation(&mut stream).await;
    assert_eq!(request.runbook_id, "LIN-SSH-001");
    assert_eq!(request.action, RemediationAction::Remediate as i32);
    stream
        .send(outcome(2, &request, P::Accepted, S::Succeeded, ""))
        .await;
    stream
        .send(outcome(
            3,
            &request,
            P::Remediate,
            S::Succeeded,
            "PermitRootLogin set to no",
        ))
        .await;
    stream
        .send(outcome(4, &request, P::Verify, S::Succeeded, ""))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let fixed = loop {
        if let Some(entry) = healing(&site, "ws-frontdesk", "LIN-SSH-001") {
            break entry;
        }
        assert!(Instant::now() < deadline, "no healing entry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(fixed.result, "fixed", "{fixed:?}");
    assert_eq!(fixed.runbook.as_deref(), Some("LIN-SSH-001"));
    assert!(fixed.evidence_seq.is_some());

    // A fix that does not verify: the appliance asks for the rollback, and escalates.
    stream
        .send(agent.result(5, "LIN-FW-001", CheckStatus::Fail))
        .await;
    let request = next_remediation(&mut stream).await;
    assert_eq!(request.runbook_id, "LIN-FW-001");
    stream
        .send(outcome(6, &request, P::Accepted, S::Succeeded, ""))
        .await;
    stream
        .send(outcome(
            7,
            &request,
            P::Remediate,
            S::Failed,
            "nft: permission denied",
        ))
        .await;
    stream
        .send(outcome(
            8,
            &request,
            P::Verify,
            S::Failed,
            "the firewall is still off",
        ))
        .await;
    let rollback = next_remediation(&mut stream).await;
    assert_eq!(rollback.action, RemediationAction::Rollback as i32);
    assert_eq!(rollback.runbook_id, "LIN-FW-001");
    stream
        .send(outcome(9, &rollback, P::Rollback, S::Succeeded, ""))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let not_fixed = loop {
        if let Some(entry) = healing(&site, "ws-frontdesk", "LIN-FW-001") {
            break entry;
        }
        assert!(Instant::now() < deadline, "no healing entry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(not_fixed.result, "not_fixed", "{not_fixed:?}");
    assert!(not_fixed.reason.contains("rolled back"), "{not_fixed:?}");
    let incidents = api::Client::new(&site.socket).incidents().unwrap();
    let incident = incidents
        .iter()
        .find(|i| i.target == "ws-frontdesk" && i.check == "LIN-FW-001")
        .unwrap();
    assert!(incident.needs_human, "{incident:?}");
    assert_eq!(
        site.agents().agents[0].stored_seq,
        9,
        "every phase was sealed"
    );

    // A runbook the agent refuses is escalated with the agent's words.
    stream
        .send(agent.result(10, "LIN-PERM-001", CheckStatus::Fail))
        .await;
    let request = next_remediation(&mut stream).await;
    stream
        .send(outcome(
            11,
            &request,
            P::Accepted,
            S::Refused,
            "runbook LIN-PERM-001 is not in this agent's catalogue",
        ))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        if let Some(entry) = healing(&site, "ws-frontdesk", "LIN-PERM-001") {
            break entry;
        }
        assert!(Instant::now() < deadline, "no healing entry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.result, "escalated");
    assert!(
        refused.reason.contains("not in this agent's catalogue"),
        "{refused:?}"
    );
}

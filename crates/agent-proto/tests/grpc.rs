//! The contract over a real tonic server and client with mutual TLS on loopback: enrollment,
//! a Connect stream both ways with acknowledgements, duplicates and gaps, refused certificates,
//! oversized messages, keepalive on both sides and the per-connection stream limit.

#![allow(
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "test helpers outside #[test] functions"
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_proto::limits::{MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use agent_proto::v1::agent_gateway_client::AgentGatewayClient;
use agent_proto::v1::{
    AgentMessage, CheckResult, CheckStatus, DeviceFacts, EnrollRequest, EnrollResponse, Gap,
    GapReason, GatewayMessage, Heartbeat, Hello, Param, Platform, RemediationAction,
    RemediationOutcome, RemediationPhase, RemediationStatus, RenewCertificate, RunNow,
    RunRemediation, UpdateOffer, agent_message, gateway_message, param,
};
use agent_proto::{ClientLimits, ServerLimits, Validate};
use common::{AgentTlsKey, RunningGateway, TestCa, ToyGateway, channel, client};
use ed25519_dalek::SigningKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

const WAIT: Duration = Duration::from_secs(10);

fn enroll_request(token: &str, tls: &AgentTlsKey, device: &SigningKey) -> EnrollRequest {
    EnrollRequest {
        token: token.to_owned(),
        csr_der: tls.csr_der.clone(),
        device_public_key: device.verifying_key().to_bytes().to_vec(),
        device: Some(DeviceFacts {
            hostname: "frontdesk-01".to_owned(),
            os: "Windows 11 Pro".to_owned(),
            os_version: "10.0.22631".to_owned(),
            agent_version: "0.1.0".to_owned(),
            platform: Platform::WindowsX8664.into(),
        }),
    }
}

fn hello(agent_id: &str, last_acked_seq: u64) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: agent_id.to_owned(),
            agent_version: "0.1.0".to_owned(),
            last_acked_seq,
            protocol_version: PROTOCOL_VERSION,
            config_revision: 1,
        })),
    }
}

fn signed_result(device: &SigningKey, seq: u64, check_id: &str) -> AgentMessage {
    let mut result = CheckResult {
        seq,
        check_id: check_id.to_owned(),
        status: CheckStatus::Fail.into(),
        facts: BTreeMap::from([("enabled".to_owned(), "false".to_owned())]),
        observed_at_unix_ms: 1_764_000_000_000 + i64::try_from(seq).unwrap(),
        catalog_version: "c0ffee".to_owned(),
        signature: Vec::new(),
    };
    result.signature = agent_proto::sign_result(device, &result).to_vec();
    AgentMessage {
        kind: Some(agent_message::Kind::Result(result)),
    }
}

/// One side of an open Connect stream, as an agent holds it.
struct AgentStream {
    outbound: mpsc::Sender<AgentMessage>,
    inbound: Streaming<GatewayMessage>,
}

impl AgentStream {
    async fn open(client: &mut AgentGatewayClient<Channel>) -> Result<Self, Status> {
        let (outbound, rx) = mpsc::channel(16);
        let inbound = client.connect(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { outbound, inbound })
    }

    async fn send(&self, message: AgentMessage) {
        self.outbound.send(message).await.unwrap();
    }

    /// The next message, validated as an agent must.
    async fn next(&mut self) -> Result<gateway_message::Kind, Status> {
        let message = tokio::time::timeout(WAIT, self.inbound.message())
            .await
            .expect("the gateway answers within 10 s")?
            .expect("the stream is still open");
        message.validate().unwrap();
        Ok(message.kind.unwrap())
    }

    async fn next_ack(&mut self) -> u64 {
        match self.next().await.unwrap() {
            gateway_message::Kind::Ack(ack) => ack.up_to_seq,
            other => panic!("expected an Ack, got {other:?}"),
        }
    }

    /// The status the gateway ended the stream with.
    async fn end(mut self) -> Status {
        loop {
            match tokio::time::timeout(WAIT, self.inbound.message())
                .await
                .expect("the gateway ends the stream within 10 s")
            {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended without an error"),
                Err(status) => return status,
            }
        }
    }
}

/// Enrolls one agent against `gateway` with `token`; returns its answer and a client connected
/// with the issued certificate.
async fn enroll(
    gateway: &RunningGateway,
    token: &str,
    device: &SigningKey,
) -> (EnrollResponse, AgentGatewayClient<Channel>) {
    enroll_at(
        gateway.addr,
        &gateway.ca,
        token,
        device,
        &ClientLimits::STANDARD,
    )
    .await
}

/// The same through `addr` (the gateway or a relay in front of it) with `limits`.
async fn enroll_at(
    addr: SocketAddr,
    ca: &TestCa,
    token: &str,
    device: &SigningKey,
    limits: &ClientLimits,
) -> (EnrollResponse, AgentGatewayClient<Channel>) {
    let tls = AgentTlsKey::new();
    let unauthenticated = channel(addr, ca.certificate(), None, limits).await.unwrap();
    let response = client(unauthenticated)
        .enroll(enroll_request(token, &tls, device))
        .await
        .unwrap()
        .into_inner();
    response.validate().unwrap();
    let authenticated = channel(
        addr,
        ca.certificate(),
        Some(tls.identity(&response.certificate_chain_der)),
        limits,
    )
    .await
    .unwrap();
    (response, client(authenticated))
}

#[tokio::test]
async fn an_agent_enrolls_and_streams_both_ways_over_mutual_tls() {
    let ca = Arc::new(TestCa::new("agent CA"));
    let run_remediation = RunRemediation {
        request_id: "req-7".to_owned(),
        runbook_id: "WIN-FW-001".to_owned(),
        action: RemediationAction::Remediate.into(),
        parameters: BTreeMap::from([
            (
                "profile".to_owned(),
                Param {
                    value: Some(param::Value::StringValue("domain".to_owned())),
                },
            ),
            (
                "max_days".to_owned(),
                Param {
                    value: Some(param::Value::IntValue(90)),
                },
            ),
            (
                "enforce".to_owned(),
                Param {
                    value: Some(param::Value::BoolValue(true)),
                },
            ),
        ]),
    };
    let update_offer = UpdateOffer {
        roots: Vec::new(),
        platform: Platform::WindowsX8664.into(),
        version: "0.2.0".to_owned(),
        manifest: b"{\"signed\":\"manifest\"}".to_vec(),
        download_path: "/agent/releases/0.2.0/windows-x86_64".to_owned(),
    };
    let after_hello = vec![
        GatewayMessage {
            kind: Some(gateway_message::Kind::RunNow(RunNow {
                check_ids: vec!["WIN-FW-001".to_owned()],
            })),
        },
        GatewayMessage {
            kind: Some(gateway_message::Kind::RunRemediation(
                run_remediation.clone(),
            )),
        },
        GatewayMessage {
            kind: Some(gateway_message::Kind::UpdateOffer(update_offer.clone())),
        },
    ];
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], after_hello);
    let gateway = RunningGateway::start(toy, ServerLimits::STANDARD).await;
    let device = SigningKey::from_bytes(&[7; 32]);

    // A request whose CSR does not parse is refused and leaves the token usable.
    let anonymous = client(
        channel(
            gateway.addr,
            ca.certificate(),
            None,
            &ClientLimits::STANDARD,
        )
        .await
        .unwrap(),
    );
    let mut broken = enroll_request("token-1", &AgentTlsKey::new(), &device);
    broken.csr_der = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    let status = anonymous.clone().enroll(broken).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("EnrollRequest.csr_der"));

    // Enroll without a client certificate; the token is used up.
    let (enrolled, mut agent) = enroll(&gateway, "token-1", &device).await;
    assert_eq!(enrolled.agent_id, "agent-1");
    assert_eq!(enrolled.agent_ca_der, ca.der);
    assert_eq!(enrolled.config.as_ref().unwrap().revision, 1);
    let again = anonymous
        .clone()
        .enroll(enroll_request("token-1", &AgentTlsKey::new(), &device))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::PermissionDenied, "{again:?}");

    // Hello is answered with the stored position and the configuration, then the queued orders.
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello("agent-1", 0)).await;
    assert_eq!(stream.next_ack().await, 0);
    let gateway_message::Kind::Config(config) = stream.next().await.unwrap() else {
        panic!("expected the configuration");
    };
    assert_eq!(config.checks.len(), 2);
    assert_eq!(
        stream.next().await.unwrap(),
        gateway_message::Kind::RunNow(RunNow {
            check_ids: vec!["WIN-FW-001".to_owned()]
        })
    );
    assert_eq!(
        stream.next().await.unwrap(),
        gateway_message::Kind::RunRemediation(run_remediation)
    );
    assert_eq!(
        stream.next().await.unwrap(),
        gateway_message::Kind::UpdateOffer(update_offer)
    );

    // Sequenced items are acknowledged one by one; a heartbeat is not.
    stream.send(signed_result(&device, 1, "WIN-FW-001")).await;
    assert_eq!(stream.next_ack().await, 1);
    stream
        .send(AgentMessage {
            kind: Some(agent_message::Kind::Heartbeat(Heartbeat {
                newest_seq: 1,
                queue_items: 0,
                queue_bytes: 0,
                oldest_queued_age_seconds: 0,
                sent_at_unix_ms: 1_764_000_000_500,
            })),
        })
        .await;
    stream
        .send(signed_result(&device, 2, "WIN-BITLOCKER-001"))
        .await;
    assert_eq!(stream.next_ack().await, 2);
    // Items 3 to 5 were dropped offline: the Gap stands for them.
    stream
        .send(AgentMessage {
            kind: Some(agent_message::Kind::Gap(Gap {
                first_seq: 3,
                last_seq: 5,
                reason: GapReason::QueueFull.into(),
                recorded_at_unix_ms: 1_764_000_001_000,
            })),
        })
        .await;
    assert_eq!(stream.next_ack().await, 5);
    stream
        .send(AgentMessage {
            kind: Some(agent_message::Kind::RemediationOutcome(
                RemediationOutcome {
                    seq: 6,
                    request_id: "req-7".to_owned(),
                    runbook_id: "WIN-FW-001".to_owned(),
                    phase: RemediationPhase::Remediate.into(),
                    status: RemediationStatus::Succeeded.into(),
                    detail: "firewall enabled for the domain profile".to_owned(),
                    finished_at_unix_ms: 1_764_000_002_000,
                },
            )),
        })
        .await;
    assert_eq!(stream.next_ack().await, 6);
    // A resent item (its Ack was lost) is acknowledged again, not stored twice.
    stream
        .send(signed_result(&device, 2, "WIN-BITLOCKER-001"))
        .await;
    assert_eq!(stream.next_ack().await, 6);

    // The gateway can speak at any time.
    let push = gateway
        .toy
        .connected
        .lock()
        .unwrap()
        .get("agent-1")
        .cloned()
        .unwrap();
    let renew = RenewCertificate {
        certificate_chain_der: vec![b"new certificate".to_vec()],
    };
    push.send(Ok(GatewayMessage {
        kind: Some(gateway_message::Kind::RenewCertificate(renew.clone())),
    }))
    .await
    .unwrap();
    assert_eq!(
        stream.next().await.unwrap(),
        gateway_message::Kind::RenewCertificate(renew)
    );

    // The agent closes; on reconnect Hello learns where to resume.
    drop(stream);
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello("agent-1", 2)).await;
    assert_eq!(stream.next_ack().await, 6);
    drop(stream);

    {
        let state = gateway.toy.state.lock().unwrap();
        let stored: Vec<u64> = state.stored["agent-1"].keys().copied().collect();
        assert_eq!(stored, [1, 2, 5, 6]);
        assert_eq!(state.duplicates, 1);
        assert_eq!(state.heartbeats["agent-1"].len(), 1);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_result_that_does_not_verify_or_skips_a_number_ends_the_stream() {
    let ca = Arc::new(TestCa::new("agent CA"));
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], Vec::new());
    let gateway = RunningGateway::start(toy, ServerLimits::STANDARD).await;
    let device = SigningKey::from_bytes(&[7; 32]);
    let (_, mut agent) = enroll(&gateway, "token-1", &device).await;

    // Signed by another key.
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello("agent-1", 0)).await;
    stream.next_ack().await;
    stream.next().await.unwrap();
    stream
        .send(signed_result(
            &SigningKey::from_bytes(&[8; 32]),
            1,
            "WIN-FW-001",
        ))
        .await;
    let status = stream.end().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("does not verify"),
        "{}",
        status.message()
    );

    // A jump in the sequence without a Gap.
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello("agent-1", 0)).await;
    stream.next_ack().await;
    stream.next().await.unwrap();
    stream.send(signed_result(&device, 3, "WIN-FW-001")).await;
    let status = stream.end().await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("expected sequence number 1 next"));

    // A Hello naming another agent.
    let stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello("agent-2", 0)).await;
    assert_eq!(stream.end().await.code(), Code::PermissionDenied);

    assert!(gateway.toy.state.lock().unwrap().stored.is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn certificates_from_another_ca_or_none_are_refused() {
    let ca = Arc::new(TestCa::new("agent CA"));
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], Vec::new());
    let gateway = RunningGateway::start(toy, ServerLimits::STANDARD).await;
    let device = SigningKey::from_bytes(&[7; 32]);

    // Another CA's client certificate fails the TLS handshake: no call reaches the gateway, not
    // even Enroll, which needs no certificate.
    let other = TestCa::new("agent CA");
    let refused = async {
        let channel = channel(
            gateway.addr,
            ca.certificate(),
            Some(other.client_identity("agent-1")),
            &ClientLimits::STANDARD,
        )
        .await
        .map_err(|err| Status::unavailable(format!("{err:?}")))?;
        client(channel)
            .enroll(enroll_request("token-1", &AgentTlsKey::new(), &device))
            .await
    }
    .await
    .unwrap_err();
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::Unknown),
        "{refused:?}"
    );
    assert!(
        gateway.toy.state.lock().unwrap().tokens.contains("token-1"),
        "the token must not have been used"
    );

    // A client that does not trust the gateway's CA does not talk to it either.
    let untrusting = channel(
        gateway.addr,
        other.certificate(),
        None,
        &ClientLimits::STANDARD,
    )
    .await
    .map(|channel| async move {
        client(channel)
            .enroll(enroll_request("token-1", &AgentTlsKey::new(), &device))
            .await
    });
    match untrusting {
        Err(_) => {}
        Ok(call) => assert!(call.await.is_err()),
    }

    // Connect without a certificate.
    let unauthenticated = channel(
        gateway.addr,
        ca.certificate(),
        None,
        &ClientLimits::STANDARD,
    )
    .await
    .unwrap();
    let status = AgentStream::open(&mut client(unauthenticated))
        .await
        .err()
        .unwrap();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("client certificate"));

    // A certificate from the right CA that no enrollment issued.
    let stranger = channel(
        gateway.addr,
        ca.certificate(),
        Some(ca.client_identity("agent-1")),
        &ClientLimits::STANDARD,
    )
    .await
    .unwrap();
    let status = AgentStream::open(&mut client(stranger))
        .await
        .err()
        .unwrap();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_with_out_of_range() {
    let ca = Arc::new(TestCa::new("agent CA"));
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], Vec::new());
    let gateway = RunningGateway::start(toy, ServerLimits::STANDARD).await;
    let device = SigningKey::from_bytes(&[7; 32]);
    let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let limit = format!("the limit is: {MAX_MESSAGE_BYTES} bytes");

    // A sender checks first and gets a clear error.
    let mut request = enroll_request(&huge, &AgentTlsKey::new(), &device);
    let err = agent_proto::check_encoded_size("EnrollRequest", &request).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "EnrollRequest is {} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes",
            prost::Message::encoded_len(&request)
        )
    );
    // The contract's client will not send one; tonic reports its own encoder's refusal as a reset
    // stream, which is why senders check first.
    let plain = channel(
        gateway.addr,
        ca.certificate(),
        None,
        &ClientLimits::STANDARD,
    )
    .await
    .unwrap();
    let status = client(plain.clone())
        .enroll(request.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");

    // A client without limits sends it; the gateway refuses to decode it.
    let mut unlimited = AgentGatewayClient::new(plain).max_encoding_message_size(usize::MAX);
    let status = unlimited.enroll(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains(&limit), "{}", status.message());
    assert!(gateway.toy.state.lock().unwrap().tokens.contains("token-1"));

    // The same on a stream: the gateway ends it with the decoder's status.
    request.token = "token-1".to_owned();
    let (enrolled, agent) = enroll(&gateway, "token-1", &device).await;
    let mut unlimited = agent.max_encoding_message_size(usize::MAX);
    let mut stream = AgentStream::open(&mut unlimited).await.unwrap();
    stream.send(hello(&enrolled.agent_id, 0)).await;
    stream.next_ack().await;
    stream.next().await.unwrap();
    let mut result = signed_result(&device, 1, "WIN-FW-001");
    if let Some(agent_message::Kind::Result(result)) = &mut result.kind {
        result.facts.insert("huge".to_owned(), huge.clone());
    }
    stream.send(result).await;
    let status = stream.end().await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains(&limit), "{}", status.message());
    gateway.stop().await;

    // The agent refuses an oversized message from a gateway that sends one.
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-2"], Vec::new());
    let gateway = RunningGateway::start_unlimited_encoding(toy, ServerLimits::STANDARD).await;
    let (enrolled, mut agent) = enroll(&gateway, "token-2", &device).await;
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello(&enrolled.agent_id, 0)).await;
    stream.next_ack().await;
    stream.next().await.unwrap();
    let push = gateway
        .toy
        .connected
        .lock()
        .unwrap()
        .get(&enrolled.agent_id)
        .cloned()
        .unwrap();
    push.send(Ok(GatewayMessage {
        kind: Some(gateway_message::Kind::UpdateOffer(UpdateOffer {
            roots: Vec::new(),
            platform: Platform::WindowsX8664.into(),
            version: "0.2.0".to_owned(),
            manifest: huge.into_bytes(),
            download_path: "/agent/releases/0.2.0".to_owned(),
        })),
    }))
    .await
    .unwrap();
    let status = stream.end().await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains(&limit), "{}", status.message());
    gateway.stop().await;
}

/// A TCP relay between an agent and the gateway that can go silent (forwarding nothing either
/// way while keeping both connections open), like a NAT box that forgot the flow.
struct SilentRelay {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
}

impl SilentRelay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&silent);
        tokio::spawn(async move {
            loop {
                let Ok((downstream, _)) = listener.accept().await else {
                    return;
                };
                let upstream = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (down_read, down_write) = downstream.into_split();
                let (up_read, up_write) = upstream.into_split();
                tokio::spawn(Self::pump(down_read, up_write, Arc::clone(&flag)));
                tokio::spawn(Self::pump(up_read, down_write, Arc::clone(&flag)));
            }
        });
        Self { addr, silent }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        silent: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0; 16 * 1024];
        loop {
            let read = from.read(&mut buf).await;
            if silent.load(Ordering::SeqCst) {
                // Forward nothing, not even the end of the connection, ever again.
                std::future::pending::<()>().await;
            }
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}

/// Opens a stream through a relay, makes it go silent, and returns how long the agent took to
/// notice (`None`: not within `within`) and the stream's end as the gateway recorded it.
async fn silence(
    server: ServerLimits,
    agent_limits: ClientLimits,
    within: Duration,
) -> (Option<Duration>, Option<Option<Status>>) {
    let ca = Arc::new(TestCa::new("agent CA"));
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], Vec::new());
    let gateway = RunningGateway::start(toy, server).await;
    let device = SigningKey::from_bytes(&[7; 32]);
    let relay = SilentRelay::start(gateway.addr).await;
    let (enrolled, mut agent) = enroll_at(relay.addr, &ca, "token-1", &device, &agent_limits).await;
    let mut stream = AgentStream::open(&mut agent).await.unwrap();
    stream.send(hello(&enrolled.agent_id, 0)).await;
    stream.next_ack().await;
    stream.next().await.unwrap();

    relay.silent.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let noticed = match tokio::time::timeout(within, stream.inbound.message()).await {
        Ok(Err(_)) => Some(started.elapsed()),
        Ok(Ok(message)) => panic!("a silent relay delivered {message:?}"),
        Err(_) => None,
    };
    // Give the gateway the same time from the start of the silence.
    tokio::time::sleep(within.saturating_sub(started.elapsed())).await;
    let gateway_end = gateway
        .toy
        .state
        .lock()
        .unwrap()
        .stream_ends
        .first()
        .cloned();
    gateway.stop().await;
    (noticed, gateway_end)
}

#[tokio::test]
async fn keepalive_notices_a_silent_peer_on_each_side() {
    let fast_server = ServerLimits {
        keepalive_interval: Duration::from_millis(500),
        keepalive_timeout: Duration::from_millis(500),
        ..ServerLimits::STANDARD
    };
    let fast_agent = ClientLimits {
        keepalive_interval: Duration::from_millis(500),
        keepalive_timeout: Duration::from_millis(500),
        ..ClientLimits::STANDARD
    };

    // The agent's pings find the silence; the gateway (standard 60 s + 20 s) has not yet.
    let (agent_noticed, gateway_end) =
        silence(ServerLimits::STANDARD, fast_agent, Duration::from_secs(4)).await;
    let agent_noticed = agent_noticed.expect("the agent notices within 4 s");
    assert!(
        agent_noticed >= Duration::from_millis(500),
        "{agent_noticed:?}"
    );
    assert!(
        gateway_end.is_none(),
        "the gateway has not noticed yet: {gateway_end:?}"
    );

    // The gateway's pings find it; the agent (standard 30 s + 10 s) has not yet.
    let (agent_noticed, gateway_end) =
        silence(fast_server, ClientLimits::STANDARD, Duration::from_secs(4)).await;
    assert_eq!(agent_noticed, None, "the agent has not noticed yet");
    // tonic ends the request stream of a connection that keepalive closed as if the agent had
    // closed it; either way the gateway's side of the stream is over.
    assert!(
        gateway_end.is_some(),
        "the gateway ended the stream within 4 s"
    );
}

#[tokio::test]
async fn a_connection_carries_at_most_the_configured_streams() {
    let ca = Arc::new(TestCa::new("agent CA"));
    let toy = ToyGateway::new(Arc::clone(&ca), &["token-1"], Vec::new());
    let gateway = RunningGateway::start(toy, ServerLimits::STANDARD).await;
    let device = SigningKey::from_bytes(&[7; 32]);
    let (enrolled, mut agent) = enroll(&gateway, "token-1", &device).await;

    let mut open = Vec::new();
    for _ in 0..ServerLimits::STANDARD.max_concurrent_streams {
        let mut stream = AgentStream::open(&mut agent).await.unwrap();
        stream.send(hello(&enrolled.agent_id, 0)).await;
        stream.next_ack().await;
        open.push(stream);
    }
    // One more waits for a free stream on the same connection.
    let mut extra = agent.clone();
    let waiting = tokio::spawn(async move { AgentStream::open(&mut extra).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "a fifth stream was opened at once");
    // Closing one lets it through.
    drop(open.pop());
    tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the fifth stream opens once one closes")
        .unwrap()
        .unwrap();
    drop(open);
    gateway.stop().await;
}

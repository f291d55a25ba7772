//! Short-lived client certificates: the gateway renews one past half its life over the stream,
//! for the same key; the renewed certificate connects; the old one stops working when it expires.
//! A real gateway and store in this process, real mutual TLS on loopback.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_gateway::{DraftContext, EnrollLimits, GatewaySettings};
use agent_proto::v1::{
    AgentConfig, AgentMessage, DeviceFacts, EnrollRequest, GatewayMessage, Hello, Platform,
    QueueLimits, agent_message, gateway_message,
};
use agent_proto::{ClientLimits, GATEWAY_TLS_NAME, ServerLimits};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn config() -> AgentConfig {
    AgentConfig {
        revision: 0,
        checks: Vec::new(),
        heartbeat_interval_seconds: 60,
        full_report_interval_seconds: 86_400,
        queue: Some(QueueLimits {
            max_items: 1_000,
            max_bytes: 1 << 20,
            max_age_seconds: 86_400,
        }),
        protocol_version: 1,
    }
}

async fn channel(
    addr: std::net::SocketAddr,
    ca: &[u8],
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(agent_gateway::pem(ca)))
        .domain_name(GATEWAY_TLS_NAME);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    agent_proto::endpoint(&format!("https://{addr}"), &ClientLimits::STANDARD)?
        .tls_config(tls)?
        .connect()
        .await
}

async fn open(
    channel: Channel,
    agent_id: &str,
) -> Result<Streaming<GatewayMessage>, tonic::Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: agent_id.to_owned(),
            agent_version: "0.1.0".to_owned(),
            last_acked_seq: 0,
            protocol_version: 1,
            config_revision: 0,
        })),
    })
    .await
    .unwrap();
    // The sender must outlive the call: keep it in a task that waits forever.
    tokio::spawn(async move {
        tx.closed().await;
    });
    let mut client = agent_proto::gateway_client(channel);
    let mut stream = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    // The first answer proves the stream opened (an Ack).
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()?;
    assert!(matches!(
        first.and_then(|m| m.kind),
        Some(gateway_message::Kind::Ack(_))
    ));
    Ok(stream)
}

fn identity(chain: &[Vec<u8>], key: &KeyPair) -> Identity {
    let pem: String = chain.iter().map(|der| agent_gateway::pem(der)).collect();
    Identity::from_pem(pem, key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_past_half_its_life_is_renewed_for_the_same_key_and_the_old_one_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        store::Store::open(&store::StoreConfig {
            data_dir: dir.path().join("data"),
            site: "test".to_owned(),
        })
        .await
        .unwrap(),
    );
    let settings = GatewaySettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        dir: dir.path().join("agents"),
        drafts: DraftContext {
            site: "test".to_owned(),
            catalog: "test".to_owned(),
        },
        certificate_lifetime: Duration::from_secs(6),
        configs: BTreeMap::from([(Platform::LinuxX8664 as i32, config())]),
        enroll_limits: EnrollLimits::STANDARD,
        server_limits: ServerLimits::STANDARD,
        releases: None,
    };
    let (events, _events_rx) = mpsc::channel(64);
    let gateway = agent_gateway::start(settings, Arc::clone(&store), events).unwrap();
    let ca = std::fs::read(dir.path().join("agents/ca.der")).unwrap();
    let token = agent_gateway::create_token(&store, 1, 0, i64::MAX / 2, "test")
        .await
        .unwrap();

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let device = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut client =
        agent_proto::gateway_client(channel(gateway.local_addr, &ca, None).await.unwrap());
    let enrolled = client
        .enroll(EnrollRequest {
            token: token.text.clone(),
            csr_der: CertificateParams::default()
                .serialize_request(&key)
                .unwrap()
                .der()
                .to_vec(),
            device_public_key: device.verifying_key().to_bytes().to_vec(),
            device: Some(DeviceFacts {
                hostname: "laptop-7".to_owned(),
                os: "Debian GNU/Linux".to_owned(),
                os_version: "12".to_owned(),
                agent_version: "0.1.0".to_owned(),
                platform: Platform::LinuxX8664 as i32,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let first = identity(&enrolled.certificate_chain_der, &key);

    // Fresh: no renewal on connect (the configuration follows the Ack, then nothing).
    let mut stream = open(
        channel(gateway.local_addr, &ca, Some(first.clone()))
            .await
            .unwrap(),
        &enrolled.agent_id,
    )
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(next.kind, Some(gateway_message::Kind::Config(_))),
        "{next:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.message())
            .await
            .is_err(),
        "nothing else on a fresh certificate"
    );
    // Kept open past half the certificate's life, the stream itself brings the renewal.
    let in_stream = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            let message = stream.message().await.unwrap().unwrap();
            if let Some(gateway_message::Kind::RenewCertificate(renew)) = message.kind {
                return renew;
            }
        }
    })
    .await
    .expect("a renewal on the open stream");
    assert_ne!(
        in_stream.certificate_chain_der[0],
        enrolled.certificate_chain_der[0]
    );
    drop(stream);

    // Connecting with the first certificate past half its life: a renewal right after the
    // configuration.
    let mut stream = open(
        channel(gateway.local_addr, &ca, Some(first.clone()))
            .await
            .unwrap(),
        &enrolled.agent_id,
    )
    .await
    .unwrap();
    let renewed = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(gateway_message::Kind::RenewCertificate(renew)) = message.kind {
            break renew;
        }
    };
    assert_eq!(renewed.certificate_chain_der.len(), 2);
    assert_ne!(
        renewed.certificate_chain_der[0],
        enrolled.certificate_chain_der[0]
    );
    drop(stream);

    // After the first expires: it no longer connects; the renewed one does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let old = match channel(gateway.local_addr, &ca, Some(first)).await {
        Err(err) => Err(err.to_string()),
        Ok(channel) => open(channel, &enrolled.agent_id)
            .await
            .map(|_| ())
            .map_err(|status| status.to_string()),
    };
    assert!(old.is_err(), "an expired certificate must not connect");
    let second = identity(&renewed.certificate_chain_der, &key);
    open(
        channel(gateway.local_addr, &ca, Some(second))
            .await
            .unwrap(),
        &enrolled.agent_id,
    )
    .await
    .unwrap();
    gateway.task.abort();
}

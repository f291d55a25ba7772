//! The appliance's agent gateway (`[agents]` in `osirisd`'s configuration): the agent CA,
//! enrollment with one-time tokens, and each enrolled agent's stream, whose items are sealed as
//! evidence and acknowledged only once committed (docs/AGENT-PROTOCOL.md is the contract).
//!
//! It knows the store's typed registry and evidence API, not SQL; it knows nothing of the
//! catalogue, incidents or healing: what agents report leaves as [`AgentEvent`]s for `osirisd` to
//! evaluate, and what `osirisd` asks of an agent comes in through [`GatewayHandle`].
//!
//! Build cost of what it adds to `osirisd` (2 cores, fresh target directory, dev profile): rcgen's
//! `x509-parser` feature (x509-parser, der-parser, asn1-rs, nom and their derive macros) to read
//! certificate requests and certificates; tonic and prost come with `agent-proto`.

mod bundles;
pub mod ca;
pub mod limiter;
mod offers;
mod service;
mod sessions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_proto::v1::{AgentConfig, Platform};
use agent_proto::{CaPin, ServerLimits};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::transport::Identity;

pub use crate::bundles::{
    DraftContext, gap_reason_name, phase_name, remediation_status_name, status_name,
};
pub use crate::ca::{AgentCa, CaError};
pub use crate::limiter::EnrollLimits;
pub use crate::offers::offer_to_connected;
pub use crate::sessions::{ConnectedAgent, GatewayHandle, NotConnected};

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Its directory (`<data_dir>/agents`): the CA and the configuration revision.
    pub dir: PathBuf,
    /// Site and catalogue of the bundles it seals.
    pub drafts: DraftContext,
    /// How long a client certificate is valid; renewed over the stream after half of it.
    pub certificate_lifetime: Duration,
    /// The configuration each platform's agents run (its `revision` is set by the gateway).
    pub configs: BTreeMap<i32, AgentConfig>,
    /// Enrollment rate limits.
    pub enroll_limits: EnrollLimits,
    /// Connection settings.
    pub server_limits: ServerLimits,
    /// Signed agent releases to offer (`None`: the appliance has no agent root configured).
    pub releases: Option<Releases>,
}

/// The appliance's agent releases, shared with the daemon that adds them.
pub type Releases = Arc<std::sync::RwLock<agent_release::store::ReleaseStore>>;

/// What agents reported, for `osirisd` to evaluate; sent after the items are sealed.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// An agent's stream opened.
    Connected(AgentInfo),
    /// It closed (or broke a rule).
    Disconnected(AgentInfo),
    /// Check results, in sequence order, each with the bundle that seals it.
    Results {
        agent: AgentInfo,
        results: Vec<ReportedResult>,
    },
    /// Items the agent had to drop, sealed as `agent_gap` bundle `bundle_seq`.
    Gap {
        agent: AgentInfo,
        first_seq: u64,
        last_seq: u64,
        reason: &'static str,
        bundle_seq: u64,
    },
    /// One phase of a remediation the appliance asked for.
    Remediation {
        agent: AgentInfo,
        outcome: agent_proto::v1::RemediationOutcome,
        bundle_seq: u64,
    },
}

/// Who an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub agent_id: String,
    /// The host name it enrolled with (lower case): the device name results are filed under.
    pub hostname: String,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
}

/// One sealed check result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedResult {
    pub seq: u64,
    pub check_id: String,
    /// `pass`, `fail`, `error` or `not_applicable`.
    pub status: &'static str,
    pub facts: BTreeMap<String, String>,
    pub observed_at_unix_ms: i64,
    pub bundle_seq: u64,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("saving the agents' configuration revision")]
    Revision(#[from] durable::Error),
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot listen for agents on {listen}: {source}; choose another `[agents] listen` address or stop what uses it"
    )]
    Bind {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The platform names used in the registry and evidence.
#[must_use]
pub const fn platform_name(platform: Platform) -> &'static str {
    match platform {
        Platform::LinuxX8664 | Platform::Unspecified => "linux-x86_64",
        Platform::WindowsX8664 => "windows-x86_64",
    }
}

/// A running gateway.
pub struct Gateway {
    /// Commands to connected agents and what is known of them.
    pub handle: GatewayHandle,
    /// The CA's fingerprint, for `osiris agent token create`.
    pub pin: CaPin,
    /// The address it listens on (the configured one, with the port chosen when it was 0).
    pub local_addr: SocketAddr,
    /// The server task; ends only on error.
    pub task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Loads (or creates) the CA, binds the listener and serves until the task is aborted. Events go
/// to `events`; when it is full, streams wait (the items are sealed and acknowledged already).
///
/// # Errors
/// A damaged CA, an address that cannot be bound.
pub fn start(
    mut settings: GatewaySettings,
    store: Arc<store::Store>,
    events: mpsc::Sender<AgentEvent>,
) -> Result<Gateway, StartError> {
    let ca = AgentCa::load_or_create(&settings.dir)?;
    let revision = config_revision(&settings)?;
    for config in settings.configs.values_mut() {
        config.revision = revision;
    }
    let (chain, key) = ca.server_identity()?;
    let identity = Identity::from_pem(chain, key);
    let ca_certificate = tonic::transport::Certificate::from_pem(pem(ca.der()));
    let incoming =
        agent_proto::bind(settings.listen, &settings.server_limits).map_err(|source| {
            StartError::Bind {
                listen: settings.listen,
                source,
            }
        })?;
    let local_addr = incoming.local_addr().map_err(|source| StartError::Bind {
        listen: settings.listen,
        source,
    })?;
    let pin = ca.pin();
    let handle = GatewayHandle::default();
    let service = service::Service::new(settings.clone(), ca, store, events, handle.clone());
    let server = agent_proto::server_builder(&settings.server_limits)
        .tls_config(agent_proto::server_tls(
            identity,
            ca_certificate,
            &settings.server_limits,
        ))
        .map_err(|err| StartError::Bind {
            listen: settings.listen,
            source: std::io::Error::other(err.to_string()),
        })?
        .add_service(agent_proto::gateway_service(service))
        .serve_with_incoming(incoming);
    tracing::info!(listen = %local_addr, pin = %pin, revision, "Agent gateway listening.");
    Ok(Gateway {
        handle,
        pin,
        local_addr,
        task: tokio::spawn(server),
    })
}

/// The revision of the agents' configuration: the stored one while the configuration is the same,
/// one more whenever it changed (kept in `<dir>/config-revision`).
fn config_revision(settings: &GatewaySettings) -> Result<u64, StartError> {
    let mut hash = Sha256::new();
    for (platform, config) in &settings.configs {
        hash.update(platform.to_be_bytes());
        hash.update(prost::Message::encode_to_vec(config));
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let path = settings.dir.join("config-revision");
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(StartError::Read { path, source }),
    };
    let mut parts = stored.split_whitespace();
    let revision: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    if parts.next() == Some(digest.as_str()) && revision > 0 {
        return Ok(revision);
    }
    let revision = revision + 1;
    durable::write(&path, format!("{revision} {digest}\n").as_bytes(), 0o600)?;
    Ok(revision)
}

/// A DER certificate as PEM.
#[must_use]
pub fn pem(der: &[u8]) -> String {
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

/// A new enrollment token: its text (printed once, never stored) and its SHA-256.
#[must_use]
pub fn new_token() -> (String, [u8; 32]) {
    let bytes: [u8; 24] = rand::random();
    let text = format!("osat_{}", base32(&bytes));
    let hash = token_hash(&text);
    (text, hash)
}

/// The SHA-256 the registry keeps of a token.
#[must_use]
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// RFC 4648 base32, lower case, no padding (easy to read aloud and to type).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for &byte in bytes {
        buffer = buffer << 8 | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[(buffer >> bits & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[(buffer << (5 - bits) & 31) as usize]));
    }
    out
}

/// A token just made: its text (shown once) and what the registry keeps.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub text: String,
    pub id: String,
    pub uses: u32,
    pub expires_at: i64,
}

/// Makes and stores a token allowing `uses` enrollments until `expires_at`.
///
/// # Errors
/// The store's.
pub async fn create_token(
    store: &store::Store,
    uses: u32,
    now: i64,
    expires_at: i64,
    by: &str,
) -> Result<CreatedToken, store::StoreError> {
    let (text, hash) = new_token();
    let id = format!("t-{}", base32(&rand::random::<[u8; 5]>()));
    store
        .create_agent_token(store::NewAgentToken {
            id: id.clone(),
            hash,
            uses,
            created_at: now,
            expires_at,
            created_by: by.to_owned(),
        })
        .await?;
    tracing::info!(token = %id, uses, expires_at, by, "Enrollment token created.");
    Ok(CreatedToken {
        text,
        id,
        uses,
        expires_at,
    })
}

/// Revokes an agent: seals an `agent_revocation` bundle with the registry change, then ends its
/// stream if it is connected. `None` when no unrevoked agent has that ID.
///
/// # Errors
/// The store's.
pub async fn revoke(
    store: &store::Store,
    handle: &GatewayHandle,
    drafts: &DraftContext,
    agent_id: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<Option<u64>, store::StoreError> {
    let draft = drafts.revocation(agent_id, by, reason);
    let Some(appended) = store.revoke_agent(agent_id, now, draft).await? else {
        return Ok(None);
    };
    handle.disconnect(agent_id, "this agent was revoked on the appliance");
    tracing::warn!(
        agent = agent_id,
        by,
        bundle = appended.seq,
        "Agent revoked."
    );
    Ok(Some(appended.seq))
}

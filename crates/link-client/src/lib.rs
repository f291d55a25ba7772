//! The appliance side of the link to Central Command (docs/CENTRAL-PROTOCOL.md): one `step` at
//! a time, it enrolls with the claim proof, collects the certificate once a partner has claimed
//! the appliance, and pushes over mutual TLS the newest checkpoint (keeping the witness's
//! cosignature), device summaries, incidents, the healing log and the update state, each only
//! when it changed; it has the appliance seal what partner users did about its incidents and
//! reports as which bundles. Its state survives restarts in `<dir>/state.json` and
//! `<dir>/tls.key` (0600). What it needs of the appliance (its evidence key, checkpoints, proofs,
//! somewhere to keep cosignatures, a way to seal operator actions) comes through the
//! [`Appliance`] trait.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use link_proto::{
    EnrollRequest, EnrollResponse, ErrorBody, PickupRequest, PickupResponse, PushItem, PushRequest,
    PushResponse,
};
use rcgen::{KeyPair, PKCS_ED25519, PublicKeyData};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The largest answer read from Central Command.
const MAX_ANSWER: usize = 256 * 1024;
/// The largest agent binary fetched (`agent_release::limits::MAX_BINARY_BYTES`).
const MAX_AGENT_BINARY: u64 = 64 * 1024 * 1024;

/// What the link needs from the appliance.
pub trait Appliance {
    /// The evidence verifier key, as text.
    fn appliance_key(&self) -> String;
    /// The claim code the console shows.
    fn claim_code(&self) -> String;
    /// A standard-base64 Ed25519 signature by the evidence key over a link message
    /// (`link_proto::enroll_message` or `pickup_message`).
    fn sign_link_message(&self, message: &[u8]) -> String;
    /// The newest signed checkpoint: (size, note).
    fn latest_checkpoint(
        &self,
    ) -> impl Future<Output = Result<Option<(u64, String)>, String>> + Send;
    /// The consistency proof between two sizes of the log.
    fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, String>> + Send;
    /// Keeps the witness's cosignature line of the checkpoint of `size` (for kits).
    fn keep_cosignature(
        &self,
        size: u64,
        line: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The devices and compliance now, for the partner's dashboard (no observed values, no
    /// addresses): `(POSIX seconds, devices, scores)`.
    fn devices(&self) -> impl Future<Output = Result<Snapshot, String>> + Send;
    /// Every incident the appliance keeps now (open and recently closed), each whole.
    fn incidents(
        &self,
    ) -> impl Future<Output = Result<Vec<link_proto::IncidentSummary>, String>> + Send;
    /// Healing-log entries with an id above `after`, oldest first, at most `limit`.
    fn healing_after(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<link_proto::HealEntry>, String>> + Send;
    /// The software and image-update state now.
    fn update_state(
        &self,
    ) -> impl Future<Output = Result<link_proto::UpdateSummary, String>> + Send;
    /// Writes an auditor kit of the whole log as of now into `dir` (which does not exist yet).
    fn export_kit(&self, dir: &Path) -> impl Future<Output = Result<(), String>> + Send;
    /// Hands the updater the release the partner offers (`(version, signed manifest JSON)`), or
    /// withdraws the offer (`None`). The updater verifies the manifest itself.
    fn offer_manifest(
        &self,
        offer: Option<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Replaces the partner's escalation channels (all of them; an empty list removes them).
    fn set_partner_channels(
        &self,
        channels: Vec<PartnerChannel>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Seals what partner users did about incidents at Central Command (each already checked
    /// with [`link_proto::OperatorAction::problem`]) as operator-action evidence, in order, and
    /// applies an acknowledgement to the incident. Each id is sealed once: an action handed out
    /// again is answered from the appliance's record. Returns the sealed ones with their
    /// bundles' sequence numbers.
    fn operator_actions(
        &self,
        actions: Vec<link_proto::OperatorAction>,
    ) -> impl Future<Output = Result<Vec<link_proto::SealedAction>, String>> + Send;
    /// Judges an endpoint-agent release the partner offers before its binary is fetched:
    /// `None` to fetch it and hand it to [`Appliance::add_agent_release`], or the answer without
    /// it (already held, not wanted, or refused: the appliance verifies the document against its
    /// own agent root). An appliance without agent releases answers `NotWanted`.
    fn judge_agent_release(
        &self,
        offer: &link_proto::AgentReleaseOffer,
    ) -> impl Future<Output = Result<Option<AgentReleaseAnswer>, String>> + Send {
        let _ = offer;
        async {
            Ok(Some(AgentReleaseAnswer::NotWanted(
                "this appliance keeps no agent releases".to_owned(),
            )))
        }
    }
    /// Adds an offered endpoint-agent release with its fetched binary to the appliance's own
    /// store, after verifying both itself. An `Err` is retried on a later step; an answer is
    /// final for this offer.
    fn add_agent_release(
        &self,
        offer: &link_proto::AgentReleaseOffer,
        binary: Vec<u8>,
    ) -> impl Future<Output = Result<AgentReleaseAnswer, String>> + Send {
        let _ = (offer, binary);
        async {
            Ok(AgentReleaseAnswer::NotWanted(
                "this appliance keeps no agent releases".to_owned(),
            ))
        }
    }
    /// The monthly compliance packets sealed in the log, oldest first (none by default).
    fn packets(&self) -> impl Future<Output = Result<Vec<LocalPacket>, String>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// A monthly packet the appliance made: its files and the line of its sealed `packet` bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPacket {
    /// `YYYY-MM`.
    pub period: String,
    /// The directory that holds its files.
    pub dir: PathBuf,
    /// The `packet` bundle's line (without its newline).
    pub bundle_line: Vec<u8>,
    /// The file names the bundle lists.
    pub files: Vec<String>,
}

/// What the appliance made of an offered endpoint-agent release (final for that offer: it is
/// not handed over again until the offer changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReleaseAnswer {
    /// Added to the appliance's store.
    Added,
    /// The store holds it (or a newer one for its platform) already.
    Held,
    /// The appliance takes no agent releases (why).
    NotWanted(String),
    /// The document or the binary did not verify (why).
    Refused(String),
}

/// One of the partner's escalation channels, its secret opened.
#[derive(Clone, PartialEq, Eq)]
pub struct PartnerChannel {
    /// Name (1–48 of `a-z 0-9 - _`).
    pub name: String,
    /// `slack`, `teams`, `pagerduty` or `webhook`.
    pub kind: String,
    /// The least severity it receives.
    pub min_severity: String,
    /// A webhook's URL.
    pub url: Option<String>,
    /// An e-mail channel's settings.
    pub email: Option<link_proto::EmailSettings>,
    /// The secret.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for PartnerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerChannel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("min_severity", &self.min_severity)
            .field("url", &self.url)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A device snapshot: when, the devices, the scores per framework.
pub type Snapshot = (
    i64,
    Vec<link_proto::DeviceSummary>,
    Vec<link_proto::FrameworkSummary>,
);

/// Where the link stands, for `osiris status` and the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkStatus {
    /// Waiting for the partner to type the claim code into Central Command.
    WaitingForClaim {
        /// The enrollment request's id.
        enrollment_id: i64,
    },
    /// Claimed and pushing.
    Linked {
        /// The appliance's id at Central Command.
        appliance_id: i64,
        /// The newest witnessed checkpoint size.
        witness_size: u64,
    },
    /// Central Command could not be reached or refused; retried on the next step.
    Trouble {
        /// What happened, in words.
        problem: String,
    },
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Central Command could not be reached (network, TLS, timeout). Retry later.
    #[error("Central Command at {url} cannot be reached: {reason}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Central Command answered with an error.
    #[error("Central Command refused {what}: {message} (HTTP {status})")]
    Refused {
        /// Which request.
        what: &'static str,
        /// The status.
        status: u16,
        /// Its words.
        message: String,
    },
    /// The appliance side failed (store, files).
    #[error("{0}")]
    Local(String),
    /// Reading or writing the link's state.
    #[error("the link state in {path}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing durably.
    #[error("saving the link state")]
    Write(#[from] durable::Error),
}

/// The durable part of the link's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    enrollment_id: Option<i64>,
    appliance_id: Option<i64>,
    certificate_pem: Option<String>,
    witness_key: Option<String>,
    next_seq: u64,
    witness_size: u64,
    pushed_size: Option<u64>,
    /// SHA-256 (hex) of the last device snapshot Central Command took, without its time.
    #[serde(default)]
    devices_sent: Option<String>,
    /// Per incident (`id@opened_at`), the SHA-256 (hex) of what Central Command took last.
    #[serde(default)]
    incidents_sent: std::collections::BTreeMap<String, String>,
    /// The id of the newest healing-log entry Central Command took.
    #[serde(default)]
    healing_sent: i64,
    /// SHA-256 (hex) of the update state Central Command took last.
    #[serde(default)]
    update_sent: Option<String>,
    /// Per platform, SHA-256 (hex) of the agent release document the appliance last added or
    /// found held already.
    #[serde(default)]
    agent_releases_taken: std::collections::BTreeMap<String, String>,
    /// SHA-256 (hex) of the release offer last handed to the updater (`none` for no offer).
    #[serde(default)]
    manifest_offered: Option<String>,
    /// Keyed digest of the partner channels last handed to the appliance.
    #[serde(default)]
    channels_taken: Option<String>,
}

/// The link to one Central Command.
pub struct Link {
    base: url::Url,
    dir: PathBuf,
    server_roots: Option<Vec<u8>>,
    state: State,
    tls_key: Zeroizing<String>,
    /// Opens what Central Command seals to this appliance (channel secrets).
    seal_key: link_proto::seal::OpeningKey,
    seal_seed: Zeroizing<Vec<u8>>,
    plain_client: std::sync::OnceLock<reqwest::Client>,
    mtls_client: std::sync::OnceLock<reqwest::Client>,
    /// Per platform, SHA-256 (hex) of the agent release document the appliance refused or did
    /// not want, in memory only: judged again after a restart (the appliance's root or
    /// configuration may have changed), never on every step.
    agent_releases_declined: std::collections::BTreeMap<String, String>,
    /// The packets Central Command refused, in memory only: not sent again until a restart.
    packets_refused: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("base", &self.base.as_str())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Link {
    /// Opens (or starts) the link state in `dir` for Central Command at `base` (`https://…`),
    /// trusting `server_ca_pem` for its certificate if given, else the system's roots.
    pub fn open(
        base: &url::Url,
        dir: &Path,
        server_ca_pem: Option<Vec<u8>>,
    ) -> Result<Link, LinkError> {
        if base.scheme() != "https" {
            return Err(LinkError::Local(format!(
                "central.url `{base}` must be https://"
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| LinkError::State {
            path: dir.to_path_buf(),
            source,
        })?;
        let key_path = dir.join("tls.key");
        let tls_key = match std::fs::read_to_string(&key_path) {
            Ok(text) => Zeroizing::new(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate_for(&PKCS_ED25519)
                    .map_err(|err| LinkError::Local(format!("making the link key: {err}")))?;
                let pem = Zeroizing::new(key.serialize_pem());
                durable::write(&key_path, pem.as_bytes(), 0o600)?;
                pem
            }
            Err(source) => {
                return Err(LinkError::State {
                    path: key_path,
                    source,
                });
            }
        };
        let seal_path = dir.join("seal.key");
        let seal_seed = match std::fs::read(&seal_path) {
            Ok(bytes) if bytes.len() == 32 => Zeroizing::new(bytes),
            Ok(_) => {
                return Err(LinkError::Local(format!(
                    "{} is not a sealing key (32 bytes); remove it and the link makes a new one",
                    seal_path.display()
                )));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new(vec![0u8; 32]);
                getrandom::fill(&mut seed).map_err(|err| {
                    LinkError::Local(format!("randomness for the sealing key: {err}"))
                })?;
                durable::write(&seal_path, &seed, 0o600)?;
                seed
            }
            Err(source) => {
                return Err(LinkError::State {
                    path: seal_path,
                    source,
                });
            }
        };
        let seal_key = link_proto::seal::OpeningKey::derive(&seal_seed);
        let state_path = dir.join("state.json");
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| LinkError::State {
                path: state_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, err),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => State {
                next_seq: 1,
                ..State::default()
            },
            Err(source) => {
                return Err(LinkError::State {
                    path: state_path,
                    source,
                });
            }
        };
        Ok(Link {
            base: base.clone(),
            dir: dir.to_path_buf(),
            server_roots: server_ca_pem,
            state,
            tls_key,
            seal_key,
            seal_seed,
            plain_client: std::sync::OnceLock::new(),
            mtls_client: std::sync::OnceLock::new(),
            agent_releases_declined: std::collections::BTreeMap::new(),
            packets_refused: std::collections::BTreeSet::new(),
        })
    }

    /// The witness's key, once known (for `osiris evidence verify --witness-key`).
    pub fn witness_key(&self) -> Option<&str> {
        self.state.witness_key.as_deref()
    }

    /// Where things stand without contacting anybody.
    pub fn status(&self) -> Option<LinkStatus> {
        match (self.state.appliance_id, self.state.enrollment_id) {
            (Some(appliance_id), _) => Some(LinkStatus::Linked {
                appliance_id,
                witness_size: self.state.witness_size,
            }),
            (None, Some(enrollment_id)) => Some(LinkStatus::WaitingForClaim { enrollment_id }),
            (None, None) => None,
        }
    }

    fn save(&self) -> Result<(), LinkError> {
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|err| LinkError::Local(format!("encoding the link state: {err}")))?;
        durable::write(&self.dir.join("state.json"), &bytes, 0o600)?;
        Ok(())
    }

    fn tls_public_key(&self) -> Result<String, LinkError> {
        let key = KeyPair::from_pem(&self.tls_key).map_err(|err| {
            LinkError::Local(format!("the link key in {}: {err}", self.dir.display()))
        })?;
        Ok(BASE64.encode(key.subject_public_key_info()))
    }

    /// The HTTPS client for a request, built once per kind (with or without the client
    /// certificate) so a step's requests share connections instead of each making its own.
    fn client(&self, with_certificate: bool) -> Result<reqwest::Client, LinkError> {
        let mtls = with_certificate && self.state.certificate_pem.is_some();
        let cell = if mtls {
            &self.mtls_client
        } else {
            &self.plain_client
        };
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let client = self.build_client(mtls)?;
        Ok(cell.get_or_init(|| client).clone())
    }

    fn build_client(&self, with_certificate: bool) -> Result<reqwest::Client, LinkError> {
        use rustls::pki_types::pem::PemObject;
        use rustls_platform_verifier::BuilderVerifierExt;
        let local =
            |what: &str, err: &dyn std::fmt::Display| LinkError::Local(format!("{what}: {err}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| local("TLS", &err))?;
        let builder = match &self.server_roots {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                    roots
                        .add(cert.map_err(|err| local("central.ca_file", &err))?)
                        .map_err(|err| local("central.ca_file", &err))?;
                }
                builder.with_root_certificates(roots)
            }
            None => builder
                .with_platform_verifier()
                .map_err(|err| local("TLS roots", &err))?,
        };
        let config = match (&self.state.certificate_pem, with_certificate) {
            (Some(cert), true) => {
                let chain = vec![
                    rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes())
                        .map_err(|err| local("the link certificate", &err))?,
                ];
                let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.tls_key.as_bytes())
                    .map_err(|err| local("the link key", &err))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| local("the link certificate", &err))?
            }
            _ => builder.with_no_client_auth(),
        };
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(Duration::from_secs(30))
            // Steps are minutes apart: a connection idle longer is not reused (the server may
            // have closed it); within a step the requests share one.
            .pool_idle_timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| local("HTTP client", &err))
    }

    async fn post<Req: Serialize, Resp: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        path: &str,
        body: &Req,
        with_certificate: bool,
    ) -> Result<Result<(u16, Resp), (u16, ErrorBody)>, LinkError> {
        let url = self
            .base
            .join(path)
            .map_err(|err| LinkError::Local(format!("{}{path}: {err}", self.base)))?;
        let body = serde_json::to_vec(body).map_err(|err| LinkError::Local(err.to_string()))?;
        self.post_raw(what, url, body, "application/json", with_certificate)
            .await
    }

    async fn post_raw<Resp: for<'de> Deserialize<'de>>(
        &self,
        what: &'static str,
        url: url::Url,
        body: Vec<u8>,
        content_type: &str,
        with_certificate: bool,
    ) -> Result<Result<(u16, Resp), (u16, ErrorBody)>, LinkError> {
        let unreachable = |err: &dyn std::fmt::Display| LinkError::Unreachable {
            url: self.base.to_string(),
            reason: err.to_string(),
        };
        let mut response = self
            .client(with_certificate)?
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .map_err(|err| unreachable(&error_chain(&err)))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| unreachable(&err))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER {
                return Err(unreachable(&"the answer is too large"));
            }
        }
        if (200..300).contains(&status) {
            let parsed = serde_json::from_slice(&bytes).map_err(|err| LinkError::Refused {
                what,
                status,
                message: format!("unreadable answer: {err}"),
            })?;
            Ok(Ok((status, parsed)))
        } else {
            let error = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                error: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                next_seq: None,
                witness_size: None,
            });
            Ok(Err((status, error)))
        }
    }

    /// One step: enroll, collect the certificate, or push what changed (the newest checkpoint,
    /// the device snapshot, incidents, healing-log entries, the update state), seal the partner
    /// users' operator actions, deliver asked-for kits, and take the partner's channels and
    /// release offer. Returns where the link stands; an error means the item that failed is to be
    /// retried on a later step (what was taken before it stays taken). When Central Command
    /// refuses the checkpoint, only the asked-for kits are delivered before the error returns.
    pub async fn step(&mut self, appliance: &impl Appliance) -> Result<LinkStatus, LinkError> {
        if self.state.appliance_id.is_none() {
            return self.enroll_or_pickup(appliance).await;
        }
        let status = match self.push_checkpoint(appliance).await {
            Ok(status) => status,
            // A refused checkpoint (a log Central Command's witness calls rewritten) holds back
            // everything else this step would push, but not the kits Central Command asked
            // for: it judges them itself and tells the partner why it refuses them.
            Err(err @ LinkError::Refused { .. }) => {
                self.deliver_kits(appliance).await?;
                return Err(err);
            }
            Err(err) => return Err(err),
        };
        self.push_devices(appliance).await?;
        // Before the incidents, so an acknowledgement sealed now goes out with this step's
        // incidents; a failure here does not hold back the rest of the step and is reported
        // at its end.
        let actions = self.take_operator_actions(appliance).await;
        self.push_incidents(appliance).await?;
        self.push_healing(appliance).await?;
        self.push_update(appliance).await?;
        self.deliver_kits(appliance).await?;
        // Channels before the release offer: an appliance whose updater is not set up refuses
        // offers, and that must not keep its partner's escalation channels away.
        self.take_channels(appliance).await?;
        // Agent releases before the image offer, for the same reason; a failure is reported
        // at the end of the step.
        let agents = self.take_agent_releases(appliance).await;
        self.take_manifest_offer(appliance).await?;
        // Last: a packet is large, and a failure must not hold back the rest of the step.
        let packets = self.deliver_packets(appliance).await;
        actions?;
        agents?;
        packets?;
        Ok(status)
    }

    /// Asks for what partner users did about this appliance's incidents, has the appliance seal
    /// each (once: it answers a repeat from its record), and reports which bundles seal them.
    /// An action that is not one is not sealed (and stays waiting at Central Command).
    async fn take_operator_actions(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let offered = match self
            .post::<_, link_proto::OperatorActions>(
                "the operator actions",
                link_proto::path::OPERATOR_ACTIONS,
                &serde_json::json!({}),
                true,
            )
            .await?
        {
            Ok((_, offered)) => offered.actions,
            Err((404, _)) => {
                // A Central Command from before operator actions: nothing to take.
                tracing::debug!("Central Command hands out no operator actions.");
                return Ok(());
            }
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what: "the operator actions",
                    status,
                    message: error.error,
                });
            }
        };
        if offered.len() > link_proto::MAX_OPERATOR_ACTIONS {
            return Err(LinkError::Local(format!(
                "Central Command handed out {} operator actions at once; at most {}",
                offered.len(),
                link_proto::MAX_OPERATOR_ACTIONS
            )));
        }
        let mut usable: Vec<link_proto::OperatorAction> = Vec::with_capacity(offered.len());
        for action in offered {
            if usable.iter().any(|taken| taken.id == action.id) {
                continue;
            }
            match action.problem() {
                None => usable.push(action),
                Some(problem) => tracing::warn!(
                    action_id = action.id,
                    %problem,
                    "Central Command handed out an operator action that is not one; it is not sealed."
                ),
            }
        }
        if usable.is_empty() {
            return Ok(());
        }
        let mut sealed = appliance
            .operator_actions(usable.clone())
            .await
            .map_err(LinkError::Local)?;
        if let Some(problem) = sealed.iter().find_map(link_proto::SealedAction::problem) {
            return Err(LinkError::Local(problem));
        }
        // Report only what was asked for, each once.
        let mut reported = std::collections::BTreeSet::new();
        sealed.retain(|s| usable.iter().any(|a| a.id == s.id) && reported.insert(s.id));
        if sealed.is_empty() {
            return Ok(());
        }
        let report = link_proto::SealedActions { sealed };
        match self
            .post::<_, link_proto::SealedAnswer>(
                "the sealed operator actions",
                link_proto::path::OPERATOR_ACTIONS_SEALED,
                &report,
                true,
            )
            .await?
        {
            Ok((_, answer)) => {
                tracing::info!(
                    sealed = report.sealed.len(),
                    recorded = answer.recorded,
                    "Operator actions from Central Command are sealed as evidence."
                );
                Ok(())
            }
            Err((status, error)) => Err(LinkError::Refused {
                what: "the sealed operator actions",
                status,
                message: error.error,
            }),
        }
    }

    /// Asks for the partner's escalation channels, opens their secrets (sealed to this
    /// appliance) and hands a changed set to the appliance.
    async fn take_channels(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let request = link_proto::ChannelsRequest {
            sealing_key: self.seal_key.public(),
        };
        let offer = match self
            .post::<_, link_proto::ChannelsOffer>(
                "the escalation channels",
                link_proto::path::CHANNELS,
                &request,
                true,
            )
            .await?
        {
            Ok((_, offer)) => offer,
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what: "the escalation channels",
                    status,
                    message: error.error,
                });
            }
        };
        let appliance_id = self.state.appliance_id.unwrap_or_default();
        let mut channels = Vec::with_capacity(offer.channels.len());
        for channel in offer.channels {
            if !link_proto::is_channel_name(&channel.name)
                || !link_proto::CHANNEL_KINDS.contains(&channel.kind.as_str())
                || !link_proto::SEVERITIES.contains(&channel.min_severity.as_str())
                || (channel.kind == "email")
                    != channel
                        .email
                        .as_ref()
                        .is_some_and(|e| e.problem().is_none())
            {
                return Err(LinkError::Local(format!(
                    "Central Command sent an unusable channel `{}`",
                    channel.name.escape_debug()
                )));
            }
            let secret = self
                .seal_key
                .open(
                    &channel.secret,
                    &link_proto::seal::channel_info(appliance_id, &channel.name),
                )
                .map_err(|err| LinkError::Local(format!("channel `{}`: {err}", channel.name)))?;
            let secret = Zeroizing::new(String::from_utf8(secret.to_vec()).map_err(|_| {
                LinkError::Local(format!(
                    "channel `{}`: the secret is not text",
                    channel.name
                ))
            })?);
            channels.push(PartnerChannel {
                name: channel.name,
                kind: channel.kind,
                min_severity: channel.min_severity,
                url: channel.url,
                email: channel.email,
                secret,
            });
        }
        // Keyed with the sealing seed: the state file never holds a plain hash of a secret.
        let sum = {
            use hmac::{KeyInit, Mac};
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.seal_seed)
                .map_err(|err| LinkError::Local(err.to_string()))?;
            for c in &channels {
                for part in [
                    &c.name,
                    &c.kind,
                    &c.min_severity,
                    c.url.as_deref().unwrap_or(""),
                ] {
                    mac.update(part.as_bytes());
                    mac.update(b"\0");
                }
                mac.update(
                    serde_json::to_string(&c.email)
                        .unwrap_or_default()
                        .as_bytes(),
                );
                mac.update(c.secret.as_bytes());
                mac.update(b"\n");
            }
            hex::encode(mac.finalize().into_bytes())
        };
        let unchanged = self.state.channels_taken.as_deref() == Some(sum.as_str())
            || (self.state.channels_taken.is_none() && channels.is_empty());
        if unchanged {
            return Ok(());
        }
        tracing::info!(
            channels = channels.len(),
            "the partner's escalation channels changed"
        );
        appliance
            .set_partner_channels(channels)
            .await
            .map_err(LinkError::Local)?;
        self.state.channels_taken = Some(sum);
        self.save()
    }

    /// Asks which endpoint-agent releases the partner offers and has the appliance judge each new
    /// one (fetching its binary when the appliance wants it). Each offer is judged once: added
    /// or held is remembered (durably) until the offer changes, refused or not wanted until the
    /// offer changes or the link is opened again (osirisd restarted, perhaps with another
    /// `[agents]` configuration); a failure (network, a refused download, the appliance's
    /// store) is retried next step.
    async fn take_agent_releases(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let what = "the agent release offers";
        let offers = match self
            .post::<_, link_proto::AgentReleaseOffers>(
                what,
                link_proto::path::AGENT_RELEASES,
                &serde_json::json!({}),
                true,
            )
            .await?
        {
            Ok((_, offers)) => offers.releases,
            Err((404, _)) => {
                tracing::debug!("Central Command offers no agent releases.");
                return Ok(());
            }
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what,
                    status,
                    message: error.error,
                });
            }
        };
        for offer in offers {
            let sum = digest(&offer.manifest);
            if self.state.agent_releases_taken.get(&offer.platform) == Some(&sum)
                || self.agent_releases_declined.get(&offer.platform) == Some(&sum)
            {
                continue;
            }
            let answer = match appliance
                .judge_agent_release(&offer)
                .await
                .map_err(LinkError::Local)?
            {
                Some(answer) => answer,
                None => {
                    let binary = self.fetch_agent_binary(&offer).await?;
                    appliance
                        .add_agent_release(&offer, binary)
                        .await
                        .map_err(LinkError::Local)?
                }
            };
            let (platform, version) = (&offer.platform, &offer.version);
            match &answer {
                AgentReleaseAnswer::Added => tracing::info!(
                    "the partner's agent release {platform} {version} is added to the appliance's store"
                ),
                AgentReleaseAnswer::Held => {}
                AgentReleaseAnswer::NotWanted(why) => tracing::info!(
                    "agent release {platform} {version} offered by Central Command is not taken: {why}"
                ),
                AgentReleaseAnswer::Refused(why) => tracing::warn!(
                    "the partner's agent release {platform} {version} is refused (not tried again until the offer changes or osirisd restarts): {why}"
                ),
            }
            match answer {
                AgentReleaseAnswer::Added | AgentReleaseAnswer::Held => {
                    self.agent_releases_declined.remove(&offer.platform);
                    self.state
                        .agent_releases_taken
                        .insert(offer.platform.clone(), sum);
                    self.save()?;
                }
                AgentReleaseAnswer::NotWanted(_) | AgentReleaseAnswer::Refused(_) => {
                    self.agent_releases_declined
                        .insert(offer.platform.clone(), sum);
                }
            }
        }
        Ok(())
    }

    /// The binary of an offered agent release, at most its announced size.
    async fn fetch_agent_binary(
        &self,
        offer: &link_proto::AgentReleaseOffer,
    ) -> Result<Vec<u8>, LinkError> {
        let what = "the agent release binary";
        let path = link_proto::agent_release_binary_path(offer.id);
        let url = self
            .base
            .join(&path)
            .map_err(|err| LinkError::Local(format!("{}{path}: {err}", self.base)))?;
        let unreachable = |err: &dyn std::fmt::Display| LinkError::Unreachable {
            url: self.base.to_string(),
            reason: err.to_string(),
        };
        let limit = usize::try_from(offer.size.min(MAX_AGENT_BINARY)).unwrap_or(0);
        let mut response = self
            .client(true)?
            .post(url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|err| unreachable(&error_chain(&err)))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| unreachable(&err))? {
            bytes.extend_from_slice(&chunk);
            if (200..300).contains(&status) && bytes.len() > limit {
                return Err(LinkError::Refused {
                    what,
                    status,
                    message: format!(
                        "the binary is longer than the {} bytes announced",
                        offer.size
                    ),
                });
            }
            if !(200..300).contains(&status) && bytes.len() > MAX_ANSWER {
                break;
            }
        }
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|body| body.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(LinkError::Refused {
                what,
                status,
                message: error,
            });
        }
        Ok(bytes)
    }

    /// Asks which release the partner offers and hands a changed offer to the updater.
    async fn take_manifest_offer(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let offer = match self
            .post::<_, link_proto::ManifestOffer>(
                "the release offer",
                link_proto::path::MANIFEST,
                &serde_json::json!({}),
                true,
            )
            .await?
        {
            Ok((_, offer)) => offer,
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what: "the release offer",
                    status,
                    message: error.error,
                });
            }
        };
        let offer = match (offer.version, offer.manifest) {
            (Some(version), Some(manifest)) => Some((version, manifest.into_bytes())),
            _ => None,
        };
        let sum = match &offer {
            Some(offer) => digest(offer),
            None => "none".to_owned(),
        };
        // Nothing offered yet and nothing offered now: nothing to tell the updater.
        let unchanged = self.state.manifest_offered.as_deref() == Some(sum.as_str())
            || (self.state.manifest_offered.is_none() && offer.is_none());
        if unchanged {
            return Ok(());
        }
        if let Some((version, _)) = &offer {
            tracing::info!(version, "the partner offers an image release");
        }
        appliance
            .offer_manifest(offer)
            .await
            .map_err(LinkError::Local)?;
        self.state.manifest_offered = Some(sum);
        self.save()
    }

    /// Answers the kit requests waiting at Central Command: exports each kit, sends it as a tar
    /// archive, and reports a kit Central Command refused (it is not asked for again).
    async fn deliver_kits(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let pending = match self
            .post::<_, link_proto::KitRequests>(
                "the kit requests",
                link_proto::path::KIT_REQUESTS,
                &serde_json::json!({}),
                true,
            )
            .await?
        {
            Ok((_, pending)) => pending.requests,
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what: "the kit requests",
                    status,
                    message: error.error,
                });
            }
        };
        for request in pending {
            let dir = self.dir.join(format!("kit-{}", request.id));
            let _ = std::fs::remove_dir_all(&dir);
            let exported = appliance.export_kit(&dir).await.map_err(LinkError::Local);
            let archive = exported.and_then(|()| tar_kit(&dir, request.id));
            let _ = std::fs::remove_dir_all(&dir);
            let archive = archive?;
            let url = self
                .base
                .join(&link_proto::kit_upload_path(request.id))
                .map_err(|err| LinkError::Local(err.to_string()))?;
            let size = archive.len();
            match self
                .post_raw::<link_proto::KitUploadResponse>(
                    "the evidence kit",
                    url,
                    archive,
                    "application/x-tar",
                    true,
                )
                .await?
            {
                Ok((_, answer)) if answer.status == "verified" => {
                    tracing::info!(
                        request = request.id,
                        bytes = size,
                        "evidence kit delivered and verified by Central Command"
                    );
                }
                Ok((status, answer)) => {
                    return Err(LinkError::Refused {
                        what: "the evidence kit",
                        status,
                        message: answer.problems.join("; "),
                    });
                }
                Err((status, error)) => {
                    return Err(LinkError::Refused {
                        what: "the evidence kit",
                        status,
                        message: error.error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends the monthly packets Central Command does not keep yet: the sealed bundle, then each
    /// file it still lacks, one request per file (a packet of any size, no request above one
    /// file). A refused packet is not sent again until the appliance restarts.
    async fn deliver_packets(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let local = appliance.packets().await.map_err(LinkError::Local)?;
        if local.is_empty() {
            return Ok(());
        }
        let held = match self
            .post::<_, link_proto::PacketsHeld>(
                "the packets held",
                link_proto::path::PACKETS,
                &serde_json::json!({}),
                true,
            )
            .await?
        {
            Ok((_, held)) => held,
            // A Central Command without packets: nothing to deliver to.
            Err((404, _)) => return Ok(()),
            Err((status, error)) => {
                return Err(LinkError::Refused {
                    what: "the packets held",
                    status,
                    message: error.error,
                });
            }
        };
        for packet in local {
            if held.periods.contains(&packet.period)
                || self.packets_refused.contains(&packet.period)
            {
                continue;
            }
            let begun = held.pending.iter().find(|p| p.period == packet.period);
            let missing = match begun {
                Some(progress) => progress.missing.clone(),
                None => {
                    let offer = link_proto::PacketOffer {
                        bundle: String::from_utf8_lossy(&packet.bundle_line).into_owned(),
                    };
                    match self
                        .post::<_, link_proto::PacketProgress>(
                            "the monthly packet",
                            &link_proto::packet_path(&packet.period),
                            &offer,
                            true,
                        )
                        .await?
                    {
                        Ok((_, progress)) => progress.missing,
                        Err((status, error)) => {
                            self.packets_refused.insert(packet.period.clone());
                            return Err(LinkError::Refused {
                                what: "the monthly packet",
                                status,
                                message: error.error,
                            });
                        }
                    }
                }
            };
            let mut bytes_sent = 0;
            for name in &missing {
                if !packet.files.contains(name) {
                    self.packets_refused.insert(packet.period.clone());
                    return Err(LinkError::Local(format!(
                        "Central Command asks for `{name}`, which the packet of {} does not hold",
                        packet.period
                    )));
                }
                let path = packet.dir.join(name);
                let bytes = std::fs::read(&path).map_err(|source| LinkError::State {
                    path: path.clone(),
                    source,
                })?;
                if bytes.len() > link_proto::MAX_PACKET_FILE {
                    self.packets_refused.insert(packet.period.clone());
                    return Err(LinkError::Local(format!(
                        "{} is {} MiB, more than Central Command accepts in one file ({} MiB)",
                        path.display(),
                        bytes.len() >> 20,
                        link_proto::MAX_PACKET_FILE >> 20
                    )));
                }
                bytes_sent += bytes.len();
                let url = self
                    .base
                    .join(&link_proto::packet_file_path(&packet.period, name))
                    .map_err(|err| LinkError::Local(err.to_string()))?;
                if let Err((status, error)) = self
                    .post_raw::<link_proto::PacketProgress>(
                        "a monthly packet's file",
                        url,
                        bytes,
                        "application/octet-stream",
                        true,
                    )
                    .await?
                {
                    if status == 400 {
                        self.packets_refused.insert(packet.period.clone());
                    }
                    return Err(LinkError::Refused {
                        what: "a monthly packet's file",
                        status,
                        message: error.error,
                    });
                }
            }
            tracing::info!(
                period = %packet.period,
                files = missing.len(),
                bytes = bytes_sent,
                "monthly packet delivered to Central Command"
            );
        }
        Ok(())
    }

    /// Pushes one item with the next sequence number; on a refusal, adopts the sequence number
    /// Central Command expects so the next step retries in order.
    async fn push_item(
        &mut self,
        what: &'static str,
        item: PushItem,
    ) -> Result<PushResponse, LinkError> {
        let request = PushRequest {
            seq: self.state.next_seq,
            item,
        };
        match self
            .post::<_, PushResponse>(what, link_proto::path::PUSH, &request, true)
            .await?
        {
            Ok((_, answer)) => {
                self.state.next_seq = answer.next_seq;
                Ok(answer)
            }
            Err((status, error)) => {
                if let Some(next) = error.next_seq
                    && next != self.state.next_seq
                {
                    self.state.next_seq = next;
                    self.save()?;
                }
                Err(LinkError::Refused {
                    what,
                    status,
                    message: error.error,
                })
            }
        }
    }

    /// Sends the device snapshot when it differs from the last one Central Command took.
    async fn push_devices(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let (at, devices, compliance) = appliance.devices().await.map_err(LinkError::Local)?;
        let digest = digest(&(&devices, &compliance));
        if self.state.devices_sent.as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        let item = PushItem::Devices {
            at,
            devices,
            compliance,
        };
        self.push_item("the device summary", item).await?;
        self.state.devices_sent = Some(digest);
        self.save()
    }

    /// Sends the incidents that changed since Central Command last took them, in batches.
    async fn push_incidents(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let incidents = appliance.incidents().await.map_err(LinkError::Local)?;
        let mut changed = Vec::new();
        let mut kept = std::collections::BTreeMap::new();
        for incident in incidents {
            let key = format!("{}@{}", incident.id, incident.opened_at);
            let sum = digest(&incident);
            if self.state.incidents_sent.get(&key) != Some(&sum) {
                changed.push((key.clone(), sum.clone(), incident));
            }
            kept.insert(key, sum);
        }
        // Forget incidents the appliance no longer keeps: Central Command keeps their history.
        self.state
            .incidents_sent
            .retain(|key, _| kept.contains_key(key));
        for batch in changed.chunks(link_proto::MAX_BATCH) {
            let item = PushItem::Incidents {
                incidents: batch.iter().map(|(_, _, i)| i.clone()).collect(),
            };
            self.push_item("the incidents", item).await?;
            for (key, sum, _) in batch {
                self.state.incidents_sent.insert(key.clone(), sum.clone());
            }
            self.save()?;
        }
        Ok(())
    }

    /// Sends healing-log entries after the last one Central Command took, in batches, in order.
    async fn push_healing(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        loop {
            let entries = appliance
                .healing_after(self.state.healing_sent, link_proto::MAX_BATCH)
                .await
                .map_err(LinkError::Local)?;
            let Some(last) = entries.last().map(|entry| entry.id) else {
                return Ok(());
            };
            let full = entries.len() >= link_proto::MAX_BATCH;
            self.push_item("the healing log", PushItem::Healing { entries })
                .await?;
            self.state.healing_sent = last;
            self.save()?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends the update state when it changed.
    async fn push_update(&mut self, appliance: &impl Appliance) -> Result<(), LinkError> {
        let state = appliance.update_state().await.map_err(LinkError::Local)?;
        let sum = digest(&state);
        if self.state.update_sent.as_deref() == Some(sum.as_str()) {
            return Ok(());
        }
        self.push_item("the update state", PushItem::Update { state })
            .await?;
        self.state.update_sent = Some(sum);
        self.save()
    }

    async fn enroll_or_pickup(
        &mut self,
        appliance: &impl Appliance,
    ) -> Result<LinkStatus, LinkError> {
        let Some(enrollment_id) = self.state.enrollment_id else {
            let appliance_key = appliance.appliance_key();
            let tls_public_key = self.tls_public_key()?;
            let proof =
                link_proto::claim_proof(&appliance.claim_code(), &appliance_key, &tls_public_key)
                    .map_err(|err| LinkError::Local(format!("the claim code: {err}")))?;
            let request = EnrollRequest {
                signature: appliance.sign_link_message(&link_proto::enroll_message(
                    &appliance_key,
                    &tls_public_key,
                )),
                claim_proof: BASE64.encode(proof),
                appliance_key,
                tls_public_key,
            };
            return match self
                .post::<_, EnrollResponse>(
                    "the enrollment",
                    link_proto::path::ENROLL,
                    &request,
                    false,
                )
                .await?
            {
                Ok((_, answer)) => {
                    self.state.enrollment_id = Some(answer.enrollment_id);
                    self.save()?;
                    tracing::info!(
                        enrollment_id = answer.enrollment_id,
                        "asked Central Command to be claimed"
                    );
                    Ok(LinkStatus::WaitingForClaim {
                        enrollment_id: answer.enrollment_id,
                    })
                }
                Err((status, error)) => Err(LinkError::Refused {
                    what: "the enrollment",
                    status,
                    message: error.error,
                }),
            };
        };
        let time = now();
        let request = PickupRequest {
            enrollment_id,
            time,
            signature: appliance
                .sign_link_message(&link_proto::pickup_message(enrollment_id, time)),
        };
        match self
            .post::<_, PickupResponse>(
                "the certificate pickup",
                link_proto::path::PICKUP,
                &request,
                false,
            )
            .await?
        {
            Ok((_, answer)) if answer.status == "issued" => {
                let (Some(appliance_id), Some(cert), Some(witness)) = (
                    answer.appliance_id,
                    answer.certificate_pem,
                    answer.witness_key,
                ) else {
                    return Err(LinkError::Refused {
                        what: "the certificate pickup",
                        status: 200,
                        message: "an issued answer without certificate, id or witness key".into(),
                    });
                };
                self.state.appliance_id = Some(appliance_id);
                self.state.certificate_pem = Some(cert);
                self.state.witness_key = Some(witness);
                self.save()?;
                tracing::info!(
                    appliance_id,
                    "claimed by the partner; linked to Central Command"
                );
                Ok(LinkStatus::Linked {
                    appliance_id,
                    witness_size: self.state.witness_size,
                })
            }
            Ok(_) => Ok(LinkStatus::WaitingForClaim { enrollment_id }),
            Err((404, _)) => {
                // Expired (24 h) or unknown: ask again on the next step.
                self.state.enrollment_id = None;
                self.save()?;
                Err(LinkError::Refused {
                    what: "the certificate pickup",
                    status: 404,
                    message: "the enrollment request expired; a new one is made".into(),
                })
            }
            Err((status, error)) => Err(LinkError::Refused {
                what: "the certificate pickup",
                status,
                message: error.error,
            }),
        }
    }

    async fn push_checkpoint(
        &mut self,
        appliance: &impl Appliance,
    ) -> Result<LinkStatus, LinkError> {
        let appliance_id = self.state.appliance_id.unwrap_or_default();
        let linked = |state: &State| LinkStatus::Linked {
            appliance_id,
            witness_size: state.witness_size,
        };
        let Some((size, note)) = appliance
            .latest_checkpoint()
            .await
            .map_err(LinkError::Local)?
        else {
            return Ok(linked(&self.state));
        };
        if self.state.pushed_size == Some(size) {
            return Ok(linked(&self.state));
        }
        let from = self.state.witness_size.min(size);
        let proof = if from == 0 || from == size {
            Vec::new()
        } else {
            appliance
                .consistency_proof(from, size)
                .await
                .map_err(LinkError::Local)?
        };
        let request = PushRequest {
            seq: self.state.next_seq,
            item: PushItem::Checkpoint {
                note,
                proof_from: from,
                proof: proof.iter().map(|hash| BASE64.encode(hash)).collect(),
            },
        };
        match self
            .post::<_, PushResponse>("the checkpoint", link_proto::path::PUSH, &request, true)
            .await?
        {
            Ok((_, answer)) => {
                if let Some(line) = &answer.cosignature {
                    appliance
                        .keep_cosignature(size, line)
                        .await
                        .map_err(LinkError::Local)?;
                }
                self.state.next_seq = answer.next_seq;
                self.state.witness_size = answer.witness_size.unwrap_or(size);
                self.state.pushed_size = Some(size);
                self.save()?;
                Ok(linked(&self.state))
            }
            Err((status, error)) => {
                // Central Command is the authority on sequence numbers and the witnessed size:
                // adopt what it says and let the next step retry.
                let mut changed = false;
                if let Some(next) = error.next_seq
                    && next != self.state.next_seq
                {
                    self.state.next_seq = next;
                    changed = true;
                }
                if let Some(witnessed) = error.witness_size
                    && witnessed != self.state.witness_size
                {
                    self.state.witness_size = witnessed;
                    changed = true;
                }
                if error.next_seq == Some(request.seq + 1) {
                    // Consumed but refused (a fork): recorded and alerted at Central Command.
                    // This checkpoint is not offered again; the next one will be.
                    self.state.pushed_size = Some(size);
                    changed = true;
                }
                if changed {
                    self.save()?;
                }
                Err(LinkError::Refused {
                    what: "the checkpoint",
                    status,
                    message: error.error,
                })
            }
        }
    }
}

/// The kit in `dir` as a tar archive whose one top directory is `osiris-kit-<request>`.
fn tar_kit(dir: &Path, request: i64) -> Result<Vec<u8>, LinkError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    let io = |source: std::io::Error| LinkError::State {
        path: dir.to_path_buf(),
        source,
    };
    builder
        .append_dir_all(format!("osiris-kit-{request}"), dir)
        .map_err(io)?;
    let archive = builder.into_inner().map_err(io)?;
    if archive.len() > link_proto::MAX_KIT {
        return Err(LinkError::Local(format!(
            "the evidence kit is {} MiB, more than Central Command accepts ({} MiB)",
            archive.len() >> 20,
            link_proto::MAX_KIT >> 20
        )));
    }
    Ok(archive)
}

/// SHA-256 (hex) of a value's JSON: what was sent, to send only changes.
fn digest(value: &impl Serialize) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(&bytes))
}

/// An error and its causes on one line (reqwest hides the TLS reason in its source chain).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

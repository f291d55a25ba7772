//! The `AgentGateway` service: `Enroll` (rate limited; the certificate is issued before the token
//! is taken, so a bad request never uses a token up) and `Connect` (the certificate identifies the
//! agent in the registry on every connect, so a revoked agent is refused at once; items are
//! verified, sealed in order with the registry's stored number in the same transaction, then
//! acknowledged).

use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_proto::v1::agent_gateway_server::AgentGateway;
use agent_proto::v1::{
    Ack, AgentMessage, DownloadChunk, DownloadRequest, EnrollRequest, EnrollResponse,
    GatewayMessage, RenewCertificate, agent_message, gateway_message,
};
use agent_proto::{CaPin, Validate};
use ed25519_dalek::VerifyingKey;
use evidence_schema::AgentEnrollmentBody;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::limiter::{EnrollLimiter, Refused};
use crate::sessions::ConnectedAgent;
use crate::{
    AgentCa, AgentEvent, AgentInfo, GatewayHandle, GatewaySettings, ReportedResult, platform_name,
};

/// How long a new stream may take to send its Hello.
const HELLO_WITHIN: Duration = Duration::from_secs(30);

/// Items taken from a stream in one batch (one transaction, one acknowledgement).
const BATCH: usize = 64;

pub(crate) struct Service {
    settings: GatewaySettings,
    ca: Arc<AgentCa>,
    store: Arc<store::Store>,
    events: mpsc::Sender<AgentEvent>,
    handle: GatewayHandle,
    limiter: Mutex<EnrollLimiter>,
    started: Instant,
}

impl Service {
    pub(crate) fn new(
        settings: GatewaySettings,
        ca: AgentCa,
        store: Arc<store::Store>,
        events: mpsc::Sender<AgentEvent>,
        handle: GatewayHandle,
    ) -> Self {
        let limiter = Mutex::new(EnrollLimiter::new(settings.enroll_limits));
        Self {
            settings,
            ca: Arc::new(ca),
            store,
            events,
            handle,
            limiter,
            started: Instant::now(),
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, EnrollLimiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn clock(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn unavailable(what: &str, err: &store::StoreError) -> Status {
    tracing::error!(error = %err, what, "Agent gateway: the store failed.");
    Status::unavailable(format!(
        "the appliance could not {what}; nothing was lost, try again"
    ))
}

#[tonic::async_trait]
impl AgentGateway for Service {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let peer = request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
        let clock = self.clock();
        if let Err(refused) = self.limiter().admit(peer, clock) {
            let (what, wait) = match refused {
                Refused::Address(wait) => ("from this address", wait),
                Refused::Total(wait) => ("in all", wait),
                Refused::LockedOut(wait) => ("with wrong tokens from this address", wait),
            };
            return Err(Status::resource_exhausted(format!(
                "too many enrollment attempts {what}; try again in {} s",
                wait.ceil()
            )));
        }
        let request = request.into_inner();
        request.validate()?;
        let device_key = agent_proto::device_key(&request.device_public_key).map_err(|err| {
            Status::invalid_argument(format!("EnrollRequest.device_public_key: {err}"))
        })?;
        let device = request.device.clone().unwrap_or_default();
        let platform = device.platform();
        let config = self
            .settings
            .configs
            .get(&(platform as i32))
            .cloned()
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "this appliance has no checks for agents on {}",
                    platform_name(platform)
                ))
            })?;
        let agent_id = format!("a-{}", hex(&rand::random::<[u8; 8]>()));
        // The certificate first: a malformed request must not use the token up.
        let issued = self
            .ca
            .issue_for_request(
                &request.csr_der,
                &agent_id,
                self.settings.certificate_lifetime,
            )
            .map_err(|err| Status::invalid_argument(format!("EnrollRequest.csr_der: {err}")))?;
        let token_id = match self
            .store
            .take_agent_token(crate::token_hash(&request.token), now())
            .await
        {
            Ok(Ok(id)) => id,
            Ok(Err(refusal)) => {
                self.limiter().failed(peer, self.clock());
                tracing::warn!(peer = %peer, why = refusal.as_str(), hostname = %device.hostname, "Enrollment refused: bad token.");
                return Err(Status::permission_denied(
                    "the enrollment token is not valid here (unknown, used up, expired or revoked); ask for a new one (`osiris agent token create` on the appliance)",
                ));
            }
            Err(err) => return Err(unavailable("check the enrollment token", &err)),
        };
        let hostname = device.hostname.to_lowercase();
        let body = AgentEnrollmentBody {
            agent_id: agent_id.clone(),
            hostname: hostname.clone(),
            os: device.os.clone(),
            os_version: device.os_version.clone(),
            platform: platform_name(platform).to_owned(),
            agent_version: device.agent_version.clone(),
            device_public_key: base64_encode(device_key.as_bytes()),
            certificate_sha256: hex(&issued.sha256),
            token_id: token_id.clone(),
        };
        let agent = store::NewAgent {
            agent_id: agent_id.clone(),
            hostname,
            os: device.os,
            os_version: device.os_version,
            platform: platform_name(platform).to_owned(),
            agent_version: device.agent_version,
            device_public_key: device_key.to_bytes(),
            cert_sha256: issued.sha256,
            cert_not_after: issued.not_after,
            token_id: token_id.clone(),
            enrolled_at: now(),
        };
        let draft = self.settings.drafts.enrollment(&body);
        if let Err(err) = self.store.enroll_agent(agent, draft).await {
            let _ = self.store.return_agent_token(&token_id).await;
            return Err(unavailable("record the enrollment", &err));
        }
        tracing::info!(agent = %agent_id, hostname = %body.hostname, platform = %body.platform, token = %token_id, "Agent enrolled.");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_chain_der: vec![issued.der, self.ca.der().to_vec()],
            agent_ca_der: self.ca.der().to_vec(),
            config: Some(config),
        }))
    }

    type ConnectStream = Pin<Box<dyn Stream<Item = Result<GatewayMessage, Status>> + Send>>;

    type DownloadStream = Pin<Box<dyn Stream<Item = Result<DownloadChunk, Status>> + Send>>;

    async fn download(
        &self,
        request: Request<DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let certificate = agent_proto::client_certificate(&request)?;
        let sha256 = *CaPin::of(certificate.as_ref()).digest();
        let record = self
            .store
            .agent_by_certificate(&sha256, now())
            .await
            .map_err(|err| unavailable("look the agent up", &err))?
            .filter(|record| record.revoked_at.is_none())
            .ok_or_else(|| {
                Status::permission_denied(
                    "this certificate belongs to no enrolled, unrevoked agent",
                )
            })?;
        let request = request.into_inner();
        request.validate()?;
        let file = self
            .settings
            .releases
            .as_ref()
            .and_then(|releases| crate::offers::binary(releases, &request.path))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "{} is not a release this appliance offers",
                    request.path
                ))
            })?;
        tracing::info!(agent = %record.agent.agent_id, path = %request.path, "Agent downloads a release.");
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(crate::offers::send_file(file, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let certificate = agent_proto::client_certificate(&request)?;
        let sha256 = *CaPin::of(certificate.as_ref()).digest();
        let record = self
            .store
            .agent_by_certificate(&sha256, now())
            .await
            .map_err(|err| unavailable("look the agent up", &err))?
            .ok_or_else(|| {
                Status::permission_denied(
                    "this certificate belongs to no agent enrolled on this appliance (or it was replaced and has expired); enroll again",
                )
            })?;
        if record.revoked_at.is_some() {
            return Err(Status::permission_denied(format!(
                "agent {} was revoked on this appliance; enroll again with a new token",
                record.agent.agent_id
            )));
        }
        let device_key = VerifyingKey::from_bytes(&record.agent.device_public_key)
            .map_err(|_| Status::internal("the stored device key is not valid"))?;
        let (tx, rx) = mpsc::channel(agent_proto::limits::MAX_ITEMS_IN_FLIGHT as usize);
        let stream = StreamTask {
            settings: self.settings.clone(),
            ca: Arc::clone(&self.ca),
            store: Arc::clone(&self.store),
            events: self.events.clone(),
            handle: self.handle.clone(),
            record,
            device_key,
            certificate: certificate.to_vec(),
            tx: tx.clone(),
        };
        tokio::spawn(async move {
            let agent_id = stream.record.agent.agent_id.clone();
            if let Err(status) = stream.run(request.into_inner()).await {
                tracing::info!(agent = %agent_id, code = ?status.code(), message = status.message(), "Agent stream ended.");
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

struct StreamTask {
    settings: GatewaySettings,
    ca: Arc<AgentCa>,
    store: Arc<store::Store>,
    events: mpsc::Sender<AgentEvent>,
    handle: GatewayHandle,
    record: store::AgentRecord,
    device_key: VerifyingKey,
    certificate: Vec<u8>,
    tx: mpsc::Sender<Result<GatewayMessage, Status>>,
}

impl StreamTask {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            agent_id: self.record.agent.agent_id.clone(),
            hostname: self.record.agent.hostname.clone(),
            platform: self.record.agent.platform.clone(),
        }
    }

    async fn send(&self, kind: gateway_message::Kind) -> Result<(), Status> {
        self.tx
            .send(Ok(GatewayMessage { kind: Some(kind) }))
            .await
            .map_err(|_| Status::cancelled("the agent went away"))
    }

    async fn run(self, mut inbound: Streaming<AgentMessage>) -> Result<(), Status> {
        let agent_id = self.record.agent.agent_id.clone();
        let first = tokio::time::timeout(HELLO_WITHIN, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 30 s"))??;
        let Some(first) = first else { return Ok(()) };
        first.validate()?;
        let Some(agent_message::Kind::Hello(hello)) = first.kind else {
            return Err(Status::failed_precondition(
                "the first message must be Hello",
            ));
        };
        if hello.agent_id != agent_id {
            return Err(Status::permission_denied(
                "Hello.agent_id is not the agent of this certificate",
            ));
        }
        // Fresh from the registry: an earlier stream of this agent may have stored more.
        let mut stored = self
            .store
            .agent(&agent_id)
            .await
            .map_err(|err| unavailable("look the agent up", &err))?
            .map_or(self.record.stored_seq, |record| record.stored_seq);
        self.send(gateway_message::Kind::Ack(Ack { up_to_seq: stored }))
            .await?;
        let platform = if self.record.agent.platform == "windows-x86_64" {
            2
        } else {
            1
        };
        if let Some(config) = self.settings.configs.get(&platform) {
            self.send(gateway_message::Kind::Config(config.clone()))
                .await?;
        }
        let mut not_after = crate::ca::not_after(&self.certificate).unwrap_or(0);
        self.renew_if_due(&mut not_after).await?;
        if let Some(offer) = self.settings.releases.as_ref().and_then(|releases| {
            crate::offers::offer(
                releases,
                &agent_id,
                &self.record.agent.platform,
                &hello.agent_version,
            )
        }) {
            self.send(gateway_message::Kind::UpdateOffer(offer)).await?;
        }
        let (commands_tx, mut commands) = mpsc::channel(32);
        let (generation, mut stop) = self.handle.register(
            ConnectedAgent {
                agent_id: agent_id.clone(),
                hostname: self.record.agent.hostname.clone(),
                since: now(),
                last_heartbeat: None,
                newest_seq: stored,
                queue_items: 0,
                clock_skew_ms: 0,
                agent_version: hello.agent_version.clone(),
                platform: self.record.agent.platform.clone(),
            },
            commands_tx,
        );
        tracing::info!(agent = %agent_id, hostname = %self.record.agent.hostname, version = %hello.agent_version, stored, "Agent connected.");
        let _ = self.events.send(AgentEvent::Connected(self.info())).await;
        let heartbeat = self
            .settings
            .configs
            .get(&platform)
            .map_or(60, |config| config.heartbeat_interval_seconds);
        let silent_limit = Duration::from_secs(u64::from(heartbeat) * 3 + 30);
        // A stream may last longer than a certificate: check for renewal while it is open.
        let mut renew_tick = tokio::time::interval(
            (self.settings.certificate_lifetime / 8)
                .clamp(Duration::from_secs(1), Duration::from_secs(3600)),
        );
        renew_tick.reset();
        let end = loop {
            tokio::select! {
                _ = renew_tick.tick() => {
                    if let Err(status) = self.renew_if_due(&mut not_after).await {
                        break Err(status);
                    }
                }
                why = &mut stop => {
                    break Err(Status::aborted(why.unwrap_or("the appliance ended the stream")));
                }
                Some(command) = commands.recv() => {
                    if self.tx.send(Ok(command)).await.is_err() {
                        break Ok(());
                    }
                }
                message = tokio::time::timeout(silent_limit, inbound.message()) => {
                    let message = match message {
                        Err(_) => break Err(Status::deadline_exceeded(format!(
                            "nothing from the agent for {} s (heartbeats are due every {heartbeat} s)",
                            silent_limit.as_secs()
                        ))),
                        Ok(Err(status)) => break Err(status),
                        Ok(Ok(None)) => break Ok(()),
                        Ok(Ok(Some(message))) => message,
                    };
                    let mut batch = vec![message];
                    while batch.len() < BATCH {
                        match inbound.message().now_or_never() {
                            Some(Ok(Some(message))) => batch.push(message),
                            _ => break,
                        }
                    }
                    match self.handle_batch(batch, &mut stored, generation).await {
                        Ok(()) => {}
                        Err(status) => break Err(status),
                    }
                }
            }
        };
        self.handle.unregister(&agent_id, generation);
        let _ = self
            .events
            .send(AgentEvent::Disconnected(self.info()))
            .await;
        end
    }

    /// Sends a fresh certificate when the newest one the agent has (`not_after`, updated) is past
    /// half its life.
    async fn renew_if_due(&self, not_after: &mut i64) -> Result<(), Status> {
        let lifetime =
            i64::try_from(self.settings.certificate_lifetime.as_secs()).unwrap_or(i64::MAX);
        if *not_after - now() > lifetime / 2 {
            return Ok(());
        }
        let agent_id = &self.record.agent.agent_id;
        let issued = self
            .ca
            .renew(
                &self.certificate,
                agent_id,
                self.settings.certificate_lifetime,
            )
            .map_err(|err| Status::internal(format!("renewing the certificate: {err}")))?;
        self.store
            .renew_agent_certificate(agent_id, issued.sha256, issued.not_after)
            .await
            .map_err(|err| unavailable("record the renewed certificate", &err))?;
        tracing::info!(agent = %agent_id, "Agent certificate renewed.");
        *not_after = issued.not_after;
        self.send(gateway_message::Kind::RenewCertificate(RenewCertificate {
            certificate_chain_der: vec![issued.der, self.ca.der().to_vec()],
        }))
        .await
    }

    /// Verifies, seals and acknowledges one batch. Items before a broken one are still stored and
    /// acknowledged; the broken one ends the stream.
    async fn handle_batch(
        &self,
        batch: Vec<AgentMessage>,
        stored: &mut u64,
        generation: u64,
    ) -> Result<(), Status> {
        let agent_id = &self.record.agent.agent_id;
        let drafts_ctx = &self.settings.drafts;
        let mut drafts = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut next = *stored + 1;
        let mut sequenced = false;
        let mut broken = None;
        for message in batch {
            if let Err(err) = message.validate() {
                broken = Some(Status::from(err));
                break;
            }
            let (first, last) = match &message.kind {
                Some(agent_message::Kind::Heartbeat(beat)) => {
                    let skew = beat.sent_at_unix_ms - now_ms();
                    self.handle.update(agent_id, generation, |info| {
                        info.last_heartbeat = Some(now());
                        info.newest_seq = beat.newest_seq;
                        info.queue_items = beat.queue_items;
                        info.clock_skew_ms = skew;
                    });
                    continue;
                }
                Some(agent_message::Kind::Hello(_)) | None => {
                    broken = Some(Status::failed_precondition("Hello comes once, first"));
                    break;
                }
                Some(agent_message::Kind::Result(result)) => (result.seq, result.seq),
                Some(agent_message::Kind::Gap(gap)) => (gap.first_seq, gap.last_seq),
                Some(agent_message::Kind::RemediationOutcome(outcome)) => {
                    (outcome.seq, outcome.seq)
                }
            };
            sequenced = true;
            if let Err(err) = agent_proto::check_in_flight("seq", last, *stored) {
                broken = Some(Status::resource_exhausted(err.to_string()));
                break;
            }
            if last < next {
                continue; // Stored already: acknowledged again below.
            }
            if first != next {
                broken = Some(Status::failed_precondition(format!(
                    "expected sequence number {next} next, got {first}; a drop must be sent as a Gap"
                )));
                break;
            }
            match message.kind {
                Some(agent_message::Kind::Result(result)) => {
                    if let Err(err) = agent_proto::verify_result(&self.device_key, &result) {
                        broken = Some(Status::invalid_argument(err.to_string()));
                        break;
                    }
                    drafts.push(drafts_ctx.result(agent_id, &result));
                    pending.push(Pending::Result(result));
                }
                Some(agent_message::Kind::Gap(gap)) => {
                    drafts.push(drafts_ctx.gap(agent_id, &gap));
                    tracing::warn!(agent = %agent_id, first = gap.first_seq, last = gap.last_seq, reason = crate::gap_reason_name(gap.reason()), "Agent dropped items; sealing the gap.");
                    pending.push(Pending::Gap(gap));
                }
                Some(agent_message::Kind::RemediationOutcome(outcome)) => {
                    drafts.push(drafts_ctx.remediation(agent_id, &outcome));
                    pending.push(Pending::Remediation(outcome));
                }
                _ => {}
            }
            next = last + 1;
        }
        if !drafts.is_empty() {
            let sealed = self
                .store
                .append_agent_items(agent_id, next - 1, now(), drafts)
                .await
                .map_err(|err| unavailable("store the agent's items", &err))?;
            *stored = next - 1;
            // Acknowledged as soon as it is durable; what osirisd makes of it follows.
            self.send(gateway_message::Kind::Ack(Ack { up_to_seq: *stored }))
                .await?;
            self.emit(pending, &sealed).await;
        } else if sequenced {
            self.send(gateway_message::Kind::Ack(Ack { up_to_seq: *stored }))
                .await?;
        }
        broken.map_or(Ok(()), Err)
    }

    async fn emit(&self, pending: Vec<Pending>, sealed: &[store::Appended]) {
        let mut results = Vec::new();
        for (item, appended) in pending.into_iter().zip(sealed) {
            match item {
                Pending::Result(result) => results.push(ReportedResult {
                    seq: result.seq,
                    status: crate::status_name(result.status()),
                    check_id: result.check_id,
                    facts: result.facts.into_iter().collect(),
                    observed_at_unix_ms: result.observed_at_unix_ms,
                    bundle_seq: appended.seq,
                }),
                Pending::Gap(gap) => {
                    let _ = self
                        .events
                        .send(AgentEvent::Gap {
                            agent: self.info(),
                            first_seq: gap.first_seq,
                            last_seq: gap.last_seq,
                            reason: crate::gap_reason_name(gap.reason()),
                            bundle_seq: appended.seq,
                        })
                        .await;
                }
                Pending::Remediation(outcome) => {
                    let _ = self
                        .events
                        .send(AgentEvent::Remediation {
                            agent: self.info(),
                            outcome,
                            bundle_seq: appended.seq,
                        })
                        .await;
                }
            }
        }
        if !results.is_empty() {
            let _ = self
                .events
                .send(AgentEvent::Results {
                    agent: self.info(),
                    results,
                })
                .await;
        }
    }
}

enum Pending {
    Result(agent_proto::v1::CheckResult),
    Gap(agent_proto::v1::Gap),
    Remediation(agent_proto::v1::RemediationOutcome),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

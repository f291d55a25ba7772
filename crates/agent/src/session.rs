//! One `Connect` stream, from the TLS connection to its end.
//!
//! The agent sends `Hello` (its last acknowledged sequence number and configuration revision)
//! and waits for the gateway's first `Ack`, the highest number the appliance has stored; only
//! then does it send, in order, every queued entry after that number, never more than 256
//! beyond the last acknowledgement (`agent_proto::check_in_flight`). A gap wider than that
//! window goes out in pieces that each end inside it. A `Heartbeat` follows the first `Ack` at
//! once and then every `heartbeat_interval_seconds`.
//!
//! From the gateway: `Ack` removes what it covers from the queue (one that goes backwards is
//! ignored, one beyond the last push is an error and ignored); `AgentConfig` is stored and
//! applied (schedule, heartbeat, queue bounds; applied even when the disk refuses it); `RunNow` and `RunRemediation` go to the worker
//! (a request ID seen before is ignored); `RenewCertificate` is stored for the next connection
//! when it is for this agent's TLS key and chains to the agent CA; an `UpdateOffer` goes to
//! `update` (verified before anything is fetched; an installed update ends the process). A message that fails
//! validation is logged and ignored.

use std::collections::VecDeque;
use std::time::Duration;

use agent_proto::limits::{MAX_ITEMS_IN_FLIGHT, PROTOCOL_VERSION};
use agent_proto::v1::{
    AgentConfig, AgentMessage, Gap, GapReason, GatewayMessage, Heartbeat, Hello, RemediationPhase,
    RemediationStatus, agent_message, gateway_message,
};
use agent_proto::{Validate, check_in_flight};
use agent_queue::Entry;
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::run::{Agent, Job, queue_limits};

/// How long the gateway has to answer `Hello` with an `Ack`.
const FIRST_ACK_WITHIN: Duration = Duration::from_secs(30);

/// Entries read from the queue at a time.
const READ_AHEAD: u64 = 64;

/// How a stream ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The agent is stopping.
    Stopping,
    /// The stream (or the attempt to open it) ended.
    Ended {
        /// Why, for the log and `status`.
        reason: String,
        /// Whether the gateway had answered `Hello`.
        established: bool,
    },
}

/// Connects, runs one stream, and returns how it ended.
pub(crate) async fn run_session(agent: &Agent, stopping: &mut watch::Receiver<bool>) -> SessionEnd {
    let chain = agent.certificate_chain();
    let connect = crate::tls::gateway_channel(
        &agent.identity.gateway,
        &agent.agent_ca,
        &chain,
        &agent.tls_key_pem,
    );
    let channel = tokio::select! {
        _ = stopping.changed() => return SessionEnd::Stopping,
        res = connect => match res {
            Ok(channel) => channel,
            Err(err) => return ended(connect_words(&crate::error_chain(&err)), false),
        },
    };
    let stats = match agent.queue.stats(time::OffsetDateTime::now_utc()).await {
        Ok(stats) => stats,
        Err(err) => return ended(format!("reading the queue: {err}"), false),
    };
    let (tx, rx) = mpsc::channel::<AgentMessage>(16);
    let config_revision = agent.config.borrow().revision;
    let hello = AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: agent.identity.agent_id.clone(),
            agent_version: crate::agent_version().to_owned(),
            last_acked_seq: stats.acked_through,
            protocol_version: PROTOCOL_VERSION,
            config_revision,
        })),
    };
    if tx.send(hello).await.is_err() {
        return ended("the stream closed before Hello".to_owned(), false);
    }
    let mut client = agent_proto::gateway_client(channel.clone());
    let inbound = tokio::select! {
        _ = stopping.changed() => return SessionEnd::Stopping,
        res = client.connect(ReceiverStream::new(rx)) => match res {
            Ok(response) => response.into_inner(),
            Err(status) => return ended(status_words(&status), false),
        },
    };
    tracing::debug!(gateway = %agent.identity.gateway, last_acked_seq = stats.acked_through, config_revision, "Stream open; Hello sent.");
    let mut stream = Stream {
        agent,
        channel,
        tx,
        acked: stats.acked_through,
        answered: false,
        cursor: stats.acked_through,
        outgoing: VecDeque::new(),
        heartbeat: None,
    };
    let reason = stream.serve(inbound, stopping).await;
    match reason {
        None => SessionEnd::Stopping,
        Some(reason) => ended(reason, stream.answered),
    }
}

/// Why a connection failed, in words that point at the usual cause on a laptop away from the
/// practice: a proxy or firewall that blocks gRPC, or one that inspects TLS. The agent never
/// trusts anything but the pinned agent CA, so both leave the results queued.
fn connect_words(chain: &str) -> String {
    let lower = chain.to_lowercase();
    let cause = if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        " (the address answered with something that is not TLS: a proxy or firewall on this network blocks the connection to the appliance; results stay queued)"
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        " (the certificate presented is not from this appliance's agent CA: a TLS-inspecting proxy, or another machine at the address; nothing was sent, results stay queued)"
    } else {
        ""
    };
    format!("connecting: {chain}{cause}")
}

fn ended(reason: String, established: bool) -> SessionEnd {
    SessionEnd::Ended {
        reason,
        established,
    }
}

/// An open stream's sending state.
struct Stream<'a> {
    agent: &'a Agent,
    /// The connection, for a `Download` beside the stream.
    channel: tonic::transport::Channel,
    tx: mpsc::Sender<AgentMessage>,
    /// The highest sequence number the gateway has acknowledged (and the queue dropped).
    acked: u64,
    /// Whether the gateway has answered `Hello` with its first `Ack`.
    answered: bool,
    /// The last sequence number taken from the queue into `outgoing` (or sent).
    cursor: u64,
    /// Sequenced messages taken from the queue, not yet handed to the stream, with the last
    /// sequence number each covers.
    outgoing: VecDeque<(u64, AgentMessage)>,
    /// A heartbeat waiting to go out (ahead of `outgoing`).
    heartbeat: Option<AgentMessage>,
}

impl Stream<'_> {
    /// Runs the stream until it ends (`Some(reason)`) or the agent stops (`None`).
    async fn serve(
        &mut self,
        mut inbound: tonic::Streaming<GatewayMessage>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Option<String> {
        let first_ack_by = Instant::now() + FIRST_ACK_WITHIN;
        let mut heartbeat_every = self.heartbeat_interval();
        let mut next_heartbeat = Instant::now() + heartbeat_every;
        // Locals, so the select's futures borrow them rather than `self`.
        let tx = self.tx.clone();
        let agent = self.agent;
        loop {
            if self.answered
                && self.outgoing.is_empty()
                && let Err(reason) = self.refill().await
            {
                return Some(reason);
            }
            let sending = self.heartbeat.is_some() || !self.outgoing.is_empty();
            tokio::select! {
                biased;
                _ = stopping.changed() => return None,
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        let was_answered = self.answered;
                        if let Err(reason) = self.receive(message).await {
                            return Some(reason);
                        }
                        if !was_answered && self.answered {
                            self.connected();
                            self.queue_heartbeat().await;
                            next_heartbeat = Instant::now() + heartbeat_every;
                        }
                        let every = self.heartbeat_interval();
                        if every != heartbeat_every {
                            heartbeat_every = every;
                            next_heartbeat = Instant::now() + every;
                        }
                    }
                    Ok(None) => return Some("the appliance closed the stream".to_owned()),
                    Err(status) => return Some(status_words(&status)),
                },
                permit = tx.reserve(), if sending => match permit {
                    Ok(permit) => {
                        if let Some(heartbeat) = self.heartbeat.take() {
                            permit.send(heartbeat);
                        } else if let Some((_, message)) = self.outgoing.pop_front() {
                            permit.send(message);
                        }
                    }
                    Err(_) => return Some("the stream closed".to_owned()),
                },
                () = tokio::time::sleep_until(next_heartbeat), if self.answered => {
                    self.queue_heartbeat().await;
                    next_heartbeat = Instant::now() + heartbeat_every;
                }
                () = agent.queued.notified(), if self.answered && self.outgoing.is_empty() => {}
                () = tokio::time::sleep_until(first_ack_by), if !self.answered => {
                    return Some(format!(
                        "the appliance did not acknowledge Hello within {} s",
                        FIRST_ACK_WITHIN.as_secs()
                    ));
                }
            }
        }
    }

    /// Takes the next entries from the queue into `outgoing`, within the in-flight window.
    async fn refill(&mut self) -> Result<(), String> {
        let window_end = self.acked + MAX_ITEMS_IN_FLIGHT;
        if self.cursor >= window_end {
            return Ok(());
        }
        let limit = usize::try_from((window_end - self.cursor).min(READ_AHEAD)).unwrap_or(1);
        let entries = self
            .agent
            .queue
            .pending(self.cursor, limit)
            .await
            .map_err(|err| format!("reading the queue: {err}"))?;
        for entry in entries {
            match entry {
                Entry::Item { seq, payload, .. } => {
                    if check_in_flight("seq", seq, self.acked).is_err() {
                        break;
                    }
                    let message = AgentMessage::decode(payload.as_slice())
                        .map_err(|err| format!("queue item {seq} cannot be read: {err}"))?;
                    if sequenced(&message) != Some(seq) {
                        return Err(format!(
                            "queue item {seq} carries another sequence number; the queue file is damaged"
                        ));
                    }
                    self.outgoing.push_back((seq, message));
                    self.cursor = seq;
                }
                Entry::Gap {
                    first,
                    last,
                    reason,
                } => {
                    if check_in_flight("seq", first, self.acked).is_err() {
                        break;
                    }
                    // A gap stands in the sequence under its last number, which must be in
                    // the window too: a wider gap goes out in pieces.
                    let last = last.min(window_end);
                    tracing::warn!(
                        first_seq = first,
                        last_seq = last,
                        reason = reason.as_str(),
                        "Sending a gap: these results were dropped."
                    );
                    self.outgoing.push_back((last, gap(first, last, reason)));
                    self.cursor = last;
                }
            }
        }
        Ok(())
    }

    /// Handles one message from the gateway.
    async fn receive(&mut self, message: GatewayMessage) -> Result<(), String> {
        if let Err(err) = message.validate() {
            tracing::warn!(error = %err, "Ignored a message from the appliance that breaks the protocol.");
            return Ok(());
        }
        let Some(kind) = message.kind else {
            return Ok(());
        };
        match kind {
            gateway_message::Kind::Ack(ack) => self.ack(ack.up_to_seq).await?,
            gateway_message::Kind::Config(config) => self.configure(config).await,
            gateway_message::Kind::RunNow(run_now) => {
                tracing::info!(checks = ?run_now.check_ids, "The appliance asked for checks now.");
                if self
                    .agent
                    .jobs
                    .try_send(Job::RunNow(run_now.check_ids))
                    .is_err()
                {
                    tracing::warn!("Too many requests waiting; this RunNow is ignored.");
                }
            }
            gateway_message::Kind::RunRemediation(request) => {
                if !self.agent.take_request(&request.request_id) {
                    tracing::warn!(request_id = %request.request_id, "A remediation request came again; it runs once.");
                } else if let Err(err) = self.agent.jobs.try_send(Job::Remediate(request)) {
                    let request = match err {
                        mpsc::error::TrySendError::Full(Job::Remediate(request))
                        | mpsc::error::TrySendError::Closed(Job::Remediate(request)) => request,
                        _ => return Ok(()),
                    };
                    self.agent
                        .push_outcome(
                            &request,
                            RemediationPhase::Accepted,
                            RemediationStatus::Refused,
                            "the agent has too many requests waiting; ask again later",
                        )
                        .await;
                } else {
                    tracing::info!("A remediation request was taken.");
                }
            }
            gateway_message::Kind::RenewCertificate(renew) => {
                self.renew(renew.certificate_chain_der);
            }
            gateway_message::Kind::UpdateOffer(offer) => {
                // Verified, downloaded and installed here; an installed update ends the process.
                let _refused = self.agent.updates.offer(offer, self.channel.clone()).await;
            }
        }
        Ok(())
    }

    async fn ack(&mut self, up_to_seq: u64) -> Result<(), String> {
        let first = !self.answered;
        self.answered = true;
        if first {
            self.agent.updates.connected();
        }
        if up_to_seq <= self.acked {
            if up_to_seq < self.acked && first {
                tracing::error!(
                    up_to_seq,
                    acked = self.acked,
                    "The appliance holds less than it acknowledged before (was its store restored?): the items in between are gone from both sides."
                );
            } else if up_to_seq < self.acked {
                tracing::debug!(
                    up_to_seq,
                    acked = self.acked,
                    "Ignored an acknowledgement that goes backwards."
                );
            }
            if first {
                tracing::info!(
                    acked = self.acked,
                    "Connected; sending what the appliance has not stored."
                );
            }
            return Ok(());
        }
        match self.agent.queue.ack(up_to_seq).await {
            Ok(()) => {}
            Err(agent_queue::QueueError::AckBeyondEnd { up_to, last_pushed }) => {
                tracing::error!(
                    up_to_seq = up_to,
                    last_pushed,
                    "The appliance acknowledged results this agent never numbered (was the state directory replaced?); ignored."
                );
                return Ok(());
            }
            Err(err) => return Err(format!("applying an acknowledgement: {err}")),
        }
        self.acked = up_to_seq;
        self.cursor = self.cursor.max(up_to_seq);
        // What the gateway already holds is not sent again; a gap piece it holds in part
        // starts after what it holds.
        self.outgoing.retain_mut(|(last, message)| {
            if *last <= up_to_seq {
                return false;
            }
            if let Some(agent_message::Kind::Gap(gap)) = &mut message.kind {
                gap.first_seq = gap.first_seq.max(up_to_seq + 1);
            }
            true
        });
        if first {
            tracing::info!(
                acked = up_to_seq,
                "Connected; sending what the appliance has not stored."
            );
        }
        Ok(())
    }

    async fn configure(&mut self, config: AgentConfig) {
        if *self.agent.config.borrow() == config {
            return;
        }
        // Applied even when it cannot be stored: the appliance sends it again on every connect.
        if let Err(err) = self.agent.state_dir.save_config(&config) {
            tracing::error!(error = %crate::error_chain(&err), "The new configuration could not be stored; it applies until the agent restarts.");
        }
        if let Err(err) = self.agent.queue.set_limits(queue_limits(&config)).await {
            tracing::warn!(error = %err, "The new queue bounds are unusable; the old ones stay.");
        }
        tracing::info!(
            revision = config.revision,
            n_checks = config.checks.len(),
            heartbeat_s = config.heartbeat_interval_seconds,
            "New configuration applied."
        );
        self.agent.config.send_replace(config);
        self.agent.set_link(|_| {});
    }

    fn renew(&self, chain: Vec<Vec<u8>>) {
        if let Err(why) =
            crate::tls::check_client_chain(&chain, &self.agent.agent_ca, &self.agent.tls_key_spki)
        {
            tracing::warn!(reason = %why, "Ignored a certificate renewal.");
            return;
        }
        if let Err(err) = self.agent.state_dir.save_certificate_chain(&chain) {
            tracing::error!(error = %crate::error_chain(&err), "A renewed certificate could not be stored; the current one stays.");
            return;
        }
        *self
            .agent
            .certificate_chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = chain;
        tracing::info!("Certificate renewed; it is used from the next connection.");
    }

    fn connected(&self) {
        let now = crate::now_unix_ms();
        self.agent.set_link(|link| {
            link.connected = true;
            link.connected_since_unix_ms = Some(now);
            link.last_connected_unix_ms = Some(now);
            link.last_error = None;
        });
    }

    async fn queue_heartbeat(&mut self) {
        let now = time::OffsetDateTime::now_utc();
        match self.agent.queue.stats(now).await {
            Ok(stats) => {
                self.heartbeat = Some(AgentMessage {
                    kind: Some(agent_message::Kind::Heartbeat(Heartbeat {
                        newest_seq: stats.next_seq - 1,
                        queue_items: stats.items,
                        queue_bytes: stats.bytes,
                        oldest_queued_age_seconds: stats
                            .oldest_age
                            .map_or(0, |age| u32::try_from(age.as_secs()).unwrap_or(u32::MAX)),
                        sent_at_unix_ms: crate::now_unix_ms(),
                    })),
                });
            }
            Err(err) => tracing::warn!(error = %err, "No heartbeat: the queue could not be read."),
        }
        self.agent.set_link(|link| {
            link.last_heartbeat_unix_ms = Some(crate::now_unix_ms());
        });
    }

    fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.agent.config.borrow().heartbeat_interval_seconds.max(1),
        ))
    }
}

/// The sequence number a queued message carries.
fn sequenced(message: &AgentMessage) -> Option<u64> {
    match &message.kind {
        Some(agent_message::Kind::Result(result)) => Some(result.seq),
        Some(agent_message::Kind::RemediationOutcome(outcome)) => Some(outcome.seq),
        _ => None,
    }
}

fn gap(first: u64, last: u64, reason: agent_queue::GapReason) -> AgentMessage {
    let reason = match reason {
        agent_queue::GapReason::QueueFull => GapReason::QueueFull,
        agent_queue::GapReason::TooOld => GapReason::TooOld,
        agent_queue::GapReason::DiskFull => GapReason::DiskFull,
    };
    AgentMessage {
        kind: Some(agent_message::Kind::Gap(Gap {
            first_seq: first,
            last_seq: last,
            reason: reason.into(),
            // The queue does not keep when it dropped them; this is when the gap is sent.
            recorded_at_unix_ms: crate::now_unix_ms(),
        })),
    }
}

/// A gRPC status in words, naming what a refusal means.
fn status_words(status: &tonic::Status) -> String {
    let hint = match status.code() {
        tonic::Code::PermissionDenied => {
            " (the appliance does not accept this agent: revoked, or enrolled again elsewhere)"
        }
        tonic::Code::Unauthenticated => " (the client certificate was not accepted)",
        _ => "",
    };
    format!(
        "the appliance ended the stream: {}: {}{hint}",
        status.code().description(),
        status.message()
    )
}

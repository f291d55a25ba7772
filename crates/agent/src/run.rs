//! `osiris-agent run`: the long-running agent. Three tasks share one [`Agent`]:
//!
//! - the worker runs the configured checks on their schedule (and on `RunNow`), one at a time,
//!   and the appliance's remediation requests between them; each result worth sending (status
//!   changed, or the full-report interval passed) is signed with the device key and pushed into
//!   the durable queue, and so is each remediation phase's outcome;
//! - the link keeps one `Connect` stream open ([`crate::session`]) and reconnects after any end
//!   with exponential backoff and jitter (1 s doubling to 5 min; back to 1 s after a stream
//!   that stayed up a minute);
//! - the status writer replaces `status.json` every heartbeat interval and whenever the link
//!   comes up or goes down, so `osiris-agent status` can answer while `run` holds the queue.
//!
//! The queue is the only hand-over between checking and sending: whatever was pushed is sent,
//! in order, exactly once as far as the appliance's store is concerned, across reconnects and
//! restarts (the gateway deduplicates by sequence number; the agent resends everything after
//! the gateway's acknowledgement on each connect).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agent_proto::v1::{
    self, AgentConfig, AgentMessage, RemediationOutcome, RemediationPhase, RemediationStatus,
    RunRemediation, agent_message,
};
use agent_proto::{Validate, sign_result};
use agent_queue::{Limits, Queue, QueueError};
use ed25519_dalek::SigningKey;
use prost::Message as _;
use rcgen::{KeyPair, PublicKeyData};
use tokio::sync::{Notify, mpsc, watch};

use crate::checks::{Reporter, error_outcome, result_for};
use crate::platform::{Params, Platform, StepPhase, StepStatus};
use crate::remediation::Plan;
use crate::schedule::Schedule;
use crate::state::{Identity, QUEUE_FILE, StateDir, StateError};
use crate::status::{LinkState, write_status};

/// Queue item kind of a signed check result.
pub const KIND_RESULT: &str = "result";
/// Queue item kind of a remediation outcome.
pub const KIND_OUTCOME: &str = "remediation";

/// How long `run` waits for another holder of the queue (a `status` reading it) at start.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How long stopping may take before the agent exits anyway.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Requests the worker has not started yet, at most.
const MAX_JOBS: usize = 64;

/// Remediation request IDs remembered, so one the gateway sends again is not run twice.
const REMEMBERED_REQUESTS: usize = 1024;

/// Why `run` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The state directory is missing or unusable (exit code 78: a restart does not mend it).
    #[error(transparent)]
    State(#[from] StateError),
    /// The embedded catalogue did not load (a build defect).
    #[error("the embedded check catalogue is invalid: {0}")]
    Catalog(String),
    /// The queue could not be opened.
    #[error("opening the offline queue")]
    Queue(#[source] QueueError),
    /// This version was rolled back at start; the previous one starts next.
    #[error(transparent)]
    RolledBack(#[from] crate::update::RolledBack),
    /// The TLS key in the state directory cannot be read.
    #[error("the TLS key in {path} is unusable: {detail}; enroll this machine again")]
    TlsKey {
        /// The key file.
        path: String,
        /// What rcgen said.
        detail: String,
    },
}

/// Something for the worker to do besides the schedule.
#[derive(Debug)]
pub(crate) enum Job {
    /// Run these checks now and send their results whatever they are (empty: every configured
    /// check).
    RunNow(Vec<String>),
    /// Run a remediation request.
    Remediate(RunRemediation),
}

/// What the tasks share.
pub(crate) struct Agent {
    pub(crate) platform: Arc<dyn Platform>,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) state_dir: StateDir,
    pub(crate) identity: Identity,
    pub(crate) device_key: SigningKey,
    pub(crate) agent_ca: Vec<u8>,
    pub(crate) tls_key_pem: zeroize::Zeroizing<String>,
    /// The TLS key's SubjectPublicKeyInfo (DER), to accept only certificates for it.
    pub(crate) tls_key_spki: Vec<u8>,
    /// The client certificate chain for the next connection.
    pub(crate) certificate_chain: Mutex<Vec<Vec<u8>>>,
    pub(crate) queue: Queue,
    /// Told whenever an item is pushed.
    pub(crate) queued: Notify,
    /// The configuration in force.
    pub(crate) config: watch::Sender<AgentConfig>,
    pub(crate) jobs: mpsc::Sender<Job>,
    /// Remediation request IDs already taken.
    pub(crate) requests: Mutex<VecDeque<String>>,
    /// The link's state, for `status.json`.
    pub(crate) link: Mutex<LinkState>,
    /// Told when the link comes up or goes down.
    pub(crate) link_changed: Notify,
    /// Self-update: offers, the trial of a new version.
    pub(crate) updates: crate::update::Updates,
}

/// Runs the agent from `state_dir` until `shutdown` resolves, then stops cleanly.
///
/// # Errors
/// When the agent cannot start: not enrolled, unreadable state, the queue in use or unusable.
pub async fn run(
    platform: Arc<dyn Platform>,
    state_dir: StateDir,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let updates = crate::update::Updates::start(state_dir.path().to_owned())?;
    let enrollment = state_dir.load(platform.as_ref())?;
    let catalog = crate::embedded_catalog().map_err(|err| RunError::Catalog(err.to_string()))?;
    let tls_key = KeyPair::from_pem(&enrollment.tls_key_pem).map_err(|err| RunError::TlsKey {
        path: state_dir
            .file(crate::state::TLS_KEY_FILE)
            .display()
            .to_string(),
        detail: err.to_string(),
    })?;
    let queue = open_queue(&state_dir, &enrollment.config).await?;
    let (jobs, job_rx) = mpsc::channel(MAX_JOBS);
    let (config, _) = watch::channel(enrollment.config.clone());
    let agent = Arc::new(Agent {
        platform,
        catalog: Arc::new(catalog),
        state_dir,
        identity: enrollment.identity,
        device_key: enrollment.device_key,
        agent_ca: enrollment.agent_ca,
        tls_key_pem: enrollment.tls_key_pem,
        tls_key_spki: tls_key.subject_public_key_info(),
        certificate_chain: Mutex::new(enrollment.certificate_chain),
        queue,
        queued: Notify::new(),
        config,
        jobs,
        requests: Mutex::new(VecDeque::new()),
        link: Mutex::new(LinkState::default()),
        link_changed: Notify::new(),
        updates,
    });
    tracing::info!(
        agent_id = %agent.identity.agent_id,
        gateway = %agent.identity.gateway,
        config_revision = enrollment.config.revision,
        n_checks = enrollment.config.checks.len(),
        catalog_version = %agent.catalog.version(),
        "Agent started."
    );
    if let Some(deadline) = agent.updates.trial_deadline() {
        let agent = Arc::clone(&agent);
        tokio::spawn(async move {
            let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(deadline.saturating_sub(now))).await;
            if agent.updates.trial_deadline().is_some() {
                agent.updates.trial_failed();
            }
        });
    }
    let (stop, stopping) = watch::channel(false);
    let tasks = [
        tokio::spawn(worker(Arc::clone(&agent), job_rx, stopping.clone())),
        tokio::spawn(link(Arc::clone(&agent), stopping.clone())),
        tokio::spawn(status_writer(Arc::clone(&agent), stopping)),
    ];
    shutdown.await;
    tracing::info!("Stopping.");
    let _ = stop.send(true);
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(STOP_DEADLINE, all).await.is_err() {
        tracing::warn!("A task did not stop in time; exiting anyway.");
    }
    write_status(&agent, false).await;
    match Arc::try_unwrap(agent) {
        Ok(agent) => {
            if let Err(err) = agent.queue.close().await {
                tracing::warn!(error = %err, "Closing the queue failed; nothing committed is lost.");
            }
        }
        Err(_) => tracing::debug!("A task still holds the queue; it closes with the process."),
    }
    tracing::info!("Stopped.");
    Ok(())
}

/// The queue's bounds from a configuration.
pub(crate) fn queue_limits(config: &AgentConfig) -> Limits {
    let queue = config.queue.unwrap_or_default();
    Limits {
        max_items: queue.max_items.max(1),
        max_bytes: queue.max_bytes.max(1),
        max_age: Duration::from_secs(u64::from(queue.max_age_seconds.max(1))),
    }
}

/// A random delay from zero to `max` (whole milliseconds).
pub(crate) fn random_delay(max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    // Without the OS's randomness (which does not fail on Linux) the delay is simply the most.
    let random = getrandom::u64().unwrap_or(u64::MAX);
    Duration::from_millis(random % (max_ms.saturating_add(1)).max(1))
}

impl Agent {
    /// Pushes a signed result for `result` (its `seq` and signature are set here).
    pub(crate) async fn push_result(&self, result: v1::CheckResult) -> Result<u64, QueueError> {
        let key = &self.device_key;
        let seq = self
            .queue
            .push_with(KIND_RESULT, time::OffsetDateTime::now_utc(), |seq| {
                let mut result = result;
                result.seq = seq;
                result.signature = sign_result(key, &result).to_vec();
                AgentMessage {
                    kind: Some(agent_message::Kind::Result(result)),
                }
                .encode_to_vec()
            })
            .await?;
        self.queued.notify_one();
        Ok(seq)
    }

    /// Pushes a remediation outcome for `request`.
    pub(crate) async fn push_outcome(
        &self,
        request: &RunRemediation,
        phase: RemediationPhase,
        status: RemediationStatus,
        detail: &str,
    ) {
        let outcome = RemediationOutcome {
            seq: 0,
            request_id: request.request_id.clone(),
            runbook_id: request.runbook_id.clone(),
            phase: phase.into(),
            status: status.into(),
            detail: detail.to_owned(),
            finished_at_unix_ms: crate::now_unix_ms(),
        };
        let res = self
            .queue
            .push_with(KIND_OUTCOME, time::OffsetDateTime::now_utc(), |seq| {
                AgentMessage {
                    kind: Some(agent_message::Kind::RemediationOutcome(
                        RemediationOutcome { seq, ..outcome },
                    )),
                }
                .encode_to_vec()
            })
            .await;
        match res {
            Ok(seq) => {
                tracing::info!(request_id = %request.request_id, runbook = %request.runbook_id, phase = ?phase, status = ?status, seq, detail = %detail, "Remediation phase reported.");
                self.queued.notify_one();
            }
            Err(err) => {
                tracing::error!(request_id = %request.request_id, error = %err, "A remediation outcome could not be queued.");
            }
        }
    }

    /// Takes `request_id` if it is new (`false`: it was taken before and is ignored).
    pub(crate) fn take_request(&self, request_id: &str) -> bool {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if requests.iter().any(|id| id == request_id) {
            return false;
        }
        if requests.len() == REMEMBERED_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(request_id.to_owned());
        true
    }

    /// The client certificate chain for the next connection.
    pub(crate) fn certificate_chain(&self) -> Vec<Vec<u8>> {
        self.certificate_chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Updates the link's state and tells the status writer.
    pub(crate) fn set_link(&self, change: impl FnOnce(&mut LinkState)) {
        change(&mut self.link.lock().unwrap_or_else(PoisonError::into_inner));
        self.link_changed.notify_one();
    }
}

async fn open_queue(state_dir: &StateDir, config: &AgentConfig) -> Result<Queue, RunError> {
    let path = state_dir.file(QUEUE_FILE);
    let started = Instant::now();
    loop {
        match Queue::open(&path, queue_limits(config)).await {
            Err(QueueError::InUse { .. }) if started.elapsed() < QUEUE_WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            res => return res.map_err(RunError::Queue),
        }
    }
}

/// Runs checks on their schedule and the appliance's requests, one at a time.
async fn worker(
    agent: Arc<Agent>,
    mut jobs: mpsc::Receiver<Job>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut config_rx = agent.config.subscribe();
    let mut schedule = Schedule::default();
    let mut reporter = Reporter::default();
    let mut random = random_delay;
    schedule.configure(
        &config_rx.borrow_and_update().checks,
        Instant::now(),
        &mut random,
    );
    loop {
        let next = schedule.next_due();
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopping.changed() => return,
            changed = config_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let checks = config_rx.borrow_and_update().checks.clone();
                schedule.configure(&checks, Instant::now(), &mut random);
            }
            job = jobs.recv() => match job {
                None => return,
                Some(Job::RunNow(mut check_ids)) => {
                    if check_ids.is_empty() {
                        check_ids = schedule.check_ids();
                    }
                    for check_id in check_ids {
                        if !run_one(&agent, &check_id, &mut reporter, true, &mut stopping).await {
                            return;
                        }
                    }
                }
                Some(Job::Remediate(request)) => {
                    let Some(ran) = remediate(&agent, &request, &mut stopping).await else {
                        return;
                    };
                    // The check behind a remediation that ran runs again now, so the appliance
                    // sees where it stands.
                    if ran
                        && schedule.contains(&request.runbook_id)
                        && !run_one(&agent, &request.runbook_id, &mut reporter, false, &mut stopping).await
                    {
                        return;
                    }
                }
            },
            () = due => {
                for check_id in schedule.due(Instant::now()) {
                    if !run_one(&agent, &check_id, &mut reporter, false, &mut stopping).await {
                        return;
                    }
                    schedule.ran(&check_id, Instant::now(), &mut random);
                }
            }
        }
    }
}

/// Runs `future` unless the agent stops first (`None`).
async fn unless_stopping<T>(
    stopping: &mut watch::Receiver<bool>,
    future: impl Future<Output = T>,
) -> Option<T> {
    if *stopping.borrow() {
        return None;
    }
    tokio::select! {
        _ = stopping.changed() => None,
        value = future => Some(value),
    }
}

/// Runs one check and queues its result when worth sending (always when `forced`). Returns
/// `false` when the agent is stopping.
async fn run_one(
    agent: &Arc<Agent>,
    check_id: &str,
    reporter: &mut Reporter,
    forced: bool,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let platform = agent.platform.catalog_platform();
    let outcome = match agent.catalog.get(check_id) {
        None => error_outcome(format!(
            "check {check_id} is not in this agent's catalogue (version {})",
            agent.catalog.version()
        )),
        Some(runbook) if !runbook.applies_to(platform) => model::CheckOutcome {
            status: model::CheckStatus::Skipped,
            observed: serde_json::Value::Null,
            expected: String::new(),
            reason: format!(
                "check {check_id} is not for {platform}, the platform this agent runs on"
            ),
        },
        Some(runbook) => {
            let runbook = runbook.clone();
            let shared = Arc::clone(agent);
            let run = tokio::task::spawn_blocking(move || {
                shared
                    .platform
                    .run_check(&shared.catalog, &runbook, &Params::new())
            });
            match unless_stopping(stopping, run).await {
                None => return false,
                Some(Ok(outcome)) => outcome,
                Some(Err(err)) => error_outcome(format!("the check did not finish: {err}")),
            }
        }
    };
    let observed_at = crate::now_unix_ms();
    let mut result = result_for(check_id, &outcome, observed_at, agent.catalog.version());
    let mut probe = result.clone();
    probe.seq = 1;
    probe.signature = vec![0; agent_proto::limits::SIGNATURE_BYTES];
    if let Err(err) = probe.validate() {
        tracing::error!(check = %check_id, error = %err, "A result broke the protocol's limits; sending its status only.");
        result.facts = [(
            "reason".to_owned(),
            "the observed values could not be sent".to_owned(),
        )]
        .into_iter()
        .collect();
    }
    tracing::debug!(check = %check_id, status = %outcome.status, "Check finished.");
    let now = Instant::now();
    let full_every = Duration::from_secs(u64::from(
        agent.config.borrow().full_report_interval_seconds,
    ));
    if forced || reporter.should_send(check_id, result.status, now, full_every) {
        let status = result.status;
        match agent.push_result(result).await {
            Ok(seq) => {
                reporter.record(check_id, status, now);
                tracing::debug!(check = %check_id, status = %outcome.status, seq, "Result queued.");
            }
            Err(err) => {
                tracing::error!(check = %check_id, error = %err, "A result could not be queued; it is sent after the next run.");
            }
        }
    }
    true
}

/// Runs a remediation request and reports each phase. Returns whether a script ran, or `None`
/// when the agent is stopping.
async fn remediate(
    agent: &Arc<Agent>,
    request: &RunRemediation,
    stopping: &mut watch::Receiver<bool>,
) -> Option<bool> {
    use RemediationPhase as Phase;
    use RemediationStatus as Status;
    let plan = crate::remediation::plan(&agent.catalog, agent.platform.catalog_platform(), request);
    let (runbook, params, rollback_only) = match plan {
        Plan::Refused(why) => {
            tracing::warn!(request_id = %request.request_id, runbook = %request.runbook_id, reason = %why, "Remediation refused.");
            agent
                .push_outcome(request, Phase::Accepted, Status::Refused, &why)
                .await;
            return Some(false);
        }
        Plan::Remediate { runbook, params } => (runbook, params, false),
        Plan::Rollback { runbook, params } => (runbook, params, true),
    };
    agent
        .push_outcome(request, Phase::Accepted, Status::Succeeded, "accepted")
        .await;
    let step = |phase: StepPhase| {
        let shared = Arc::clone(agent);
        let runbook = runbook.clone();
        let params = params.clone();
        tokio::task::spawn_blocking(move || {
            let script = match phase {
                StepPhase::Remediate => runbook.remediate.as_ref(),
                StepPhase::Rollback => runbook.rollback.as_ref(),
            };
            match script {
                Some(script) => {
                    shared
                        .platform
                        .run_step(&shared.catalog, &runbook, script, phase, &params)
                }
                None => crate::platform::StepOutcome {
                    status: StepStatus::Failed,
                    detail: "the runbook has no such script".to_owned(),
                },
            }
        })
    };
    let mut needs_rollback = rollback_only;
    if !rollback_only {
        let done = unless_stopping(stopping, step(StepPhase::Remediate)).await?;
        let outcome = done.unwrap_or_else(|err| crate::platform::StepOutcome {
            status: StepStatus::Failed,
            detail: format!("the remediation did not finish: {err}"),
        });
        agent
            .push_outcome(
                request,
                Phase::Remediate,
                step_status(outcome.status),
                &outcome.detail,
            )
            .await;
        if outcome.status == StepStatus::Succeeded {
            let shared = Arc::clone(agent);
            let verify_runbook = runbook.clone();
            let verify_params = params.clone();
            let verify = tokio::task::spawn_blocking(move || {
                shared
                    .platform
                    .run_check(&shared.catalog, &verify_runbook, &verify_params)
            });
            let verified = unless_stopping(stopping, verify).await?;
            let verified = verified
                .unwrap_or_else(|err| error_outcome(format!("the check did not finish: {err}")));
            let passed = verified.status == model::CheckStatus::Pass;
            let detail = if passed {
                "the check passes".to_owned()
            } else {
                format!("the check is {}: {}", verified.status, verified.reason)
            };
            agent
                .push_outcome(
                    request,
                    Phase::Verify,
                    if passed {
                        Status::Succeeded
                    } else {
                        Status::Failed
                    },
                    &clip_detail(&detail),
                )
                .await;
            needs_rollback = !passed;
        } else {
            needs_rollback = true;
        }
        needs_rollback = needs_rollback && runbook.rollback.is_some();
    }
    if needs_rollback {
        let done = unless_stopping(stopping, step(StepPhase::Rollback)).await?;
        let outcome = done.unwrap_or_else(|err| crate::platform::StepOutcome {
            status: StepStatus::Failed,
            detail: format!("the rollback did not finish: {err}"),
        });
        agent
            .push_outcome(
                request,
                Phase::Rollback,
                step_status(outcome.status),
                &outcome.detail,
            )
            .await;
    }
    Some(true)
}

fn step_status(status: StepStatus) -> RemediationStatus {
    match status {
        StepStatus::Succeeded => RemediationStatus::Succeeded,
        StepStatus::Failed => RemediationStatus::Failed,
        StepStatus::TimedOut => RemediationStatus::TimedOut,
    }
}

/// `text` within the protocol's detail limit, without control characters.
fn clip_detail(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > agent_proto::limits::MAX_DETAIL_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// Keeps the stream to the gateway open, reconnecting with backoff.
async fn link(agent: Arc<Agent>, mut stopping: watch::Receiver<bool>) {
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let end = crate::session::run_session(&agent, &mut stopping).await;
        let (reason, established) = match end {
            crate::session::SessionEnd::Stopping => return,
            crate::session::SessionEnd::Ended {
                reason,
                established,
            } => (reason, established),
        };
        agent.set_link(|link| {
            link.connected = false;
            link.last_error = Some(reason.clone());
        });
        let stayed_up = established && started.elapsed() >= Backoff::STABLE;
        let delay = backoff.next(stayed_up, random_delay);
        tracing::warn!(gateway = %agent.identity.gateway, error = %reason, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "Not connected to the appliance; retrying.");
        if unless_stopping(&mut stopping, tokio::time::sleep(delay))
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Writes `status.json` every heartbeat interval and when the link changes.
async fn status_writer(agent: Arc<Agent>, mut stopping: watch::Receiver<bool>) {
    loop {
        write_status(&agent, true).await;
        let every = Duration::from_secs(u64::from(
            agent.config.borrow().heartbeat_interval_seconds.max(1),
        ));
        tokio::select! {
            _ = stopping.changed() => return,
            () = tokio::time::sleep(every) => {}
            () = agent.link_changed.notified() => {}
        }
    }
}

/// Reconnection delays: from 1 s doubling to 5 min, each a random point in its upper half;
/// back to the start after a stream that stayed up [`Backoff::STABLE`].
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    level: u32,
}

impl Backoff {
    /// The first delay.
    const BASE: Duration = Duration::from_secs(1);
    /// The longest delay.
    const CAP: Duration = Duration::from_secs(300);
    /// How long a stream must stay up to reset the delay.
    const STABLE: Duration = Duration::from_secs(60);

    /// The delay before the next attempt; `stayed_up` when the stream that just ended had been
    /// up for [`Backoff::STABLE`]. `random(max)` is a delay from zero to `max`.
    pub(crate) fn next(
        &mut self,
        stayed_up: bool,
        random: impl FnOnce(Duration) -> Duration,
    ) -> Duration {
        if stayed_up {
            self.level = 0;
        }
        let base = Self::BASE
            .saturating_mul(1 << self.level.min(16))
            .min(Self::CAP);
        if base < Self::CAP {
            self.level += 1;
        }
        base / 2 + random(base / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes_and_resets_after_a_stable_stream() {
        let mut backoff = Backoff::default();
        let most = |max: Duration| max;
        let least = |_: Duration| Duration::ZERO;
        let delays: Vec<u64> = (0..11)
            .map(|_| backoff.next(false, most).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff.next(false, least), Duration::from_secs(150));
        assert_eq!(backoff.next(true, most), Duration::from_secs(1));
        assert_eq!(backoff.next(false, least), Duration::from_secs(1));
        let delay = backoff.next(false, random_delay);
        assert!(
            delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4),
            "{delay:?}"
        );
    }
}

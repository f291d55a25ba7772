//! Runs commands (daemon requests on background threads) and the terminal event loop.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use api::endpoint::{self, Empty, Endpoint};
use api::{Client, ClientError, Method};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event};

use crate::action::{Action, Failure};
use crate::model::{EnrollmentToken, Model};
use crate::update::{ApiCall, Command, HEALING_LIMIT, update};
use crate::{keymap, view};

/// One encoded request to the daemon: an [`api::endpoint`]'s method and path, its JSON body,
/// and how long to wait for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    /// The console's unlock token, sent as `X-Osiris-Unlock` while the console is unlocked.
    pub unlock: Option<String>,
}

/// The daemon as the console needs it: something that answers requests. Implemented for
/// [`api::Client`]; tests implement it with recorded answers.
pub trait Daemon: Send + Sync {
    /// Sends one request; the JSON body of a successful answer, or why there is none.
    fn send(&self, request: &Request) -> Result<Vec<u8>, Failure>;
}

/// How long an export may take before the console gives up waiting.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a directory test or save may take (a bind against an unreachable DC is slow).
pub const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long approving a fix may take: the daemon checks, fixes, verifies and may roll back on
/// the computer before it answers.
pub const DECISION_TIMEOUT: Duration = Duration::from_secs(600);

/// How long any other request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often status is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

impl Daemon for Client {
    fn send(&self, request: &Request) -> Result<Vec<u8>, Failure> {
        let mut client = self.clone().with_timeout(request.timeout);
        if let Some(token) = &request.unlock {
            client = client.with_unlock_token(token);
        }
        client
            .send(request.method, &request.path, request.body.as_deref())
            .map_err(failure)
    }
}

/// Calls `endpoint` through `daemon` and decodes its answer.
pub fn call<E: Endpoint>(
    daemon: &dyn Daemon,
    endpoint: &E,
    body: &E::Body,
    timeout: Duration,
) -> Result<E::Answer, Failure> {
    call_unlocked(daemon, endpoint, body, timeout, None)
}

/// [`call`] with the console's unlock token, if it holds one.
pub fn call_unlocked<E: Endpoint>(
    daemon: &dyn Daemon,
    endpoint: &E,
    body: &E::Body,
    timeout: Duration,
    unlock: Option<&str>,
) -> Result<E::Answer, Failure> {
    let body =
        match E::METHOD {
            Method::Get | Method::Delete => None,
            Method::Post => Some(serde_json::to_vec(body).map_err(|err| {
                Failure::refused(format!("The request could not be encoded: {err}"))
            })?),
        };
    let request = Request {
        method: E::METHOD,
        path: endpoint.path(),
        body,
        timeout,
        unlock: unlock.map(str::to_owned),
    };
    let answer = daemon.send(&request)?;
    serde_json::from_slice(&answer).map_err(|err| {
        Failure::refused(format!(
            "The appliance service gave an unexpected answer to {} {}: {err}",
            request.method.as_str(),
            request.path
        ))
    })
}

/// Makes one request and turns the answer into the action that carries it.
pub fn execute(daemon: &dyn Daemon, api_call: ApiCall) -> Action {
    execute_unlocked(daemon, api_call, None)
}

/// [`execute`] with the console's unlock token (sent with every request while it holds one).
pub fn execute_unlocked(daemon: &dyn Daemon, api_call: ApiCall, unlock: Option<&str>) -> Action {
    let quick = REQUEST_TIMEOUT;
    macro_rules! call {
        ($endpoint:expr, $body:expr, $timeout:expr $(,)?) => {
            call_unlocked(daemon, $endpoint, $body, $timeout, unlock)
        };
    }
    match api_call {
        ApiCall::Status => Action::StatusLoaded(call!(&endpoint::Status, &(), quick)),
        ApiCall::Setup => Action::SetupLoaded(call!(&endpoint::Setup, &(), quick)),
        ApiCall::Devices => Action::DevicesLoaded(call!(&endpoint::Targets, &(), quick)),
        ApiCall::Incidents => Action::IncidentsLoaded(call!(&endpoint::Incidents, &(), quick)),
        ApiCall::Healing => Action::HealingLoaded(call!(
            &endpoint::Healing {
                limit: HEALING_LIMIT,
            },
            &(),
            quick,
        )),
        ApiCall::ScanNow => Action::ScanTriggered(call!(&endpoint::ScanNow, &Empty {}, quick)),
        ApiCall::PauseHealing(request) => {
            Action::HealingToggled(call!(&endpoint::PauseHealing, &request, quick))
        }
        ApiCall::ResumeHealing(request) => {
            Action::HealingToggled(call!(&endpoint::ResumeHealing, &request, quick))
        }
        ApiCall::Acknowledge(id, request) => {
            Action::Acknowledged(call!(&endpoint::Acknowledge { id }, &request, quick))
        }
        ApiCall::Export(request) => {
            Action::Exported(call!(&endpoint::Export, &request, EXPORT_TIMEOUT))
        }
        ApiCall::Packets => Action::PacketsLoaded(call!(&endpoint::Packets, &(), quick)),
        ApiCall::Records => Action::RecordsLoaded(call!(&endpoint::ComplianceRecords, &(), quick)),
        ApiCall::ExportPacket(request) => {
            Action::PacketExported(call!(&endpoint::ExportPacket, &request, EXPORT_TIMEOUT))
        }
        ApiCall::SetNetwork(request) => {
            Action::SetupSaved(call!(&endpoint::SetNetwork, &request, quick))
        }
        ApiCall::Claim(request) => Action::SetupSaved(call!(&endpoint::Claim, &request, quick)),
        ApiCall::TestDirectory(request) => {
            Action::DirectoryTested(call!(&endpoint::TestDirectory, &request, DIRECTORY_TIMEOUT,))
        }
        ApiCall::SaveDirectory(request) => {
            Action::SetupSaved(call!(&endpoint::SaveDirectory, &request, DIRECTORY_TIMEOUT,))
        }
        ApiCall::SetCredential(request) => {
            Action::SetupSaved(call!(&endpoint::SetCredential, &request, quick))
        }
        ApiCall::SetTimezone(request) => {
            Action::SetupSaved(call!(&endpoint::SetTimezone, &request, quick))
        }
        ApiCall::SetPin(request) => Action::SetupSaved(call!(&endpoint::SetPin, &request, quick)),
        ApiCall::Unlock(request) => Action::Unlocked(call!(&endpoint::Unlock, &request, quick)),
        ApiCall::CompleteSetup => {
            Action::SetupCompleted(call!(&endpoint::CompleteSetup, &Empty {}, quick))
        }
        ApiCall::Agents => Action::AgentsLoaded(call!(&endpoint::Agents, &(), quick)),
        ApiCall::CreateAgentToken(request) => Action::AgentTokenCreated(
            call!(&endpoint::CreateAgentToken, &request, quick).map(EnrollmentToken),
        ),
        ApiCall::RevokeAgent(request) => {
            Action::AgentRevoked(call!(&endpoint::RevokeAgent, &request, quick))
        }
        ApiCall::Plans => Action::PlansLoaded(call!(&endpoint::L2Pending, &(), quick)),
        ApiCall::Flywheel => Action::FlywheelLoaded(call!(&endpoint::Flywheel, &(), quick)),
        // An approval runs the fix on the computer before the answer.
        ApiCall::ApprovePlan(id, request) => Action::PlanDecided(call!(
            &endpoint::ApproveL2 { id },
            &request,
            DECISION_TIMEOUT
        )),
        ApiCall::RejectPlan(id, request) => {
            Action::PlanDecided(call!(&endpoint::RejectL2 { id }, &request, quick))
        }
        ApiCall::ApprovePattern(id, request) => {
            Action::PatternDecided(call!(&endpoint::ApproveFlywheel { id }, &request, quick))
        }
        ApiCall::RejectPattern(id, request) => {
            Action::PatternDecided(call!(&endpoint::RejectFlywheel { id }, &request, quick))
        }
    }
}

/// The first directory under `/media` or `/run/media/<user>` (where USB sticks are mounted).
pub fn find_usb() -> Option<String> {
    first_subdir(Path::new("/media"), 1).or_else(|| first_subdir(Path::new("/run/media"), 2))
}

/// Runs commands on background threads and hands their answers back as actions.
pub struct Executor {
    daemon: Arc<dyn Daemon>,
    sender: Sender<Action>,
    receiver: Receiver<Action>,
}

impl Executor {
    pub fn new(daemon: Arc<dyn Daemon>) -> Executor {
        let (sender, receiver) = mpsc::channel();
        Executor {
            daemon,
            sender,
            receiver,
        }
    }

    /// Starts a command; it never blocks the caller.
    pub fn spawn(&self, command: Command) {
        self.spawn_unlocked(command, None);
    }

    /// Starts a command that sends the console's unlock token, if it holds one.
    pub fn spawn_unlocked(&self, command: Command, unlock: Option<&str>) {
        let sender = self.sender.clone();
        match command {
            Command::Api(call) => {
                let daemon = Arc::clone(&self.daemon);
                let unlock = unlock.map(str::to_owned);
                std::thread::spawn(move || {
                    let _ = sender.send(execute_unlocked(daemon.as_ref(), call, unlock.as_deref()));
                });
            }
            Command::FindUsb => {
                std::thread::spawn(move || {
                    let _ = sender.send(Action::UsbFound(find_usb()));
                });
            }
        }
    }

    /// Answers that arrived, without waiting.
    pub fn try_recv(&self) -> Option<Action> {
        self.receiver.try_recv().ok()
    }
}

/// The event loop: keys and answers in, frames out, until the user quits.
pub fn run<B: Backend>(terminal: &mut Terminal<B>, daemon: Arc<dyn Daemon>) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let size = terminal.size()?;
    let started = Instant::now();
    let mut model = Model::new((size.width, size.height));
    let executor = Executor::new(daemon);
    for command in update(&mut model, Action::Tick) {
        executor.spawn_unlocked(command, model.lock.token.as_deref());
    }
    terminal.draw(|frame| view::render(&model, frame))?;
    let mut next_refresh = Instant::now() + REFRESH_EVERY;
    while !model.quit {
        let mut actions = Vec::new();
        let wait = next_refresh
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) => actions.extend(keymap::action_for(&model, key)),
                Event::Resize(width, height) => actions.push(Action::Resize(width, height)),
                _ => {}
            }
        }
        while let Some(answer) = executor.try_recv() {
            actions.push(answer);
        }
        if Instant::now() >= next_refresh {
            next_refresh = Instant::now() + REFRESH_EVERY;
            actions.push(Action::Clock(started.elapsed()));
            actions.push(Action::Tick);
        }
        let mut dirty = false;
        for action in actions {
            let changes_view = !matches!(action, Action::Tick);
            for command in update(&mut model, action) {
                executor.spawn_unlocked(command, model.lock.token.as_deref());
            }
            dirty |= changes_view;
        }
        if dirty {
            // Ratatui diffs against the previous frame, so unchanged cells are not rewritten.
            terminal.draw(|frame| view::render(&model, frame))?;
        }
    }
    Ok(())
}

fn failure(err: ClientError) -> Failure {
    match err {
        ClientError::DaemonDown { .. } => Failure::down("The appliance service is not running"),
        ClientError::Timeout(_) => {
            Failure::down("The appliance service did not answer in time; it may be busy or stuck")
        }
        ClientError::PermissionDenied { socket } => Failure::down(format!(
            "This console may not talk to the appliance service (permission denied on {})",
            socket.display()
        )),
        ClientError::Api { status: 423, .. } => Failure::locked(err.to_string()),
        other => Failure::refused(other.to_string()),
    }
}

fn first_subdir(root: &Path, depth: u8) -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|path| {
        if depth <= 1 {
            Some(path.display().to_string())
        } else {
            first_subdir(&path, depth - 1)
        }
    })
}

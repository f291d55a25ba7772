//! Runs commands (daemon requests on background threads) and the terminal event loop.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use api::{
    Client, ClientError, ConnectionTest, Device, ExportResult, HealingEntry, HealingState,
    Incident, SetupState, Status, Triggered, UpdateState,
};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event};

use crate::action::{Action, Failure};
use crate::model::Model;
use crate::update::{ApiCall, Command, HEALING_LIMIT, update};
use crate::{keymap, view};

/// The daemon as the console needs it. Implemented for [`api::Client`]; tests implement it
/// with recorded answers.
pub trait Daemon: Send + Sync {
    fn status(&self) -> Result<Status, Failure>;
    fn setup(&self) -> Result<SetupState, Failure>;
    fn targets(&self) -> Result<Vec<Device>, Failure>;
    fn incidents(&self) -> Result<Vec<Incident>, Failure>;
    fn healing(&self, limit: u32) -> Result<Vec<HealingEntry>, Failure>;
    fn scan_now(&self) -> Result<Triggered, Failure>;
    fn pause_healing(&self, request: &api::PauseRequest) -> Result<HealingState, Failure>;
    fn resume_healing(&self, request: &api::PauseRequest) -> Result<HealingState, Failure>;
    fn acknowledge(&self, id: u64, request: &api::AckRequest) -> Result<Incident, Failure>;
    fn export_evidence(&self, request: &api::ExportRequest) -> Result<ExportResult, Failure>;
    fn set_network(&self, request: &api::NetworkSettings) -> Result<SetupState, Failure>;
    fn claim(&self, request: &api::ClaimRequest) -> Result<SetupState, Failure>;
    fn test_directory(&self, request: &api::DirectoryRequest) -> Result<ConnectionTest, Failure>;
    fn save_directory(&self, request: &api::DirectoryRequest) -> Result<SetupState, Failure>;
    fn set_credential(&self, request: &api::CredentialRequest) -> Result<SetupState, Failure>;
    fn set_timezone(&self, request: &api::TimezoneRequest) -> Result<SetupState, Failure>;
    fn complete_setup(&self) -> Result<SetupState, Failure>;
    /// `POST /v1/update/apply`.
    fn apply_update(&self) -> Result<UpdateState, Failure>;
    /// `POST /v1/update/rollback`.
    fn roll_back_update(&self) -> Result<UpdateState, Failure>;
}

/// How long an export may take before the console gives up waiting.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// How often status is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

impl Daemon for Client {
    fn status(&self) -> Result<Status, Failure> {
        Client::status(self).map_err(failure)
    }
    fn setup(&self) -> Result<SetupState, Failure> {
        Client::setup(self).map_err(failure)
    }
    fn targets(&self) -> Result<Vec<Device>, Failure> {
        Client::targets(self).map_err(failure)
    }
    fn incidents(&self) -> Result<Vec<Incident>, Failure> {
        Client::incidents(self).map_err(failure)
    }
    fn healing(&self, limit: u32) -> Result<Vec<HealingEntry>, Failure> {
        Client::healing(self, limit).map_err(failure)
    }
    fn scan_now(&self) -> Result<Triggered, Failure> {
        Client::scan_now(self).map_err(failure)
    }
    fn pause_healing(&self, request: &api::PauseRequest) -> Result<HealingState, Failure> {
        Client::pause_healing(self, request).map_err(failure)
    }
    fn resume_healing(&self, request: &api::PauseRequest) -> Result<HealingState, Failure> {
        Client::resume_healing(self, request).map_err(failure)
    }
    fn acknowledge(&self, id: u64, request: &api::AckRequest) -> Result<Incident, Failure> {
        Client::acknowledge(self, id, request).map_err(failure)
    }
    fn export_evidence(&self, request: &api::ExportRequest) -> Result<ExportResult, Failure> {
        self.clone()
            .with_timeout(EXPORT_TIMEOUT)
            .export_evidence(request)
            .map_err(failure)
    }
    fn set_network(&self, request: &api::NetworkSettings) -> Result<SetupState, Failure> {
        Client::set_network(self, request).map_err(failure)
    }
    fn claim(&self, request: &api::ClaimRequest) -> Result<SetupState, Failure> {
        Client::claim(self, request).map_err(failure)
    }
    fn test_directory(&self, request: &api::DirectoryRequest) -> Result<ConnectionTest, Failure> {
        // A bind against an unreachable DC can take a while.
        self.clone()
            .with_timeout(Duration::from_secs(30))
            .test_directory(request)
            .map_err(failure)
    }
    fn save_directory(&self, request: &api::DirectoryRequest) -> Result<SetupState, Failure> {
        self.clone()
            .with_timeout(Duration::from_secs(30))
            .save_directory(request)
            .map_err(failure)
    }
    fn set_credential(&self, request: &api::CredentialRequest) -> Result<SetupState, Failure> {
        Client::set_credential(self, request).map_err(failure)
    }
    fn set_timezone(&self, request: &api::TimezoneRequest) -> Result<SetupState, Failure> {
        Client::set_timezone(self, request).map_err(failure)
    }
    fn complete_setup(&self) -> Result<SetupState, Failure> {
        Client::complete_setup(self).map_err(failure)
    }
    fn apply_update(&self) -> Result<UpdateState, Failure> {
        self.post("/v1/update/apply", &serde_json::json!({}))
            .map_err(failure)
    }
    fn roll_back_update(&self) -> Result<UpdateState, Failure> {
        self.post("/v1/update/rollback", &serde_json::json!({}))
            .map_err(failure)
    }
}

/// Makes one request and turns the answer into the action that carries it.
pub fn execute(daemon: &dyn Daemon, call: ApiCall) -> Action {
    match call {
        ApiCall::Status => Action::StatusLoaded(daemon.status()),
        ApiCall::Setup => Action::SetupLoaded(daemon.setup()),
        ApiCall::Devices => Action::DevicesLoaded(daemon.targets()),
        ApiCall::Incidents => Action::IncidentsLoaded(daemon.incidents()),
        ApiCall::Healing => Action::HealingLoaded(daemon.healing(HEALING_LIMIT)),
        ApiCall::ScanNow => Action::ScanTriggered(daemon.scan_now()),
        ApiCall::PauseHealing(request) => Action::HealingToggled(daemon.pause_healing(&request)),
        ApiCall::ResumeHealing(request) => Action::HealingToggled(daemon.resume_healing(&request)),
        ApiCall::Acknowledge(id, request) => Action::Acknowledged(daemon.acknowledge(id, &request)),
        ApiCall::Export(request) => Action::Exported(daemon.export_evidence(&request)),
        ApiCall::SetNetwork(request) => Action::SetupSaved(daemon.set_network(&request)),
        ApiCall::Claim(request) => Action::SetupSaved(daemon.claim(&request)),
        ApiCall::TestDirectory(request) => Action::DirectoryTested(daemon.test_directory(&request)),
        ApiCall::SaveDirectory(request) => Action::SetupSaved(daemon.save_directory(&request)),
        ApiCall::SetCredential(request) => Action::SetupSaved(daemon.set_credential(&request)),
        ApiCall::SetTimezone(request) => Action::SetupSaved(daemon.set_timezone(&request)),
        ApiCall::CompleteSetup => Action::SetupCompleted(daemon.complete_setup()),
        ApiCall::ApplyUpdate => Action::UpdateChanged(daemon.apply_update()),
        ApiCall::RollBackUpdate => Action::UpdateChanged(daemon.roll_back_update()),
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
        let sender = self.sender.clone();
        match command {
            Command::Api(call) => {
                let daemon = Arc::clone(&self.daemon);
                std::thread::spawn(move || {
                    let _ = sender.send(execute(daemon.as_ref(), call));
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
    let mut model = Model::new((size.width, size.height));
    let executor = Executor::new(daemon);
    for command in update(&mut model, Action::Tick) {
        executor.spawn(command);
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
            actions.push(Action::Tick);
        }
        let mut dirty = false;
        for action in actions {
            let changes_view = !matches!(action, Action::Tick);
            for command in update(&mut model, action) {
                executor.spawn(command);
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

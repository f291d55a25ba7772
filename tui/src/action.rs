//! Everything that can happen to the console: keys (translated by `keymap`), timer ticks and the
//! daemon's answers.

use api::{
    AgentView, AgentsState, ConnectionTest, Device, DeviceClass, ExportResult, FlywheelDecided,
    FlywheelState, HealingEntry, HealingState, Incident, L2Decided, L2Plan, SetupState, Status,
    Triggered, Unlocked,
};

use crate::model::{EnrollmentToken, Screen};

/// One event for `update`.
// A few actions a second are moved; boxing the status would only add noise at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    // Navigation.
    /// Show a screen (ignored while the wizard runs).
    Goto(Screen),
    NextScreen,
    PreviousScreen,
    Up,
    Down,
    PageUp,
    PageDown,
    /// Tab: next field in the wizard, next screen elsewhere.
    NextField,
    /// Shift-Tab.
    PreviousField,
    /// ←: previous choice.
    Left,
    /// →: next choice.
    Right,
    /// Enter.
    Submit,
    /// Esc: close the dialog, leave search, or go back a wizard step.
    Back,
    /// A typed character for the text field that has the keyboard.
    Input(char),
    Backspace,

    // Commands.
    /// Ask the daemon again now (R).
    Retry,
    ScanNow,
    /// Pause or resume automatic fixing (asks who and why).
    ToggleHealing,
    /// Show the update dialog.
    OpenUpdate,
    Help,
    /// Q: ask to quit (only from home), or go home from another screen.
    Quit,
    /// Ctrl-C: ask to quit from anywhere.
    ForceQuitRequest,
    /// Acknowledge the selected incident.
    Acknowledge,
    /// Export the evidence kit (asks for the USB path).
    Export,
    /// Export the selected monthly packet (asks for the USB path).
    ExportPacket,
    /// Devices filter: `None` shows every class.
    Filter(Option<DeviceClass>),
    /// Start typing a device search.
    StartSearch,
    /// Make an enrollment token for endpoint agents (asks who, then how many and how long).
    NewAgentToken,
    /// Revoke the selected agent (asks to confirm, then why).
    RevokeAgent,
    /// Approve the selected fix (approvals screen; asks to confirm, then who).
    Approve,
    /// Reject the selected fix (approvals screen; asks to confirm, then who).
    Reject,

    // Time and terminal.
    /// The 2-second refresh timer.
    Tick,
    /// The console's clock: time since it started (the idle lock counts on it).
    Clock(std::time::Duration),
    Resize(u16, u16),

    // Daemon answers.
    StatusLoaded(Result<Status, Failure>),
    SetupLoaded(Result<SetupState, Failure>),
    DevicesLoaded(Result<Vec<Device>, Failure>),
    IncidentsLoaded(Result<Vec<Incident>, Failure>),
    HealingLoaded(Result<Vec<HealingEntry>, Failure>),
    AgentsLoaded(Result<AgentsState, Failure>),
    PlansLoaded(Result<Vec<L2Plan>, Failure>),
    FlywheelLoaded(Result<FlywheelState, Failure>),
    PacketsLoaded(Result<Vec<api::PacketState>, Failure>),
    RecordsLoaded(Result<api::ComplianceRecords, Failure>),
    /// Answer to a wizard step's save (network, claim, directory, credentials, time zone).
    SetupSaved(Result<SetupState, Failure>),
    DirectoryTested(Result<ConnectionTest, Failure>),
    SetupCompleted(Result<SetupState, Failure>),
    ScanTriggered(Result<Triggered, Failure>),
    HealingToggled(Result<HealingState, Failure>),
    Acknowledged(Result<Incident, Failure>),
    Exported(Result<ExportResult, Failure>),
    PacketExported(Result<api::PacketExportResult, Failure>),
    AgentTokenCreated(Result<EnrollmentToken, Failure>),
    AgentRevoked(Result<AgentView, Failure>),
    PlanDecided(Result<L2Decided, Failure>),
    PatternDecided(Result<FlywheelDecided, Failure>),
    /// The first mounted USB folder, to prefill the export path.
    UsbFound(Option<String>),
    /// Answer to the PIN typed on the lock screen.
    Unlocked(Result<Unlocked, Failure>),
}

/// Why a daemon request failed, already in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// True when nothing answers on the socket (the service is stopped or gone).
    pub daemon_down: bool,
    /// True when the daemon refused because the console is locked (its unlock expired).
    pub locked: bool,
    pub message: String,
}

impl Failure {
    /// The daemon answered and refused, or the answer was broken.
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            daemon_down: false,
            locked: false,
            message: message.into(),
        }
    }

    /// Nothing answered.
    pub fn down(message: impl Into<String>) -> Failure {
        Failure {
            daemon_down: true,
            locked: false,
            message: message.into(),
        }
    }

    /// The daemon wants the PIN first (HTTP 423).
    pub fn locked(message: impl Into<String>) -> Failure {
        Failure {
            daemon_down: false,
            locked: true,
            message: message.into(),
        }
    }
}

//! The console's whole state: what the daemon last said, where the user is, and what they typed.
//!
//! Nothing here does IO; `update` changes it and `view` reads it.

use api::{
    AgentToken, AgentView, AgentsState, ConnectionTest, Device, DeviceClass, FlywheelPattern,
    FlywheelState, HealingEntry, Incident, L2Plan, NetworkMode, SetupState, Status,
};

use crate::validate;

/// Everything the console knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Whether the daemon answers.
    pub connection: Connection,
    /// The newest `GET /v1/status` answer (kept while the daemon is down, for the support code).
    pub status: Option<Status>,
    /// The newest `GET /v1/setup` answer.
    pub setup: Option<SetupState>,
    pub devices: Vec<Device>,
    pub incidents: Vec<Incident>,
    pub healing: Vec<HealingEntry>,
    /// The newest `GET /v1/agents` answer (`None` until the agents screen asked once).
    pub agents: Option<AgentsState>,
    /// The monthly compliance packets, newest first (`None` until the evidence screen asked once).
    pub packets: Option<Vec<api::PacketState>>,
    /// Selected packet on the evidence screen.
    pub packet_idx: usize,
    /// The exceptions and attestations with their expiry (`None` until the evidence screen asked once).
    pub records: Option<api::ComplianceRecords>,
    /// Shown while setup is not finished (and until the first scan after it is done).
    pub wizard_active: bool,
    pub wizard: Wizard,
    pub screen: Screen,
    pub devices_view: DevicesView,
    /// Selected row on the incidents screen.
    pub incident_idx: usize,
    /// First shown row of the healing log.
    pub healing_offset: usize,
    pub agents_view: AgentsView,
    /// The approvals screen: fixes waiting for a person, and learned fixes.
    pub approvals: ApprovalsView,
    /// A dialog on top of the screen, taking the keys.
    pub modal: Option<Modal>,
    /// One line above the footer: the answer to the last action.
    pub notice: Option<Notice>,
    /// Who is at the keyboard, asked once and then reused for acknowledgements and pauses.
    pub operator: Option<String>,
    /// Terminal size in cells (columns, rows).
    pub size: (u16, u16),
    /// Requests sent and not answered yet, so a slow daemon does not pile them up.
    pub in_flight: Vec<Pending>,
    /// Set when the user confirmed quitting.
    pub quit: bool,
    /// The console PIN's idle lock.
    pub lock: Lock,
}

/// The idle lock: with a console PIN set, the console starts locked and locks again after
/// `Status.console.lock_after_secs` without a key; while locked it draws no site data and
/// sends only status requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub locked: bool,
    /// Digits typed on the lock screen (drawn as dots, sent once, then forgotten).
    pub pin: String,
    /// The daemon's answer to the last PIN, or why the console locked.
    pub message: Option<Notice>,
    /// A PIN is on its way to the daemon.
    pub busy: bool,
    /// The daemon's unlock token for the right PIN; sent with every request while unlocked.
    pub token: Option<String>,
    /// The console's clock (time since it started) as the runtime last told it
    /// ([`crate::action::Action::Clock`]).
    pub clock: std::time::Duration,
    /// When a key was last pressed, on that clock.
    pub last_key: std::time::Duration,
}

/// Whether the daemon answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// No answer yet since start.
    Connecting,
    Up,
    /// The last request found no daemon; the text says why.
    Down(String),
}

/// The everyday screens (the wizard is not one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Home,
    Devices,
    Incidents,
    Healing,
    Evidence,
    /// Endpoint agents: the enrolled ones, enrollment tokens, revocation.
    Agents,
    /// Fixes planned by L2 that wait for a person, and learned fixes to make automatic.
    Approvals,
}

impl Screen {
    /// Every screen in tab order.
    pub const ALL: [Screen; 7] = [
        Screen::Home,
        Screen::Devices,
        Screen::Incidents,
        Screen::Healing,
        Screen::Evidence,
        Screen::Agents,
        Screen::Approvals,
    ];

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Home => "Home",
            Screen::Devices => "Devices",
            Screen::Incidents => "Incidents",
            Screen::Healing => "Healing log",
            Screen::Evidence => "Evidence",
            Screen::Agents => "Agents",
            Screen::Approvals => "Approvals",
        }
    }

    /// The tab title where the terminal is narrow.
    pub fn short_title(self) -> &'static str {
        match self {
            Screen::Healing => "Healing",
            other => other.title(),
        }
    }

    /// Position in [`Screen::ALL`].
    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Filter, search and selection on the devices screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicesView {
    pub class: Option<DeviceClass>,
    pub search: String,
    /// True while `/` search text is being typed.
    pub searching: bool,
    /// Selected row among the shown devices.
    pub selected: usize,
}

/// Selection on the agents screen, and the enrollment token just made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentsView {
    /// Selected row among the agents.
    pub selected: usize,
    /// The token the daemon just made. It is a secret shown on this screen only: it is dropped
    /// when the screen is left, when Esc hides it and when the console locks.
    pub token: Option<EnrollmentToken>,
    /// A token request is on its way (its answer is dropped if the screen was left meanwhile).
    pub creating: bool,
}

/// The approvals screen's lists as the daemon last sent them, and the selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalsView {
    /// `GET /v1/l2/pending` (`None` until asked once).
    pub plans: Option<Vec<L2Plan>>,
    /// `GET /v1/flywheel` (`None` until asked once).
    pub flywheel: Option<FlywheelState>,
    /// Selected row: the plans first, then the learned fixes.
    pub selected: usize,
}

/// One row of the approvals screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApprovalRow<'a> {
    Plan(&'a L2Plan),
    Pattern(&'a FlywheelPattern),
}

impl ApprovalsView {
    /// The rows in screen order: the waiting plans, then the learned fixes.
    pub fn rows(&self) -> Vec<ApprovalRow<'_>> {
        let plans = self.plans.iter().flatten().map(ApprovalRow::Plan);
        let patterns = self
            .flywheel
            .iter()
            .flat_map(|f| f.patterns.iter())
            .map(ApprovalRow::Pattern);
        plans.chain(patterns).collect()
    }
}

/// A person's decision about a waiting fix or a learned fix, as confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approve: bool,
    pub item: DecisionItem,
}

/// What a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionItem {
    /// A fix L2 planned for one computer (`l2-…`).
    Plan {
        id: String,
        target: String,
        check: String,
        runbook: String,
    },
    /// A fix that worked often enough to become automatic (`fw-…`).
    Pattern { id: String, check: String },
}

/// An enrollment token as `POST /v1/agents/tokens` answered it. Anyone holding its text can
/// enroll a computer, so `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentToken(pub AgentToken);

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = &self.0;
        f.debug_struct("EnrollmentToken")
            .field("token", &"[redacted]")
            .field("id", &token.id)
            .field("uses", &token.uses)
            .field("expires_at", &token.expires_at)
            .field("gateway", &token.gateway)
            .field("ca_pin", &token.ca_pin)
            .finish()
    }
}

/// A request kind that is on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Status,
    Setup,
    Devices,
    Incidents,
    Healing,
    Agents,
    Plans,
    Flywheel,
    Packets,
    Records,
}

/// A one-line message above the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub tone: Tone,
    pub text: String,
}

/// How a message or state should look: always drawn with a symbol and a word, never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// "✔": fine.
    Good,
    /// Neutral information.
    Info,
    /// "!": needs attention.
    Attention,
    /// "✖": something failed.
    Problem,
}

/// A dialog on top of the current screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// Keys, the appliance's address and the support code.
    Help,
    /// A yes/no question.
    Confirm(Confirm),
    /// One line of text to type (who are you, a reason, a USB path).
    Prompt(Prompt),
    /// Where image updates stand (the partner applies them with `osiris update`).
    Update,
    /// How many computers may enroll with a new token, and for how long.
    TokenForm(TokenForm),
    /// Waiting for a long request (export) or showing its result.
    Working {
        title: String,
        text: String,
        done: Option<Tone>,
    },
}

/// What a confirmation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Quit,
    /// Revoke an enrolled agent (a reason is asked next).
    RevokeAgent(AgentTarget),
    /// Approve or reject a waiting fix or a learned fix.
    Decide(Decision),
}

/// The agent an action is about: its ID for the daemon, its host name for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    pub agent_id: String,
    pub hostname: String,
}

/// The "New enrollment token" form: typed text of both fields, checked on Enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenForm {
    /// How many computers may enroll with it (1 to 10,000).
    pub uses: String,
    /// How long it is valid: `24h`, `7d`, `30m`, or a number of hours.
    pub valid_for: String,
    pub focus: TokenField,
    /// The focused field's text is selected, as in a usual form: the next character typed
    /// replaces it (true when the form opens and after Tab).
    pub selected: bool,
    /// Shown after a rejected submit.
    pub hint: Option<String>,
}

/// A field of [`TokenForm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenField {
    Uses,
    ValidFor,
}

impl Default for TokenForm {
    /// One computer, for a day: what enrolling the machine in front of you needs.
    fn default() -> TokenForm {
        TokenForm {
            uses: "1".into(),
            valid_for: "24h".into(),
            focus: TokenField::Uses,
            selected: true,
            hint: None,
        }
    }
}

/// A one-line text question and what to do with the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub purpose: PromptPurpose,
    pub value: String,
    /// Shown after a rejected submit.
    pub hint: Option<String>,
}

/// Why a prompt asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    /// "Who are you?", then continue with the operation.
    Name(AfterName),
    /// Why healing is paused or resumed (required, recorded as evidence).
    HealingReason,
    /// Where to write the evidence kit.
    ExportPath,
    /// Where to write the monthly packet of this period (`YYYY-MM`).
    PacketExportPath(String),
    /// Why an agent is revoked (required, recorded as evidence).
    RevokeReason(AgentTarget),
}

/// What to do once the operator's name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterName {
    Acknowledge(u64),
    ToggleHealing,
    /// Open the "New enrollment token" form.
    NewAgentToken,
    /// Ask why the agent is revoked.
    RevokeAgent(AgentTarget),
    /// Send the confirmed decision.
    Decide(Decision),
}

/// The first-boot wizard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wizard {
    pub step: WizardStep,
    /// Index into [`Wizard::focusables`].
    pub focus: usize,
    /// Text of every field, indexed by [`FieldId::index`].
    pub values: Vec<String>,
    /// Fields whose hint shows even when empty (after a rejected submit).
    pub touched: Vec<bool>,
    /// Chosen interface (index into `SetupState.interfaces`).
    pub interface_idx: usize,
    pub mode: NetworkMode,
    /// The daemon's answer to the last "Test connection".
    pub directory_test: Option<ConnectionTest>,
    /// The daemon refused the step; its words.
    pub error: Option<String>,
    /// A step request is on its way.
    pub busy: Option<String>,
    pub finish: FinishState,
    /// Fields were filled from the daemon's saved setup once.
    pub prefilled: bool,
}

/// The wizard's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WizardStep {
    Network,
    Claim,
    Directory,
    Windows,
    Linux,
    Timezone,
    Pin,
    Finish,
}

/// Where "Run first scan" is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishState {
    NotStarted,
    /// `POST /v1/setup/complete` is on its way.
    Completing,
    /// The scan was triggered; done once the server scan's `runs` passes `baseline_runs`.
    Scanning {
        baseline_runs: u64,
    },
}

/// Something on a wizard step that takes focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focusable {
    Field(FieldId),
    /// The "Test connection" button on the directory step.
    TestConnection,
    /// The "Run first scan" button on the last step.
    RunFirstScan,
}

/// Every wizard field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldId {
    /// A choice among the detected interfaces (←/→).
    Interface,
    /// DHCP or static (←/→).
    Mode,
    Address,
    Gateway,
    Dns,
    ClaimCode,
    Domain,
    DomainController,
    BindUser,
    BindPassword,
    WindowsUser,
    WindowsPassword,
    LinuxUser,
    LinuxPassword,
    Timezone,
    Pin,
    PinAgain,
}

impl FieldId {
    /// Every field, in [`FieldId::index`] order.
    pub const ALL: [FieldId; 17] = [
        FieldId::Interface,
        FieldId::Mode,
        FieldId::Address,
        FieldId::Gateway,
        FieldId::Dns,
        FieldId::ClaimCode,
        FieldId::Domain,
        FieldId::DomainController,
        FieldId::BindUser,
        FieldId::BindPassword,
        FieldId::WindowsUser,
        FieldId::WindowsPassword,
        FieldId::LinuxUser,
        FieldId::LinuxPassword,
        FieldId::Timezone,
        FieldId::Pin,
        FieldId::PinAgain,
    ];

    pub fn index(self) -> usize {
        FieldId::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// The label shown before the field.
    pub fn label(self) -> &'static str {
        match self {
            FieldId::Interface => "Network port",
            FieldId::Mode => "Address",
            FieldId::Address => "IP address",
            FieldId::Gateway => "Router (gateway)",
            FieldId::Dns => "DNS servers",
            FieldId::ClaimCode => "Claim code",
            FieldId::Domain => "Domain",
            FieldId::DomainController => "Domain controller",
            FieldId::BindUser => "Account",
            FieldId::BindPassword => "Password",
            FieldId::WindowsUser => "Windows account",
            FieldId::WindowsPassword => "Password",
            FieldId::LinuxUser => "Linux account",
            FieldId::LinuxPassword => "Password",
            FieldId::Timezone => "Time zone",
            FieldId::Pin => "Console PIN",
            FieldId::PinAgain => "PIN again",
        }
    }

    /// True for passwords: shown as dots, never as text.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            FieldId::BindPassword
                | FieldId::WindowsPassword
                | FieldId::LinuxPassword
                | FieldId::Pin
                | FieldId::PinAgain
        )
    }

    /// True for ←/→ choices rather than typed text.
    pub fn is_choice(self) -> bool {
        matches!(self, FieldId::Interface | FieldId::Mode)
    }
}

impl WizardStep {
    /// Every step in order.
    pub const ALL: [WizardStep; 8] = [
        WizardStep::Network,
        WizardStep::Claim,
        WizardStep::Directory,
        WizardStep::Windows,
        WizardStep::Linux,
        WizardStep::Timezone,
        WizardStep::Pin,
        WizardStep::Finish,
    ];

    /// 1-based step number.
    pub fn number(self) -> usize {
        WizardStep::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    pub fn title(self) -> &'static str {
        match self {
            WizardStep::Network => "Network",
            WizardStep::Claim => "Site claim",
            WizardStep::Directory => "Active Directory",
            WizardStep::Windows => "Windows credentials",
            WizardStep::Linux => "Linux credentials",
            WizardStep::Timezone => "Time zone",
            WizardStep::Pin => "Console PIN",
            WizardStep::Finish => "Finish",
        }
    }

    /// The step after this one (the last step stays).
    pub fn next(self) -> WizardStep {
        let idx = self.number().min(WizardStep::ALL.len() - 1);
        WizardStep::ALL[idx]
    }

    /// The step before this one (the first step stays).
    pub fn previous(self) -> WizardStep {
        WizardStep::ALL[self.number().saturating_sub(2)]
    }
}

impl Default for Wizard {
    fn default() -> Wizard {
        Wizard {
            step: WizardStep::Network,
            focus: 0,
            values: vec![String::new(); FieldId::ALL.len()],
            touched: vec![false; FieldId::ALL.len()],
            interface_idx: 0,
            mode: NetworkMode::Dhcp,
            directory_test: None,
            error: None,
            busy: None,
            finish: FinishState::NotStarted,
            prefilled: false,
        }
    }
}

impl Wizard {
    /// The text of a field.
    pub fn value(&self, field: FieldId) -> &str {
        self.values
            .get(field.index())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// What takes focus on the current step, in Tab order.
    pub fn focusables(&self) -> Vec<Focusable> {
        use FieldId::*;
        let fields: &[FieldId] = match self.step {
            WizardStep::Network if self.mode == NetworkMode::Static => {
                &[Interface, Mode, Address, Gateway, Dns]
            }
            WizardStep::Network => &[Interface, Mode],
            WizardStep::Claim => &[ClaimCode],
            WizardStep::Directory => &[Domain, DomainController, BindUser, BindPassword],
            WizardStep::Windows => &[WindowsUser, WindowsPassword],
            WizardStep::Linux => &[LinuxUser, LinuxPassword],
            WizardStep::Timezone => &[Timezone],
            WizardStep::Pin => &[Pin, PinAgain],
            WizardStep::Finish => &[],
        };
        let mut res: Vec<Focusable> = fields.iter().copied().map(Focusable::Field).collect();
        match self.step {
            WizardStep::Directory => res.push(Focusable::TestConnection),
            WizardStep::Finish => res.push(Focusable::RunFirstScan),
            _ => {}
        }
        res
    }

    /// What has focus now.
    pub fn focused(&self) -> Option<Focusable> {
        let focusables = self.focusables();
        focusables
            .get(self.focus.min(focusables.len().saturating_sub(1)))
            .copied()
    }

    /// The hint to show under a field now, if any: invalid text, or empty-but-required after a
    /// rejected submit.
    pub fn visible_hint(&self, field: FieldId, n_interfaces: usize) -> Option<&'static str> {
        let value = self.value(field);
        let touched = self.touched.get(field.index()).copied().unwrap_or(false);
        if field == FieldId::Interface {
            return (touched && n_interfaces == 0).then_some(validate::NO_INTERFACE_HINT);
        }
        if value.is_empty() && !touched {
            return None;
        }
        validate::field(field, value).err()
    }
}

impl Model {
    /// A fresh console that has not heard from the daemon yet.
    pub fn new(size: (u16, u16)) -> Model {
        Model {
            connection: Connection::Connecting,
            status: None,
            setup: None,
            devices: Vec::new(),
            incidents: Vec::new(),
            healing: Vec::new(),
            agents: None,
            packets: None,
            packet_idx: 0,
            records: None,
            wizard_active: false,
            wizard: Wizard::default(),
            screen: Screen::Home,
            devices_view: DevicesView::default(),
            incident_idx: 0,
            healing_offset: 0,
            agents_view: AgentsView::default(),
            approvals: ApprovalsView::default(),
            modal: None,
            notice: None,
            operator: None,
            size,
            in_flight: Vec::new(),
            quit: false,
            lock: Lock::default(),
        }
    }

    /// The devices the devices screen shows now (filter and search applied), in list order.
    pub fn shown_devices(&self) -> Vec<&Device> {
        let needle = self.devices_view.search.to_lowercase();
        self.devices
            .iter()
            .filter(|d| self.devices_view.class.is_none_or(|c| d.class == c))
            .filter(|d| {
                needle.is_empty()
                    || d.name.to_lowercase().contains(&needle)
                    || d.address
                        .as_deref()
                        .is_some_and(|a| a.to_lowercase().contains(&needle))
            })
            .collect()
    }

    /// The agents in list order (as the daemon sent them), empty until they are loaded.
    pub fn agents(&self) -> &[AgentView] {
        self.agents
            .as_ref()
            .map(|a| a.agents.as_slice())
            .unwrap_or_default()
    }

    /// The daemon's clock as last seen (all "ago" texts are computed from it).
    pub fn now(&self) -> i64 {
        self.status.as_ref().map(|s| s.now).unwrap_or_default()
    }

    /// The daemon's console settings, once status arrived.
    pub fn console(&self) -> Option<&api::ConsoleLock> {
        self.status.as_ref().map(|s| &s.console)
    }

    /// True when a console PIN is set (the console locks when idle).
    pub fn pin_set(&self) -> bool {
        self.console().is_some_and(|c| c.pin_set)
    }

    /// True when a text field has the keyboard (so letters are text, not commands).
    pub fn text_input_active(&self) -> bool {
        if self.lock.locked && !matches!(self.modal, Some(Modal::Confirm(_))) {
            return true;
        }
        match &self.modal {
            Some(Modal::Prompt(_) | Modal::TokenForm(_)) => return true,
            Some(_) => return false,
            None => {}
        }
        if self.wizard_active {
            return matches!(
                self.wizard.focused(),
                Some(Focusable::Field(field)) if !field.is_choice()
            ) && self.wizard.busy.is_none()
                && self.wizard.finish == FinishState::NotStarted;
        }
        self.screen == Screen::Devices && self.devices_view.searching
    }
}

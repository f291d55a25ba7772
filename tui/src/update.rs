//! The pure state machine: an action changes the model and yields the requests to make.

use api::{
    AckRequest, AgentRevokeRequest, AgentTokenRequest, AgentView, ClaimRequest, ConnectionTest,
    CredentialRequest, CredentialSlot, CycleKind, DecisionRequest, DirectoryRequest, ExportRequest,
    ExportResult, FlywheelDecided, HealingState, Incident, L2Decided, NetworkMode, NetworkSettings,
    PauseRequest, PinRequest, SetupState, Status, TimezoneRequest, UnlockRequest, Unlocked,
};

use crate::action::{Action, Failure};
use crate::model::{
    AfterName, AgentTarget, ApprovalRow, Confirm, Connection, Decision, DecisionItem,
    EnrollmentToken, FieldId, FinishState, Focusable, Modal, Model, Notice, Pending, Prompt,
    PromptPurpose, Screen, TokenField, TokenForm, Tone, WizardStep,
};
use crate::validate;

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a request to the daemon; its answer comes back as an action.
    Api(ApiCall),
    /// Look for a mounted USB stick; the answer comes back as [`Action::UsbFound`].
    FindUsb,
}

/// One request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCall {
    Status,
    Setup,
    Devices,
    Incidents,
    /// The newest entries of the healing log.
    Healing,
    ScanNow,
    PauseHealing(PauseRequest),
    ResumeHealing(PauseRequest),
    Acknowledge(u64, AckRequest),
    Export(ExportRequest),
    /// The monthly compliance packets.
    Packets,
    /// The exceptions and attestations.
    Records,
    ExportPacket(api::PacketExportRequest),
    SetNetwork(NetworkSettings),
    Claim(ClaimRequest),
    TestDirectory(DirectoryRequest),
    SaveDirectory(DirectoryRequest),
    SetCredential(CredentialRequest),
    SetTimezone(TimezoneRequest),
    SetPin(PinRequest),
    CompleteSetup,
    /// The PIN typed on the lock screen.
    Unlock(UnlockRequest),
    /// The agent gateway and the enrolled agents.
    Agents,
    /// A new enrollment token for endpoint agents.
    CreateAgentToken(AgentTokenRequest),
    RevokeAgent(AgentRevokeRequest),
    /// The L2 plans waiting for a person.
    Plans,
    /// The flywheel's learned fixes.
    Flywheel,
    /// Run a waiting plan now (`l2-…`).
    ApprovePlan(String, DecisionRequest),
    RejectPlan(String, DecisionRequest),
    /// Make a learned fix automatic (`fw-…`).
    ApprovePattern(String, DecisionRequest),
    RejectPattern(String, DecisionRequest),
}

/// How many healing log entries the console asks for.
pub const HEALING_LIMIT: u32 = 200;

/// What the console says when the agent gateway is off…
pub const AGENTS_OFF: &str = "Endpoint agents are off on this appliance.";

/// …and what turns it on.
pub const AGENTS_TURN_ON: &str = "Your IT partner turns them on with an [agents] section in the configuration (for example listen = \"0.0.0.0:7443\") and a restart of the appliance service.";

/// Applies one action; returns the requests it calls for.
pub fn update(model: &mut Model, action: Action) -> Vec<Command> {
    match action {
        Action::Tick => tick(model),
        Action::Clock(now) => {
            model.lock.clock = now;
            let idle = now.saturating_sub(model.lock.last_key);
            let lock_after = model.console().map_or(0, |c| c.lock_after_secs);
            if model.pin_set()
                && !model.lock.locked
                && !model.wizard_active
                && idle.as_secs() >= lock_after
            {
                lock(model, "The console locked after a while without a key.");
            }
            Vec::new()
        }
        Action::Unlocked(res) => unlocked(model, res),
        Action::Resize(width, height) => {
            model.size = (width, height);
            Vec::new()
        }
        Action::Retry => {
            model.in_flight.clear();
            model.notice = Some(Notice {
                tone: Tone::Info,
                text: "Asking the appliance service again…".into(),
            });
            tick(model)
        }
        Action::ForceQuitRequest => {
            model.modal = Some(Modal::Confirm(Confirm::Quit));
            Vec::new()
        }
        Action::StatusLoaded(res) => status_loaded(model, res),
        Action::SetupLoaded(res) => setup_loaded(model, res),
        Action::DevicesLoaded(res) => {
            list_loaded(model, Pending::Devices, res, |model, devices| {
                model.devices = devices;
                clamp_device_selection(model);
            })
        }
        Action::IncidentsLoaded(res) => {
            list_loaded(model, Pending::Incidents, res, |model, incidents| {
                model.incidents = incidents;
                model.incident_idx = model
                    .incident_idx
                    .min(model.incidents.len().saturating_sub(1));
            })
        }
        Action::HealingLoaded(res) => {
            list_loaded(model, Pending::Healing, res, |model, entries| {
                model.healing = entries;
                model.healing_offset = model
                    .healing_offset
                    .min(model.healing.len().saturating_sub(1));
            })
        }
        Action::AgentsLoaded(res) => list_loaded(model, Pending::Agents, res, |model, agents| {
            model.agents = Some(agents);
            model.agents_view.selected = model
                .agents_view
                .selected
                .min(model.agents().len().saturating_sub(1));
        }),
        Action::PlansLoaded(res) => list_loaded(model, Pending::Plans, res, |model, plans| {
            model.approvals.plans = Some(plans);
            clamp_approval_selection(model);
        }),
        Action::FlywheelLoaded(res) => {
            list_loaded(model, Pending::Flywheel, res, |model, flywheel| {
                model.approvals.flywheel = Some(flywheel);
                clamp_approval_selection(model);
            })
        }
        Action::PlanDecided(res) => plan_decided(model, res),
        Action::PatternDecided(res) => pattern_decided(model, res),
        Action::PacketsLoaded(res) => {
            list_loaded(model, Pending::Packets, res, |model, packets| {
                model.packet_idx = model.packet_idx.min(packets.len().saturating_sub(1));
                model.packets = Some(packets);
            })
        }
        Action::RecordsLoaded(res) => {
            list_loaded(model, Pending::Records, res, |model, records| {
                model.records = Some(records);
            })
        }
        Action::PacketExported(res) => packet_exported(model, res),
        Action::AgentTokenCreated(res) => agent_token_created(model, res),
        Action::AgentRevoked(res) => agent_revoked(model, res),
        Action::SetupSaved(res) => setup_saved(model, res),
        Action::DirectoryTested(res) => directory_tested(model, res),
        Action::SetupCompleted(res) => setup_completed(model, res),
        Action::ScanTriggered(res) => scan_triggered(model, res),
        Action::HealingToggled(res) => healing_toggled(model, res),
        Action::Acknowledged(res) => acknowledged(model, res),
        Action::Exported(res) => exported(model, res),
        Action::UsbFound(path) => {
            if let (Some(Modal::Prompt(prompt)), Some(path)) = (&mut model.modal, path)
                && matches!(
                    prompt.purpose,
                    PromptPurpose::ExportPath | PromptPurpose::PacketExportPath(_)
                )
                && prompt.value.is_empty()
            {
                prompt.value = path;
            }
            Vec::new()
        }
        key_action => {
            model.lock.last_key = model.lock.clock;
            if model.lock.locked && !matches!(model.modal, Some(Modal::Confirm(_))) {
                lock_key(model, key_action)
            } else if model.modal.is_some() {
                modal_key(model, key_action)
            } else if model.wizard_active {
                wizard_key(model, key_action)
            } else {
                screen_key(model, key_action)
            }
        }
    }
}

fn tick(model: &mut Model) -> Vec<Command> {
    let mut res = Vec::new();
    let mut want = |model: &mut Model, pending: Pending, call: ApiCall| {
        if !model.in_flight.contains(&pending) {
            model.in_flight.push(pending);
            res.push(Command::Api(call));
        }
    };
    want(model, Pending::Status, ApiCall::Status);
    if model.lock.locked {
        return res;
    }
    if model.wizard_active && model.setup.is_none() {
        want(model, Pending::Setup, ApiCall::Setup);
    }
    if !model.wizard_active {
        match model.screen {
            Screen::Devices => want(model, Pending::Devices, ApiCall::Devices),
            Screen::Incidents => want(model, Pending::Incidents, ApiCall::Incidents),
            Screen::Healing => want(model, Pending::Healing, ApiCall::Healing),
            Screen::Agents => want(model, Pending::Agents, ApiCall::Agents),
            Screen::Approvals => {
                want(model, Pending::Plans, ApiCall::Plans);
                want(model, Pending::Flywheel, ApiCall::Flywheel);
            }
            Screen::Evidence => {
                want(model, Pending::Packets, ApiCall::Packets);
                want(model, Pending::Records, ApiCall::Records);
            }
            Screen::Home => {}
        }
    }
    res
}

fn status_loaded(model: &mut Model, res: Result<Status, Failure>) -> Vec<Command> {
    done(model, Pending::Status);
    let status = match res {
        Ok(status) => status,
        Err(failure) => {
            failed(model, &failure);
            return Vec::new();
        }
    };
    connected(model);
    let mut res = Vec::new();
    let setup_complete = status.setup_complete;
    let server_runs = server_scan_runs(&status);
    model.status = Some(status);
    if !setup_complete && !model.wizard_active {
        model.wizard_active = true;
        if model.setup.is_none() && !model.in_flight.contains(&Pending::Setup) {
            model.in_flight.push(Pending::Setup);
            res.push(Command::Api(ApiCall::Setup));
        }
    }
    if setup_complete && model.wizard_active {
        match model.wizard.finish {
            FinishState::Scanning { baseline_runs } if server_runs <= baseline_runs => {}
            FinishState::Completing => {}
            FinishState::Scanning { .. } => {
                model.wizard_active = false;
                model.screen = Screen::Home;
                notice(
                    model,
                    Tone::Good,
                    "Setup is done and the first scan finished.",
                );
            }
            FinishState::NotStarted => {
                // Someone finished setup elsewhere (e.g. the partner over the API).
                model.wizard_active = false;
                model.screen = Screen::Home;
            }
        }
    }
    // With a PIN set, a console that holds no unlock is locked: at start, and when a PIN was
    // set elsewhere.
    if model.pin_set() && !model.wizard_active && !model.lock.locked && model.lock.token.is_none() {
        lock(
            model,
            "Type the console PIN to see and change this appliance.",
        );
    }
    res
}

fn setup_loaded(model: &mut Model, res: Result<SetupState, Failure>) -> Vec<Command> {
    done(model, Pending::Setup);
    match res {
        Ok(setup) => {
            connected(model);
            if model.setup.is_none() {
                model.wizard.error = None;
            }
            set_setup(model, setup);
        }
        Err(failure) => {
            failed(model, &failure);
            if !failure.daemon_down && model.setup.is_none() {
                model.wizard.error = Some(format!(
                    "Could not read the setup state (asking again every 2 seconds): {}",
                    failure.message
                ));
            }
        }
    }
    Vec::new()
}

/// A list for one screen arrived (or did not).
fn list_loaded<T>(
    model: &mut Model,
    pending: Pending,
    res: Result<T, Failure>,
    keep: impl FnOnce(&mut Model, T),
) -> Vec<Command> {
    done(model, pending);
    match res {
        // Site data that arrives while locked is not kept.
        Ok(_) if model.lock.locked => connected(model),
        Ok(list) => {
            connected(model);
            keep(model, list);
        }
        Err(failure) => failed(model, &failure),
    }
    Vec::new()
}

fn directory_tested(model: &mut Model, res: Result<ConnectionTest, Failure>) -> Vec<Command> {
    model.wizard.busy = None;
    match res {
        Ok(test) => {
            connected(model);
            model.wizard.error = None;
            model.wizard.directory_test = Some(test);
        }
        Err(failure) => {
            failed(model, &failure);
            model.wizard.error = Some(failure.message);
        }
    }
    Vec::new()
}

fn setup_completed(model: &mut Model, res: Result<SetupState, Failure>) -> Vec<Command> {
    match res {
        Ok(setup) => {
            connected(model);
            set_setup(model, setup);
            model.wizard.busy = Some("Starting the first scan…".into());
            vec![Command::Api(ApiCall::ScanNow)]
        }
        Err(failure) => {
            failed(model, &failure);
            model.wizard.busy = None;
            model.wizard.finish = FinishState::NotStarted;
            model.wizard.error = Some(failure.message);
            Vec::new()
        }
    }
}

fn healing_toggled(model: &mut Model, res: Result<HealingState, Failure>) -> Vec<Command> {
    match res {
        Ok(healing) => {
            connected(model);
            let text = if healing.paused {
                "Automatic fixing is paused. Problems are still detected and shown."
            } else {
                "Automatic fixing is on again."
            };
            if let Some(status) = &mut model.status {
                status.healing = healing;
            }
            notice(model, Tone::Good, text);
        }
        Err(failure) => action_failed(model, "Could not change automatic fixing", &failure),
    }
    vec![Command::Api(ApiCall::Status)]
}

fn acknowledged(model: &mut Model, res: Result<Incident, Failure>) -> Vec<Command> {
    match res {
        Ok(incident) => {
            connected(model);
            notice(
                model,
                Tone::Good,
                format!("Incident {} is marked as taken by you.", incident.id),
            );
            if let Some(slot) = model.incidents.iter_mut().find(|i| i.id == incident.id) {
                *slot = incident;
            }
        }
        Err(failure) => action_failed(model, "Could not acknowledge", &failure),
    }
    Vec::new()
}

fn agent_token_created(model: &mut Model, res: Result<EnrollmentToken, Failure>) -> Vec<Command> {
    let waited = std::mem::take(&mut model.agents_view.creating);
    match res {
        Ok(token) if waited && model.screen == Screen::Agents && !model.lock.locked => {
            connected(model);
            model.notice = None;
            model.agents_view.token = Some(token);
        }
        Ok(token) => {
            // The screen was left (or the console locked) before the answer: the secret is not
            // kept for a screen nobody looks at.
            connected(model);
            if !model.lock.locked {
                notice(
                    model,
                    Tone::Attention,
                    format!(
                        "Enrollment token {} was made after you left the Agents screen, so it is not shown. Make a new one when you need it.",
                        token.0.id
                    ),
                );
            }
        }
        Err(failure) => refused(model, "New enrollment token", "No token was made", &failure),
    }
    Vec::new()
}

fn agent_revoked(model: &mut Model, res: Result<AgentView, Failure>) -> Vec<Command> {
    match res {
        Ok(agent) => {
            connected(model);
            notice(
                model,
                Tone::Good,
                format!(
                    "The agent on {} is revoked: the appliance refuses it from now on.",
                    agent.hostname
                ),
            );
            if let Some(agents) = &mut model.agents
                && let Some(slot) = agents
                    .agents
                    .iter_mut()
                    .find(|a| a.agent_id == agent.agent_id)
            {
                *slot = agent;
            }
        }
        Err(failure) => refused(model, "Revoke agent", "The agent was not revoked", &failure),
    }
    if model.in_flight.contains(&Pending::Agents) || model.lock.locked {
        return Vec::new();
    }
    model.in_flight.push(Pending::Agents);
    vec![Command::Api(ApiCall::Agents)]
}

fn packet_exported(
    model: &mut Model,
    res: Result<api::PacketExportResult, Failure>,
) -> Vec<Command> {
    let res = res.map(|export| {
        format!(
            "The packet is on the USB stick: {} ({} files, {}). You can remove the stick now.",
            export.path,
            export.files,
            crate::view::format::bytes(export.bytes)
        )
    });
    export_finished(model, "Export the monthly packet", res)
}

fn exported(model: &mut Model, res: Result<ExportResult, Failure>) -> Vec<Command> {
    let res = res.map(|export| {
        format!(
            "The evidence kit is on the USB stick: {} ({} records, {}). You can remove the stick now.",
            export.path,
            export.bundles,
            crate::view::format::bytes(export.bytes)
        )
    });
    export_finished(model, "Export evidence kit", res)
}

/// The end of an export onto a USB stick (the kit or a packet): `done` says what is on the stick.
fn export_finished(model: &mut Model, title: &str, res: Result<String, Failure>) -> Vec<Command> {
    let (text, tone) = match res {
        Ok(done) => {
            connected(model);
            (done, Tone::Good)
        }
        Err(failure) if failure.locked => {
            lock(
                model,
                "The console locked before the export: nothing was exported.",
            );
            return Vec::new();
        }
        Err(failure) => {
            failed(model, &failure);
            (
                format!(
                    "Nothing was exported: {} Check that the USB stick is plugged in, not full and not write-protected.",
                    sentence(&failure.message)
                ),
                Tone::Problem,
            )
        }
    };
    model.modal = Some(Modal::Working {
        title: title.into(),
        text,
        done: Some(tone),
    });
    Vec::new()
}

fn scan_triggered(model: &mut Model, res: Result<api::Triggered, Failure>) -> Vec<Command> {
    let in_wizard = model.wizard_active && model.wizard.finish == FinishState::Completing;
    match res {
        Ok(triggered) => {
            connected(model);
            if in_wizard {
                let baseline_runs = model.status.as_ref().map(server_scan_runs).unwrap_or(0);
                model.wizard.finish = FinishState::Scanning { baseline_runs };
                model.wizard.busy = None;
            } else {
                let text = if triggered.queued {
                    format!(
                        "A scan is already running; another one follows. {}",
                        triggered.message
                    )
                } else {
                    format!("Scan started. {}", triggered.message)
                };
                notice(model, Tone::Good, text.trim_end());
            }
        }
        Err(failure) => {
            if in_wizard {
                failed(model, &failure);
                model.wizard.busy = None;
                model.wizard.finish = FinishState::NotStarted;
                model.wizard.error = Some(format!(
                    "Setup is saved, but the first scan did not start: {}",
                    failure.message
                ));
            } else {
                action_failed(model, "The scan did not start", &failure);
            }
        }
    }
    vec![Command::Api(ApiCall::Status)]
}

fn setup_saved(model: &mut Model, res: Result<SetupState, Failure>) -> Vec<Command> {
    model.wizard.busy = None;
    match res {
        Ok(setup) => {
            connected(model);
            set_setup(model, setup);
            model.wizard.error = None;
            advance(model);
        }
        Err(failure) => {
            failed(model, &failure);
            model.wizard.error = Some(failure.message);
        }
    }
    Vec::new()
}

fn advance(model: &mut Model) {
    let wizard = &mut model.wizard;
    wizard.step = wizard.step.next();
    wizard.focus = 0;
    wizard.error = None;
}

fn wizard_key(model: &mut Model, action: Action) -> Vec<Command> {
    if model.wizard.busy.is_some() || model.wizard.finish != FinishState::NotStarted {
        // While a step is being saved or the first scan runs, only Quit works.
        return Vec::new();
    }
    let n_focusables = model.wizard.focusables().len();
    let wizard = &mut model.wizard;
    match action {
        Action::NextField => {
            wizard.focus = (wizard.focus + 1) % n_focusables.max(1);
        }
        Action::PreviousField => {
            wizard.focus = (wizard.focus + n_focusables.max(1) - 1) % n_focusables.max(1);
        }
        Action::Left | Action::Right => {
            let forward = action == Action::Right;
            match wizard.focused() {
                Some(Focusable::Field(FieldId::Interface)) => {
                    let n = model.setup.as_ref().map_or(0, |s| s.interfaces.len());
                    if n > 0 {
                        wizard.interface_idx = if forward {
                            (wizard.interface_idx + 1) % n
                        } else {
                            (wizard.interface_idx + n - 1) % n
                        };
                    }
                }
                Some(Focusable::Field(FieldId::Mode)) => {
                    wizard.mode = match wizard.mode {
                        NetworkMode::Dhcp => NetworkMode::Static,
                        NetworkMode::Static => NetworkMode::Dhcp,
                    };
                }
                _ => {}
            }
        }
        Action::Input(c) => {
            if let Some(Focusable::Field(field)) = wizard.focused()
                && !field.is_choice()
                && !c.is_control()
                && let Some(value) = wizard.values.get_mut(field.index())
                && value.chars().count() < 256
            {
                value.push(c);
                wizard.error = None;
            }
        }
        Action::Backspace => {
            if let Some(Focusable::Field(field)) = wizard.focused()
                && let Some(value) = wizard.values.get_mut(field.index())
            {
                value.pop();
            }
        }
        Action::Back => {
            wizard.step = wizard.step.previous();
            wizard.focus = 0;
            wizard.error = None;
            if wizard.step == WizardStep::Network {
                // Esc on the first step looks for network ports again.
                return vec![Command::Api(ApiCall::Setup)];
            }
        }
        Action::Submit => return wizard_submit(model),
        Action::Quit => model.modal = Some(Modal::Confirm(Confirm::Quit)),
        _ => {}
    }
    Vec::new()
}

fn wizard_submit(model: &mut Model) -> Vec<Command> {
    let step = model.wizard.step;
    let focused = model.wizard.focused();
    if focused == Some(Focusable::RunFirstScan) {
        model.wizard.finish = FinishState::Completing;
        model.wizard.busy = Some("Saving the setup…".into());
        model.wizard.error = None;
        return vec![Command::Api(ApiCall::CompleteSetup)];
    }
    let fields: Vec<FieldId> = model
        .wizard
        .focusables()
        .into_iter()
        .filter_map(|f| match f {
            Focusable::Field(field) => Some(field),
            _ => None,
        })
        .collect();
    // Credential and directory steps may be skipped by leaving every field empty.
    let skippable = matches!(
        step,
        WizardStep::Directory | WizardStep::Windows | WizardStep::Linux | WizardStep::Pin
    );
    let all_empty = fields
        .iter()
        .all(|f| f.is_choice() || model.wizard.value(*f).trim().is_empty());
    if skippable && all_empty && focused != Some(Focusable::TestConnection) {
        for field in &fields {
            model.wizard.touched[field.index()] = false;
        }
        advance(model);
        return Vec::new();
    }
    let n_interfaces = model.setup.as_ref().map_or(0, |s| s.interfaces.len());
    let mut first_bad = None;
    for (idx, field) in fields.iter().enumerate() {
        model.wizard.touched[field.index()] = true;
        let bad = if *field == FieldId::Interface {
            n_interfaces == 0
        } else {
            validate::field(*field, model.wizard.value(*field)).is_err()
        };
        if bad && first_bad.is_none() {
            first_bad = Some(idx);
        }
    }
    if let Some(idx) = first_bad {
        model.wizard.focus = idx;
        return Vec::new();
    }
    let value = |field: FieldId| model.wizard.value(field).trim().to_owned();
    let call = match step {
        WizardStep::Network => {
            let interface = model
                .setup
                .as_ref()
                .and_then(|s| s.interfaces.get(model.wizard.interface_idx))
                .map(|i| i.name.clone())
                .unwrap_or_default();
            let is_static = model.wizard.mode == NetworkMode::Static;
            ApiCall::SetNetwork(NetworkSettings {
                interface,
                mode: model.wizard.mode,
                address: is_static.then(|| value(FieldId::Address)),
                gateway: is_static.then(|| value(FieldId::Gateway)),
                dns: if is_static {
                    validate::dns_list(&value(FieldId::Dns)).unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
        }
        WizardStep::Claim => {
            let code = value(FieldId::ClaimCode);
            if code.is_empty() {
                advance(model);
                return Vec::new();
            }
            ApiCall::Claim(ClaimRequest { code })
        }
        WizardStep::Directory => {
            let dc = value(FieldId::DomainController);
            let request = DirectoryRequest {
                domain: value(FieldId::Domain),
                dc: (!dc.is_empty()).then_some(dc),
                bind_user: value(FieldId::BindUser),
                password: model.wizard.value(FieldId::BindPassword).to_owned(),
            };
            if focused == Some(Focusable::TestConnection) {
                model.wizard.busy = Some("Testing the connection…".into());
                model.wizard.directory_test = None;
                return vec![Command::Api(ApiCall::TestDirectory(request))];
            }
            ApiCall::SaveDirectory(request)
        }
        WizardStep::Windows | WizardStep::Linux => {
            let (slot, user, secret) = if step == WizardStep::Windows {
                (
                    CredentialSlot::Windows,
                    FieldId::WindowsUser,
                    FieldId::WindowsPassword,
                )
            } else {
                (
                    CredentialSlot::Linux,
                    FieldId::LinuxUser,
                    FieldId::LinuxPassword,
                )
            };
            ApiCall::SetCredential(CredentialRequest {
                slot,
                user: value(user),
                secret: model.wizard.value(secret).to_owned(),
            })
        }
        WizardStep::Timezone => ApiCall::SetTimezone(TimezoneRequest {
            timezone: value(FieldId::Timezone),
        }),
        WizardStep::Pin => {
            if value(FieldId::Pin) != value(FieldId::PinAgain) {
                model.wizard.error = Some("The two PINs are not the same: type it twice.".into());
                model.wizard.focus = 1;
                return Vec::new();
            }
            ApiCall::SetPin(PinRequest {
                pin: value(FieldId::Pin),
                current_pin: None,
            })
        }
        WizardStep::Finish => return Vec::new(),
    };
    model.wizard.busy = Some("Saving…".into());
    model.wizard.error = None;
    vec![Command::Api(call)]
}

fn modal_key(model: &mut Model, action: Action) -> Vec<Command> {
    let Some(modal) = model.modal.take() else {
        return Vec::new();
    };
    match modal {
        Modal::Help => {
            if action != Action::Back {
                model.modal = Some(Modal::Help);
            }
        }
        Modal::Working { title, text, done } => {
            if action != Action::Back {
                model.modal = Some(Modal::Working { title, text, done });
            } else if done.is_none() {
                notice(
                    model,
                    Tone::Info,
                    "The export goes on; its result will show here.",
                );
            }
        }
        Modal::Confirm(confirm) => match (action, confirm) {
            (Action::Submit, Confirm::Quit) => model.quit = true,
            (Action::Submit, Confirm::RevokeAgent(agent)) => {
                model.modal = Some(if model.operator.is_some() {
                    revoke_reason_prompt(agent)
                } else {
                    name_prompt(AfterName::RevokeAgent(agent))
                });
            }
            (Action::Submit, Confirm::Decide(decision)) => {
                if model.operator.is_some() {
                    return send_decision(model, decision);
                }
                model.modal = Some(name_prompt(AfterName::Decide(decision)));
            }
            (Action::Back, _) => {}
            (_, confirm) => model.modal = Some(Modal::Confirm(confirm)),
        },
        Modal::TokenForm(form) => return token_form_key(model, form, action),
        Modal::Update => {
            if action != Action::Back {
                model.modal = Some(Modal::Update);
            }
        }
        Modal::Prompt(mut prompt) => match action {
            Action::Input(c) => {
                if !c.is_control() && prompt.value.chars().count() < 200 {
                    prompt.value.push(c);
                    prompt.hint = None;
                }
                model.modal = Some(Modal::Prompt(prompt));
            }
            Action::Backspace => {
                prompt.value.pop();
                model.modal = Some(Modal::Prompt(prompt));
            }
            Action::Submit => return prompt_submit(model, prompt),
            Action::Back => {}
            _ => model.modal = Some(Modal::Prompt(prompt)),
        },
    }
    Vec::new()
}

fn prompt_submit(model: &mut Model, mut prompt: Prompt) -> Vec<Command> {
    let check = match prompt.purpose {
        PromptPurpose::Name(_) => validate::person(&prompt.value),
        PromptPurpose::HealingReason | PromptPurpose::RevokeReason(_) => {
            validate::reason(&prompt.value)
        }
        PromptPurpose::ExportPath | PromptPurpose::PacketExportPath(_) => {
            validate::export_path(&prompt.value)
        }
    };
    if let Err(hint) = check {
        prompt.hint = Some(hint.to_owned());
        model.modal = Some(Modal::Prompt(prompt));
        return Vec::new();
    }
    let value = prompt.value.trim().to_owned();
    match prompt.purpose {
        PromptPurpose::Name(after) => {
            model.operator = Some(value);
            match after {
                AfterName::Acknowledge(id) => acknowledge(model, id),
                AfterName::ToggleHealing => {
                    model.modal = Some(reason_prompt());
                    Vec::new()
                }
                AfterName::NewAgentToken => {
                    model.modal = Some(Modal::TokenForm(TokenForm::default()));
                    Vec::new()
                }
                AfterName::RevokeAgent(agent) => {
                    model.modal = Some(revoke_reason_prompt(agent));
                    Vec::new()
                }
                AfterName::Decide(decision) => send_decision(model, decision),
            }
        }
        PromptPurpose::RevokeReason(agent) => {
            notice(
                model,
                Tone::Info,
                format!("Revoking the agent on {}…", agent.hostname),
            );
            vec![Command::Api(ApiCall::RevokeAgent(AgentRevokeRequest {
                agent_id: agent.agent_id,
                by: model.operator.clone().unwrap_or_default(),
                reason: value,
            }))]
        }
        PromptPurpose::HealingReason => {
            let request = PauseRequest {
                reason: value,
                by: model.operator.clone().unwrap_or_default(),
            };
            let paused = model.status.as_ref().is_some_and(|s| s.healing.paused);
            let call = if paused {
                ApiCall::ResumeHealing(request)
            } else {
                ApiCall::PauseHealing(request)
            };
            vec![Command::Api(call)]
        }
        PromptPurpose::ExportPath => {
            model.modal = Some(Modal::Working {
                title: "Export evidence kit".into(),
                text: format!("Writing the evidence kit to {value}… Do not remove the USB stick."),
                done: None,
            });
            vec![Command::Api(ApiCall::Export(ExportRequest {
                dest_dir: value,
            }))]
        }
        PromptPurpose::PacketExportPath(period) => {
            model.modal = Some(Modal::Working {
                title: format!("Export the {period} packet"),
                text: format!(
                    "Copying the {period} compliance packet to {value}… Do not remove the USB stick."
                ),
                done: None,
            });
            vec![Command::Api(ApiCall::ExportPacket(
                api::PacketExportRequest {
                    period,
                    dest_dir: value,
                },
            ))]
        }
    }
}

/// Keys in the "New enrollment token" form: digits and letters into the focused field, Tab or
/// ↑/↓ to the other one, Enter checks both and asks the daemon, Esc cancels.
fn token_form_key(model: &mut Model, mut form: TokenForm, action: Action) -> Vec<Command> {
    let field = match form.focus {
        TokenField::Uses => &mut form.uses,
        TokenField::ValidFor => &mut form.valid_for,
    };
    match action {
        Action::Input(c) => {
            if form.selected {
                field.clear();
            }
            if !c.is_control() && field.chars().count() < 16 {
                field.push(c);
                form.hint = None;
                form.selected = false;
            }
        }
        Action::Backspace => {
            field.pop();
            form.hint = None;
            form.selected = false;
        }
        Action::NextField | Action::PreviousField | Action::Up | Action::Down => {
            form.focus = match form.focus {
                TokenField::Uses => TokenField::ValidFor,
                TokenField::ValidFor => TokenField::Uses,
            };
            form.selected = true;
        }
        Action::Back => return Vec::new(),
        Action::Submit => {
            let uses = validate::token_uses(&form.uses);
            let validity = validate::token_validity(&form.valid_for);
            let (uses, expires_secs) = match (uses, validity) {
                (Ok(uses), Ok(expires_secs)) => (uses, expires_secs),
                (Err(hint), _) => {
                    form.focus = TokenField::Uses;
                    form.selected = true;
                    form.hint = Some(hint.to_owned());
                    model.modal = Some(Modal::TokenForm(form));
                    return Vec::new();
                }
                (_, Err(hint)) => {
                    form.focus = TokenField::ValidFor;
                    form.selected = true;
                    form.hint = Some(hint.to_owned());
                    model.modal = Some(Modal::TokenForm(form));
                    return Vec::new();
                }
            };
            model.agents_view.creating = true;
            model.agents_view.token = None;
            notice(model, Tone::Info, "Making an enrollment token…");
            return vec![Command::Api(ApiCall::CreateAgentToken(AgentTokenRequest {
                uses,
                expires_secs,
                by: model.operator.clone().unwrap_or_default(),
            }))];
        }
        _ => {}
    }
    model.modal = Some(Modal::TokenForm(form));
    Vec::new()
}

/// Locks the console: the lock screen shows `why`; the unlock token, the typed name, dialogs,
/// notices, every list of site data and an enrollment token on screen are dropped.
fn lock(model: &mut Model, why: &str) {
    model.lock.locked = true;
    model.lock.token = None;
    model.lock.pin.clear();
    model.lock.busy = false;
    model.lock.message = Some(Notice {
        tone: Tone::Info,
        text: why.to_owned(),
    });
    model.modal = None;
    model.notice = None;
    model.operator = None;
    model.devices.clear();
    model.incidents.clear();
    model.healing.clear();
    model.devices_view = Default::default();
    model.agents = None;
    model.agents_view = Default::default();
    model.approvals = Default::default();
}

/// Keys on the lock screen: digits, Backspace, Enter sends the PIN, Esc clears it.
fn lock_key(model: &mut Model, action: Action) -> Vec<Command> {
    let lock = &mut model.lock;
    match action {
        Action::Input(c) if c.is_ascii_digit() && lock.pin.len() < 12 && !lock.busy => {
            lock.pin.push(c);
        }
        Action::Backspace => {
            lock.pin.pop();
        }
        Action::Back => lock.pin.clear(),
        Action::Submit if !lock.busy => {
            if !validate::pin(&lock.pin) {
                lock.message = Some(Notice {
                    tone: Tone::Attention,
                    text: format!("The console PIN is {}.", validate::PIN_HINT),
                });
                return Vec::new();
            }
            lock.busy = true;
            let pin = std::mem::take(&mut lock.pin);
            return vec![Command::Api(ApiCall::Unlock(UnlockRequest { pin }))];
        }
        _ => {}
    }
    Vec::new()
}

fn unlocked(model: &mut Model, res: Result<Unlocked, Failure>) -> Vec<Command> {
    model.lock.busy = false;
    match res {
        Ok(unlocked) => {
            connected(model);
            model.lock.locked = false;
            model.lock.token = Some(unlocked.token);
            model.lock.message = None;
            model.lock.last_key = model.lock.clock;
            goto(model, model.screen)
        }
        Err(failure) => {
            failed(model, &failure);
            model.lock.message = Some(Notice {
                tone: Tone::Problem,
                text: sentence(&failure.message),
            });
            Vec::new()
        }
    }
}

fn screen_key(model: &mut Model, action: Action) -> Vec<Command> {
    if model.screen == Screen::Devices && model.devices_view.searching {
        let view = &mut model.devices_view;
        match action {
            Action::Input(c) if !c.is_control() && view.search.chars().count() < 64 => {
                view.search.push(c);
                view.selected = 0;
            }
            Action::Backspace => {
                view.search.pop();
                view.selected = 0;
            }
            Action::Submit => view.searching = false,
            Action::Back => {
                view.searching = false;
                view.search.clear();
                view.selected = 0;
            }
            Action::Up => view.selected = view.selected.saturating_sub(1),
            Action::Down => {
                view.selected += 1;
                clamp_device_selection(model);
            }
            _ => {}
        }
        return Vec::new();
    }
    match action {
        Action::Goto(screen) => return goto(model, screen),
        Action::NextScreen | Action::NextField => {
            let idx = (model.screen.index() + 1) % Screen::ALL.len();
            return goto(model, Screen::ALL[idx]);
        }
        Action::PreviousScreen | Action::PreviousField => {
            let idx = (model.screen.index() + Screen::ALL.len() - 1) % Screen::ALL.len();
            return goto(model, Screen::ALL[idx]);
        }
        Action::Up => move_selection(model, -1),
        Action::Down => move_selection(model, 1),
        Action::PageUp => move_selection(model, -10),
        Action::PageDown => move_selection(model, 10),
        Action::Back => {
            model.notice = None;
            if model.screen == Screen::Devices {
                model.devices_view = Default::default();
            }
            // Esc hides a token on the agents screen for good.
            model.agents_view.token = None;
        }
        Action::ScanNow => return vec![Command::Api(ApiCall::ScanNow)],
        Action::ToggleHealing => {
            model.modal = Some(if model.operator.is_some() {
                reason_prompt()
            } else {
                name_prompt(AfterName::ToggleHealing)
            });
        }
        Action::OpenUpdate => model.modal = Some(Modal::Update),
        Action::Help => model.modal = Some(Modal::Help),
        Action::Quit => {
            if model.screen == Screen::Home {
                model.modal = Some(Modal::Confirm(Confirm::Quit));
            } else {
                return goto(model, Screen::Home);
            }
        }
        Action::Acknowledge => {
            let Some(incident) = model.incidents.get(model.incident_idx) else {
                notice(model, Tone::Info, "There is no incident to acknowledge.");
                return Vec::new();
            };
            if incident.acknowledged {
                notice(model, Tone::Info, "This incident is already acknowledged.");
                return Vec::new();
            }
            let id = incident.id;
            if model.operator.is_some() {
                return acknowledge(model, id);
            }
            model.modal = Some(name_prompt(AfterName::Acknowledge(id)));
        }
        Action::Export => {
            model.modal = Some(Modal::Prompt(Prompt {
                purpose: PromptPurpose::ExportPath,
                value: String::new(),
                hint: None,
            }));
            return vec![Command::FindUsb];
        }
        Action::ExportPacket => {
            let Some(packet) = model
                .packets
                .as_deref()
                .and_then(|packets| packets.get(model.packet_idx))
            else {
                notice(
                    model,
                    Tone::Info,
                    "No monthly packet was made yet: the appliance makes the previous month's on the 1st.",
                );
                return Vec::new();
            };
            model.modal = Some(Modal::Prompt(Prompt {
                purpose: PromptPurpose::PacketExportPath(packet.period.clone()),
                value: String::new(),
                hint: None,
            }));
            return vec![Command::FindUsb];
        }
        Action::Filter(class) => {
            model.devices_view.class = class;
            model.devices_view.selected = 0;
        }
        Action::StartSearch => model.devices_view.searching = true,
        Action::NewAgentToken => new_agent_token(model),
        Action::RevokeAgent => revoke_agent(model),
        Action::Approve => decide(model, true),
        Action::Reject => decide(model, false),
        _ => {}
    }
    Vec::new()
}

/// A or X on the approvals screen: what the selected row allows, then a confirmation.
fn decide(model: &mut Model, approve: bool) {
    if model.screen != Screen::Approvals {
        return;
    }
    let rows = model.approvals.rows();
    let Some(row) = rows.get(model.approvals.selected) else {
        notice(model, Tone::Info, "Nothing waits for your decision.");
        return;
    };
    let item = match row {
        ApprovalRow::Plan(plan) => DecisionItem::Plan {
            id: plan.id.clone(),
            target: plan.target.clone(),
            check: plan.check.clone(),
            runbook: plan.runbook.clone(),
        },
        ApprovalRow::Pattern(pattern) if pattern.standing == "proposed" => DecisionItem::Pattern {
            id: pattern.id.clone(),
            check: pattern.check.clone(),
        },
        ApprovalRow::Pattern(pattern) => {
            let text = format!(
                "This learned fix for {} is {}: only a proposed one can be approved or rejected.",
                pattern.check, pattern.standing
            );
            notice(model, Tone::Info, text);
            return;
        }
    };
    model.modal = Some(Modal::Confirm(Confirm::Decide(Decision { approve, item })));
}

fn send_decision(model: &mut Model, decision: Decision) -> Vec<Command> {
    let request = DecisionRequest {
        by: model.operator.clone().unwrap_or_default(),
    };
    let (text, call) = match (decision.item, decision.approve) {
        (DecisionItem::Plan { id, target, .. }, true) => (
            format!("Running the fix on {target}; this can take a minute…"),
            ApiCall::ApprovePlan(id, request),
        ),
        (DecisionItem::Plan { id, .. }, false) => (
            "Rejecting the fix…".to_owned(),
            ApiCall::RejectPlan(id, request),
        ),
        (DecisionItem::Pattern { id, .. }, true) => (
            "Making the fix automatic…".to_owned(),
            ApiCall::ApprovePattern(id, request),
        ),
        (DecisionItem::Pattern { id, .. }, false) => (
            "Rejecting the learned fix…".to_owned(),
            ApiCall::RejectPattern(id, request),
        ),
    };
    notice(model, Tone::Info, text);
    vec![Command::Api(call)]
}

fn plan_decided(model: &mut Model, res: Result<L2Decided, Failure>) -> Vec<Command> {
    match res {
        Ok(decided) => {
            connected(model);
            let (tone, text) = match (&decided.outcome, decided.approved) {
                (_, false) => (
                    Tone::Good,
                    format!(
                        "The fix for {} on {} is rejected; nothing was changed.",
                        decided.check, decided.target
                    ),
                ),
                (None, true) => (
                    Tone::Good,
                    format!(
                        "{} on {} passes by now, so nothing was run.",
                        decided.check, decided.target
                    ),
                ),
                (Some(outcome), true) if outcome == "fixed" => (
                    Tone::Good,
                    format!("{} on {} is fixed.", decided.check, decided.target),
                ),
                (Some(outcome), true) => (
                    Tone::Attention,
                    format!(
                        "{} on {} was not fixed ({outcome}); it stays an incident for your IT partner.",
                        decided.check, decided.target
                    ),
                ),
            };
            notice(model, tone, text);
        }
        Err(failure) => refused(model, "Decide on a fix", "Nothing was decided", &failure),
    }
    refresh_approvals(model)
}

fn pattern_decided(model: &mut Model, res: Result<FlywheelDecided, Failure>) -> Vec<Command> {
    match res {
        Ok(decided) if decided.decision == "approved" => {
            connected(model);
            notice(
                model,
                Tone::Good,
                "The appliance now makes this fix automatically when the problem comes back.",
            );
        }
        Ok(_) => {
            connected(model);
            notice(
                model,
                Tone::Good,
                "The learned fix is rejected; it will not be suggested again.",
            );
        }
        Err(failure) => refused(model, "Decide on a fix", "Nothing was decided", &failure),
    }
    refresh_approvals(model)
}

fn refresh_approvals(model: &mut Model) -> Vec<Command> {
    let mut res = Vec::new();
    if model.lock.locked {
        return res;
    }
    for (pending, call) in [
        (Pending::Plans, ApiCall::Plans),
        (Pending::Flywheel, ApiCall::Flywheel),
    ] {
        if !model.in_flight.contains(&pending) {
            model.in_flight.push(pending);
            res.push(Command::Api(call));
        }
    }
    res
}

fn clamp_approval_selection(model: &mut Model) {
    let len = model.approvals.rows().len();
    model.approvals.selected = model.approvals.selected.min(len.saturating_sub(1));
}

/// N on the agents screen: who is asking (once), then the token form.
fn new_agent_token(model: &mut Model) {
    if model.screen != Screen::Agents || model.agents_view.creating {
        return;
    }
    if model.agents.as_ref().is_some_and(|a| a.gateway.is_none()) {
        notice(
            model,
            Tone::Attention,
            format!("{AGENTS_OFF} {AGENTS_TURN_ON}"),
        );
        return;
    }
    model.modal = Some(if model.operator.is_some() {
        Modal::TokenForm(TokenForm::default())
    } else {
        name_prompt(AfterName::NewAgentToken)
    });
}

/// X on the agents screen: confirm, who is asking (once), then why.
fn revoke_agent(model: &mut Model) {
    if model.screen != Screen::Agents || model.agents_view.token.is_some() {
        return;
    }
    let Some(agent) = model.agents().get(model.agents_view.selected) else {
        notice(model, Tone::Info, "There is no agent to revoke.");
        return;
    };
    if agent.revoked_at.is_some() {
        let text = format!("The agent on {} is already revoked.", agent.hostname);
        notice(model, Tone::Info, text);
        return;
    }
    let target = AgentTarget {
        agent_id: agent.agent_id.clone(),
        hostname: agent.hostname.clone(),
    };
    model.modal = Some(Modal::Confirm(Confirm::RevokeAgent(target)));
}

fn goto(model: &mut Model, screen: Screen) -> Vec<Command> {
    if screen != model.screen {
        // An enrollment token is shown on the agents screen only, and only until it is left.
        model.agents_view.token = None;
        model.agents_view.creating = false;
    }
    model.screen = screen;
    model.notice = None;
    let (pending, call) = match screen {
        Screen::Devices => (Pending::Devices, ApiCall::Devices),
        Screen::Incidents => (Pending::Incidents, ApiCall::Incidents),
        Screen::Healing => (Pending::Healing, ApiCall::Healing),
        Screen::Agents => (Pending::Agents, ApiCall::Agents),
        Screen::Approvals => return refresh_approvals(model),
        Screen::Evidence => return refresh_evidence(model),
        Screen::Home => return Vec::new(),
    };
    if model.in_flight.contains(&pending) {
        return Vec::new();
    }
    model.in_flight.push(pending);
    vec![Command::Api(call)]
}

fn move_selection(model: &mut Model, delta: isize) {
    let step = |value: usize, len: usize| -> usize {
        value
            .saturating_add_signed(delta)
            .min(len.saturating_sub(1))
    };
    match model.screen {
        Screen::Devices => {
            let len = model.shown_devices().len();
            model.devices_view.selected = step(model.devices_view.selected, len);
        }
        Screen::Incidents => model.incident_idx = step(model.incident_idx, model.incidents.len()),
        Screen::Healing => model.healing_offset = step(model.healing_offset, model.healing.len()),
        Screen::Agents => {
            let len = model.agents().len();
            model.agents_view.selected = step(model.agents_view.selected, len);
        }
        Screen::Approvals => {
            let len = model.approvals.rows().len();
            model.approvals.selected = step(model.approvals.selected, len);
        }
        Screen::Evidence => {
            let len = model.packets.as_ref().map_or(0, Vec::len);
            model.packet_idx = step(model.packet_idx, len);
        }
        Screen::Home => {}
    }
}

/// Asks for the packets and the exceptions and attestations (the evidence screen).
fn refresh_evidence(model: &mut Model) -> Vec<Command> {
    let mut res = Vec::new();
    for (pending, call) in [
        (Pending::Packets, ApiCall::Packets),
        (Pending::Records, ApiCall::Records),
    ] {
        if !model.in_flight.contains(&pending) {
            model.in_flight.push(pending);
            res.push(Command::Api(call));
        }
    }
    res
}

fn acknowledge(model: &mut Model, id: u64) -> Vec<Command> {
    let by = model.operator.clone().unwrap_or_default();
    vec![Command::Api(ApiCall::Acknowledge(id, AckRequest { by }))]
}

fn name_prompt(after: AfterName) -> Modal {
    Modal::Prompt(Prompt {
        purpose: PromptPurpose::Name(after),
        value: String::new(),
        hint: None,
    })
}

fn revoke_reason_prompt(agent: AgentTarget) -> Modal {
    Modal::Prompt(Prompt {
        purpose: PromptPurpose::RevokeReason(agent),
        value: String::new(),
        hint: None,
    })
}

fn reason_prompt() -> Modal {
    Modal::Prompt(Prompt {
        purpose: PromptPurpose::HealingReason,
        value: String::new(),
        hint: None,
    })
}

fn set_setup(model: &mut Model, setup: SetupState) {
    if !model.wizard.prefilled {
        model.wizard.prefilled = true;
        let wizard = &mut model.wizard;
        let mut fill = |field: FieldId, value: &str| {
            if let Some(slot) = wizard.values.get_mut(field.index())
                && slot.is_empty()
            {
                *slot = value.to_owned();
            }
        };
        if let Some(network) = &setup.network {
            if let Some(address) = &network.address {
                fill(FieldId::Address, address);
            }
            if let Some(gateway) = &network.gateway {
                fill(FieldId::Gateway, gateway);
            }
            fill(FieldId::Dns, &network.dns.join(", "));
        }
        if let Some(directory) = &setup.directory {
            fill(FieldId::Domain, &directory.domain);
            fill(
                FieldId::DomainController,
                directory.dc.as_deref().unwrap_or_default(),
            );
            fill(FieldId::BindUser, &directory.bind_user);
        }
        fill(FieldId::Timezone, &setup.timezone);
        if let Some(network) = &setup.network {
            wizard.mode = network.mode;
            if let Some(idx) = setup
                .interfaces
                .iter()
                .position(|i| i.name == network.interface)
            {
                wizard.interface_idx = idx;
            }
        }
    }
    model.wizard.interface_idx = model
        .wizard
        .interface_idx
        .min(setup.interfaces.len().saturating_sub(1));
    if !setup.complete && !model.wizard_active {
        model.wizard_active = true;
    }
    model.setup = Some(setup);
}

fn server_scan_runs(status: &Status) -> u64 {
    status
        .cycles
        .iter()
        .find(|c| c.kind == CycleKind::ServerScan)
        .map_or(0, |c| c.runs)
}

fn clamp_device_selection(model: &mut Model) {
    let len = model.shown_devices().len();
    model.devices_view.selected = model.devices_view.selected.min(len.saturating_sub(1));
}

fn done(model: &mut Model, pending: Pending) {
    model.in_flight.retain(|p| *p != pending);
}

fn connected(model: &mut Model) {
    if model.connection != Connection::Up {
        if matches!(model.connection, Connection::Down(_)) {
            notice(model, Tone::Good, "The appliance service answers again.");
        }
        model.connection = Connection::Up;
    }
}

fn failed(model: &mut Model, failure: &Failure) {
    if failure.daemon_down {
        model.connection = Connection::Down(failure.message.clone());
    }
}

fn action_failed(model: &mut Model, what: &str, failure: &Failure) {
    if failure.locked {
        lock(
            model,
            &format!("{what}: the console locked. Type the PIN, then try again."),
        );
        return;
    }
    failed(model, failure);
    let text = format!("{what}: {}", sentence(&failure.message));
    notice(model, Tone::Problem, text);
}

/// A refused action whose answer matters enough to be read whole: a dialog with the daemon's
/// words (the notice line cuts long ones), or the lock screen when the unlock expired.
fn refused(model: &mut Model, title: &str, what: &str, failure: &Failure) {
    if failure.locked {
        action_failed(model, what, failure);
        return;
    }
    failed(model, failure);
    model.notice = None;
    model.modal = Some(Modal::Working {
        title: title.to_owned(),
        text: format!("{what}: {}", sentence(&failure.message)),
        done: Some(Tone::Problem),
    });
}

fn notice(model: &mut Model, tone: Tone, text: impl Into<String>) {
    model.notice = Some(Notice {
        tone,
        text: text.into(),
    });
}

/// The text with a capital first letter and a final period.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut res: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !res.ends_with(['.', '!', '?']) {
        res.push('.');
    }
    res
}

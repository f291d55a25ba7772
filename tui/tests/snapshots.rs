//! Snapshot tests: every screen, dialog and wizard step at 80×24 and 160×48, driven by actions
//! from the recorded clinic data.

mod common;

use api::{ConnectionTest, CredentialSlot, CycleKind, NetworkMode};
use common::{drive, focus, render, typed, wizard_at, wizard_start};
use osiris_console::action::{Action, Failure};
use osiris_console::fixture;
use osiris_console::model::{EnrollmentToken, FieldId, Model, Screen, WizardStep};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

/// Snapshots the model built by `build` at both sizes.
fn snap(name: &str, build: impl Fn((u16, u16)) -> Model) {
    for (width, height) in SIZES {
        let model = build((width, height));
        let terminal = render(&model, width, height);
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend());
    }
}

fn loaded_at(screen: Screen, size: (u16, u16)) -> Model {
    let mut model = fixture::loaded_model(size);
    drive(&mut model, [Action::Goto(screen)]);
    drive(
        &mut model,
        [
            Action::DevicesLoaded(Ok(fixture::devices())),
            Action::IncidentsLoaded(Ok(fixture::incidents())),
            Action::HealingLoaded(Ok(fixture::healing())),
        ],
    );
    model
}

#[test]
fn home() {
    snap("home", |size| loaded_at(Screen::Home, size));
}

#[test]
fn home_when_the_daemon_is_down() {
    snap("home_daemon_down", |size| {
        let mut model = fixture::loaded_model(size);
        drive(
            &mut model,
            [Action::StatusLoaded(Err(Failure::down(
                "The appliance service is not running",
            )))],
        );
        model
    });
}

#[test]
fn home_without_a_console_pin() {
    snap("home_without_pin", |size| {
        let mut status = fixture::status();
        status.console.pin_set = false;
        let mut model = Model::new(size);
        drive(&mut model, [Action::StatusLoaded(Ok(status))]);
        model
    });
}

#[test]
fn locked_after_the_idle_time() {
    snap("locked", |size| {
        let mut model = loaded_at(Screen::Devices, size);
        drive(
            &mut model,
            [Action::Clock(std::time::Duration::from_secs(300))],
        );
        model
    });
    snap("locked_wrong_pin", |size| {
        let mut model = loaded_at(Screen::Incidents, size);
        drive(
            &mut model,
            [Action::Clock(std::time::Duration::from_secs(300))],
        );
        drive(&mut model, typed("1357"));
        drive(
            &mut model,
            [
                Action::Submit,
                Action::Unlocked(Err(Failure::refused(
                    "wrong PIN: wait 4 s before trying again (after 3 wrong PINs each try waits twice as long (at most 5 minutes); your IT partner can reset the PIN with the site's claim code)",
                ))),
            ],
        );
        drive(&mut model, typed("24"));
        model
    });
}

#[test]
fn home_before_the_daemon_answered_once() {
    snap("home_connecting", Model::new);
}

#[test]
fn home_while_the_first_scan_runs() {
    snap("home_first_scan", |size| {
        let mut status = fixture::fresh_status();
        status.setup_complete = true;
        status.devices.total = 30;
        let mut model = Model::new(size);
        drive(&mut model, [Action::StatusLoaded(Ok(status))]);
        model
    });
}

#[test]
fn home_with_healing_paused() {
    snap("home_paused", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::ToggleHealing]);
        drive(&mut model, typed("Dana Whitfield"));
        drive(&mut model, [Action::Submit]);
        drive(&mut model, typed("EHR vendor upgrade tonight"));
        drive(&mut model, [Action::Submit]);
        let mut status = fixture::status();
        status.healing.paused = true;
        status.healing.paused_by = Some("Dana Whitfield".into());
        status.healing.paused_reason = Some("EHR vendor upgrade tonight".into());
        status.healing.paused_at = Some(fixture::NOW - 120);
        drive(
            &mut model,
            [Action::HealingToggled(Ok(status.healing.clone()))],
        );
        drive(&mut model, [Action::StatusLoaded(Ok(status))]);
        model
    });
}

#[test]
fn devices() {
    snap("devices", |size| {
        let mut model = loaded_at(Screen::Devices, size);
        drive(&mut model, [Action::Down]);
        model
    });
}

#[test]
fn a_device_shows_what_intune_reported() {
    snap("devices_intune", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::Goto(Screen::Devices)]);
        let mut devices = fixture::devices();
        for device in &mut devices {
            device.intune = Some(api::IntuneState {
                tenant: "smith-m365".into(),
                compliance: "noncompliant".into(),
                encrypted: false,
                seen_at: fixture::NOW - 600,
            });
        }
        drive(&mut model, [Action::DevicesLoaded(Ok(devices))]);
        model
    });
}

#[test]
fn devices_filtered_to_servers() {
    snap("devices_servers", |size| {
        let mut model = loaded_at(Screen::Devices, size);
        drive(
            &mut model,
            [Action::Filter(Some(api::DeviceClass::WindowsServer))],
        );
        model
    });
}

#[test]
fn devices_searched() {
    snap("devices_search", |size| {
        let mut model = loaded_at(Screen::Devices, size);
        drive(&mut model, [Action::StartSearch]);
        drive(&mut model, typed("exam-0"));
        drive(&mut model, [Action::Down, Action::Down]);
        model
    });
}

#[test]
fn devices_search_without_match() {
    snap("devices_no_match", |size| {
        let mut model = loaded_at(Screen::Devices, size);
        drive(&mut model, [Action::StartSearch]);
        drive(&mut model, typed("printer"));
        drive(&mut model, [Action::Submit]);
        model
    });
}

#[test]
fn incidents() {
    snap("incidents", |size| loaded_at(Screen::Incidents, size));
}

#[test]
fn incidents_acknowledge_asks_who_once() {
    snap("incidents_who_are_you", |size| {
        let mut model = loaded_at(Screen::Incidents, size);
        drive(&mut model, [Action::Acknowledge]);
        model
    });
    snap("incidents_acknowledged", |size| {
        let mut model = loaded_at(Screen::Incidents, size);
        drive(&mut model, [Action::Acknowledge]);
        drive(&mut model, typed("Dana Whitfield"));
        drive(&mut model, [Action::Submit]);
        let mut incident = fixture::incidents().remove(0);
        incident.acknowledged = true;
        drive(&mut model, [Action::Acknowledged(Ok(incident))]);
        model
    });
}

#[test]
fn healing_log() {
    snap("healing", |size| loaded_at(Screen::Healing, size));
}

#[test]
fn evidence() {
    snap("evidence", |size| loaded_at(Screen::Evidence, size));
}

#[test]
fn export_dialogs() {
    snap("export_path", |size| {
        let mut model = loaded_at(Screen::Evidence, size);
        drive(&mut model, [Action::Export]);
        drive(
            &mut model,
            [Action::UsbFound(Some("/media/KINGSTON".into()))],
        );
        model
    });
    snap("export_working", |size| {
        let mut model = loaded_at(Screen::Evidence, size);
        drive(&mut model, [Action::Export]);
        drive(&mut model, typed("/media/usb"));
        drive(&mut model, [Action::Submit]);
        model
    });
    snap("export_done", |size| {
        let mut model = loaded_at(Screen::Evidence, size);
        drive(&mut model, [Action::Export]);
        drive(&mut model, typed("/media/usb"));
        drive(
            &mut model,
            [
                Action::Submit,
                Action::Exported(Ok(api::ExportResult {
                    path: "/media/usb/osiris-evidence-2026-01-15".into(),
                    bundles: 4_812,
                    bytes: 9_400_000,
                })),
            ],
        );
        model
    });
    snap("export_read_only", |size| {
        let mut model = loaded_at(Screen::Evidence, size);
        drive(&mut model, [Action::Export]);
        drive(&mut model, typed("/media/usb"));
        drive(
            &mut model,
            [
                Action::Submit,
                Action::Exported(Err(Failure::refused(
                    "/media/usb is read-only (mount it writable or use another stick)",
                ))),
            ],
        );
        model
    });
}

#[test]
fn dialogs() {
    snap("help", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::Help]);
        model
    });
    snap("update", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::OpenUpdate]);
        model
    });
    snap("quit_confirm", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::Quit]);
        model
    });
    snap("pause_reason_required", |size| {
        let mut model = fixture::loaded_model(size);
        drive(&mut model, [Action::ToggleHealing]);
        drive(&mut model, typed("Dana"));
        drive(&mut model, [Action::Submit, Action::Submit]);
        model
    });
}

#[test]
fn scan_now_answer() {
    snap("scan_started", |size| {
        let mut model = fixture::loaded_model(size);
        drive(
            &mut model,
            [
                Action::ScanNow,
                Action::ScanTriggered(Ok(api::Triggered {
                    cycle: CycleKind::ServerScan,
                    queued: false,
                    message: "Scanning 6 devices.".into(),
                })),
            ],
        );
        model
    });
}

#[test]
fn agents() {
    snap("agents", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::AgentsLoaded(Ok(fixture::agents()))]);
        drive(&mut model, [Action::Down, Action::Down]);
        model
    });
    snap("agents_none_yet", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        let mut agents = fixture::agents();
        agents.agents.clear();
        drive(&mut model, [Action::AgentsLoaded(Ok(agents))]);
        model
    });
    snap("agents_off", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(
            &mut model,
            [Action::AgentsLoaded(Ok(api::AgentsState {
                gateway: None,
                ca_pin: None,
                agents: Vec::new(),
            }))],
        );
        model
    });
}

#[test]
fn agents_new_enrollment_token() {
    snap("agents_token_form", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::NewAgentToken]);
        drive(&mut model, typed("Sam Ortiz (Northwind IT)"));
        drive(&mut model, [Action::Submit, Action::Backspace]);
        drive(&mut model, typed("3"));
        drive(&mut model, [Action::NextField]);
        drive(&mut model, typed("2d"));
        model
    });
    snap("agents_token_form_refused", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::NewAgentToken]);
        drive(&mut model, typed("Sam Ortiz (Northwind IT)"));
        drive(&mut model, [Action::Submit, Action::NextField]);
        drive(&mut model, typed("0"));
        drive(&mut model, [Action::Submit]);
        model
    });
    snap("agents_token", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::NewAgentToken]);
        drive(&mut model, typed("Sam Ortiz (Northwind IT)"));
        drive(&mut model, [Action::Submit, Action::Submit]);
        drive(
            &mut model,
            [Action::AgentTokenCreated(Ok(EnrollmentToken(
                fixture::agent_token(1, 86_400),
            )))],
        );
        model
    });
    snap("agents_token_gateway_off", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::NewAgentToken]);
        drive(&mut model, typed("Sam Ortiz (Northwind IT)"));
        drive(&mut model, [Action::Submit, Action::Submit]);
        drive(
            &mut model,
            [Action::AgentTokenCreated(Err(Failure::refused(
                "the agent gateway is off on this appliance (add an [agents] table with `listen = \"0.0.0.0:7443\"` to the configuration and restart osirisd)",
            )))],
        );
        model
    });
}

#[test]
fn agents_revoke() {
    snap("agents_revoke_confirm", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(&mut model, [Action::Down, Action::RevokeAgent]);
        model
    });
    snap("agents_revoke_reason", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(
            &mut model,
            [Action::Down, Action::RevokeAgent, Action::Submit],
        );
        drive(&mut model, typed("Dana Whitfield"));
        drive(&mut model, [Action::Submit]);
        drive(&mut model, typed("Exam room PC replaced"));
        model
    });
    snap("agents_revoked", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(
            &mut model,
            [Action::Down, Action::RevokeAgent, Action::Submit],
        );
        drive(&mut model, typed("Dana Whitfield"));
        drive(&mut model, [Action::Submit]);
        drive(&mut model, typed("Exam room PC replaced"));
        drive(&mut model, [Action::Submit]);
        let mut agent = fixture::agents().agents.remove(1);
        agent.revoked_at = Some(fixture::NOW);
        drive(&mut model, [Action::AgentRevoked(Ok(agent))]);
        model
    });
    snap("agents_revoke_refused", |size| {
        let mut model = loaded_at(Screen::Agents, size);
        drive(
            &mut model,
            [Action::Down, Action::RevokeAgent, Action::Submit],
        );
        drive(&mut model, typed("Dana Whitfield"));
        drive(&mut model, [Action::Submit]);
        drive(&mut model, typed("Exam room PC replaced"));
        drive(
            &mut model,
            [
                Action::Submit,
                Action::AgentRevoked(Err(Failure::refused(
                    "no enrolled, unrevoked agent has the ID \"a-8a17d5c2e9f03b46\" (`osiris agent list` shows the agents and their IDs)",
                ))),
            ],
        );
        model
    });
}

#[test]
fn wizard_network() {
    snap("wizard_1_network", wizard_start);
    snap("wizard_1_network_static", |size| {
        let mut model = wizard_start(size);
        drive(&mut model, [Action::NextField, Action::Right]);
        assert_eq!(model.wizard.mode, NetworkMode::Static);
        focus(&mut model, FieldId::Address);
        drive(&mut model, typed("192.168.10.40/24"));
        focus(&mut model, FieldId::Gateway);
        drive(&mut model, typed("192.168.10.1"));
        focus(&mut model, FieldId::Dns);
        drive(&mut model, typed("192.168.10.5, dns"));
        model
    });
}

#[test]
fn wizard_claim() {
    snap("wizard_2_claim", |size| wizard_at(WizardStep::Claim, size));
}

#[test]
fn wizard_directory() {
    snap("wizard_3_directory", |size| {
        let mut model = wizard_at(WizardStep::Directory, size);
        drive(&mut model, typed("clinic.local"));
        drive(&mut model, [Action::NextField, Action::NextField]);
        drive(&mut model, typed("scanner@clinic.local"));
        drive(&mut model, [Action::NextField]);
        drive(&mut model, typed("Winter2025!"));
        drive(&mut model, [Action::NextField, Action::Submit]);
        drive(
            &mut model,
            [Action::DirectoryTested(Ok(ConnectionTest {
                ok: false,
                message: "The password for scanner@clinic.local is wrong".into(),
                detail: Some("LDAP 49: 80090308: LdapErr: DSID-0C09044E, data 52e".into()),
            }))],
        );
        model
    });
}

#[test]
fn wizard_credentials() {
    snap("wizard_4_windows", |size| {
        let mut model = wizard_at(WizardStep::Windows, size);
        drive(&mut model, typed("CLINIC\\osiris"));
        drive(&mut model, [Action::NextField]);
        drive(&mut model, typed("hunter2"));
        model
    });
    snap("wizard_5_linux_saved", |size| {
        let mut model = wizard_at(WizardStep::Linux, size);
        let mut setup = fixture::setup_state();
        setup.credentials = vec![CredentialSlot::Linux];
        drive(&mut model, [Action::SetupLoaded(Ok(setup))]);
        model
    });
}

#[test]
fn wizard_timezone() {
    snap("wizard_6_timezone", |size| {
        let mut model = wizard_at(WizardStep::Timezone, size);
        drive(
            &mut model,
            [Action::Backspace, Action::Backspace, Action::Backspace],
        );
        drive(&mut model, typed("Chic"));
        model
    });
}

#[test]
fn wizard_pin() {
    snap("wizard_7_pin", |size| {
        let mut model = wizard_at(WizardStep::Pin, size);
        drive(&mut model, typed("2468"));
        drive(&mut model, [Action::NextField]);
        drive(&mut model, typed("24"));
        model
    });
}

#[test]
fn wizard_finish() {
    snap("wizard_8_finish", |size| {
        wizard_at(WizardStep::Finish, size)
    });
    snap("wizard_8_scanning", |size| {
        let mut model = wizard_at(WizardStep::Finish, size);
        let mut status = fixture::fresh_status();
        status.setup_complete = true;
        drive(
            &mut model,
            [
                Action::Submit,
                Action::SetupCompleted(Ok(fixture::setup_state())),
                Action::ScanTriggered(Ok(api::Triggered {
                    cycle: CycleKind::ServerScan,
                    queued: false,
                    message: "Scanning 6 devices.".into(),
                })),
            ],
        );
        status.devices.total = 6;
        status.devices.checked = 2;
        status.cycles[0].running = true;
        status.cycles[0].last_started_at = Some(fixture::NOW - 40);
        drive(&mut model, [Action::StatusLoaded(Ok(status))]);
        model
    });
}

#[test]
fn wizard_step_refused_by_the_daemon() {
    snap("wizard_refused", |size| {
        let mut model = wizard_at(WizardStep::Claim, size);
        drive(&mut model, typed("K7QF-0000"));
        drive(
            &mut model,
            [
                Action::Submit,
                Action::SetupSaved(Err(Failure::refused(
                    "this claim code is unknown (check it with your IT partner)",
                ))),
            ],
        );
        model
    });
}

#[test]
fn a_terminal_of_20_by_10_asks_for_a_bigger_window() {
    let model = fixture::loaded_model((20, 10));
    let terminal = render(&model, 20, 10);
    insta::assert_snapshot!("too_small_20x10", terminal.backend());
    let mut wizard = wizard_start((79, 24));
    drive(&mut wizard, [Action::Resize(79, 24)]);
    let text = common::screen_text(&wizard, 79, 24);
    assert!(text.contains("Make the window bigger"), "{text}");
}

#[test]
fn approvals() {
    let loaded = |size| {
        let mut model = loaded_at(Screen::Approvals, size);
        drive(
            &mut model,
            [
                Action::PlansLoaded(Ok(fixture::l2_plans())),
                Action::FlywheelLoaded(Ok(fixture::flywheel())),
            ],
        );
        model
    };
    snap("approvals", loaded);
    snap("approvals_confirm_plan", |size| {
        let mut model = loaded(size);
        drive(&mut model, [Action::Approve]);
        model
    });
    snap("approvals_nothing_yet", |size| {
        let mut model = loaded_at(Screen::Approvals, size);
        drive(
            &mut model,
            [
                Action::PlansLoaded(Ok(Vec::new())),
                Action::FlywheelLoaded(Ok(api::FlywheelState {
                    patterns: Vec::new(),
                    tiers: Vec::new(),
                })),
            ],
        );
        model
    });
}

//! What the console does with keys and daemon answers: the requests it sends, what it shows,
//! and how it behaves when the daemon refuses or disappears.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{CredentialSlot, CycleKind, NetworkMode};
use common::{drive, focus, screen_text, typed, wizard_at, wizard_start};
use osiris_console::action::{Action, Failure};
use osiris_console::fixture::{self, Recorded};
use osiris_console::keymap;
use osiris_console::model::{Connection, FieldId, FinishState, Modal, Model, Screen, WizardStep};
use osiris_console::runtime::{Executor, execute};
use osiris_console::update::{ApiCall, Command};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Every wizard field given garbage shows its own hint on screen.
#[test]
fn every_wizard_field_shows_its_hint_for_garbage() {
    // (step, field, garbage, start of the expected hint)
    let table: &[(WizardStep, FieldId, &str, &str)] = &[
        (
            WizardStep::Network,
            FieldId::Address,
            "192.168.1.20",
            "Type address/prefix",
        ),
        (
            WizardStep::Network,
            FieldId::Address,
            "999.1.1.1/24",
            "Type address/prefix",
        ),
        (
            WizardStep::Network,
            FieldId::Gateway,
            "the router",
            "Type the router's address",
        ),
        (
            WizardStep::Network,
            FieldId::Dns,
            "8.8.8.8; google",
            "Type addresses with commas",
        ),
        (
            WizardStep::Claim,
            FieldId::ClaimCode,
            "k7$!",
            "4 to 32 letters, digits",
        ),
        (
            WizardStep::Directory,
            FieldId::Domain,
            "clinic",
            "Type the domain's full name",
        ),
        (
            WizardStep::Directory,
            FieldId::DomainController,
            "dc_1!",
            "A name like dc1.clinic.local",
        ),
        (
            WizardStep::Directory,
            FieldId::BindUser,
            "scan ner@",
            "Type it like scanner@clinic",
        ),
        (
            WizardStep::Windows,
            FieldId::WindowsUser,
            "@@@",
            "Type it like scanner@clinic",
        ),
        (
            WizardStep::Linux,
            FieldId::LinuxUser,
            "Root User",
            "Lower-case letters, digits",
        ),
        (
            WizardStep::Timezone,
            FieldId::Timezone,
            "chicago",
            "Type Area/City",
        ),
    ];
    for (step, field, garbage, hint) in table {
        let mut model = wizard_at(*step, (80, 24));
        if *field == FieldId::Address || *field == FieldId::Gateway || *field == FieldId::Dns {
            focus(&mut model, FieldId::Mode);
            drive(&mut model, [Action::Right]);
        }
        focus(&mut model, *field);
        // Clear a prefilled value (the time zone starts as the daemon's).
        drive(&mut model, vec![Action::Backspace; 40]);
        drive(&mut model, typed(garbage));
        let text = screen_text(&model, 80, 24);
        assert!(
            text.contains(hint),
            "{field:?} = {garbage:?}: hint {hint:?} missing\n{text}"
        );
        // Enter does not send anything while a field is wrong.
        let commands = drive(&mut model, [Action::Submit]);
        assert_eq!(commands, vec![], "{field:?} = {garbage:?} was submitted");
        assert_eq!(model.wizard.step, *step);
    }
}

#[test]
fn empty_passwords_show_their_hint_after_enter() {
    for step in [WizardStep::Windows, WizardStep::Linux] {
        let mut model = wizard_at(step, (80, 24));
        drive(&mut model, typed("osiris"));
        let commands = drive(&mut model, [Action::Submit]);
        assert_eq!(commands, vec![]);
        let text = screen_text(&model, 80, 24);
        assert!(text.contains("Type the account's password"), "{text}");
    }
}

#[test]
fn passwords_are_never_rendered() {
    let mut model = wizard_at(WizardStep::Directory, (160, 48));
    drive(&mut model, typed("clinic.local"));
    focus(&mut model, FieldId::BindUser);
    drive(&mut model, typed("scanner@clinic.local"));
    focus(&mut model, FieldId::BindPassword);
    drive(&mut model, typed("S3cret-Pa55"));
    let text = screen_text(&model, 160, 48);
    assert!(!text.contains("S3cret"), "{text}");
    assert!(text.contains("•••••••••••"), "{text}");
}

#[test]
fn the_wizard_sends_each_step_to_the_daemon() {
    let mut model = wizard_start((80, 24));
    // Network: second interface, fixed address.
    drive(
        &mut model,
        [Action::Right, Action::NextField, Action::Right],
    );
    focus(&mut model, FieldId::Address);
    drive(&mut model, typed("192.168.10.40/24"));
    focus(&mut model, FieldId::Gateway);
    drive(&mut model, typed("192.168.10.1"));
    focus(&mut model, FieldId::Dns);
    drive(&mut model, typed("192.168.10.5 1.1.1.1"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::SetNetwork(api::NetworkSettings {
            interface: "enp2s0".into(),
            mode: NetworkMode::Static,
            address: Some("192.168.10.40/24".into()),
            gateway: Some("192.168.10.1".into()),
            dns: vec!["192.168.10.5".into(), "1.1.1.1".into()],
        }))]
    );
    // Keys do nothing while the step is being saved.
    assert_eq!(drive(&mut model, [Action::Submit, Action::Back]), vec![]);
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);
    assert_eq!(model.wizard.step, WizardStep::Claim);

    // Claim with a code.
    drive(&mut model, typed("K7QF-3MZP"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::Claim(api::ClaimRequest {
            code: "K7QF-3MZP".into()
        }))]
    );
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);

    // Directory: test, then save.
    drive(&mut model, typed("clinic.local"));
    focus(&mut model, FieldId::BindUser);
    drive(&mut model, typed("scanner@clinic.local"));
    focus(&mut model, FieldId::BindPassword);
    drive(&mut model, typed("pw"));
    let request = api::DirectoryRequest {
        domain: "clinic.local".into(),
        dc: None,
        bind_user: "scanner@clinic.local".into(),
        password: "pw".into(),
    };
    let commands = drive(&mut model, [Action::NextField, Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::TestDirectory(request.clone()))]
    );
    drive(
        &mut model,
        [Action::DirectoryTested(Ok(api::ConnectionTest {
            ok: true,
            message: "Connected to clinic.local as scanner@clinic.local".into(),
            detail: None,
        }))],
    );
    assert!(screen_text(&model, 80, 24).contains("✔ Connected to clinic.local"));
    let commands = drive(&mut model, [Action::PreviousField, Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::SaveDirectory(request))]
    );
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);

    // Windows credentials, then Linux skipped by leaving it empty.
    drive(&mut model, typed("CLINIC\\osiris"));
    drive(&mut model, [Action::NextField]);
    drive(&mut model, typed("pw2"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::SetCredential(
            api::CredentialRequest {
                slot: CredentialSlot::Windows,
                user: "CLINIC\\osiris".into(),
                secret: "pw2".into(),
            }
        ))]
    );
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);
    assert_eq!(model.wizard.step, WizardStep::Linux);
    assert_eq!(drive(&mut model, [Action::Submit]), vec![]);
    assert_eq!(model.wizard.step, WizardStep::Timezone);

    // Time zone replaces the daemon's default.
    drive(&mut model, vec![Action::Backspace; 3]);
    drive(&mut model, typed("America/Chicago"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::SetTimezone(api::TimezoneRequest {
            timezone: "America/Chicago".into()
        }))]
    );
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);
    assert_eq!(model.wizard.step, WizardStep::Pin);

    // The console PIN: digits only, typed twice the same, never drawn.
    drive(&mut model, typed("24a8"));
    assert!(screen_text(&model, 80, 24).contains("4 to 12 digits"));
    assert_eq!(drive(&mut model, [Action::Submit]), vec![]);
    // The cursor is back on the wrong field.
    drive(&mut model, vec![Action::Backspace; 4]);
    drive(&mut model, typed("2468"));
    drive(&mut model, [Action::NextField]);
    drive(&mut model, typed("2469"));
    assert_eq!(drive(&mut model, [Action::Submit]), vec![]);
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("The two PINs are not the same"), "{text}");
    assert!(!text.contains("2468") && !text.contains("2469"), "{text}");
    drive(&mut model, [Action::Backspace]);
    drive(&mut model, typed("8"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::SetPin(api::PinRequest {
            pin: "2468".into(),
            current_pin: None,
        }))]
    );
    drive(&mut model, [Action::SetupSaved(Ok(fixture::setup_state()))]);
    assert_eq!(model.wizard.step, WizardStep::Finish);

    // Esc goes back a step and Enter there returns.
    drive(&mut model, [Action::Back]);
    assert_eq!(model.wizard.step, WizardStep::Pin);
}

#[test]
fn run_first_scan_completes_setup_scans_and_opens_home_when_the_scan_ran() {
    let mut model = wizard_at(WizardStep::Finish, (80, 24));
    let mut status = fixture::fresh_status();
    assert_eq!(
        drive(&mut model, [Action::Submit]),
        vec![Command::Api(ApiCall::CompleteSetup)]
    );
    assert_eq!(
        drive(
            &mut model,
            [Action::SetupCompleted(Ok(fixture::setup_state()))]
        ),
        vec![Command::Api(ApiCall::ScanNow)]
    );
    drive(
        &mut model,
        [Action::ScanTriggered(Ok(api::Triggered {
            cycle: CycleKind::ServerScan,
            queued: false,
            message: String::new(),
        }))],
    );
    assert_eq!(
        model.wizard.finish,
        FinishState::Scanning { baseline_runs: 0 }
    );
    // Setup is complete but the scan has not finished: the progress stays.
    status.setup_complete = true;
    status.cycles[0].running = true;
    drive(&mut model, [Action::StatusLoaded(Ok(status.clone()))]);
    assert!(model.wizard_active);
    assert!(screen_text(&model, 80, 24).contains("Checking your devices for the first time"));
    // The server scan finished once: home.
    status.cycles[0].running = false;
    status.cycles[0].runs = 1;
    drive(&mut model, [Action::StatusLoaded(Ok(status))]);
    assert!(!model.wizard_active);
    assert_eq!(model.screen, Screen::Home);
    assert!(screen_text(&model, 80, 24).contains("Setup is done and the first scan finished"));
}

#[test]
fn a_daemon_that_disappears_mid_action_is_said_plainly_and_retry_asks_again() {
    let mut model = fixture::loaded_model((80, 24));
    drive(&mut model, [Action::Goto(Screen::Evidence), Action::Export]);
    drive(&mut model, typed("/media/usb"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::Export(api::ExportRequest {
            dest_dir: "/media/usb".into()
        }))]
    );
    drive(
        &mut model,
        [Action::Exported(Err(Failure::down(
            "The appliance service is not running",
        )))],
    );
    assert!(matches!(model.connection, Connection::Down(_)));
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Nothing was exported"), "{text}");
    drive(&mut model, [Action::Back, Action::Goto(Screen::Home)]);
    let text = screen_text(&model, 80, 24);
    assert!(
        text.contains("The appliance service is not running"),
        "{text}"
    );
    assert!(text.contains("Press R to retry"), "{text}");
    assert!(text.contains("LAKE-7Q4M"), "{text}");
    let r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE);
    let retry = keymap::action_for(&model, r);
    assert_eq!(retry, Some(Action::Retry));
    let commands = drive(&mut model, retry);
    assert!(commands.contains(&Command::Api(ApiCall::Status)));
    drive(&mut model, [Action::StatusLoaded(Ok(fixture::status()))]);
    assert_eq!(model.connection, Connection::Up);
    assert!(screen_text(&model, 80, 24).contains("answers again"));
}

#[test]
fn pausing_asks_who_once_and_requires_a_reason() {
    let mut model = fixture::loaded_model((80, 24));
    drive(&mut model, [Action::ToggleHealing]);
    drive(&mut model, typed("Dana"));
    drive(&mut model, [Action::Submit]);
    // Empty reason: refused with a hint, nothing sent.
    assert_eq!(drive(&mut model, [Action::Submit]), vec![]);
    assert!(screen_text(&model, 80, 24).contains("Say in a few words why"));
    drive(&mut model, typed("EHR upgrade"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::PauseHealing(api::PauseRequest {
            reason: "EHR upgrade".into(),
            by: "Dana".into()
        }))]
    );
    // Acknowledging later does not ask the name again.
    drive(&mut model, [Action::Goto(Screen::Incidents)]);
    let commands = drive(&mut model, [Action::Acknowledge]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::Acknowledge(
            41,
            api::AckRequest { by: "Dana".into() }
        ))]
    );
}

#[test]
fn the_update_dialog_shows_where_updates_stand_and_sends_nothing() {
    let mut model = fixture::loaded_model((80, 24));
    drive(&mut model, [Action::OpenUpdate]);
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    for c in ['a', 'b', 'A', 'B'] {
        let actions: Vec<Action> = keymap::action_for(&model, key(c)).into_iter().collect();
        assert!(drive(&mut model, actions).is_empty(), "{c} sends nothing");
        assert_eq!(model.modal, Some(Modal::Update));
    }
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("version 0.9.3 is ready to apply"), "{text}");
    assert!(
        text.contains("Your IT partner applies and rolls back updates"),
        "{text}"
    );
    drive(&mut model, [Action::Back]);
    assert_eq!(model.modal, None);
}

#[test]
fn q_quits_only_from_home_after_confirming() {
    let mut model = fixture::loaded_model((80, 24));
    drive(&mut model, [Action::Goto(Screen::Devices), Action::Quit]);
    assert_eq!(model.screen, Screen::Home);
    assert!(!model.quit);
    drive(&mut model, [Action::Quit, Action::Back]);
    assert!(!model.quit);
    drive(&mut model, [Action::Quit, Action::Submit]);
    assert!(model.quit);
}

#[test]
fn device_filter_and_search_narrow_the_list() {
    let mut model = fixture::loaded_model((80, 24));
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    drive(&mut model, [Action::Goto(Screen::Devices)]);
    let filter = keymap::action_for(&model, key('3'));
    drive(&mut model, filter);
    assert_eq!(model.shown_devices().len(), 3);
    drive(&mut model, [Action::Filter(None), Action::StartSearch]);
    // While searching, letters are text, not commands.
    let actions: Vec<Action> = "exam-1"
        .chars()
        .filter_map(|c| keymap::action_for(&model, key(c)))
        .collect();
    drive(&mut model, actions);
    let names: Vec<&str> = model
        .shown_devices()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["EXAM-10", "EXAM-11", "EXAM-12"]);
    assert!(!model.quit);
}

#[test]
fn a_slow_daemon_does_not_pile_up_status_requests() {
    let mut model = Model::new((80, 24));
    let first = drive(&mut model, [Action::Tick]);
    assert_eq!(first, vec![Command::Api(ApiCall::Status)]);
    assert_eq!(drive(&mut model, [Action::Tick, Action::Tick]), vec![]);
    drive(&mut model, [Action::StatusLoaded(Ok(fixture::status()))]);
    assert_eq!(
        drive(&mut model, [Action::Tick]),
        vec![Command::Api(ApiCall::Status)]
    );
}

#[test]
fn recorded_answers_flow_through_the_executor() {
    let daemon = Arc::new(Recorded::default());
    let executor = Executor::new(daemon.clone());
    let mut model = Model::new((80, 24));
    for command in drive(&mut model, [Action::Tick]) {
        executor.spawn(command);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        if let Some(answer) = executor.try_recv() {
            break answer;
        }
        assert!(Instant::now() < deadline, "no answer within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    drive(&mut model, [answer]);
    assert_eq!(model.status, Some(fixture::status()));
    assert_eq!(
        *daemon.calls.lock().unwrap(),
        vec!["GET /v1/status".to_owned()]
    );
}

#[test]
fn every_call_goes_to_a_declared_endpoint_and_is_answered() {
    let pause = api::PauseRequest {
        reason: "PACS upgrade".into(),
        by: "Dana".into(),
    };
    let directory = api::DirectoryRequest {
        domain: "clinic.local".into(),
        dc: None,
        bind_user: "osiris-scan@clinic.local".into(),
        password: "secret".into(),
    };
    let calls = [
        ApiCall::Status,
        ApiCall::Setup,
        ApiCall::Devices,
        ApiCall::Incidents,
        ApiCall::Healing,
        ApiCall::ScanNow,
        ApiCall::PauseHealing(pause.clone()),
        ApiCall::ResumeHealing(pause),
        ApiCall::Acknowledge(41, api::AckRequest { by: "Dana".into() }),
        ApiCall::Export(api::ExportRequest {
            dest_dir: "/media/usb".into(),
        }),
        ApiCall::SetNetwork(api::NetworkSettings {
            interface: "eth0".into(),
            mode: NetworkMode::Dhcp,
            address: None,
            gateway: None,
            dns: vec![],
        }),
        ApiCall::Claim(api::ClaimRequest {
            code: "K7QF-29XD".into(),
        }),
        ApiCall::TestDirectory(directory.clone()),
        ApiCall::SaveDirectory(directory),
        ApiCall::SetCredential(api::CredentialRequest {
            slot: CredentialSlot::Linux,
            user: "osiris".into(),
            secret: "secret".into(),
        }),
        ApiCall::SetTimezone(api::TimezoneRequest {
            timezone: "America/Chicago".into(),
        }),
        ApiCall::SetPin(api::PinRequest {
            pin: fixture::PIN.into(),
            current_pin: None,
        }),
        ApiCall::Unlock(api::UnlockRequest {
            pin: fixture::PIN.into(),
        }),
        ApiCall::CompleteSetup,
        ApiCall::Agents,
        ApiCall::CreateAgentToken(api::AgentTokenRequest {
            uses: 1,
            expires_secs: 86_400,
            by: "Dana".into(),
        }),
        ApiCall::RevokeAgent(api::AgentRevokeRequest {
            agent_id: fixture::agents().agents[0].agent_id.clone(),
            by: "Dana".into(),
            reason: "stolen laptop".into(),
        }),
    ];
    let daemon = Recorded::default();
    for call in calls {
        let answer = format!("{:?}", execute(&daemon, call.clone()));
        assert!(!answer.contains("Err("), "{call:?} got {answer}");
    }
    let declared: Vec<String> = api::endpoint::ALL
        .iter()
        .map(|(method, route)| format!("{} {}", method.as_str(), route.replace("{id}", "41")))
        .collect();
    for made in daemon.calls.lock().unwrap().iter() {
        assert!(declared.contains(made), "{made} is not a declared endpoint");
    }
}

#[test]
fn the_real_client_reports_a_missing_daemon_as_down() {
    let dir = tempfile::tempdir().unwrap();
    let client = api::Client::new(dir.path().join("missing.sock"));
    let Action::StatusLoaded(Err(failure)) = execute(&client, ApiCall::Status) else {
        panic!("a missing socket answered");
    };
    assert!(failure.daemon_down);
    assert_eq!(failure.message, "The appliance service is not running");
    let Action::Exported(Err(failure)) = execute(
        &client,
        ApiCall::Export(api::ExportRequest {
            dest_dir: "/media/usb".into(),
        }),
    ) else {
        panic!("a missing socket answered");
    };
    assert!(failure.daemon_down);
}

#[test]
fn the_wizard_shows_until_setup_is_complete_and_asks_for_setup_state() {
    let mut model = Model::new((80, 24));
    let commands = drive(
        &mut model,
        [Action::StatusLoaded(Ok(fixture::fresh_status()))],
    );
    assert!(model.wizard_active);
    assert_eq!(commands, vec![Command::Api(ApiCall::Setup)]);
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Step 1 of 8 — Network"), "{text}");
    // Letters typed in the wizard are text even when they are command keys elsewhere.
    drive(
        &mut model,
        [Action::SetupLoaded(Ok(fixture::setup_state()))],
    );
    drive(&mut model, [Action::NextField, Action::Right]);
    focus(&mut model, FieldId::Address);
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(keymap::action_for(&model, q), Some(Action::Input('q')));
}

#[test]
fn a_daemon_without_the_setup_endpoint_is_said_in_the_wizard() {
    let mut model = Model::new((80, 24));
    drive(
        &mut model,
        [Action::StatusLoaded(Ok(fixture::fresh_status()))],
    );
    drive(
        &mut model,
        [Action::SetupLoaded(Err(Failure::refused(
            "GET /v1/setup failed with HTTP 404: ",
        )))],
    );
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Could not read the setup state"), "{text}");
    // The next tick asks again.
    let commands = drive(&mut model, [Action::Tick]);
    assert!(
        commands.contains(&Command::Api(ApiCall::Setup)),
        "{commands:?}"
    );
}

#[test]
fn an_acknowledged_incident_no_longer_needs_you() {
    let mut model = Model::new((80, 24));
    let mut status = fixture::status();
    drive(
        &mut model,
        [
            Action::StatusLoaded(Ok(status.clone())),
            Action::Unlocked(Ok(fixture::unlocked())),
        ],
    );
    assert!(screen_text(&model, 80, 24).contains("1 needs you"));
    status.incidents.needs_you = 0;
    drive(&mut model, [Action::StatusLoaded(Ok(status))]);
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Nothing needs you"), "{text}");
    assert!(text.contains("1 acknowledged, with a person"), "{text}");
}

/// Issue 14 finding 8: a console left alone locks after the daemon's idle time (on the clock the
/// runtime injects), draws none of the site's data while locked, shows the daemon's wait after a
/// wrong PIN, and shows everything again after the right one.
#[test]
fn after_the_idle_time_the_console_hides_site_data_until_the_pin_is_typed() {
    let daemon = Recorded::default();
    let mut model = fixture::loaded_model((160, 48));
    drive(&mut model, [Action::Goto(Screen::Devices)]);
    drive(&mut model, [Action::DevicesLoaded(Ok(fixture::devices()))]);
    let names: Vec<String> = fixture::devices().into_iter().map(|d| d.name).collect();
    let shown = |model: &Model| {
        let text = screen_text(model, 160, 48);
        names
            .iter()
            .filter(|name| text.contains(name.as_str()))
            .count()
    };
    assert!(shown(&model) > 5, "{}", screen_text(&model, 160, 48));

    // A key at 100 s keeps it open until 400 s.
    drive(
        &mut model,
        [
            Action::Clock(Duration::from_secs(100)),
            Action::Down,
            Action::Clock(Duration::from_secs(399)),
        ],
    );
    assert!(!model.lock.locked);
    assert!(shown(&model) > 5);
    drive(&mut model, [Action::Clock(Duration::from_secs(400))]);
    assert!(model.lock.locked);
    for (width, height) in [(80, 24), (160, 48)] {
        let text = screen_text(&model, width, height);
        for name in &names {
            assert!(
                !text.contains(name.as_str()),
                "{name} shown while locked:\n{text}"
            );
        }
        for secret in ["Lakeside", "Incident", "LAKE-7Q4M", "needs you"] {
            assert!(
                !text.contains(secret),
                "{secret} shown while locked:\n{text}"
            );
        }
        assert!(text.contains("This console is locked."), "{text}");
        assert!(text.contains("Type the console PIN"), "{text}");
    }
    assert_eq!(model.lock.token, None, "the unlock is forgotten");
    assert_eq!(
        model.operator, None,
        "the next person is asked who they are"
    );
    // Locked, the console asks only for status, and command keys are not commands.
    assert_eq!(
        drive(&mut model, [Action::Tick]),
        vec![Command::Api(ApiCall::Status)]
    );
    drive(&mut model, [Action::StatusLoaded(Ok(fixture::status()))]);
    assert_eq!(drive(&mut model, typed("sp")), vec![]);
    assert_eq!(
        drive(&mut model, [Action::DevicesLoaded(Ok(fixture::devices()))]),
        vec![]
    );
    assert_eq!(shown(&model), 0);

    // A wrong PIN: the daemon's refusal and its wait show; the digits never do.
    drive(&mut model, typed("1357"));
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("••••") && !text.contains("1357"), "{text}");
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::Unlock(api::UnlockRequest {
            pin: "1357".into()
        }))]
    );
    for command in commands {
        let Command::Api(call) = command else {
            panic!("{command:?}")
        };
        drive(&mut model, [execute(&daemon, call)]);
    }
    assert!(model.lock.locked);
    let text = screen_text(&model, 80, 24);
    assert!(
        text.contains("Wrong PIN: wait 4 s before trying again."),
        "{text}"
    );
    assert_eq!(shown(&model), 0);

    // The right PIN: unlocked, the screen's list is asked for again and shown.
    drive(&mut model, typed(fixture::PIN));
    let mut pending = drive(&mut model, [Action::Submit]);
    while let Some(Command::Api(call)) = pending.pop() {
        pending.extend(drive(&mut model, [execute(&daemon, call)]));
    }
    assert!(!model.lock.locked);
    assert_eq!(model.lock.token.as_deref(), Some("0123456789abcdef"));
    assert!(shown(&model) > 5, "{}", screen_text(&model, 160, 48));
}

#[test]
fn with_a_pin_set_the_console_starts_locked_and_locks_when_the_daemon_says_so() {
    let mut model = Model::new((80, 24));
    drive(&mut model, [Action::StatusLoaded(Ok(fixture::status()))]);
    assert!(
        model.lock.locked,
        "a restarted console is no way around the lock"
    );
    assert!(!screen_text(&model, 80, 24).contains("Lakeside"));

    // The daemon's unlock expired (423): the console locks and says why.
    let mut model = fixture::loaded_model((80, 24));
    drive(&mut model, [Action::ToggleHealing]);
    drive(&mut model, typed("Dana"));
    drive(&mut model, [Action::Submit]);
    drive(&mut model, typed("EHR upgrade"));
    drive(&mut model, [Action::Submit]);
    drive(
        &mut model,
        [Action::HealingToggled(Err(Failure::locked(
            "the console is locked: type the console PIN to unlock it first",
        )))],
    );
    assert!(model.lock.locked);
    assert!(screen_text(&model, 80, 24).contains("the console locked"));

    // Without a PIN nothing locks, and the console says a PIN should be set.
    let mut status = fixture::status();
    status.console.pin_set = false;
    let mut model = Model::new((160, 48));
    drive(
        &mut model,
        [
            Action::StatusLoaded(Ok(status)),
            Action::Clock(Duration::from_secs(100_000)),
        ],
    );
    assert!(!model.lock.locked);
    let text = screen_text(&model, 160, 48);
    assert!(text.contains("No console PIN"), "{text}");
}

#[test]
fn requests_carry_the_unlock_token_while_unlocked() {
    use osiris_console::runtime::{Daemon, Request, execute_unlocked};
    #[derive(Default)]
    struct Tokens(std::sync::Mutex<Vec<Option<String>>>, Recorded);
    impl Daemon for Tokens {
        fn send(&self, request: &Request) -> Result<Vec<u8>, Failure> {
            self.0.lock().unwrap().push(request.unlock.clone());
            self.1.send(request)
        }
    }
    let daemon = Tokens::default();
    let model = fixture::loaded_model((80, 24));
    let call = ApiCall::PauseHealing(api::PauseRequest {
        reason: "EHR upgrade".into(),
        by: "Dana".into(),
    });
    execute_unlocked(&daemon, call, model.lock.token.as_deref());
    execute(&daemon, ApiCall::Status);
    assert_eq!(
        *daemon.0.lock().unwrap(),
        vec![Some("0123456789abcdef".to_owned()), None]
    );
}

/// The agents screen from the clinic's recorded answers, unlocked, with the agents loaded.
fn agents_screen(size: (u16, u16)) -> Model {
    let mut model = fixture::loaded_model(size);
    let commands = drive(&mut model, [Action::Goto(Screen::Agents)]);
    assert_eq!(commands, vec![Command::Api(ApiCall::Agents)]);
    drive(&mut model, [Action::AgentsLoaded(Ok(fixture::agents()))]);
    model
}

/// Keys as the keymap translates them in the model's current state.
fn keys(model: &mut Model, codes: &[KeyCode]) -> Vec<Command> {
    let mut res = Vec::new();
    for code in codes {
        let action = keymap::action_for(model, KeyEvent::new(*code, KeyModifiers::NONE));
        res.extend(drive(model, action));
    }
    res
}

#[test]
fn the_agents_screen_is_reached_like_the_others_and_refreshes_its_list() {
    let mut model = fixture::loaded_model((80, 24));
    for code in [KeyCode::F(6), KeyCode::Char('6'), KeyCode::Char('g')] {
        drive(&mut model, [Action::Goto(Screen::Home)]);
        keys(&mut model, &[code]);
        assert_eq!(model.screen, Screen::Agents, "{code:?}");
    }
    drive(&mut model, [Action::Goto(Screen::Evidence)]);
    keys(&mut model, &[KeyCode::Tab]);
    assert_eq!(model.screen, Screen::Agents);
    keys(&mut model, &[KeyCode::Tab, KeyCode::Tab]);
    assert_eq!(model.screen, Screen::Home);
    keys(&mut model, &[KeyCode::BackTab, KeyCode::BackTab]);
    assert_eq!(model.screen, Screen::Agents);
    // The list is asked for every 2 s while the screen shows, one request at a time.
    model.in_flight.clear();
    assert_eq!(
        drive(&mut model, [Action::Tick]),
        vec![Command::Api(ApiCall::Status), Command::Api(ApiCall::Agents)]
    );
    assert_eq!(drive(&mut model, [Action::Tick]), vec![]);
    drive(&mut model, [Action::AgentsLoaded(Ok(fixture::agents()))]);
    let text = screen_text(&model, 80, 24);
    for words in [
        "Agents connect to 192.168.10.40:7443",
        fixture::AGENT_CA_PIN,
        "FRONT-DESK-01",
        "✔ Connected",
        "Last report 12 minutes ago",
        "Last report 4 days ago",
        "Never reported",
        "Revoked 2 days ago",
    ] {
        assert!(text.contains(words), "{words:?} missing:\n{text}");
    }
    keys(&mut model, &[KeyCode::Down, KeyCode::Char('j')]);
    assert_eq!(model.agents_view.selected, 2);
    keys(&mut model, &[KeyCode::PageDown]);
    assert_eq!(model.agents_view.selected, 5, "stops at the last agent");
}

/// Issue 17: the console shows a new enrollment token as text and as a QR code, only on the
/// agents screen and only until it is left.
#[test]
fn a_new_token_is_shown_once_and_forgotten_when_the_screen_is_left() {
    let mut model = agents_screen((160, 48));
    // Who asks, then the form with one computer for a day; letters typed there are text.
    assert_eq!(keys(&mut model, &[KeyCode::Char('n')]), vec![]);
    let name: Vec<KeyCode> = "Sam".chars().map(KeyCode::Char).collect();
    keys(&mut model, &name);
    keys(&mut model, &[KeyCode::Enter]);
    assert!(matches!(model.modal, Some(Modal::TokenForm(_))));
    keys(&mut model, &[KeyCode::Tab, KeyCode::Char('q')]);
    assert!(
        !model.quit && model.modal.is_some(),
        "q is text in the form"
    );
    assert_eq!(
        keys(&mut model, &[KeyCode::Enter]),
        vec![],
        "q is no validity"
    );
    assert!(screen_text(&model, 160, 48).contains("How long, like 24h, 7d or 30m"));
    keys(&mut model, &[KeyCode::Backspace]);
    keys(&mut model, &[KeyCode::Char('2'), KeyCode::Char('d')]);
    let commands = keys(&mut model, &[KeyCode::Enter]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::CreateAgentToken(
            api::AgentTokenRequest {
                uses: 1,
                expires_secs: 2 * 86_400,
                by: "Sam".into(),
            }
        ))]
    );
    assert_eq!(model.modal, None);
    let daemon = Recorded::default();
    let Command::Api(call) = commands[0].clone() else {
        panic!("{commands:?}")
    };
    drive(&mut model, [execute(&daemon, call)]);
    let token = fixture::agent_token(1, 2 * 86_400);
    let shown = model.agents_view.token.clone().map(|t| t.0);
    assert_eq!(shown.as_ref(), Some(&token));
    let text = screen_text(&model, 160, 48);
    for words in [
        token.token.as_str(),
        "192.168.10.40:7443",
        fixture::AGENT_CA_PIN,
        "1 computer may enroll with it within 2 days",
        "Scan me",
        "osiris-agent enroll --appliance 192.168.10.40:7443 --ca-pin",
    ] {
        assert!(text.contains(words), "{words:?} missing:\n{text}");
    }
    // The model's Debug output (what a panic message or a log would print) never holds it.
    assert!(!format!("{model:?}").contains(&token.token));

    // Another screen drops it; coming back does not bring it back.
    drive(&mut model, [Action::Goto(Screen::Devices)]);
    assert_eq!(model.agents_view.token, None);
    drive(&mut model, [Action::Goto(Screen::Agents)]);
    assert!(!screen_text(&model, 160, 48).contains(&token.token));

    // Esc hides it too, and so does the idle lock.
    for hide in [Action::Back, Action::Clock(Duration::from_secs(100_000))] {
        let mut model = agents_screen((160, 48));
        drive(&mut model, [Action::NewAgentToken]);
        drive(&mut model, typed("Sam"));
        drive(&mut model, [Action::Submit, Action::Submit]);
        drive(
            &mut model,
            [Action::AgentTokenCreated(Ok(
                osiris_console::model::EnrollmentToken(token.clone()),
            ))],
        );
        assert!(screen_text(&model, 160, 48).contains(&token.token));
        drive(&mut model, [hide.clone()]);
        assert_eq!(model.agents_view.token, None, "{hide:?}");
        assert!(!screen_text(&model, 160, 48).contains(&token.token));
    }

    // An answer that arrives after the screen was left is not kept.
    let mut model = agents_screen((80, 24));
    drive(&mut model, [Action::NewAgentToken]);
    drive(&mut model, typed("Sam"));
    drive(&mut model, [Action::Submit, Action::Submit]);
    drive(&mut model, [Action::Goto(Screen::Home)]);
    drive(
        &mut model,
        [Action::AgentTokenCreated(Ok(
            osiris_console::model::EnrollmentToken(token.clone()),
        ))],
    );
    drive(&mut model, [Action::Goto(Screen::Agents)]);
    assert_eq!(model.agents_view.token, None);
    assert!(!screen_text(&model, 80, 24).contains(&token.token));
}

#[test]
fn with_the_gateway_off_the_screen_says_so_and_makes_no_token() {
    let mut model = agents_screen((80, 24));
    drive(
        &mut model,
        [Action::AgentsLoaded(Ok(api::AgentsState {
            gateway: None,
            ca_pin: None,
            agents: Vec::new(),
        }))],
    );
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Endpoint agents are off"), "{text}");
    assert!(text.contains("[agents]"), "{text}");
    assert_eq!(drive(&mut model, [Action::NewAgentToken]), vec![]);
    assert_eq!(model.modal, None);
    assert!(screen_text(&model, 80, 24).contains("Endpoint agents are off"));
}

#[test]
fn revoking_an_agent_asks_to_confirm_then_why_and_shows_a_refusal_in_full() {
    let mut model = agents_screen((80, 24));
    let exam = fixture::agents().agents[1].clone();
    keys(&mut model, &[KeyCode::Down, KeyCode::Char('x')]);
    assert!(screen_text(&model, 80, 24).contains("Revoke the agent on EXAM-03?"));
    // No: nothing happens.
    assert_eq!(keys(&mut model, &[KeyCode::Esc]), vec![]);
    assert_eq!(model.modal, None);
    // Yes: who (once), then a reason is required.
    keys(&mut model, &[KeyCode::Char('x'), KeyCode::Char('y')]);
    drive(&mut model, typed("Dana"));
    assert_eq!(drive(&mut model, [Action::Submit]), vec![]);
    assert_eq!(drive(&mut model, [Action::Submit]), vec![], "no reason");
    assert!(screen_text(&model, 80, 24).contains("Say in a few words why"));
    drive(&mut model, typed("PC replaced"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::RevokeAgent(
            api::AgentRevokeRequest {
                agent_id: exam.agent_id.clone(),
                by: "Dana".into(),
                reason: "PC replaced".into(),
            }
        ))]
    );
    // The daemon's refusal is shown whole, and nothing changed.
    let refusal = "no enrolled, unrevoked agent has the ID \"a-8a17d5c2e9f03b46\" (`osiris agent list` shows the agents and their IDs)";
    let commands = drive(
        &mut model,
        [Action::AgentRevoked(Err(Failure::refused(refusal)))],
    );
    assert_eq!(commands, vec![Command::Api(ApiCall::Agents)], "refreshed");
    drive(&mut model, [Action::AgentsLoaded(Ok(fixture::agents()))]);
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("The agent was not revoked"), "{text}");
    assert!(text.contains("shows the agents and their"), "{text}");
    assert_eq!(model.agents().get(1).and_then(|a| a.revoked_at), None);
    drive(&mut model, [Action::Back]);
    // Done: the name is not asked again, and the answer is shown in the list.
    keys(&mut model, &[KeyCode::Char('x'), KeyCode::Enter]);
    drive(&mut model, typed("PC replaced"));
    let Some(Command::Api(call)) = drive(&mut model, [Action::Submit]).pop() else {
        panic!("no request");
    };
    let daemon = Recorded::default();
    let commands = drive(&mut model, [execute(&daemon, call)]);
    assert_eq!(commands, vec![Command::Api(ApiCall::Agents)], "refreshed");
    assert!(model.agents()[1].revoked_at.is_some());
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("The agent on EXAM-03 is revoked"), "{text}");
    // A revoked agent is not revoked twice.
    assert_eq!(drive(&mut model, [Action::RevokeAgent]), vec![]);
    assert_eq!(model.modal, None);
    assert!(screen_text(&model, 80, 24).contains("already revoked"));
    // A 423 (the unlock expired) locks the console, as for every operator action.
    drive(
        &mut model,
        [Action::AgentRevoked(Err(Failure::locked(
            "the console is locked: type the console PIN to unlock it first",
        )))],
    );
    assert!(model.lock.locked);
    assert_eq!(model.agents, None, "site data is dropped when locked");
}

/// Issue 18: the approvals screen shows the fixes the assistant planned that wait for a person
/// and the learned fixes; approving asks to confirm and who (once), sends the decision with that
/// name, and shows what the fix did.
#[test]
fn approvals_are_shown_confirmed_and_sent_with_the_name() {
    let mut model = fixture::loaded_model((160, 48));
    for code in [KeyCode::F(7), KeyCode::Char('7'), KeyCode::Char('f')] {
        drive(&mut model, [Action::Goto(Screen::Home)]);
        model.in_flight.clear();
        let commands = keys(&mut model, &[code]);
        assert_eq!(model.screen, Screen::Approvals, "{code:?}");
        assert_eq!(
            commands,
            vec![
                Command::Api(ApiCall::Plans),
                Command::Api(ApiCall::Flywheel)
            ],
            "{code:?}"
        );
    }
    let text = screen_text(&model, 160, 48);
    assert!(text.contains("Asking the appliance"), "{text}");
    drive(
        &mut model,
        [
            Action::PlansLoaded(Ok(fixture::l2_plans())),
            Action::FlywheelLoaded(Ok(fixture::flywheel())),
        ],
    );
    let text = screen_text(&model, 160, 48);
    for words in [
        "Fixes waiting for your OK — 1",
        "FRONTDESK-01",
        "WIN-FW-001",
        "86 %",
        "ready for your OK",
        "✔ automatic",
        "learning",
        "6 of 6 on 3 computers",
        "Automatic 210 (70 %) · by the assistant 60 (20 %) · by a person 30 (10 %)",
        "Why (FRONTDESK-01): The domain profile of the firewall is off",
    ] {
        assert!(text.contains(words), "{words:?} missing:\n{text}");
    }
    // Approving the plan: confirm, who, then the request with that name.
    keys(&mut model, &[KeyCode::Char('a')]);
    let text = screen_text(&model, 160, 48);
    assert!(
        text.contains("Run fix WIN-FW-001 on FRONTDESK-01 now for WIN-FW-001?"),
        "{text}"
    );
    assert_eq!(keys(&mut model, &[KeyCode::Esc]), vec![]);
    assert_eq!(model.modal, None);
    keys(&mut model, &[KeyCode::Char('a'), KeyCode::Char('y')]);
    drive(&mut model, typed("Dana Whitfield"));
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::ApprovePlan(
            "l2-4812".into(),
            api::DecisionRequest {
                by: "Dana Whitfield".into()
            }
        ))]
    );
    let Some(Command::Api(call)) = commands.into_iter().next() else {
        panic!("no request");
    };
    let daemon = Recorded::default();
    model.in_flight.clear();
    let commands = drive(&mut model, [execute(&daemon, call)]);
    assert_eq!(
        commands,
        vec![
            Command::Api(ApiCall::Plans),
            Command::Api(ApiCall::Flywheel)
        ],
        "refreshed"
    );
    let text = screen_text(&model, 160, 48);
    assert!(
        text.contains("WIN-FW-001 on FRONTDESK-01 is fixed."),
        "{text}"
    );
    // A learning pattern cannot be approved; the proposed one can, without asking the name again.
    drive(
        &mut model,
        [
            Action::PlansLoaded(Ok(Vec::new())),
            Action::FlywheelLoaded(Ok(fixture::flywheel())),
        ],
    );
    assert!(screen_text(&model, 160, 48).contains("No fix waits for your OK."));
    keys(
        &mut model,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Char('a')],
    );
    assert_eq!(model.modal, None);
    assert!(screen_text(&model, 160, 48).contains("only a proposed one can be approved"));
    keys(&mut model, &[KeyCode::Up, KeyCode::Up, KeyCode::Char('a')]);
    assert!(
        screen_text(&model, 160, 48)
            .contains("Let the appliance make this fix for LIN-SSH-001 automatically")
    );
    let commands = keys(&mut model, &[KeyCode::Enter]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::ApprovePattern(
            "fw-3f2a9c1d0e".into(),
            api::DecisionRequest {
                by: "Dana Whitfield".into()
            }
        ))]
    );
    // A refusal is shown in full; locking drops the lists.
    drive(
        &mut model,
        [Action::PatternDecided(Err(Failure::refused(
            "pattern fw-3f2a9c1d0e is promoted, not proposed (a pattern needs 5 verified fixes on 2 hosts at 90 % before it can be approved)",
        )))],
    );
    let text = screen_text(&model, 160, 48);
    assert!(text.contains("Nothing was decided"), "{text}");
    assert!(text.contains("is promoted, not proposed"), "{text}");
    drive(
        &mut model,
        [Action::PatternDecided(Err(Failure::locked(
            "the console is locked: type the console PIN to unlock it first",
        )))],
    );
    assert!(model.lock.locked);
    assert_eq!(
        model.approvals.plans, None,
        "site data is dropped when locked"
    );
}

/// Issue 19: the evidence screen lists the monthly packets and the accepted risks and
/// attestations; M exports the selected packet through the daemon's export, ↓ selects another.
#[test]
fn the_selected_monthly_packet_is_exported_to_the_stick_given() {
    let mut model = fixture::loaded_model((80, 24));
    let commands = drive(&mut model, [Action::Goto(Screen::Evidence)]);
    assert!(
        commands.contains(&Command::Api(ApiCall::Packets))
            && commands.contains(&Command::Api(ApiCall::Records)),
        "{commands:?}"
    );
    let text = screen_text(&model, 80, 24);
    assert!(
        text.contains("› 2025-12  made 14 days ago · 26 files"),
        "{text}"
    );
    assert!(text.contains("no scans that month"), "{text}");
    assert!(
        text.contains("Expired 2026-01-10, counts no more: attested: HIPAA 164.308(a)(5)(i)"),
        "{text}"
    );
    let m = KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE);
    assert_eq!(keymap::action_for(&model, m), Some(Action::ExportPacket));
    drive(&mut model, [Action::Down]);
    assert!(screen_text(&model, 80, 24).contains("› 2025-11"));
    let commands = drive(&mut model, [Action::ExportPacket]);
    assert_eq!(commands, vec![Command::FindUsb]);
    assert!(screen_text(&model, 80, 24).contains("2025-11 compliance packet"));
    drive(
        &mut model,
        [Action::UsbFound(Some("/media/usb-sdb1".into()))],
    );
    let commands = drive(&mut model, [Action::Submit]);
    assert_eq!(
        commands,
        vec![Command::Api(ApiCall::ExportPacket(
            api::PacketExportRequest {
                period: "2025-11".into(),
                dest_dir: "/media/usb-sdb1".into(),
            }
        ))]
    );
    drive(
        &mut model,
        [Action::PacketExported(Err(Failure::refused(
            "the USB stick at /media/usb-sdb1 has 1 MiB free; the packet needs about 10 MiB",
        )))],
    );
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("Nothing was exported"), "{text}");
    drive(
        &mut model,
        [
            Action::Back,
            Action::ExportPacket,
            Action::Submit,
            Action::PacketExported(Ok(api::PacketExportResult {
                path: "/media/usb-sdb1/osiris-packet-lakeside-2025-11-1768435200".into(),
                files: 26,
                bytes: 9_100_000,
            })),
        ],
    );
    let text = screen_text(&model, 160, 48);
    assert!(text.contains("The packet is on the USB stick"), "{text}");

    // Without packets, M says when one comes.
    let mut model = fixture::loaded_model((80, 24));
    drive(
        &mut model,
        [
            Action::Goto(Screen::Evidence),
            Action::PacketsLoaded(Ok(Vec::new())),
        ],
    );
    assert!(drive(&mut model, [Action::ExportPacket]).is_empty());
    let text = screen_text(&model, 80, 24);
    assert!(text.contains("No monthly packet was made yet"), "{text}");
}

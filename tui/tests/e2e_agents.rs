//! Issue 17: the real `osiris-console` under tmux makes an enrollment token through a real
//! `osirisd` with the agent gateway on (`[agents] listen = "127.0.0.1:0"`), behind the console PIN.
//! The token shows with the gateway address and CA pin the daemon reports and a QR code; the
//! daemon holds it (usable, made by the name typed, one computer for 24 hours) and never wrote
//! its text to its log; and it is gone from the screen once the screen is left.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use common::tmux::{self, keys, screen, text, unlocked_console, wait_for};

const PIN: &str = "24681357";

#[test]
fn the_console_makes_an_enrollment_token_through_a_real_daemon() {
    if !tmux::available("the_console_makes_an_enrollment_token_through_a_real_daemon") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"e2e\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:0\"\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            socket.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("osirisd.log");
    let session = format!("osiris-e2e-agents-{}", std::process::id());
    // Set up as the wizard would, with a console PIN, so the token needs the console's unlock.
    let (_cleanup, client) = unlocked_console(&config, &socket, &log, &session, PIN);
    let agents = client.call(&api::endpoint::Agents, &()).unwrap();
    let gateway = agents.gateway.expect("the gateway is on");
    let ca_pin = agents.ca_pin.expect("the gateway has a CA pin");

    keys(&session, &["F6"]);
    let list = wait_for(&session, "Agents — none enrolled yet", 15, &log);
    assert!(
        list.contains(&format!("Agents connect to {gateway} · CA pin {ca_pin}")),
        "{list}"
    );

    // N: who (once), then the form's defaults: one computer for 24 hours.
    keys(&session, &["n"]);
    wait_for(&session, "Who are you?", 15, &log);
    text(&session, "Sam Ortiz");
    keys(&session, &["Enter"]);
    wait_for(&session, "How many computers", 15, &log);
    keys(&session, &["Enter"]);
    let shown = wait_for(&session, "is ready:", 15, &log);
    let token = shown
        .split_whitespace()
        .find(|word| word.starts_with("osat_"))
        .unwrap_or_else(|| panic!("no token on screen:\n{shown}"))
        .to_owned();
    let id = shown
        .split("Token ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no token ID on screen:\n{shown}"))
        .to_owned();
    for words in [
        format!("Appliance   {gateway}"),
        format!("CA pin      {ca_pin}"),
        "1 computer may enroll with it within 1 day".to_owned(),
        "Scan me".to_owned(),
        format!("osiris-agent enroll --appliance {gateway} --ca-pin"),
    ] {
        assert!(shown.contains(&words), "{words:?} missing:\n{shown}");
    }

    // The daemon made it: usable, by the name typed, one use, for a day; never logged.
    let tokens = client.call(&api::endpoint::AgentTokens, &()).unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let made = &tokens[0];
    assert_eq!(made.id, id);
    assert_eq!(made.state, "usable");
    assert_eq!(made.created_by, "Sam Ortiz");
    assert_eq!((made.uses_total, made.uses_left), (1, 1));
    assert_eq!(made.expires_at - made.created_at, 86_400);
    let daemon_log = std::fs::read_to_string(&log).unwrap();
    assert!(daemon_log.contains(&id), "{daemon_log}");
    assert!(!daemon_log.contains(&token), "the token is in the log");

    // Leaving the screen forgets it; coming back does not show it again.
    keys(&session, &["F1"]);
    wait_for(&session, "╭ Today", 15, &log);
    keys(&session, &["F6"]);
    let again = wait_for(&session, "Agents — none enrolled yet", 15, &log);
    assert!(!again.contains(&token), "{again}");
    assert!(!screen(&session).contains("osat_"));
}

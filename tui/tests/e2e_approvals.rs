//! Issue 18: the real `osiris-console` under tmux, behind the console PIN, shows a fix the
//! assistant planned that waits for a person in a real `osirisd`, and rejects it: the daemon
//! drops it, seals the decision with the name typed, and the screen says nothing waits any more.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tmux::{self, Cleanup, keys, sibling, start_console, text, wait_for};

const PIN: &str = "13572468";

#[test]
fn the_console_rejects_a_waiting_fix_through_a_real_daemon() {
    if !tmux::available("the_console_rejects_a_waiting_fix_through_a_real_daemon") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let socket = dir.path().join("api.sock");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"e2e\"\ndata_dir = \"{}\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            data.display(),
            socket.display()
        ),
    )
    .unwrap();
    // What the heal path leaves when the assistant proposes a high-risk fix.
    std::fs::write(
        data.join("l2-pending.json"),
        r#"[{"id": "l2-42", "l2_seq": 42, "target": "FRONTDESK-01", "check": "WIN-FW-001",
            "runbook": "WIN-FW-001", "params": {}, "confidence": 0.86,
            "rationale": "The domain profile of the firewall is off.", "at": 1764000000}]"#,
    )
    .unwrap();
    let log = dir.path().join("osirisd.log");
    let daemon = Command::new(sibling("osirisd"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let session = format!("osiris-e2e-approvals-{}", std::process::id());
    let _cleanup = Cleanup {
        daemon,
        session: session.clone(),
    };
    let client = api::Client::new(&socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.status().is_err() {
        assert!(
            Instant::now() < deadline,
            "osirisd did not answer within 20 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client
        .call(
            &api::endpoint::SetPin,
            &api::PinRequest {
                pin: PIN.into(),
                current_pin: None,
            },
        )
        .unwrap();
    client
        .call(&api::endpoint::CompleteSetup, &api::endpoint::Empty {})
        .unwrap();

    start_console(&session, &socket, 160, 48);
    wait_for(&session, "This console is locked.", 30, &log);
    text(&session, PIN);
    keys(&session, &["Enter"]);
    wait_for(&session, "╭ Today", 30, &log);
    keys(&session, &["F7"]);
    let shown = wait_for(&session, "Fixes waiting for your OK — 1", 15, &log);
    for words in [
        "FRONTDESK-01",
        "86 %",
        "Why (FRONTDESK-01): The domain profile of the firewall is off.",
        "Learned fixes",
        "Nothing was fixed or handed to a person yet.",
    ] {
        assert!(shown.contains(words), "{words:?} missing:\n{shown}");
    }

    // X: confirm, who, then the daemon drops it.
    keys(&session, &["x"]);
    wait_for(
        &session,
        "Reject the proposed fix for WIN-FW-001 on FRONTDESK-01?",
        15,
        &log,
    );
    keys(&session, &["y"]);
    wait_for(&session, "Who are you?", 15, &log);
    text(&session, "Sam Ortiz");
    keys(&session, &["Enter"]);
    wait_for(
        &session,
        "The fix for WIN-FW-001 on FRONTDESK-01 is rejected; nothing was changed.",
        15,
        &log,
    );
    wait_for(&session, "No fix waits for your OK.", 15, &log);
    assert_eq!(
        client.call(&api::endpoint::L2Pending, &()).unwrap(),
        Vec::new()
    );
    let daemon_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        daemon_log.contains("An L2 plan was decided through the local API.")
            && daemon_log.contains("Sam Ortiz"),
        "{daemon_log}"
    );
}

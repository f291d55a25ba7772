//! Issue 18: the real `osiris-console` under tmux, behind the console PIN, shows a fix the
//! assistant planned that waits for a person in a real `osirisd`, and rejects it: the daemon
//! drops it, seals the decision with the name typed, and the screen says nothing waits any more.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use common::tmux::{self, keys, text, unlocked_console, wait_for};

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
    let session = format!("osiris-e2e-approvals-{}", std::process::id());
    let (_cleanup, client) = unlocked_console(&config, &socket, &log, &session, PIN);
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

//! `osirisd` with `[l2]` on, against the namespace lab and the local LLM API peer: findings L1
//! leaves to a person (on a lab target: checks whose rule always escalates) go to the peer on the
//! daemon's own schedule; the peer's answer (here: `escalate_to_person`) reaches the incident's
//! history; no request names the target or its address; every consultation is sealed as an `l2`
//! bundle; a bad API key file stops the daemon with exit 78 before it binds anything.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use std::path::Path;

use daemon_proc::{start, wait_for};
use test_support::lab::{LAB_TOOLS, Lab};
use test_support::llm::FakeLlm;

fn secret_file(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_daemon_consults_l2_about_what_l1_leaves_and_seals_it() {
    if !test_support::require_root(
        "the_daemon_consults_l2_about_what_l1_leaves_and_seals_it",
        LAB_TOOLS,
    ) {
        return;
    }
    let Some(peer) = FakeLlm::start().unwrap() else {
        return;
    };
    peer.script_default("escalate").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &dir.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let calendar = test_support::calendar::LabCalendar::start().unwrap();
    let address = lab.env["LAB_LINUX_HOSTS"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let site = std::fs::read_to_string(lab.config()).unwrap();
    let socket = dir.path().join("run/api.sock");
    let key_file = dir.path().join("l2.key");
    let config = dir.path().join("appliance.toml");
    let write_config = |key_mode: u32| {
        secret_file(&key_file, FakeLlm::API_KEY, key_mode);
        std::fs::write(
            &config,
            format!(
                r#"{site}
[evidence]
calendars = ["{calendar}"]
timeout_secs = 5

[daemon]
socket = "{socket}"
server_scan_secs = 8
drift_rescan_secs = 5
checkpoint_secs = 5
anchor_secs = 10
jitter_percent = 0

[l2]
mode = "local"
provider = "openai"
endpoint = "{endpoint}"
model = "lab-model"
api_key_file = "{key}"
max_per_hour = 100

[l2.prices.lab-model]
input_usd_per_mtok = 0.5
output_usd_per_mtok = 1.5
"#,
                calendar = calendar.base_url(),
                socket = socket.display(),
                endpoint = peer.openai_url(),
                key = key_file.display(),
            ),
        )
        .unwrap();
    };
    let log = dir.path().join("osirisd.log");

    // A key file others can read: refused before anything is bound, exit 78.
    write_config(0o644);
    let mut refused = start(&config, &log);
    let status = refused.0.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(78),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(!socket.exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("l2.api_key_file"), "{text}");
    assert!(!text.contains(FakeLlm::API_KEY), "the key is in the log");

    write_config(0o600);
    let client = api::Client::new(&socket);
    let daemon = start(&config, &log);
    let incident = wait_for(120, "an incident L2 escalated", &log, || {
        client.incidents().ok()?.into_iter().find(|i| {
            i.history
                .iter()
                .any(|h| h.contains("L2: the model found no safe runbook"))
        })
    });
    assert_eq!(incident.target, "target1");
    assert!(incident.needs_human, "{incident:?}");
    let requests = peer.requests().unwrap();
    assert!(!requests.is_empty());
    for request in &requests {
        let body = request["body"].as_str().unwrap();
        assert!(
            !body.contains("target1"),
            "the target's name left the appliance"
        );
        assert!(
            !body.contains(&address),
            "the target's address left the appliance"
        );
        assert_eq!(request["headers"]["authorization"], "[key]");
    }
    drop(daemon);
    // Stopped: the store is free to read. Every consultation is an `l2` bundle.
    let data_dir = dir.path().join("lab/osiris-data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "lab").await.unwrap();
        let mut l2 = Vec::new();
        for seq in 0..=store.size() {
            if let Some(entry) = store.entry(seq).await.unwrap()
                && entry.kind == "l2"
            {
                let bundle: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
                l2.push(bundle["body"].clone());
            }
        }
        assert!(l2.len() >= requests.len().min(1), "{l2:?}");
        let ours: Vec<&str> = l2.iter().map(|b| b["request"].as_str().unwrap()).collect();
        for request in &requests {
            assert!(
                ours.contains(&request["body"].as_str().unwrap()),
                "a request the peer received was not sealed"
            );
        }
        for body in &l2 {
            assert_eq!(body["provider"], "openai");
            assert_eq!(body["verdict"], "escalated");
            assert!(
                body["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("the model found no safe runbook"),
                "{body}"
            );
        }
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(log_text.contains("L2 consultation."), "{log_text}");
        assert!(
            !log_text.contains(FakeLlm::API_KEY),
            "the key is in the log"
        );
    });
}

//! `osiris-agent check --once` on this machine against `osiris scan` of the same machine: one
//! catalogue, so the same checks with the same verdicts whether the appliance runs them or the
//! agent does.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_osiris-agent")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

fn verdicts(json: &[u8]) -> BTreeMap<String, String> {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap();
    value["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_agent_checks_this_machine_as_the_appliance_would() {
    let work = tempfile::tempdir().unwrap();
    let agent = Command::new(env!("CARGO_BIN_EXE_osiris-agent"))
        .args(["check", "--once", "--json"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        agent.status.success(),
        "{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    let from_agent = verdicts(&agent.stdout);
    let scan = Command::new(sibling("osiris"))
        .args(["scan", "--json"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let from_appliance = verdicts(&scan.stdout);
    assert!(from_agent.len() >= 5, "{from_agent:?}");
    assert!(
        from_agent.keys().all(|id| id.starts_with("LIN-")),
        "{from_agent:?}"
    );
    assert!(
        from_agent
            .values()
            .all(|s| ["pass", "fail", "skipped"].contains(&s.as_str())),
        "every check runs here: {from_agent:?}"
    );
    assert_eq!(from_agent, from_appliance);
    // The agent wrote nothing where it ran (no data directory, no evidence: the appliance seals).
    assert_eq!(
        std::fs::read_dir(work.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "osiris-data")
            .count(),
        0
    );
}

#[test]
fn the_table_names_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_osiris-agent"))
        .args(["check", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() >= 5, "{text}");
    assert!(text.lines().all(|l| l.contains(" LIN-")), "{text}");
    let missing = Command::new(env!("CARGO_BIN_EXE_osiris-agent"))
        .args(["check"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--once"));
}

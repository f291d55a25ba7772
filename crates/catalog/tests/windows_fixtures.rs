//! Keeps the lab WinRM peer's fixtures honest against the Windows runbooks: every runbook has one,
//! `compliant` passes and `drift` fails the runbook's own expectations, and profiles name real states.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use model::{CheckStatus, Platform, Runbook, evaluate, resolve_params};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/lab/winrm/fixtures")
}

fn read_json_dir(dir: &Path) -> BTreeMap<String, Value> {
    let mut res = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
        res.insert(stem, value);
    }
    res
}

fn windows_runbooks() -> Vec<Runbook> {
    let catalog = catalog::embedded().unwrap();
    catalog
        .runbooks()
        .iter()
        .filter(|rb| {
            rb.applies_to(Platform::WindowsServer) || rb.applies_to(Platform::WindowsWorkstation)
        })
        .cloned()
        .collect()
}

fn status(runbook: &Runbook, output: &Value) -> (CheckStatus, String) {
    let params = resolve_params(&runbook.params, &BTreeMap::new()).unwrap();
    let outcome = evaluate(runbook, &params, &output.to_string());
    (outcome.status, outcome.reason)
}

#[test]
fn every_windows_runbook_has_exactly_one_fixture() {
    let runbooks = windows_runbooks();
    let fixtures = read_json_dir(&fixtures_dir().join("runbooks"));
    assert!(
        runbooks.len() >= 33,
        "only {} Windows runbooks",
        runbooks.len()
    );
    for runbook in &runbooks {
        let fixture = fixtures.get(&runbook.id).unwrap_or_else(|| {
            panic!(
                "{} has no fixtures/runbooks/{}.json",
                runbook.id, runbook.id
            )
        });
        assert_eq!(
            fixture["id"],
            runbook.id.as_str(),
            "id inside {}.json",
            runbook.id
        );
        let provenance = fixture["provenance"].as_str().unwrap_or("");
        assert!(provenance.len() > 20, "{} has no provenance", runbook.id);
    }
    for name in fixtures.keys() {
        assert!(
            runbooks.iter().any(|rb| &rb.id == name),
            "fixture {name}.json names no Windows runbook"
        );
    }
}

#[test]
fn compliant_outputs_pass_and_drift_outputs_fail() {
    let fixtures = read_json_dir(&fixtures_dir().join("runbooks"));
    for runbook in windows_runbooks() {
        let states = &fixtures[&runbook.id]["states"];
        let (compliant, why) = status(&runbook, &states["compliant"]["output"]);
        assert_eq!(
            compliant,
            CheckStatus::Pass,
            "{} compliant: {why}",
            runbook.id
        );
        let (drift, why) = status(&runbook, &states["drift"]["output"]);
        assert_eq!(drift, CheckStatus::Fail, "{} drift: {why}", runbook.id);
    }
}

#[test]
fn every_expected_field_is_assigned_by_the_detect_script() {
    for runbook in windows_runbooks() {
        for expectation in &runbook.expect {
            let top = expectation.field.split('.').next().unwrap();
            let assigned = runbook.detect.body.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with(top) && line[top.len()..].trim_start().starts_with('=')
                    || line.contains(&format!("{{ {top} = "))
                    || line.contains(&format!("; {top} = "))
            });
            assert!(
                assigned,
                "{}: expectation reads `{top}` but {} never assigns it",
                runbook.id, runbook.detect.source
            );
        }
    }
}

#[test]
fn remediate_and_rollback_fixtures_match_the_runbook() {
    let fixtures = read_json_dir(&fixtures_dir().join("runbooks"));
    for runbook in windows_runbooks() {
        let fixture = &fixtures[&runbook.id];
        for (phase, script, to) in [
            ("remediate", runbook.remediate.is_some(), "compliant"),
            ("rollback", runbook.rollback.is_some(), "drift"),
        ] {
            let entry = fixture.get(phase);
            assert_eq!(
                entry.is_some(),
                script,
                "{} `{phase}` fixture vs script",
                runbook.id
            );
            if let Some(entry) = entry {
                assert_eq!(entry["to"], to, "{} `{phase}.to`", runbook.id);
                assert_eq!(
                    entry["output"]["changed"], true,
                    "{} `{phase}` output",
                    runbook.id
                );
            }
        }
    }
}

#[test]
fn profiles_name_existing_runbooks_and_states() {
    let runbooks = windows_runbooks();
    let fixtures = read_json_dir(&fixtures_dir().join("runbooks"));
    let profiles = read_json_dir(&fixtures_dir().join("profiles"));
    for name in [
        "server-drift",
        "server-clean",
        "workstation-drift",
        "workstation-clean",
    ] {
        assert!(profiles.contains_key(name), "profile {name} is missing");
    }
    for (name, profile) in &profiles {
        let platform: Platform = profile["platform"].as_str().unwrap().parse().unwrap();
        for (id, state) in profile["states"].as_object().unwrap() {
            let runbook = runbooks
                .iter()
                .find(|rb| &rb.id == id)
                .unwrap_or_else(|| panic!("profile {name} names unknown runbook {id}"));
            assert!(
                runbook.applies_to(platform),
                "profile {name}: {id} is not for {platform}"
            );
            let state = state.as_str().unwrap();
            assert!(
                fixtures[id]["states"].get(state).is_some(),
                "profile {name}: {id} has no state `{state}`"
            );
        }
        for id in profile["sticky"].as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert!(
                runbooks
                    .iter()
                    .any(|rb| rb.id == id && rb.remediate.is_some()),
                "profile {name}: sticky {id} is no remediable runbook"
            );
        }
    }
}

#[test]
fn drift_profiles_exercise_healing_and_escalation() {
    let runbooks = windows_runbooks();
    let profiles = read_json_dir(&fixtures_dir().join("profiles"));
    let drifted = |name: &str| -> Vec<Runbook> {
        let states = profiles[name]["states"].as_object().unwrap();
        runbooks
            .iter()
            .filter(|rb| states.get(&rb.id).and_then(Value::as_str) == Some("drift"))
            .cloned()
            .collect()
    };
    let server = drifted("server-drift");
    let healable: Vec<&str> = server
        .iter()
        .filter(|rb| rb.auto_heal)
        .map(|rb| rb.id.as_str())
        .collect();
    assert!(healable.len() >= 5, "server-drift heals only {healable:?}");
    assert!(healable.contains(&"WIN-FW-001") && healable.contains(&"WIN-SMB-002"));
    assert!(
        server.iter().any(|rb| !rb.auto_heal),
        "server-drift escalates nothing"
    );
    assert!(
        !profiles["server-drift"]["sticky"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let workstation: Vec<String> = drifted("workstation-drift")
        .iter()
        .map(|rb| rb.id.clone())
        .collect();
    assert_eq!(
        workstation,
        ["WIN-WSDEF-001", "WIN-WSFW-001", "WIN-WSLOCK-001"]
    );
    for clean in ["server-clean", "workstation-clean"] {
        assert!(drifted(clean).is_empty(), "{clean} has drift");
    }
}

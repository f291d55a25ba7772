//! Windows hosts over WinRM, end to end (issue 4's acceptance): bring up the lab with its WinRM
//! peer (real HTTPS, NTLM, WS-Man; host state from fixtures), scan the scripted drift, heal it,
//! assert from the peer's log exactly which remediation scripts were sent, re-scan, and verify the
//! evidence. Nothing here runs PowerShell: what is proven is the protocol, the scripts sent and the
//! parsing of the answers (see docs/WINDOWS-PROTOCOL.md). Needs root (namespaces).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::path::Path;

use base64::Engine as _;

use common::{LAB_TOOLS, Lab, osiris, result, scan_results, text, verified_kit};

/// Every request the lab's WinRM peer logged, decoded scripts included.
fn peer_log(lab: &Lab) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&lab.env["LAB_WIN_LOG"])
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn status(results: &[serde_json::Value], target: &str, check: &str) -> String {
    result(results, target, check)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn profile(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../vm-tests/lab/winrm/fixtures/profiles/{name}.json"
    ));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The checks a profile puts in the `drift` state.
fn drifted(profile: &serde_json::Value) -> Vec<String> {
    profile["states"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| *s == "drift")
        .map(|(id, _)| id.clone())
        .collect()
}

/// The `$OsirisInput` data a logged script carried.
fn input_of(script: &str) -> serde_json::Value {
    let start = script.find("FromBase64String('").unwrap() + "FromBase64String('".len();
    let end = start + script[start..].find('\'').unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&script[start..end])
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn windows_drift_is_found_healed_verified_and_proven() {
    if !test_support::require_root(
        "windows_drift_is_found_healed_verified_and_proven",
        LAB_TOOLS,
    ) {
        return;
    }
    let catalog = catalog::embedded().unwrap();
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "2"),
            ("LAB_DC", "0"),
        ],
    );
    let hosts: Vec<&str> = lab.env["LAB_WIN_HOSTS"].split_whitespace().collect();
    assert_eq!(hosts.len(), 2);

    // A hostile parameter value goes into the site configuration: it must reach the host only as data.
    let hostile = "x'; Remove-Item -Recurse C:\\ ; $(whoami) #";
    let config = lab.dir.join("site.toml");
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    let (hostile_check, hostile_param) = catalog
        .for_platform(model::Platform::WindowsServer)
        .find_map(|rb| {
            rb.params
                .iter()
                .find(|p| matches!(p.ty, model::ParamType::String { .. }))
                .map(|p| (rb.id.clone(), p.name.clone()))
        })
        .expect("a Windows runbook with a string parameter");
    text_config.push_str(&format!(
        "\n[checks.{hostile_check}]\n{hostile_param} = {hostile:?}\n"
    ));
    std::fs::write(&config, text_config).unwrap();
    let out = osiris(
        work.path(),
        &["config", "validate", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Scan: the server shows exactly its profile's drift; the workstation its own.
    let server = profile("server-drift");
    let workstation = profile("workstation-drift");
    let results = scan_results(work.path(), &config);
    for (name, platform, profile) in [
        ("win1", model::Platform::WindowsServer, &server),
        ("win2", model::Platform::WindowsWorkstation, &workstation),
    ] {
        let drift = drifted(profile);
        let checks: Vec<_> = catalog.for_platform(platform).collect();
        assert!(!checks.is_empty());
        for runbook in checks {
            let got = status(&results, name, &runbook.id);
            if drift.contains(&runbook.id) {
                assert_eq!(got, "fail", "{name} {}", runbook.id);
            } else {
                assert!(
                    got == "pass" || got == "skipped",
                    "{name} {}: {got}: {results:#?}",
                    runbook.id
                );
            }
        }
    }
    let scripts: Vec<String> = peer_log(&lab)
        .iter()
        .filter_map(|e| e["script"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !scripts.iter().any(|s| s.contains(hostile)),
        "the hostile value reached script text"
    );
    assert!(
        scripts.iter().any(|s| input_of(s)["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["params"][&hostile_param] == hostile)),
        "the hostile value should travel as data"
    );
    // One batch per host and scan: one detect script for each Windows host.
    let detects = peer_log(&lab)
        .iter()
        .filter(|e| e["phase"] == "detect")
        .count();
    assert_eq!(detects, 2);

    // Heal: every auto-healable drift is fixed and verified; the sticky one is rolled back and escalated.
    let out = osiris(work.path(), &["heal", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let sticky: Vec<String> = server["sticky"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let fixed: Vec<String> = drifted(&server)
        .into_iter()
        .filter(|id| {
            report.lines().any(|l| {
                l.trim_start().starts_with("FIXED") && l.contains("win1") && l.contains(id.as_str())
            })
        })
        .collect();
    assert!(
        fixed.len() >= 3,
        "expected several fixes on win1:\n{report}"
    );
    for id in &sticky {
        assert!(
            report
                .lines()
                .any(|l| l.trim_start().starts_with("NOT FIXED") && l.contains(id.as_str())),
            "{id}:\n{report}"
        );
    }
    // Exactly the runbooks' remediation scripts were sent, each with its body verbatim.
    let log = peer_log(&lab);
    let remediations: Vec<&serde_json::Value> =
        log.iter().filter(|e| e["phase"] == "remediate").collect();
    for id in fixed.iter().chain(&sticky) {
        let body = &catalog.get(id).unwrap().remediate.as_ref().unwrap().body;
        let sent = remediations
            .iter()
            .find(|e| e["check_ids"][0] == id.as_str())
            .unwrap_or_else(|| panic!("no remediation sent for {id}"));
        assert!(
            sent["script"].as_str().unwrap().contains(body.as_str()),
            "{id}: body not sent verbatim"
        );
        assert_eq!(sent["host"], hosts[0]);
    }
    let expected: std::collections::BTreeSet<_> = fixed.iter().chain(&sticky).cloned().collect();
    // Nothing else was remediated on win1: drift that needs a person got no script.
    let sent: std::collections::BTreeSet<_> = remediations
        .iter()
        .filter(|e| e["host"] == hosts[0])
        .map(|e| e["check_ids"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, expected);
    for id in &sticky {
        assert!(
            log.iter()
                .any(|e| e["phase"] == "rollback" && e["check_ids"][0] == id.as_str()),
            "{id} not rolled back"
        );
    }

    // Re-scan: the fixes hold; the sticky drift is still there.
    let results = scan_results(work.path(), &config);
    for id in &fixed {
        assert_eq!(status(&results, "win1", id), "pass", "{id}");
    }
    for id in &sticky {
        assert_eq!(status(&results, "win1", id), "fail", "{id}");
    }

    // The evidence verifies and holds before/after for a fix, and win2 as a workstation.
    let bundles = verified_kit(work.path(), &lab.dir.join("osiris-data"), "kit");
    let heal = bundles
        .iter()
        .find(|b| {
            b["kind"] == "heal"
                && b["body"]["target"]["name"] == "win1"
                && b["body"]["check"] == fixed[0].as_str()
        })
        .unwrap();
    assert_eq!(heal["body"]["result"], "fixed");
    assert_eq!(heal["body"]["before"]["status"], "fail");
    assert_eq!(heal["body"]["after"]["status"], "pass");
    assert!(bundles.iter().any(|b| b["kind"] == "scan"
        && b["body"]["target"]["name"] == "win2"
        && b["body"]["target"]["device_type"] == "workstation"));
    assert!(bundles.iter().any(|b| b["kind"] == "escalation"));
}

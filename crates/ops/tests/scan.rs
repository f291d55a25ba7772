//! Scanning from configuration to sealed evidence, without the lab: this machine through the
//! local transport, and targets nobody answers for (an error for every check, never a pass).
//! Every run writes to a real store in a temp dir, and the exported kit verifies offline.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{capture_logs, load, logs, of_kind, runtime, secret_file, statuses, verified_kit};

#[test]
fn this_machine_is_scanned_sealed_and_a_dry_run_heal_changes_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = load(
        dir.path(),
        "site = \"clinic\"\n\n[[target]]\nname = \"appliance\"\nplatform = \"linux\"\ntransport = \"local\"\n",
    )
    .unwrap();
    let catalog = Arc::new(common::catalog());
    let n_linux = catalog.for_platform(model::Platform::Linux).count();
    let rules = rules::embedded(catalog.runbooks()).unwrap();
    runtime().block_on(async {
        let store = ops::setup::open_store(&data_dir, &config.site)
            .await
            .unwrap();
        let scanned = ops::scan::scan_all(&config, &catalog, &data_dir)
            .await
            .unwrap();
        assert_eq!(scanned.len(), 1);
        let reports: Vec<_> = scanned.iter().map(|s| s.report.clone()).collect();
        let sealed = ops::scan::record_scans(&store, &config, &catalog, &reports)
            .await
            .unwrap();
        assert_eq!(sealed, vec![("appliance".to_owned(), 0)]);

        // Dry run: a plan per failed check, no bundle, no history.
        let n_failed = reports[0]
            .results
            .iter()
            .filter(|r| r.outcome.status == model::CheckStatus::Fail)
            .count();
        let options = ops::heal::HealOptions {
            policy: ops::heal::policy(&config.healing),
            in_maintenance: &|_| false,
            dry_run: true,
            l2: None,
        };
        let healed = ops::heal::heal_scanned(&store, &config, &catalog, &rules, scanned, &options)
            .await
            .unwrap();
        assert_eq!(healed.len(), n_failed);
        assert!(healed.iter().all(|h| h.seq.is_none()), "{healed:?}");
        assert!(
            healed.iter().all(|h| h.record.remediation.is_none()),
            "a dry run ran a remediation: {healed:?}"
        );
        assert!(store.heal_attempts_since(0).await.unwrap().is_empty());
        assert_eq!(store.size(), 1);

        let bundles = verified_kit(&store, &dir.path().join("kit")).await;
        assert_eq!(bundles.len(), 1);
        let scan = &bundles[0];
        assert_eq!(scan["kind"], "scan");
        assert_eq!(scan["site"], "clinic");
        assert_eq!(scan["body"]["target"]["name"], "appliance");
        assert_eq!(scan["body"]["target"]["platform"], "linux");
        // Every shipped Linux check, as the scan found it; none errors on this machine.
        let sealed_statuses = statuses(scan);
        let found: BTreeMap<String, String> = reports[0]
            .results
            .iter()
            .map(|r| (r.runbook_id.clone(), r.outcome.status.as_str().to_owned()))
            .collect();
        assert_eq!(sealed_statuses, found);
        assert_eq!(sealed_statuses.len(), n_linux);
        assert!(
            !sealed_statuses.values().any(|s| s == "error"),
            "{sealed_statuses:?}"
        );
        let summary = &scan["body"]["summary"];
        assert_eq!(summary["total"], n_linux as u64);
        assert_eq!(summary["fail"], n_failed as u64);
        assert_eq!(summary["error"], 0);
        // Each result names its framework controls, so an auditor can map it.
        for result in scan["body"]["results"].as_array().unwrap() {
            assert!(
                !result["controls"].as_array().unwrap().is_empty(),
                "{result}"
            );
        }
        store.close().await;
    });
}

#[test]
fn targets_nobody_answers_for_are_an_error_for_every_check_and_nothing_is_healed() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Nothing listens on port 1: the connection is refused at once.
    let key = secret_file(
        &dir.path().join("key"),
        "not used: nothing answers\n",
        0o600,
    );
    let password = "Sw0rdfish-from-the-password-file";
    let password_file = secret_file(&dir.path().join("pw"), &format!("{password}\n"), 0o600);
    let config = load(
        dir.path(),
        &format!(
            r#"site = "clinic"

[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "alice"
key_file = {key:?}

[[target]]
name = "frontdesk"
platform = "windows-server"
transport = "winrm"
address = "127.0.0.1"
port = 1
https = false
user = "administrator"
password_file = {password_file:?}
"#
        ),
    )
    .unwrap();
    let catalog = Arc::new(common::catalog());
    let rules = rules::embedded(catalog.runbooks()).unwrap();
    runtime().block_on(async {
        let store = ops::setup::open_store(&data_dir, &config.site)
            .await
            .unwrap();
        let scanned = ops::scan::scan_all(&config, &catalog, &data_dir)
            .await
            .unwrap();
        let reports: Vec<_> = scanned.iter().map(|s| s.report.clone()).collect();
        ops::scan::record_scans(&store, &config, &catalog, &reports)
            .await
            .unwrap();
        let options = ops::heal::HealOptions {
            policy: ops::heal::policy(&config.healing),
            in_maintenance: &|_| false,
            dry_run: false,
            l2: None,
        };
        let healed = ops::heal::heal_scanned(&store, &config, &catalog, &rules, scanned, &options)
            .await
            .unwrap();
        assert!(healed.is_empty(), "an error is not a finding: {healed:?}");

        let bundles = verified_kit(&store, &dir.path().join("kit")).await;
        let scans = of_kind(&bundles, "scan");
        assert_eq!(scans.len(), 2, "{bundles:#?}");
        assert!(of_kind(&bundles, "heal").is_empty());
        for (scan, (name, platform)) in scans
            .iter()
            .zip([("fileserver", "linux"), ("frontdesk", "windows-server")])
        {
            assert_eq!(scan["body"]["target"]["name"], name);
            let n_checks = catalog.for_platform(platform.parse().unwrap()).count();
            assert!(n_checks > 0);
            let summary = &scan["body"]["summary"];
            assert_eq!(summary["total"], n_checks as u64, "{name}");
            assert_eq!(summary["error"], n_checks as u64, "{name}");
            assert_eq!(summary["pass"], 0, "{name}");
            for result in scan["body"]["results"].as_array().unwrap() {
                assert_eq!(result["status"], "error", "{result}");
                let reason = result["reason"].as_str().unwrap();
                assert!(reason.starts_with("not checked: "), "{reason}");
                assert!(reason.contains("127.0.0.1"), "{reason}");
            }
        }
        // The password was read (the WinRM transport needs it up front) but is nowhere to be seen.
        let logged = logs();
        assert!(logged.contains("Cannot open session."), "{logged}");
        assert!(logged.contains("frontdesk"), "{logged}");
        assert!(!logged.contains(password), "{logged}");
        let kit_text = std::fs::read_to_string(dir.path().join("kit/bundles.jsonl")).unwrap();
        assert!(!kit_text.contains(password));
        store.close().await;
    });
}

//! Scans this machine with the shipped Linux catalogue and checks every result is well-formed.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use model::{CheckStatus, DeviceType, Platform, Target};

#[test]
fn every_shipped_linux_check_runs_here_and_never_errors() {
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog.for_platform(Platform::Linux).collect();
    let target = Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    };
    let (report, diagnostics) = scan::scan_target(
        &target,
        &scan_local::LocalTransport,
        &runbooks,
        &scan::ScriptContext {
            overrides: &Default::default(),
            powershell_prelude: "",
        },
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(report.results.len(), runbooks.len());
    for result in &report.results {
        // A detect script that errors on a stock Debian machine is a bug in the script.
        assert_ne!(
            result.outcome.status,
            CheckStatus::Error,
            "{}: {}",
            result.runbook_id,
            result.outcome.reason
        );
        if result.outcome.status == CheckStatus::Fail {
            assert!(
                !result.outcome.reason.is_empty(),
                "{} failed without a reason",
                result.runbook_id
            );
        }
    }
    // The summary a user reads counts exactly the results listed above.
    let count = |status: CheckStatus| {
        report
            .results
            .iter()
            .filter(|r| r.outcome.status == status)
            .count()
    };
    let summary = report.summary();
    assert_eq!(summary.total, runbooks.len());
    assert_eq!(summary.error, 0);
    assert_eq!(
        (summary.pass, summary.fail, summary.skipped),
        (
            count(CheckStatus::Pass),
            count(CheckStatus::Fail),
            count(CheckStatus::Skipped)
        )
    );
    // Every shipped check ran exactly once.
    let mut ran: Vec<&str> = report
        .results
        .iter()
        .map(|r| r.runbook_id.as_str())
        .collect();
    let mut shipped: Vec<&str> = runbooks.iter().map(|rb| rb.id.as_str()).collect();
    ran.sort_unstable();
    shipped.sort_unstable();
    assert_eq!(ran, shipped);
}

#[test]
fn parameter_override_changes_the_verdict() {
    let catalog = catalog::embedded().unwrap();
    let disk = catalog.get("LIN-DISK-001").unwrap();
    let target = Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    };
    let run = |threshold: i64| {
        let mut overrides = scan::ParamOverrides::new();
        overrides.entry(disk.id.clone()).or_default().insert(
            "threshold_percent".to_owned(),
            model::ParamValue::Integer(threshold),
        );
        let (report, _) = scan::scan_target(
            &target,
            &scan_local::LocalTransport,
            &[disk],
            &scan::ScriptContext {
                overrides: &overrides,
                powershell_prelude: "",
            },
        );
        report.results[0].outcome.clone()
    };
    // 50 is the lowest allowed threshold; 99 the highest. Usage between them on the root file
    // system is what this machine shows, so compare against the observed maximum.
    let observed = run(99).observed["max_used_percent"].as_i64().unwrap();
    let low = run(50);
    assert_eq!(low.status == CheckStatus::Fail, observed > 50, "{low:?}");
    let out_of_range = run(5);
    assert_eq!(out_of_range.status, CheckStatus::Error);
    assert_eq!(
        out_of_range.reason,
        "configuration: parameter `threshold_percent`: 5 is below the minimum 50"
    );
}

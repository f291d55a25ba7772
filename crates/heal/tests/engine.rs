//! The heal engine end to end on this machine with real scripts that only touch a temporary
//! directory: fixed, not verified (rolled back), failed remediation, escalation, dry run, cool-down.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;
use std::path::Path;

use heal::{HealContext, HealResult};
use model::{DeviceType, ParamValue, Platform, Target};
use rules::Policy;

fn runbook(id: &str, file: &str, auto_heal: bool, rollback: bool) -> String {
    let mut text = format!(
        r#"id = "{id}"
title = "{id}"
description = "test"
platforms = ["linux"]
severity = "high"
auto_heal = {auto_heal}
timeout_secs = 5
[controls]
hipaa = ["164.312(b)"]
[params.dir]
type = "path"
default = "/nonexistent"
[detect]
script = "scripts/{file}-detect.sh"
[[expect]]
field = "ok"
op = "eq"
value = true
[remediate]
script = "scripts/{file}-fix.sh"
"#
    );
    if rollback {
        text.push_str(&format!(
            "[rollback]\nscript = \"scripts/{file}-undo.sh\"\n"
        ));
    }
    text
}

const RULES: &str = r#"
[[rule]]
id = "R-GOOD"
check = "T-GOOD-001"
cooldown_secs = 600
[[rule]]
id = "R-NOOP"
check = "T-NOOP-001"
[[rule]]
id = "R-FAILS"
check = "T-FAILS-001"
[[rule]]
id = "R-MANUAL"
check = "T-MANUAL-001"
"#;

fn catalog() -> catalog::Catalog {
    let files = [
        (
            "T-GOOD-001.toml",
            runbook("T-GOOD-001", "good", true, false),
        ),
        (
            "scripts/good-detect.sh",
            r#"[ -e "$OSIRIS_PARAM_DIR/good" ] && echo '{"ok":true}' || echo '{"ok":false}'"#
                .to_owned(),
        ),
        (
            "scripts/good-fix.sh",
            r#"touch "$OSIRIS_PARAM_DIR/good""#.to_owned(),
        ),
        ("T-NOOP-001.toml", runbook("T-NOOP-001", "noop", true, true)),
        (
            "scripts/noop-detect.sh",
            r#"[ -e "$OSIRIS_PARAM_DIR/never" ] && echo '{"ok":true}' || echo '{"ok":false}'"#
                .to_owned(),
        ),
        (
            "scripts/noop-fix.sh",
            r#"touch "$OSIRIS_PARAM_DIR/side-effect""#.to_owned(),
        ),
        (
            "scripts/noop-undo.sh",
            r#"rm "$OSIRIS_PARAM_DIR/side-effect""#.to_owned(),
        ),
        (
            "T-FAILS-001.toml",
            runbook("T-FAILS-001", "fails", true, false),
        ),
        (
            "scripts/fails-detect.sh",
            r#"echo '{"ok":false}'"#.to_owned(),
        ),
        (
            "scripts/fails-fix.sh",
            "echo 'package manager is locked' >&2; exit 3".to_owned(),
        ),
        (
            "T-MANUAL-001.toml",
            runbook("T-MANUAL-001", "manual", false, false),
        ),
        (
            "scripts/manual-detect.sh",
            r#"echo '{"ok":false}'"#.to_owned(),
        ),
        (
            "scripts/manual-fix.sh",
            r#"touch "$OSIRIS_PARAM_DIR/manual-ran""#.to_owned(),
        ),
    ];
    let sources: Vec<_> = files
        .iter()
        .map(|(path, text)| catalog::SourceFile { path, text })
        .collect();
    catalog::load(&sources).unwrap()
}

const POLICY: Policy = Policy {
    paused: false,
    in_maintenance: false,
    max_per_hour: 10,
    flap_max: 3,
    flap_window_secs: 3600,
    breaker_failures: 5,
    breaker_cooldown_secs: 900,
};

fn overrides(dir: &Path) -> scan::ParamOverrides {
    let mut overrides = scan::ParamOverrides::new();
    for id in ["T-GOOD-001", "T-NOOP-001", "T-FAILS-001", "T-MANUAL-001"] {
        let params = BTreeMap::from([(
            "dir".to_owned(),
            ParamValue::Text(dir.display().to_string()),
        )]);
        overrides.insert(id.to_owned(), params);
    }
    overrides
}

fn results(records: &[heal::HealRecord]) -> Vec<(String, HealResult)> {
    records
        .iter()
        .map(|r| (r.check.clone(), r.result.clone()))
        .collect()
}

#[test]
fn heal_fixes_verifies_rolls_back_and_escalates() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog();
    let rules = rules::parse("rules.toml", RULES, catalog.runbooks()).unwrap();
    let overrides = overrides(dir.path());
    let target = Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    };
    let runbooks: Vec<_> = catalog.for_platform(Platform::Linux).collect();
    let (report, _) = scan::scan_target(
        &target,
        &scan_local::LocalTransport,
        &runbooks,
        &scan::ScriptContext {
            overrides: &overrides,
            powershell_prelude: "",
        },
    );
    let ctx = HealContext {
        catalog: &catalog,
        rules: &rules,
        policy: POLICY,
        overrides: &overrides,
        dry_run: true,
        now: 10_000,
    };

    // Dry run: the plan, and nothing changes.
    let mut history = Vec::new();
    let (records, _) = heal::heal_target(
        &target,
        &scan_local::LocalTransport,
        &report,
        &mut history,
        &ctx,
    );
    assert_eq!(
        results(&records)[0],
        (
            "T-FAILS-001".to_owned(),
            HealResult::Planned {
                runbook: "T-FAILS-001".to_owned()
            }
        )
    );
    assert!(history.is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "dry run changed something"
    );

    // For real.
    let ctx = HealContext {
        dry_run: false,
        ..ctx
    };
    let (records, diagnostics) = heal::heal_target(
        &target,
        &scan_local::LocalTransport,
        &report,
        &mut history,
        &ctx,
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let by_check: BTreeMap<_, _> = records.iter().map(|r| (r.check.as_str(), r)).collect();

    let good = by_check["T-GOOD-001"];
    assert_eq!(good.result, HealResult::Fixed);
    assert_eq!(
        good.after.as_ref().unwrap().status,
        model::CheckStatus::Pass
    );
    assert!(dir.path().join("good").exists());

    let noop = by_check["T-NOOP-001"];
    assert_eq!(
        noop.result,
        HealResult::NotFixed {
            rolled_back: true,
            reason: "after the fix the check is fail: `ok` is false".to_owned()
        }
    );
    assert!(
        !dir.path().join("side-effect").exists(),
        "rollback did not undo the remediation"
    );

    let fails = by_check["T-FAILS-001"];
    assert_eq!(
        fails.result,
        HealResult::NotFixed {
            rolled_back: false,
            reason: "remediation failed with exit code 3: package manager is locked".to_owned()
        }
    );

    let manual = by_check["T-MANUAL-001"];
    assert!(
        matches!(&manual.result, HealResult::Escalated { reason } if reason.contains("a person must approve")),
        "{:?}",
        manual.result
    );
    assert!(
        !dir.path().join("manual-ran").exists(),
        "an escalated runbook must not run"
    );

    // Three attempts recorded; a second run right away holds the same rules in cool-down.
    assert_eq!(history.len(), 3);
    let (records, _) = heal::heal_target(
        &target,
        &scan_local::LocalTransport,
        &report,
        &mut history,
        &ctx,
    );
    for record in records.iter().filter(|r| r.check != "T-MANUAL-001") {
        assert!(
            matches!(&record.result, HealResult::Held { reason } if reason.starts_with("cooling down: tried on this target recently, next attempt in ")),
            "{record:?}"
        );
    }
}

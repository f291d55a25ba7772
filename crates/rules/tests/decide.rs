//! Data-driven tests of the L1 decision: one fixture of rules, runbooks and history; each case a finding.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::Duration;

use expect_test::{Expect, expect};
use model::{CheckStatus, Platform, Runbook, Script, Severity, Shell};
use rules::{Attempt, AttemptResult, Decision, Finding, Policy, RuleSet, RunbookFacts};

const RULES: &str = r#"
[[rule]]
id = "R-SSH"
check = "T-SSH-001"
priority = 5
cooldown_secs = 600
[[rule.when]]
field = "permit_root_login"
op = "eq"
value = "yes"

[[rule]]
id = "R-UID0"
check = "T-UID-001"
action = "escalate"
priority = 1

[[rule]]
id = "R-MANUAL"
check = "T-MANUAL-001"
"#;

fn runbook(id: &str, auto_heal: bool) -> Runbook {
    let script = Script {
        shell: Shell::Sh,
        body: "true".to_owned(),
        source: "x.sh".to_owned(),
    };
    Runbook {
        id: id.to_owned(),
        title: id.to_owned(),
        description: String::new(),
        platforms: vec![Platform::Linux],
        severity: Severity::High,
        controls: Vec::new(),
        params: Vec::new(),
        detect: script.clone(),
        expect: Vec::new(),
        remediate: Some(script),
        verify: None,
        rollback: None,
        auto_heal,
        timeout: Duration::from_secs(5),
        interval: None,
    }
}

fn fixture() -> (Vec<Runbook>, RuleSet) {
    let runbooks = vec![
        runbook("T-SSH-001", true),
        runbook("T-UID-001", false),
        runbook("T-MANUAL-001", false),
    ];
    let rules = rules::parse("test.toml", RULES, &runbooks).unwrap();
    (runbooks, rules)
}

const POLICY: Policy = Policy {
    paused: false,
    in_maintenance: false,
    max_per_hour: 3,
    flap_max: 2,
    flap_window_secs: 3600,
    breaker_failures: 2,
    breaker_cooldown_secs: 900,
};

const NOW: i64 = 1_000_000;

fn attempt(rule: &str, target: &str, ago: i64, result: AttemptResult) -> Attempt {
    Attempt {
        rule: rule.to_owned(),
        target: target.to_owned(),
        at: NOW - ago,
        result,
    }
}

#[track_caller]
fn check(
    check_id: &str,
    observed: serde_json::Value,
    history: &[Attempt],
    policy: Policy,
    expect: Expect,
) {
    let (runbooks, rules) = fixture();
    let facts = |id: &str| {
        runbooks
            .iter()
            .find(|rb| rb.id == id)
            .map(|rb| RunbookFacts {
                auto_heal: rb.auto_heal,
            })
    };
    let finding = Finding {
        target: "web1",
        check: check_id,
        status: CheckStatus::Fail,
        observed: &observed,
        declarative: false,
    };
    let decision = rules::decide(&finding, &rules, &facts, history, &policy, NOW);
    expect.assert_eq(&format!("{decision:?}"));
}

fn ssh_yes() -> serde_json::Value {
    serde_json::json!({"permit_root_login": "yes"})
}

#[test]
fn remediates_a_matching_failure() {
    check(
        "T-SSH-001",
        ssh_yes(),
        &[],
        POLICY,
        expect![[r#"Remediate { rule: "R-SSH", runbook: "T-SSH-001" }"#]],
    );
}

#[test]
fn conditions_must_hold() {
    let observed = serde_json::json!({"permit_root_login": "without-password-typo"});
    check("T-SSH-001", observed, &[], POLICY, expect!["NoRule"]);
    check("T-OTHER-001", ssh_yes(), &[], POLICY, expect!["NoRule"]);
}

#[test]
fn passing_checks_need_nothing() {
    let (runbooks, rules) = fixture();
    let facts = |id: &str| {
        runbooks
            .iter()
            .find(|rb| rb.id == id)
            .map(|rb| RunbookFacts {
                auto_heal: rb.auto_heal,
            })
    };
    let observed = ssh_yes();
    for status in [CheckStatus::Pass, CheckStatus::Error, CheckStatus::Skipped] {
        let finding = Finding {
            target: "web1",
            check: "T-SSH-001",
            status,
            observed: &observed,
            declarative: false,
        };
        assert_eq!(
            rules::decide(&finding, &rules, &facts, &[], &POLICY, NOW),
            Decision::NotFailing
        );
    }
}

#[test]
fn escalate_rules_and_manual_runbooks_go_to_a_person() {
    check(
        "T-UID-001",
        serde_json::json!({}),
        &[],
        POLICY,
        expect![[
            r#"Escalate { rule: Some("R-UID0"), reason: "this finding always needs a person" }"#
        ]],
    );
    check(
        "T-MANUAL-001",
        serde_json::json!({}),
        &[],
        POLICY,
        expect![[
            r#"Escalate { rule: Some("R-MANUAL"), reason: "automatic healing is off for T-MANUAL-001: a person must approve the fix" }"#
        ]],
    );
}

#[test]
fn pause_and_maintenance_hold_remediation() {
    check(
        "T-SSH-001",
        ssh_yes(),
        &[],
        Policy {
            paused: true,
            ..POLICY
        },
        expect![[r#"Hold { rule: "R-SSH", reason: Paused }"#]],
    );
    check(
        "T-SSH-001",
        ssh_yes(),
        &[],
        Policy {
            in_maintenance: true,
            ..POLICY
        },
        expect![[r#"Hold { rule: "R-SSH", reason: Maintenance }"#]],
    );
}

#[test]
fn cooldown_is_per_rule_and_target() {
    let recent = [attempt("R-SSH", "web1", 60, AttemptResult::Failed)];
    check(
        "T-SSH-001",
        ssh_yes(),
        &recent,
        POLICY,
        expect![[r#"Hold { rule: "R-SSH", reason: Cooldown { until: 1000540 } }"#]],
    );
    let other_host = [attempt("R-SSH", "web2", 60, AttemptResult::Failed)];
    check(
        "T-SSH-001",
        ssh_yes(),
        &other_host,
        POLICY,
        expect![[r#"Remediate { rule: "R-SSH", runbook: "T-SSH-001" }"#]],
    );
    let long_ago = [attempt("R-SSH", "web1", 601, AttemptResult::Failed)];
    check(
        "T-SSH-001",
        ssh_yes(),
        &long_ago,
        POLICY,
        expect![[r#"Remediate { rule: "R-SSH", runbook: "T-SSH-001" }"#]],
    );
}

#[test]
fn flapping_escalates() {
    let history = [
        attempt("R-SSH", "web1", 700, AttemptResult::Verified),
        attempt("R-SSH", "web1", 1900, AttemptResult::Verified),
    ];
    check(
        "T-SSH-001",
        ssh_yes(),
        &history,
        POLICY,
        expect![[
            r#"Escalate { rule: Some("R-SSH"), reason: "flapping: fixed 2 times in the last 60 minutes and failing again; something keeps undoing the fix" }"#
        ]],
    );
}

#[test]
fn breaker_opens_after_consecutive_failures_and_closes_later() {
    let failures = [
        attempt("R-X", "a", 700, AttemptResult::Failed),
        attempt("R-Y", "b", 800, AttemptResult::Failed),
    ];
    check(
        "T-SSH-001",
        ssh_yes(),
        &failures,
        POLICY,
        expect![[r#"Hold { rule: "R-SSH", reason: BreakerOpen { until: 1000200 } }"#]],
    );
    let old = [
        attempt("R-X", "a", 1000, AttemptResult::Failed),
        attempt("R-Y", "b", 1100, AttemptResult::Failed),
    ];
    check(
        "T-SSH-001",
        ssh_yes(),
        &old,
        POLICY,
        expect![[r#"Remediate { rule: "R-SSH", runbook: "T-SSH-001" }"#]],
    );
    let mixed = [
        attempt("R-X", "a", 700, AttemptResult::Verified),
        attempt("R-Y", "b", 800, AttemptResult::Failed),
    ];
    check(
        "T-SSH-001",
        ssh_yes(),
        &mixed,
        POLICY,
        expect![[r#"Remediate { rule: "R-SSH", runbook: "T-SSH-001" }"#]],
    );
}

#[test]
fn site_rate_limit() {
    let busy = [
        attempt("R-A", "a", 100, AttemptResult::Verified),
        attempt("R-B", "b", 200, AttemptResult::Verified),
        attempt("R-C", "c", 300, AttemptResult::Verified),
    ];
    check(
        "T-SSH-001",
        ssh_yes(),
        &busy,
        POLICY,
        expect![[r#"Hold { rule: "R-SSH", reason: RateLimited { max_per_hour: 3 } }"#]],
    );
}

#[test]
fn declarative_targets_are_reported_not_edited() {
    let (runbooks, rules) = fixture();
    let facts = |id: &str| {
        runbooks
            .iter()
            .find(|rb| rb.id == id)
            .map(|rb| RunbookFacts {
                auto_heal: rb.auto_heal,
            })
    };
    let observed = ssh_yes();
    let finding = Finding {
        target: "nix1",
        check: "T-SSH-001",
        status: CheckStatus::Fail,
        observed: &observed,
        declarative: true,
    };
    expect![[r#"Escalate { rule: Some("R-SSH"), reason: "configuration change needed: this target is configured declaratively (NixOS), osiris does not edit it" }"#]]
        .assert_eq(&format!("{:?}", rules::decide(&finding, &rules, &facts, &[], &POLICY, NOW)));
}

#[test]
fn bad_rule_files_are_rejected_with_every_problem() {
    let (runbooks, _) = fixture();
    let text = r#"
[[rule]]
id = "x"
check = "T-NOPE-001"
[[rule]]
id = "R-BAD-ACTION"
check = "T-SSH-001"
action = "reboot"
[[rule]]
id = "R-ESC"
check = "T-SSH-001"
action = "escalate"
runbook = "T-SSH-001"
"#;
    expect![[r#"
        bad.toml: rule `x`: id must be 3-64 letters, digits, `-` or `_`
        bad.toml: rule `x`: check `T-NOPE-001` is not in the catalogue
        bad.toml: rule `x`: runbook `T-NOPE-001` is not in the catalogue
        bad.toml: rule `R-BAD-ACTION`: unknown action `reboot` (known: remediate, escalate)
        bad.toml: rule `R-ESC`: an escalate rule takes no runbook"#]]
    .assert_eq(
        &rules::parse("bad.toml", text, &runbooks)
            .unwrap_err()
            .to_string(),
    );
}

//! Per-control figures from fixture logs: what a report and `osiris status` would say.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::fmt::Write as _;

use expect_test::{Expect, expect};
use serde_json::json;

use compliance::{ControlStatus, Ledger, Period, assess};
use model::Framework;

/// Fixture lines:
/// `TIME scan TARGET CHECK=status …`, `TIME attest FRAMEWORK:CONTROL BY EXPIRES`,
/// `TIME except CHECK TARGET EXPIRES`; evaluated for `framework` over November 2026 as of `as_of`.
#[track_caller]
fn check(framework: Framework, as_of: Option<&str>, fixture: &str, expect: Expect) {
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger_of(as_of, fixture);
    let framework = frameworks.get(framework).unwrap();
    let assessment = assess(framework, &catalog, &ledger);
    let f = assessment.figures;
    let mut out = format!(
        "{} of {} applicable met ({:?}‰): {} failing, {} partly checked, {} need attestation, {} no evidence, {} could not check, {} not applicable\n",
        f.met,
        f.applicable(),
        f.permille(),
        f.failing,
        f.partial,
        f.needs_attestation,
        f.no_evidence,
        f.could_not_check,
        f.not_applicable
    );
    for control in &assessment.controls {
        let interesting = !control.checks.is_empty()
            || control.attestation.is_some()
            || control.expired_attestation.is_some();
        if interesting && control.status != ControlStatus::NotApplicable {
            writeln!(
                out,
                "{} {}: {}",
                control.def.id,
                control.status.as_str(),
                control.explanation()
            )
            .unwrap();
        }
    }
    expect.assert_eq(&out);
}

/// The ledger of November 2026 as of `as_of` from fixture lines (see `check`).
fn ledger_of(as_of: Option<&str>, fixture: &str) -> Ledger {
    let as_of = as_of.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    });
    let mut ledger = Ledger::new(Period::month("2026-11").unwrap(), as_of);
    for (seq, line) in fixture
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (kind, body) = match words[1] {
            "scan" => {
                let results: Vec<_> = words[3..]
                    .iter()
                    .map(|w| {
                        let (check, status) = w.split_once('=').unwrap();
                        json!({"check": check, "title": "t", "severity": "high", "status": status,
                               "observed": {"x": 1}, "expected": "e", "reason": "r", "controls": []})
                    })
                    .collect();
                let body = json!({"target": {"name": words[2], "platform": "linux", "device_type": "server"},
                    "started": words[0], "finished": words[0], "results": results,
                    "summary": {"total": 0, "pass": 0, "fail": 0, "error": 0, "skipped": 0}});
                ("scan", body)
            }
            "attest" => (
                "attestation",
                json!({"control": words[2], "statement": "s", "by": words[3], "expires": words[4], "document": null}),
            ),
            "enroll" => (
                "agent_enrollment",
                json!({"agent_id": words[2], "hostname": words[3], "os": "Windows", "os_version": "11",
                       "platform": "windows-x86_64", "agent_version": "0.1.0", "device_public_key": "k",
                       "certificate_sha256": "c", "token_id": "t"}),
            ),
            "agent" => {
                let (check, status) = words[3].split_once('=').unwrap();
                (
                    "agent_result",
                    json!({"agent_id": words[2], "seq": 1, "check_id": check, "status": status,
                           "facts": {"enabled": "false"}, "observed_at_unix_ms": 0, "catalog_version": "v",
                           "signed": "", "signature": ""}),
                )
            }
            "except" => (
                "exception",
                json!({"check": words[2], "target": words[3], "reason": "r", "compensating": "c",
                       "owner": "o", "expires": words[4]}),
            ),
            "escalate" => (
                "escalation",
                json!({"target": {"name": words[2], "platform": "linux", "device_type": "server"},
                       "check": words[3], "rule": null, "runbook": null, "result": "escalated",
                       "reason": "no automatic fix", "before": {"status": "fail", "observed": {}, "reason": "r"},
                       "after": null, "remediation": null, "rollback": null}),
            ),
            other => panic!("unknown fixture word {other}"),
        };
        let line = json!({"kind": kind, "time": words[0], "body": body}).to_string();
        ledger.add_line(seq as u64, line.as_bytes()).unwrap();
    }
    ledger
}

#[test]
fn empty_period_claims_nothing() {
    check(
        Framework::Hipaa,
        None,
        "",
        expect![[r#"
            0 of 61 applicable met (Some(0)‰): 0 failing, 0 partly checked, 42 need attestation, 19 no evidence, 0 could not check, 4 not applicable
        "#]],
    );
}

#[test]
fn a_cloud_tenant_s_checks_count_only_where_a_tenant_is_scanned() {
    // With a Microsoft 365 tenant's scan in the period, its checks cover controls that otherwise
    // need an attestation (164.308(a)(6)(ii) security incidents, 164.310(c) workstations, …).
    check(
        Framework::Hipaa,
        None,
        "2026-11-02T10:00:00Z scan smith-m365 M365-MFA-001=fail M365-DEV-002=pass M365-ALERT-001=pass",
        expect![[r#"
            4 of 61 applicable met (Some(65)‰): 1 failing, 0 partly checked, 37 need attestation, 19 no evidence, 0 could not check, 4 not applicable
            164.308(a)(1)(ii)(D) met: checks pass on 1 device(s)
            164.308(a)(6)(ii) met: checks pass on 1 device(s)
            164.310(d)(1) met: checks pass on 1 device(s)
            164.312(a)(2)(iv) met: checks pass on 1 device(s)
            164.312(d) failing: 1 check result(s) fail on 1 device(s) checked
        "#]],
    );
}

#[test]
fn one_failing_check_fails_each_control_it_maps_to_and_nothing_else() {
    check(
        Framework::Hipaa,
        None,
        "2026-11-02T10:00:00Z scan web1 LIN-SSH-002=fail LIN-AUDIT-001=pass
         2026-11-02T10:00:00Z scan web2 LIN-SSH-002=pass LIN-AUDIT-001=pass",
        expect![[r#"
            2 of 61 applicable met (Some(32)‰): 2 failing, 0 partly checked, 42 need attestation, 15 no evidence, 0 could not check, 4 not applicable
            164.308(a)(1)(ii)(D) met: checks pass on 2 device(s)
            164.312(a)(2)(i) failing: 1 check result(s) fail on 2 device(s) checked
            164.312(b) met: checks pass on 2 device(s)
            164.312(d) failing: 1 check result(s) fail on 2 device(s) checked
        "#]],
    );
}

#[test]
fn newest_result_counts_and_exception_accepts_a_failure_until_it_expires() {
    let fixture = "2026-11-02T10:00:00Z scan web1 LIN-SSH-002=fail
                   2026-11-03T10:00:00Z scan web1 LIN-SSH-002=pass
                   2026-11-04T10:00:00Z scan web1 LIN-SSH-002=fail
                   2026-11-04T11:00:00Z except LIN-SSH-002 web1 2026-11-20";
    check(
        Framework::Hipaa,
        Some("2026-11-10T00:00:00Z"),
        fixture,
        expect![[r#"
        2 of 61 applicable met (Some(32)‰): 0 failing, 0 partly checked, 42 need attestation, 17 no evidence, 0 could not check, 4 not applicable
        164.312(a)(2)(i) met: checks pass on 1 device(s); 1 failure(s) accepted by exception
        164.312(d) met: checks pass on 1 device(s); 1 failure(s) accepted by exception
    "#]],
    );
    check(
        Framework::Hipaa,
        None,
        fixture,
        expect![[r#"
        0 of 61 applicable met (Some(0)‰): 2 failing, 0 partly checked, 42 need attestation, 17 no evidence, 0 could not check, 4 not applicable
        164.312(a)(2)(i) failing: 1 check result(s) fail on 1 device(s) checked
        164.312(d) failing: 1 check result(s) fail on 1 device(s) checked
    "#]],
    );
}

#[test]
fn attestation_meets_a_control_until_it_expires_and_completes_a_partial_one() {
    let fixture = "2026-11-01T09:00:00Z attest HIPAA:164.308(a)(1)(ii)(A) Dr.Ada 2026-11-15
                   2026-11-02T10:00:00Z scan web1 LIN-INACTIVE-001=pass
                   2026-11-02T10:00:00Z attest HIPAA:164.308(a)(3)(ii)(C) Dr.Ada 2027-10-31";
    check(
        Framework::Hipaa,
        Some("2026-11-14T00:00:00Z"),
        fixture,
        expect![[r#"
        3 of 61 applicable met (Some(49)‰): 0 failing, 0 partly checked, 41 need attestation, 17 no evidence, 0 could not check, 4 not applicable
        164.308(a)(1)(ii)(A) met: attested by Dr.Ada until 2026-11-15
        164.308(a)(3)(ii)(C) met: checks pass on 1 device(s); attested by Dr.Ada until 2027-10-31
        164.312(a)(1) met: checks pass on 1 device(s)
    "#]],
    );
    check(
        Framework::Hipaa,
        None,
        fixture,
        expect![[r#"
        2 of 61 applicable met (Some(32)‰): 0 failing, 0 partly checked, 42 need attestation, 17 no evidence, 0 could not check, 4 not applicable
        164.308(a)(1)(ii)(A) needs attestation: no check covers it; the attestation by Dr.Ada expired on 2026-11-15
        164.308(a)(3)(ii)(C) met: checks pass on 1 device(s); attested by Dr.Ada until 2027-10-31
        164.312(a)(1) met: checks pass on 1 device(s)
    "#]],
    );
}

#[test]
fn partial_mapping_alone_does_not_meet_a_cis_safeguard() {
    check(
        Framework::Cis,
        None,
        "2026-11-02T10:00:00Z scan web1 LIN-SSH-001=pass LIN-FW-001=pass LIN-PATCH-001=error",
        expect![[r#"
            1 of 56 applicable met (Some(17)‰): 0 failing, 1 partly checked, 39 need attestation, 14 no evidence, 1 could not check, 0 not applicable
            4.4 met: checks pass on 1 device(s)
            5.4 partly checked: its checks pass on 1 device(s) but cover it only in part (accepts PermitRootLogin prohibit-password (the CIS Benchmark item requires no), so root logins by key remain possible); a person's attestation must cover the rest
            7.3 could not check: its checks could not run in this period
        "#]],
    );
}

#[test]
fn endpoint_agent_results_count_under_the_host_name_they_enrolled_with() {
    check(
        Framework::Hipaa,
        None,
        "2026-10-01T09:00:00Z enroll agent-7 reception-pc
         2026-11-02T10:00:00Z agent agent-7 WIN-WSBL-001=fail
         2026-11-02T10:05:00Z agent agent-7 WIN-WSLOCK-001=pass",
        expect![[r#"
            1 of 61 applicable met (Some(16)‰): 1 failing, 0 partly checked, 42 need attestation, 17 no evidence, 0 could not check, 4 not applicable
            164.312(a)(2)(iii) met: checks pass on 1 device(s)
            164.312(a)(2)(iv) failing: 1 check result(s) fail on 1 device(s) checked
        "#]],
    );
}

#[test]
fn scans_outside_the_period_are_not_evidence_for_it() {
    check(
        Framework::Soc2,
        None,
        "2026-10-31T23:59:59Z scan web1 LIN-SSH-002=pass
         2026-12-01T00:00:00Z scan web1 LIN-SSH-002=fail",
        expect![[r#"
            0 of 38 applicable met (Some(0)‰): 0 failing, 0 partly checked, 26 need attestation, 12 no evidence, 0 could not check, 23 not applicable
        "#]],
    );
}

#[test]
fn each_control_s_trend_is_its_checks_share_of_passing_results_per_week() {
    // Week 1 (1–7 Nov): 2 passes, 1 fail on two devices; week 2: nothing; week 3: 1 fail;
    // the partial week 5 (29–30 Nov) up to the moment described: 1 pass; LIN-SSH-002 covers
    // HIPAA 164.312(d) and 164.312(a)(2)(i), both get the same trend.
    let fixture = "2026-11-01T00:00:00Z scan web1 LIN-SSH-002=pass
                   2026-11-03T10:00:00Z scan web2 LIN-SSH-002=fail
                   2026-11-07T23:59:59Z scan web1 LIN-SSH-002=pass
                   2026-11-15T10:00:00Z scan web1 LIN-SSH-002=fail
                   2026-11-29T08:00:00Z scan web1 LIN-SSH-002=pass
                   2026-11-30T08:00:00Z scan web1 LIN-SSH-002=pass";
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let hipaa = frameworks.get(Framework::Hipaa).unwrap();
    let ledger = ledger_of(Some("2026-11-30T00:00:00Z"), fixture);
    let assessment = assess(hipaa, &catalog, &ledger);
    let trend_of = |id: &str| {
        let control = assessment.controls.iter().find(|c| c.def.id == id).unwrap();
        let weeks: Vec<_> = control
            .trend
            .iter()
            .map(|w| {
                (
                    w.first.to_string(),
                    w.last.to_string(),
                    w.passes,
                    w.fails,
                    w.pass_percent(),
                )
            })
            .collect();
        (weeks, control.trend_text())
    };
    let (weeks, text) = trend_of("164.312(d)");
    assert_eq!(
        weeks,
        vec![
            ("2026-11-01".into(), "2026-11-07".into(), 2, 1, Some(66)),
            ("2026-11-08".into(), "2026-11-14".into(), 0, 0, None),
            ("2026-11-15".into(), "2026-11-21".into(), 0, 1, Some(0)),
            ("2026-11-22".into(), "2026-11-28".into(), 0, 0, None),
            ("2026-11-29".into(), "2026-11-29".into(), 1, 0, Some(100)),
        ]
    );
    assert_eq!(
        text,
        "2026-11-01–2026-11-07: 66 % pass of 3; 2026-11-08–2026-11-14: no results; \
         2026-11-15–2026-11-21: 0 % pass of 1; 2026-11-22–2026-11-28: no results; \
         2026-11-29–2026-11-29: 100 % pass of 1"
    );
    assert_eq!(trend_of("164.312(a)(2)(i)").0, weeks);
    // A control no check covers has no trend to show.
    assert_eq!(trend_of("164.308(a)(1)(ii)(A)").1, "");
    // Earlier moment: only the weeks begun by then, the running week cut at the day before.
    let ledger = ledger_of(Some("2026-11-10T12:00:00Z"), fixture);
    let assessment = assess(hipaa, &catalog, &ledger);
    let control = assessment
        .controls
        .iter()
        .find(|c| c.def.id == "164.312(d)")
        .unwrap();
    let spans: Vec<_> = control
        .trend
        .iter()
        .map(|w| (w.first.to_string(), w.last.to_string(), w.passes, w.fails))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("2026-11-01".into(), "2026-11-07".into(), 2, 1),
            ("2026-11-08".into(), "2026-11-10".into(), 0, 0),
        ]
    );
}

#[test]
fn an_escalated_failure_is_an_open_incident_of_its_controls_until_the_check_passes() {
    let fixture = "2026-11-02T10:00:00Z scan web1 LIN-SSH-002=fail
                   2026-11-02T10:05:00Z escalate web1 LIN-SSH-002
                   2026-11-02T10:00:00Z scan web2 LIN-SSH-002=fail
                   2026-11-09T10:00:00Z scan web1 LIN-SSH-002=pass";
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let hipaa = frameworks.get(Framework::Hipaa).unwrap();
    let incidents_at = |as_of: &str| {
        let ledger = ledger_of(Some(as_of), fixture);
        let assessment = assess(hipaa, &catalog, &ledger);
        let control = assessment
            .controls
            .iter()
            .find(|c| c.def.id == "164.312(d)")
            .unwrap();
        control.incidents()
    };
    // Open while web1 still fails; web2 fails too but nobody was handed it.
    assert_eq!(
        incidents_at("2026-11-05T00:00:00Z"),
        ["LIN-SSH-002 on web1: escalated 2026-11-02 (no automatic fix), bundle #1"]
    );
    // Before it was escalated: none.
    assert!(incidents_at("2026-11-02T10:01:00Z").is_empty());
    // Once web1 passes again, it is closed.
    assert!(incidents_at("2026-11-10T00:00:00Z").is_empty());
}

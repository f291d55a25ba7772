//! The pure parts of `ops`, data-driven: the healing policy a `[healing]` section gives, and the
//! evidence body a scan report becomes (what an auditor reads in every `scan` bundle).

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use expect_test::{Expect, expect};
use model::{CheckOutcome, CheckStatus, DeviceType, Platform, Target};
use scan::{CheckResult, TargetReport};

/// `healing` is a `[healing]` section (or nothing); the snapshot is the policy L1 applies.
#[track_caller]
fn check_policy(healing: &str, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::load(dir.path(), &format!("site = \"clinic\"\n{healing}")).unwrap();
    expect.assert_debug_eq(&ops::heal::policy(&config.healing));
}

#[test]
fn healing_policy_defaults() {
    check_policy(
        "",
        expect![[r#"
        Policy {
            paused: false,
            in_maintenance: false,
            max_per_hour: 30,
            flap_max: 3,
            flap_window_secs: 14400,
            breaker_failures: 5,
            breaker_cooldown_secs: 1800,
        }
    "#]],
    );
}

#[test]
fn healing_policy_from_the_configuration() {
    check_policy(
        "\n[healing]\npaused = true\nmax_per_hour = 3\nflap_max = 2\nflap_window_minutes = 90\nbreaker_failures = 5\nbreaker_cooldown_minutes = 45\n",
        expect![[r#"
            Policy {
                paused: true,
                in_maintenance: false,
                max_per_hour: 3,
                flap_max: 2,
                flap_window_secs: 5400,
                breaker_failures: 5,
                breaker_cooldown_secs: 2700,
            }
        "#]],
    );
}

/// `results` is one line per check: `ID STATUS [reason…]`; the snapshot is the sealed body.
#[track_caller]
fn check_scan_body(results: &str, expect: Expect) {
    let catalog = common::catalog();
    let report = TargetReport {
        target: Target {
            name: "fileserver".to_owned(),
            platform: Platform::Linux,
            device_type: DeviceType::Server,
        },
        started: time::OffsetDateTime::UNIX_EPOCH,
        finished: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(3),
        carried: Default::default(),
        target_cpu: Default::default(),
        results: results
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut words = line.split_whitespace();
                let id = words.next().unwrap();
                let status = match words.next().unwrap() {
                    "pass" => CheckStatus::Pass,
                    "fail" => CheckStatus::Fail,
                    "error" => CheckStatus::Error,
                    "skipped" => CheckStatus::Skipped,
                    other => panic!("status {other}"),
                };
                CheckResult {
                    runbook_id: id.to_owned(),
                    outcome: CheckOutcome {
                        status,
                        observed: serde_json::Value::Null,
                        expected: String::new(),
                        reason: words.collect::<Vec<_>>().join(" "),
                    },
                    elapsed: std::time::Duration::ZERO,
                }
            })
            .collect(),
    };
    let body = ops::scan::scan_body(&catalog, &report).unwrap();
    expect.assert_eq(&serde_json::to_string_pretty(&body).unwrap());
}

#[test]
fn a_scan_body_names_each_check_its_severity_and_controls_and_counts_them() {
    check_scan_body(
        "
LIN-SSH-001 fail root can log in over SSH
LIN-DISK-001 pass
LIN-NTP-001 error not checked: connection refused
LIN-AUDIT-001 skipped
",
        expect![[r#"
            {
              "target": {
                "name": "fileserver",
                "platform": "linux",
                "device_type": "server"
              },
              "started": "1970-01-01T00:00:00.000Z",
              "finished": "1970-01-01T00:00:03.000Z",
              "results": [
                {
                  "check": "LIN-SSH-001",
                  "title": "SSH root login disabled",
                  "severity": "high",
                  "status": "fail",
                  "observed": null,
                  "expected": "",
                  "reason": "root can log in over SSH",
                  "controls": [
                    "HIPAA:164.312(a)(1)",
                    "HIPAA:164.312(d)",
                    "SOC2:CC6.1",
                    "PCI:8.2.1",
                    "NIST-CSF:PR.AA-05",
                    "CIS:5.4"
                  ]
                },
                {
                  "check": "LIN-DISK-001",
                  "title": "Enough free disk space",
                  "severity": "medium",
                  "status": "pass",
                  "observed": null,
                  "expected": "",
                  "reason": "",
                  "controls": [
                    "HIPAA:164.312(b)",
                    "SOC2:A1.1",
                    "PCI:10.5.1",
                    "NIST-CSF:PR.IR-04",
                    "CIS:8.3"
                  ]
                },
                {
                  "check": "LIN-NTP-001",
                  "title": "Clock synchronised to a time source",
                  "severity": "high",
                  "status": "error",
                  "observed": null,
                  "expected": "",
                  "reason": "not checked: connection refused",
                  "controls": [
                    "HIPAA:164.312(b)",
                    "SOC2:CC7.2",
                    "PCI:10.6.1",
                    "NIST-CSF:PR.PS-04"
                  ]
                },
                {
                  "check": "LIN-AUDIT-001",
                  "title": "Security events are recorded persistently",
                  "severity": "critical",
                  "status": "skipped",
                  "observed": null,
                  "expected": "",
                  "reason": "",
                  "controls": [
                    "HIPAA:164.312(b)",
                    "HIPAA:164.308(a)(1)(ii)(D)",
                    "SOC2:CC7.2",
                    "SOC2:CC7.3",
                    "PCI:10.2.1",
                    "PCI:10.5.1",
                    "NIST-CSF:PR.PS-04",
                    "NIST-CSF:DE.CM-09",
                    "CIS:8.2"
                  ]
                }
              ],
              "summary": {
                "total": 4,
                "pass": 1,
                "fail": 1,
                "error": 1,
                "skipped": 1
              }
            }"#]],
    );
}

#[test]
fn a_check_the_catalogue_does_not_know_keeps_its_result_without_a_title() {
    check_scan_body(
        "LIN-GONE-001 fail it was removed\n",
        expect![[r#"
        {
          "target": {
            "name": "fileserver",
            "platform": "linux",
            "device_type": "server"
          },
          "started": "1970-01-01T00:00:00.000Z",
          "finished": "1970-01-01T00:00:03.000Z",
          "results": [
            {
              "check": "LIN-GONE-001",
              "title": "",
              "severity": "",
              "status": "fail",
              "observed": null,
              "expected": "",
              "reason": "it was removed",
              "controls": []
            }
          ],
          "summary": {
            "total": 1,
            "pass": 0,
            "fail": 1,
            "error": 0,
            "skipped": 0
          }
        }"#]],
    );
}

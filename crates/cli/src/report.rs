//! The scan report: plain-text (grouped by framework control) and JSON renderings.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use model::{CheckStatus, Framework, Runbook};
use scan::TargetReport;

/// Where the scan's evidence went, for the report's last lines.
#[derive(Debug, Clone)]
pub(crate) struct EvidenceNote {
    pub(crate) data_dir: String,
    pub(crate) bundles: Vec<(String, u64)>,
    pub(crate) log_size: u64,
    pub(crate) origin: String,
    pub(crate) key_id: String,
}

impl EvidenceNote {
    /// Signs a checkpoint over what was sealed and notes where the evidence went.
    pub(crate) async fn checkpoint(
        store: &store::Store,
        data_dir: &std::path::Path,
        bundles: Vec<(String, u64)>,
    ) -> anyhow::Result<EvidenceNote> {
        let checkpoint =
            anyhow::Context::context(store.create_checkpoint().await, "signing a checkpoint")?;
        Ok(EvidenceNote {
            data_dir: data_dir.display().to_string(),
            bundles,
            log_size: checkpoint.size,
            origin: store.origin().to_owned(),
            key_id: store.verifier().key_id_hex(),
        })
    }
}

/// Renders the human report.
pub(crate) fn render_text(
    catalog: &catalog::Catalog,
    reports: &[TargetReport],
    evidence: &EvidenceNote,
) -> String {
    let mut out = String::new();
    for report in reports {
        render_target(&mut out, catalog, report);
    }
    let _ = writeln!(out, "Evidence");
    for (target, seq) in &evidence.bundles {
        let _ = writeln!(
            out,
            "  bundle #{seq} ({target}) signed by {} (key {})",
            evidence.origin, evidence.key_id
        );
    }
    let _ = writeln!(
        out,
        "  log now holds {}; checkpoint signed; stored in {}",
        count(evidence.log_size, "bundle"),
        evidence.data_dir
    );
    let _ = writeln!(
        out,
        "  auditor kit: osiris evidence export --out KIT && osiris evidence verify KIT"
    );
    out
}

/// Renders `{"results":[{"target","check","status","observed","controls":[…]}…], "evidence": …}`.
pub(crate) fn render_json(
    catalog: &catalog::Catalog,
    reports: &[TargetReport],
    evidence: &EvidenceNote,
) -> serde_json::Value {
    let results: Vec<serde_json::Value> = reports
        .iter()
        .flat_map(|report| {
            report.results.iter().map(move |result| {
                let runbook = catalog.get(&result.runbook_id);
                // A result carried from an earlier scan (not due now) says when it was observed.
                let carried_from = report.carried.get(&result.runbook_id).and_then(|at| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
                let mut json = serde_json::json!({
                    "target": report.target.name,
                    "check": result.runbook_id,
                    "title": runbook.map(|rb| rb.title.as_str()),
                    "severity": runbook.map(|rb| rb.severity.as_str()),
                    "status": result.outcome.status.as_str(),
                    "observed": result.outcome.observed,
                    "expected": result.outcome.expected,
                    "reason": result.outcome.reason,
                    "controls": runbook.map(Runbook::control_refs).unwrap_or_default(),
                });
                if let (Some(at), Some(map)) = (carried_from, json.as_object_mut()) {
                    map.insert("carried".to_owned(), true.into());
                    map.insert("observed_at".to_owned(), at.into());
                }
                json
            })
        })
        .collect();
    let bundles: Vec<serde_json::Value> = evidence
        .bundles
        .iter()
        .map(|(target, seq)| serde_json::json!({"target": target, "seq": seq}))
        .collect();
    serde_json::json!({
        "results": results,
        "evidence": {
            "data_dir": evidence.data_dir,
            "bundles": bundles,
            "log_size": evidence.log_size,
            "origin": evidence.origin,
            "key_id": evidence.key_id,
        },
    })
}

fn render_target(out: &mut String, catalog: &catalog::Catalog, report: &TargetReport) {
    let summary = report.summary();
    let elapsed = (report.finished - report.started).as_seconds_f64();
    let not_due = if report.carried.is_empty() {
        String::new()
    } else {
        let oldest = report.carried.values().min().copied();
        let since = oldest
            .and_then(|at| {
                at.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .ok()
            })
            .unwrap_or_default();
        format!(
            " ({} not due, carried from earlier scans since {since}; `osiris scan --all` runs them now)",
            report.carried.len()
        )
    };
    let _ = writeln!(
        out,
        "Scan of {} ({}): {} checks in {elapsed:.1} s{not_due}",
        report.target.name, report.target.platform, summary.total
    );
    let verdict = match (summary.fail, summary.error) {
        (0, 0) => "every applicable check passed".to_owned(),
        (fail, 0) => format!("{fail} need attention"),
        (0, error) => format!("{error} could not be checked"),
        (fail, error) => format!("{fail} need attention, {error} could not be checked"),
    };
    let _ = writeln!(
        out,
        "  {verdict} — {} fail, {} error, {} pass, {} not applicable\n",
        summary.fail, summary.error, summary.pass, summary.skipped
    );

    // Control → [(check, status)], per framework, in framework order.
    let mut by_control: BTreeMap<(Framework, String), Vec<(&str, CheckStatus)>> = BTreeMap::new();
    for result in &report.results {
        let Some(runbook) = catalog.get(&result.runbook_id) else {
            continue;
        };
        for control in &runbook.controls {
            by_control
                .entry((control.framework, control.id.clone()))
                .or_default()
                .push((result.runbook_id.as_str(), result.outcome.status));
        }
    }
    for framework in Framework::ALL {
        let mut rows: Vec<_> = by_control
            .iter()
            .filter(|((f, _), _)| *f == framework)
            .collect();
        rows.sort_by_key(|((_, control), _)| natural_key(control));
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}", framework.display_name());
        for ((_, control), checks) in rows {
            let status = control_status(checks);
            let list: Vec<String> = checks
                .iter()
                .map(|(id, status)| format!("{id} {status}"))
                .collect();
            let _ = writeln!(
                out,
                "  {control:<22} {:<7} {}",
                label(status),
                list.join(", ")
            );
        }
        out.push('\n');
    }

    let mut attention: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome.status, CheckStatus::Fail | CheckStatus::Error))
        .collect();
    attention.sort_by_key(|r| {
        let severity = catalog.get(&r.runbook_id).map(|rb| rb.severity);
        (std::cmp::Reverse(severity), r.runbook_id.clone())
    });
    if !attention.is_empty() {
        let _ = writeln!(out, "Needs attention");
        for result in attention {
            let runbook = catalog.get(&result.runbook_id);
            let _ = writeln!(
                out,
                "  {:<7} {:<15} {:<8} {}",
                label(result.outcome.status),
                result.runbook_id,
                runbook.map_or("", |rb| rb.severity.as_str()),
                runbook.map_or("", |rb| rb.title.as_str())
            );
            let _ = writeln!(out, "          found: {}", result.outcome.reason);
            if !result.outcome.expected.is_empty() {
                let _ = writeln!(out, "          wanted: {}", result.outcome.expected);
            }
        }
        out.push('\n');
    }
    let skipped: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == CheckStatus::Skipped)
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "Not applicable here");
        for result in skipped {
            let _ = writeln!(out, "  {:<15} {}", result.runbook_id, result.outcome.reason);
        }
        out.push('\n');
    }
}

/// A control is failing if any of its checks fails, unknown if one errored, passing if one
/// passed and the rest were not applicable.
fn control_status(checks: &[(&str, CheckStatus)]) -> CheckStatus {
    let has = |status| checks.iter().any(|(_, s)| *s == status);
    if has(CheckStatus::Fail) {
        CheckStatus::Fail
    } else if has(CheckStatus::Error) {
        CheckStatus::Error
    } else if has(CheckStatus::Pass) {
        CheckStatus::Pass
    } else {
        CheckStatus::Skipped
    }
}

/// `1 bundle`, `2 bundles`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Sort key that orders `8.2.1` before `10.2.1`: digit runs compare as numbers.
fn natural_key(text: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let text_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (word, tail) = tail.split_at(text_len);
        key.push((number.parse().unwrap_or(0), word.to_owned()));
        rest = tail;
    }
    key
}

fn label(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "ok",
        CheckStatus::Fail => "FAIL",
        CheckStatus::Error => "ERROR",
        CheckStatus::Skipped => "n/a",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use expect_test::expect;
    use model::{CheckOutcome, DeviceType, Platform, Target};
    use scan::CheckResult;
    use time::macros::datetime;

    use super::*;

    fn result(id: &str, status: CheckStatus, reason: &str) -> CheckResult {
        CheckResult {
            runbook_id: id.to_owned(),
            outcome: CheckOutcome {
                status,
                observed: serde_json::json!({}),
                expected: if status == CheckStatus::Fail {
                    "x = 1".to_owned()
                } else {
                    String::new()
                },
                reason: reason.to_owned(),
            },
            elapsed: Duration::from_millis(5),
        }
    }

    #[test]
    fn text_report_groups_by_control_and_lists_what_needs_attention() {
        let catalog = catalog::embedded().unwrap();
        let report = TargetReport {
            target: Target {
                name: "localhost".to_owned(),
                platform: Platform::Linux,
                device_type: DeviceType::Server,
            },
            started: datetime!(2026-11-28 03:40:00 UTC),
            finished: datetime!(2026-11-28 03:40:01.5 UTC),
            carried: Default::default(),
            target_cpu: Default::default(),
            results: vec![
                result("LIN-NTP-001", CheckStatus::Fail, "`synchronized` is false"),
                result("LIN-AUDIT-001", CheckStatus::Pass, ""),
                result(
                    "LIN-SSH-001",
                    CheckStatus::Skipped,
                    "OpenSSH server is not installed",
                ),
                result(
                    "LIN-FW-001",
                    CheckStatus::Error,
                    "detect script: timed out after 30s and was stopped",
                ),
            ],
        };
        let evidence = EvidenceNote {
            data_dir: "osiris-data".to_owned(),
            bundles: vec![("localhost".to_owned(), 7)],
            log_size: 8,
            origin: "osiris-appliance/0123456789abcdef".to_owned(),
            key_id: "a1b2c3d4".to_owned(),
        };
        expect![[r#"
            Scan of localhost (linux): 4 checks in 1.5 s
              1 need attention, 1 could not be checked — 1 fail, 1 error, 1 pass, 1 not applicable

            HIPAA Security Rule
              164.308(a)(1)(ii)(D)   ok      LIN-AUDIT-001 pass
              164.312(a)(1)          ERROR   LIN-SSH-001 skipped, LIN-FW-001 error
              164.312(b)             FAIL    LIN-NTP-001 fail, LIN-AUDIT-001 pass
              164.312(d)             n/a     LIN-SSH-001 skipped
              164.312(e)(1)          ERROR   LIN-FW-001 error

            SOC 2
              CC6.1                  ERROR   LIN-SSH-001 skipped, LIN-FW-001 error
              CC6.6                  ERROR   LIN-FW-001 error
              CC7.2                  FAIL    LIN-NTP-001 fail, LIN-AUDIT-001 pass
              CC7.3                  ok      LIN-AUDIT-001 pass

            PCI DSS
              1.2.1                  ERROR   LIN-FW-001 error
              1.3.1                  ERROR   LIN-FW-001 error
              8.2.1                  n/a     LIN-SSH-001 skipped
              10.2.1                 ok      LIN-AUDIT-001 pass
              10.5.1                 ok      LIN-AUDIT-001 pass
              10.6.1                 FAIL    LIN-NTP-001 fail

            NIST CSF
              DE.CM-09               ok      LIN-AUDIT-001 pass
              PR.AA-05               n/a     LIN-SSH-001 skipped
              PR.IR-01               ERROR   LIN-FW-001 error
              PR.PS-04               FAIL    LIN-NTP-001 fail, LIN-AUDIT-001 pass

            CIS Controls
              4.4                    ERROR   LIN-FW-001 error
              5.4                    n/a     LIN-SSH-001 skipped
              8.2                    ok      LIN-AUDIT-001 pass

            Needs attention
              ERROR   LIN-FW-001      critical Host firewall drops unsolicited inbound traffic
                      found: detect script: timed out after 30s and was stopped
              FAIL    LIN-NTP-001     high     Clock synchronised to a time source
                      found: `synchronized` is false
                      wanted: x = 1

            Not applicable here
              LIN-SSH-001     OpenSSH server is not installed

            Evidence
              bundle #7 (localhost) signed by osiris-appliance/0123456789abcdef (key a1b2c3d4)
              log now holds 8 bundles; checkpoint signed; stored in osiris-data
              auditor kit: osiris evidence export --out KIT && osiris evidence verify KIT
        "#]]
        .assert_eq(&render_text(&catalog, &[report], &evidence));
    }
}

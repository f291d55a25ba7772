//! The report writers on a fixture log: escaping, CSV quoting, and OSCAL read back by
//! compliance-trestle (an independent OSCAL implementation) when the test venv has it.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use serde_json::json;
use time::OffsetDateTime;

use compliance::render::{ReportContext, csv, html, oscal};
use compliance::{Ledger, Period, assess};
use model::Framework;

const EVIL_HOST: &str = "<script>alert('host')</script>";
const EVIL_OBSERVED: &str = "<img src=x onerror=alert(1)>";

fn ledger() -> Ledger {
    let mut ledger = Ledger::new(Period::month("2026-11").unwrap(), None);
    let scan = |seq: u64, time: &str, target: &str, results: &[(&str, &str)]| {
        let results: Vec<_> = results
            .iter()
            .map(|(check, status)| {
                json!({"check": check, "title": "t", "severity": "high", "status": status,
                       "observed": {"value": EVIL_OBSERVED}, "expected": "e",
                       "reason": "=HYPERLINK(\"http://x\")", "controls": []})
            })
            .collect();
        let line = json!({"kind": "scan", "time": time, "body": {
            "target": {"name": target, "platform": "linux", "device_type": "server"},
            "started": time, "finished": time, "results": results,
            "summary": {"total": 0, "pass": 0, "fail": 0, "error": 0, "skipped": 0}}});
        (seq, line.to_string())
    };
    let lines = [
        scan(
            0,
            "2026-11-02T10:00:00Z",
            EVIL_HOST,
            &[
                ("LIN-SSH-002", "fail"),
                ("LIN-AUDIT-001", "pass"),
                ("LIN-FW-001", "fail"),
            ],
        ),
        scan(1, "2026-11-02T10:00:00Z", "web2", &[("LIN-SSH-002", "pass")]),
        (
            2,
            json!({"kind": "exception", "time": "2026-11-03T10:00:00Z", "body": {
                "check": "LIN-FW-001", "target": EVIL_HOST, "reason": "vendor appliance",
                "compensating": "network ACL", "owner": "Dr. Ada", "expires": "2027-01-31"}})
            .to_string(),
        ),
        (
            3,
            json!({"kind": "attestation", "time": "2026-11-04T10:00:00Z", "body": {
                "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis done <b>2026</b>",
                "by": "Dr. Ada", "expires": "2027-11-01",
                "document": {"name": "risk.pdf", "sha256": "ab", "size": 2, "stored_as": "documents/ab"}}})
            .to_string(),
        ),
        (
            4,
            json!({"kind": "escalation", "time": "2026-11-05T10:00:00Z", "body": {
                "target": {"name": EVIL_HOST, "platform": "linux", "device_type": "server"},
                "check": "LIN-SSH-002", "rule": null, "runbook": null, "result": "escalated",
                "reason": "=fix <i>by hand</i>", "before": {"status": "fail", "observed": {}, "reason": "r"},
                "after": null, "remediation": null, "rollback": null}})
            .to_string(),
        ),
    ];
    for (seq, line) in lines {
        ledger.add_line(seq, line.as_bytes()).unwrap();
    }
    ledger
}

static NO_PROOFS: compliance::Proofs = compliance::Proofs::NONE;

fn context() -> ReportContext<'static> {
    ReportContext {
        site: "clinic-<1>",
        origin: "osiris.example/appliance/abc",
        key_id: "0011",
        catalog_version: "0.0.0+aaa",
        frameworks_version: "0.0.0+bbb",
        generated_at: OffsetDateTime::UNIX_EPOCH,
        checkpoint: Some((4, "osiris.example/appliance/abc\n4\nROOT=\n\n— sig\n")),
        tool_version: "0.0.0",
        samples: &[],
        proofs: &NO_PROOFS,
    }
}

#[test]
fn html_escapes_markup_from_host_names_and_observed_values() {
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let page = html(&assessment, &ledger, &context());
    assert!(!page.contains("<script"), "a host name became markup");
    assert!(!page.contains("<img"), "an observed value became markup");
    assert!(
        !page.contains("<b>2026"),
        "an attestation statement became markup"
    );
    assert!(page.contains("&lt;script&gt;alert(&#39;host&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // Every control of the framework is listed, with its status.
    for control in &assessment.controls {
        assert!(
            page.contains(&format!("<b>{}</b>", control.def.id)),
            "{} missing",
            control.def.id
        );
    }
    assert!(
        page.contains(
            "Of the 61 HIPAA Security Rule controls that apply to the practice, 5 are met"
        )
    );
    // Met: 164.312(b) and 164.308(a)(1)(ii)(D) by LIN-AUDIT-001, 164.308(a)(1)(ii)(A) by attestation,
    // 164.312(a)(1) and 164.312(e)(1) by LIN-FW-001 failing under an exception.
    // Met: 164.312(b) and 164.308(a)(1)(ii)(D) by LIN-AUDIT-001, 164.308(a)(1)(ii)(A) by attestation,
    // 164.312(a)(1) and 164.312(e)(1) by LIN-FW-001 failing under an exception.
    assert!(page.contains("Attested by Dr. Ada"));
    assert!(page.contains("accepted by exception until 2027-01-31"));
    assert!(page.contains("accepted by exception until 2027-01-31"));
    assert!(page.contains("SHA-256 ab"));
    // The open incident behind the failing SSH check, its reason escaped.
    assert!(
        !page.contains("<i>by hand"),
        "an incident's reason became markup"
    );
    assert!(page.contains(
        "<b>open incident</b>: escalated 2026-11-05 (=fix &lt;i&gt;by hand&lt;/i&gt;), bundle #4"
    ));
}

#[test]
fn every_format_carries_a_stamp_that_makes_the_report_again() {
    use compliance::render::{Stamp, StampError, pdf};
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let cx = context();
    let page = html(&assessment, &ledger, &cx);
    let document = pdf(&assessment, &ledger, &cx);
    let results =
        serde_json::to_vec(&oscal::assessment_results(&assessment, &ledger, &cx)).unwrap();
    let poam = serde_json::to_vec(&oscal::poam(&assessment, &ledger, &cx)).unwrap();
    let stamp = Stamp::find(page.as_bytes()).unwrap();
    for other in [&document, &results, &poam] {
        assert_eq!(Stamp::find(other).unwrap(), stamp);
    }
    assert_eq!(stamp.framework, "hipaa");
    assert_eq!(stamp.as_of, "2026-12-01T00:00:00Z");
    assert_eq!(stamp.evidence, Some((0, 1)), "the two scan bundles");
    assert_eq!(
        stamp.checkpoint,
        Some((
            4,
            "osiris.example/appliance/abc\n4\nROOT=\n\n— sig\n".to_owned()
        ))
    );
    // Its context makes the same bytes again.
    let again = stamp.context().unwrap();
    assert_eq!(html(&assessment, &ledger, &again), page);
    assert_eq!(pdf(&assessment, &ledger, &again), document);
    assert!(page.contains(
        "2 scan bundle(s) and 0 agent result(s) of the period, bundles #0 to #1 of the log"
    ));
    // A damaged or missing stamp says so.
    let damaged = page.replacen("osiris-report-stamp-v1:ey", "osiris-report-stamp-v1:zz", 1);
    assert!(matches!(
        Stamp::find(damaged.as_bytes()),
        Err(StampError::Damaged(_))
    ));
    assert_eq!(Stamp::find(b"<html></html>"), Err(StampError::Missing));
}

#[test]
fn csv_quotes_fields_and_defuses_formulas() {
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let text = csv(&assessment, &ledger, &context());
    let mut lines = text.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("framework,control,group,kind,status")
    );
    let ssh: Vec<&str> = text
        .split("\r\n")
        .filter(|l| l.starts_with("HIPAA,164.312(d),") && l.contains("LIN-SSH-002"))
        .collect();
    assert_eq!(ssh.len(), 2, "{ssh:?}");
    assert!(ssh.iter().any(|l| l.contains(",web2,pass,")));
    assert!(
        ssh.iter()
            .any(|l| l.contains("\"{\"\"value\"\":\"\"<img src=x onerror=alert(1)>\"\"}\""))
    );
    // The trend column: LIN-SSH-002 passed on web2 and failed on the other host in week 1.
    let trend = "2026-11-01–2026-11-07: 50 % pass of 2; 2026-11-08–2026-11-14: no results; \
                 2026-11-15–2026-11-21: no results; 2026-11-22–2026-11-28: no results; \
                 2026-11-29–2026-11-30: no results";
    assert!(text.starts_with(compliance::render::CSV_HEADER));
    assert!(compliance::render::CSV_HEADER.contains(",passes,fails,trend,bundle,"));
    let trend_at = compliance::render::CSV_HEADER
        .split(',')
        .position(|c| c == "trend")
        .unwrap();
    let records = compliance::render::parse_records(&text);
    let of = |control: &str| -> Vec<&Vec<String>> {
        records.iter().filter(|r| r[1] == control).collect()
    };
    let ssh_rows: Vec<_> = of("164.312(d)")
        .into_iter()
        .filter(|r| r[6] == "LIN-SSH-002")
        .collect();
    assert_eq!(ssh_rows.len(), 2);
    assert!(
        ssh_rows.iter().all(|r| r[trend_at] == trend),
        "{ssh_rows:?}"
    );
    // The open incident: on the failing host's row only (web2 passes).
    let incident_at = compliance::render::CSV_HEADER
        .split(',')
        .position(|c| c == "open_incident")
        .unwrap();
    let incidents: Vec<&str> = ssh_rows.iter().map(|r| r[incident_at].as_str()).collect();
    assert!(incidents.contains(&""));
    assert!(incidents.contains(
        &"LIN-SSH-002 on <script>alert('host')</script>: escalated 2026-11-05 (=fix <i>by hand</i>), bundle #4"
    ));
    // A control no check covers has an empty trend.
    assert_eq!(of("164.308(a)(1)(ii)(A)")[0][trend_at], "");
    // One row per control without checks: every control appears.
    for control in &assessment.controls {
        assert!(text.contains(&format!("HIPAA,{},", control.def.id)));
    }
}

#[test]
fn oscal_documents_are_read_back_by_compliance_trestle() {
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let results = oscal::assessment_results(&assessment, &ledger, &context());
    let poam = oscal::poam(&assessment, &ledger, &context());
    assert_eq!(
        results["assessment-results"]["metadata"]["oscal-version"],
        "1.2.1"
    );
    // The same evidence gives the same document (content-derived UUIDs).
    assert_eq!(
        results,
        oscal::assessment_results(&assessment, &ledger, &context())
    );

    // The trend as one property per week on each finding of a checked control.
    let finding = results["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().starts_with("164.312(d) "))
        .unwrap();
    let weeks: Vec<&str> = finding["props"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "trend-week")
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        weeks,
        [
            "2026-11-01/2026-11-07 passes=1 fails=1",
            "2026-11-08/2026-11-14 passes=0 fails=0",
            "2026-11-15/2026-11-21 passes=0 fails=0",
            "2026-11-22/2026-11-28 passes=0 fails=0",
            "2026-11-29/2026-11-30 passes=0 fails=0",
        ]
    );
    let open: Vec<&str> = finding["props"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "open-incident")
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(open.len(), 1);
    assert!(open[0].ends_with("bundle #4"), "{open:?}");
    let Some(python) = reference_python() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("osiris-oscal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ar_path = dir.join("assessment-results.json");
    let poam_path = dir.join("poam.json");
    std::fs::write(&ar_path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
    std::fs::write(&poam_path, serde_json::to_vec_pretty(&poam).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/check_oscal.py"
        ))
        .arg(&ar_path)
        .arg(&poam_path)
        .output()
        .unwrap();
    // NIST's official schema (checked first by the script) refuses a property name that is not
    // an OSCAL token.
    let mut broken = results.clone();
    broken["assessment-results"]["results"][0]["findings"][0]["props"][0]["name"] =
        serde_json::json!("control id");
    let broken_path = dir.join("broken.json");
    std::fs::write(&broken_path, serde_json::to_vec_pretty(&broken).unwrap()).unwrap();
    let refused = std::process::Command::new(reference_python().unwrap())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/check_oscal.py"
        ))
        .arg(&broken_path)
        .arg(&poam_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "trestle or NIST's schema rejected the documents:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        why.contains("is not valid against NIST's OSCAL schema") && why.contains("'control id'"),
        "{why}"
    );
    expect_test::expect![[r#"{"findings": {"not-satisfied": 43, "satisfied": 9}, "observations": 5, "oscal_version": "1.2.1", "poam_items": 45, "reviewed_controls": 65, "risks": ["deviation-approved", "deviation-approved", "open", "open"], "trestle_oscal_version": "1.2.1"}"#]].assert_eq(String::from_utf8_lossy(&out.stdout).trim());
}

/// The test venv's interpreter with compliance-trestle; the shared gate (a loud skip, or a failure
/// under `OSIRIS_REQUIRE_PYTHON=1`).
fn reference_python() -> Option<std::path::PathBuf> {
    test_support::python::reference_python_with("trestle")
}

#[test]
fn the_kit_index_escapes_device_names_and_names_each_bundle_by_its_hash() {
    let catalog = catalog::embedded().unwrap();
    let frameworks = catalog::embedded_frameworks().unwrap();
    let ledger = ledger();
    let assessment = assess(frameworks.get(Framework::Hipaa).unwrap(), &catalog, &ledger);
    let hashes = compliance::cited_bundles([&assessment])
        .into_iter()
        .map(|seq| (seq, format!("{seq:064x}")))
        .collect();
    let (text, section) = compliance::render::evidence_index(&[&assessment], &hashes);
    assert!(!section.contains("<script"), "a device name became markup");
    assert!(section.contains("&lt;script&gt;alert(&#39;host&#39;)&lt;/script&gt;"));
    let records = compliance::render::parse_records(&text);
    assert_eq!(records[0].join(","), compliance::render::INDEX_HEADER);
    // Every control appears; every row with a bundle names that bundle's hash.
    for control in &assessment.controls {
        assert!(
            records.iter().any(|r| r[1] == control.def.id),
            "{}",
            control.def.id
        );
    }
    for record in records.iter().skip(1).filter(|r| !r[5].is_empty()) {
        let seq: u64 = record[5].parse().unwrap();
        assert_eq!(record[6], format!("{seq:064x}"));
    }
    assert!(
        records
            .iter()
            .any(|r| r[4] == EVIL_HOST && r[3] == "LIN-FW-001"),
        "the device's row is missing"
    );
}

//! `osiris report`, `osiris attest` and `osiris exception` on the data of a plain `osiris scan`
//! of this machine: what a practice owner and an auditor would look for, and bad input refused.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn osiris(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_osiris"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// Runs and asserts the exit code; returns stdout (or stderr for failures).
    #[track_caller]
    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.osiris(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "osiris {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if code == 0 {
            String::from_utf8(out.stdout).unwrap()
        } else {
            String::from_utf8(out.stderr).unwrap()
        }
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}

fn this_month() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}

fn future_day() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(400))
        .date()
        .to_string()
}

#[test]
fn report_on_a_plain_scan_lists_every_control_and_cites_bundles_the_kit_holds() {
    let sandbox = Sandbox::new();
    let scan: serde_json::Value =
        serde_json::from_str(&sandbox.run(&["scan", "--json"], 0)).unwrap();
    let month = this_month();

    let said = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--out",
            "hipaa.html",
        ],
        0,
    );
    assert!(
        said.starts_with("wrote hipaa.html\nHIPAA Security Rule "),
        "{said}"
    );
    let html = sandbox.read("hipaa.html");
    let controls = sandbox.run(&["catalog", "controls", "hipaa"], 0);
    let ids: Vec<&str> = controls
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), 65);
    for id in &ids {
        assert!(
            html.contains(&format!("<b>{id}</b>")),
            "{id} is not in the report"
        );
    }
    assert!(html.contains(&format!(
        "In {month} the appliance checked 1 device(s) in 1 scan(s)."
    )));
    // Each failing check of the scan appears with its device.
    let failing: Vec<&str> = scan["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    for check in &failing {
        assert!(
            html.contains(&format!("{check} on <b>localhost</b>: fail")),
            "{check} missing"
        );
    }

    // Every bundle the report cites is in the auditor kit, and the kit verifies.
    sandbox.run(&["evidence", "export", "--out", "kit"], 0);
    sandbox.run(&["evidence", "verify", "kit", "--trust-kit-key"], 0);
    let bundles = sandbox.read("kit/bundles.jsonl");
    let n_bundles = bundles.lines().count();
    let cited: Vec<usize> = html
        .split("evidence bundle #")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!cited.is_empty());
    assert!(
        cited.iter().all(|seq| *seq < n_bundles),
        "{cited:?} vs {n_bundles}"
    );

    // CSV and OSCAL of the same data.
    sandbox.run(
        &[
            "report",
            "--framework",
            "cis",
            "--period",
            &month,
            "--format",
            "csv",
            "--out",
            "cis.csv",
        ],
        0,
    );
    let csv = sandbox.read("cis.csv");
    assert!(csv.starts_with("framework,control,"));
    assert_eq!(
        csv.lines()
            .skip(1)
            .filter(|l| l.starts_with("CIS,"))
            .map(|l| l.split(',').nth(1).unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        56
    );
    sandbox.run(
        &[
            "report",
            "--framework",
            "pci",
            "--period",
            &month,
            "--format",
            "oscal",
            "--out",
            "pci.json",
        ],
        0,
    );
    let oscal: serde_json::Value = serde_json::from_str(&sandbox.read("pci.json")).unwrap();
    assert_eq!(
        oscal["assessment-results"]["metadata"]["oscal-version"],
        "1.2.1"
    );
    let poam: serde_json::Value = serde_json::from_str(&sandbox.read("pci-poam.json")).unwrap();
    assert!(poam["plan-of-action-and-milestones"]["poam-items"].is_array());
    sandbox.run(
        &[
            "report",
            "--framework",
            "nist-csf",
            "--period",
            &month,
            "--format",
            "pdf",
            "--out",
            "csf.pdf",
        ],
        0,
    );
    assert!(
        std::fs::read(sandbox.path("csf.pdf"))
            .unwrap()
            .starts_with(b"%PDF-")
    );

    // verify-report recomputes a CSV report from the kit; a flipped status fails it.
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--format",
            "csv",
            "--out",
            "hipaa.csv",
        ],
        0,
    );
    sandbox.run(&["evidence", "export", "--out", "kit2"], 0);
    let said = sandbox.run(
        &[
            "evidence",
            "verify-report",
            "hipaa.csv",
            "kit2",
            "--trust-kit-key",
        ],
        0,
    );
    assert!(said.starts_with("report matches the kit: "), "{said}");
    let csv = sandbox.read("hipaa.csv");
    let flipped = if csv.contains(",fail,") {
        csv.replacen(",fail,", ",pass,", 1)
    } else {
        csv.replacen(",pass,", ",fail,", 1)
    };
    assert_ne!(flipped, csv);
    std::fs::write(sandbox.path("flipped.csv"), flipped).unwrap();
    let out = sandbox.osiris(&[
        "evidence",
        "verify-report",
        "flipped.csv",
        "kit2",
        "--trust-kit-key",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(
            "FAILED: flipped.csv is not what the kit's evidence gives for HIPAA Security Rule"
        ),
        "{said}"
    );
    assert!(said.contains(" differs\n  report: HIPAA,"), "{said}");
}

/// Verifies a report against a kit; returns (exit code, stdout, stderr).
fn verify(sandbox: &Sandbox, report: &str, kit: &str) -> (Option<i32>, String, String) {
    let out = sandbox.osiris(&["evidence", "verify-report", report, kit, "--trust-kit-key"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_format_is_checked_against_the_kit_and_an_edit_fails_it() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    let today = time::OffsetDateTime::now_utc().date().to_string();
    // Every format of one moment, so they describe the same state.
    let as_of = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let report = |format: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--as-of",
            &as_of,
            "--format",
            format,
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        sandbox.run(&args, 0);
    };
    // The same auditor sample date in every format, so each names the same content digest.
    let samples = ["--sample-dates", today.as_str()];
    report("html", "hipaa.html", &samples);
    report("pdf", "hipaa.pdf", &samples);
    report("oscal", "hipaa.json", &samples);
    report("csv", "hipaa.csv", &samples);
    // A bundle sealed after the reports: the kit is newer than they are, and they still verify.
    sandbox.run(&["scan"], 0);
    sandbox.run(&["evidence", "export", "--out", "kit"], 0);
    for (file, format) in [
        ("hipaa.html", "HTML"),
        ("hipaa.pdf", "PDF"),
        ("hipaa.json", "OSCAL"),
        ("hipaa-poam.json", "OSCAL"),
        ("hipaa.csv", "CSV"),
    ] {
        let (code, said, err) = verify(&sandbox, file, "kit");
        assert_eq!(code, Some(0), "{file}: {said}{err}");
        assert!(
            said.starts_with("report matches the kit: HIPAA Security Rule "),
            "{said}"
        );
        assert!(
            said.contains(&format!(", {format}) recomputed from ")),
            "{said}"
        );
    }

    // Every format names the same content digest: the SHA-256 of the CSV rendering.
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(sandbox.read("hipaa.csv").as_bytes()))
    };
    let html = sandbox.read("hipaa.html");
    assert!(
        html.contains(&format!("SHA-256 {digest} of this report")),
        "digest not in the HTML"
    );
    let oscal: serde_json::Value = serde_json::from_str(&sandbox.read("hipaa.json")).unwrap();
    let props = oscal["assessment-results"]["metadata"]["props"]
        .as_array()
        .unwrap();
    assert!(
        props
            .iter()
            .any(|p| p["name"] == "content-sha256" && p["value"] == digest.as_str())
    );

    // HTML: a control's status changed by hand.
    assert!(html.contains("<td class=\"status\">needs attestation</td>"));
    std::fs::write(
        sandbox.path("edited.html"),
        html.replacen(
            "<td class=\"status\">needs attestation</td>",
            "<td class=\"status\">met</td>",
            1,
        ),
    )
    .unwrap();
    let (code, said, _) = verify(&sandbox, "edited.html", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.starts_with(
            "FAILED: edited.html is not what the kit's evidence gives for HIPAA Security Rule"
        ),
        "{said}"
    );
    assert!(
        said.contains("differs\n  report: ") && said.contains(">met</td>"),
        "{said}"
    );

    // OSCAL: a finding's claim turned around.
    let mut edited = oscal.clone();
    let findings = edited["assessment-results"]["results"][0]["findings"]
        .as_array_mut()
        .unwrap();
    let (at, state) = findings
        .iter()
        .enumerate()
        .find_map(|(i, f)| {
            f["target"]["status"]["state"]
                .as_str()
                .map(|s| (i, s.to_owned()))
        })
        .unwrap();
    findings[at]["target"]["status"]["state"] = serde_json::json!(if state == "satisfied" {
        "not-satisfied"
    } else {
        "satisfied"
    });
    std::fs::write(
        sandbox.path("edited.json"),
        serde_json::to_vec_pretty(&edited).unwrap(),
    )
    .unwrap();
    let (code, said, _) = verify(&sandbox, "edited.json", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "$.assessment-results.results[0].findings[{at}].target.status.state differs"
        )),
        "{said}"
    );

    // PDF: one glyph of the text changed.
    let pdf = std::fs::read(sandbox.path("hipaa.pdf")).unwrap();
    let shown = pdf.windows(5).position(|w| w == b") Tj\n").unwrap();
    let mut edited = pdf.clone();
    edited[shown - 1] = if edited[shown - 1] == b'X' {
        b'Y'
    } else {
        b'X'
    };
    std::fs::write(sandbox.path("edited.pdf"), &edited).unwrap();
    let (code, said, _) = verify(&sandbox, "edited.pdf", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the PDF differs from byte "), "{said}");

    // A report without its stamp cannot be checked, and says why.
    std::fs::write(
        sandbox.path("stripped.html"),
        html.replace("osiris-report-stamp-v1:", "x:"),
    )
    .unwrap();
    let (code, _, err) = verify(&sandbox, "stripped.html", "kit");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("carries no `osiris-report-stamp-v1:` stamp"),
        "{err}"
    );

    // A file that is no report is refused with the reason.
    std::fs::write(sandbox.path("notes.txt"), "minutes of the audit\n").unwrap();
    let (code, _, err) = verify(&sandbox, "notes.txt", "kit");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("notes.txt is not a report osiris writes (CSV, HTML, PDF or OSCAL JSON"),
        "{err}"
    );

    // A report of evidence newer than the kit cannot be vouched for by it.
    sandbox.run(&["scan"], 0);
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--format",
            "pdf",
            "--out",
            "later.pdf",
        ],
        0,
    );
    let (code, said, _) = verify(&sandbox, "later.pdf", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("that the kit does not hold: export a kit that covers it"),
        "{said}"
    );
}

#[test]
fn attestations_and_exceptions_are_signed_shown_and_checked() {
    let sandbox = Sandbox::new();
    let scan: serde_json::Value =
        serde_json::from_str(&sandbox.run(&["scan", "--json"], 0)).unwrap();
    let month = this_month();
    let expires = future_day();
    std::fs::write(sandbox.path("risk-analysis.txt"), "Our risk analysis.\n").unwrap();

    let said = sandbox.run(
        &[
            "attest",
            "hipaa:164.308(a)(1)(ii)(A)",
            "--statement",
            "Risk analysis reviewed",
            "--file",
            "risk-analysis.txt",
            "--by",
            "Dr. Ada Example, owner",
            "--expires",
            &expires,
        ],
        0,
    );
    assert!(
        said.starts_with(
            "attestation of HIPAA 164.308(a)(1)(ii)(A) by Dr. Ada Example, owner until "
        ),
        "{said}"
    );
    let kept = std::fs::read_dir(sandbox.path("osiris-data/documents"))
        .unwrap()
        .count();
    assert_eq!(kept, 1);

    // An exception for a check that failed on this machine, if one did.
    let failed = scan["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "fail")
        .map(|r| r["check"].as_str().unwrap().to_owned());
    if let Some(check) = &failed {
        let said = sandbox.run(
            &[
                "exception",
                "add",
                check,
                "--target",
                "localhost",
                "--reason",
                "test machine",
                "--compensating",
                "no patient data",
                "--owner",
                "Dr. Ada",
                "--expires",
                &expires,
            ],
            0,
        );
        assert!(
            said.starts_with(&format!("exception for {check} on localhost until ")),
            "{said}"
        );
        let list = sandbox.run(&["exception", "list"], 0);
        assert!(list.contains(check) && list.contains("counts"), "{list}");
    }

    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--out",
            "hipaa.html",
        ],
        0,
    );
    let html = sandbox.read("hipaa.html");
    assert!(html.contains("Attested by Dr. Ada Example, owner"));
    if failed.is_some() {
        assert!(
            html.contains("accepted by exception until"),
            "exception not shown"
        );
    }

    // Bad input: each refused with the reason, nothing sealed.
    let size_before = sandbox.run(&["evidence", "show"], 0);
    for (args, message) in [
        (
            vec![
                "attest",
                "hipaa:164.999(z)",
                "--statement",
                "s",
                "--by",
                "b",
                "--expires",
                &expires,
            ],
            "unknown control `164.999(z)` in HIPAA Security Rule",
        ),
        (
            vec![
                "attest",
                "164.308(a)(2)",
                "--statement",
                "s",
                "--by",
                "b",
                "--expires",
                &expires,
            ],
            "names no framework",
        ),
        (
            vec![
                "attest",
                "hipaa:164.314(b)(1)",
                "--statement",
                "s",
                "--by",
                "b",
                "--expires",
                &expires,
            ],
            "is not applicable",
        ),
        (
            vec![
                "attest",
                "cis:14.1",
                "--statement",
                "s",
                "--by",
                "b",
                "--expires",
                "2020-01-01",
            ],
            "--expires 2020-01-01 is in the past",
        ),
        (
            vec![
                "exception",
                "add",
                "LIN-NOPE-001",
                "--target",
                "localhost",
                "--reason",
                "r",
                "--compensating",
                "c",
                "--owner",
                "o",
                "--expires",
                &expires,
            ],
            "unknown check `LIN-NOPE-001`",
        ),
        (
            vec![
                "exception",
                "add",
                "LIN-SSH-001",
                "--target",
                "ghost",
                "--reason",
                "r",
                "--compensating",
                "c",
                "--owner",
                "o",
                "--expires",
                &expires,
            ],
            "unknown target `ghost`",
        ),
        (
            vec![
                "report",
                "--framework",
                "iso27001",
                "--period",
                &month,
                "--out",
                "x.html",
            ],
            "unknown framework `iso27001`",
        ),
        (
            vec![
                "report",
                "--framework",
                "hipaa",
                "--period",
                "2026-13",
                "--out",
                "x.html",
            ],
            "period `2026-13` is not a month",
        ),
        (
            vec![
                "report",
                "--framework",
                "hipaa",
                "--period",
                &month,
                "--as-of",
                "2001-01-01",
                "--out",
                "x.html",
            ],
            "is before the first evidence bundle",
        ),
    ] {
        let stderr = sandbox.run(&args, 1);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(sandbox.run(&["evidence", "show"], 0), size_before);
    assert!(!Path::new(&sandbox.path("x.html")).exists());

    // A period without evidence says so and claims no status for what checks cover.
    let said = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            "2001-01",
            "--out",
            "old.html",
        ],
        0,
    );
    assert!(said.contains("(no scan evidence in this period)"), "{said}");
    let old = sandbox.read("old.html");
    assert!(old.contains("No scan evidence was recorded in 2001-01"));
    assert!(!old.contains("class=\"failing\""));
}

#[test]
fn as_of_shows_the_state_at_that_moment() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sandbox.run(
        &[
            "attest",
            "hipaa:164.308(a)(1)(ii)(A)",
            "--statement",
            "Risk analysis reviewed",
            "--by",
            "Dr. Ada",
            "--expires",
            &future_day(),
        ],
        0,
    );
    let month = this_month();
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--format",
            "csv",
            "--out",
            "now.csv",
        ],
        0,
    );
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--as-of",
            &before,
            "--format",
            "csv",
            "--out",
            "then.csv",
        ],
        0,
    );
    let row = |file: &str| {
        sandbox
            .read(file)
            .lines()
            .find(|l| l.starts_with("HIPAA,164.308(a)(1)(ii)(A),"))
            .unwrap()
            .to_owned()
    };
    assert!(
        row("now.csv").contains(",met,attested by Dr. Ada"),
        "{}",
        row("now.csv")
    );
    assert!(
        row("then.csv").contains(",needs attestation,"),
        "{}",
        row("then.csv")
    );
    // An auditor's sample date in the HTML report: the control as it stood then.
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--sample-dates",
            &before,
            "--out",
            "samples.html",
        ],
        0,
    );
    let html = sandbox.read("samples.html");
    let samples = &html[html.find("<h2>Auditor samples</h2>").unwrap()..];
    assert!(
        samples.contains(&format!("<h3>As of {before}</h3>")),
        "{samples}"
    );
    assert!(
        samples
            .contains("<td>164.308(a)(1)(ii)(A)</td><td class=\"status\">needs attestation</td>"),
        "{samples}"
    );
    let stderr = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--sample-dates",
            "2001-01-01",
            "--out",
            "x.html",
        ],
        1,
    );
    assert!(stderr.contains("is outside the period"), "{stderr}");
    // Both verify against a kit exported later: the kit's newer bundles do not change the past.
    sandbox.run(&["evidence", "export", "--out", "kit"], 0);
    for file in ["now.csv", "then.csv"] {
        sandbox.run(
            &["evidence", "verify-report", file, "kit", "--trust-kit-key"],
            0,
        );
    }
}

#[test]
fn report_reads_the_log_while_another_process_holds_the_data_directory() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    let alone = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--format",
            "csv",
            "--out",
            "alone.csv",
        ],
        0,
    );
    // Hold the store as osirisd would (the lock, the writer) while the report runs.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let held = runtime
        .block_on(store::Store::open(&store::StoreConfig {
            data_dir: sandbox.path("osiris-data"),
            site: "default".to_owned(),
        }))
        .unwrap();
    let shared = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--format",
            "csv",
            "--out",
            "shared.csv",
        ],
        0,
    );
    assert_eq!(
        alone.lines().nth(1),
        shared.lines().nth(1),
        "the same figures with the data directory held"
    );
    let strip_as_of = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(
        strip_as_of(sandbox.read("alone.csv")),
        strip_as_of(sandbox.read("shared.csv"))
    );
    sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            &month,
            "--out",
            "shared.html",
        ],
        0,
    );
    assert!(
        sandbox
            .read("shared.html")
            .contains("this signed checkpoint covers the first 1 bundles")
    );
    // Sealing needs the writer: refused with the reason, nothing written.
    let stderr = sandbox.run(
        &[
            "attest",
            "hipaa:164.308(a)(2)",
            "--statement",
            "s",
            "--by",
            "b",
            "--expires",
            &future_day(),
        ],
        1,
    );
    assert!(
        stderr.contains("is in use by another osiris process"),
        "{stderr}"
    );
    runtime.block_on(held.close());
}

#[test]
fn the_monthly_packet_holds_every_framework_in_every_format_with_a_manifest() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    let said = sandbox.run(
        &[
            "report",
            "--framework",
            "all",
            "--period",
            &month,
            "--out",
            "packet",
        ],
        0,
    );
    assert_eq!(said.lines().count(), 6, "{said}");
    let manifest = sandbox.read("packet/MANIFEST.sha256");
    assert_eq!(manifest.lines().count(), 25);
    for line in manifest.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(sandbox.path("packet").join(name)).unwrap();
        assert_eq!(
            hash,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            "{name}"
        );
    }
    for framework in ["hipaa", "soc2", "pci", "nist-csf", "cis"] {
        assert!(manifest.contains(&format!("  {framework}-{month}.pdf\n")));
    }
    // A packet never overwrites one.
    let stderr = sandbox.run(
        &[
            "report",
            "--framework",
            "all",
            "--period",
            &month,
            "--out",
            "packet",
        ],
        1,
    );
    assert!(stderr.contains("exists and is not empty"), "{stderr}");
}

#[test]
fn report_without_evidence_tells_what_to_do() {
    let sandbox = Sandbox::new();
    let stderr = sandbox.run(
        &[
            "report",
            "--framework",
            "hipaa",
            "--period",
            "2026-11",
            "--out",
            "r.html",
        ],
        1,
    );
    assert!(
        stderr.contains("no evidence in osiris-data: run `osiris scan` first"),
        "{stderr}"
    );
}

/// The stamp of a report, as JSON, and the same report with the stamp replaced.
fn stamp_of(report: &str) -> serde_json::Value {
    use base64::Engine as _;
    let marker = "osiris-report-stamp-v1:";
    let start = report.find(marker).unwrap() + marker.len();
    let text: String = report[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

fn with_stamp(report: &str, stamp: &serde_json::Value) -> String {
    use base64::Engine as _;
    let marker = "osiris-report-stamp-v1:";
    let start = report.find(marker).unwrap() + marker.len();
    let len = report[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .count();
    let encoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(stamp).unwrap());
    format!("{}{encoded}{}", &report[..start], &report[start + len..])
}

/// A hex hash with its first digit changed.
fn flip_hex(hash: &str) -> String {
    let first = if hash.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &hash[1..])
}

#[test]
fn every_cited_bundle_carries_a_proof_that_verify_report_checks() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // The moment after the first scan's checkpoint; a second scan extends the log after it.
    let then = rfc3339(time::OffsetDateTime::now_utc());
    sandbox.run(&["scan"], 0);
    let report = |format: &str, out: &str| {
        sandbox.run(
            &[
                "report",
                "--framework",
                "hipaa",
                "--period",
                &month,
                "--as-of",
                &then,
                "--sample-dates",
                &then,
                "--format",
                format,
                "--out",
                out,
            ],
            0,
        );
    };
    report("html", "then.html");
    report("csv", "then.csv");
    report("oscal", "then.json");
    report("pdf", "then.pdf");
    sandbox.run(&["evidence", "export", "--out", "kit"], 0);
    for file in [
        "then.html",
        "then.csv",
        "then.json",
        "then-poam.json",
        "then.pdf",
    ] {
        let (code, said, err) = verify(&sandbox, file, "kit");
        assert_eq!(code, Some(0), "{file}: {said}{err}");
    }

    // The stamp's proofs: one per cited bundle, to the newest checkpoint, and the consistency
    // proof from the checkpoint of the --as-of moment to it.
    let html = sandbox.read("then.html");
    let stamp = stamp_of(&html);
    let (size, _) = (
        stamp["checkpoint"][0].as_u64().unwrap(),
        stamp["checkpoint"][1].as_str().unwrap(),
    );
    let proofs = &stamp["proofs"];
    assert_eq!(proofs["tree_size"].as_u64(), Some(size));
    let inclusion = proofs["inclusion"].as_array().unwrap();
    assert!(!inclusion.is_empty(), "{proofs}");
    let consistency = &proofs["consistency"];
    let (from, to) = (
        consistency["from"][0].as_u64().unwrap(),
        consistency["to"][0].as_u64().unwrap(),
    );
    assert!(from < to && to == size, "{consistency}");
    // Every bundle the report cites has its proof in the appendix.
    let cited: std::collections::BTreeSet<u64> = html
        .match_indices("evidence bundle #")
        .map(|(at, m)| {
            html[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!cited.is_empty());
    for seq in &cited {
        assert!(
            html.contains(&format!("<tr id=\"proof-{seq}\"><td>#{seq}</td>")),
            "no proof of bundle #{seq} in the appendix"
        );
    }
    assert!(
        html.contains(&format!(
            "Consistency proof (RFC 9162) from the checkpoint of {from} bundles"
        )),
        "no consistency proof in the appendix"
    );
    // OSCAL: a back-matter resource per proof.
    let oscal: serde_json::Value = serde_json::from_str(&sandbox.read("then.json")).unwrap();
    let resources = oscal["assessment-results"]["back-matter"]["resources"]
        .as_array()
        .unwrap();
    assert_eq!(resources.len(), inclusion.len() + 1);
    // compliance-trestle reads the documents with their back matter and sample observations.
    if let Some(python) = test_support::python::reference_python_with("trestle") {
        let out = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../compliance/tests/python/check_oscal.py"
            ))
            .arg(sandbox.path("then.json"))
            .arg(sandbox.path("then-poam.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "trestle rejected the documents:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // CSV: each row's proofs column, and rows of the sample date.
    let csv = sandbox.read("then.csv");
    assert!(csv.contains(&format!(" {} ", inclusion[0]["leaf"].as_str().unwrap())));
    assert!(
        csv.contains(&format!(",{then},{month},{then}\r\n")),
        "no sample rows"
    );

    // A tampered inclusion proof in the stamp fails, naming the bundle.
    let mut tampered = stamp.clone();
    let seq = tampered["proofs"]["inclusion"][0]["seq"].as_u64().unwrap();
    let node = tampered["proofs"]["inclusion"][0]["path"][0]
        .as_str()
        .unwrap()
        .to_owned();
    tampered["proofs"]["inclusion"][0]["path"][0] = serde_json::json!(flip_hex(&node));
    std::fs::write(sandbox.path("bad-proof.html"), with_stamp(&html, &tampered)).unwrap();
    let (code, said, _) = verify(&sandbox, "bad-proof.html", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "proof: bundle #{seq}: its inclusion proof does not lead to the root of the kit's checkpoint of {size} bundles"
        )),
        "{said}"
    );
    // A tampered consistency proof fails, naming the checkpoints.
    let mut tampered = stamp.clone();
    let node = tampered["proofs"]["consistency"]["path"][0]
        .as_str()
        .unwrap()
        .to_owned();
    tampered["proofs"]["consistency"]["path"][0] = serde_json::json!(flip_hex(&node));
    std::fs::write(
        sandbox.path("bad-consistency.html"),
        with_stamp(&html, &tampered),
    )
    .unwrap();
    let (code, said, _) = verify(&sandbox, "bad-consistency.html", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "the consistency proof from the checkpoint of {from} bundles to that of {to} does not hold"
        )),
        "{said}"
    );
    // A proof edited in the CSV fails, naming the row and the bundle.
    let leaf = inclusion[0]["leaf"].as_str().unwrap();
    let seq = inclusion[0]["seq"].as_u64().unwrap();
    let path = inclusion[0]["path"][0].as_str().unwrap();
    let bad = csv.replacen(
        &format!("{leaf} {path}"),
        &format!("{leaf} {}", flip_hex(path)),
        1,
    );
    assert_ne!(bad, csv);
    std::fs::write(sandbox.path("bad-proof.csv"), bad).unwrap();
    let (code, said, _) = verify(&sandbox, "bad-proof.csv", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            ": bundle #{seq}: its inclusion proof does not lead to the root"
        )) && said.contains("proof: row "),
        "{said}"
    );
    // A sample row edited (its status flipped) fails.
    let sample_row = csv
        .split("\r\n")
        .find(|row| {
            row.ends_with(&format!(",{then},{month},{then}")) && row.contains(",needs attestation,")
        })
        .unwrap();
    let edited = sample_row.replacen(",needs attestation,", ",met,", 1);
    std::fs::write(
        sandbox.path("bad-sample.csv"),
        csv.replacen(sample_row, &edited, 1),
    )
    .unwrap();
    let (code, said, _) = verify(&sandbox, "bad-sample.csv", "kit");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("differs\n  report: ") && said.contains(",met,"),
        "{said}"
    );
}

#[test]
fn bad_sample_dates_are_refused_with_the_reason() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .date()
        .to_string();
    for (date, reason) in [
        ("2026-13-45", "is neither RFC 3339 nor YYYY-MM-DD"),
        ("2001-01-01", "is outside the period"),
        (tomorrow.as_str(), "is in the future"),
        (
            &format!("{month}-01T00:00:01Z"),
            "is before the first evidence bundle",
        ),
    ] {
        for format in ["csv", "pdf"] {
            let stderr = sandbox.run(
                &[
                    "report",
                    "--framework",
                    "hipaa",
                    "--period",
                    &month,
                    "--sample-dates",
                    date,
                    "--format",
                    format,
                    "--out",
                    "x",
                ],
                1,
            );
            assert!(stderr.contains(reason), "{date}: {stderr}");
        }
    }
    assert!(!sandbox.path("x").exists());
}

#[test]
fn the_auditor_kit_carries_a_control_to_evidence_index_and_an_html_manifest() {
    let sandbox = Sandbox::new();
    sandbox.run(&["scan"], 0);
    let month = this_month();
    sandbox.run(
        &[
            "evidence",
            "export",
            "--out",
            "kit",
            "--period",
            &month,
            "--framework",
            "hipaa",
        ],
        0,
    );
    // The kit with its auditor files verifies: both are signed by the MANIFEST.
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--trust-kit-key"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<String> = sandbox
        .read("kit/bundles.jsonl")
        .lines()
        .map(str::to_owned)
        .collect();
    let index = sandbox.read("kit/auditor/control-evidence.csv");
    let mut rows = index.split("\r\n");
    assert_eq!(
        rows.next(),
        Some("framework,control,status,check,device,bundle_seq,bundle_sha256")
    );
    let mut with_bundle = 0;
    for row in rows.filter(|r| !r.is_empty()) {
        assert!(row.starts_with("HIPAA,"), "{row}");
        let cells: Vec<&str> = row.rsplitn(3, ',').collect();
        let (hash, seq) = (cells[0], cells[1]);
        if seq.is_empty() {
            continue;
        }
        // The hash an auditor computes from the kit's own line of that bundle.
        let line = &lines[seq.parse::<usize>().unwrap()];
        use sha2::Digest as _;
        assert_eq!(
            hash,
            hex::encode(sha2::Sha256::digest(line.as_bytes())),
            "{row}"
        );
        with_bundle += 1;
    }
    assert!(with_bundle > 0, "no row cites a bundle:\n{index}");
    let html = sandbox.read("kit/auditor/manifest.html");
    assert!(html.contains("<h2>Control-to-evidence index</h2>"));
    for file in [
        "bundles.jsonl",
        "appliance.pub",
        "auditor/control-evidence.csv",
    ] {
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(
            std::fs::read(sandbox.path(&format!("kit/{file}"))).unwrap(),
        ));
        assert!(
            html.contains(&format!(
                "<tr><td><code>{file}</code></td><td><code>{hash}</code>"
            )),
            "{file} not listed with its SHA-256"
        );
    }
    // Bad input: an unknown framework is refused before anything is written.
    let stderr = sandbox.run(
        &[
            "evidence",
            "export",
            "--out",
            "kit2",
            "--period",
            &month,
            "--framework",
            "iso",
        ],
        1,
    );
    assert!(stderr.contains("unknown framework `iso`"), "{stderr}");
    assert!(!sandbox.path("kit2").exists());
}

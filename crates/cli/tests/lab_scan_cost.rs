//! Issue 21 against the namespace lab: per-check cadence and the incremental SUID walk lose no
//! coverage. A second scan carries the hourly checks that passed (saying when they were observed)
//! and still finds SUID programs dropped into `/usr/share` since the first, in an existing
//! directory and in a new directory tree; `--all` runs everything again; the kit says what ran
//! and what was carried, and verifies.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::collections::BTreeSet;

use common::{LAB_TOOLS, Lab, osiris, result, scan_json, text, verified_kit};

fn unexpected(results: &[serde_json::Value], target: &str) -> BTreeSet<String> {
    let suid = result(results, target, "LIN-SUIDBASE-001");
    assert_ne!(suid["status"], "error", "{suid}");
    suid["observed"]["unexpected"]
        .as_array()
        .unwrap_or_else(|| panic!("{suid}"))
        .iter()
        .map(|path| path.as_str().unwrap().to_owned())
        .collect()
}

fn carried(results: &[serde_json::Value]) -> BTreeSet<(String, String)> {
    results
        .iter()
        .filter(|r| r["carried"] == true)
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_owned(),
                r["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_second_scan_carries_what_is_not_due_and_still_finds_dropped_suid_programs() {
    if !test_support::require_root(
        "a_second_scan_carries_what_is_not_due_and_still_finds_dropped_suid_programs",
        LAB_TOOLS,
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let config = lab.config();
    let catalog = catalog::embedded().unwrap();
    let hourly: BTreeSet<String> = catalog
        .for_platform(model::Platform::Linux)
        .filter(|runbook| runbook.interval.is_some())
        .map(|runbook| runbook.id.clone())
        .collect();
    assert!(hourly.contains("LIN-PWQUALITY-001"), "{hourly:?}");
    assert!(!hourly.contains("LIN-SUIDBASE-001"));

    // 1. The first scan runs everything (and walks the SUID search paths whole).
    let first = scan_json(work.path(), &config)["results"]
        .as_array()
        .unwrap()
        .clone();
    assert!(carried(&first).is_empty(), "nothing to carry yet");
    let before = unexpected(&first, "target1");
    let passed_hourly: BTreeSet<(String, String)> = first
        .iter()
        .filter(|r| {
            hourly.contains(r["check"].as_str().unwrap())
                && (r["status"] == "pass" || r["status"] == "skipped")
        })
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_owned(),
                r["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        !passed_hourly.is_empty(),
        "some hourly check passes on the lab targets: {first:#?}"
    );

    // 2. Drift between the two scans: a SUID program in an existing directory of /usr/share,
    // and a set-group-ID one in a new directory tree.
    lab.as_root(
        "1",
        "cp /bin/true /usr/share/osiris-dropped && chmod 4755 /usr/share/osiris-dropped && \
         mkdir -p /usr/share/osiris-new/deeper && cp /bin/true /usr/share/osiris-new/deeper/x && \
         chmod 2755 /usr/share/osiris-new/deeper/x",
    );
    let second_json = scan_json(work.path(), &config);
    let second = second_json["results"].as_array().unwrap().clone();
    let found = unexpected(&second, "target1");
    let planted: BTreeSet<String> = [
        "/usr/share/osiris-dropped".to_owned(),
        "/usr/share/osiris-new/deeper/x".to_owned(),
    ]
    .into();
    assert_eq!(
        found.difference(&before).cloned().collect::<BTreeSet<_>>(),
        planted,
        "exactly the dropped programs are new"
    );
    assert_eq!(
        result(&second, "target1", "LIN-SUIDBASE-001")["status"],
        "fail"
    );
    assert_eq!(
        unexpected(&second, "target2"),
        unexpected(&first, "target2"),
        "target2 did not change"
    );
    // Exactly the hourly checks that passed are carried, unchanged, with their observation time.
    assert_eq!(carried(&second), passed_hourly);
    for (target, check) in &passed_hourly {
        let now = result(&second, target, check);
        let then = result(&first, target, check);
        assert_eq!(now["status"], then["status"]);
        assert_eq!(now["observed"], then["observed"]);
        let at = now["observed_at"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{at}"
        );
    }

    // 3. Removing them makes the check pass again without waiting for a full walk.
    lab.as_root(
        "1",
        "rm -rf /usr/share/osiris-dropped /usr/share/osiris-new",
    );
    let third = scan_json(work.path(), &config)["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(unexpected(&third, "target1"), before);

    // 4. `--all` runs every check now.
    let out = osiris(
        work.path(),
        &[
            "scan",
            "--all",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(carried(all["results"].as_array().unwrap()).is_empty());

    // 5. The evidence: the second scan's bundle of target1 holds what ran, and names what it
    // carried with the time it was observed; the kit verifies.
    let data_dir = lab.dir.join("osiris-data");
    let bundles = verified_kit(work.path(), &data_dir, "kit");
    let seq = second_json["evidence"]["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["target"] == "target1")
        .unwrap()["seq"]
        .clone();
    let bundle = bundles.iter().find(|b| b["seq"] == seq).unwrap();
    let body = &bundle["body"];
    let in_results: BTreeSet<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    let carried_here: BTreeSet<&str> = body["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = passed_hourly
        .iter()
        .filter(|(target, _)| target == "target1")
        .map(|(_, check)| check.as_str())
        .collect();
    assert_eq!(carried_here, expected);
    assert!(in_results.is_disjoint(&carried_here));
    assert_eq!(
        in_results.len() + carried_here.len(),
        catalog.for_platform(model::Platform::Linux).count()
    );
    assert_eq!(
        body["summary"]["total"].as_u64(),
        Some(in_results.len() as u64)
    );
}

//! The report summary gives the same report as every bundle read one by one: a real store, scans
//! over three days (one sealed out of time order), an endpoint agent, an attestation and an
//! exception, compared at midnights, mid-day moments, before the first bundle and at the end.

use evidence::BundleDraft;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use compliance::{Ledger, Period};

use super::{fill_ledger, fill_ledger_from_summary};

fn draft(kind: &str, time: OffsetDateTime, body: serde_json::Value) -> BundleDraft {
    BundleDraft {
        site: "clinic-1".to_owned(),
        kind: kind.to_owned(),
        catalog: "test".to_owned(),
        time,
        body,
    }
}

fn scan(time: OffsetDateTime, target: &str, results: &[(&str, &str)]) -> BundleDraft {
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|(check, status)| {
            json!({"check": check, "status": status, "observed": {"at": time.hour(), "s": "é \"q\""},
                   "reason": format!("{status} at {}", time.hour()), "expected": "", "controls": []})
        })
        .collect();
    draft(
        "scan",
        time,
        json!({"target": {"name": target, "platform": "linux", "device_type": "server"},
               "results": results}),
    )
}

fn log() -> Vec<BundleDraft> {
    vec![
        scan(
            datetime!(2026-10-31 23:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "fail")],
        ),
        draft(
            "agent_enrollment",
            datetime!(2026-10-31 23:30 UTC),
            json!({"agent_id": "ag-1", "hostname": "ws-01.clinic", "os": "Windows", "os_version": "11",
                   "platform": "windows", "agent_version": "1", "device_public_key": "k",
                   "certificate_sha256": "c", "token_id": "t"}),
        ),
        scan(
            datetime!(2026-11-01 00:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "pass"), ("LIN-NTP-001", "fail")],
        ),
        scan(
            datetime!(2026-11-01 09:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "fail")],
        ),
        scan(
            datetime!(2026-11-01 12:00 UTC),
            "dc-01",
            &[("LIN-NTP-001", "pass")],
        ),
        // Sealed after 09:00 but timed before it: 09:00 stays the newest of the day.
        scan(
            datetime!(2026-11-01 08:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "pass")],
        ),
        draft(
            "agent_result",
            datetime!(2026-11-01 13:00 UTC),
            json!({"agent_id": "ag-1", "seq": 1, "check_id": "WIN-BL-001", "status": "fail",
                   "facts": {"protection": "off"}, "observed_at_unix_ms": 0,
                   "catalog_version": "x", "signed": "", "signature": ""}),
        ),
        draft(
            "exception",
            datetime!(2026-11-01 14:00 UTC),
            json!({"check": "LIN-NTP-001", "target": "pacs-01", "reason": "r", "compensating": "c",
                   "owner": "o", "expires": "2026-11-02"}),
        ),
        draft(
            "attestation",
            datetime!(2026-11-01 15:00 UTC),
            json!({"control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "done", "by": "Dr A",
                   "expires": "2027-01-01"}),
        ),
        scan(
            datetime!(2026-11-02 06:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "pass")],
        ),
        scan(
            datetime!(2026-11-02 18:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "error"), ("LIN-NTP-001", "pass")],
        ),
        draft(
            "agent_result",
            datetime!(2026-11-02 19:00 UTC),
            json!({"agent_id": "ag-1", "seq": 2, "check_id": "WIN-BL-001", "status": "pass",
                   "facts": {"protection": "on"}, "observed_at_unix_ms": 0,
                   "catalog_version": "x", "signed": "", "signature": ""}),
        ),
        scan(
            datetime!(2026-11-03 00:00 UTC),
            "dc-01",
            &[("LIN-NTP-001", "fail")],
        ),
        scan(
            datetime!(2026-12-01 00:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "fail")],
        ),
    ]
}

/// Everything a report shows of a ledger: the CSV of HIPAA and CIS and the ledger's own figures.
fn report_of(ledger: &Ledger) -> String {
    let runbooks = crate::setup::load_catalog().expect("catalogue");
    let frameworks = catalog::embedded_frameworks().expect("frameworks");
    let mut out = format!(
        "scans {} agent results {} newest #{:?} first {:?} results {:?} targets {:?}\n",
        ledger.scans_in_period(),
        ledger.agent_results_in_period(),
        ledger.newest_seq(),
        ledger.first_bundle_at(),
        ledger.results_seqs(),
        ledger.targets()
    );
    for framework in [model::Framework::Hipaa, model::Framework::Cis] {
        let catalog = frameworks.get(framework).expect("catalogue");
        let assessment = compliance::assess(catalog, &runbooks, ledger);
        let cx = compliance::render::ReportContext {
            site: "clinic-1",
            origin: "",
            key_id: "",
            catalog_version: "",
            frameworks_version: "",
            generated_at: time::OffsetDateTime::UNIX_EPOCH,
            checkpoint: None,
            tool_version: "",
            samples: &[],
            proofs: &compliance::Proofs::NONE,
        };
        out.push_str(&compliance::render::csv(&assessment, ledger, &cx));
    }
    out
}

#[test]
fn the_summary_gives_the_report_every_bundle_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = crate::setup::runtime().expect("runtime");
    let store = runtime
        .block_on(crate::setup::open_store(dir.path(), "clinic-1"))
        .expect("store");
    let mut log = log();
    let tail = log.split_off(8);
    for draft in log {
        runtime.block_on(store.append(draft)).expect("append");
    }
    // The checkpoint brings the summary up to here; the rest of the log is not summarised yet
    // and is read bundle by bundle, until the second checkpoint covers it too.
    runtime
        .block_on(store.create_checkpoint())
        .expect("checkpoint");
    for draft in tail {
        runtime.block_on(store.append(draft)).expect("append");
    }
    let mut distinct = std::collections::BTreeSet::new();
    for summarised in [8, 14] {
        if summarised == 14 {
            runtime
                .block_on(store.create_checkpoint())
                .expect("checkpoint");
        }
        assert_eq!(
            runtime
                .block_on(store.reads().summary_through())
                .expect("through"),
            summarised
        );
        compare_at_moments(&runtime, &store, &mut distinct);
    }
    // The moments describe different states, so the comparison covers more than one.
    assert!(distinct.len() >= 8, "{}", distinct.len());
    runtime.block_on(store.close());
}

fn compare_at_moments(
    runtime: &tokio::runtime::Runtime,
    store: &store::Store,
    distinct: &mut std::collections::BTreeSet<String>,
) {
    let moments = [
        None,
        Some(datetime!(2026-10-15 00:00 UTC)),
        Some(datetime!(2026-11-01 00:00 UTC)),
        Some(datetime!(2026-11-01 08:30 UTC)),
        Some(datetime!(2026-11-01 09:00 UTC)),
        Some(datetime!(2026-11-01 09:00:00.001 UTC)),
        Some(datetime!(2026-11-02 00:00 UTC)),
        Some(datetime!(2026-11-02 18:30 UTC)),
        Some(datetime!(2026-11-03 00:00 UTC)),
        Some(datetime!(2026-11-03 00:00:00.001 UTC)),
        Some(datetime!(2026-11-20 10:00 UTC)),
        Some(datetime!(2026-12-15 00:00 UTC)),
    ];
    for as_of in moments {
        let period = Period::month("2026-11").expect("period");
        let mut every_bundle = Ledger::new(period.clone(), as_of);
        runtime
            .block_on(fill_ledger(
                store.lines_of_kinds(0..store.size(), &compliance::LEDGER_KINDS),
                &mut every_bundle,
            ))
            .expect("every bundle");
        let mut summary = Ledger::new(period, as_of);
        runtime
            .block_on(fill_ledger_from_summary(
                store.reads(),
                store.size(),
                &mut summary,
            ))
            .expect("summary");
        let expected = report_of(&every_bundle);
        let actual = report_of(&summary);
        if let Some((line, (a, e))) = actual
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (a, e))| a != e)
        {
            panic!("as of {as_of:?}, line {line}:\n summary:      {a}\n every bundle: {e}");
        }
        assert_eq!(actual, expected, "as of {as_of:?}");
        distinct.insert(expected);
    }
}

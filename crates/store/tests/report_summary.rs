//! The report summary against real SQLite files: what a checkpoint brings it up to, that a
//! rebuild and a report's fill-in of bundles stored before migration 0005 give the same rows, and
//! that no bundle body, however odd, stops an append.

mod common;

use std::fmt::Write as _;

use common::config;
use evidence::log::BundleDraft;
use expect_test::{Expect, expect};
use futures_util::TryStreamExt as _;
use serde_json::json;
use store::Store;
use time::macros::datetime;

fn draft(kind: &str, time: time::OffsetDateTime, body: serde_json::Value) -> BundleDraft {
    BundleDraft {
        site: "clinic-1".to_owned(),
        kind: kind.to_owned(),
        catalog: "2026.11.1".to_owned(),
        time,
        body,
    }
}

fn scan(time: time::OffsetDateTime, target: &str, results: &[(&str, &str, &str)]) -> BundleDraft {
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|(check, status, observed)| {
            json!({"check": check, "status": status, "observed": {"value": observed},
                   "reason": format!("value is {observed}"), "expected": "", "controls": []})
        })
        .collect();
    draft(
        "scan",
        time,
        json!({"target": {"name": target, "platform": "linux", "device_type": "server"},
               "results": results}),
    )
}

/// The log every test stores: two days of scans of two hosts, an agent result, a heal bundle
/// and scans with malformed results.
fn log() -> Vec<BundleDraft> {
    vec![
        scan(
            datetime!(2026-11-02 08:00 UTC),
            "pacs-01",
            &[
                ("LIN-SSH-001", "pass", "no"),
                ("LIN-NTP-001", "fail", "off"),
            ],
        ),
        scan(
            datetime!(2026-11-02 08:05 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "fail", "yes \"quoted\" é")],
        ),
        // Sealed later but timed earlier: the newest of the day is still the 08:05 one.
        scan(
            datetime!(2026-11-02 07:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "pass", "old")],
        ),
        draft(
            "heal",
            datetime!(2026-11-02 09:00 UTC),
            json!({"target": "pacs-01"}),
        ),
        scan(
            datetime!(2026-11-03 00:00 UTC),
            "pacs-01",
            &[("LIN-SSH-001", "error", "")],
        ),
        scan(
            datetime!(2026-11-03 10:00 UTC),
            "dc-01",
            &[("LIN-SSH-001", "skipped", "")],
        ),
        draft(
            "agent_result",
            datetime!(2026-11-03 11:00 UTC),
            json!({"agent_id": "ag-7", "seq": 1, "check_id": "WIN-BL-001", "status": "pass",
                   "facts": {"protection": "on"}, "observed_at_unix_ms": 0,
                   "catalog_version": "x", "signed": "", "signature": ""}),
        ),
        draft(
            "scan",
            datetime!(2026-11-03 12:00 UTC),
            json!({"target": {"name": "odd"}, "results": ["text", 5, {"status": "pass"},
                   {"check": 7, "status": "pass"}, {"check": "LIN-X", "status": "pass"}]}),
        ),
        draft(
            "scan",
            datetime!(2026-11-03 12:01 UTC),
            json!({"target": 5, "results": "nonsense"}),
        ),
        draft("scan", datetime!(2026-11-03 12:02 UTC), json!({})),
    ]
}

async fn summary(store: &Store) -> String {
    summary_of(store.reads()).await
}

async fn summary_of(reads: store::LogReads<'_>) -> String {
    let mut out = String::new();
    for day in reads.bundle_days().await.expect("bundle days") {
        let _ = writeln!(
            out,
            "{} {:<12} {} bundles #{}..#{} from {}",
            day.day, day.kind, day.bundles, day.first_seq, day.last_seq, day.first_at
        );
    }
    let rows: Vec<store::CheckDay> = reads
        .check_days("2026-11-01", "2026-12-01")
        .try_collect()
        .await
        .expect("check days");
    for r in rows {
        let _ = writeln!(
            out,
            "{} {} {} {} +{} -{} newest {} {} {:?} at {} #{}",
            r.day,
            if r.agent { "agent" } else { "scan" },
            r.target,
            r.check,
            r.passes,
            r.fails,
            r.status,
            r.observed,
            r.reason,
            r.at,
            r.seq
        );
    }
    out
}

#[track_caller]
fn check(actual: &str, expect: Expect) {
    expect.assert_eq(actual);
}

#[tokio::test]
async fn appends_keep_day_counts_and_the_newest_result_and_a_rebuild_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    for draft in log() {
        store.append(draft).await.unwrap();
    }
    assert_eq!(store.size(), 10, "no bundle body stops an append");
    assert_eq!(store.reads().summary_through().await.unwrap(), 0);
    assert_eq!(
        summary(&store).await,
        "",
        "appends leave the summary to the checkpoint"
    );
    store.create_checkpoint().await.unwrap();
    assert_eq!(store.reads().summary_through().await.unwrap(), 10);
    let kept = summary(&store).await;
    check(
        &kept,
        expect![[r#"
            2026-11-02 scan         3 bundles #0..#2 from 2026-11-02T07:00:00.000Z
            2026-11-03 agent_result 1 bundles #6..#6 from 2026-11-03T11:00:00.000Z
            2026-11-03 scan         5 bundles #4..#9 from 2026-11-03T00:00:00.000Z
            2026-11-02 scan pacs-01 LIN-NTP-001 +0 -1 newest fail {"value":"off"} "value is off" at 2026-11-02T08:00:00.000Z #0
            2026-11-02 scan pacs-01 LIN-SSH-001 +2 -1 newest fail {"value":"yes \"quoted\" é"} "value is yes \"quoted\" é" at 2026-11-02T08:05:00.000Z #1
            2026-11-03 agent ag-7 WIN-BL-001 +1 -0 newest pass {"protection":"on"} "reported by endpoint agent ag-7" at 2026-11-03T11:00:00.000Z #6
            2026-11-03 scan dc-01 LIN-SSH-001 +0 -0 newest skipped {"value":""} "value is " at 2026-11-03T10:00:00.000Z #5
            2026-11-03 scan odd LIN-X +1 -0 newest pass null "" at 2026-11-03T12:00:00.000Z #7
            2026-11-03 scan pacs-01 LIN-SSH-001 +0 -0 newest error {"value":""} "value is " at 2026-11-03T00:00:00.000Z #4
        "#]],
    );
    store.rebuild_report_summary().await.unwrap();
    assert_eq!(summary(&store).await, kept, "a rebuild gives the same rows");
    store.close().await;

    // One batch (one transaction, aggregated in memory first) gives the same rows.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    store.append_batch(log()).await.unwrap();
    store.create_checkpoint().await.unwrap();
    assert_eq!(summary(&store).await, kept, "one batch gives the same rows");
    store.close().await;
}

#[tokio::test]
async fn a_report_fills_the_summary_in_from_bundles_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    for draft in log() {
        store.append(draft).await.unwrap();
    }
    store.create_checkpoint().await.unwrap();
    let kept = summary(&store).await;
    store.close().await;
    // Take the database back to schema 4, as a build before the summary left it.
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            dir.path().join("osiris.db").display()
        ))
        .await
        .unwrap();
        for sql in [
            "DROP INDEX evidence_by_kind",
            "DROP TABLE check_days",
            "DROP TABLE bundle_days",
            "DELETE FROM meta WHERE key = 'report_summary_through'",
            "DELETE FROM _sqlx_migrations WHERE version = 5",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    // Opening the store alone leaves the summary to the next checkpoint or report.
    let store = Store::open(&config(dir.path())).await.unwrap();
    assert_eq!(summary(&store).await, "");
    store.close().await;
    // A report's view fills it in.
    let (reader, identity) = store::LogReader::open_migrated(&config(dir.path()))
        .await
        .unwrap();
    assert!(identity.origin.starts_with("osiris-appliance/"));
    assert_eq!(summary_of(reader.reads()).await, kept);
    reader.close().await;
    let store = Store::open(&config(dir.path())).await.unwrap();
    assert_eq!(summary(&store).await, kept);
    // And checkpoints go on adding to it after the fill-in.
    store
        .append(scan(
            datetime!(2026-11-03 13:00 UTC),
            "dc-01",
            &[("LIN-SSH-001", "pass", "no")],
        ))
        .await
        .unwrap();
    store.create_checkpoint().await.unwrap();
    let after = summary(&store).await;
    assert!(
        after.contains("2026-11-03 scan dc-01 LIN-SSH-001 +1 -0 newest pass"),
        "{after}"
    );
    assert!(after.contains("2026-11-03 scan         6 bundles #4..#10"));
    store.close().await;
}

#[tokio::test]
async fn a_report_rebuilds_the_tree_of_each_checkpoint_and_its_proofs_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    let mut drafts = log().into_iter();
    for draft in drafts.by_ref().take(4) {
        store.append(draft).await.unwrap();
    }
    let first = store.create_checkpoint().await.unwrap();
    for draft in drafts {
        store.append(draft).await.unwrap();
    }
    let second = store.create_checkpoint().await.unwrap();
    let states = store.reads().checkpoint_states().await.unwrap();
    assert_eq!(
        states
            .iter()
            .map(|s| (s.checkpoint.size, s.anchored))
            .collect::<Vec<_>>(),
        [(first.size, false), (second.size, false)]
    );
    // The tree from the stored leaf hashes has the signed roots and gives the writer's proofs.
    for checkpoint in [&first, &second] {
        let tree = store.reads().merkle_tree(checkpoint.size).await.unwrap();
        let body: String = checkpoint
            .note
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect();
        let signed = evidence::Checkpoint::parse_body(&body).unwrap();
        assert_eq!(tree.len(), checkpoint.size);
        assert_eq!(tree.root(), signed.root);
        for seq in 0..checkpoint.size {
            assert_eq!(
                tree.inclusion_proof(seq, checkpoint.size).unwrap(),
                store.inclusion_proof(seq, checkpoint.size).await.unwrap()
            );
        }
    }
    // A size beyond the log is refused with the reason.
    let err = store
        .reads()
        .merkle_tree(second.size + 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

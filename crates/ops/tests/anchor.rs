//! OpenTimestamps through `ops::anchor` against the local calendar (crates/test-support): a
//! checkpoint is submitted, stays pending until the calendar mines a block, is then anchored, and
//! the exported kit proves it against the block headers. Calendars that are down are reported,
//! not fatal, unless none accepted; no calendars at all is a configuration error.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::time::Duration;

use expect_test::expect;
use test_support::calendar::LabCalendar;

use common::{bad_config, runtime, verified_kit};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Nothing listens there: connection refused at once.
const DOWN: &str = "http://127.0.0.1:1";

/// A store in `dir` with one sealed bundle.
async fn store_with_evidence(dir: &std::path::Path) -> store::Store {
    let store = ops::setup::open_store(&dir.join("data"), "clinic")
        .await
        .unwrap();
    store
        .append(evidence::BundleDraft {
            site: "clinic".to_owned(),
            kind: "scan".to_owned(),
            catalog: common::catalog().version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::json!({"note": "anything sealed"}),
        })
        .await
        .unwrap();
    store
}

/// The local calendar mines regtest-difficulty blocks, which the appliance accepts only with
/// [`ots::client::REGTEST_ENV`] set. A test that needs them re-runs itself in a child process
/// with that variable (setting it in this process would need `unsafe`): returns true in the child.
fn in_regtest_mode(test: &str) -> bool {
    if std::env::var(ots::client::REGTEST_ENV).as_deref() == Ok("1") {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env(ots::client::REGTEST_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in regtest mode:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[test]
fn a_checkpoint_is_submitted_pending_anchored_and_proven_in_the_kit() {
    if !in_regtest_mode("a_checkpoint_is_submitted_pending_anchored_and_proven_in_the_kit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let calendar = LabCalendar::start().unwrap();
    let url = calendar.base_url().to_owned();
    runtime().block_on(async {
        let store = store_with_evidence(dir.path()).await;
        let submitted =
            ops::anchor::submit_checkpoint(&store, &[DOWN.to_owned(), url.clone()], TIMEOUT)
                .await
                .unwrap();
        assert_eq!(submitted.checkpoint_size, 1);
        assert_eq!(submitted.accepted, vec![url.clone()]);
        assert_eq!(submitted.refused.len(), 1, "{:?}", submitted.refused);
        assert!(
            submitted.refused[0].starts_with(&format!("{DOWN}: ")),
            "{:?}",
            submitted.refused
        );
        assert_eq!(calendar.n_pending(), 1);

        // Not mined yet: still pending, and said so.
        let upgraded = ops::anchor::upgrade_pending(&store, Some(&url), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(upgraded.len(), 1);
        assert_eq!(upgraded[0].checkpoint_size, 1);
        assert_eq!(upgraded[0].bitcoin_height, None);
        assert_eq!(upgraded[0].problem, None);
        let proofs = store.ots_proofs().await.unwrap();
        assert_eq!(proofs[0].status, store::OtsStatus::Pending);
        assert_eq!(proofs[0].calendars, vec![url.clone()]);

        let height = calendar.mine();
        let upgraded = ops::anchor::upgrade_pending(&store, Some(&url), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(upgraded.len(), 1);
        assert_eq!(upgraded[0].bitcoin_height, Some(height));
        let proofs = store.ots_proofs().await.unwrap();
        assert_eq!(proofs[0].status, store::OtsStatus::Anchored);
        assert_eq!(proofs[0].bitcoin_height, Some(height));
        // Anchored proofs are not asked about again.
        let n_requests = calendar.n_requests();
        assert!(
            ops::anchor::upgrade_pending(&store, Some(&url), TIMEOUT)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(calendar.n_requests(), n_requests);

        // The kit carries the proof; with the block header an auditor checks it offline.
        let kit = dir.path().join("kit");
        verified_kit(&store, &kit).await;
        let headers =
            ots::bitcoin::parse_headers_file(&calendar.headers_file(), ots::client::work_floor())
                .unwrap();
        let report = evidence::kit::verify(
            &kit,
            &evidence::kit::VerifyOptions {
                pinned_key: None,
                block_headers: headers,
                witness: None,
            },
        );
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let anchored = report.ots.iter().find(|c| c.size == 1).unwrap();
        assert!(
            matches!(
                anchored.status,
                evidence::kit::OtsStatus::Bitcoin {
                    height: h,
                    verified_time: Some(_),
                    header_missing: false,
                } if h == height
            ),
            "{:?}",
            anchored.status
        );
        store.close().await;
    });
}

#[test]
fn when_no_calendar_accepts_nothing_is_stored_and_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = store_with_evidence(dir.path()).await;
        let err = ops::anchor::submit_checkpoint(&store, &[DOWN.to_owned()], TIMEOUT)
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<ops::Failed>().is_some(), "{err:#}");
        assert!(
            format!("{err:#}")
                .starts_with("no calendar accepted checkpoint 1:\n  http://127.0.0.1:1: "),
            "{err:#}"
        );
        assert!(store.ots_proofs().await.unwrap().is_empty());
        store.close().await;
    });
}

#[test]
fn no_calendars_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = store_with_evidence(dir.path()).await;
        let err = ops::anchor::submit_checkpoint(&store, &[], TIMEOUT)
            .await
            .unwrap_err();
        expect!["no calendars: set evidence.calendars or pass --calendar URL"]
            .assert_eq(&bad_config(&err, dir.path()));
        assert!(store.ots_proofs().await.unwrap().is_empty());
        store.close().await;
    });
}

#[test]
fn a_calendar_that_went_away_leaves_the_proof_pending() {
    let dir = tempfile::tempdir().unwrap();
    let calendar = LabCalendar::start().unwrap();
    let url = calendar.base_url().to_owned();
    runtime().block_on(async {
        let store = store_with_evidence(dir.path()).await;
        ops::anchor::submit_checkpoint(&store, std::slice::from_ref(&url), TIMEOUT)
            .await
            .unwrap();
        drop(calendar);
        let upgraded = ops::anchor::upgrade_pending(&store, None, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(upgraded.len(), 1);
        assert_eq!(upgraded[0].bitcoin_height, None);
        // The unreachable calendar is named, so the operator knows why nothing moved.
        let problem = upgraded[0].problem.as_deref().unwrap_or_default();
        assert!(problem.contains(&url), "{upgraded:?}");
        let proofs = store.ots_proofs().await.unwrap();
        assert_eq!(proofs[0].status, store::OtsStatus::Pending);
        store.close().await;
    });
}

//! Integration tests of the evidence store against real SQLite files in temp dirs.

mod common;

use std::sync::Arc;

use common::{config, scan_draft, verify_log};
use store::{OtsStatus, OtsUpdate, Store, StoreError};

#[tokio::test]
async fn append_reopen_keeps_size_head_and_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    assert_eq!(store.size(), 0);
    assert_eq!(store.head(), None);
    let first = store.append(scan_draft(0)).await.expect("append");
    assert_eq!(first.seq, 0);
    let batch = store
        .append_batch((1..10).map(scan_draft).collect())
        .await
        .expect("batch");
    assert_eq!(
        batch.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..10).collect::<Vec<_>>()
    );
    let head = store.head().expect("head");
    let root = store.root().await.expect("root");
    assert_eq!(verify_log(&store).await, 10);
    store.close().await;

    let store = Store::open(&config(dir.path())).await.expect("reopen");
    assert_eq!(store.size(), 10);
    assert_eq!(store.head(), Some(head));
    assert_eq!(store.root().await.expect("root"), root);
    let next = store
        .append(scan_draft(10))
        .await
        .expect("append after reopen");
    assert_eq!(next.seq, 10);
    assert_eq!(verify_log(&store).await, 11);
    let entry = store.entry(10).await.expect("entry").expect("present");
    assert_eq!(entry.line_hash, next.line_hash);
    assert_eq!(entry.kind, "scan");
    assert_eq!(store.entry(11).await.expect("entry"), None);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_contiguous_seqs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&config(dir.path())).await.expect("open"));
    let mut tasks = Vec::new();
    for task_idx in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..500 {
                acked.push(
                    store
                        .append(scan_draft(task_idx * 1000 + n))
                        .await
                        .expect("append"),
                );
            }
            acked
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.expect("task").into_iter().map(|a| a.seq));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..4000).collect::<Vec<_>>());
    assert_eq!(verify_log(&store).await, 4000);
}

#[tokio::test]
async fn triggers_reject_update_and_delete_of_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store.append(scan_draft(0)).await.expect("append");
    let db_path = store.db_path().to_owned();
    store.close().await;

    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("connect");
    let update = sqlx::query("UPDATE evidence SET kind = 'heal' WHERE seq = 0")
        .execute(&mut conn)
        .await;
    let err = update.expect_err("update must be rejected").to_string();
    assert!(
        err.contains("evidence is append-only: rows cannot be updated"),
        "{err}"
    );
    let delete = sqlx::query("DELETE FROM evidence").execute(&mut conn).await;
    let err = delete.expect_err("delete must be rejected").to_string();
    assert!(
        err.contains("evidence is append-only: rows cannot be deleted"),
        "{err}"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM evidence")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[tokio::test]
async fn newer_schema_is_refused_and_file_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store.append(scan_draft(0)).await.expect("append");
    let db_path = store.db_path().to_owned();
    store.close().await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
            .await
            .expect("connect");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', 1, X'00', 0)",
        )
        .execute(&mut conn)
        .await
        .expect("insert future migration");
        // Fold the WAL into the main file so the comparison below covers everything.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .expect("checkpoint");
        conn.close().await.expect("close");
    }
    let before = std::fs::read(&db_path).expect("read db");
    let mtime_before = std::fs::metadata(&db_path)
        .expect("meta")
        .modified()
        .expect("mtime");

    let err = Store::open(&config(dir.path()))
        .await
        .expect_err("newer schema must be refused");
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 9999,
                known: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert_eq!(
        message,
        format!(
            "database {} was written by a newer osiris (schema version 9999, this build knows up to 5); upgrade osiris or use another --data-dir",
            db_path.display()
        )
    );
    assert_eq!(
        std::fs::read(&db_path).expect("read db"),
        before,
        "database bytes changed"
    );
    let mtime_after = std::fs::metadata(&db_path)
        .expect("meta")
        .modified()
        .expect("mtime");
    assert_eq!(mtime_after, mtime_before, "database mtime changed");
}

#[tokio::test]
async fn data_dir_under_a_file_is_not_writable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").expect("write");
    let data_dir = file.join("data");
    let err = Store::open(&config(&data_dir))
        .await
        .expect_err("must fail");
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::DataDirNotWritable { .. }),
        "{err:?}"
    );
    assert_eq!(
        message,
        format!(
            "data directory {} is not writable (choose another with --data-dir or fix its permissions)",
            data_dir.display()
        )
    );
    let cause = std::error::Error::source(&err).expect("the OS reason is the source");
    assert!(
        std::error::Error::source(cause).is_none(),
        "the OS reason is the last cause"
    );
    assert!(
        !message.contains(&cause.to_string()),
        "the cause is printed by whoever walks the chain, not repeated in the message: {message}"
    );
}

#[tokio::test]
async fn corrupt_database_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("osiris.db");
    std::fs::write(&db_path, vec![0x42u8; 8192]).expect("write garbage");
    let err = Store::open(&config(dir.path()))
        .await
        .expect_err("must fail");
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{} is not an SQLite database", db_path.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db_path).expect("read"),
        vec![0x42u8; 8192],
        "garbage file was modified"
    );
}

#[tokio::test]
async fn foreign_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    let original = store.appliance_id().to_owned();
    store.close().await;
    let key_path = dir.path().join("keys").join("appliance.key");
    std::fs::remove_file(&key_path).expect("remove key");
    let err = Store::open(&config(dir.path()))
        .await
        .expect_err("must fail");
    match &err {
        StoreError::ForeignKey {
            db_appliance,
            key_appliance,
            ..
        } => {
            assert_eq!(db_appliance, &original);
            assert_ne!(key_appliance, &original);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().starts_with("key "), "{err}");
}

#[tokio::test]
async fn second_open_of_same_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    let err = Store::open(&config(dir.path()))
        .await
        .expect_err("must fail");
    assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    store.close().await;
    Store::open(&config(dir.path()))
        .await
        .expect("open after close")
        .close()
        .await;
}

#[tokio::test]
async fn checkpoints_proofs_and_ots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store
        .append_batch((0..5).map(scan_draft).collect())
        .await
        .expect("batch");
    let first = store.create_checkpoint().await.expect("checkpoint");
    assert_eq!(first.size, 5);
    let again = store.create_checkpoint().await.expect("checkpoint again");
    assert_eq!(
        again, first,
        "unchanged size must return the stored checkpoint"
    );
    let parsed =
        evidence::Checkpoint::parse_and_verify(&first.note, store.verifier()).expect("verifies");
    assert_eq!(parsed.size, 5);
    assert_eq!(parsed.root, store.root().await.expect("root").1);

    store
        .append_batch((5..8).map(scan_draft).collect())
        .await
        .expect("batch");
    let second = store.create_checkpoint().await.expect("checkpoint");
    assert_eq!(second.size, 8);
    assert_eq!(
        store.latest_checkpoint().await.expect("latest"),
        Some(second.clone())
    );
    assert_eq!(
        store.checkpoints().await.expect("all"),
        vec![first.clone(), second.clone()]
    );

    let root8 = store.root().await.expect("root").1;
    let entry = store.entry(3).await.expect("entry").expect("present");
    let proof = store.inclusion_proof(3, 8).await.expect("inclusion");
    assert!(evidence::verify_inclusion(
        &entry.leaf_hash,
        3,
        8,
        &proof,
        &root8
    ));
    let consistency = store.consistency_proof(5, 8).await.expect("consistency");
    assert!(evidence::verify_consistency(
        5,
        8,
        &parsed.root,
        &root8,
        &consistency
    ));
    let err = store.inclusion_proof(8, 8).await.expect_err("out of range");
    assert!(
        matches!(err, StoreError::OutOfRange { size: 8, .. }),
        "{err:?}"
    );

    let err = store
        .put_ots(OtsUpdate {
            checkpoint_size: 6,
            proof: vec![1],
            status: OtsStatus::Pending,
            calendars: vec![],
            bitcoin_height: None,
        })
        .await
        .expect_err("no checkpoint of size 6");
    assert!(
        matches!(err, StoreError::NoSuchCheckpoint { size: 6 }),
        "{err:?}"
    );
    let calendars = vec![
        "https://a.example".to_owned(),
        "https://b.example".to_owned(),
    ];
    store
        .put_ots(OtsUpdate {
            checkpoint_size: 5,
            proof: vec![1, 2],
            status: OtsStatus::Pending,
            calendars: calendars.clone(),
            bitcoin_height: None,
        })
        .await
        .expect("pending");
    store
        .put_ots(OtsUpdate {
            checkpoint_size: 5,
            proof: vec![3, 4, 5],
            status: OtsStatus::Anchored,
            calendars: calendars.clone(),
            bitcoin_height: Some(870_000),
        })
        .await
        .expect("upgrade");
    let proofs = store.ots_proofs().await.expect("proofs");
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].proof, vec![3, 4, 5]);
    assert_eq!(proofs[0].status, OtsStatus::Anchored);
    assert_eq!(proofs[0].calendars, calendars);
    assert_eq!(proofs[0].bitcoin_height, Some(870_000));
}

#[tokio::test]
async fn unsealable_draft_is_rejected_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    let mut bad = scan_draft(1);
    bad.body = serde_json::json!([1, 2]);
    let err = store
        .append_batch(vec![scan_draft(0), bad])
        .await
        .expect_err("must fail");
    assert!(matches!(err, StoreError::Seal(_)), "{err:?}");
    assert_eq!(store.size(), 0);
    assert_eq!(store.append(scan_draft(2)).await.expect("append").seq, 0);
    assert_eq!(verify_log(&store).await, 1);
}

#[tokio::test]
async fn exported_kit_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store
        .append_batch((0..3).map(scan_draft).collect())
        .await
        .expect("batch");
    store.create_checkpoint().await.expect("checkpoint at 3");
    store
        .append_batch((3..7).map(scan_draft).collect())
        .await
        .expect("batch");
    let out = dir.path().join("kit");
    let summary = store.export_kit(&out).await.expect("export");
    assert_eq!(summary.bundles, 7);
    assert_eq!(summary.checkpoints, 2);
    assert_eq!(summary.root, store.root().await.expect("root").1);
    assert!(
        !summary.signed_final_checkpoint,
        "the store must have stored the final checkpoint itself"
    );
    assert_eq!(
        store
            .latest_checkpoint()
            .await
            .expect("latest")
            .map(|c| c.size),
        Some(7)
    );
    let report = evidence::kit::verify(&out, &evidence::kit::VerifyOptions::default());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.bundles, 7);
    let err = store.export_kit(&out).await.expect_err("existing kit dir");
    assert!(matches!(err, StoreError::Export(_)), "{err:?}");
}

#[tokio::test]
async fn failed_commit_acks_nothing_and_log_rolls_back() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store
        .append_batch((0..5).map(scan_draft).collect())
        .await
        .expect("batch");
    let head = store.head();
    let root = store.root().await.expect("root");
    let url = format!("sqlite://{}", store.db_path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    // Real SQLite failure injected from outside: any insert of seq 5 aborts its transaction.
    sqlx::query(
        "CREATE TRIGGER inject_failure BEFORE INSERT ON evidence WHEN NEW.seq = 5 \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&mut conn)
    .await
    .expect("create trigger");

    let err = store
        .append_batch((5..9).map(scan_draft).collect())
        .await
        .expect_err("commit must fail");
    match &err {
        StoreError::NotCommitted { source } => {
            // SQLite's reason is the cause of the database error, printed once by whoever walks the chain.
            let cause = std::error::Error::source(source.as_ref()).expect("SQLite's reason");
            assert!(cause.to_string().contains("injected failure"), "{cause}");
            assert!(!source.to_string().contains("injected failure"), "{source}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(store.size(), 5);
    assert_eq!(store.head(), head);
    assert_eq!(
        store.root().await.expect("root"),
        root,
        "tree must be rolled back to what is committed"
    );

    sqlx::query("DROP TRIGGER inject_failure")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    conn.close().await.expect("close");
    let next = store
        .append(scan_draft(5))
        .await
        .expect("append after failure");
    assert_eq!(next.seq, 5);
    assert_eq!(verify_log(&store).await, 6);
}

#[tokio::test]
async fn gap_in_seqs_is_reported_as_corrupt() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&config(dir.path())).await.expect("open");
    store
        .append_batch((0..5).map(scan_draft).collect())
        .await
        .expect("batch");
    let url = format!("sqlite://{}", store.db_path().display());
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    // Tampering needs the append-only trigger gone first.
    sqlx::query("DROP TRIGGER evidence_no_delete")
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::query("DELETE FROM evidence WHERE seq = 2")
        .execute(&mut conn)
        .await
        .expect("delete");
    conn.close().await.expect("close");
    let err = Store::open(&config(dir.path()))
        .await
        .expect_err("gap must be refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("evidence seqs are not contiguous from 0"),
        "{err}"
    );
}

#[tokio::test]
async fn heal_attempts_are_kept_and_read_back_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::Store::open(&config(dir.path())).await.expect("open");
    let appended = store.append(scan_draft(0)).await.expect("append");
    for (at, verified) in [(100, false), (200, true), (300, true)] {
        let attempt = store::HealAttempt {
            rule: "L1-LIN-SSH-001".to_owned(),
            target: "web1".to_owned(),
            check: "LIN-SSH-001".to_owned(),
            at,
            verified,
            evidence_seq: Some(appended.seq),
        };
        store.record_heal_attempt(attempt).await.expect("record");
    }
    let since = store.heal_attempts_since(150).await.expect("read");
    assert_eq!(
        since.iter().map(|a| (a.at, a.verified)).collect::<Vec<_>>(),
        vec![(200, true), (300, true)]
    );
    store.close().await;
    // History survives a restart.
    let store = store::Store::open(&config(dir.path()))
        .await
        .expect("reopen");
    assert_eq!(store.heal_attempts_since(0).await.expect("read").len(), 3);
    // The healing log Central Command receives: by row id after a cursor, in pages.
    let first = store.heal_attempts_after(0, 2).await.expect("page 1");
    assert_eq!(
        first.iter().map(|(_, a)| a.at).collect::<Vec<_>>(),
        vec![100, 200]
    );
    let rest = store
        .heal_attempts_after(first[1].0, 2)
        .await
        .expect("page 2");
    assert_eq!(
        rest.iter()
            .map(|(_, a)| (a.at, a.verified))
            .collect::<Vec<_>>(),
        vec![(300, true)]
    );
    assert!(
        store
            .heal_attempts_after(rest[0].0, 2)
            .await
            .expect("page 3")
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn lines_of_kinds_reads_only_those_kinds_in_seq_order() {
    use futures_util::TryStreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path())).await.unwrap();
    for n in 0..6 {
        let mut draft = scan_draft(n);
        if n % 3 == 1 {
            draft.kind = "heal".to_owned();
        }
        if n == 4 {
            draft.kind = "attestation".to_owned();
        }
        store.append(draft).await.unwrap();
    }
    let read: Vec<(u64, Vec<u8>)> = store
        .lines_of_kinds(1..6, &["scan", "attestation"])
        .try_collect()
        .await
        .unwrap();
    let seqs: Vec<u64> = read.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [2, 3, 4, 5]);
    for (seq, line) in &read {
        assert_eq!(&store.entry(*seq).await.unwrap().unwrap().line, line);
    }
    store.close().await;
}

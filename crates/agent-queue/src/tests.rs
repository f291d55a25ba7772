//! A full disk, simulated by capping the queue file's size (`PRAGMA max_page_count`, which makes SQLite answer `SQLITE_FULL` exactly as a full disk does): drop the oldest, record a `disk_full` gap, retry once, else fail clearly and keep working.

use std::fmt::Write;
use std::time::Duration;

use expect_test::expect;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{Entry, Limits, Queue, QueueError};

const EPOCH: OffsetDateTime = datetime!(2026-11-28 03:00:00 UTC);

const LIMITS: Limits = Limits {
    max_items: 10_000,
    max_bytes: 10_000_000,
    max_age: Duration::from_secs(86_400),
};

/// Caps the file at its current size plus `extra_pages`; returns the cap.
async fn cap_file(queue: &Queue, extra_pages: i64) -> i64 {
    let mut inner = queue.inner.lock().await;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut inner.conn)
        .await
        .expect("page_count");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {}",
        pages + extra_pages
    )))
    .fetch_one(&mut inner.conn)
    .await
    .expect("max_page_count")
}

/// Pushes `n_bytes` of payload, the byte value telling pushes apart, and describes the outcome.
async fn push(queue: &Queue, n_bytes: usize, fill: u8, out: &mut String) {
    let res = queue.push("result", &vec![fill; n_bytes], EPOCH).await;
    let text = match res {
        Ok(seq) => format!("seq {seq}"),
        Err(QueueError::DiskFull {
            dropped, source, ..
        }) => format!("DiskFull, dropped {dropped} ({source})"),
        Err(err) => format!("other error: {err}"),
    };
    writeln!(out, "push {n_bytes} bytes: {text}").expect("write");
}

async fn describe(queue: &Queue, out: &mut String) {
    let entries = queue.pending(0, usize::MAX).await.expect("pending");
    let mut items = Vec::new();
    for entry in &entries {
        match entry {
            Entry::Gap {
                first,
                last,
                reason,
            } => writeln!(out, "  gap {first}..={last} {}", reason.as_str()).expect("write"),
            Entry::Item { seq, payload, .. } => {
                let fill = payload.first().copied().unwrap_or(0);
                assert!(payload.iter().all(|byte| *byte == fill), "torn payload");
                items.push(format!("{seq}:{}x{fill}", payload.len()));
            }
        }
    }
    writeln!(out, "  items {}", items.join(" ")).expect("write");
    let stats = queue.stats(EPOCH).await.expect("stats");
    writeln!(
        out,
        "  items={} bytes={} next_seq={} dropped={}",
        stats.items, stats.bytes, stats.next_seq, stats.dropped
    )
    .expect("write");
}

#[tokio::test]
async fn a_full_disk_drops_the_oldest_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    let mut out = String::new();
    for fill in 1..=20 {
        queue
            .push("result", &[fill; 3000], EPOCH)
            .await
            .expect("push before the disk fills");
    }
    cap_file(&queue, 0).await;
    writeln!(out, "file capped at its size").expect("write");
    push(&queue, 3000, 21, &mut out).await;
    push(&queue, 3000, 22, &mut out).await;
    push(&queue, 100, 23, &mut out).await;
    describe(&queue, &mut out).await;
    // More than the whole queue could free: everything goes, and the push still fails.
    push(&queue, 200_000, 24, &mut out).await;
    describe(&queue, &mut out).await;
    // The queue keeps working within the space it has.
    push(&queue, 3000, 25, &mut out).await;
    describe(&queue, &mut out).await;
    queue.close().await.expect("close");
    let queue = Queue::open(&path, LIMITS).await.expect("reopen");
    writeln!(out, "reopened without a cap").expect("write");
    push(&queue, 200_000, 26, &mut out).await;
    describe(&queue, &mut out).await;
    expect![[r#"
        file capped at its size
        push 3000 bytes: seq 21
        push 3000 bytes: seq 22
        push 100 bytes: seq 23
          gap 1..=2 disk_full
          items 3:3000x3 4:3000x4 5:3000x5 6:3000x6 7:3000x7 8:3000x8 9:3000x9 10:3000x10 11:3000x11 12:3000x12 13:3000x13 14:3000x14 15:3000x15 16:3000x16 17:3000x17 18:3000x18 19:3000x19 20:3000x20 21:3000x21 22:3000x22 23:100x23
          items=21 bytes=60100 next_seq=24 dropped=2
        push 200000 bytes: DiskFull, dropped 21 (error returned from database: (code: 13) database or disk is full)
          gap 1..=23 disk_full
          items 
          items=0 bytes=0 next_seq=24 dropped=23
        push 3000 bytes: seq 24
          gap 1..=23 disk_full
          items 24:3000x25
          items=1 bytes=3000 next_seq=25 dropped=23
        reopened without a cap
        push 200000 bytes: seq 25
          gap 1..=23 disk_full
          items 24:3000x25 25:200000x26
          items=2 bytes=203000 next_seq=26 dropped=23
    "#]].assert_eq(&out);
}

#[tokio::test]
async fn an_empty_queue_on_a_full_disk_fails_clearly_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    let mut out = String::new();
    cap_file(&queue, 0).await;
    push(&queue, 5000, 1, &mut out).await;
    let err = queue
        .push("result", &[1; 5000], EPOCH)
        .await
        .expect_err("still full");
    writeln!(out, "{err}").expect("write");
    cap_file(&queue, 100).await;
    writeln!(out, "file may grow again").expect("write");
    push(&queue, 5000, 2, &mut out).await;
    describe(&queue, &mut out).await;
    expect![[r#"
        push 5000 bytes: DiskFull, dropped 0 (error returned from database: (code: 13) database or disk is full)
        queue <queue> is out of disk space: the push failed and the queue holds no item to drop; free disk space
        file may grow again
        push 5000 bytes: seq 1
          items 1:5000x2
          items=1 bytes=5000 next_seq=2 dropped=0
    "#]].assert_eq(&out.replace(&path.display().to_string(), "<queue>"));
}

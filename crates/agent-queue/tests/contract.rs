//! The queue's contract as data: scripts of pushes, acks, limits and reopenings against real queue files in a temporary directory, with the entries they leave as snapshots.
//!
//! Script lines:
//! - `limits items=N bytes=N age=S`: (re)open the queue with these limits (the first line may
//!   set them; otherwise they are generous);
//! - `push KIND TEXT @S`: push TEXT (`-` for an empty payload) at S seconds after the epoch
//!   below (`""` for an empty kind);
//! - `set-limits items=N bytes=N age=S`: change the limits of the open queue (`set_limits`);
//! - `push-own-seq KIND @S`: push (`push_with`) a payload that names its own sequence number;
//! - `ack N`, `pending AFTER [LIMIT]`, `stats @S`, `reopen`.
//!
//! After every script the queue is reopened and must hold the same entries and statistics, so
//! every case also checks that the counters kept in memory match what was committed.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use agent_queue::{Entry, Limits, Queue, QueueError};
use expect_test::{Expect, expect};
use time::OffsetDateTime;
use time::macros::datetime;

const EPOCH: OffsetDateTime = datetime!(2026-11-28 03:00:00 UTC);

const GENEROUS: Limits = Limits {
    max_items: 1_000,
    max_bytes: 1_000_000,
    max_age: Duration::from_secs(86_400),
};

#[track_caller]
fn check(script: &str, expect: Expect) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let out = runtime.block_on(run(script));
    expect.assert_eq(&out);
}

async fn run(script: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let mut limits = GENEROUS;
    let mut queue = Some(open(&path, limits).await);
    let mut out = String::new();
    for line in script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let q = queue.as_ref().expect("queue open");
        let res = match words[0] {
            "limits" => {
                let new_limits = parse_limits(&words[1..]);
                queue.take().expect("queue").close().await.expect("close");
                match Queue::open(&path, new_limits).await {
                    Ok(reopened) => {
                        limits = new_limits;
                        queue = Some(reopened);
                        "ok".to_owned()
                    }
                    Err(err) => {
                        queue = Some(open(&path, limits).await);
                        format!("error: {err}")
                    }
                }
            }
            "set-limits" => {
                let new_limits = parse_limits(&words[1..]);
                match q.set_limits(new_limits).await {
                    Ok(()) => {
                        limits = new_limits;
                        "ok".to_owned()
                    }
                    Err(err) => format!("error: {err}"),
                }
            }
            "push-own-seq" => q
                .push_with(words[1], time_arg(words[2]), |seq| {
                    format!("own-seq-{seq}").into_bytes()
                })
                .await
                .map_or_else(|err| format!("error: {err}"), |seq| format!("seq {seq}")),
            "push" => {
                let kind = if words[1] == "\"\"" { "" } else { words[1] };
                let payload = if words[2] == "-" { "" } else { words[2] };
                q.push(kind, payload.as_bytes(), time_arg(words[3]))
                    .await
                    .map_or_else(|err| format!("error: {err}"), |seq| format!("seq {seq}"))
            }
            "ack" => q
                .ack(words[1].parse().expect("ack seq"))
                .await
                .map_or_else(|err| format!("error: {err}"), |()| "ok".to_owned()),
            "pending" => {
                let after = words[1].parse().expect("after");
                let limit = words
                    .get(2)
                    .map_or(100, |word| word.parse().expect("limit"));
                let entries = q.pending(after, limit).await.expect("pending");
                entries_text(&entries)
            }
            "stats" => stats_text(q, time_arg(words[1])).await,
            "reopen" => {
                queue.take().expect("queue").close().await.expect("close");
                queue = Some(open(&path, limits).await);
                "ok".to_owned()
            }
            other => panic!("unknown command {other}"),
        };
        writeln!(out, "{line}: {res}").expect("write");
    }
    let q = queue.take().expect("queue");
    let now = EPOCH + Duration::from_secs(1_000);
    let before = (
        q.pending(0, usize::MAX).await.expect("pending"),
        q.stats(now).await,
    );
    q.close().await.expect("close");
    let q = open(&path, limits).await;
    let after = (
        q.pending(0, usize::MAX).await.expect("pending"),
        q.stats(now).await,
    );
    assert_eq!(
        format!("{before:?}"),
        format!("{after:?}"),
        "reopening changed the queue"
    );
    q.close().await.expect("close");
    out
}

async fn open(path: &Path, limits: Limits) -> Queue {
    Queue::open(path, limits).await.expect("open queue")
}

fn parse_limits(words: &[&str]) -> Limits {
    let arg = |name: &str| -> u64 {
        words
            .iter()
            .find_map(|word| word.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= missing"))
            .parse()
            .expect("number")
    };
    Limits {
        max_items: arg("items"),
        max_bytes: arg("bytes"),
        max_age: Duration::from_secs(arg("age")),
    }
}

fn time_arg(word: &str) -> OffsetDateTime {
    let secs: i64 = word
        .strip_prefix('@')
        .expect("@seconds")
        .parse()
        .expect("seconds");
    EPOCH + time::Duration::seconds(secs)
}

fn entries_text(entries: &[Entry]) -> String {
    let mut out = String::new();
    for entry in entries {
        match entry {
            Entry::Item {
                seq,
                kind,
                payload,
                at,
            } => write!(
                out,
                "\n  item {seq} {kind} {:?} @{}",
                String::from_utf8_lossy(payload),
                (*at - EPOCH).whole_seconds()
            ),
            Entry::Gap {
                first,
                last,
                reason,
            } => write!(out, "\n  gap {first}..={last} {}", reason.as_str()),
        }
        .expect("write");
    }
    if entries.is_empty() {
        out.push_str("(none)");
    }
    out
}

async fn stats_text(queue: &Queue, now: OffsetDateTime) -> String {
    let stats = queue.stats(now).await.expect("stats");
    format!(
        "items={} bytes={} oldest_age={:?} next_seq={} acked_through={} dropped={}",
        stats.items,
        stats.bytes,
        stats.oldest_age.map(|age| age.as_secs()),
        stats.next_seq,
        stats.acked_through,
        stats.dropped
    )
}

#[test]
fn pushes_come_back_in_order() {
    check(
        "push result aaa @0
         push heartbeat - @1
         push result ccc @2
         pending 0
         pending 1 1
         pending 3
         pending 18446744073709551615
         ack 18446744073709551615
         stats @10",
        expect![[r#"
            push result aaa @0: seq 1
            push heartbeat - @1: seq 2
            push result ccc @2: seq 3
            pending 0: 
              item 1 result "aaa" @0
              item 2 heartbeat "" @1
              item 3 result "ccc" @2
            pending 1 1: 
              item 2 heartbeat "" @1
            pending 3: (none)
            pending 18446744073709551615: (none)
            ack 18446744073709551615: error: acknowledgement up to seq 18446744073709551615 is beyond the last pushed seq 3; the receiver and the queue disagree
            stats @10: items=3 bytes=6 oldest_age=Some(10) next_seq=4 acked_through=0 dropped=0
        "#]],
    );
}

#[test]
fn ack_removes_delivered_items_and_is_idempotent() {
    check(
        "push result a @0
         push result b @1
         push result c @2
         ack 2
         pending 0
         ack 2
         ack 1
         ack 0
         stats @5
         ack 3
         pending 0
         stats @5",
        expect![[r#"
            push result a @0: seq 1
            push result b @1: seq 2
            push result c @2: seq 3
            ack 2: ok
            pending 0: 
              item 3 result "c" @2
            ack 2: ok
            ack 1: ok
            ack 0: ok
            stats @5: items=1 bytes=1 oldest_age=Some(3) next_seq=4 acked_through=2 dropped=0
            ack 3: ok
            pending 0: (none)
            stats @5: items=0 bytes=0 oldest_age=None next_seq=4 acked_through=3 dropped=0
        "#]],
    );
}

#[test]
fn ack_beyond_the_last_push_names_both_numbers() {
    check(
        "ack 1
         push result a @0
         push result b @0
         ack 3
         ack 2
         ack 4
         pending 0",
        expect![[r#"
            ack 1: error: acknowledgement up to seq 1 is beyond the last pushed seq 0; the receiver and the queue disagree
            push result a @0: seq 1
            push result b @0: seq 2
            ack 3: error: acknowledgement up to seq 3 is beyond the last pushed seq 2; the receiver and the queue disagree
            ack 2: ok
            ack 4: error: acknowledgement up to seq 4 is beyond the last pushed seq 2; the receiver and the queue disagree
            pending 0: (none)
        "#]],
    );
}

#[test]
fn sequence_numbers_are_never_reused() {
    check(
        "push result a @0
         push result b @0
         ack 2
         reopen
         push result c @0
         limits items=1 bytes=100 age=60
         push result d @0
         reopen
         push result e @0
         pending 0
         stats @0",
        expect![[r#"
            push result a @0: seq 1
            push result b @0: seq 2
            ack 2: ok
            reopen: ok
            push result c @0: seq 3
            limits items=1 bytes=100 age=60: ok
            push result d @0: seq 4
            reopen: ok
            push result e @0: seq 5
            pending 0: 
              gap 3..=4 queue_full
              item 5 result "e" @0
            stats @0: items=1 bytes=1 oldest_age=Some(0) next_seq=6 acked_through=2 dropped=2
        "#]],
    );
}

#[test]
fn a_full_queue_drops_the_oldest_into_one_gap() {
    check(
        "limits items=2 bytes=1000 age=3600
         push result r1 @0
         push result r2 @1
         push result r3 @2
         push result r4 @3
         push result r5 @4
         pending 0
         stats @4",
        expect![[r#"
            limits items=2 bytes=1000 age=3600: ok
            push result r1 @0: seq 1
            push result r2 @1: seq 2
            push result r3 @2: seq 3
            push result r4 @3: seq 4
            push result r5 @4: seq 5
            pending 0: 
              gap 1..=3 queue_full
              item 4 result "r4" @3
              item 5 result "r5" @4
            stats @4: items=2 bytes=4 oldest_age=Some(1) next_seq=6 acked_through=0 dropped=3
        "#]],
    );
}

#[test]
fn the_bytes_bound_drops_as_many_as_needed() {
    check(
        "limits items=100 bytes=10 age=3600
         push result aaaa @0
         push result bbbb @0
         push result c @0
         push result dddddddd @0
         pending 0
         push result eeeeeeeeeee @0
         push result eeeeeeeeee @0
         pending 0
         stats @0",
        expect![[r#"
            limits items=100 bytes=10 age=3600: ok
            push result aaaa @0: seq 1
            push result bbbb @0: seq 2
            push result c @0: seq 3
            push result dddddddd @0: seq 4
            pending 0: 
              gap 1..=2 queue_full
              item 3 result "c" @0
              item 4 result "dddddddd" @0
            push result eeeeeeeeeee @0: error: an item of 11 bytes cannot be queued: the queue holds at most 10 bytes
            push result eeeeeeeeee @0: seq 5
            pending 0: 
              gap 1..=4 queue_full
              item 5 result "eeeeeeeeee" @0
            stats @0: items=1 bytes=10 oldest_age=Some(0) next_seq=6 acked_through=0 dropped=4
        "#]],
    );
}

#[test]
fn old_items_are_dropped_at_the_next_push() {
    check(
        "limits items=100 bytes=1000 age=60
         push result a @0
         push result b @10
         push result c @50
         stats @500
         push result d @100
         pending 0
         push result e @160
         pending 0",
        expect![[r#"
            limits items=100 bytes=1000 age=60: ok
            push result a @0: seq 1
            push result b @10: seq 2
            push result c @50: seq 3
            stats @500: items=3 bytes=3 oldest_age=Some(500) next_seq=4 acked_through=0 dropped=0
            push result d @100: seq 4
            pending 0: 
              gap 1..=2 too_old
              item 3 result "c" @50
              item 4 result "d" @100
            push result e @160: seq 5
            pending 0: 
              gap 1..=3 too_old
              item 4 result "d" @100
              item 5 result "e" @160
        "#]],
    );
}

#[test]
fn drops_for_different_reasons_stay_apart() {
    check(
        "limits items=2 bytes=1000 age=60
         push result a @0
         push result b @1
         push result c @2
         push result d @100
         push result e @101
         push result f @102
         pending 0
         stats @102",
        expect![[r#"
            limits items=2 bytes=1000 age=60: ok
            push result a @0: seq 1
            push result b @1: seq 2
            push result c @2: seq 3
            push result d @100: seq 4
            push result e @101: seq 5
            push result f @102: seq 6
            pending 0: 
              gap 1..=1 queue_full
              gap 2..=3 too_old
              gap 4..=4 queue_full
              item 5 result "e" @101
              item 6 result "f" @102
            stats @102: items=2 bytes=2 oldest_age=Some(1) next_seq=7 acked_through=0 dropped=4
        "#]],
    );
}

#[test]
fn a_clock_that_went_back_drops_only_from_the_front() {
    // Item 2's time is earlier than item 1's: it is not dropped before item 1 is.
    check(
        "limits items=100 bytes=1000 age=60
         push result a @100
         push result b @0
         push result c @120
         pending 0
         push result d @161
         pending 0",
        expect![[r#"
            limits items=100 bytes=1000 age=60: ok
            push result a @100: seq 1
            push result b @0: seq 2
            push result c @120: seq 3
            pending 0: 
              item 1 result "a" @100
              item 2 result "b" @0
              item 3 result "c" @120
            push result d @161: seq 4
            pending 0: 
              gap 1..=2 too_old
              item 3 result "c" @120
              item 4 result "d" @161
        "#]],
    );
}

#[test]
fn a_sender_cursor_sees_each_sequence_number_once() {
    // The sender reads from its cursor and moves it to each entry's last seq; a gap that grows
    // after it was sent is sent again only from the cursor on.
    check(
        "limits items=2 bytes=1000 age=3600
         push result a @0
         push result b @0
         push result c @0
         pending 0 1
         push result d @0
         pending 1
         push result e @0
         pending 4
         ack 2
         pending 0
         ack 3
         pending 0",
        expect![[r#"
            limits items=2 bytes=1000 age=3600: ok
            push result a @0: seq 1
            push result b @0: seq 2
            push result c @0: seq 3
            pending 0 1: 
              gap 1..=1 queue_full
            push result d @0: seq 4
            pending 1: 
              gap 2..=2 queue_full
              item 3 result "c" @0
              item 4 result "d" @0
            push result e @0: seq 5
            pending 4: 
              item 5 result "e" @0
            ack 2: ok
            pending 0: 
              gap 3..=3 queue_full
              item 4 result "d" @0
              item 5 result "e" @0
            ack 3: ok
            pending 0: 
              item 4 result "d" @0
              item 5 result "e" @0
        "#]],
    );
}

#[test]
fn lowered_limits_apply_from_the_next_push() {
    check(
        "push result a @0
         push result b @0
         push result c @0
         push result d @0
         limits items=2 bytes=1000 age=3600
         pending 0
         push result e @0
         pending 0",
        expect![[r#"
            push result a @0: seq 1
            push result b @0: seq 2
            push result c @0: seq 3
            push result d @0: seq 4
            limits items=2 bytes=1000 age=3600: ok
            pending 0: 
              item 1 result "a" @0
              item 2 result "b" @0
              item 3 result "c" @0
              item 4 result "d" @0
            push result e @0: seq 5
            pending 0: 
              gap 1..=3 queue_full
              item 4 result "d" @0
              item 5 result "e" @0
        "#]],
    );
}

#[test]
fn limits_change_on_an_open_queue_and_a_payload_can_carry_its_own_seq() {
    check(
        "push-own-seq result @0
         push result b @0
         push-own-seq result @0
         set-limits items=0 bytes=1000 age=3600
         set-limits items=2 bytes=1000 age=3600
         pending 0
         push-own-seq result @0
         pending 0
         set-limits items=2 bytes=12 age=3600
         push-own-seq result @0
         push result thirteen-byte @0
         pending 0",
        expect![[r#"
            push-own-seq result @0: seq 1
            push result b @0: seq 2
            push-own-seq result @0: seq 3
            set-limits items=0 bytes=1000 age=3600: error: queue limits are unusable: max_items must be at least 1
            set-limits items=2 bytes=1000 age=3600: ok
            pending 0: 
              item 1 result "own-seq-1" @0
              item 2 result "b" @0
              item 3 result "own-seq-3" @0
            push-own-seq result @0: seq 4
            pending 0: 
              gap 1..=2 queue_full
              item 3 result "own-seq-3" @0
              item 4 result "own-seq-4" @0
            set-limits items=2 bytes=12 age=3600: ok
            push-own-seq result @0: seq 5
            push result thirteen-byte @0: error: an item of 13 bytes cannot be queued: the queue holds at most 12 bytes
            pending 0: 
              gap 1..=4 queue_full
              item 5 result "own-seq-5" @0
        "#]],
    );
}

#[test]
fn bad_input_is_refused_without_a_trace() {
    check(
        r#"limits items=0 bytes=10 age=60
         limits items=1 bytes=0 age=60
         limits items=1 bytes=10 age=0
         push "" a @0
         push kind-of-sixty-five-bytes-is-one-byte-too-long-for-the-queue-to-keep a @0
         push result a @9999999999
         push result a @0
         pending 0"#,
        expect![[r#"
            limits items=0 bytes=10 age=60: error: queue limits are unusable: max_items must be at least 1
            limits items=1 bytes=0 age=60: error: queue limits are unusable: max_bytes must be at least 1
            limits items=1 bytes=10 age=0: error: queue limits are unusable: max_age must be longer than zero
            push "" a @0: error: item kind `` is not 1 to 64 bytes long
            push kind-of-sixty-five-bytes-is-one-byte-too-long-for-the-queue-to-keep a @0: error: item kind `kind-of-sixty-five-bytes-is-one-byte-too-long-for-the-queue-to-keep` is not 1 to 64 bytes long
            push result a @9999999999: error: time 2343-10-18 20:46:39.0 +00:00:00 is outside the range the queue stores (years 1678 to 2261)
            push result a @0: seq 1
            pending 0: 
              item 1 result "a" @0
        "#]],
    );
}

#[tokio::test]
async fn a_second_queue_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let first = open(&path, GENEROUS).await;
    first.push("result", b"a", EPOCH).await.expect("push");
    let second = Queue::open(&path, GENEROUS).await;
    assert!(
        matches!(second, Err(QueueError::InUse { .. })),
        "{second:?}"
    );
    // The first queue is unharmed, and the file is free again once it is closed.
    assert_eq!(first.push("result", b"b", EPOCH).await.expect("push"), 2);
    first.close().await.expect("close");
    let reopened = open(&path, GENEROUS).await;
    assert_eq!(reopened.pending(0, 10).await.expect("pending").len(), 2);
}

#[tokio::test]
async fn a_file_that_is_not_a_queue_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    // Text, and the first page of an SQLite database (the queue of earlier builds).
    let mut sqlite = b"SQLite format 3\0".to_vec();
    sqlite.resize(4096, 0);
    let text = "not a queue, but something the agent must not overwrite\n"
        .repeat(200)
        .into_bytes();
    for contents in [text, sqlite] {
        std::fs::write(&path, &contents).expect("write");
        let res = Queue::open(&path, GENEROUS).await;
        assert!(matches!(res, Err(QueueError::NotAQueue { .. })), "{res:?}");
        assert_eq!(std::fs::read(&path).expect("read"), contents);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["queue.db"], "no segment was created");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = open(&path, GENEROUS).await;
    queue.push("result", b"a", EPOCH).await.expect("push");
    let mut modes = Vec::new();
    for name in ["queue.db", "queue.db.1.log"] {
        let meta = std::fs::metadata(dir.path().join(name)).expect("metadata");
        modes.push(format!("{name} {:o}", meta.permissions().mode() & 0o777));
    }
    assert_eq!(modes, ["queue.db 600", "queue.db.1.log 600"]);
}

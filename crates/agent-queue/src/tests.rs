//! The queue's files under damage, crashes and a full disk: torn tails cut off, damage in the middle reported with its file and offset and never repaired, records that contradict each other reported, and a full disk (simulated by a cap on the segments' total size, a write past it failing like `ENOSPC` after writing what fits) handled by dropping the oldest items so that whole segments can go.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use expect_test::{Expect, expect};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::frame::{self, Op, SEGMENT_MAGIC};
use crate::{Entry, Limits, Queue, QueueError};

const EPOCH: OffsetDateTime = datetime!(2026-11-28 03:00:00 UTC);

/// A change to a closed queue's files, in its directory.
type Tamper = fn(&Path);

const LIMITS: Limits = Limits {
    max_items: 10_000,
    max_bytes: 10_000_000,
    max_age: Duration::from_secs(86_400),
};

/// Sets the segments' target size and caps their total at what they hold now plus `slack`
/// bytes (`None`: no cap).
async fn knobs(queue: &Queue, segment_bytes: Option<u64>, slack: Option<u64>) {
    let mut journal = queue.journal.lock().await;
    journal.test.segment_bytes = segment_bytes;
    journal.test.space_cap = slack.map(|slack| used(&journal.segment_paths()) + slack);
}

fn used(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|path| std::fs::metadata(path).expect("segment metadata").len())
        .sum()
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

/// The queue's entries (items as `seq:<len>x<fill>`), statistics and segment files.
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
    writeln!(out, "  segments {}", segment_names(queue).await).expect("write");
}

async fn segment_names(queue: &Queue) -> String {
    let paths = queue.journal.lock().await.segment_paths();
    let names: Vec<String> = paths
        .iter()
        .map(|path| {
            let name = path.file_name().expect("name").to_string_lossy();
            name.trim_start_matches("queue.db.")
                .trim_end_matches(".log")
                .to_owned()
        })
        .collect();
    names.join(" ")
}

#[tokio::test]
async fn a_full_disk_drops_whole_segments_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    // Two items of 3,000 bytes per segment.
    knobs(&queue, Some(6_000), None).await;
    let mut out = String::new();
    for fill in 1..=20 {
        queue
            .push("result", &[fill; 3000], EPOCH)
            .await
            .expect("push before the disk fills");
    }
    // What a nearly full disk has left: the slack at the end of a file's last block.
    knobs(&queue, Some(6_000), Some(100)).await;
    writeln!(out, "100 bytes left").expect("write");
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
        100 bytes left
        push 3000 bytes: seq 21
        push 3000 bytes: seq 22
        push 100 bytes: seq 23
          gap 1..=4 disk_full
          items 5:3000x5 6:3000x6 7:3000x7 8:3000x8 9:3000x9 10:3000x10 11:3000x11 12:3000x12 13:3000x13 14:3000x14 15:3000x15 16:3000x16 17:3000x17 18:3000x18 19:3000x19 20:3000x20 21:3000x21 22:3000x22 23:100x23
          items=19 bytes=54100 next_seq=24 dropped=4
          segments 3 4 5 6 7 8 9 10 11 12
        push 200000 bytes: DiskFull, dropped 19 (no storage space)
          gap 1..=23 disk_full
          items 
          items=0 bytes=0 next_seq=24 dropped=23
          segments 13
        push 3000 bytes: seq 24
          gap 1..=23 disk_full
          items 24:3000x25
          items=1 bytes=3000 next_seq=25 dropped=23
          segments 13
        reopened without a cap
        push 200000 bytes: seq 25
          gap 1..=23 disk_full
          items 24:3000x25 25:200000x26
          items=2 bytes=203000 next_seq=26 dropped=23
          segments 13
    "#]]
    .assert_eq(&out);
}

#[tokio::test]
async fn a_full_disk_with_one_segment_drops_all_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    let mut out = String::new();
    for fill in 1..=5 {
        queue
            .push("result", &[fill; 1000], EPOCH)
            .await
            .expect("push");
    }
    // Room for the gap record and a new segment's first frame, but not for the item: the only
    // segment's items all go, with the segment.
    knobs(&queue, None, Some(200)).await;
    writeln!(out, "200 bytes left").expect("write");
    push(&queue, 1000, 6, &mut out).await;
    describe(&queue, &mut out).await;
    expect![[r#"
        200 bytes left
        push 1000 bytes: seq 6
          gap 1..=5 disk_full
          items 6:1000x6
          items=1 bytes=1000 next_seq=7 dropped=5
          segments 2
    "#]]
    .assert_eq(&out);
}

#[tokio::test]
async fn an_empty_queue_on_a_full_disk_fails_clearly_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    let mut out = String::new();
    knobs(&queue, None, Some(0)).await;
    push(&queue, 5000, 1, &mut out).await;
    let err = queue
        .push("result", &[1; 5000], EPOCH)
        .await
        .expect_err("still full");
    writeln!(out, "{err}").expect("write");
    knobs(&queue, None, None).await;
    writeln!(out, "space again").expect("write");
    push(&queue, 5000, 2, &mut out).await;
    describe(&queue, &mut out).await;
    expect![[r#"
        push 5000 bytes: DiskFull, dropped 0 (no storage space)
        queue <queue> is out of disk space: the push failed and the queue holds no item to drop; free disk space
        space again
        push 5000 bytes: seq 1
          items 1:5000x2
          items=1 bytes=5000 next_seq=2 dropped=0
          segments 1
    "#]]
    .assert_eq(&out.replace(&path.display().to_string(), "<queue>"));
}

#[tokio::test]
async fn segments_rotate_and_go_once_nothing_in_them_is_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    knobs(&queue, Some(2_000), None).await;
    let mut out = String::new();
    for fill in 1..=10 {
        queue
            .push("result", &[fill; 700], EPOCH)
            .await
            .expect("push");
    }
    writeln!(out, "10 pushed").expect("write");
    describe(&queue, &mut out).await;
    queue.ack(5).await.expect("ack");
    writeln!(out, "acknowledged through 5").expect("write");
    describe(&queue, &mut out).await;
    queue.close().await.expect("close");
    let queue = Queue::open(&path, LIMITS).await.expect("reopen");
    knobs(&queue, Some(2_000), None).await;
    writeln!(out, "reopened").expect("write");
    describe(&queue, &mut out).await;
    queue.ack(10).await.expect("ack");
    push(&queue, 10, 11, &mut out).await;
    writeln!(out, "acknowledged through 10").expect("write");
    describe(&queue, &mut out).await;
    expect![[r#"
        10 pushed
          items 1:700x1 2:700x2 3:700x3 4:700x4 5:700x5 6:700x6 7:700x7 8:700x8 9:700x9 10:700x10
          items=10 bytes=7000 next_seq=11 dropped=0
          segments 1 2 3 4
        acknowledged through 5
          items 6:700x6 7:700x7 8:700x8 9:700x9 10:700x10
          items=5 bytes=3500 next_seq=11 dropped=0
          segments 2 3 4
        reopened
          items 6:700x6 7:700x7 8:700x8 9:700x9 10:700x10
          items=5 bytes=3500 next_seq=11 dropped=0
          segments 2 3 4
        push 10 bytes: seq 11
        acknowledged through 10
          items 11:10x11
          items=1 bytes=10 next_seq=12 dropped=0
          segments 4
    "#]]
    .assert_eq(&out);
}

/// Pushes `n` items of 10 bytes (`a`, `b`, …) into a fresh queue in `dir`, closes it, and returns
/// its anchor's path.
async fn fresh_queue(dir: &Path, n: u8) -> PathBuf {
    let path = dir.join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    for idx in 0..n {
        queue
            .push("result", &[b'a' + idx; 10], EPOCH)
            .await
            .expect("push");
    }
    queue.close().await.expect("close");
    path
}

/// Reopens the queue after `change` and describes what opening said and what the queue holds.
#[track_caller]
fn check_reopen(n_items: u8, change: impl FnOnce(&Path), expect: Expect) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = runtime.block_on(async {
        let path = fresh_queue(dir.path(), n_items).await;
        change(dir.path());
        let before = snapshot(dir.path());
        let mut out = String::new();
        match Queue::open(&path, LIMITS).await {
            Ok(queue) => {
                writeln!(out, "opened").expect("write");
                let entries = queue.pending(0, usize::MAX).await.expect("pending");
                for entry in entries {
                    match entry {
                        Entry::Item { seq, payload, .. } => {
                            writeln!(out, "  item {seq} {}", String::from_utf8_lossy(&payload))
                        }
                        Entry::Gap {
                            first,
                            last,
                            reason,
                        } => writeln!(out, "  gap {first}..={last} {}", reason.as_str()),
                    }
                    .expect("write");
                }
                let seq = queue.push("result", b"next", EPOCH).await.expect("push");
                writeln!(out, "  the next push gets seq {seq}").expect("write");
            }
            Err(err) => {
                writeln!(out, "{err}").expect("write");
                assert_eq!(
                    before,
                    snapshot(dir.path()),
                    "a refused open changed the files"
                );
            }
        }
        out.replace(&dir.path().display().to_string(), "<dir>")
    });
    expect.assert_eq(&out);
}

/// Every file in `dir` with its contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            let entry = entry.expect("entry");
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn segment(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("queue.db.{number}.log"))
}

/// The offsets at which segment `number`'s frames begin, and its length.
fn frame_offsets(dir: &Path, number: u64) -> (Vec<usize>, usize) {
    let bytes = std::fs::read(segment(dir, number)).expect("read segment");
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_MAGIC.len();
    while offset < bytes.len() {
        offsets.push(offset);
        let (_, len) = frame::decode(&bytes[offset..]).expect("whole frame");
        offset += len;
    }
    (offsets, bytes.len())
}

fn edit_segment(dir: &Path, number: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let path = segment(dir, number);
    let mut bytes = std::fs::read(&path).expect("read segment");
    edit(&mut bytes);
    std::fs::write(&path, bytes).expect("write segment");
}

/// Rewrites segment `number` frame by frame: `edit` gets each frame's operations and its index
/// and returns the frame's new operations (none: the frame is left out), encoded with valid
/// checksums, as a bug or a hand-edit would leave them.
fn rewrite_segment(
    dir: &Path,
    number: u64,
    mut edit: impl FnMut(usize, Vec<Op<'_>>) -> Vec<Op<'_>>,
) {
    let path = segment(dir, number);
    let bytes = std::fs::read(&path).expect("read segment");
    let mut out = SEGMENT_MAGIC.to_vec();
    let mut rest = &bytes[SEGMENT_MAGIC.len()..];
    let mut idx = 0;
    while !rest.is_empty() {
        let (ops, len) = frame::decode(rest).expect("whole frame");
        let ops = edit(idx, ops);
        if !ops.is_empty() {
            out.extend_from_slice(&frame::encode(&ops));
        }
        rest = &rest[len..];
        idx += 1;
    }
    std::fs::write(&path, out).expect("write segment");
}

#[test]
fn a_torn_last_frame_is_cut_off() {
    // Frames: the checkpoint, then one per push; the third push's frame is cut short, as a
    // crash during its write leaves it. That push never returned, so its seq is given again.
    for cut in [1, 5, 12, 20] {
        check_reopen(
            3,
            |dir| edit_segment(dir, 1, |bytes| bytes.truncate(bytes.len() - cut)),
            expect![[r#"
                opened
                  item 1 aaaaaaaaaa
                  item 2 bbbbbbbbbb
                  the next push gets seq 3
            "#]],
        );
    }
}

#[test]
fn a_torn_frame_that_is_all_there_but_wrong_is_cut_off() {
    // The file grew by the whole frame but not all of its data reached the disk: zeros where
    // the data should be, or (on some file systems) stale bytes.
    for fill in [0, 0x5a] {
        check_reopen(
            3,
            |dir| {
                let (offsets, len) = frame_offsets(dir, 1);
                let last = offsets[3];
                edit_segment(dir, 1, |bytes| {
                    bytes[last + 20..len].fill(fill);
                });
            },
            expect![[r#"
                opened
                  item 1 aaaaaaaaaa
                  item 2 bbbbbbbbbb
                  the next push gets seq 3
            "#]],
        );
    }
}

#[test]
fn zeros_after_the_last_frame_are_cut_off() {
    check_reopen(
        2,
        |dir| edit_segment(dir, 1, |bytes| bytes.resize(bytes.len() + 4096, 0)),
        expect![[r#"
            opened
              item 1 aaaaaaaaaa
              item 2 bbbbbbbbbb
              the next push gets seq 3
        "#]],
    );
}

#[test]
fn a_segment_whose_creation_was_cut_short_is_removed() {
    for written in [0, 5, 8, 30] {
        check_reopen(
            2,
            |dir| {
                let bytes = std::fs::read(segment(dir, 1)).expect("read");
                // A rotation's new segment, written up to `written` bytes of its magic and checkpoint.
                let mut unborn = SEGMENT_MAGIC.to_vec();
                unborn.extend_from_slice(&bytes[SEGMENT_MAGIC.len()..]);
                unborn.truncate(written);
                std::fs::write(segment(dir, 2), unborn).expect("write");
            },
            expect![[r#"
                opened
                  item 1 aaaaaaaaaa
                  item 2 bbbbbbbbbb
                  the next push gets seq 3
            "#]],
        );
    }
}

#[test]
fn damage_in_the_middle_is_reported_with_file_and_offset() {
    let cases: [(&str, Tamper); 4] = [
        ("a flipped payload byte", |dir| {
            let (offsets, _) = frame_offsets(dir, 1);
            edit_segment(dir, 1, |bytes| bytes[offsets[2] + 30] ^= 0x01);
        }),
        ("a flipped length byte", |dir| {
            let (offsets, _) = frame_offsets(dir, 1);
            edit_segment(dir, 1, |bytes| bytes[offsets[2]] ^= 0x40);
        }),
        ("a zeroed frame", |dir| {
            let (offsets, _) = frame_offsets(dir, 1);
            edit_segment(dir, 1, |bytes| bytes[offsets[2]..offsets[3]].fill(0));
        }),
        ("the magic", |dir| {
            edit_segment(dir, 1, |bytes| bytes[0] = b'X')
        }),
    ];
    let mut out = String::new();
    for (what, damage) in cases {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let text = runtime.block_on(async {
            let path = fresh_queue(dir.path(), 3).await;
            damage(dir.path());
            let before = snapshot(dir.path());
            let res = Queue::open(&path, LIMITS).await;
            assert_eq!(before, snapshot(dir.path()), "{what}: the files changed");
            match res {
                Err(err @ QueueError::Damaged { .. }) => err.to_string(),
                other => format!("not reported as damage: {other:?}"),
            }
        });
        writeln!(
            out,
            "{what}: {}",
            text.replace(&dir.path().display().to_string(), "<dir>")
        )
        .expect("write");
    }
    expect![[r#"
        a flipped payload byte: queue file <dir>/queue.db.1.log is damaged at offset 107: a frame of 50 bytes fails its checksum, and 100 bytes follow it; nothing was changed; move the queue's files aside
        a flipped length byte: queue file <dir>/queue.db.1.log is damaged at offset 107: a frame header fails its checksum, and 100 bytes follow it; nothing was changed; move the queue's files aside
        a zeroed frame: queue file <dir>/queue.db.1.log is damaged at offset 107: a frame header fails its checksum, and 100 bytes follow it; nothing was changed; move the queue's files aside
        the magic: queue file <dir>/queue.db.1.log is damaged at offset 0: the file does not begin like a queue segment; nothing was changed; move the queue's files aside
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_damaged_last_frame_in_an_older_segment_is_damage_not_a_torn_write() {
    check_reopen(
        2,
        |dir| {
            // Segment 2 begins where segment 1 ended, so segment 1's last frame was whole once.
            let bytes = std::fs::read(segment(dir, 1)).expect("read");
            let (offsets, _) = frame_offsets(dir, 1);
            let mut checkpoint = Vec::new();
            let (ops, _) = frame::decode(&bytes[offsets[0]..]).expect("checkpoint");
            let Op::Checkpoint(mut next) = ops[0].clone() else {
                panic!("not a checkpoint");
            };
            next.segment = 2;
            next.next_seq = 3;
            checkpoint.extend_from_slice(SEGMENT_MAGIC);
            checkpoint.extend_from_slice(&frame::encode(&[Op::Checkpoint(next)]));
            std::fs::write(segment(dir, 2), checkpoint).expect("write");
            edit_segment(dir, 1, |bytes| {
                let end = bytes.len();
                bytes.truncate(end - 3);
            });
        },
        expect![[r#"
            queue file <dir>/queue.db.1.log is damaged at offset 107: a frame of 50 bytes runs past the end of the file, and 47 bytes follow it; nothing was changed; move the queue's files aside
        "#]],
    );
}

#[test]
fn records_that_contradict_each_other_are_reported_not_repaired() {
    let cases: [(&str, Tamper); 8] = [
        ("push 2 left out", |dir| {
            rewrite_segment(dir, 1, |idx, ops| if idx == 2 { Vec::new() } else { ops });
        }),
        ("push 1 left out", |dir| {
            rewrite_segment(dir, 1, |idx, ops| if idx == 1 { Vec::new() } else { ops });
        }),
        ("checkpoint with next seq 3", |dir| {
            rewrite_segment(dir, 1, |_, mut ops| {
                if let Some(Op::Checkpoint(checkpoint)) = ops.first_mut() {
                    checkpoint.next_seq = 3;
                }
                ops
            });
        }),
        ("checkpoint acknowledging seq 1", |dir| {
            rewrite_segment(dir, 1, |_, mut ops| {
                if let Some(Op::Checkpoint(checkpoint)) = ops.first_mut() {
                    checkpoint.acked_through = 1;
                }
                ops
            });
        }),
        ("a drop of 2..=2 appended", |dir| {
            edit_segment(dir, 1, |bytes| {
                bytes.extend_from_slice(&frame::encode(&[Op::Drop(frame::Gap {
                    first: 2,
                    last: 2,
                    reason: crate::GapReason::QueueFull,
                })]));
            });
        }),
        ("an acknowledgement of seq 9 appended", |dir| {
            edit_segment(dir, 1, |bytes| {
                bytes.extend_from_slice(&frame::encode(&[Op::Ack { up_to: 9 }]));
            });
        }),
        ("segment files deleted", |dir| {
            std::fs::remove_file(segment(dir, 1)).expect("remove");
        }),
        ("a segment 3 beside segment 1", |dir| {
            std::fs::copy(segment(dir, 1), segment(dir, 3)).expect("copy");
        }),
    ];
    let mut out = String::new();
    for (what, tamper) in cases {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let text = runtime.block_on(async {
            let path = fresh_queue(dir.path(), 3).await;
            tamper(dir.path());
            match Queue::open(&path, LIMITS).await {
                Err(QueueError::Corrupt { path, detail }) => format!(
                    "{}: {detail}",
                    path.file_name().expect("name").to_string_lossy()
                ),
                other => format!("not reported: {other:?}"),
            }
        });
        writeln!(out, "{what}: {text}").expect("write");
    }
    expect![[r#"
        push 2 left out: queue.db.1.log: at offset 107: a push of seq 3, but the next seq is 2
        push 1 left out: queue.db.1.log: at offset 57: a push of seq 2, but the next seq is 1
        checkpoint with next seq 3: queue.db.1.log: at offset 57: a push of seq 1, but the next seq is 3
        checkpoint acknowledging seq 1: queue.db.1.log: at offset 8: a checkpoint acknowledges through seq 1 with next seq 1
        a drop of 2..=2 appended: queue.db.1.log: at offset 207: a drop of 2..=2, but the oldest queued seq is 1 and the next seq 4
        an acknowledgement of seq 9 appended: queue.db.1.log: at offset 207: an acknowledgement up to seq 9, but seqs 1..4 are unacknowledged
        segment files deleted: queue.db.1.log: the queue's segment files are missing
        a segment 3 beside segment 1: queue.db.2.log: this segment is missing (segments 1 and 3 are there)
    "#]]
    .assert_eq(&out);
}

#[tokio::test]
async fn a_missing_older_segment_with_queued_items_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    knobs(&queue, Some(500), None).await;
    for fill in 1..=6 {
        queue
            .push("result", &[fill; 300], EPOCH)
            .await
            .expect("push");
    }
    let names = segment_names(&queue).await;
    queue.close().await.expect("close");
    std::fs::remove_file(segment(dir.path(), 1)).expect("remove");
    let res = Queue::open(&path, LIMITS).await;
    let text = match res {
        Err(QueueError::Corrupt { path, detail }) => format!(
            "{}: {detail}",
            path.file_name().expect("name").to_string_lossy()
        ),
        other => format!("not reported: {other:?}"),
    };
    expect![[r#"
        segments 1 2 3
        queue.db.3.log: items 1..=2 are neither in a segment nor recorded as dropped (a segment file is missing)
    "#]]
    .assert_eq(&format!("segments {names}\n{text}\n"));
}

#[tokio::test]
async fn an_anchor_written_before_its_first_segment_is_finished_on_open() {
    // A crash between creating the anchor and finishing the first segment leaves an empty
    // anchor; with an unborn or no first segment the queue starts afresh.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    std::fs::write(&path, b"").expect("empty anchor");
    std::fs::write(segment(dir.path(), 1), &SEGMENT_MAGIC[..3]).expect("unborn segment");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    assert_eq!(queue.push("result", b"a", EPOCH).await.expect("push"), 1);
    queue.close().await.expect("close");
    let anchor = std::fs::read_to_string(&path).expect("anchor");
    expect![[r#"
        osiris agent queue
        format 1
    "#]]
    .assert_eq(&anchor);
}

#[tokio::test]
async fn a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    std::fs::write(&path, b"osiris agent queue\nformat 2\n").expect("anchor");
    let err = Queue::open(&path, LIMITS).await.expect_err("refused");
    expect![[r#"
        queue <dir>/queue.db has format "2", which this build does not read; move it aside
    "#]]
    .assert_eq(&format!(
        "{}\n",
        err.to_string()
            .replace(&dir.path().display().to_string(), "<dir>")
    ));
}

#[tokio::test]
async fn after_a_write_that_could_not_be_undone_the_files_are_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let queue = Queue::open(&path, LIMITS).await.expect("open");
    let mut out = String::new();
    push(&queue, 10, 1, &mut out).await;
    push(&queue, 10, 2, &mut out).await;
    // A frame that reached the file though its write reported an error (and the cut failed):
    // reading the files again finds it, so its seq is not given out twice.
    let frame = frame::encode(&[Op::Push {
        seq: 3,
        at_ns: 0,
        kind: "result",
        payload: &[3; 10],
    }]);
    let segment_path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&segment_path).expect("read");
    bytes.extend_from_slice(&frame);
    std::fs::write(&segment_path, bytes).expect("write");
    queue.journal.lock().await.poison();
    writeln!(out, "poisoned").expect("write");
    push(&queue, 10, 4, &mut out).await;
    describe(&queue, &mut out).await;
    expect![[r#"
        push 10 bytes: seq 1
        push 10 bytes: seq 2
        poisoned
        push 10 bytes: seq 4
          items 1:10x1 2:10x2 3:10x3 4:10x4
          items=4 bytes=40 next_seq=5 dropped=0
          segments 1
    "#]]
    .assert_eq(&out);
}

//! Crash durability: a child process pushes and acknowledges as fast as it can until it is SIGKILLed, 20 times over one queue; every push it saw return is still there (or inside a gap that records its drop), every acknowledgement it saw return still holds, and nothing is torn, duplicated or out of order.
//!
//! Two runs: bounds so large that nothing is dropped and every kill lands in a push, an
//! acknowledgement or an open; and bounds of 150 items and 64 KiB, so the segments are the
//! smallest (64 KiB) and kills also land in segment rotations, removals and drops of the oldest
//! items.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_queue::{Entry, GapReason, Limits, Queue};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const CHILD_ENV: &str = "OSIRIS_QUEUE_CRASH_CHILD";
const ROUND_ENV: &str = "OSIRIS_QUEUE_CRASH_ROUND";
const BOUNDED_ENV: &str = "OSIRIS_QUEUE_CRASH_BOUNDED";
const CHILD_TEST: &str = "crash_child_pushes_until_killed";
const N_KILLS: u32 = 20;
/// The child acknowledges up to this many pushes behind its newest, so items stay queued.
const ACK_LAG: u64 = 10;
/// Starts each report line: the test harness's own output may share the child's first line.
const REPORT_MARK: &str = "@@ ";

/// Large enough that nothing is ever dropped: every committed seq must be an item.
const LIMITS: Limits = Limits {
    max_items: 10_000_000,
    max_bytes: 1 << 40,
    max_age: Duration::from_secs(100 * 365 * 86_400),
};

/// At most 150 items (and 64 KiB): the oldest are dropped (`queue_full`) all the time, and the
/// segments are the smallest there are (64 KiB, a few hundred of the children's items).
const BOUNDED: Limits = Limits {
    max_items: 150,
    max_bytes: 64 * 1024,
    ..LIMITS
};

/// Not a test on its own: started by `pushed_items_survive_sigkill`, it pushes numbered items
/// from one task and, in every fourth round, acknowledges from another, forever (so the queue
/// both grows across rounds and shrinks). It prints `pushed <seq> <round> <n>`
/// after a push returned, `acking <seq>` before an acknowledgement and `acked <seq>` after it
/// returned, each line after [`REPORT_MARK`] and flushed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_pushes_until_killed() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var(ROUND_ENV)
        .expect("round")
        .parse()
        .expect("round number");
    let limits = if std::env::var_os(BOUNDED_ENV).is_some() {
        BOUNDED
    } else {
        LIMITS
    };
    let queue = Arc::new(
        Queue::open(Path::new(&path), limits)
            .await
            .expect("child open"),
    );
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let newest = Arc::new(AtomicU64::new(0));
    let acker = {
        let queue = Arc::clone(&queue);
        let stdout = Arc::clone(&stdout);
        let newest = Arc::clone(&newest);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(3)).await;
                let up_to = newest.load(Ordering::Acquire).saturating_sub(ACK_LAG);
                if up_to == 0 || round % 4 != 1 {
                    continue;
                }
                report(&stdout, &format!("acking {up_to}"));
                queue.ack(up_to).await.expect("child ack");
                report(&stdout, &format!("acked {up_to}"));
            }
        })
    };
    for n in 0..u64::MAX {
        let seq = queue
            .push("result", &payload(round, n), OffsetDateTime::now_utc())
            .await
            .expect("child push");
        report(&stdout, &format!("pushed {seq} {round} {n}"));
        newest.store(seq, Ordering::Release);
    }
    acker.await.expect("acker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_items_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    kill_children_and_check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_items_survive_sigkill_while_segments_rotate_and_items_drop() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    kill_children_and_check(true).await;
}

/// Starts a child 20 times over one queue (bounded by [`BOUNDED`] or [`LIMITS`]), kills it
/// after a varied delay, and checks the reopened queue against what the child reported.
async fn kill_children_and_check(bounded: bool) {
    let limits = if bounded { BOUNDED } else { LIMITS };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let exe = std::env::current_exe().expect("current exe");
    // A fixed seed keeps the kill delays varied but reproducible.
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut model = Model {
        last_next_seq: 1,
        gaps_allowed: bounded,
        ..Model::default()
    };
    let started = Instant::now();
    for round in 0..N_KILLS {
        let mut command = Command::new(&exe);
        command
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &path)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if bounded {
            command.env(BOUNDED_ENV, "1");
        }
        let mut child = command.spawn().expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || complete_lines(stdout));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Half the children die early (often while opening), half after working for a while.
        let delay_ms = if round % 2 == 0 {
            rng % 60
        } else {
            60 + rng % 240
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        model.read_round(round, &reader.join().expect("reader thread"));

        let queue = Queue::open(&path, limits)
            .await
            .unwrap_or_else(|err| panic!("reopen after kill {round} at {delay_ms} ms: {err}"));
        model
            .check(&queue, round)
            .await
            .unwrap_or_else(|problem| panic!("after kill {round} at {delay_ms} ms: {problem}"));
        queue.close().await.expect("close");
    }
    let mut segments: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".log").then_some(name)
        })
        .collect();
    segments.sort();
    let mut report = std::io::stderr();
    writeln!(
        report,
        "queue crash test ({}): {N_KILLS} kills, {} pushes and {} acknowledgements seen to return, {} items queued and {} dropped at the end, segment files {segments:?}, {:.1} s",
        if bounded { "bounded" } else { "unbounded" },
        model.pushed.len(),
        model.n_acked,
        model.last_n_items,
        model.last_dropped,
        started.elapsed().as_secs_f64()
    )
    .expect("report");
    assert!(
        !model.pushed.is_empty() && model.n_acked > 0,
        "the children barely worked ({} pushes, {} acknowledgements); the test proved little",
        model.pushed.len(),
        model.n_acked
    );
    if bounded {
        assert!(
            model.last_dropped > 0,
            "nothing was dropped; the bounded run proved little"
        );
    }
}

/// What the parent knows from the children's reports.
#[derive(Debug, Default)]
struct Model {
    /// Every push seen to return: seq → (round, n).
    pushed: BTreeMap<u64, (u32, u64)>,
    /// The highest acknowledgement seen to return: the queue's `acked_through` is at least this.
    acked_lo: u64,
    /// The highest acknowledgement begun: `acked_through` is at most this.
    acked_hi: u64,
    n_acked: u64,
    /// `next_seq` when the queue was last reopened: the next child's first push gets it.
    last_next_seq: u64,
    /// The first seq each round's child pushed, as reported.
    round_first_seq: BTreeMap<u32, u64>,
    /// Whether the queue may hold gaps (the bounded run): only `queue_full` ones, before the items.
    gaps_allowed: bool,
    /// The queue's items and dropped count when it was last reopened.
    last_n_items: u64,
    last_dropped: u64,
}

impl Model {
    fn read_round(&mut self, round: u32, lines: &[String]) {
        for line in lines {
            let Some((_, report)) = line.split_once(REPORT_MARK) else {
                continue;
            };
            let words: Vec<&str> = report.split(' ').collect();
            match words.as_slice() {
                ["pushed", seq, line_round, n] => {
                    let seq: u64 = seq.parse().expect("seq");
                    let line_round: u32 = line_round.parse().expect("round");
                    assert_eq!(line_round, round, "a report from another round");
                    let previous = self.pushed.insert(seq, (round, n.parse().expect("n")));
                    assert!(previous.is_none(), "seq {seq} returned by two pushes");
                    self.round_first_seq.entry(round).or_insert(seq);
                }
                ["acking", seq] => self.acked_hi = self.acked_hi.max(seq.parse().expect("seq")),
                ["acked", seq] => {
                    self.acked_lo = self.acked_lo.max(seq.parse().expect("seq"));
                    self.n_acked += 1;
                }
                _ => {}
            }
        }
    }

    /// Checks the reopened queue against everything reported so far.
    async fn check(&mut self, queue: &Queue, round: u32) -> Result<(), String> {
        let stats = queue
            .stats(OffsetDateTime::now_utc())
            .await
            .map_err(|err| err.to_string())?;
        // Sequence numbers are never reused: this round's child started where the last left off.
        if let Some(first) = self.round_first_seq.get(&round)
            && *first != self.last_next_seq
        {
            return Err(format!(
                "round {round} began at seq {first}, the queue was at {}",
                self.last_next_seq
            ));
        }
        let acked = stats.acked_through;
        if acked < self.acked_lo || acked > self.acked_hi {
            return Err(format!(
                "acked through {acked}, but acknowledgements returned up to {} and began up to {}",
                self.acked_lo, self.acked_hi
            ));
        }
        let entries = queue
            .pending(0, usize::MAX)
            .await
            .map_err(|err| err.to_string())?;
        let mut expected_seq = acked + 1;
        let mut previous: Option<(u32, u64)> = None;
        let mut seen = BTreeSet::new();
        let mut n_bytes = 0;
        let mut n_items = 0;
        for entry in &entries {
            let (seq, payload) = match entry {
                Entry::Item { seq, payload, .. } => (seq, payload),
                Entry::Gap {
                    first,
                    last,
                    reason: GapReason::QueueFull,
                } if self.gaps_allowed && n_items == 0 => {
                    if *first != expected_seq || last < first {
                        return Err(format!(
                            "expected seq {expected_seq}, found gap {first}..={last}"
                        ));
                    }
                    expected_seq = last + 1;
                    continue;
                }
                Entry::Gap { .. } => {
                    return Err(format!("unexpected gap {entry:?}"));
                }
            };
            n_items += 1;
            if *seq != expected_seq {
                return Err(format!("expected seq {expected_seq}, found {seq}"));
            }
            expected_seq += 1;
            n_bytes += payload.len() as u64;
            let id = check_payload(payload).ok_or_else(|| format!("seq {seq} is torn"))?;
            if !seen.insert(id) {
                return Err(format!("item {id:?} is queued twice"));
            }
            // One child pushes one item at a time, so within a round the numbers follow each
            // other, and a later round's items come after an earlier one's.
            if let Some(prev) = previous {
                let follows = (id.0 == prev.0 && id.1 == prev.1 + 1) || id.0 > prev.0;
                if !follows {
                    return Err(format!("item {id:?} at seq {seq} follows {prev:?}"));
                }
            }
            previous = Some(id);
            if let Some(reported) = self.pushed.get(seq)
                && *reported != id
            {
                return Err(format!("seq {seq} holds {id:?}, pushed as {reported:?}"));
            }
        }
        if expected_seq != stats.next_seq {
            return Err(format!(
                "items end at seq {}, next seq is {}",
                expected_seq - 1,
                stats.next_seq
            ));
        }
        if let Some((seq, _)) = self.pushed.range(acked + 1..).next_back()
            && *seq >= stats.next_seq
        {
            return Err(format!(
                "seq {seq} was pushed but the queue's next seq is {}",
                stats.next_seq
            ));
        }
        if stats.items != n_items || stats.bytes != n_bytes {
            return Err(format!(
                "stats say {} items of {} bytes, the queue holds {n_items} of {n_bytes}",
                stats.items, stats.bytes
            ));
        }
        self.last_next_seq = stats.next_seq;
        self.last_n_items = n_items;
        self.last_dropped = stats.dropped;
        // Everything the parent knows is acknowledged is settled now.
        self.acked_lo = acked;
        self.acked_hi = acked;
        Ok(())
    }
}

/// The item a child pushes as number `n` of `round`: the numbers, a filler whose length varies
/// with `n`, and the SHA-256 of all that, so a torn item cannot pass for a whole one.
fn payload(round: u32, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&round.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    let filler_len = 16 + (n.wrapping_mul(2_654_435_761) % 400) as usize;
    out.extend((0..filler_len).map(|idx| (idx as u64 ^ n) as u8));
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// `(round, n)` of a whole payload, or `None` if it is torn.
fn check_payload(payload: &[u8]) -> Option<(u32, u64)> {
    let (body, digest) = payload.split_at_checked(payload.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    let round = u32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    let n = u64::from_be_bytes(body.get(4..12)?.try_into().ok()?);
    (payload == self::payload(round, n).as_slice()).then_some((round, n))
}

/// The lines the child finished writing; a last line cut short by the kill is left out, since
/// a cut number would claim something else.
fn complete_lines(stdout: impl std::io::Read) -> Vec<String> {
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if line.last() == Some(&b'\n') {
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        line.clear();
    }
    lines
}

fn report(stdout: &std::sync::Mutex<std::io::Stdout>, line: &str) {
    let mut out = stdout.lock().expect("stdout lock");
    writeln!(out, "{REPORT_MARK}{line}").expect("write");
    out.flush().expect("flush");
}

//! Crash durability: a child process appends until it is killed with SIGKILL; every acknowledged bundle must survive.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, scan_draft, verify_log, verify_log_incremental};
use store::Store;

const CHILD_ENV: &str = "OSIRIS_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_appends_until_killed";
const N_KILLS: u32 = 30;

/// Not a test on its own: when started by `acked_bundles_survive_sigkill` it opens the store and
/// appends from several tasks forever, printing `acked <seq> <line hash hex>` after each ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(
        Store::open(&config(std::path::Path::new(&dir)))
            .await
            .expect("child open"),
    );
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for task_idx in 0..4u64 {
        let store = Arc::clone(&store);
        let stdout = Arc::clone(&stdout);
        tasks.push(tokio::spawn(async move {
            for n in 0..u64::MAX {
                let drafts = (0..1 + n % 3)
                    .map(|k| scan_draft(task_idx << 32 | n << 2 | k))
                    .collect();
                let acked = store.append_batch(drafts).await.expect("child append");
                let mut out = stdout.lock().expect("stdout lock");
                for appended in acked {
                    writeln!(
                        out,
                        "acked {} {}",
                        appended.seq,
                        hex::encode(appended.line_hash)
                    )
                    .expect("write");
                }
                out.flush().expect("flush");
            }
        }));
    }
    for task in tasks {
        task.await.expect("child task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_bundles_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    // A fixed seed keeps the kill delays varied but reproducible.
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut n_acked_total = 0u64;
    let mut verified = Vec::new();
    let started = Instant::now();
    for kill_idx in 0..N_KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Half the runs die early (often mid-open), half after appending for a while.
        let delay_ms = if kill_idx % 2 == 0 {
            rng % 60
        } else {
            60 + rng % 240
        };
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        let lines = reader.join().expect("reader thread");
        let mut n_acked = 0;
        for line in lines {
            let Some(rest) = line.strip_prefix("acked ") else {
                continue;
            };
            let (seq, hash) = rest.split_once(' ').expect("acked line");
            let seq: u64 = seq.parse().expect("seq");
            let previous = acked.insert(seq, hash.to_owned());
            assert!(
                previous.is_none(),
                "seq {seq} acknowledged twice (run {kill_idx})"
            );
            n_acked += 1;
        }
        n_acked_total += n_acked;

        let store = Store::open(&config(dir.path()))
            .await
            .expect("reopen after SIGKILL");
        let size = verify_log_incremental(&store, &mut verified).await;
        for (seq, hash) in &acked {
            let stored = verified.get(*seq as usize).unwrap_or_else(|| {
                panic!("acknowledged seq {seq} lost after kill {kill_idx} at {delay_ms} ms")
            });
            assert_eq!(&hex::encode(stored), hash, "seq {seq} changed");
        }
        assert!(size >= acked.len() as u64);
        // Recovery must leave a writable log: the next append extends it.
        let next = store
            .append(scan_draft(u64::MAX))
            .await
            .expect("append after recovery");
        assert_eq!(next.seq, size);
        acked.insert(next.seq, hex::encode(next.line_hash));
        if kill_idx + 1 == N_KILLS {
            // One last full check from scratch, as an auditor would do it.
            assert_eq!(verify_log(&store).await, size + 1);
        }
        store.close().await;
    }
    let mut report = std::io::stderr();
    writeln!(
        report,
        "crash test: {N_KILLS} kills, {n_acked_total} acked bundles checked, final log size {}, {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    )
    .expect("report");
    assert!(
        n_acked_total > 0,
        "no child ever acknowledged a bundle; the test proved nothing"
    );
}

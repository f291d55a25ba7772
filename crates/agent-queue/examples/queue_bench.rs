//! Benchmark: times pushes, opening (the replay), reads and acknowledgements of the offline queue on real files and prints the rates.
//! Usage: `queue_bench [directory] [items]` (default: the system's temporary directory, 5,000 items of 512 bytes).

#![allow(clippy::print_stdout, reason = "a benchmark binary reports on stdout")]

use std::time::{Duration, Instant};

use agent_queue::{Limits, Queue};
use anyhow::Context;
use time::OffsetDateTime;

const PAYLOAD_BYTES: usize = 512;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let parent = args.next().map_or_else(std::env::temp_dir, Into::into);
    let n_items: u64 = args.next().map_or(Ok(5_000), |text| text.parse())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(run(&parent, n_items))
}

async fn run(parent: &std::path::Path, n_items: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let generous = Limits {
        max_items: 10_000_000,
        max_bytes: 1 << 40,
        max_age: Duration::from_secs(86_400),
    };
    let payload = vec![0x5a; PAYLOAD_BYTES];
    println!(
        "queue_bench: {n_items} items of {PAYLOAD_BYTES} bytes in {}",
        parent.display()
    );

    let queue = Queue::open(&dir.path().join("one-by-one.db"), generous).await?;
    let started = Instant::now();
    for _ in 0..n_items {
        queue
            .push("result", &payload, OffsetDateTime::now_utc())
            .await?;
    }
    rate("push (one commit each)", n_items, started);
    queue.close().await?;
    let started = Instant::now();
    let queue = Queue::open(&dir.path().join("one-by-one.db"), generous).await?;
    let opened = started.elapsed();
    println!(
        "open (replay {n_items} items): {:.1} ms",
        opened.as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let mut cursor = 0;
    let mut n_read = 0u64;
    loop {
        let page = queue.pending(cursor, 100).await?;
        let Some(last) = page.last() else { break };
        cursor = last.last_seq();
        n_read += page.len() as u64;
    }
    rate("pending (pages of 100)", n_read, started);
    let started = Instant::now();
    for seq in 1..=n_items {
        queue.ack(seq).await?;
    }
    rate("ack (one per item)", n_items, started);
    queue.close().await?;

    let queue = Queue::open(&dir.path().join("batched-acks.db"), generous).await?;
    for _ in 0..n_items {
        queue
            .push("result", &payload, OffsetDateTime::now_utc())
            .await?;
    }
    let started = Instant::now();
    let mut n_acks = 0;
    for seq in (100..=n_items).step_by(100) {
        queue.ack(seq).await?;
        n_acks += 1;
    }
    rate("ack (one per 100 items)", n_acks, started);
    queue.close().await?;

    let bounded = Limits {
        max_items: 1_000,
        ..generous
    };
    let queue = Queue::open(&dir.path().join("full.db"), bounded).await?;
    for _ in 0..1_000 {
        queue
            .push("result", &payload, OffsetDateTime::now_utc())
            .await?;
    }
    let started = Instant::now();
    for _ in 0..n_items {
        queue
            .push("result", &payload, OffsetDateTime::now_utc())
            .await?;
    }
    rate("push into a full queue (drop + gap each)", n_items, started);
    let stats = queue.stats(OffsetDateTime::now_utc()).await?;
    anyhow::ensure!(stats.dropped == n_items, "dropped {}", stats.dropped);
    queue.close().await?;
    Ok(())
}

fn rate(what: &str, n: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what}: {n} in {secs:.2} s = {:.0}/s ({:.3} ms each)",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
}

//! `osiris bench`: measures the evidence pipeline against the targets in docs/PERFORMANCE.md.
//!
//! Run it from a release build; figures from a debug build mean nothing.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Append scan bundles through the store (canonicalise, sign, chain, Merkle, SQLite group commit).
    Append {
        #[arg(long, default_value_t = 100_000)]
        n: u64,
        /// Concurrent producers.
        #[arg(long, default_value_t = 4)]
        producers: usize,
    },
    /// Build a kit of N bundles, then time `evidence verify` on it.
    Verify {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// Time inclusion proofs in a Merkle tree of N leaves.
    Proof {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        tracing::warn!(
            "Benchmarking a debug build: use `cargo run --release --bin osiris -- bench`."
        );
    }
    let whats = match args.what {
        Some(what) => vec![what],
        None => vec![
            What::Append {
                n: 100_000,
                producers: 4,
            },
            What::Verify { n: 1_000_000 },
            What::Proof { n: 1_000_000 },
        ],
    };
    for what in whats {
        match what {
            What::Append { n, producers } => bench_append(n, producers)?,
            What::Verify { n } => bench_verify(n)?,
            What::Proof { n } => bench_proof(n)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A realistic scan bundle body (~600 bytes canonical).
pub(crate) fn sample_body(i: u64) -> serde_json::Value {
    serde_json::json!({
        "target": {"name": format!("ws-{:04}.clinic.local", i % 100), "platform": "linux", "device_type": "server"},
        "started": "2026-11-28T03:40:12.123Z",
        "finished": "2026-11-28T03:40:13.456Z",
        "results": [
            {"check": "LIN-SSH-001", "title": "SSH root login disabled", "severity": "high", "status": "pass",
             "observed": {"permit_root_login": "no"}, "expected": "permit_root_login in [\"no\",\"prohibit-password\"]",
             "reason": "", "controls": ["HIPAA:164.312(a)(1)", "SOC2:CC6.1", "CIS:5.2.10"]},
            {"check": "LIN-DISK-001", "title": "Enough free disk space", "severity": "medium", "status": "fail",
             "observed": {"max_used_percent": 91 + (i % 8), "over_threshold": ["/ 93%"]}, "expected": "over_threshold is empty",
             "reason": "`over_threshold` is [\"/ 93%\"]", "controls": ["HIPAA:164.308(a)(7)(ii)(A)"]}
        ],
        "summary": {"total": 2, "pass": 1, "fail": 1, "error": 0, "skipped": 0}
    })
}

fn draft(i: u64) -> evidence::BundleDraft {
    evidence::BundleDraft {
        site: "bench-clinic".to_owned(),
        kind: "scan".to_owned(),
        catalog: "0.0.0+bench".to_owned(),
        time: OffsetDateTime::now_utc(),
        body: sample_body(i),
    }
}

fn bench_append(n: u64, producers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = crate::setup::runtime()?;
    let cfg = store::bench::ThroughputConfig {
        n_bundles: n,
        n_producers: producers,
        in_flight_per_producer: 64,
    };
    let run = runtime.block_on(store::bench::append_throughput(dir.path(), cfg))?;
    report(&format!(
        "append: {} bundles, {producers} producers × 64 in flight, acknowledged durably in {:.2} s = {:.0} bundles/s (target ≥ 20000)",
        run.n_bundles,
        run.elapsed.as_secs_f64(),
        run.per_second()
    ))
}

fn bench_verify(n: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let key = evidence::ApplianceKey::generate();
    let started = Instant::now();
    let mut writer = evidence::LogWriter::new(key.clone());
    let mut lines = Vec::with_capacity(n as usize);
    let mut checkpoints = Vec::new();
    for i in 0..n {
        let entry = writer.seal(&draft(i))?;
        lines.push(entry.line);
        if (i + 1) % (n / 4).max(1) == 0 || i + 1 == n {
            checkpoints.push(writer.checkpoint().1);
        }
    }
    checkpoints.dedup();
    let sealed = started.elapsed();
    let kit = dir.path().join("kit");
    let started = Instant::now();
    let source = evidence::kit::KitSource {
        key: &key,
        lines: Box::new(lines.into_iter().map(Ok)),
        checkpoints,
        ots: Vec::new(),
    };
    evidence::kit::export(&kit, source)?;
    let exported = started.elapsed();
    let started = Instant::now();
    let result = evidence::kit::verify(
        &kit,
        &evidence::kit::VerifyOptions {
            pinned_key: None,
            block_headers: Default::default(),
        },
    );
    let verified = started.elapsed();
    anyhow::ensure!(
        result.problems.is_empty(),
        "benchmark kit failed to verify: {:?}",
        result.problems.first()
    );
    let size = dir_size(&kit);
    report(&format!(
        "verify: kit of {n} bundles ({:.0} MiB) verified in {:.2} s (target ≤ 30 s); sealing took {:.2} s, export {:.2} s",
        size as f64 / (1024.0 * 1024.0),
        verified.as_secs_f64(),
        sealed.as_secs_f64(),
        exported.as_secs_f64()
    ))
}

fn bench_proof(n: u64) -> anyhow::Result<()> {
    let mut tree = evidence::MerkleTree::new();
    for i in 0..n {
        tree.push(evidence::leaf_hash(&i.to_be_bytes()));
    }
    let root = tree.root();
    let samples = 10_000u64;
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    let mut index = 0x9E37_79B9u64;
    for _ in 0..samples {
        index = index
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let leaf = index % n;
        let one = Instant::now();
        let proof = tree
            .inclusion_proof(leaf, n)
            .context("inclusion proof for an existing leaf")?;
        worst = worst.max(one.elapsed());
        anyhow::ensure!(
            evidence::verify_inclusion(
                &evidence::leaf_hash(&leaf.to_be_bytes()),
                leaf,
                n,
                &proof,
                &root
            ),
            "inclusion proof for leaf {leaf} does not verify"
        );
    }
    let mean = started.elapsed() / samples as u32;
    report(&format!(
        "proof: inclusion proof in a tree of {n} leaves: mean {:.1} µs (with verification), worst {:.1} µs (target ≤ 1 ms)",
        mean.as_secs_f64() * 1e6,
        worst.as_secs_f64() * 1e6
    ))
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            total += if path.is_dir() {
                dir_size(&path)
            } else {
                entry.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn report(line: &str) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

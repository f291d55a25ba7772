//! `osiris bench`: measures the evidence pipeline against the targets in docs/PERFORMANCE.md.
//!
//! Run it from a release build (`scripts/osiris bench`); figures from a debug build mean nothing.
//! The measurement code lives here, not in the libraries it measures, so shipped libraries carry none of it.

mod evidence_log;
pub(crate) mod report;
mod store_append;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::bench::store_append::ThroughputConfig;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum What {
    /// Seal scan bundles in memory (canonicalise, chain, sign, Merkle) on one core.
    Seal {
        #[arg(long, default_value_t = 200_000)]
        n: u64,
    },
    /// Append scan bundles through the store: seal plus SQLite group commit, acknowledged durably.
    Append {
        #[arg(long, default_value_t = 200_000)]
        n: u64,
        /// Concurrent producers.
        #[arg(long, default_value_t = 8)]
        producers: usize,
        /// Appends each producer keeps waiting at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// Scans of this many devices (default: every bundle a device of its own, the report
        /// summary's worst case: a new row per bundle).
        #[arg(long)]
        devices: Option<u64>,
    },
    /// Fill a store with N bundles, then time opening it (the Merkle tree is rebuilt from stored leaf hashes).
    Open {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// Build a kit of N bundles, then time `evidence verify` on it.
    Verify {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// Time the L1 decision for a failed check against the shipped rules and a busy history.
    Decide {
        /// Past attempts in the history the decision scans.
        #[arg(long, default_value_t = 1_000)]
        history: usize,
    },
    /// Start osirisd (built next to this binary) with N targets; measure its idle RSS and CPU,
    /// and the local API's status latency while scan cycles run.
    Daemon {
        #[arg(long, default_value_t = 1_000)]
        targets: usize,
        /// Seconds of idle time to sample CPU over.
        #[arg(long, default_value_t = 20)]
        idle_secs: u64,
        /// Status requests to time while a cycle runs.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
    },
    /// Start osirisd (built next to this binary) with its agent gateway on loopback; enroll N
    /// agents (100 at once first), connect each over its own mutual-TLS connection, then send
    /// signed results at a steady rate and time each one's acknowledgement; osirisd's RSS and CPU.
    Agents {
        /// Agents enrolled and connected at once.
        #[arg(long, default_value_t = 10_000)]
        agents: usize,
        /// Results per second, all agents together.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// Seconds of steady load.
        #[arg(long, default_value_t = 30)]
        secs: u64,
    },
    /// A month of a site through the report pipeline (read, assess, PDF, OSCAL); time and peak RSS.
    Report {
        #[arg(long, default_value_t = 200)]
        devices: usize,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 5)]
        interval_mins: u32,
        /// Check results per scan bundle (1: ≈ 1.7 M results for the defaults; the Linux catalogue runs 22).
        #[arg(long, default_value_t = 1)]
        checks: usize,
        /// Seal the bundles into a real store first (not timed) and read them back from SQLite.
        #[arg(long)]
        store: bool,
        /// With --store: keep the store in this data directory (reused when it already holds
        /// bundles), so `osiris report --data-dir DIR` can be timed on it.
        #[arg(long, requires = "store")]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Scan a generated Microsoft 365 tenant on the Graph peer (throttling on), a Google
    /// Workspace account on the Google peer, or an AWS account on the AWS peer; time and peak RSS.
    Cloud {
        /// `microsoft365`, `google-workspace` or `aws`.
        #[arg(long, default_value = "microsoft365")]
        provider: String,
        /// Users (default: 5,000, or 500 IAM users for AWS).
        #[arg(long)]
        users: Option<usize>,
        #[arg(long, default_value_t = 2_000)]
        devices: usize,
        /// AWS: S3 buckets.
        #[arg(long, default_value_t = 1_000)]
        buckets: usize,
        /// The Python interpreter that runs the peer (AWS: one that imports botocore).
        #[arg(long, default_value = "python3")]
        python: std::path::PathBuf,
        /// The peer script (default: vm-tests/lab/cloud/fakegraph.py, fakegoogle.py for Google
        /// Workspace, fakeaws.py for AWS).
        #[arg(long)]
        peer: Option<std::path::PathBuf>,
    },
    /// Import a generated RMM site (Datto RMM or ConnectWise Automate) from the RMM peer, its
    /// first data request throttled, and reconcile it with a directory of as many computers;
    /// time, requests and peak RSS.
    Rmm {
        /// `datto` or `connectwise-automate`.
        #[arg(long, default_value = "datto")]
        vendor: String,
        #[arg(long, default_value_t = 5_000)]
        devices: usize,
        /// The Python interpreter that runs the peer.
        #[arg(long, default_value = "python3")]
        python: std::path::PathBuf,
        /// The peer script.
        #[arg(long, default_value = "vm-tests/lab/cloud/fakermm.py")]
        peer: std::path::PathBuf,
    },
    /// Scan the configured targets (e.g. the lab's `site.toml`) RUNS times on one fresh data
    /// directory: cold with every check, then steady (what is due); each check's CPU time on the
    /// targets.
    Scan {
        #[arg(long)]
        config: std::path::PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Time inclusion proofs in a Merkle tree of N leaves.
    Proof {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        tracing::warn!("Benchmarking a debug build: use `scripts/osiris bench` (release).");
    }
    let whats = match args.what {
        Some(what) => vec![what],
        None => vec![
            What::Seal { n: 200_000 },
            What::Append {
                n: 200_000,
                producers: 8,
                in_flight: 64,
                devices: None,
            },
            What::Proof { n: 1_000_000 },
            What::Decide { history: 1_000 },
            What::Verify { n: 1_000_000 },
        ],
    };
    let mut out = std::io::stdout().lock();
    for what in whats {
        let line = match what {
            What::Seal { n } => {
                let run = evidence_log::seal_throughput(n)?;
                let total = (run.prepare + run.seal).as_secs_f64();
                format!(
                    "seal: {n} bundles of {} bytes in {total:.2} s = {:.0} bundles/s on one core (prepare {:.2} s, sign+chain+Merkle {:.2} s)",
                    run.average_line_bytes,
                    n as f64 / total,
                    run.prepare.as_secs_f64(),
                    run.seal.as_secs_f64()
                )
            }
            What::Append {
                n,
                producers,
                in_flight,
                devices,
            } => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let cfg = ThroughputConfig {
                    n_bundles: n,
                    n_producers: producers,
                    in_flight_per_producer: in_flight,
                    n_devices: devices,
                };
                let run = crate::setup::runtime()?
                    .block_on(store_append::append_throughput(dir.path(), cfg))?;
                format!(
                    "append: {} bundles of {}, {producers} producers × {in_flight} in flight, durably committed in {:.2} s = {:.0} bundles/s (target ≥ 20,000)",
                    run.n_bundles,
                    devices.map_or("a device each".to_owned(), |d| format!("{d} devices")),
                    run.elapsed.as_secs_f64(),
                    run.per_second()
                )
            }
            What::Verify { n } => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let kit = dir.path().join("kit");
                let times = evidence_log::export_and_verify(&kit, n)?;
                anyhow::ensure!(
                    times.report.problems.is_empty(),
                    "benchmark kit failed to verify: {:?}",
                    times.report.problems.first()
                );
                format!(
                    "verify: kit of {n} bundles ({:.0} MiB) verified in {:.2} s (target ≤ 30 s); sealing took {:.2} s, export {:.2} s",
                    dir_size(&kit) as f64 / (1024.0 * 1024.0),
                    times.verify.as_secs_f64(),
                    times.seal.as_secs_f64(),
                    times.export.as_secs_f64()
                )
            }
            What::Open { n } => bench_open(n)?,
            What::Scan { ref config, runs } => {
                crate::bench_scan::run(&crate::bench_scan::ScanBench {
                    config: config.clone(),
                    runs,
                })?
            }
            What::Cloud {
                ref provider,
                users,
                devices,
                buckets,
                ref python,
                ref peer,
            } => {
                let provider = provider
                    .parse::<model::Platform>()
                    .ok()
                    .filter(|p| p.is_cloud())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--provider `{provider}` is unknown (known: microsoft365, google-workspace, aws, okta)"
                        )
                    })?;
                let peer = peer
                    .clone()
                    .unwrap_or_else(|| crate::bench_cloud::default_peer(provider).into());
                if provider == model::Platform::Aws {
                    crate::bench_cloud::run_aws(&crate::bench_cloud::AwsBench {
                        users: users.unwrap_or(500),
                        buckets,
                        python: python.clone(),
                        peer,
                    })?
                } else {
                    crate::bench_cloud::run(&crate::bench_cloud::CloudBench {
                        provider,
                        users: users.unwrap_or(5_000),
                        devices,
                        python: python.clone(),
                        peer,
                    })?
                }
            }
            What::Rmm {
                ref vendor,
                devices,
                ref python,
                ref peer,
            } => crate::bench_cloud::run_rmm(&crate::bench_cloud::RmmBench {
                vendor: match vendor.as_str() {
                    "datto" => cloud::rmm::RmmKind::Datto,
                    "connectwise-automate" => cloud::rmm::RmmKind::ConnectWiseAutomate,
                    other => anyhow::bail!(
                        "--vendor `{other}` is unknown (known: datto, connectwise-automate)"
                    ),
                },
                devices,
                python: python.clone(),
                peer: peer.clone(),
            })?,
            What::Report {
                devices,
                days,
                interval_mins,
                checks,
                store,
                data_dir,
            } => {
                let t = report::run(report::ReportBench {
                    n_devices: devices,
                    days,
                    interval_mins,
                    checks_per_scan: checks,
                    through_store: store,
                    data_dir,
                })?;
                format!(
                    "report{}: {} scan bundles ({:.0} MiB of {}), {} check results of {devices} devices over {days} days; read {:.2} s, assess HIPAA {:.3} s, inclusion proofs {}, PDF {:.3} s ({:.1} MiB), OSCAL {:.3} s ({:.1} MiB); to PDF {:.2} s, to OSCAL {:.2} s (targets ≤ 10 s / ≤ 5 s); peak RSS {} MiB (target ≤ 200 MiB)",
                    match (t.fill, t.summarise) {
                        (Some(fill), Some(summarise)) => format!(
                            " (through SQLite's report summary; sealing took {:.0} s, summarising at the checkpoint {:.1} s)",
                            fill.as_secs_f64(),
                            summarise.as_secs_f64()
                        ),
                        _ if store => " (through SQLite's report summary)".to_owned(),
                        _ => " (lines in memory)".to_owned(),
                    },
                    t.n_bundles,
                    t.line_bytes as f64 / (1024.0 * 1024.0),
                    if store { "database" } else { "lines" },
                    t.n_results,
                    t.ingest.as_secs_f64(),
                    t.assess.as_secs_f64(),
                    t.proofs
                        .map_or("not measured (lines in memory)".to_owned(), |p| format!(
                            "{:.2} s",
                            p.as_secs_f64()
                        )),
                    t.pdf.as_secs_f64(),
                    t.pdf_bytes as f64 / (1024.0 * 1024.0),
                    t.oscal.as_secs_f64(),
                    t.oscal_bytes as f64 / (1024.0 * 1024.0),
                    (t.ingest + t.assess + t.proofs.unwrap_or_default() + t.pdf).as_secs_f64(),
                    (t.ingest + t.assess + t.proofs.unwrap_or_default() + t.oscal).as_secs_f64(),
                    t.peak_rss_kib
                        .map_or("?".to_owned(), |k| (k / 1024).to_string())
                )
            }
            What::Decide { history } => bench_decide(history)?,
            What::Daemon {
                targets,
                idle_secs,
                requests,
            } => crate::bench_daemon::run(targets, idle_secs, requests)?,
            What::Agents { agents, rate, secs } => {
                crate::bench_agents::run(crate::bench_agents::AgentsBench {
                    n_agents: agents,
                    rate,
                    secs,
                })?
            }
            What::Proof { n } => {
                let times = evidence_log::inclusion_proof_time(n, 100_000)?;
                format!(
                    "proof: inclusion proof + verification in a tree of {n} leaves: mean {:.1} µs, worst {:.1} µs over 100,000 leaves (target ≤ 1 ms)",
                    times.mean.as_secs_f64() * 1e6,
                    times.worst.as_secs_f64() * 1e6
                )
            }
        };
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_open(n: u64) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = crate::setup::runtime()?;
    let fill = runtime.block_on(store_append::append_throughput(
        dir.path(),
        ThroughputConfig {
            n_bundles: n,
            n_producers: 8,
            in_flight_per_producer: 64,
            n_devices: None,
        },
    ))?;
    let reopen = runtime.block_on(store_append::append_throughput(
        dir.path(),
        ThroughputConfig {
            n_bundles: 1,
            n_producers: 1,
            in_flight_per_producer: 1,
            n_devices: None,
        },
    ))?;
    anyhow::ensure!(
        reopen.opened_size == n,
        "the reopened store holds {} bundles, not {n}",
        reopen.opened_size
    );
    Ok(format!(
        "open: store of {n} bundles opened (Merkle tree rebuilt from stored leaf hashes) in {:.3} s; filling it took {:.1} s = {:.0} bundles/s",
        reopen.open_elapsed.as_secs_f64(),
        fill.elapsed.as_secs_f64(),
        fill.per_second()
    ))
}

fn bench_decide(n_history: usize) -> anyhow::Result<String> {
    let catalog = crate::setup::load_catalog()?;
    let rules = rules::embedded(catalog.runbooks()).map_err(|err| anyhow::anyhow!("{err}"))?;
    let facts = |id: &str| {
        catalog.get(id).map(|rb| rules::RunbookFacts {
            auto_heal: rb.auto_heal,
        })
    };
    let now = 1_800_000_000;
    let history: Vec<rules::Attempt> = (0..n_history)
        .map(|i| rules::Attempt {
            rule: format!("L1-LIN-RULE-{:03}", i % 40),
            target: format!("host-{}", i % 100),
            at: now - 86_400 + i as i64 * 60,
            result: if i % 7 == 0 {
                rules::AttemptResult::Failed
            } else {
                rules::AttemptResult::Verified
            },
        })
        .collect();
    let policy = rules::Policy {
        paused: false,
        in_maintenance: false,
        max_per_hour: 1_000_000,
        flap_max: 3,
        flap_window_secs: 14_400,
        breaker_failures: 5,
        breaker_cooldown_secs: 1_800,
    };
    let observed = serde_json::json!({"permit_root_login": "yes"});
    let checks: Vec<&str> = catalog.runbooks().iter().map(|rb| rb.id.as_str()).collect();
    let rounds = 20_000;
    let mut worst = std::time::Duration::ZERO;
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let finding = rules::Finding {
            target: "host-7",
            check: checks[round % checks.len()],
            status: model::CheckStatus::Fail,
            observed: &observed,
            declarative: false,
        };
        let one = std::time::Instant::now();
        std::hint::black_box(rules::decide(
            &finding, &rules, &facts, &history, &policy, now,
        ));
        worst = worst.max(one.elapsed());
    }
    let mean = started.elapsed() / rounds as u32;
    Ok(format!(
        "decide: L1 decision per failed check with {n_history} past attempts: mean {:.1} µs, worst {:.1} µs over {rounds} decisions (target ≤ 1 ms)",
        mean.as_secs_f64() * 1e6,
        worst.as_secs_f64() * 1e6
    ))
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                dir_size(&path)
            } else {
                entry.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

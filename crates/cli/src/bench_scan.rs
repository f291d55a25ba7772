//! `osiris bench scan`: the site's scan (its configured targets, e.g. the lab's) run several
//! times on one fresh data directory: the first run with every check (`--all`, cold: new SSH
//! connections and shells), the rest as a steady `osirisd` cycle would (what is due, over the
//! connections and shells kept warm); per run the wall time, hosts per second, the machine's
//! CPU (targets included, when they share it) and osiris's own; then each check's CPU time on
//! the targets, averaged per host, from the batch shell's `times`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct ScanBench {
    pub(crate) config: PathBuf,
    pub(crate) runs: usize,
}

/// Runs the bench; the report.
pub(crate) fn run(bench: &ScanBench) -> anyhow::Result<String> {
    let config = crate::setup::load_config(Some(&bench.config))?;
    let catalog = Arc::new(crate::setup::load_catalog()?);
    crate::setup::check_overrides(&config, &catalog)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let data_dir = dir.path().to_path_buf();
    let runtime = crate::setup::runtime()?;
    let hosts = config.targets.len();
    // As in osirisd: SSH connections and WinRS shells stay open between runs (the cold run
    // opens them).
    ops::scan::keep_ssh_sessions_warm(hosts.max(1), Duration::from_secs(600));
    ops::scan::keep_winrm_shells_warm(hosts.max(1), Duration::from_secs(600));
    let mut out = String::new();
    let mut per_check: Vec<BTreeMap<String, (Duration, usize)>> = Vec::new();
    for run in 0..bench.runs.max(1) {
        let options = ops::scan::ScanOptions {
            due: if run == 0 {
                scan::cadence::Due::All
            } else {
                scan::cadence::Due::Cadence
            },
            ..Default::default()
        };
        let machine_before = machine_cpu();
        let self_before = self_cpu();
        let started = Instant::now();
        let scanned = runtime.block_on(ops::scan::scan_with(
            &config,
            &catalog,
            &data_dir,
            &ops::secrets::HostPasswords::default(),
            &options,
        ))?;
        let wall = started.elapsed();
        let machine = machine_cpu().zip(machine_before).map(|(a, b)| a - b);
        let own = self_cpu()
            .zip(self_before)
            .map(|(a, b)| a.saturating_sub(b));
        let (mut ran, mut carried, mut errors) = (0, 0, 0);
        let mut costs: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
        for one in &scanned {
            carried += one.report.carried.len();
            ran += one.report.results.len() - one.report.carried.len();
            errors += one
                .report
                .results
                .iter()
                .filter(|r| r.outcome.status == model::CheckStatus::Error)
                .count();
            for (check, cpu) in &one.report.target_cpu {
                let entry = costs.entry(check.clone()).or_default();
                entry.0 += *cpu;
                entry.1 += 1;
            }
        }
        let target_cpu: Duration = costs.values().map(|(cpu, _)| *cpu).sum();
        let _ = writeln!(
            out,
            "scan run {} ({}): {hosts} hosts in {:.2} s = {:.1} hosts/s; {ran} checks run, {carried} carried, {errors} errors; machine {}, osiris {}; checks on the targets {:.3} CPU-s per host",
            run + 1,
            if run == 0 { "cold, --all" } else { "steady" },
            wall.as_secs_f64(),
            hosts as f64 / wall.as_secs_f64(),
            machine.map_or("?".to_owned(), |s| format!("{s:.2} CPU-s")),
            own.map_or("?".to_owned(), |d| format!("{:.2} CPU-s", d.as_secs_f64())),
            target_cpu.as_secs_f64() / hosts.max(1) as f64,
        );
        per_check.push(costs);
    }
    // Per check: CPU-seconds per host where it ran, cold and steady, costliest first.
    let cold = per_check.first().cloned().unwrap_or_default();
    let steady = per_check.last().cloned().unwrap_or_default();
    let mut rows: Vec<(&String, f64)> = cold
        .iter()
        .map(|(check, (cpu, n))| (check, cpu.as_secs_f64() / (*n).max(1) as f64))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let _ = writeln!(
        out,
        "target CPU per host and check (ms): cold run | last run (- = carried, not run)"
    );
    for (check, cold_ms) in rows {
        let last = steady.get(check).map_or("-".to_owned(), |(cpu, n)| {
            format!("{:.1}", cpu.as_secs_f64() * 1000.0 / (*n).max(1) as f64)
        });
        let _ = writeln!(out, "  {check:<18} {:>8.1} | {last:>8}", cold_ms * 1000.0);
    }
    Ok(out)
}

/// CPU-seconds every core has spent busy since boot (`/proc/stat`: all but idle and iowait, and
/// guest time, which user time already counts).
fn machine_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy: u64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4 | 8 | 9))
        .map(|(_, v)| *v)
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    Some(busy as f64 / 100.0)
}

/// This process's user + system CPU time (`/proc/self/stat`).
fn self_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

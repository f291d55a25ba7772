//! `osiris bench daemon`: a real `osirisd` with many configured targets — its resident memory and
//! CPU while idle, and the local API's status latency while scan cycles run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the benchmark; returns the report line.
pub(crate) fn run(targets: usize, idle_secs: u64, requests: usize) -> anyhow::Result<String> {
    let osirisd = std::env::current_exe()
        .context("locating this binary")?
        .with_file_name("osirisd");
    anyhow::ensure!(
        osirisd.exists(),
        "{} is missing: build it first (cargo build --release -p daemon -p cli)",
        osirisd.display()
    );
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = write_config(dir.path(), targets)?;
    let socket = dir.path().join("api.sock");
    let child = Command::new(&osirisd)
        .args(["--config", config.to_str().unwrap_or_default()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", osirisd.display()))?;
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let client = api::Client::new(&socket).with_timeout(Duration::from_secs(10));
    let first_scan = Instant::now();
    wait(Duration::from_secs(300), || {
        client
            .status()
            .ok()
            .filter(|s| server_scan(s).is_some_and(|c| c.runs >= 1 && !c.running))
            .is_some()
    })
    .context("the first scan cycle did not finish within 300 s")?;
    let first_cycle = first_scan.elapsed();

    // Idle: nothing due for an hour; sample CPU time and memory.
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, _) = proc_stat(pid)?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (cpu1, rss) = proc_stat(pid)?;
    let idle_cpu = (cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0;

    // Busy: keep a cycle running (each seals one bundle per target) and time status calls.
    let mut during = Vec::new();
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while during.len() < requests && Instant::now() < deadline {
        let _ = client.scan_now();
        for _ in 0..50 {
            let started = Instant::now();
            let status = client.status().context("status during a cycle")?;
            let took = started.elapsed();
            all.push(took);
            if server_scan(&status).is_some_and(|c| c.running) {
                during.push(took);
            }
        }
    }
    let (_, busy_rss) = proc_stat(pid)?;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    during.sort();
    let pct = |v: &[Duration], p: f64| -> f64 {
        v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Ok(format!(
        "daemon: {targets} targets; first cycle {:.1} s; idle RSS {:.1} MiB (target ≤ 150), idle CPU {idle_cpu:.2} % over {idle_secs} s (target ≈ 0); status during cycles: {} calls, p50 {:.2} ms, p99 {:.2} ms (target ≤ 10), max {:.2} ms; RSS after cycles {:.1} MiB",
        first_cycle.as_secs_f64(),
        rss as f64 / (1024.0 * 1024.0),
        during.len(),
        pct(&during, 0.50),
        pct(&during, 0.99),
        during.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        busy_rss as f64 / (1024.0 * 1024.0),
    ))
}

fn server_scan(status: &api::Status) -> Option<&api::CycleState> {
    status
        .cycles
        .iter()
        .find(|c| c.kind == api::CycleKind::ServerScan)
}

fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// CPU seconds used so far and resident bytes, from /proc.
fn proc_stat(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or_default();
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_default();
    Ok((ticks / 100.0, rss_kib * 1024))
}

/// Targets on a closed loopback port: each scan fails fast at connect, so a cycle is the
/// daemon's own work (scheduling, one sealed bundle per target, incidents, state).
fn write_config(dir: &Path, targets: usize) -> anyhow::Result<PathBuf> {
    use std::fmt::Write as _;
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("id_bench");
    std::fs::write(&key, "not a real key\n")?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    let mut text = format!(
        "site = \"bench\"\ndata_dir = \"{}\"\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\nserver_scan_secs = 3600\ndrift_rescan_secs = 3600\ncheckpoint_secs = 3600\njitter_percent = 0\n",
        dir.join("data").display(),
        dir.join("api.sock").display()
    );
    for n in 0..targets {
        let _ = write!(
            text,
            "\n[[target]]\nname = \"host{n:04}\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"127.0.0.1\"\nport = 1\nuser = \"bench\"\nkey_file = \"{}\"\n",
            key.display()
        );
    }
    let path = dir.join("appliance.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

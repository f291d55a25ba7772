//! `osiris bench report`: a month of a large site through the report pipeline (read bundle lines,
//! assess every control, write PDF and OSCAL), with the time of each step and the peak RSS.
//!
//! By default the bundle lines are generated in memory with every envelope member a sealed line
//! has (the signature is random bytes: the report does not verify signatures, `evidence verify`
//! does), so the parse cost is that of real lines. With `--store` they are sealed into a real
//! store first (not timed; in a temporary directory, or in `--data-dir`, where a later run reuses
//! them), and the report reads the month back as `osiris report` does: attestations and
//! exceptions from their bundles, the days from the store's report summary.

use std::time::{Duration, Instant};

use rand::RngExt as _;
use time::OffsetDateTime;

use compliance::{Ledger, Period};
use model::Framework;

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct ReportBench {
    pub(crate) n_devices: usize,
    pub(crate) days: u32,
    pub(crate) interval_mins: u32,
    /// Check results per scan bundle (the Linux catalogue has 22).
    pub(crate) checks_per_scan: usize,
    /// Seal the bundles into a real store and read them back from SQLite.
    pub(crate) through_store: bool,
    /// Keep that store here (a store already filled here is reused).
    pub(crate) data_dir: Option<std::path::PathBuf>,
}

/// What it measured.
#[derive(Debug)]
pub(crate) struct ReportTimes {
    pub(crate) n_bundles: u64,
    pub(crate) n_results: u64,
    /// Bytes of bundle lines (in memory), or of the database file (`--store`).
    pub(crate) line_bytes: u64,
    /// Sealing into the store (`--store` only; not part of the report's time).
    pub(crate) fill: Option<Duration>,
    /// Summarising the month at the checkpoint after sealing (`--store` only; not part of the
    /// report's time).
    pub(crate) summarise: Option<Duration>,
    pub(crate) ingest: Duration,
    pub(crate) assess: Duration,
    /// Reading the Merkle tree at the checkpoint and the cited bundles' inclusion proofs
    /// (`--store` only).
    pub(crate) proofs: Option<Duration>,
    pub(crate) pdf: Duration,
    pub(crate) pdf_bytes: usize,
    pub(crate) oscal: Duration,
    pub(crate) oscal_bytes: usize,
    pub(crate) peak_rss_kib: Option<u64>,
}

pub(crate) fn run(cfg: ReportBench) -> anyhow::Result<ReportTimes> {
    let catalog = crate::setup::load_catalog()?;
    let frameworks = catalog::embedded_frameworks()
        .map_err(|e| anyhow::anyhow!("built-in framework catalogues are broken: {e}"))?;
    let checks: Vec<&str> = catalog
        .for_platform(model::Platform::Linux)
        .map(|rb| rb.id.as_str())
        .collect();
    anyhow::ensure!(
        cfg.checks_per_scan >= 1 && cfg.checks_per_scan <= checks.len(),
        "--checks must be 1..={}",
        checks.len()
    );
    let period = Period::month("2026-11")?;
    let cycles = u64::from(cfg.days) * 24 * 60 / u64::from(cfg.interval_mins);
    let mut rng = rand::rng();
    let signature: String = (0..86)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect();
    let mut ledger = Ledger::new(period.clone(), None);
    let mut n_bundles = 0;
    let mut n_results = 0;
    let mut line_bytes = 0;
    let mut fill = None;
    let mut summarise = None;
    let mut tree = None;
    let mut checkpoint = None;
    let mut tree_time = None;
    let started;
    if cfg.through_store {
        let temp = tempfile::tempdir()?;
        let dir = cfg
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.path().to_owned());
        let runtime = crate::setup::runtime()?;
        let fill_started = Instant::now();
        let store = runtime.block_on(crate::setup::open_store(&dir, "bench"))?;
        if store.size() == 0 {
            let mut drafts = Vec::with_capacity(1000);
            for cycle in 0..cycles {
                let at = period.start
                    + time::Duration::minutes((cycle * u64::from(cfg.interval_mins)) as i64);
                for device in 0..cfg.n_devices {
                    let body = scan_body(&mut rng, &checks, &cfg, device, cycle, &rfc3339(at));
                    drafts.push(evidence::BundleDraft {
                        site: "bench".to_owned(),
                        kind: evidence_schema::KIND_SCAN.to_owned(),
                        catalog: catalog.version().to_owned(),
                        time: at,
                        body: serde_json::from_str(&body)?,
                    });
                    if drafts.len() == 1000 {
                        runtime.block_on(store.append_batch(std::mem::take(&mut drafts)))?;
                    }
                }
            }
            runtime.block_on(store.append_batch(drafts))?;
            fill = Some(fill_started.elapsed());
            // The checkpoint brings the report summary up to the log (what osirisd's checkpoint
            // cycle does every few minutes, here for the whole month at once).
            let summary_started = Instant::now();
            runtime.block_on(store.create_checkpoint())?;
            summarise = Some(summary_started.elapsed());
        }
        started = Instant::now();
        runtime.block_on(crate::compliance_cmd::fill_ledger_from_summary(
            store.reads(),
            store.size(),
            &mut ledger,
        ))?;
        n_bundles = store.size();
        n_results = n_bundles * cfg.checks_per_scan as u64;
        let tree_started = Instant::now();
        checkpoint = runtime
            .block_on(store.latest_checkpoint())?
            .map(|c| (c.size, c.note));
        if let Some((size, _)) = &checkpoint {
            tree = Some((*size, runtime.block_on(store.reads().merkle_tree(*size))?));
        }
        tree_time = Some(tree_started.elapsed());
        line_bytes = std::fs::metadata(store.db_path()).map_or(0, |m| m.len());
        runtime.block_on(store.close());
    } else {
        let mut line = String::with_capacity(16 * 1024);
        started = Instant::now();
        for cycle in 0..cycles {
            let at = period.start
                + time::Duration::minutes((cycle * u64::from(cfg.interval_mins)) as i64);
            let time = rfc3339(at);
            for device in 0..cfg.n_devices {
                let body = scan_body(&mut rng, &checks, &cfg, device, cycle, &time);
                line.clear();
                line.push_str(&format!(
                    "{{\"appliance\":\"bench.example/appliance/0001\",\"body\":{body},\"catalog\":\"{}\",\"key\":\"bench.example/appliance+0001+AAAA\",\"kind\":\"scan\",\"prev\":\"{}\",\"schema\":\"osiris.bundle/v1\",\"seq\":{n_bundles},\"sig\":\"{signature}\",\"site\":\"bench\",\"time\":\"{time}\"}}",
                    catalog.version(),
                    "0".repeat(64),
                ));
                ledger.add_line(n_bundles, line.as_bytes())?;
                n_bundles += 1;
                n_results += cfg.checks_per_scan as u64;
                line_bytes += line.len() as u64;
            }
        }
    }
    // The tree read is timed with the proofs, not with the ledger.
    let ingest = started.elapsed() - tree_time.unwrap_or_default();

    let framework = frameworks
        .get(Framework::Hipaa)
        .ok_or_else(|| anyhow::anyhow!("no HIPAA catalogue"))?;
    let started = Instant::now();
    let assessment = compliance::assess(framework, &catalog, &ledger);
    let assess = started.elapsed();
    let proofs_started = Instant::now();
    let proofs = crate::compliance_cmd::proofs_from_tree(
        tree.as_ref(),
        &compliance::cited_bundles([&assessment]),
        None,
    );
    let proofs_time = tree_time.map(|t| t + proofs_started.elapsed());
    let cx = compliance::render::ReportContext {
        site: "bench",
        origin: "bench.example/appliance/0001",
        key_id: "0001",
        catalog_version: catalog.version(),
        frameworks_version: frameworks.version(),
        generated_at: OffsetDateTime::now_utc(),
        checkpoint: checkpoint
            .as_ref()
            .map(|(size, note)| (*size, note.as_str())),
        tool_version: env!("CARGO_PKG_VERSION"),
        samples: &[],
        proofs: &proofs,
    };
    let started = Instant::now();
    let pdf = compliance::render::pdf(&assessment, &ledger, &cx);
    let pdf_time = started.elapsed();
    let started = Instant::now();
    let results = compliance::render::oscal::assessment_results(&assessment, &ledger, &cx);
    let poam = compliance::render::oscal::poam(&assessment, &ledger, &cx);
    let oscal_bytes = serde_json::to_vec(&results)?.len() + serde_json::to_vec(&poam)?.len();
    let oscal = started.elapsed();
    Ok(ReportTimes {
        n_bundles,
        n_results,
        line_bytes,
        fill,
        summarise,
        ingest,
        assess,
        proofs: proofs_time,
        pdf: pdf_time,
        pdf_bytes: pdf.len(),
        oscal,
        oscal_bytes,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// The body of one device's scan in one cycle: a rotating window of checks, about 3 % failing.
fn scan_body(
    rng: &mut impl rand::Rng,
    checks: &[&str],
    cfg: &ReportBench,
    device: usize,
    cycle: u64,
    time: &str,
) -> String {
    let offset = (device + cycle as usize) % checks.len();
    let mut body = format!("{{\"finished\":\"{time}\",\"results\":[");
    for idx in 0..cfg.checks_per_scan {
        let check = checks[(offset + idx) % checks.len()];
        let status = if rng.random_range(0..100) < 2 + device % 3 {
            "fail"
        } else {
            "pass"
        };
        if idx > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"check\":\"{check}\",\"controls\":[\"HIPAA:164.312(b)\"],\"expected\":\"value is at most 90\",\"observed\":{{\"max_days\":{}}},\"reason\":\"max_days is {}\",\"severity\":\"high\",\"status\":\"{status}\",\"title\":\"A check\"}}",
            30 + device % 90,
            30 + device % 90
        ));
    }
    body.push_str(&format!(
        "],\"started\":\"{time}\",\"summary\":{{\"error\":0,\"fail\":0,\"pass\":0,\"skipped\":0,\"total\":{}}},\"target\":{{\"device_type\":\"server\",\"name\":\"device-{device:04}.clinic.example\",\"platform\":\"linux\"}}}}",
        cfg.checks_per_scan
    ));
    body
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `VmHWM` of this process, in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

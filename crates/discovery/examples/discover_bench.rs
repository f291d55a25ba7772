//! Benchmark: discovers every computer of the lab DC named by a `dc.env` file and prints the count,
//! pages, wall time and peak RSS (VmHWM). Usage: `discover_bench <dc.env> [page_size]`.

#![allow(clippy::print_stdout, reason = "a benchmark binary reports on stdout")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use discovery::{BindPassword, DirectoryConfig, TlsMode, discover};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let env_path = args
        .next()
        .context("usage: discover_bench <dc.env> [page_size]")?;
    let page_size: u32 = args.next().map_or(Ok(1000), |text| text.parse())?;
    let env_text =
        std::fs::read_to_string(&env_path).with_context(|| format!("reading {env_path}"))?;
    let env: BTreeMap<&str, &str> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let get = |key: &str| {
        env.get(key)
            .copied()
            .with_context(|| format!("{key} missing in {env_path}"))
    };
    let password = std::fs::read_to_string(get("LAB_DC_PASSWORD_FILE")?)?;
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(get("LAB_DC_EXPECTED")?)?)?;
    let now = OffsetDateTime::parse(expected["now"].as_str().context("now")?, &Rfc3339)?;
    let cfg = DirectoryConfig {
        domain: get("LAB_DC_DOMAIN")?.to_owned(),
        dc: Some(get("LAB_DC_HOST")?.to_owned()),
        resolver: None,
        base_dn: Some(get("LAB_DC_BASE_DN")?.to_owned()),
        bind_user: get("LAB_DC_USER")?.to_owned(),
        bind_password: BindPassword::new(password.trim_end().to_owned()),
        tls: TlsMode::StartTls,
        ca_pem: Some(std::fs::read(get("LAB_CA")?)?),
        stale_after_days: 90,
        page_size,
        timeout: Duration::from_secs(60),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let inventory = runtime.block_on(discover(&cfg, now))?;
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ?");
    println!(
        "computers={} pages={} expected={} seconds={seconds:.2} peak_rss={}",
        inventory.computers.len(),
        inventory.fetched_pages,
        expected["count"],
        peak.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}

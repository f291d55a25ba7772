//! `osiris bench cloud`: one Microsoft 365 tenant scan against the Graph peer
//! (`vm-tests/lab/cloud/fakegraph.py`, a generated tenant, throttling at the published limits
//! plus a 429 on the first call of every path), or (`--provider aws`) one AWS account scan
//! against the AWS peer (`vm-tests/lab/cloud/fakeaws.py`, generated IAM users and buckets, the
//! first call of every operation throttled), over HTTPS with a throwaway CA made here; the
//! scan's wall time, requests, throttled answers and this process's peak RSS.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The peer's tenant, application and secret (a throwaway value the peer is started with).
const TENANT: &str = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b";
const CLIENT_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct CloudBench {
    pub(crate) users: usize,
    pub(crate) devices: usize,
    pub(crate) python: PathBuf,
    pub(crate) peer: PathBuf,
}

/// Runs the bench; the report line.
pub(crate) fn run(bench: &CloudBench) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let (_peer, port) = start_peer(
        Command::new(&bench.python)
            .arg(&bench.peer)
            .args(["--port", "0", "--tenant", TENANT, "--client-id", CLIENT_ID])
            .args([
                "--secret",
                &secret,
                "--profile",
                "large",
                "--throttle-first",
            ])
            .args(["--users", &bench.users.to_string()])
            .args(["--devices", &bench.devices.to_string()]),
        dir.path(),
        (&bench.python, &bench.peer),
    )?;
    let catalog = crate::setup::load_catalog()?;
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::Microsoft365)
        .collect();
    let tenant = cloud::Microsoft365Tenant {
        name: "bench".to_owned(),
        graph: cloud::graph::GraphSettings {
            token_url: format!("https://127.0.0.1:{port}/{TENANT}/oauth2/v2.0/token"),
            graph_base: format!("https://127.0.0.1:{port}/v1.0"),
            client_id: CLIENT_ID.to_owned(),
            credential: cloud::graph::ClientCredential::Secret(zeroize::Zeroizing::new(secret)),
            ca_pem: Some(ca_pem.into_bytes()),
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(120),
    };
    let runtime = crate::setup::runtime()?;
    let overrides = Default::default();
    let started = Instant::now();
    let report = runtime
        .block_on(cloud::scan_microsoft365(tenant, &runbooks, &overrides))
        .report;
    let elapsed = started.elapsed();
    let (requests, throttled, peak) =
        measured(&report, dir.path(), |l| l.contains("\"status\": 429"))?;
    Ok(format!(
        "cloud: Microsoft 365 tenant of {} users and {} devices, {} checks judged in {:.2} s (target ≤ 30 s) over {requests} requests, {throttled} answered 429 and retried after Retry-After; peak RSS {peak} (target ≤ 100 MiB)",
        bench.users,
        bench.devices,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// What to run against the AWS peer.
#[derive(Debug, Clone)]
pub(crate) struct AwsBench {
    pub(crate) users: usize,
    pub(crate) buckets: usize,
    pub(crate) python: PathBuf,
    pub(crate) peer: PathBuf,
}

/// The AWS peer's account and access key ID (the secret is made per run).
const AWS_ACCOUNT: &str = "404122885710";
const AWS_KEY_ID: &str = "AKIAQ3EGOSIRISBENCH1";

/// Runs the AWS bench; the report line.
pub(crate) fn run_aws(bench: &AwsBench) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let secret = hex::encode(rand::random::<[u8; 20]>());
    let (_peer, port) = start_peer(
        Command::new(&bench.python)
            .arg(&bench.peer)
            .args(["--port", "0", "--account", AWS_ACCOUNT])
            .args(["--access-key-id", AWS_KEY_ID, "--secret", &secret])
            .args(["--profile", "large", "--throttle-first"])
            .args(["--users", &bench.users.to_string()])
            .args(["--buckets", &bench.buckets.to_string()]),
        dir.path(),
        (&bench.python, &bench.peer),
    )?;
    let catalog = crate::setup::load_catalog()?;
    let runbooks: Vec<_> = catalog.for_platform(model::Platform::Aws).collect();
    let account = cloud::AwsAccount {
        name: "bench".to_owned(),
        settings: cloud::aws::client::AwsSettings {
            account_id: AWS_ACCOUNT.to_owned(),
            regions: vec![
                "us-east-1".to_owned(),
                "us-west-2".to_owned(),
                "eu-west-1".to_owned(),
            ],
            credentials: cloud::aws::sigv4::Credentials {
                access_key_id: AWS_KEY_ID.to_owned(),
                secret_access_key: zeroize::Zeroizing::new(secret),
                session_token: None,
            },
            endpoint: Some(format!("https://127.0.0.1:{port}")),
            ca_pem: Some(ca_pem.into_bytes()),
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(120),
    };
    let runtime = crate::setup::runtime()?;
    let overrides = Default::default();
    let started = Instant::now();
    let report = runtime
        .block_on(cloud::scan_aws(account, &runbooks, &overrides))
        .report;
    let elapsed = started.elapsed();
    let (requests, throttled, peak) = measured(&report, dir.path(), |l| {
        [
            "\"Throttling\"",
            "ThrottlingException",
            "SlowDown",
            "RequestLimitExceeded",
        ]
        .iter()
        .any(|code| l.contains(code))
    })?;
    Ok(format!(
        "cloud: AWS account of {} IAM users and {} buckets in 3 regions, {} checks judged in {:.2} s (target ≤ 30 s) over {requests} SigV4-signed requests, {throttled} throttled and retried with back-off; peak RSS {peak}",
        bench.users,
        bench.buckets,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// After a bench scan: every check judged (none in error), the peer's request count, how many of
/// its log lines `throttled` matches, and this process's peak RSS in words.
fn measured(
    report: &scan::TargetReport,
    dir: &Path,
    throttled: impl Fn(&str) -> bool,
) -> anyhow::Result<(usize, usize, String)> {
    let not_judged: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == model::CheckStatus::Error)
        .map(|r| format!("{}: {}", r.runbook_id, r.outcome.reason))
        .collect();
    anyhow::ensure!(not_judged.is_empty(), "checks in error: {not_judged:?}");
    let log =
        std::fs::read_to_string(dir.join("requests.jsonl")).context("reading the peer's log")?;
    let peak = crate::bench::report::peak_rss_kib()
        .map_or_else(|| "?".to_owned(), |kib| format!("{} MiB", kib / 1024));
    Ok((
        log.lines().count(),
        log.lines().filter(|l| throttled(l)).count(),
        peak,
    ))
}

/// Starts a peer (`command` plus the certificate, key and log in `dir`); the process and the
/// port of its `READY` line.
fn start_peer(
    command: &mut Command,
    dir: &Path,
    (python, script): (&Path, &Path),
) -> anyhow::Result<(Peer, u16)> {
    let mut peer = Peer(
        command
            .arg("--cert")
            .arg(dir.join("server.pem"))
            .arg("--key")
            .arg(dir.join("server.key"))
            .arg("--log")
            .arg(dir.join("requests.jsonl"))
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} {} (give --python and --peer)",
                    python.display(),
                    script.display()
                )
            })?,
    );
    let mut line = String::new();
    std::io::BufReader::new(peer.0.stdout.take().context("the peer's stdout")?)
        .read_line(&mut line)
        .context("reading the peer's READY line")?;
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the peer did not start: {line:?}"))?;
    Ok((peer, port))
}

/// The peer process, killed on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A throwaway CA and a certificate for 127.0.0.1 signed by it (`server.pem`, `server.key` in
/// `dir`); the CA's PEM.
fn pki(dir: &Path) -> anyhow::Result<String> {
    let ca_key = KeyPair::generate().context("making the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().context("making the server key")?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("server.pem"), cert.pem()).context("writing server.pem")?;
    std::fs::write(dir.join("server.key"), key.serialize_pem()).context("writing server.key")?;
    Ok(ca_pem)
}

//! `osiris bench cloud`: one Microsoft 365 tenant scan against the Graph peer
//! (`vm-tests/lab/cloud/fakegraph.py`, a generated tenant, throttling at the published limits
//! plus a 429 on the first call of every path), or one Google Workspace account scan against the
//! Google peer (`fakegoogle.py`, the Directory API's per-user limit plus a 429 on the first call
//! of every resource, the service account's key made here with the openssl CLI), or one AWS
//! account scan against the AWS peer (`fakeaws.py`, generated IAM users and buckets, the first
//! call of every operation throttled), or one Okta org scan against the Okta peer (`fakeokta.py`,
//! generated users each with a factor, Okta's per-minute limits per endpoint plus a 429 on the
//! first call of every resource, an API token made here), over HTTPS with a throwaway CA made here; the scan's wall
//! time, requests, throttled answers and this process's peak RSS.

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
    pub(crate) provider: model::Platform,
    pub(crate) users: usize,
    pub(crate) devices: usize,
    pub(crate) python: PathBuf,
    pub(crate) peer: PathBuf,
}

/// The peer script a provider's bench runs unless `--peer` names another.
pub(crate) fn default_peer(provider: model::Platform) -> &'static str {
    match provider {
        model::Platform::GoogleWorkspace => "vm-tests/lab/cloud/fakegoogle.py",
        model::Platform::Aws => "vm-tests/lab/cloud/fakeaws.py",
        model::Platform::Okta => "vm-tests/lab/cloud/fakeokta.py",
        _ => "vm-tests/lab/cloud/fakegraph.py",
    }
}

/// Runs the bench; the report line.
pub(crate) fn run(bench: &CloudBench) -> anyhow::Result<String> {
    if bench.provider == model::Platform::GoogleWorkspace {
        return run_google(bench);
    }
    if bench.provider == model::Platform::Okta {
        return run_okta(bench);
    }
    anyhow::ensure!(
        bench.provider == model::Platform::Microsoft365,
        "--provider must be microsoft365, google-workspace, aws or okta"
    );
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let (_peer, port) = start_peer(
        (&bench.python, &bench.peer),
        dir.path(),
        &[
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--secret",
            &secret,
            "--users",
            &bench.users.to_string(),
            "--devices",
            &bench.devices.to_string(),
        ],
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
    let overrides = Default::default();
    let (report, elapsed, requests, throttled, peak) = timed(
        cloud::scan_microsoft365(tenant, &runbooks, &overrides),
        dir.path(),
        |l| l.contains("\"status\": 429"),
    )?;
    Ok(format!(
        "cloud: Microsoft 365 tenant of {} users and {} devices, {} checks judged in {:.2} s (target ≤ 30 s) over {requests} requests, {throttled} answered 429 and retried after Retry-After; peak RSS {peak} (target ≤ 100 MiB)",
        bench.users,
        bench.devices,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// The Google Workspace bench: a service account key made with openssl, the account scanned.
fn run_google(bench: &CloudBench) -> anyhow::Result<String> {
    const CUSTOMER: &str = "C03az79cb";
    const SERVICE_ACCOUNT: &str = "bench@osiris-bench.iam.gserviceaccount.com";
    const KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let (key, cert) = (dir.path().join("sa.key"), dir.path().join("sa.crt"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=bench"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl to make the service account's key")?;
    anyhow::ensure!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cert_arg = cert.to_string_lossy().into_owned();
    let (_peer, port) = start_peer(
        (&bench.python, &bench.peer),
        dir.path(),
        &[
            "--customer-id",
            CUSTOMER,
            "--sa-email",
            SERVICE_ACCOUNT,
            "--sa-key-id",
            KEY_ID,
            "--sa-cert",
            &cert_arg,
            "--users",
            &bench.users.to_string(),
            "--devices",
            &bench.devices.to_string(),
        ],
    )?;
    let token_url = format!("https://127.0.0.1:{port}/token");
    let key_json = serde_json::json!({
        "type": "service_account",
        "private_key_id": KEY_ID,
        "private_key": std::fs::read_to_string(&key).context("reading the service account's key")?,
        "client_email": SERVICE_ACCOUNT,
        "token_uri": token_url,
    });
    let catalog = crate::setup::load_catalog()?;
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::GoogleWorkspace)
        .collect();
    let tenant = cloud::GoogleWorkspaceTenant {
        name: "bench".to_owned(),
        customer_id: CUSTOMER.to_owned(),
        directory: cloud::google::GoogleSettings {
            token_url,
            directory_base: format!("https://127.0.0.1:{port}/admin/directory/v1"),
            subject: "ann.smith@smithfamilypractice.com".to_owned(),
            key_json: zeroize::Zeroizing::new(key_json.to_string()),
            ca_pem: Some(ca_pem.into_bytes()),
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(120),
    };
    let overrides = Default::default();
    let (report, elapsed, requests, throttled, peak) = timed(
        cloud::scan_google_workspace(tenant, &runbooks, &overrides),
        dir.path(),
        |l| l.contains("\"status\": 429"),
    )?;
    Ok(format!(
        "cloud: Google Workspace account of {} users and {} mobile devices, {} checks judged in {:.2} s over {requests} requests, {throttled} answered 429 and retried with back-off; peak RSS {peak}",
        bench.users,
        bench.devices,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// The Okta bench: an API token made here, the org's users (each active user's factors one
/// request each, at Okta's per-minute limits) and policies read and judged.
fn run_okta(bench: &CloudBench) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let token = format!("00{}", hex::encode(rand::random::<[u8; 20]>()));
    let (_peer, port) = start_peer(
        (&bench.python, &bench.peer),
        dir.path(),
        &["--token", &token, "--users", &bench.users.to_string()],
    )?;
    let catalog = crate::setup::load_catalog()?;
    let runbooks: Vec<_> = catalog.for_platform(model::Platform::Okta).collect();
    let org = cloud::OktaOrg {
        name: "bench".to_owned(),
        settings: cloud::okta::OktaSettings {
            org_url: format!("https://127.0.0.1:{port}"),
            credential: cloud::okta::OktaCredential::ApiToken(zeroize::Zeroizing::new(token)),
            ca_pem: Some(ca_pem.into_bytes()),
            request_timeout: Duration::from_secs(30),
        },
        timeout: Duration::from_secs(1_800),
    };
    let overrides = Default::default();
    let (report, elapsed, requests, throttled, peak) = timed(
        cloud::scan_okta(org, &runbooks, &overrides),
        dir.path(),
        |l| l.contains("\"status\": 429"),
    )?;
    Ok(format!(
        "cloud: Okta org of {} users, {} checks judged in {:.2} s over {requests} requests, {throttled} answered 429 and waited out until X-Rate-Limit-Reset; peak RSS {peak}",
        bench.users,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// What to run against the RMM peer.
#[derive(Debug, Clone)]
pub(crate) struct RmmBench {
    pub(crate) vendor: cloud::rmm::RmmKind,
    pub(crate) devices: usize,
    pub(crate) python: PathBuf,
    pub(crate) peer: PathBuf,
}

/// Runs the RMM bench: one import of a generated site, then its reconciliation with a directory
/// that knows 95 % of the machines and 5 % the RMM does not; the report line.
pub(crate) fn run_rmm(bench: &RmmBench) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let ca_pem = pki(dir.path())?;
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let (site, client_id, vendor) = match bench.vendor {
        cloud::rmm::RmmKind::Datto => ("8a2f3c4d-1b2c-4d5e-8f90-0123456789ab", None, "datto"),
        cloud::rmm::RmmKind::ConnectWiseAutomate => (
            "17",
            Some("c8b2f1d3-5a6e-4f70-9b1c-2d3e4f5a6b7c".to_owned()),
            "automate",
        ),
    };
    let (_peer, port) = start_peer(
        (&bench.python, &bench.peer),
        dir.path(),
        &[
            "--vendor",
            vendor,
            "--user",
            "bench",
            "--secret",
            &secret,
            "--profile",
            "large",
            "--count",
            &bench.devices.to_string(),
            "--throttle-first",
        ],
    )?;
    let settings = cloud::rmm::RmmSettings {
        kind: bench.vendor,
        api_url: format!("https://127.0.0.1:{port}"),
        site: site.to_owned(),
        user: "bench".to_owned(),
        secret: zeroize::Zeroizing::new(secret),
        client_id,
        ca_pem: Some(ca_pem.into_bytes()),
        request_timeout: Duration::from_secs(30),
    };
    let runtime = crate::setup::runtime()?;
    let started = Instant::now();
    let devices = runtime
        .block_on(cloud::rmm::devices(
            &settings,
            Instant::now() + Duration::from_secs(600),
        ))
        .context("importing the generated site")?;
    let imported = started.elapsed();
    anyhow::ensure!(
        devices.len() == bench.devices,
        "imported {} devices of {}",
        devices.len(),
        bench.devices
    );
    let known = bench.devices * 95 / 100;
    let directory: Vec<_> = (0..bench.devices + bench.devices / 20)
        .filter(|i| *i < known || *i >= bench.devices)
        .map(|i| cloud::rmm::reconcile::DirectoryComputer {
            account: format!("WS{i:05}$"),
            dns_host_name: Some(format!("ws{i:05}.clinic.example")),
            class: "workstation".to_owned(),
            disabled: false,
            stale: false,
        })
        .collect();
    let started = Instant::now();
    let lines = cloud::rmm::reconcile::reconcile(&directory, &devices, Some("clinic.example"));
    let reconciled = started.elapsed();
    let gaps = lines.iter().filter(|l| l.standing.is_gap()).count();
    let log = std::fs::read_to_string(dir.path().join("requests.jsonl"))
        .context("reading the peer's log")?;
    let requests = log.lines().count();
    let throttled = log
        .lines()
        .filter(|l| l.contains("\"status\": 429"))
        .count();
    let peak = crate::bench::report::peak_rss_kib()
        .map_or_else(|| "?".to_owned(), |kib| format!("{} MiB", kib / 1024));
    Ok(format!(
        "rmm: {vendor} site of {} devices imported in {:.2} s over {requests} requests ({throttled} answered 429 and waited out), reconciled with {} directory computers in {:.1} ms ({gaps} gaps); peak RSS {peak}",
        devices.len(),
        imported.as_secs_f64(),
        directory.len(),
        reconciled.as_secs_f64() * 1000.0,
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
        (&bench.python, &bench.peer),
        dir.path(),
        &[
            "--account",
            AWS_ACCOUNT,
            "--access-key-id",
            AWS_KEY_ID,
            "--secret",
            &secret,
            "--users",
            &bench.users.to_string(),
            "--buckets",
            &bench.buckets.to_string(),
        ],
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
    let overrides = Default::default();
    let (report, elapsed, requests, throttled, peak) = timed(
        cloud::scan_aws(account, &runbooks, &overrides),
        dir.path(),
        |l| {
            [
                "\"Throttling\"",
                "ThrottlingException",
                "SlowDown",
                "RequestLimitExceeded",
            ]
            .iter()
            .any(|code| l.contains(code))
        },
    )?;
    Ok(format!(
        "cloud: AWS account of {} IAM users and {} buckets in 3 regions, {} checks judged in {:.2} s (target ≤ 30 s) over {requests} SigV4-signed requests, {throttled} throttled and retried with back-off; peak RSS {peak}",
        bench.users,
        bench.buckets,
        report.results.len(),
        elapsed.as_secs_f64(),
    ))
}

/// Starts the peer script (`python script`) with its large profile, the first call of every
/// path throttled, TLS from `dir` and `flags` (its account and size); the process and its port.
fn start_peer(
    (python, script): (&Path, &Path),
    dir: &Path,
    flags: &[&str],
) -> anyhow::Result<(Peer, u16)> {
    let mut peer = Peer(
        Command::new(python)
            .arg(script)
            .args(["--port", "0", "--profile", "large", "--throttle-first"])
            .args(flags)
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
    let port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("the peer did not start: {line:?}"))?;
    Ok((peer, port))
}

/// Runs `scan` on a new runtime; fails when a check could not be judged; else the report, the
/// scan's wall time, the peer's requests (logged in `dir`), how many of its log lines
/// `throttled` matches and this process's peak RSS.
fn timed(
    scan: impl std::future::Future<Output = cloud::TenantScan>,
    dir: &Path,
    throttled: impl Fn(&str) -> bool,
) -> anyhow::Result<(scan::TargetReport, Duration, usize, usize, String)> {
    let runtime = crate::setup::runtime()?;
    let started = Instant::now();
    let report = runtime.block_on(scan).report;
    let elapsed = started.elapsed();
    let not_judged: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == model::CheckStatus::Error)
        .map(|r| format!("{}: {}", r.runbook_id, r.outcome.reason))
        .collect();
    anyhow::ensure!(not_judged.is_empty(), "checks in error: {not_judged:?}");
    let log =
        std::fs::read_to_string(dir.join("requests.jsonl")).context("reading the peer's log")?;
    let requests = log.lines().count();
    let throttled = log.lines().filter(|l| throttled(l)).count();
    let peak = crate::bench::report::peak_rss_kib()
        .map_or_else(|| "?".to_owned(), |kib| format!("{} MiB", kib / 1024));
    Ok((report, elapsed, requests, throttled, peak))
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

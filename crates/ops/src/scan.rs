//! Scanning the configured targets: transports from configuration (credentials resolved),
//! bounded concurrency, one signed `scan` bundle per target.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;

use config::{PasswordSource, TransportConfig, WinRmAuth, WinRmConfig, WinRmSecurity, WinRmTrust};
use evidence_schema::{CheckResultRecord, ScanBody, Summary, TargetRecord};
use model::{DeviceType, Platform, Runbook, Target};
use scan::TargetReport;

use crate::secrets::HostPasswords;

/// One scanned target, with the transport that reached it (healing reuses it).
pub struct Scanned {
    pub target: Target,
    pub transport: Arc<dyn transport::Transport>,
    pub report: TargetReport,
}

/// Which checks a scan runs (the rest are carried from their last run: `scan::cadence`).
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// What is due, or everything (`osiris scan --all`).
    pub due: scan::cadence::Due,
    /// Only these checks of these targets (a re-scan after drift); every other result of the
    /// site is carried from its last run (a check that never ran still runs).
    pub focus: Option<BTreeMap<String, BTreeSet<String>>>,
}

static NO_CHECKS: BTreeSet<String> = BTreeSet::new();

/// The file, in the data directory, that keeps each check's last run per target.
pub const SCHEDULE_FILE: &str = "scan-schedule.json";

/// Scans every configured target, at most `SCAN_CONCURRENCY` at once, in configuration order;
/// runs the checks that are due and carries the rest.
pub async fn scan_all(
    config: &config::Config,
    catalog: &Arc<catalog::Catalog>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Vec<Scanned>> {
    scan_with(
        config,
        catalog,
        data_dir,
        &HostPasswords::default(),
        &ScanOptions::default(),
    )
    .await
}

/// [`scan_all`], with the per-host passwords of this cycle (discovered workstations' LAPS
/// passwords) for the targets whose password comes from the directory, and `options`.
pub async fn scan_with(
    config: &config::Config,
    catalog: &Arc<catalog::Catalog>,
    data_dir: &std::path::Path,
    host_passwords: &HostPasswords,
    options: &ScanOptions,
) -> anyhow::Result<Vec<Scanned>> {
    let schedule = Arc::new(load_schedule(data_dir)?);
    let options = Arc::new(options.clone());
    let overrides = Arc::new(config.param_overrides());
    let known_hosts_path = data_dir.join("known_hosts");
    let known_hosts = Arc::new(
        scan_ssh::KnownHosts::open(&known_hosts_path)
            .with_context(|| format!("opening {}", known_hosts_path.display()))?,
    );
    // Build every transport first, so a credential problem stops the run before any scan.
    let secrets = crate::secrets::Secrets::new(config, data_dir);
    let mut jobs = Vec::new();
    for target_config in &config.targets {
        let platform = target_config.platform;
        let target = Target {
            name: target_config.name.clone(),
            platform,
            device_type: if platform == Platform::WindowsWorkstation {
                DeviceType::Workstation
            } else {
                DeviceType::Server
            },
        };
        let transport: Arc<dyn transport::Transport> = Arc::from(transport_for(
            target_config,
            &known_hosts,
            &secrets,
            host_passwords,
        )?);
        jobs.push((target, transport));
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(SCAN_CONCURRENCY));
    let mut tasks = Vec::new();
    for (target, transport) in jobs {
        let catalog = Arc::clone(catalog);
        let overrides = Arc::clone(&overrides);
        let schedule = Arc::clone(&schedule);
        let options = Arc::clone(&options);
        let permit = Arc::clone(&limit)
            .acquire_owned()
            .await
            .context("scan limiter closed")?;
        tasks.push(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let runbooks: Vec<_> = catalog.for_platform(target.platform).collect();
            let scripts = scan::ScriptContext {
                overrides: &overrides,
                powershell_prelude: catalog.powershell_prelude(),
            };
            let fingerprints = fingerprints(&runbooks, &overrides);
            let plan = scan::cadence::plan(
                &runbooks,
                &fingerprints,
                schedule.targets.get(&target.name),
                OffsetDateTime::now_utc(),
                options.due,
                options
                    .focus
                    .as_ref()
                    .map(|focus| focus.get(&target.name).unwrap_or(&NO_CHECKS)),
            );
            // Nothing due: no session at all (no login on the target).
            let (report, diagnostics) = if plan.run.is_empty() && !plan.carried.is_empty() {
                let now = OffsetDateTime::now_utc();
                let report = TargetReport {
                    target: target.clone(),
                    started: now,
                    finished: now,
                    results: Vec::new(),
                    carried: BTreeMap::new(),
                    target_cpu: BTreeMap::new(),
                };
                (report, Vec::new())
            } else {
                scan::scan_target(&target, transport.as_ref(), &plan.run, &scripts)
            };
            // Diagnostics mean no session opened: nothing is carried then.
            let unreachable = !diagnostics.is_empty();
            let report = scan::cadence::merge(&runbooks, report, plan.carried, unreachable);
            let fingerprints = runbooks
                .iter()
                .map(|runbook| runbook.id.clone())
                .zip(fingerprints)
                .collect();
            (
                Scanned {
                    target,
                    transport,
                    report,
                },
                diagnostics,
                fingerprints,
            )
        }));
    }
    let mut scanned = Vec::new();
    let mut ran = Vec::new();
    for task in tasks {
        let (one, diagnostics, fingerprints) = task.await.context("scan task failed")?;
        for diagnostic in diagnostics {
            tracing::warn!(target_name = %diagnostic.target, error = %diagnostic.message, "Scan problem.");
        }
        ran.push(fingerprints);
        scanned.push(one);
    }
    let reports: Vec<(&TargetReport, &BTreeMap<String, String>)> = scanned
        .iter()
        .map(|one| &one.report)
        .zip(ran.iter())
        .collect();
    save_schedule(data_dir, &reports).await?;
    let carried: usize = scanned.iter().map(|one| one.report.carried.len()).sum();
    let total: usize = scanned.iter().map(|one| one.report.results.len()).sum();
    tracing::debug!(
        targets = scanned.len(),
        results = total,
        carried,
        "Scan finished."
    );
    Ok(scanned)
}

/// Each runbook's [`scan::cadence::fingerprint`] with the site's parameters.
fn fingerprints(runbooks: &[&Runbook], overrides: &scan::ParamOverrides) -> Vec<String> {
    let empty = BTreeMap::new();
    runbooks
        .iter()
        .map(|runbook| {
            let params = model::resolve_params(
                &runbook.params,
                overrides.get(&runbook.id).unwrap_or(&empty),
            )
            .ok();
            scan::cadence::fingerprint(runbook, params.as_ref())
        })
        .collect()
}

/// The schedule in `data_dir`; empty when there is none yet. A file that cannot be read is an
/// error that names it; one that is not a schedule (a future format, damage) is set aside as
/// `scan-schedule.json.unreadable` and costs one scan of everything, never a lost scan.
fn load_schedule(data_dir: &std::path::Path) -> anyhow::Result<scan::cadence::Schedule> {
    let path = data_dir.join(SCHEDULE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    match serde_json::from_slice(&bytes) {
        Ok(schedule) => Ok(schedule),
        Err(err) => {
            let aside = data_dir.join(format!("{SCHEDULE_FILE}.unreadable"));
            tracing::warn!(path = %path.display(), error = %err, moved_to = %aside.display(), "The scan schedule is unreadable; every check runs this time.");
            std::fs::rename(&path, &aside)
                .with_context(|| format!("moving {} aside", path.display()))?;
            Ok(Default::default())
        }
    }
}

/// Serialises read-modify-write of the schedule between this process's concurrent scans
/// (servers and workstations run in their own cycles).
static SCHEDULE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Records what ran in `reports` and writes the schedule back (through `durable`), dropping runs
/// older than any interval allows (targets gone from the site).
async fn save_schedule(
    data_dir: &std::path::Path,
    reports: &[(&TargetReport, &BTreeMap<String, String>)],
) -> anyhow::Result<()> {
    let _guard = SCHEDULE_LOCK.lock().await;
    let mut schedule = load_schedule(data_dir)?;
    for (report, fingerprints) in reports {
        scan::cadence::record(&mut schedule, report, fingerprints);
    }
    let oldest = OffsetDateTime::now_utc() - time::Duration::days(31);
    let oldest_ms = i64::try_from(oldest.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    for runs in schedule.targets.values_mut() {
        runs.retain(|_, run| run.observed_at_unix_ms >= oldest_ms);
    }
    schedule.targets.retain(|_, runs| !runs.is_empty());
    let bytes = serde_json::to_vec(&schedule).context("encoding the scan schedule")?;
    let path = data_dir.join(SCHEDULE_FILE);
    durable::write(&path, &bytes, 0o600).with_context(|| format!("writing {}", path.display()))
}

/// Seals one scan bundle per report; returns `(target, seq)` per bundle.
pub async fn record_scans(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    reports: &[TargetReport],
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut bundles = Vec::new();
    for report in reports {
        let body = scan_body(catalog, report)?;
        let draft = evidence::BundleDraft {
            site: config.site.clone(),
            kind: evidence_schema::KIND_SCAN.to_owned(),
            catalog: catalog.version().to_owned(),
            time: OffsetDateTime::now_utc(),
            body,
        };
        let appended = store
            .append(draft)
            .await
            .context("recording scan evidence")?;
        bundles.push((report.target.name.clone(), appended.seq));
    }
    Ok(bundles)
}

/// One configured target and its transport (credentials read now), by name; for running an
/// approved L2 plan outside a scan.
///
/// # Errors
/// When no target has that name or its credentials cannot be read.
pub fn target_transport(
    config: &config::Config,
    data_dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<(Target, Arc<dyn transport::Transport>)> {
    let target_config = config
        .targets
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("no target `{name}` in the configuration"))?;
    let known_hosts_path = data_dir.join("known_hosts");
    let known_hosts = Arc::new(
        scan_ssh::KnownHosts::open(&known_hosts_path)
            .with_context(|| format!("opening {}", known_hosts_path.display()))?,
    );
    let secrets = crate::secrets::Secrets::new(config, data_dir);
    let platform = target_config.platform;
    let target = Target {
        name: target_config.name.clone(),
        platform,
        device_type: if platform == Platform::WindowsWorkstation {
            DeviceType::Workstation
        } else {
            DeviceType::Server
        },
    };
    let transport = Arc::from(transport_for(
        target_config,
        &known_hosts,
        &secrets,
        &HostPasswords::default(),
    )?);
    Ok((target, transport))
}

/// How many targets are scanned at once.
const SCAN_CONCURRENCY: usize = 16;

/// Where SSH connections wait between scans, once [`keep_ssh_sessions_warm`] was called.
static SSH_POOL: std::sync::OnceLock<Arc<scan_ssh::SessionPool>> = std::sync::OnceLock::new();

/// From now on, keep up to `max_idle` SSH connections open between scans, each at most
/// `max_age` unused, so a cycle does not pay key exchange and login on every target (`osirisd`
/// calls this; a one-off `osiris scan` has nothing to keep them for). Only the first call counts.
pub fn keep_ssh_sessions_warm(max_idle: usize, max_age: std::time::Duration) {
    let _ = SSH_POOL.set(Arc::new(scan_ssh::SessionPool::new(max_idle, max_age)));
}

/// Where WinRS shells wait between scans, once [`keep_winrm_shells_warm`] was called.
static WINRM_POOL: std::sync::OnceLock<Arc<scan_winrm::ShellPool>> = std::sync::OnceLock::new();

/// From now on, keep up to `max_idle` WinRS shells open between scans, each at most `max_age`
/// unused, so a cycle does not pay the login and the Create/Delete Shell exchange on every
/// Windows host (`osirisd` calls this). A shell the host dropped meanwhile is replaced before
/// anything runs. Only the first call counts.
pub fn keep_winrm_shells_warm(max_idle: usize, max_age: std::time::Duration) {
    let _ = WINRM_POOL.set(Arc::new(scan_winrm::ShellPool::new(max_idle, max_age)));
}

/// The transport a target's configuration asks for, with its credentials read from their files.
fn transport_for(
    target: &config::TargetConfig,
    known_hosts: &Arc<scan_ssh::KnownHosts>,
    secrets: &crate::secrets::Secrets,
    host_passwords: &HostPasswords,
) -> anyhow::Result<Box<dyn transport::Transport>> {
    let what = format!("target `{}`", target.name);
    match &target.transport {
        TransportConfig::Local => Ok(Box::new(scan_local::LocalTransport)),
        TransportConfig::Ssh(ssh) => {
            let ssh_target = scan_ssh::SshTarget {
                name: target.name.clone(),
                address: ssh.address.clone(),
                port: ssh.port,
                user: ssh.user.clone(),
                auth: secrets.ssh_auth(&what, &ssh.login)?,
                become_root: ssh.become_root,
                connect_timeout: std::time::Duration::from_secs(10),
                host_key: ssh.host_key.clone(),
            };
            let transport = match SSH_POOL.get() {
                Some(pool) => scan_ssh::SshTransport::pooled(
                    ssh_target,
                    Arc::clone(known_hosts),
                    Arc::clone(pool),
                ),
                None => scan_ssh::SshTransport::new(ssh_target, Arc::clone(known_hosts)),
            }
            .map_err(|err| crate::BadConfig(format!("{what}: {err}")))?;
            Ok(Box::new(transport))
        }
        TransportConfig::WinRm(winrm) => Ok(Box::new(winrm_transport(
            &target.name,
            winrm,
            secrets,
            host_passwords,
        )?)),
    }
}

/// A WinRM transport to `name` (a configured target or a discovered workstation), its password
/// read from its file or the vault.
fn winrm_transport(
    name: &str,
    winrm: &WinRmConfig,
    secrets: &crate::secrets::Secrets,
    host_passwords: &HostPasswords,
) -> anyhow::Result<scan_winrm::WinRmTransport> {
    let what = format!("target `{name}`");
    let (https, auth, tls) = match &winrm.security {
        WinRmSecurity::Https { auth, trust } => (
            true,
            match auth {
                WinRmAuth::Ntlm => scan_winrm::Auth::Ntlm,
                WinRmAuth::Basic => scan_winrm::Auth::Basic,
                WinRmAuth::Kerberos => scan_winrm::Auth::Kerberos,
            },
            match trust {
                WinRmTrust::SystemRoots => scan_winrm::Tls::SystemRoots,
                WinRmTrust::CaFile(ca) => scan_winrm::Tls::CaFile(ca.clone()),
                WinRmTrust::PinSha256(pin) => scan_winrm::Tls::PinSha256(*pin),
            },
        ),
        WinRmSecurity::HttpNtlm => (false, scan_winrm::Auth::Ntlm, scan_winrm::Tls::SystemRoots),
    };
    let winrm_target = scan_winrm::WinRmTarget {
        name: name.to_owned(),
        address: winrm.address.clone(),
        port: winrm.port,
        https,
        auth,
        user: winrm.user.clone(),
        password: match &winrm.password {
            // Read from the directory for this cycle (LAPS); a copy lives as long as the target.
            PasswordSource::Directory => host_passwords
                .get(name)
                .cloned()
                .with_context(|| format!("{what}: no LAPS password was read for it this cycle"))?,
            source => secrets.password(&what, source)?,
        },
        tls,
        server_name: winrm.verify_name.clone(),
        connect_timeout: std::time::Duration::from_secs(10),
        operation_timeout: std::time::Duration::from_secs(60),
    };
    match WINRM_POOL.get() {
        Some(pool) => scan_winrm::WinRmTransport::pooled(winrm_target, Arc::clone(pool)),
        None => scan_winrm::WinRmTransport::new(winrm_target),
    }
    .map_err(|err| crate::BadConfig(format!("{what}: {err}")).into())
}

/// The evidence body of one target's scan (schema: docs/EVIDENCE-FORMAT.md).
pub fn scan_body(
    catalog: &catalog::Catalog,
    report: &TargetReport,
) -> anyhow::Result<serde_json::Value> {
    let ran = || {
        report
            .results
            .iter()
            .filter(|result| !report.carried.contains_key(&result.runbook_id))
    };
    let mut summary = Summary {
        total: 0,
        pass: 0,
        fail: 0,
        error: 0,
        skipped: 0,
    };
    for result in ran() {
        summary.total += 1;
        *match result.outcome.status {
            model::CheckStatus::Pass => &mut summary.pass,
            model::CheckStatus::Fail => &mut summary.fail,
            model::CheckStatus::Error => &mut summary.error,
            model::CheckStatus::Skipped => &mut summary.skipped,
        } += 1;
    }
    let mut carried = Vec::new();
    for result in &report.results {
        if let Some(observed_at) = report.carried.get(&result.runbook_id) {
            carried.push(evidence_schema::CarriedRecord {
                check: result.runbook_id.clone(),
                status: result.outcome.status.as_str().to_owned(),
                observed_at: evidence::log::format_time(*observed_at)?,
            });
        }
    }
    let results = ran()
        .map(|result| {
            let runbook = catalog.get(&result.runbook_id);
            CheckResultRecord {
                check: result.runbook_id.clone(),
                title: runbook.map(|rb| rb.title.clone()).unwrap_or_default(),
                severity: runbook
                    .map(|rb| rb.severity.as_str().to_owned())
                    .unwrap_or_default(),
                status: result.outcome.status.as_str().to_owned(),
                observed: result.outcome.observed.clone(),
                expected: result.outcome.expected.clone(),
                reason: result.outcome.reason.clone(),
                controls: runbook.map(Runbook::control_refs).unwrap_or_default(),
            }
        })
        .collect();
    let body = ScanBody {
        target: TargetRecord {
            name: report.target.name.clone(),
            platform: report.target.platform.as_str().to_owned(),
            device_type: report.target.device_type.as_str().to_owned(),
        },
        started: evidence::log::format_time(report.started)?,
        finished: evidence::log::format_time(report.finished)?,
        results,
        summary,
        carried,
    };
    Ok(serde_json::to_value(body)?)
}

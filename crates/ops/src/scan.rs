//! Scanning the configured targets: transports from configuration (credentials resolved),
//! bounded concurrency, one signed `scan` bundle per target.

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

/// Scans every configured target, at most `SCAN_CONCURRENCY` at once, in configuration order.
pub async fn scan_all(
    config: &config::Config,
    catalog: &Arc<catalog::Catalog>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Vec<Scanned>> {
    scan_with(config, catalog, data_dir, &HostPasswords::default()).await
}

/// [`scan_all`], with the per-host passwords of this cycle (discovered workstations' LAPS
/// passwords) for the targets whose password comes from the directory.
pub async fn scan_with(
    config: &config::Config,
    catalog: &Arc<catalog::Catalog>,
    data_dir: &std::path::Path,
    host_passwords: &HostPasswords,
) -> anyhow::Result<Vec<Scanned>> {
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
            let (report, diagnostics) =
                scan::scan_target(&target, transport.as_ref(), &runbooks, &scripts);
            (
                Scanned {
                    target,
                    transport,
                    report,
                },
                diagnostics,
            )
        }));
    }
    let mut scanned = Vec::new();
    for task in tasks {
        let (one, diagnostics) = task.await.context("scan task failed")?;
        for diagnostic in diagnostics {
            tracing::warn!(target_name = %diagnostic.target, error = %diagnostic.message, "Scan problem.");
        }
        scanned.push(one);
    }
    Ok(scanned)
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
            let transport = scan_ssh::SshTransport::new(ssh_target, Arc::clone(known_hosts))
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
    scan_winrm::WinRmTransport::new(winrm_target)
        .map_err(|err| crate::BadConfig(format!("{what}: {err}")).into())
}

/// The evidence body of one target's scan (schema: docs/EVIDENCE-FORMAT.md).
pub fn scan_body(
    catalog: &catalog::Catalog,
    report: &TargetReport,
) -> anyhow::Result<serde_json::Value> {
    let summary = report.summary();
    let results = report
        .results
        .iter()
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
        summary: Summary {
            total: summary.total as u64,
            pass: summary.pass as u64,
            fail: summary.fail as u64,
            error: summary.error as u64,
            skipped: summary.skipped as u64,
        },
    };
    Ok(serde_json::to_value(body)?)
}

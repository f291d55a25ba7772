//! Scanning the configured targets: transports from configuration (credentials resolved),
//! bounded concurrency, one signed `scan` bundle per target.

use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;

use evidence_schema::{CheckResultRecord, ScanBody, Summary, TargetRecord};
use model::{DeviceType, Platform, Runbook, Target};
use scan::TargetReport;

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
        let platform: Platform = target_config
            .platform
            .parse()
            .map_err(|err| crate::BadConfig(format!("target `{}`: {err}", target_config.name)))?;
        let target = Target {
            name: target_config.name.clone(),
            platform,
            device_type: if platform == Platform::WindowsWorkstation {
                DeviceType::Workstation
            } else {
                DeviceType::Server
            },
        };
        let transport: Arc<dyn transport::Transport> =
            Arc::from(transport_for(target_config, &known_hosts, &secrets)?);
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

/// How many targets are scanned at once.
const SCAN_CONCURRENCY: usize = 16;

/// The transport a target's configuration asks for, with its credentials read from their files.
fn transport_for(
    target: &config::TargetConfig,
    known_hosts: &Arc<scan_ssh::KnownHosts>,
    secrets: &crate::secrets::Secrets,
) -> anyhow::Result<Box<dyn transport::Transport>> {
    match target.transport.as_str() {
        "local" => Ok(Box::new(scan_local::LocalTransport)),
        "ssh" => {
            let missing = |field: &str| {
                crate::BadConfig(format!("target `{}`: `{field}` is missing", target.name))
            };
            let auth = secrets.ssh_auth(&format!("target `{}`", target.name), target)?;
            let ssh_target = scan_ssh::SshTarget {
                name: target.name.clone(),
                address: target.address.clone().ok_or_else(|| missing("address"))?,
                port: target.port.unwrap_or(22),
                user: target.user.clone().ok_or_else(|| missing("user"))?,
                auth,
                become_root: target.become_method.as_deref() == Some("sudo"),
                connect_timeout: std::time::Duration::from_secs(10),
            };
            let transport = scan_ssh::SshTransport::new(ssh_target, Arc::clone(known_hosts))
                .map_err(|err| crate::BadConfig(format!("target `{}`: {err}", target.name)))?;
            Ok(Box::new(transport))
        }
        "winrm" => {
            let missing = |field: &str| {
                crate::BadConfig(format!("target `{}`: `{field}` is missing", target.name))
            };
            let password = secrets.password(
                &format!("target `{}`", target.name),
                target.password_file.as_deref(),
                target.credential.as_deref(),
            )?;
            let tls = match (&target.ca_file, &target.cert_sha256) {
                (Some(ca), _) => scan_winrm::Tls::CaFile(ca.clone()),
                (None, Some(pin)) => {
                    let bytes = hex::decode(pin.replace(':', "")).map_err(|_| {
                        crate::BadConfig(format!(
                            "target `{}`: cert_sha256 is not hex",
                            target.name
                        ))
                    })?;
                    let pin: [u8; 32] = bytes.try_into().map_err(|_| {
                        crate::BadConfig(format!(
                            "target `{}`: cert_sha256 is not 32 bytes",
                            target.name
                        ))
                    })?;
                    scan_winrm::Tls::PinSha256(pin)
                }
                (None, None) => scan_winrm::Tls::SystemRoots,
            };
            let auth = match target.auth.as_deref().unwrap_or("ntlm") {
                "basic" => scan_winrm::Auth::Basic,
                _ => scan_winrm::Auth::Ntlm,
            };
            let winrm_target = scan_winrm::WinRmTarget {
                name: target.name.clone(),
                address: target.address.clone().ok_or_else(|| missing("address"))?,
                port: target.port,
                https: target.https.unwrap_or(true),
                auth,
                user: target.user.clone().ok_or_else(|| missing("user"))?,
                password,
                tls,
                connect_timeout: std::time::Duration::from_secs(10),
                operation_timeout: std::time::Duration::from_secs(60),
            };
            let transport = scan_winrm::WinRmTransport::new(winrm_target)
                .map_err(|err| crate::BadConfig(format!("target `{}`: {err}", target.name)))?;
            Ok(Box::new(transport))
        }
        other => Err(crate::BadConfig(format!(
            "target `{}`: unknown transport `{other}`",
            target.name
        ))
        .into()),
    }
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

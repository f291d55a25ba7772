//! The workstation cycle: the workstations of the last Active Directory inventory become WinRM
//! targets after name resolution (through the site's DNS, usually the DC) and an online probe;
//! every known workstation is accounted for in a signed site summary bundle, scanned or not.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use evidence_schema::{CheckCounts, NotChecked, WorkstationSummaryBody};
use model::TargetVerdict;
use scan::TargetReport;

use crate::discover::{LatestComputer, stored_computers};

/// Which workstations to scan, and why the others are not scanned.
#[derive(Debug, Default)]
pub struct Plan {
    /// Target configurations for the workstations that answered the probe.
    pub targets: Vec<config::TargetConfig>,
    /// Known workstations that will not be scanned this cycle, with the reason.
    pub not_checked: Vec<NotChecked>,
    /// Every workstation in the inventory (enabled or not).
    pub known: u64,
    /// Stale workstations (scanned or not), by account.
    pub stale: Vec<String>,
}

/// Builds the cycle's plan, or `None` when no `[workstations]` section is configured.
pub async fn plan(config: &config::Config, data_dir: &Path) -> anyhow::Result<Option<Plan>> {
    let (Some(ws), Some(dir)) = (&config.workstations, &config.directory) else {
        return Ok(None);
    };
    let Some(computers) = stored_computers(data_dir)? else {
        return Err(crate::Failed(
            "no Active Directory inventory yet: run `osiris discover --config …` first, then scan"
                .to_owned(),
        )
        .into());
    };
    let resolver = dir
        .resolver
        .as_deref()
        .or(dir.dc.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53));
    let port = if ws.https.unwrap_or(true) { 5986 } else { 5985 };
    let probe_timeout = Duration::from_millis(ws.probe_timeout_ms);
    let configured: Vec<String> = config
        .targets
        .iter()
        .map(|t| t.name.to_lowercase())
        .collect();
    let workstations: Vec<&LatestComputer> = computers
        .iter()
        .filter(|c| c.class == "workstation")
        .collect();
    let mut plan = Plan {
        known: workstations.len() as u64,
        stale: workstations
            .iter()
            .filter(|c| c.stale)
            .map(|c| c.account.clone())
            .collect(),
        ..Plan::default()
    };
    let mut probes = tokio::task::JoinSet::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for computer in workstations {
        let not_checked = |reason: &str| NotChecked {
            account: computer.account.clone(),
            dns_host_name: computer.dns_host_name.clone(),
            reason: reason.to_owned(),
            stale: computer.stale,
        };
        if computer.disabled {
            plan.not_checked
                .push(not_checked("disabled in Active Directory"));
            continue;
        }
        let Some(name) = computer.dns_host_name.as_deref().map(str::to_lowercase) else {
            plan.not_checked
                .push(not_checked("no DNS name in Active Directory"));
            continue;
        };
        // Names from the directory reach a remote shell only as validated host names.
        if !model::is_valid_host(&name) {
            plan.not_checked
                .push(not_checked("its DNS name is not a valid host name"));
            continue;
        }
        if configured.contains(&name) {
            plan.not_checked.push(not_checked(
                "also configured as a server target; scanned there",
            ));
            continue;
        }
        let Some(resolver) = resolver else {
            plan.not_checked.push(not_checked(
                "no DNS server to resolve it (set directory.resolver)",
            ));
            continue;
        };
        let computer = computer.clone();
        let limit = std::sync::Arc::clone(&limit);
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let address = discovery::dns::resolve_host(resolver, &name, probe_timeout).await;
            let outcome = match address {
                Err(err) => Err(format!("not in DNS: {err}")),
                Ok(ip) => match tokio::time::timeout(
                    probe_timeout,
                    tokio::net::TcpStream::connect((ip, port)),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(ip),
                    Ok(Err(err)) => Err(format!("offline: WinRM port {port} refused ({err})")),
                    Err(_) => Err(format!(
                        "offline: no answer on WinRM port {port} within {} ms",
                        probe_timeout.as_millis()
                    )),
                },
            };
            (computer, name, outcome)
        });
    }
    let mut online = Vec::new();
    while let Some(joined) = probes.join_next().await {
        let (computer, name, outcome) =
            joined.map_err(|err| anyhow::anyhow!("probe task failed: {err}"))?;
        match outcome {
            Ok(ip) => online.push((name, ip)),
            Err(reason) => plan.not_checked.push(NotChecked {
                account: computer.account,
                dns_host_name: computer.dns_host_name,
                reason,
                stale: computer.stale,
            }),
        }
    }
    online.sort();
    plan.not_checked.sort_by(|a, b| a.account.cmp(&b.account));
    plan.targets = online
        .into_iter()
        .map(|(name, ip)| config::TargetConfig {
            name,
            platform: "windows-workstation".to_owned(),
            transport: "winrm".to_owned(),
            address: Some(ip.to_string()),
            port: None,
            user: Some(ws.user.clone()),
            key_file: None,
            password_file: ws.password_file.clone(),
            credential: ws.credential.clone(),
            become_method: None,
            auth: ws.auth.clone(),
            https: ws.https,
            ca_file: ws.ca_file.clone(),
            cert_sha256: None,
        })
        .collect();
    Ok(Some(plan))
}

/// The site summary of one workstation cycle.
pub fn summary(plan: &Plan, reports: &[&TargetReport]) -> WorkstationSummaryBody {
    let mut checks: BTreeMap<String, CheckCounts> = BTreeMap::new();
    let (mut compliant, mut drifted, mut failed) = (0u64, 0u64, 0u64);
    for report in reports {
        match report.verdict() {
            TargetVerdict::ScanFailed => failed += 1,
            TargetVerdict::Drifted => drifted += 1,
            TargetVerdict::Compliant => compliant += 1,
        }
        for result in &report.results {
            let counts = checks.entry(result.runbook_id.clone()).or_default();
            match result.outcome.status {
                model::CheckStatus::Pass => counts.pass += 1,
                model::CheckStatus::Fail => counts.fail += 1,
                model::CheckStatus::Error => counts.error += 1,
                model::CheckStatus::Skipped => counts.skipped += 1,
            }
        }
    }
    for counts in checks.values_mut() {
        let judged = counts.pass + counts.fail;
        counts.compliance_permille = (counts.pass * 1000).checked_div(judged);
    }
    let checked = compliant + drifted;
    WorkstationSummaryBody {
        known: plan.known,
        checked,
        compliant,
        drifted,
        scan_failed: failed,
        not_checked: plan.not_checked.clone(),
        stale: plan.stale.clone(),
        coverage_permille: (checked * 1000).checked_div(plan.known).unwrap_or(0),
        checks,
    }
}

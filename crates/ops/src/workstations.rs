//! The workstation cycle: the workstations of the last Active Directory inventory that lie in the
//! administrator's scope (`[workstations] scope`/`group`) and were not created by a
//! non-administrator (`mS-DS-CreatorSID`) become WinRM targets after name resolution (through the
//! site's DNS, usually the DC) and an online probe; they are reached over HTTPS only, the
//! certificate verified for their DNS name, with the `[workstations]` account or, with
//! `laps = "prefer" | "require"`, each with its own LAPS-managed local account (password read
//! from the directory each cycle, NTLM inside that HTTPS). Every known workstation is accounted
//! for in a signed site summary bundle, scanned or not.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use evidence_schema::{CheckCounts, NotChecked, WorkstationSummaryBody};
use model::TargetVerdict;
use scan::TargetReport;

use discovery::laps::LapsState;

use crate::discover::{LatestComputer, stored_computers};
use crate::secrets::HostPasswords;

/// Which workstations to scan, and why the others are not scanned.
#[derive(Debug, Default)]
pub struct Plan {
    /// WinRM targets for the workstations that answered the probe, by name.
    pub targets: Vec<config::TargetConfig>,
    /// This cycle's LAPS passwords of the targets that log in with their own local account.
    pub passwords: HostPasswords,
    /// Known workstations that will not be scanned this cycle, with the reason, by account.
    pub not_checked: Vec<NotChecked>,
    /// Every workstation in the inventory (enabled or not).
    pub known: u64,
    /// Stale workstations (scanned or not), by account.
    pub stale: Vec<String>,
}

/// The pure first half of a plan: the workstations worth probing, and the others with the
/// reason they are not.
#[derive(Debug, Default)]
pub struct Triage {
    /// Workstations to resolve and probe, with their validated, lower-case DNS names.
    pub to_probe: Vec<(LatestComputer, String)>,
    /// Workstations accounted for without a probe.
    pub not_checked: Vec<NotChecked>,
    pub known: u64,
    pub stale: Vec<String>,
}

/// What the probe found for one workstation: its address, or why it will not be scanned.
pub type ProbeOutcome = Result<IpAddr, String>;

/// The LAPS state of the online workstations by account (`sAMAccountName`), or why the
/// directory could not be read; empty when `laps = "off"`.
pub type LapsRead = Result<BTreeMap<String, LapsState>, String>;

/// Builds the cycle's plan, or `None` when no `[workstations]` section is configured: the
/// inventory is triaged, the candidates are resolved through the site's DNS and probed on the
/// WinRM port, and the plan is assembled from the answers.
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
    // The DC's own address answers DNS when no resolver is named.
    let resolver = dir
        .resolver
        .or_else(|| dir.dc.as_deref().and_then(|dc| dc.parse::<IpAddr>().ok()))
        .map(|ip| SocketAddr::new(ip, 53));
    let configured: Vec<String> = config
        .targets
        .iter()
        .map(|t| t.name.to_lowercase())
        .collect();
    let triage = triage(&computers, &configured, &ws.scope, resolver.is_some());
    let outcomes = match resolver {
        Some(resolver) => {
            let port = HTTPS_PORT;
            let timeout = Duration::from_millis(ws.probe_timeout_ms);
            probe(&triage.to_probe, resolver, port, timeout).await?
        }
        None => Vec::new(),
    };
    let laps = match ws.laps {
        config::Laps::Off => Ok(BTreeMap::new()),
        config::Laps::Prefer | config::Laps::Require => {
            read_laps(config, data_dir, &outcomes).await
        }
    };
    Ok(Some(assemble(triage, outcomes, laps, ws)))
}

/// Reads the LAPS attributes of the workstations that answered the probe, and only theirs.
async fn read_laps(
    config: &config::Config,
    data_dir: &Path,
    outcomes: &[(LatestComputer, String, ProbeOutcome)],
) -> LapsRead {
    let online: Vec<&LatestComputer> = outcomes
        .iter()
        .filter(|(_, _, outcome)| outcome.is_ok())
        .map(|(computer, _, _)| computer)
        .collect();
    if online.is_empty() {
        return Ok(BTreeMap::new());
    }
    let secrets = crate::secrets::Secrets::new(config, data_dir);
    let directory =
        crate::discover::directory_config(config, &secrets).map_err(|err| format!("{err:#}"))?;
    let dns: Vec<String> = online.iter().map(|c| c.dn.clone()).collect();
    let started = std::time::Instant::now();
    let states = discovery::read_laps(&directory, &dns)
        .await
        .map_err(|err| err.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let mut found = BTreeMap::new();
    for (computer, state) in online.into_iter().zip(states) {
        if let LapsState::Password(password) = &state
            && password.expires.is_some_and(|expires| expires < now)
        {
            tracing::warn!(account = %computer.account, "LAPS password is past its expiration time; the host has not rotated it yet.");
        }
        found.insert(computer.account.clone(), state);
    }
    tracing::debug!(
        n_computers = found.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "LAPS attributes read."
    );
    Ok(found)
}

/// A workstation's newest results from its endpoint agent (the appliance's gateway), counted in
/// the workstation summary like a WinRM scan: `(check, status)` per check it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReport {
    /// The workstation's DNS name, as the plan names it.
    pub name: String,
    pub results: Vec<(String, model::CheckStatus)>,
}

/// When the workstation logins use Kerberos: writes this program's krb5 configuration into
/// `<data_dir>/kerberos` and makes sure the process runs with it, re-executing the program once if
/// its environment does not point there yet (see `scan_winrm::kerberos`). Call it at start, before
/// anything is printed.
pub fn prepare_kerberos(config: &config::Config, data_dir: &Path) -> anyhow::Result<()> {
    let Some(realm) = config.workstation_kerberos() else {
        return Ok(());
    };
    let dir = std::path::absolute(data_dir.join("kerberos"))
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    scan_winrm::kerberos::prepare_process(
        &dir,
        &scan_winrm::kerberos::Realm {
            realm: realm.realm,
            kdc: realm.kdc,
        },
    )
    .map_err(|err| crate::BadConfig(format!("workstations: {err}")).into())
}

/// The WinRM HTTPS port: discovered workstations are never reached over HTTP.
const HTTPS_PORT: u16 = 5986;

/// Sorts the inventory's workstations into those to probe and those not checked (disabled,
/// created by a non-administrator, outside the scope, no or an invalid DNS name, configured as a
/// server target, no DNS server to resolve them).
/// `configured` holds the configured targets' names in lower case.
pub fn triage(
    computers: &[LatestComputer],
    configured: &[String],
    scope: &config::WorkstationScope,
    has_resolver: bool,
) -> Triage {
    let workstations: Vec<&LatestComputer> = computers
        .iter()
        .filter(|c| c.class == "workstation")
        .collect();
    let mut triage = Triage {
        known: workstations.len() as u64,
        stale: workstations
            .iter()
            .filter(|c| c.stale)
            .map(|c| c.account.clone())
            .collect(),
        ..Triage::default()
    };
    for computer in workstations {
        let name = computer.dns_host_name.as_deref().map(str::to_lowercase);
        // The login goes only to objects an administrator made and placed: these come first.
        let approved = scope
            .approved
            .iter()
            .any(|account| account.eq_ignore_ascii_case(&computer.account));
        let refused = match &computer.creator_sid {
            Some(sid) if !approved => Some(format!(
                "created by a non-administrator (ms-DS-CreatorSID {sid}); an administrator must re-create or approve it (workstations.approved = [\"{}\"])",
                computer.account
            )),
            _ => out_of_scope(computer, scope),
        };
        if let Some(reason) = refused {
            triage.not_checked.push(not_checked_for(computer, reason));
            continue;
        }
        let reason = match &name {
            _ if computer.disabled => Some("disabled in Active Directory"),
            None => Some("no DNS name in Active Directory"),
            // Names from the directory reach a remote shell only as validated host names.
            Some(name) if !model::is_valid_host(name) => {
                Some("its DNS name is not a valid host name")
            }
            Some(name) if configured.contains(name) => {
                Some("also configured as a server target; scanned there")
            }
            Some(_) if !has_resolver => {
                Some("no DNS server to resolve it (set directory.resolver)")
            }
            Some(_) => None,
        };
        match (reason, name) {
            (None, Some(name)) => triage.to_probe.push((computer.clone(), name)),
            (reason, _) => triage
                .not_checked
                .push(not_checked(computer, reason.unwrap_or_default())),
        }
    }
    triage
}

/// The plan from the triage and the probe outcomes: one WinRM target per workstation that
/// answered (with the `[workstations]` settings), the others not checked with the probe's reason.
/// With `laps` on, a workstation whose LAPS password the directory gave is reached with its own
/// local account (`laps`: the states read for the online ones).
pub fn assemble(
    triage: Triage,
    outcomes: Vec<(LatestComputer, String, ProbeOutcome)>,
    mut laps: LapsRead,
    ws: &config::WorkstationsConfig,
) -> Plan {
    let mut not_checked = triage.not_checked;
    let mut passwords = HostPasswords::default();
    let mut targets = Vec::new();
    for (computer, name, outcome) in outcomes {
        let ip = match outcome {
            Ok(ip) => ip,
            Err(reason) => {
                not_checked.push(not_checked_for(&computer, reason));
                continue;
            }
        };
        match login_for(&computer, &mut laps, ws) {
            Ok(Login::Domain(account)) => targets.push(workstation_target(
                name,
                ip,
                account.user.clone(),
                account.password.clone(),
                ws.auth,
                ws,
            )),
            Ok(Login::Laps { user, password }) => {
                passwords.insert(name.clone(), password);
                // Local accounts have no Kerberos: NTLM inside the same verified HTTPS.
                targets.push(workstation_target(
                    name,
                    ip,
                    user,
                    config::PasswordSource::Directory,
                    config::WinRmAuth::Ntlm,
                    ws,
                ));
            }
            Err(reason) => not_checked.push(not_checked_for(&computer, reason)),
        }
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    not_checked.sort_by(|a, b| a.account.cmp(&b.account));
    Plan {
        targets,
        passwords,
        not_checked,
        known: triage.known,
        stale: triage.stale,
    }
}

/// The WinRM target of one online workstation: HTTPS to the address its name resolved to, the
/// certificate verified for that name, as `user`.
pub fn workstation_target(
    name: String,
    ip: IpAddr,
    user: String,
    password: config::PasswordSource,
    auth: config::WinRmAuth,
    ws: &config::WorkstationsConfig,
) -> config::TargetConfig {
    config::TargetConfig {
        platform: model::Platform::WindowsWorkstation,
        transport: config::TransportConfig::WinRm(config::WinRmConfig {
            address: ip.to_string(),
            port: Some(HTTPS_PORT),
            user,
            password,
            security: config::WinRmSecurity::Https {
                auth,
                trust: ws.trust.clone(),
            },
            verify_name: Some(name.clone()),
        }),
        name,
    }
}

/// How one online workstation logs in.
enum Login<'a> {
    /// The `[workstations]` account.
    Domain(&'a config::WorkstationAccount),
    /// Its own LAPS-managed local account, `COMPUTER\\account`.
    Laps {
        user: String,
        password: zeroize::Zeroizing<String>,
    },
}

/// What a host whose LAPS password is stored only encrypted is told to do.
pub const ENCRYPTED_ONLY: &str = "its LAPS password is stored only encrypted (msLAPS-EncryptedPassword, DPAPI-NG), which the appliance cannot decrypt; let Windows LAPS store it unencrypted for this computer's OU (ADPasswordEncryptionEnabled = 0) and give the appliance's directory account read access to msLAPS-Password, or set workstations.laps = \"off\" to use the domain account";

/// The login of one online workstation under `ws.laps`, or why it gets none.
fn login_for<'a>(
    computer: &LatestComputer,
    laps: &mut LapsRead,
    ws: &'a config::WorkstationsConfig,
) -> Result<Login<'a>, String> {
    // The configuration gives an account unless laps = "require", which never uses it.
    let domain = || {
        ws.account
            .as_ref()
            .map(Login::Domain)
            .ok_or_else(|| "no [workstations] account is configured".to_owned())
    };
    if ws.laps == config::Laps::Off {
        return domain();
    }
    let states = laps
        .as_mut()
        .map_err(|err| format!("its LAPS password could not be read from the directory: {err}"))?;
    match states.remove(&computer.account) {
        Some(LapsState::Password(found)) => {
            let account = found.account.as_deref().unwrap_or(&ws.laps_account);
            if !config::is_valid_local_account(account) {
                return Err(format!(
                    "its LAPS password names the account `{}`, which is not a local account name",
                    account.escape_debug()
                ));
            }
            let computer_name = computer.account.trim_end_matches('$');
            let user = format!("{computer_name}\\{account}");
            // The name reaches the transport's account check; a bad one must not stop the run.
            if !config::is_valid_windows_user(&user) {
                return Err(format!(
                    "its computer account `{}` cannot name a local account",
                    computer.account.escape_debug()
                ));
            }
            Ok(Login::Laps {
                user,
                password: found.password,
            })
        }
        Some(LapsState::EncryptedOnly) => Err(ENCRYPTED_ONLY.to_owned()),
        Some(LapsState::Invalid(reason)) => {
            Err(format!("its LAPS password cannot be used: {reason}"))
        }
        Some(LapsState::Absent) | None => match ws.laps {
            config::Laps::Require => Err("no LAPS password readable in the directory (workstations.laps = \"require\"): manage it with LAPS and give the appliance's directory account read access to msLAPS-Password (or ms-Mcs-AdmPwd) on its OU, or set laps = \"prefer\" to use the domain account for such hosts".to_owned()),
            _ => domain(),
        },
    }
}

/// Why a computer is outside the administrator's scope, or `None` when it is inside.
fn out_of_scope(computer: &LatestComputer, scope: &config::WorkstationScope) -> Option<String> {
    if computer.dn.is_empty() {
        return Some(
            "the stored inventory predates workstation scopes; run `osiris discover` again"
                .to_owned(),
        );
    }
    if let Some(ou) = &scope.ou {
        let dn = normalize_dn(&computer.dn);
        let ou_norm = normalize_dn(ou);
        let inside = dn
            .strip_suffix(&ou_norm)
            .is_some_and(|head| head.ends_with(',') && !head.ends_with("\\,"));
        if !inside {
            return Some(format!(
                "outside the scanned OU (workstations.scope = {ou})"
            ));
        }
    }
    if let Some(group) = &scope.group {
        let group_norm = normalize_dn(group);
        // Members of groups inside the scope group count (`groups`); an inventory kept before
        // those were followed has only the direct ones.
        if !computer
            .groups
            .iter()
            .chain(&computer.member_of)
            .any(|dn| normalize_dn(dn) == group_norm)
        {
            return Some(format!(
                "not a member of the scanned group (workstations.group = {group})"
            ));
        }
    }
    None
}

/// A distinguished name for comparison: lower case, no spaces around `,` and `=`.
fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    for part in dn.trim().split(',') {
        if !out.is_empty() {
            out.push(',');
        }
        let part = match part.split_once('=') {
            Some((attribute, value)) => format!("{}={}", attribute.trim(), value.trim()),
            None => part.trim().to_owned(),
        };
        out.push_str(&part.to_lowercase());
    }
    out
}

/// Resolves each candidate through `resolver` and connects to its WinRM `port`, 64 at a time.
async fn probe(
    candidates: &[(LatestComputer, String)],
    resolver: SocketAddr,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<Vec<(LatestComputer, String, ProbeOutcome)>> {
    let mut probes = tokio::task::JoinSet::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for (computer, name) in candidates.iter().cloned() {
        let limit = std::sync::Arc::clone(&limit);
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = probe_one(resolver, &name, port, timeout).await;
            (computer, name, outcome)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = probes.join_next().await {
        outcomes.push(joined.map_err(|err| anyhow::anyhow!("probe task failed: {err}"))?);
    }
    Ok(outcomes)
}

async fn probe_one(resolver: SocketAddr, name: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let ip = discovery::dns::resolve_host(resolver, name, timeout)
        .await
        .map_err(|err| format!("not in DNS: {err}"))?;
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Ok(ip),
        Ok(Err(err)) => Err(format!("offline: WinRM port {port} refused ({err})")),
        Err(_) => Err(format!(
            "offline: no answer on WinRM port {port} within {} ms",
            timeout.as_millis()
        )),
    }
}

fn not_checked(computer: &LatestComputer, reason: &str) -> NotChecked {
    not_checked_for(computer, reason.to_owned())
}

fn not_checked_for(computer: &LatestComputer, reason: String) -> NotChecked {
    NotChecked {
        account: computer.account.clone(),
        dns_host_name: computer.dns_host_name.clone(),
        reason,
        stale: computer.stale,
    }
}

/// The site summary of one workstation cycle.
pub fn summary(
    plan: &Plan,
    reports: &[&TargetReport],
    agents: &[AgentReport],
) -> WorkstationSummaryBody {
    let mut checks: BTreeMap<String, CheckCounts> = BTreeMap::new();
    let (mut compliant, mut drifted, mut failed) = (0u64, 0u64, 0u64);
    let mut count = |check: &str, status: model::CheckStatus| {
        let counts = checks.entry(check.to_owned()).or_default();
        match status {
            model::CheckStatus::Pass => counts.pass += 1,
            model::CheckStatus::Fail => counts.fail += 1,
            model::CheckStatus::Error => counts.error += 1,
            model::CheckStatus::Skipped => counts.skipped += 1,
        }
    };
    let mut verdict = |verdict: TargetVerdict| match verdict {
        TargetVerdict::ScanFailed => failed += 1,
        TargetVerdict::Drifted => drifted += 1,
        TargetVerdict::Compliant => compliant += 1,
    };
    for report in reports {
        verdict(report.verdict());
        for result in &report.results {
            count(&result.runbook_id, result.outcome.status);
        }
    }
    let mut checked_by_agent = 0;
    for agent in agents {
        let statuses = || agent.results.iter().map(|(_, status)| *status);
        let agent_verdict = if statuses().any(|s| s == model::CheckStatus::Fail) {
            TargetVerdict::Drifted
        } else if statuses().any(|s| s == model::CheckStatus::Pass) {
            TargetVerdict::Compliant
        } else {
            TargetVerdict::ScanFailed
        };
        if agent_verdict != TargetVerdict::ScanFailed {
            checked_by_agent += 1;
        }
        verdict(agent_verdict);
        for (check, status) in &agent.results {
            count(check, *status);
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
        checked_by_agent,
        not_checked: plan.not_checked.clone(),
        stale: plan.stale.clone(),
        coverage_permille: (checked * 1000).checked_div(plan.known).unwrap_or(0),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// `inventory`: one computer per line, `ACCOUNT DNS-NAME|- [class=…] [ou=…] [group=…]
    /// [nested=GROUP-THE-GROUP-IS-IN] [creator=SID] [disabled] [stale]` (the OU defaults to `Workstations`);
    /// `scope`: `ou=NAME`, `group=NAME` or both (space-separated), under `DC=clinic,DC=local`,
    /// plus any number of `approved=ACCOUNT`;
    /// `answers`: one probe answer per line, `dns-name IP` or `dns-name !reason`.
    #[track_caller]
    fn check(
        inventory: &str,
        configured: &[&str],
        scope: &str,
        has_resolver: bool,
        answers: &str,
        expect: Expect,
    ) {
        check_laps(
            inventory,
            configured,
            scope,
            has_resolver,
            answers,
            (config::Laps::Off, Ok("")),
            expect,
        );
    }

    /// [`check`] with `laps`: the mode and what the directory holds, one line per account,
    /// `ACCOUNT windows:NAME | legacy | encrypted | absent | invalid:REASON` (or the read's error).
    #[track_caller]
    fn check_laps(
        inventory: &str,
        configured: &[&str],
        scope: &str,
        has_resolver: bool,
        answers: &str,
        laps: (config::Laps, Result<&str, &str>),
        expect: Expect,
    ) {
        let word = |words: &[&str], key: &str| -> Option<String> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_owned)
        };
        let scope_words: Vec<&str> = scope.split_whitespace().collect();
        let scope = config::WorkstationScope {
            ou: word(&scope_words, "ou=").map(|ou| format!("OU={ou}, DC=Clinic,DC=local")),
            group: word(&scope_words, "group=").map(|g| format!("CN={g},DC=clinic,DC=local")),
            approved: scope_words
                .iter()
                .filter_map(|w| w.strip_prefix("approved="))
                .map(str::to_owned)
                .collect(),
        };
        let computers: Vec<LatestComputer> = inventory
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let class = words
                    .iter()
                    .find_map(|w| w.strip_prefix("class="))
                    .unwrap_or("workstation");
                serde_json::from_value(serde_json::json!({
                    "account": words[0],
                    "class": class,
                    "operating_system": null,
                    "operating_system_version": null,
                    "dns_host_name": (words[1] != "-").then_some(words[1]),
                    "disabled": words.contains(&"disabled"),
                    "stale": words.contains(&"stale"),
                    "dn": format!(
                        "CN={},OU={},DC=clinic,DC=local",
                        words[0].trim_end_matches('$'),
                        word(&words, "ou=").unwrap_or_else(|| "Workstations".to_owned())
                    ),
                    "member_of": word(&words, "group=")
                        .map(|g| vec![format!("CN={g},DC=clinic,DC=local")])
                        .unwrap_or_default(),
                    "groups": word(&words, "group=")
                        .into_iter()
                        .chain(word(&words, "nested="))
                        .map(|g| format!("CN={g},DC=clinic,DC=local"))
                        .collect::<Vec<_>>(),
                    "creator_sid": word(&words, "creator="),
                }))
                .expect("fixture computer")
            })
            .collect();
        let configured: Vec<String> = configured.iter().map(|c| (*c).to_owned()).collect();
        let triage = triage(&computers, &configured, &scope, has_resolver);
        let outcomes = triage
            .to_probe
            .iter()
            .map(|(computer, name)| {
                let answer = answers
                    .lines()
                    .find_map(|line| line.trim().strip_prefix(name.as_str()))
                    .map(str::trim)
                    .unwrap_or("!not probed");
                let outcome = match answer.strip_prefix('!') {
                    Some(reason) => Err(reason.to_owned()),
                    None => answer.parse::<IpAddr>().map_err(|err| err.to_string()),
                };
                (computer.clone(), name.clone(), outcome)
            })
            .collect();
        let ws = config::WorkstationsConfig {
            account: Some(config::WorkstationAccount {
                user: "CLINIC\\osiris-scan".to_owned(),
                password: config::PasswordSource::Credential("ws".to_owned()),
            }),
            auth: config::WinRmAuth::Ntlm,
            trust: config::WinRmTrust::CaFile("/ws-ca.pem".into()),
            scope,
            probe_timeout_ms: 1500,
            laps: laps.0,
            laps_account: "Administrator".to_owned(),
        };
        let read: LapsRead = laps
            .1
            .map(|lines| {
                lines
                    .lines()
                    .filter_map(|line| line.split_once(' '))
                    .map(|(account, state)| {
                        let password = |account: Option<&str>, kind| {
                            LapsState::Password(discovery::laps::LapsPassword {
                                kind,
                                account: account.map(str::to_owned),
                                password: zeroize::Zeroizing::new(format!("pw-of-{account:?}")),
                                expires: None,
                            })
                        };
                        let state = match state.split_once(':') {
                            Some(("windows", name)) => {
                                password(Some(name), discovery::laps::LapsKind::Windows)
                            }
                            Some(("invalid", reason)) => LapsState::Invalid(reason.to_owned()),
                            _ if state == "legacy" => {
                                password(None, discovery::laps::LapsKind::Legacy)
                            }
                            _ if state == "encrypted" => LapsState::EncryptedOnly,
                            _ => LapsState::Absent,
                        };
                        (account.to_owned(), state)
                    })
                    .collect()
            })
            .map_err(str::to_owned);
        let plan = assemble(triage, outcomes, read, &ws);
        let mut actual = format!("known {}, stale {:?}\n", plan.known, plan.stale);
        for target in &plan.targets {
            let config::TransportConfig::WinRm(winrm) = &target.transport else {
                panic!("a workstation target is WinRM");
            };
            actual += &format!(
                "scan {} at {}:{:?} verifying {:?} ({:?}, {:?})\n",
                target.name,
                winrm.address,
                winrm.port,
                winrm.verify_name,
                target.platform,
                winrm.security,
            );
            if ws.laps != config::Laps::Off {
                actual += &format!(
                    "  as {} ({:?}{})\n",
                    winrm.user,
                    winrm.password,
                    if plan.passwords.get(&target.name).is_some() {
                        ", password read"
                    } else {
                        ""
                    }
                );
            }
        }
        for skipped in &plan.not_checked {
            actual += &format!("not checked {}: {}\n", skipped.account, skipped.reason);
        }
        expect.assert_eq(&actual);
    }

    #[test]
    fn every_known_workstation_is_scanned_or_has_a_reason() {
        check(
            r"
WS1$ WS1.clinic.local
WS2$ ws2.clinic.local stale
WS3$ ws3.clinic.local
OLD$ old.clinic.local disabled stale
NONAME$ -
BAD$ bad;reboot.clinic.local
SRV$ srv.clinic.local class=server
FRONT$ front.clinic.local
",
            &["front.clinic.local"],
            "ou=Workstations",
            true,
            "
ws1.clinic.local 10.0.0.21
ws2.clinic.local !offline: WinRM port 5985 refused
ws3.clinic.local !not in DNS: no such name
",
            expect![[r#"
                known 7, stale ["WS2$", "OLD$"]
                scan ws1.clinic.local at 10.0.0.21:Some(5986) verifying Some("ws1.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                not checked BAD$: its DNS name is not a valid host name
                not checked FRONT$: also configured as a server target; scanned there
                not checked NONAME$: no DNS name in Active Directory
                not checked OLD$: disabled in Active Directory
                not checked WS2$: offline: WinRM port 5985 refused
                not checked WS3$: not in DNS: no such name
            "#]],
        );
    }

    #[test]
    fn laps_hosts_log_in_with_their_own_local_account_by_ntlm_inside_https() {
        let inventory = r"
WS1$ ws1.clinic.local
WS2$ ws2.clinic.local
WS3$ ws3.clinic.local
WS4$ ws4.clinic.local
WS5$ ws5.clinic.local
W@6$ ws6.clinic.local
";
        let answers = "ws1.clinic.local 10.0.0.1\nws2.clinic.local 10.0.0.2\nws3.clinic.local 10.0.0.3\nws4.clinic.local 10.0.0.4\nws5.clinic.local 10.0.0.5\nws6.clinic.local 10.0.0.6\n";
        let directory = "WS1$ windows:LapsAdmin\nWS2$ legacy\nWS3$ absent\nWS4$ encrypted\nWS5$ windows:bad\\name\nW@6$ legacy\n";
        // `prefer`: the host without a LAPS password gets the domain account; `require`: it is not
        // scanned, with what to do.
        for (mode, expect) in [
            (
                config::Laps::Prefer,
                expect![[r#"
                    known 6, stale []
                    scan ws1.clinic.local at 10.0.0.1:Some(5986) verifying Some("ws1.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                      as WS1\LapsAdmin (Directory, password read)
                    scan ws2.clinic.local at 10.0.0.2:Some(5986) verifying Some("ws2.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                      as WS2\Administrator (Directory, password read)
                    scan ws3.clinic.local at 10.0.0.3:Some(5986) verifying Some("ws3.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                      as CLINIC\osiris-scan (Credential("ws"))
                    not checked W@6$: its computer account `W@6$` cannot name a local account
                    not checked WS4$: its LAPS password is stored only encrypted (msLAPS-EncryptedPassword, DPAPI-NG), which the appliance cannot decrypt; let Windows LAPS store it unencrypted for this computer's OU (ADPasswordEncryptionEnabled = 0) and give the appliance's directory account read access to msLAPS-Password, or set workstations.laps = "off" to use the domain account
                    not checked WS5$: its LAPS password names the account `bad\\name`, which is not a local account name
                "#]],
            ),
            (
                config::Laps::Require,
                expect![[r#"
                    known 6, stale []
                    scan ws1.clinic.local at 10.0.0.1:Some(5986) verifying Some("ws1.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                      as WS1\LapsAdmin (Directory, password read)
                    scan ws2.clinic.local at 10.0.0.2:Some(5986) verifying Some("ws2.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                      as WS2\Administrator (Directory, password read)
                    not checked W@6$: its computer account `W@6$` cannot name a local account
                    not checked WS3$: no LAPS password readable in the directory (workstations.laps = "require"): manage it with LAPS and give the appliance's directory account read access to msLAPS-Password (or ms-Mcs-AdmPwd) on its OU, or set laps = "prefer" to use the domain account for such hosts
                    not checked WS4$: its LAPS password is stored only encrypted (msLAPS-EncryptedPassword, DPAPI-NG), which the appliance cannot decrypt; let Windows LAPS store it unencrypted for this computer's OU (ADPasswordEncryptionEnabled = 0) and give the appliance's directory account read access to msLAPS-Password, or set workstations.laps = "off" to use the domain account
                    not checked WS5$: its LAPS password names the account `bad\\name`, which is not a local account name
                "#]],
            ),
        ] {
            check_laps(
                inventory,
                &[],
                "ou=Workstations",
                true,
                answers,
                (mode, Ok(directory)),
                expect,
            );
        }
        // A directory that cannot be read gives no host the domain account in its place.
        check_laps(
            "WS1$ ws1.clinic.local\n",
            &[],
            "ou=Workstations",
            true,
            "ws1.clinic.local 10.0.0.1\n",
            (
                config::Laps::Prefer,
                Err("the DC at 10.0.0.9:636 is unreachable"),
            ),
            expect![[r#"
                known 1, stale []
                not checked WS1$: its LAPS password could not be read from the directory: the DC at 10.0.0.9:636 is unreachable
            "#]],
        );
    }

    #[test]
    fn without_a_dns_server_nothing_is_probed() {
        check(
            "WS1$ ws1.clinic.local\nWS2$ ws2.clinic.local\n",
            &[],
            "ou=Workstations",
            false,
            "",
            expect![[r#"
                known 2, stale []
                not checked WS1$: no DNS server to resolve it (set directory.resolver)
                not checked WS2$: no DNS server to resolve it (set directory.resolver)
            "#]],
        );
    }

    #[test]
    fn members_of_groups_inside_the_scope_group_are_in_scope() {
        // FRONT$ is in "FrontDesk", which is inside "Scanned"; OTHER$'s group is inside another.
        check(
            r"
FRONT$ front.clinic.local group=FrontDesk nested=Scanned
OTHER$ other.clinic.local group=Lab nested=Research
",
            &[],
            "ou=Workstations group=Scanned",
            true,
            "
front.clinic.local 10.0.0.21
other.clinic.local 10.0.0.22
",
            expect![[r#"
                known 2, stale []
                scan front.clinic.local at 10.0.0.21:Some(5986) verifying Some("front.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                not checked OTHER$: not a member of the scanned group (workstations.group = CN=Scanned,DC=clinic,DC=local)
            "#]],
        );
    }

    #[test]
    fn only_objects_an_administrator_made_and_placed_receive_the_login() {
        // ROGUE$ was joined by a plain domain user (MachineAccountQuota sets ms-DS-CreatorSID);
        // SPOOF$ sits in the default Computers container; both answer, neither is probed.
        check(
            r"
WS1$ ws1.clinic.local group=Scanned
ROGUE$ rogue.clinic.local group=Scanned creator=S-1-5-21-1-2-3-1105
SPOOF$ spoof.clinic.local ou=Computers group=Scanned
NEST$ nest.clinic.local ou=Kiosks,OU=Workstations
LOOSE$ loose.clinic.local
",
            &[],
            "ou=Workstations group=Scanned",
            true,
            "
ws1.clinic.local 10.0.0.21
rogue.clinic.local 10.0.0.66
spoof.clinic.local 10.0.0.67
nest.clinic.local 10.0.0.68
loose.clinic.local 10.0.0.69
",
            expect![[r#"
                known 5, stale []
                scan ws1.clinic.local at 10.0.0.21:Some(5986) verifying Some("ws1.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                not checked LOOSE$: not a member of the scanned group (workstations.group = CN=Scanned,DC=clinic,DC=local)
                not checked NEST$: not a member of the scanned group (workstations.group = CN=Scanned,DC=clinic,DC=local)
                not checked ROGUE$: created by a non-administrator (ms-DS-CreatorSID S-1-5-21-1-2-3-1105); an administrator must re-create or approve it (workstations.approved = ["ROGUE$"])
                not checked SPOOF$: outside the scanned OU (workstations.scope = OU=Workstations, DC=Clinic,DC=local)
            "#]],
        );
        // Sub-OUs are inside the scope; an OU whose name merely ends the same is not.
        check(
            r"
NEST$ nest.clinic.local ou=Kiosks,OU=Workstations
LOOK$ look.clinic.local ou=NotWorkstations
",
            &[],
            "ou=Workstations",
            true,
            "nest.clinic.local 10.0.0.68\nlook.clinic.local 10.0.0.70\n",
            expect![[r#"
                known 2, stale []
                scan nest.clinic.local at 10.0.0.68:Some(5986) verifying Some("nest.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                not checked LOOK$: outside the scanned OU (workstations.scope = OU=Workstations, DC=Clinic,DC=local)
            "#]],
        );
    }

    #[test]
    fn an_administrator_can_approve_a_computer_a_user_created() {
        check(
            r"
KIOSK7$ kiosk7.clinic.local creator=S-1-5-21-1-2-3-1105
ROGUE$ rogue.clinic.local creator=S-1-5-21-1-2-3-1105
FAR$ far.clinic.local ou=Computers creator=S-1-5-21-1-2-3-1105
",
            &[],
            "ou=Workstations approved=KIOSK7$ approved=FAR$",
            true,
            "kiosk7.clinic.local 10.0.0.7\nrogue.clinic.local 10.0.0.66\nfar.clinic.local 10.0.0.8\n",
            expect![[r#"
                known 3, stale []
                scan kiosk7.clinic.local at 10.0.0.7:Some(5986) verifying Some("kiosk7.clinic.local") (WindowsWorkstation, Https { auth: Ntlm, trust: CaFile("/ws-ca.pem") })
                not checked FAR$: outside the scanned OU (workstations.scope = OU=Workstations, DC=Clinic,DC=local)
                not checked ROGUE$: created by a non-administrator (ms-DS-CreatorSID S-1-5-21-1-2-3-1105); an administrator must re-create or approve it (workstations.approved = ["ROGUE$"])
            "#]],
        );
    }

    #[test]
    fn an_inventory_from_before_scopes_scans_nothing_until_rediscovered() {
        let old: Vec<LatestComputer> = serde_json::from_str(
            r#"[{"account": "WS1$", "class": "workstation", "operating_system": null,
                 "operating_system_version": null, "dns_host_name": "ws1.clinic.local"}]"#,
        )
        .expect("old inventory");
        let scope = config::WorkstationScope {
            ou: Some("OU=Workstations,DC=clinic,DC=local".to_owned()),
            group: None,
            approved: Vec::new(),
        };
        let triage = triage(&old, &[], &scope, true);
        assert!(triage.to_probe.is_empty());
        assert_eq!(
            triage.not_checked[0].reason,
            "the stored inventory predates workstation scopes; run `osiris discover` again"
        );
    }

    /// The workstation summary counts each workstation once, by WinRM or by its agent: a laptop
    /// that did not answer WinRM but whose agent reports is checked; an agent that has reported
    /// nothing yet is reached but not checked.
    #[test]
    fn workstations_checked_by_their_agent_count_in_the_summary() {
        use model::CheckStatus::{Error, Fail, Pass, Skipped};
        let winrm = TargetReport {
            target: model::Target {
                name: "ws1.clinic.local".into(),
                platform: model::Platform::WindowsWorkstation,
                device_type: model::DeviceType::Workstation,
            },
            started: time::OffsetDateTime::UNIX_EPOCH,
            finished: time::OffsetDateTime::UNIX_EPOCH,
            carried: Default::default(),
            target_cpu: Default::default(),
            results: [("WIN-FW-001", Pass), ("WIN-AV-001", Pass)]
                .iter()
                .map(|(id, status)| scan::CheckResult {
                    runbook_id: (*id).to_owned(),
                    outcome: model::CheckOutcome {
                        status: *status,
                        observed: serde_json::Value::Null,
                        expected: String::new(),
                        reason: String::new(),
                    },
                    elapsed: Duration::ZERO,
                })
                .collect(),
        };
        let agent = |name: &str, results: &[(&str, model::CheckStatus)]| AgentReport {
            name: name.to_owned(),
            results: results.iter().map(|(c, s)| ((*c).to_owned(), *s)).collect(),
        };
        let plan = Plan {
            targets: Vec::new(),
            passwords: HostPasswords::default(),
            not_checked: vec![NotChecked {
                account: "WS9$".to_owned(),
                dns_host_name: Some("ws9.clinic.local".to_owned()),
                reason: "offline: no answer on WinRM port 5986 within 1500 ms".to_owned(),
                stale: false,
            }],
            known: 5,
            stale: Vec::new(),
        };
        let body = summary(
            &plan,
            &[&winrm],
            &[
                agent("laptop1", &[("WIN-FW-001", Fail), ("WIN-AV-001", Pass)]),
                agent("ws3", &[("WIN-FW-001", Pass), ("WIN-BL-001", Skipped)]),
                agent("ws4", &[]),
                agent("ws5", &[("WIN-FW-001", Error)]),
            ],
        );
        assert_eq!(
            (body.checked, body.compliant, body.drifted, body.scan_failed),
            (3, 2, 1, 2)
        );
        assert_eq!(body.checked_by_agent, 2);
        assert_eq!(body.coverage_permille, 600);
        let fw = &body.checks["WIN-FW-001"];
        assert_eq!((fw.pass, fw.fail, fw.error), (2, 1, 1));
        assert_eq!(body.checks["WIN-BL-001"].skipped, 1);
        assert_eq!(body.not_checked.len(), 1);
    }
}

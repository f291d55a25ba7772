//! `[directory]` (Active Directory, for discovering computers) and `[workstations]` (how to reach
//! the workstations found there), read as written and parsed into typed settings.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::target::{PasswordSource, WinRmAuth, WinRmTrust};
use crate::{is_valid_local_account, is_valid_windows_user, password_source};

/// How to read the computer inventory from Active Directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// DNS domain, e.g. `clinic.local`.
    pub domain: String,
    /// Domain controller (host name or IP address); `None`: found by DNS SRV through `resolver`.
    pub dc: Option<String>,
    /// DNS server to ask for the SRV record and for workstation names (usually the DC).
    pub resolver: Option<IpAddr>,
    /// Search base; `None`: from the domain (`DC=clinic,DC=local`).
    pub base_dn: Option<String>,
    /// Bind account, e.g. `svc-osiris@clinic.local`.
    pub bind_user: String,
    pub password: PasswordSource,
    pub tls: DirectoryTls,
    /// PEM file of the CA that issued the DC's certificate.
    pub ca_file: PathBuf,
    /// A computer that has not logged on for this many days is stale (at least 1).
    pub stale_after_days: u32,
}

impl DirectoryConfig {
    /// The Kerberos realm of the domain (its name in upper case) and its KDC (the DC when one is
    /// named; otherwise found by DNS SRV records).
    pub fn kerberos_realm(&self) -> KerberosRealm {
        KerberosRealm {
            realm: self.domain.to_ascii_uppercase(),
            kdc: self.dc.clone(),
        }
    }
}

/// Where Kerberos tickets for the workstation logins come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosRealm {
    /// e.g. `CLINIC.LOCAL`.
    pub realm: String,
    /// The KDC (host name or IP address); `None`: DNS SRV `_kerberos._tcp.<realm>`.
    pub kdc: Option<String>,
}

/// How the LDAP connection is encrypted (unencrypted binds are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryTls {
    /// LDAPS, port 636.
    Ldaps,
    /// StartTLS on port 389.
    StartTls,
}

/// WinRM settings shared by every discovered workstation.
///
/// Always HTTPS, the certificate verified for the workstation's DNS name: the login goes only to
/// hosts that prove that name, never over HTTP to whoever answers at an address DNS gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationsConfig {
    /// The domain account with local admin rights on the workstations; `None` only with
    /// `laps = "require"`, where no workstation receives it.
    pub account: Option<WorkstationAccount>,
    pub auth: WinRmAuth,
    /// How the workstations' HTTPS certificates are trusted (a CA file or the system roots).
    pub trust: WinRmTrust,
    /// Which directory objects may receive the login at all.
    pub scope: WorkstationScope,
    /// How long the online probe (a TCP connect to the WinRM port) waits, in milliseconds (1 to 30000).
    pub probe_timeout_ms: u64,
    /// Whether each workstation is reached with its own LAPS-managed local administrator account.
    pub laps: Laps,
    /// The local account legacy Microsoft LAPS manages (`ms-Mcs-AdmPwd` does not name it), e.g.
    /// `Administrator`; Windows LAPS names its account itself.
    pub laps_account: String,
}

/// The `[workstations]` domain account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationAccount {
    /// e.g. `CLINIC\\osiris-scan` or `osiris-scan@clinic.local`.
    pub user: String,
    pub password: PasswordSource,
}

/// Per-host local administrator passwords from the directory (Windows LAPS `msLAPS-Password`,
/// legacy Microsoft LAPS `ms-Mcs-AdmPwd`). With one, the host is reached with its own local
/// account by NTLM inside HTTPS (local accounts cannot use Kerberos), its certificate verified for
/// its DNS name as always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Laps {
    /// Never read: every workstation gets the `[workstations]` account (the default).
    Off,
    /// The host's LAPS account where the directory holds a readable password, else the
    /// `[workstations]` account.
    Prefer,
    /// Only the host's LAPS account: a host without a readable LAPS password is not scanned.
    Require,
}

/// The computers an administrator chose to scan: in the OU `ou` (or below it) and a direct member
/// of `group`; at least one is set, and a computer must satisfy every one that is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationScope {
    /// Distinguished name of an OU, e.g. `OU=Workstations,DC=clinic,DC=local`.
    pub ou: Option<String>,
    /// Distinguished name of a group, e.g. `CN=Scanned PCs,OU=Groups,DC=clinic,DC=local`.
    pub group: Option<String>,
    /// Accounts (`sAMAccountName`, e.g. `KIOSK7$`) that a non-administrator created and an
    /// administrator has checked and approves for scanning; they must still be in scope.
    pub approved: Vec<String>,
}

/// `[directory]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectory {
    /// DNS domain, e.g. `clinic.local`.
    domain: String,
    /// Domain controller (host name or IP address). Default: DNS SRV `_ldap._tcp.dc._msdcs.<domain>`
    /// through `resolver`.
    #[serde(default)]
    dc: Option<String>,
    /// DNS server to ask for the SRV record (IP address, usually the DC), when `dc` is not given.
    #[serde(default)]
    resolver: Option<String>,
    /// Search base. Default: from the domain (`DC=clinic,DC=local`).
    #[serde(default)]
    base_dn: Option<String>,
    /// Bind account, e.g. `svc-osiris@clinic.local` (read-only is enough).
    bind_user: String,
    /// File (mode 0600) holding the bind password; or `credential`, a vault entry.
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    credential: Option<String>,
    /// `ldaps` (default, port 636) or `starttls` (port 389).
    #[serde(default)]
    tls: Option<String>,
    /// PEM file of the CA that issued the DC's certificate.
    ca_file: PathBuf,
    /// A computer that has not logged on for this many days is stale.
    #[serde(default = "default_stale_after_days")]
    stale_after_days: u32,
}

/// `[workstations]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkstations {
    /// Account with local admin rights on the workstations, e.g. `CLINIC\\osiris-scan`
    /// (optional only with `laps = "require"`).
    #[serde(default)]
    user: Option<String>,
    /// File (mode 0600) holding its password; or `credential`, a vault entry.
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    credential: Option<String>,
    /// Only computers in this OU (or below it) are scanned, e.g. `OU=Workstations,DC=clinic,DC=local`.
    #[serde(default)]
    scope: Option<String>,
    /// Only direct members of this group are scanned, e.g. `CN=Scanned PCs,DC=clinic,DC=local`.
    #[serde(default)]
    group: Option<String>,
    /// Computer accounts created by non-administrators (`mS-DS-CreatorSID` set) that an
    /// administrator has checked and approves for scanning, e.g. `["KIOSK7$"]`.
    #[serde(default)]
    approved: Vec<String>,
    /// `kerberos`, the default and the only value accepted (tickets from the directory's KDC);
    /// `ntlm` and `basic` are refused with the reason.
    #[serde(default)]
    auth: Option<String>,
    /// Must stay `true` (the default, port 5986): HTTP towards discovered hosts is refused.
    #[serde(default)]
    https: Option<bool>,
    /// PEM file of the CA that issued the workstations' WinRM certificates.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// How long the online probe (a TCP connect to the WinRM port) waits, in milliseconds.
    #[serde(default = "default_probe_timeout_ms")]
    probe_timeout_ms: u64,
    /// `off` (default), `prefer` or `require`: log into each workstation with its own LAPS
    /// password from the directory.
    #[serde(default)]
    laps: Option<String>,
    /// The local account legacy Microsoft LAPS manages (default `Administrator`).
    #[serde(default)]
    laps_account: Option<String>,
}

impl RawDirectory {
    /// The typed section, or `None` with every problem pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<DirectoryConfig> {
        let start = problems.len();
        let domain_ok = !self.domain.is_empty()
            && self.domain.contains('.')
            && model::is_valid_host(&self.domain);
        if !domain_ok {
            problems.push(format!(
                "directory.domain `{}` is not a DNS domain name (e.g. clinic.local)",
                self.domain.escape_debug()
            ));
        }
        if let Some(dc) = self.dc.as_deref().filter(|dc| !model::is_valid_host(dc)) {
            problems.push(format!(
                "directory.dc `{}` is not a host name or IP address",
                dc.escape_debug()
            ));
        }
        if self.dc.is_none() && self.resolver.is_none() {
            problems.push(
                "directory: give `dc`, or `resolver` (a DNS server, usually the DC) to find it by SRV record"
                    .to_owned(),
            );
        }
        let resolver = match self.resolver.as_deref().map(str::parse::<IpAddr>) {
            None => None,
            Some(Ok(ip)) => Some(ip),
            Some(Err(_)) => {
                problems.push(format!(
                    "directory.resolver `{}` is not an IP address",
                    self.resolver.as_deref().unwrap_or_default().escape_debug()
                ));
                None
            }
        };
        if !is_valid_windows_user(&self.bind_user) {
            problems.push(format!(
                "directory.bind_user `{}` is not an account name (use `user@domain` or `DOMAIN\\user`)",
                self.bind_user.escape_debug()
            ));
        }
        let password =
            password_source("directory", &self.password_file, &self.credential, problems);
        let tls = match self.tls.as_deref().unwrap_or("ldaps") {
            "ldaps" => Some(DirectoryTls::Ldaps),
            "starttls" => Some(DirectoryTls::StartTls),
            other => {
                problems.push(format!(
                    "directory.tls `{}` is unknown (use \"ldaps\" or \"starttls\"; unencrypted binds are not offered)",
                    other.escape_debug()
                ));
                None
            }
        };
        if self.stale_after_days == 0 {
            problems.push("directory.stale_after_days must be at least 1".to_owned());
        }
        if problems.len() > start {
            return None;
        }
        Some(DirectoryConfig {
            domain: self.domain.clone(),
            dc: self.dc.clone(),
            resolver,
            base_dn: self.base_dn.clone(),
            bind_user: self.bind_user.clone(),
            password: password?,
            tls: tls?,
            ca_file: self.ca_file.clone(),
            stale_after_days: self.stale_after_days,
        })
    }
}

impl RawWorkstations {
    /// The typed section, or `None` with every problem pushed; `has_directory` says whether
    /// `[directory]` is present (workstations are discovered from it).
    pub(crate) fn parse(
        &self,
        has_directory: bool,
        problems: &mut Vec<String>,
    ) -> Option<WorkstationsConfig> {
        let start = problems.len();
        if !has_directory {
            problems.push(
                "[workstations] needs a [directory] section to discover them from".to_owned(),
            );
        }
        let laps = self.laps(problems);
        let account = self.account(laps, problems);
        if self.https == Some(false) {
            problems.push(
                "workstations: https = false is refused: the workstation login would go by NTLM over HTTP to whatever address DNS gives for a name in the directory, where a rogue host collects it; delete `https = false` and set `ca_file` to the CA that issues the workstations' WinRM certificates (e.g. your AD CS root)".to_owned(),
            );
        }
        // One domain account that is administrator on every workstation goes only to the KDC:
        // NTLM would hand each workstation a response it can crack offline, Basic the password
        // itself, so one compromised PC would yield admin on all of them (issue 14, finding 1).
        let auth = match self.auth.as_deref().unwrap_or("kerberos") {
            "kerberos" => Some(WinRmAuth::Kerberos),
            "ntlm" => {
                problems.push("workstations: auth = \"ntlm\" is refused: every workstation would receive an NTLM response of the one account that is administrator on all of them, which a compromised workstation can crack offline; delete `auth` to log in by Kerberos (the default: the password goes only to the domain controller), or give each workstation its own password with LAPS (laps = \"require\")".to_owned());
                None
            }
            "basic" => {
                problems.push("workstations: auth = \"basic\" is refused: every workstation would receive the password of the one account that is administrator on all of them; delete `auth` to log in by Kerberos (the default: the password goes only to the domain controller), or give each workstation its own password with LAPS (laps = \"require\")".to_owned());
                None
            }
            other => {
                problems.push(format!(
                    "workstations.auth `{}` is unknown (only \"kerberos\", the default, is accepted)",
                    other.escape_debug()
                ));
                None
            }
        };
        let scope = self.scope(problems);
        let laps_account = self.laps_account.as_deref().unwrap_or("Administrator");
        if !is_valid_local_account(laps_account) {
            problems.push(format!(
                "workstations.laps_account `{}` is not a local account name (e.g. \"Administrator\", without a domain)",
                laps_account.escape_debug()
            ));
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms > 30_000 {
            problems.push("workstations.probe_timeout_ms must be between 1 and 30000".to_owned());
        }
        if problems.len() > start {
            return None;
        }
        Some(WorkstationsConfig {
            account: account?,
            auth: auth?,
            trust: self
                .ca_file
                .clone()
                .map_or(WinRmTrust::SystemRoots, WinRmTrust::CaFile),
            scope: scope?,
            probe_timeout_ms: self.probe_timeout_ms,
            laps: laps?,
            laps_account: laps_account.to_owned(),
        })
    }

    /// `laps`: off (the default), prefer or require.
    fn laps(&self, problems: &mut Vec<String>) -> Option<Laps> {
        match self.laps.as_deref().unwrap_or("off") {
            "off" => Some(Laps::Off),
            "prefer" => Some(Laps::Prefer),
            "require" => Some(Laps::Require),
            other => {
                problems.push(format!(
                    "workstations.laps `{}` is unknown (use \"off\", \"prefer\" or \"require\")",
                    other.escape_debug()
                ));
                None
            }
        }
    }

    /// `user` with `password_file` or `credential`; all three may be left out only with
    /// `laps = "require"` (`Some(None)`).
    fn account(
        &self,
        laps: Option<Laps>,
        problems: &mut Vec<String>,
    ) -> Option<Option<WorkstationAccount>> {
        let Some(user) = &self.user else {
            if laps == Some(Laps::Require)
                && self.password_file.is_none()
                && self.credential.is_none()
            {
                return Some(None);
            }
            problems.push(
                "workstations.user is missing: the domain account with local admin rights on the workstations (e.g. user = \"osiris-scan@clinic.local\") with its password_file or credential; only with laps = \"require\" may all three be left out".to_owned(),
            );
            return None;
        };
        let password = password_source(
            "workstations",
            &self.password_file,
            &self.credential,
            problems,
        );
        if !is_valid_windows_user(user) {
            problems.push(format!(
                "workstations.user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
                user.escape_debug()
            ));
            return None;
        }
        Some(Some(WorkstationAccount {
            user: user.clone(),
            password: password?,
        }))
    }

    /// `scope` and `group`: at least one, each a distinguished name.
    fn scope(&self, problems: &mut Vec<String>) -> Option<WorkstationScope> {
        if self.scope.is_none() && self.group.is_none() {
            problems.push(
                "[workstations] needs `scope` (the OU whose computers receive the workstation login, e.g. scope = \"OU=Workstations,DC=clinic,DC=local\") or `group` (a group of the computers to scan, e.g. group = \"CN=Scanned PCs,OU=Groups,DC=clinic,DC=local\"), or both: without one, any domain user who joins a computer to the domain receives the login".to_owned(),
            );
            return None;
        }
        let mut ok = true;
        for (field, value) in [("scope", &self.scope), ("group", &self.group)] {
            if let Some(dn) = value.as_deref().filter(|dn| !is_distinguished_name(dn)) {
                problems.push(format!(
                    "workstations.{field} `{}` is not a distinguished name (e.g. \"OU=Workstations,DC=clinic,DC=local\")",
                    dn.escape_debug()
                ));
                ok = false;
            }
        }
        for account in &self.approved {
            if !account.ends_with('$')
                || !is_valid_windows_user(account)
                || account.contains(['\\', '@'])
            {
                problems.push(format!(
                    "workstations.approved: `{}` is not a computer account name (e.g. \"KIOSK7$\")",
                    account.escape_debug()
                ));
                ok = false;
            }
        }
        ok.then(|| WorkstationScope {
            ou: self.scope.clone(),
            group: self.group.clone(),
            approved: self.approved.clone(),
        })
    }
}

/// `attribute=value` components separated by unescaped commas, without control characters.
fn is_distinguished_name(dn: &str) -> bool {
    if dn.trim().is_empty() || dn.chars().any(char::is_control) {
        return false;
    }
    let mut components = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for ch in dn.chars() {
        match ch {
            ',' if !escaped => components.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
        escaped = ch == '\\' && !escaped;
    }
    components.push(current);
    components.iter().all(|component| {
        component.split_once('=').is_some_and(|(attribute, value)| {
            let attribute = attribute.trim();
            !attribute.is_empty()
                && attribute
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !value.trim().is_empty()
        })
    })
}

fn default_probe_timeout_ms() -> u64 {
    1500
}

fn default_stale_after_days() -> u32 {
    90
}

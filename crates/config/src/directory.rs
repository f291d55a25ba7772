//! `[directory]` (Active Directory, for discovering computers) and `[workstations]` (how to reach
//! the workstations found there), read as written and parsed into typed settings.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::target::{PasswordSource, WinRmAuth, WinRmSecurity, WinRmTrust};
use crate::{is_valid_windows_user, password_source};

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

/// How the LDAP connection is encrypted (unencrypted binds are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryTls {
    /// LDAPS, port 636.
    Ldaps,
    /// StartTLS on port 389.
    StartTls,
}

/// WinRM settings shared by every discovered workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationsConfig {
    /// Account with local admin rights on the workstations, e.g. `CLINIC\\osiris-scan`.
    pub user: String,
    pub password: PasswordSource,
    pub security: WinRmSecurity,
    /// How long the online probe (a TCP connect to the WinRM port) waits, in milliseconds (1 to 30000).
    pub probe_timeout_ms: u64,
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
    /// Account with local admin rights on the workstations, e.g. `CLINIC\\osiris-scan`.
    user: String,
    /// File (mode 0600) holding its password; or `credential`, a vault entry.
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    credential: Option<String>,
    /// `ntlm` (default) or `basic` (HTTPS only).
    #[serde(default)]
    auth: Option<String>,
    /// `true` (default, port 5986) or `false` (5985, NTLM message encryption).
    #[serde(default)]
    https: Option<bool>,
    /// PEM file of the CA that issued the workstations' WinRM certificates.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// How long the online probe (a TCP connect to the WinRM port) waits, in milliseconds.
    #[serde(default = "default_probe_timeout_ms")]
    probe_timeout_ms: u64,
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
        let password = password_source(
            "workstations",
            &self.password_file,
            &self.credential,
            problems,
        );
        if !is_valid_windows_user(&self.user) {
            problems.push(format!(
                "workstations.user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
                self.user.escape_debug()
            ));
        }
        let https = self.https.unwrap_or(true);
        let auth = match self.auth.as_deref().unwrap_or("ntlm") {
            "ntlm" => Some(WinRmAuth::Ntlm),
            "basic" if https => Some(WinRmAuth::Basic),
            "basic" => {
                problems.push(
                    "workstations: auth = \"basic\" sends the password readably over HTTP; use https = true or ntlm".to_owned(),
                );
                None
            }
            other => {
                problems.push(format!(
                    "workstations.auth `{other}` is unknown (use \"ntlm\" or \"basic\")"
                ));
                None
            }
        };
        if !https && self.ca_file.is_some() {
            problems.push("workstations: `ca_file` needs https = true".to_owned());
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms > 30_000 {
            problems.push("workstations.probe_timeout_ms must be between 1 and 30000".to_owned());
        }
        if problems.len() > start {
            return None;
        }
        let security = if https {
            WinRmSecurity::Https {
                auth: auth?,
                trust: self
                    .ca_file
                    .clone()
                    .map_or(WinRmTrust::SystemRoots, WinRmTrust::CaFile),
            }
        } else {
            WinRmSecurity::HttpNtlm
        };
        Some(WorkstationsConfig {
            user: self.user.clone(),
            password: password?,
            security,
            probe_timeout_ms: self.probe_timeout_ms,
        })
    }
}

fn default_probe_timeout_ms() -> u64 {
    1500
}

fn default_stale_after_days() -> u32 {
    90
}

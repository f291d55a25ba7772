//! Appliance and CLI configuration: the TOML schema, its defaults, and validation.
//!
//! One format serves `osiris` and (later) `osirisd`. The file says *what* to scan and where
//! evidence goes; it never holds secrets, only paths to credential files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use model::{ParamValue, Platform};

mod daemon;

pub use daemon::{
    ChannelConfig, CredentialsConfig, DaemonConfig, EscalationConfig, MIN_INTERVAL_SECS,
    RemindAfter,
};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Site identifier written into every evidence bundle, e.g. `smith-family-practice`.
    pub site: String,
    /// Where the database, keys and evidence live. Default: `./osiris-data` for the CLI.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Evidence anchoring settings.
    #[serde(default)]
    pub evidence: EvidenceConfig,
    /// Machines to scan. Default: only the machine osiris runs on.
    #[serde(default = "default_targets", rename = "target")]
    pub targets: Vec<TargetConfig>,
    /// L1 healing limits.
    #[serde(default)]
    pub healing: HealingConfig,
    /// Per-runbook parameter overrides: `[checks.LIN-DISK-001] threshold_percent = 95`.
    #[serde(default)]
    pub checks: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Active Directory, for discovering workstations (optional).
    #[serde(default)]
    pub directory: Option<DirectoryConfig>,
    /// How to reach the workstations found in Active Directory (optional; needs `[directory]`).
    #[serde(default)]
    pub workstations: Option<WorkstationsConfig>,
    /// How `osirisd` schedules its cycles and serves its local API.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// L3 escalation channels (optional).
    #[serde(default)]
    pub escalation: Option<EscalationConfig>,
    /// The encrypted credential vault.
    #[serde(default)]
    pub credentials: CredentialsConfig,
}

/// WinRM settings shared by every discovered workstation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkstationsConfig {
    /// Account with local admin rights on the workstations, e.g. `CLINIC\\osiris-scan`.
    pub user: String,
    /// File (mode 0600) holding its password; or `credential`, a vault entry.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub credential: Option<String>,
    /// `ntlm` (default) or `basic` (HTTPS only).
    #[serde(default)]
    pub auth: Option<String>,
    /// `true` (default, port 5986) or `false` (5985, NTLM message encryption).
    #[serde(default)]
    pub https: Option<bool>,
    /// PEM file of the CA that issued the workstations' WinRM certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long the online probe (a TCP connect to the WinRM port) waits, in milliseconds.
    #[serde(default = "default_probe_timeout_ms")]
    pub probe_timeout_ms: u64,
}

/// How to read the computer inventory from Active Directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// DNS domain, e.g. `clinic.local`.
    pub domain: String,
    /// Domain controller (host name or IP address). Default: DNS SRV `_ldap._tcp.dc._msdcs.<domain>`
    /// through `resolver`.
    #[serde(default)]
    pub dc: Option<String>,
    /// DNS server to ask for the SRV record (IP address, usually the DC), when `dc` is not given.
    #[serde(default)]
    pub resolver: Option<String>,
    /// Search base. Default: from the domain (`DC=clinic,DC=local`).
    #[serde(default)]
    pub base_dn: Option<String>,
    /// Bind account, e.g. `svc-osiris@clinic.local` (read-only is enough).
    pub bind_user: String,
    /// File (mode 0600) holding the bind password; or `credential`, a vault entry.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub credential: Option<String>,
    /// `ldaps` (default, port 636) or `starttls` (port 389).
    #[serde(default = "default_directory_tls")]
    pub tls: String,
    /// PEM file of the CA that issued the DC's certificate.
    pub ca_file: PathBuf,
    /// A computer that has not logged on for this many days is stale.
    #[serde(default = "default_stale_after_days")]
    pub stale_after_days: u32,
}

/// OpenTimestamps settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Calendar servers that timestamp checkpoints (all are used; one success is enough).
    #[serde(default = "default_calendars")]
    pub calendars: Vec<String>,
    /// Esplora-compatible API used to fetch Bitcoin block headers when checking proofs.
    #[serde(default)]
    pub esplora_url: Option<String>,
    /// Per-request timeout for calendars and Esplora, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// L1 healing limits for the site.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealingConfig {
    /// Stop all remediation (detection continues).
    #[serde(default)]
    pub paused: bool,
    /// Remediations allowed per site per hour.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: u32,
    /// A fix that had to be made this many times within `flap_window_minutes` is escalated instead.
    #[serde(default = "default_flap_max")]
    pub flap_max: u32,
    #[serde(default = "default_flap_window_minutes")]
    pub flap_window_minutes: u32,
    /// After this many consecutive failed remediations, stop for `breaker_cooldown_minutes`.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    #[serde(default = "default_breaker_cooldown_minutes")]
    pub breaker_cooldown_minutes: u32,
}

/// One machine to scan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Display name; unique within the file.
    pub name: String,
    /// `linux`, `windows-server`, `windows-workstation` or `macos`.
    pub platform: String,
    /// How to reach it: `local` (the machine osiris runs on), `ssh` or `winrm`.
    pub transport: String,
    /// SSH: IP address or DNS name.
    #[serde(default)]
    pub address: Option<String>,
    /// SSH: port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    /// SSH: login user.
    #[serde(default)]
    pub user: Option<String>,
    /// SSH: path to the private key file (mode 0600). Exactly one of `key_file`, `password_file`
    /// and `credential`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// SSH: path to a file (mode 0600) holding the password. Never put the password itself here.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Instead of a key or password file: the name of a secret in the encrypted credential vault
    /// (`osiris credentials set NAME`): an SSH key or password for `ssh`, a password for `winrm`.
    #[serde(default)]
    pub credential: Option<String>,
    /// SSH: `sudo` to run checks as root through `sudo -n` (the user needs passwordless sudo).
    #[serde(default, rename = "become")]
    pub become_method: Option<String>,
    /// WinRM: `ntlm` (default) or `basic` (HTTPS only). Kerberos comes with AD support.
    #[serde(default)]
    pub auth: Option<String>,
    /// WinRM: `true` (default, port 5986) or `false` (port 5985, NTLM with message encryption only).
    #[serde(default)]
    pub https: Option<bool>,
    /// WinRM over HTTPS: PEM file of the CA that issued the host's certificate (default: system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// WinRM over HTTPS: pin the host's certificate by the SHA-256 of its DER bytes (64 hex digits)
    /// instead of trusting a CA.
    #[serde(default)]
    pub cert_sha256: Option<String>,
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML or does not match the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file parsed but its values are inconsistent.
    #[error("{}", .problems.iter().map(|p| format!("{path}: {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<String> },
}

/// Parses and validates a configuration file's text; `path` is used in messages only.
pub fn parse(path: &str, text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start).min(text.len());
        let before = &text[..offset];
        ConfigError::Syntax {
            path: path.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message: err.message().to_owned(),
        }
    })?;
    let problems = config.problems();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

impl Config {
    /// The configuration used when none is given: scan this machine, keep data in `./osiris-data`.
    pub fn embedded_default() -> Config {
        Config {
            site: "local".to_owned(),
            data_dir: None,
            evidence: EvidenceConfig::default(),
            healing: HealingConfig::default(),
            targets: default_targets(),
            checks: BTreeMap::new(),
            directory: None,
            workstations: None,
            daemon: DaemonConfig::default(),
            escalation: None,
            credentials: CredentialsConfig::default(),
        }
    }

    /// Parameter overrides as typed values, keyed by runbook ID then parameter name.
    pub fn param_overrides(&self) -> BTreeMap<String, BTreeMap<String, ParamValue>> {
        self.checks
            .iter()
            .map(|(id, params)| {
                let params = params
                    .iter()
                    .filter_map(|(name, value)| Some((name.clone(), to_param(value)?)))
                    .collect();
                (id.clone(), params)
            })
            .collect()
    }

    /// Every inconsistency, in words that say what to change.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let site_ok = !self.site.is_empty()
            && self.site.len() <= 64
            && self
                .site
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !site_ok {
            problems.push(format!(
                "site `{}` is invalid: use 1-64 letters, digits, `-`, `_` or `.`",
                self.site.escape_debug()
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for target in &self.targets {
            if !names.insert(target.name.as_str()) {
                problems.push(format!(
                    "target `{}` is listed twice; names must be unique",
                    target.name
                ));
            }
            if let Err(err) = target.platform.parse::<Platform>() {
                problems.push(format!("target `{}`: {err}", target.name));
            }
            problems.extend(target.problems());
        }
        if let Some(dir) = &self.directory {
            problems.extend(dir.problems());
        }
        problems.extend(self.daemon.problems());
        if let Some(escalation) = &self.escalation {
            problems.extend(escalation.problems());
        }
        if let Some(ws) = &self.workstations {
            if self.directory.is_none() {
                problems.push(
                    "[workstations] needs a [directory] section to discover them from".to_owned(),
                );
            }
            problems.extend(password_source_problem(
                "workstations",
                &ws.password_file,
                &ws.credential,
            ));
            if !is_valid_windows_user(&ws.user) {
                problems.push(format!(
                    "workstations.user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
                    ws.user.escape_debug()
                ));
            }
            match (ws.auth.as_deref().unwrap_or("ntlm"), ws.https.unwrap_or(true)) {
                ("ntlm", _) | ("basic", true) => {}
                ("basic", false) => problems.push(
                    "workstations: auth = \"basic\" sends the password readably over HTTP; use https = true or ntlm".to_owned(),
                ),
                (other, _) => problems.push(format!("workstations.auth `{other}` is unknown (use \"ntlm\" or \"basic\")")),
            }
            if ws.probe_timeout_ms == 0 || ws.probe_timeout_ms > 30_000 {
                problems
                    .push("workstations.probe_timeout_ms must be between 1 and 30000".to_owned());
            }
        }
        for url in &self.evidence.calendars {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(format!("evidence.calendars: `{url}` is not an http(s) URL"));
            }
        }
        if let Some(url) = self
            .evidence
            .esplora_url
            .as_ref()
            .filter(|url| !(url.starts_with("https://") || url.starts_with("http://")))
        {
            problems.push(format!(
                "evidence.esplora_url: `{url}` is not an http(s) URL"
            ));
        }
        if self.healing.flap_window_minutes == 0 || self.healing.breaker_cooldown_minutes == 0 {
            problems.push(
                "healing: flap_window_minutes and breaker_cooldown_minutes must be at least 1"
                    .to_owned(),
            );
        }
        if self.evidence.timeout_secs == 0 || self.evidence.timeout_secs > 600 {
            problems.push(format!(
                "evidence.timeout_secs = {} is out of range 1..=600",
                self.evidence.timeout_secs
            ));
        }
        for (id, params) in &self.checks {
            for (name, value) in params {
                if to_param(value).is_none() {
                    problems.push(format!(
                        "checks.{id}.{name}: {} values are not accepted; use an integer, boolean or string",
                        value.type_str()
                    ));
                }
            }
        }
        problems
    }
}

impl TargetConfig {
    fn problems(&self) -> Vec<String> {
        let name = &self.name;
        let mut problems = Vec::new();
        if !model::is_valid_host(name) {
            problems.push(format!(
                "target name `{}` is invalid: use a host name (letters, digits, `-` and `.`)",
                name.escape_debug()
            ));
        }
        let set = |field: &str| match field {
            "address" => self.address.is_some(),
            "port" => self.port.is_some(),
            "user" => self.user.is_some(),
            "key_file" => self.key_file.is_some(),
            "password_file" => self.password_file.is_some(),
            "credential" => self.credential.is_some(),
            "become" => self.become_method.is_some(),
            "auth" => self.auth.is_some(),
            "https" => self.https.is_some(),
            "ca_file" => self.ca_file.is_some(),
            "cert_sha256" => self.cert_sha256.is_some(),
            _ => false,
        };
        const FIELDS: [&str; 11] = [
            "address",
            "port",
            "user",
            "key_file",
            "password_file",
            "credential",
            "become",
            "auth",
            "https",
            "ca_file",
            "cert_sha256",
        ];
        let allowed: &[&str] = match self.transport.as_str() {
            "local" => &[],
            "ssh" => &[
                "address",
                "port",
                "user",
                "key_file",
                "password_file",
                "credential",
                "become",
            ],
            "winrm" => &[
                "address",
                "port",
                "user",
                "password_file",
                "credential",
                "auth",
                "https",
                "ca_file",
                "cert_sha256",
            ],
            other => {
                problems.push(format!(
                    "target `{name}`: transport `{other}` is not available in this version (available: local, ssh, winrm)"
                ));
                return problems;
            }
        };
        for field in FIELDS.iter().filter(|f| set(f) && !allowed.contains(f)) {
            problems.push(format!(
                "target `{name}`: `{field}` does not apply to transport `{}`",
                self.transport
            ));
        }
        let windows = self.platform.starts_with("windows-");
        if windows != (self.transport == "winrm") {
            problems.push(format!(
                "target `{name}`: platform `{}` is reached with transport `{}`; Windows targets use `winrm`, others `local` or `ssh`",
                self.platform, self.transport
            ));
        }
        if self.transport == "local" {
            return problems;
        }
        let transport = &self.transport;
        match &self.address {
            None => problems.push(format!(
                "target `{name}`: transport `{transport}` needs `address`"
            )),
            Some(address) if !model::is_valid_host(address) => problems.push(format!(
                "target `{name}`: address `{}` is not an IP address or host name",
                address.escape_debug()
            )),
            Some(_) => {}
        }
        if self.port == Some(0) {
            problems.push(format!("target `{name}`: port 0 is not a valid port"));
        }
        if transport == "ssh" {
            match &self.user {
                None => problems.push(format!("target `{name}`: transport `ssh` needs `user`")),
                Some(user) if !model::is_valid_user(user) => problems.push(format!(
                    "target `{name}`: user `{}` is not a valid login name",
                    user.escape_debug()
                )),
                Some(_) => {}
            }
            let given = [
                self.key_file.is_some(),
                self.password_file.is_some(),
                self.credential.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                problems.push(format!(
                    "target `{name}`: give exactly one of `key_file`, `password_file` and `credential`"
                ));
            }
            if let Some(method) = self.become_method.as_deref().filter(|b| *b != "sudo") {
                problems.push(format!(
                    "target `{name}`: become = `{method}` is not supported (use \"sudo\")"
                ));
            }
        } else {
            match &self.user {
                None => problems.push(format!("target `{name}`: transport `winrm` needs `user`")),
                Some(user) if !is_valid_windows_user(user) => problems.push(format!(
                    "target `{name}`: user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
                    user.escape_debug()
                )),
                Some(_) => {}
            }
            problems.extend(password_source_problem(
                &format!("target `{name}`"),
                &self.password_file,
                &self.credential,
            ));
            let https = self.https.unwrap_or(true);
            match self.auth.as_deref().unwrap_or("ntlm") {
                "ntlm" => {}
                "basic" if https => {}
                "basic" => problems.push(format!(
                    "target `{name}`: auth = \"basic\" sends the password readably over HTTP; use https = true, or auth = \"ntlm\" (encrypted messages)"
                )),
                "kerberos" => problems.push(format!(
                    "target `{name}`: auth = \"kerberos\" is not available in this version; use \"ntlm\""
                )),
                other => problems.push(format!(
                    "target `{name}`: auth = `{other}` is unknown (use \"ntlm\" or \"basic\")"
                )),
            }
            if !https && (self.ca_file.is_some() || self.cert_sha256.is_some()) {
                problems.push(format!(
                    "target `{name}`: `ca_file` and `cert_sha256` need https = true"
                ));
            }
            if self.ca_file.is_some() && self.cert_sha256.is_some() {
                problems.push(format!(
                    "target `{name}`: give at most one of `ca_file` and `cert_sha256`"
                ));
            }
            if let Some(pin) = &self.cert_sha256 {
                let hex = pin.replace(':', "");
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    problems.push(format!(
                        "target `{name}`: cert_sha256 must be 64 hex digits (colons allowed), the SHA-256 of the certificate"
                    ));
                }
            }
        }
        problems
    }
}

impl DirectoryConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
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
        if let Some(resolver) = self
            .resolver
            .as_deref()
            .filter(|r| r.parse::<std::net::IpAddr>().is_err())
        {
            problems.push(format!(
                "directory.resolver `{}` is not an IP address",
                resolver.escape_debug()
            ));
        }
        if !is_valid_windows_user(&self.bind_user) {
            problems.push(format!(
                "directory.bind_user `{}` is not an account name (use `user@domain` or `DOMAIN\\user`)",
                self.bind_user.escape_debug()
            ));
        }
        problems.extend(password_source_problem(
            "directory",
            &self.password_file,
            &self.credential,
        ));
        if !matches!(self.tls.as_str(), "ldaps" | "starttls") {
            problems.push(format!(
                "directory.tls `{}` is unknown (use \"ldaps\" or \"starttls\"; unencrypted binds are not offered)",
                self.tls.escape_debug()
            ));
        }
        if self.stale_after_days == 0 {
            problems.push("directory.stale_after_days must be at least 1".to_owned());
        }
        problems
    }
}

/// A password comes from exactly one place: a 0600 file or a vault entry.
fn password_source_problem(
    what: &str,
    file: &Option<PathBuf>,
    credential: &Option<String>,
) -> Option<String> {
    (file.is_some() == credential.is_some()).then(|| {
        format!(
            "{what}: give exactly one of `password_file` (a file of mode 0600 holding the password) and `credential` (a vault entry)"
        )
    })
}

/// A Unix user or group name (`[a-z_][a-z0-9_-]*`, at most 32 characters).
pub fn is_valid_unix_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// A Windows account name as WinRM takes it: `user`, `DOMAIN\\user` or `user@domain`, without
/// spaces, quotes or control characters.
pub fn is_valid_windows_user(user: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '$');
    let part = |p: &str| !p.is_empty() && p.len() <= 104 && p.chars().all(ok_char);
    if let Some((domain, name)) = user.split_once('\\') {
        part(domain) && part(name)
    } else if let Some((name, domain)) = user.split_once('@') {
        part(name) && part(domain)
    } else {
        part(user)
    }
}

impl Default for HealingConfig {
    fn default() -> Self {
        HealingConfig {
            paused: false,
            max_per_hour: default_max_per_hour(),
            flap_max: default_flap_max(),
            flap_window_minutes: default_flap_window_minutes(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown_minutes: default_breaker_cooldown_minutes(),
        }
    }
}

const fn default_max_per_hour() -> u32 {
    30
}

const fn default_flap_max() -> u32 {
    3
}

const fn default_flap_window_minutes() -> u32 {
    240
}

const fn default_breaker_failures() -> u32 {
    5
}

const fn default_breaker_cooldown_minutes() -> u32 {
    30
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            calendars: default_calendars(),
            esplora_url: None,
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn to_param(value: &toml::Value) -> Option<ParamValue> {
    match value {
        toml::Value::Integer(n) => Some(ParamValue::Integer(*n)),
        toml::Value::Boolean(b) => Some(ParamValue::Boolean(*b)),
        toml::Value::String(s) => Some(ParamValue::Text(s.clone())),
        _ => None,
    }
}

fn default_targets() -> Vec<TargetConfig> {
    vec![TargetConfig {
        name: "localhost".to_owned(),
        platform: "linux".to_owned(),
        transport: "local".to_owned(),
        address: None,
        port: None,
        user: None,
        key_file: None,
        password_file: None,
        credential: None,
        become_method: None,
        auth: None,
        https: None,
        ca_file: None,
        cert_sha256: None,
    }]
}

fn default_probe_timeout_ms() -> u64 {
    1500
}

fn default_directory_tls() -> String {
    "ldaps".to_owned()
}

fn default_stale_after_days() -> u32 {
    90
}

/// The public OpenTimestamps calendars.
fn default_calendars() -> Vec<String> {
    [
        "https://a.pool.opentimestamps.org",
        "https://b.pool.opentimestamps.org",
        "https://a.pool.eternitywall.com",
        "https://ots.btc.catallaxy.com",
    ]
    .map(str::to_owned)
    .to_vec()
}

const fn default_timeout_secs() -> u64 {
    30
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Expect) {
        let actual = match parse("site.toml", text) {
            Ok(config) => format!("ok: site={} targets={}", config.site, config.targets.len()),
            Err(err) => err.to_string(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn minimal() {
        check("site = \"clinic\"\n", expect!["ok: site=clinic targets=1"]);
    }

    #[test]
    fn unknown_field_is_rejected_with_position() {
        check(
            "site = \"clinic\"\n[evidence]\ncalendar = []\n",
            expect![
                "site.toml:3:1: unknown field `calendar`, expected one of `calendars`, `esplora_url`, `timeout_secs`"
            ],
        );
    }

    #[test]
    fn all_problems_are_listed() {
        check(
            r#"site = "bad site"
[[target]]
name = "a"
platform = "linux"
transport = "ssh"
[[target]]
name = "a"
platform = "windoze"
transport = "local"
[evidence]
calendars = ["ftp://x"]
[checks.LIN-DISK-001]
threshold_percent = 1.5
"#,
            expect![[r#"
                site.toml: site `bad site` is invalid: use 1-64 letters, digits, `-`, `_` or `.`
                site.toml: target `a`: transport `ssh` needs `address`
                site.toml: target `a`: transport `ssh` needs `user`
                site.toml: target `a`: give exactly one of `key_file`, `password_file` and `credential`
                site.toml: target `a` is listed twice; names must be unique
                site.toml: target `a`: unknown platform `windoze` (known: linux, windows-server, windows-workstation, macos)
                site.toml: evidence.calendars: `ftp://x` is not an http(s) URL
                site.toml: checks.LIN-DISK-001.threshold_percent: float values are not accepted; use an integer, boolean or string"#]],
        );
    }

    #[test]
    fn ssh_targets_are_validated_before_anything_connects() {
        check(
            r#"site = "lab"
[[target]]
name = "target1"
platform = "linux"
transport = "ssh"
address = "10.77.0.11"
user = "alice"
key_file = "/var/tmp/osiris-lab/id_ed25519"
become = "sudo"
"#,
            expect!["ok: site=lab targets=1"],
        );
        check(
            r#"site = "lab"
[[target]]
name = "web1; reboot"
platform = "linux"
transport = "ssh"
address = "$(touch /tmp/pwned)"
user = "alice -oProxyCommand=x"
key_file = "k"
password_file = "p"
become = "su"
port = 0
[[target]]
name = "local"
platform = "linux"
transport = "local"
user = "root"
"#,
            expect![[r#"
                site.toml: target name `web1; reboot` is invalid: use a host name (letters, digits, `-` and `.`)
                site.toml: target `web1; reboot`: address `$(touch /tmp/pwned)` is not an IP address or host name
                site.toml: target `web1; reboot`: port 0 is not a valid port
                site.toml: target `web1; reboot`: user `alice -oProxyCommand=x` is not a valid login name
                site.toml: target `web1; reboot`: give exactly one of `key_file`, `password_file` and `credential`
                site.toml: target `web1; reboot`: become = `su` is not supported (use "sudo")
                site.toml: target `local`: `user` does not apply to transport `local`"#]],
        );
    }

    #[test]
    fn winrm_targets_refuse_readable_passwords_and_hostile_values() {
        check(
            r#"site = "lab"
[[target]]
name = "win1"
platform = "windows-server"
transport = "winrm"
address = "10.77.0.51"
user = "LAB\\administrator"
password_file = "/var/tmp/osiris-lab/win-password"
ca_file = "/var/tmp/osiris-lab/pki/ca.pem"
"#,
            expect!["ok: site=lab targets=1"],
        );
        check(
            r#"site = "lab"
[[target]]
name = "win1"
platform = "windows-server"
transport = "winrm"
address = "10.0.0.5'; Remove-Item C:\\"
user = "admin'; whoami"
auth = "basic"
https = false
cert_sha256 = "abc"
key_file = "k"
become = "sudo"
[[target]]
name = "win2"
platform = "windows-workstation"
transport = "winrm"
address = "ws2.clinic.local"
user = "nurse@clinic.local"
password_file = "p"
auth = "kerberos"
ca_file = "ca.pem"
cert_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
[[target]]
name = "win3"
platform = "windows-server"
transport = "ssh"
address = "10.0.0.7"
user = "admin"
key_file = "k"
"#,
            expect![[r#"
                site.toml: target `win1`: `key_file` does not apply to transport `winrm`
                site.toml: target `win1`: `become` does not apply to transport `winrm`
                site.toml: target `win1`: address `10.0.0.5\'; Remove-Item C:\\` is not an IP address or host name
                site.toml: target `win1`: user `admin\'; whoami` is not a valid Windows account name (use `user`, `DOMAIN\user` or `user@domain`)
                site.toml: target `win1`: give exactly one of `password_file` (a file of mode 0600 holding the password) and `credential` (a vault entry)
                site.toml: target `win1`: auth = "basic" sends the password readably over HTTP; use https = true, or auth = "ntlm" (encrypted messages)
                site.toml: target `win1`: `ca_file` and `cert_sha256` need https = true
                site.toml: target `win1`: cert_sha256 must be 64 hex digits (colons allowed), the SHA-256 of the certificate
                site.toml: target `win2`: auth = "kerberos" is not available in this version; use "ntlm"
                site.toml: target `win2`: give at most one of `ca_file` and `cert_sha256`
                site.toml: target `win3`: platform `windows-server` is reached with transport `ssh`; Windows targets use `winrm`, others `local` or `ssh`"#]],
        );
    }

    #[test]
    fn directory_settings_are_checked() {
        check(
            r#"site = "lab"
[directory]
domain = "lab.example"
dc = "10.77.0.2"
bind_user = "svc-osiris@lab.example"
password_file = "/var/tmp/osiris-lab/dc/bind-password"
ca_file = "/var/tmp/osiris-lab/pki/ca.pem"
"#,
            expect!["ok: site=lab targets=1"],
        );
        check(
            r#"site = "lab"
[directory]
domain = "lab)(cn=*"
bind_user = "svc osiris"
password_file = "p"
ca_file = "c"
tls = "none"
stale_after_days = 0
"#,
            expect![[r#"
                site.toml: directory.domain `lab)(cn=*` is not a DNS domain name (e.g. clinic.local)
                site.toml: directory: give `dc`, or `resolver` (a DNS server, usually the DC) to find it by SRV record
                site.toml: directory.bind_user `svc osiris` is not an account name (use `user@domain` or `DOMAIN\user`)
                site.toml: directory.tls `none` is unknown (use "ldaps" or "starttls"; unencrypted binds are not offered)
                site.toml: directory.stale_after_days must be at least 1"#]],
        );
    }

    #[test]
    fn impossible_daemon_intervals_and_broken_channels_are_refused() {
        check(
            r#"site = "lab"
[daemon]
server_scan_secs = 0
drift_rescan_secs = 900
jitter_percent = 90
socket = "api.sock"
metrics_listen = "0.0.0.0:9464"
[escalation]
[[escalation.channel]]
name = "mail"
kind = "email"
server = "mx"
security = "plain"
username = "u"
[[escalation.channel]]
name = "mail"
kind = "webhook"
url = "ftp://x"
min_severity = "urgent"
[[escalation.channel]]
name = "pd"
kind = "pager"
"#,
            expect![[r#"
                site.toml: daemon.server_scan_secs = 0 is impossible: use 5 to 604800 seconds
                site.toml: daemon.drift_rescan_secs (900) is longer than server_scan_secs (0): the re-scan after drift must come sooner than the regular scan
                site.toml: daemon.jitter_percent = 90 is too large: use 0 to 50
                site.toml: daemon.socket `api.sock` must be an absolute path
                site.toml: daemon.metrics_listen `0.0.0.0:9464` is not a loopback address: metrics carry no authentication, so they are served on 127.0.0.1 or ::1 only
                site.toml: escalation channel `mail` (email): `from` is missing
                site.toml: escalation channel `mail` (email): `to` is missing
                site.toml: escalation channel `mail`: security `plain` is unknown (use starttls, tls, or none for a relay on this machine)
                site.toml: escalation channel `mail`: give both `username` and `password_file`, or neither
                site.toml: escalation channel `mail` is listed twice; names must be unique
                site.toml: escalation channel `mail`: min_severity `urgent` is unknown (use low, medium, high or critical)
                site.toml: escalation channel `mail` (webhook): `secret_file` is missing
                site.toml: escalation channel `mail`: url `ftp://x` is not an http(s) URL
                site.toml: escalation channel `pd`: kind `pager` is unknown (use email, slack, teams, pagerduty or webhook)"#]],
        );
    }

    #[test]
    fn a_daemon_configuration_with_every_channel_parses() {
        check(
            r#"site = "lab"
[daemon]
server_scan_secs = 10
drift_rescan_secs = 5
workstation_scan_secs = 20
socket_group = "osiris"
metrics_listen = "127.0.0.1:9464"
[escalation]
remind_after_minutes = { critical = 30 }
[[escalation.channel]]
name = "msp-mail"
kind = "email"
server = "10.77.0.3"
port = 587
from = "appliance@clinic.example"
to = ["oncall@msp.example"]
[[escalation.channel]]
name = "chat"
kind = "slack"
url_file = "/etc/osiris/slack-url"
[[escalation.channel]]
name = "pd"
kind = "pagerduty"
routing_key_file = "/etc/osiris/pd-key"
[[escalation.channel]]
name = "ticketing"
kind = "webhook"
url = "https://psa.example/hook"
secret_file = "/etc/osiris/hook-secret"
"#,
            expect!["ok: site=lab targets=1"],
        );
    }

    #[test]
    fn embedded_default_is_valid() {
        assert!(Config::embedded_default().problems().is_empty());
    }
}

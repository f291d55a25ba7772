//! Appliance and CLI configuration: the TOML schema, its defaults, and its parse into typed
//! settings.
//!
//! One format serves `osiris` and `osirisd`. The file says *what* to scan and where evidence
//! goes; it never holds secrets, only paths to credential files or names of vault entries.
//! [`parse`] reads the file as written (private `Raw*` structs), reports every problem at once,
//! and otherwise returns a [`Config`] whose values are typed, so no consumer parses a string again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use model::{ParamValue, Platform};

mod agents;
mod central;
mod cloud;
mod daemon;
mod directory;
mod l2;
mod rmm;
mod target;

pub use agents::AgentsConfig;
pub use central::CentralConfig;
pub use cloud::{
    AwsConfig, CloudProvider, CloudTenantConfig, DEFAULT_AUTHORITY, DEFAULT_DIRECTORY_BASE,
    DEFAULT_GOOGLE_TOKEN_URL, DEFAULT_GRAPH_BASE, GoogleWorkspaceConfig, Microsoft365Auth,
    Microsoft365Config, OktaAuth, OktaConfig,
};
pub use daemon::{
    ChannelConfig, ChannelKind, CredentialsConfig, DaemonConfig, EmailConfig, EmailLogin,
    EmailSecurity, EscalationConfig, MIN_INTERVAL_SECS, RemindAfter,
};
pub use directory::{
    DirectoryConfig, DirectoryTls, KerberosRealm, Laps, WorkstationAccount, WorkstationScope,
    WorkstationsConfig,
};
pub use l2::{L2Config, L2Key, L2Mode, L2Price, L2Provider};
pub use rmm::{RmmConfig, RmmKind};
pub use target::{
    PasswordSource, SshConfig, SshLogin, TargetConfig, TransportConfig, WinRmAuth, WinRmConfig,
    WinRmSecurity, WinRmTrust,
};

/// The whole configuration file, parsed: every value typed, every combination usable.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Site identifier written into every evidence bundle, e.g. `smith-family-practice`.
    pub site: String,
    /// Where the database, keys and evidence live. Default: `./osiris-data` for the CLI.
    pub data_dir: Option<PathBuf>,
    /// Evidence anchoring settings.
    pub evidence: EvidenceConfig,
    /// Machines to scan. Default: only the machine osiris runs on.
    pub targets: Vec<TargetConfig>,
    /// Cloud tenants to check through their providers' APIs (`[[cloud]]`; `osiris cloud scan`).
    pub cloud: Vec<CloudTenantConfig>,
    /// RMMs whose device inventory is imported and reconciled with the directory (`[[rmm]]`;
    /// `osiris rmm import`).
    pub rmm: Vec<RmmConfig>,
    /// L1 healing limits.
    pub healing: HealingConfig,
    /// Per-runbook parameter overrides: `[checks.LIN-DISK-001] threshold_percent = 95`.
    pub checks: BTreeMap<String, BTreeMap<String, ParamValue>>,
    /// Active Directory, for discovering workstations (optional).
    pub directory: Option<DirectoryConfig>,
    /// How to reach the workstations found in Active Directory (optional; needs `[directory]`).
    pub workstations: Option<WorkstationsConfig>,
    /// How `osirisd` schedules its cycles and serves its local API.
    pub daemon: DaemonConfig,
    /// L3 escalation channels (optional).
    pub escalation: Option<EscalationConfig>,
    /// The encrypted credential vault.
    pub credentials: CredentialsConfig,
    /// The partner's Central Command (optional; without it the appliance stays on its own).
    pub central: Option<CentralConfig>,
    /// The gateway endpoint agents connect to (optional; off without it).
    pub agents: Option<AgentsConfig>,
    /// The L2 planner (`None` when `[l2]` is absent or `mode = "off"`).
    pub l2: Option<L2Config>,
}

/// The file as written; [`parse`] turns it into a [`Config`] or the list of every problem.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: String,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    evidence: EvidenceConfig,
    /// Absent: only the machine osiris runs on.
    #[serde(default, rename = "target")]
    targets: Option<Vec<target::RawTarget>>,
    #[serde(default)]
    cloud: Vec<cloud::RawCloud>,
    #[serde(default)]
    rmm: Vec<rmm::RawRmm>,
    #[serde(default)]
    healing: HealingConfig,
    #[serde(default)]
    checks: BTreeMap<String, BTreeMap<String, toml::Value>>,
    #[serde(default)]
    directory: Option<directory::RawDirectory>,
    #[serde(default)]
    workstations: Option<directory::RawWorkstations>,
    #[serde(default)]
    daemon: DaemonConfig,
    #[serde(default)]
    escalation: Option<daemon::RawEscalation>,
    #[serde(default)]
    credentials: CredentialsConfig,
    #[serde(default)]
    central: Option<central::RawCentral>,
    #[serde(default)]
    agents: Option<agents::RawAgents>,
    #[serde(default)]
    l2: Option<l2::RawL2>,
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

/// Parses a configuration file's text into typed settings, or reports every problem at once;
/// `path` is used in messages only.
pub fn parse(path: &str, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start).min(text.len());
        let before = &text[..offset];
        ConfigError::Syntax {
            path: path.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message: err.message().to_owned(),
        }
    })?;
    let mut problems = Vec::new();
    match raw.parse(&mut problems) {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        }),
    }
}

impl Config {
    /// The realm whose tickets the workstation logins use, when `[workstations]` logs in by
    /// Kerberos (the default).
    pub fn workstation_kerberos(&self) -> Option<KerberosRealm> {
        let ws = self.workstations.as_ref()?;
        let dir = self.directory.as_ref()?;
        (ws.auth == WinRmAuth::Kerberos && ws.account.is_some()).then(|| dir.kerberos_realm())
    }

    /// The configuration used when none is given: scan this machine, keep data in `./osiris-data`.
    pub fn embedded_default() -> Config {
        Config {
            site: "local".to_owned(),
            data_dir: None,
            evidence: EvidenceConfig::default(),
            healing: HealingConfig::default(),
            targets: vec![TargetConfig::localhost()],
            cloud: Vec::new(),
            rmm: Vec::new(),
            checks: BTreeMap::new(),
            directory: None,
            workstations: None,
            daemon: DaemonConfig::default(),
            escalation: None,
            credentials: CredentialsConfig::default(),
            central: None,
            agents: None,
            l2: None,
        }
    }

    /// Parameter overrides as typed values, keyed by runbook ID then parameter name.
    pub fn param_overrides(&self) -> BTreeMap<String, BTreeMap<String, ParamValue>> {
        self.checks.clone()
    }
}

impl RawConfig {
    /// Every section typed, or `None`; every inconsistency is pushed, in words that say what to
    /// change.
    fn parse(self, problems: &mut Vec<String>) -> Option<Config> {
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
        let targets = match &self.targets {
            None => Some(vec![TargetConfig::localhost()]),
            Some(raw_targets) => parse_targets(raw_targets, problems),
        };
        let cloud = parse_cloud(
            &self.cloud,
            targets.as_deref().unwrap_or_default(),
            problems,
        );
        let rmm = rmm::parse_rmm(&self.rmm, problems);
        let directory = self.directory.as_ref().map(|dir| dir.parse(problems));
        problems.extend(self.daemon.problems());
        let escalation = self.escalation.as_ref().map(|esc| esc.parse(problems));
        let central = self.central.as_ref().map(|c| c.parse(problems));
        let agents = self.agents.as_ref().map(|a| a.parse(problems));
        let l2 = self.l2.as_ref().and_then(|l2| l2.parse(problems));
        let workstations = self
            .workstations
            .as_ref()
            .map(|ws| ws.parse(self.directory.is_some(), problems));
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
        let mut checks = BTreeMap::new();
        for (id, params) in &self.checks {
            let mut typed = BTreeMap::new();
            for (name, value) in params {
                match to_param(value) {
                    Some(value) => {
                        typed.insert(name.clone(), value);
                    }
                    None => problems.push(format!(
                        "checks.{id}.{name}: {} values are not accepted; use an integer, boolean or string",
                        value.type_str()
                    )),
                }
            }
            checks.insert(id.clone(), typed);
        }
        Some(Config {
            site: self.site,
            data_dir: self.data_dir,
            evidence: self.evidence,
            targets: targets?,
            cloud: cloud?,
            rmm: rmm?,
            healing: self.healing,
            checks,
            directory: optional_section(directory)?,
            workstations: optional_section(workstations)?,
            daemon: self.daemon,
            escalation: optional_section(escalation)?,
            credentials: self.credentials,
            central: optional_section(central)?,
            agents: optional_section(agents)?,
            l2,
        })
    }
}

/// The `[[target]]` tables, each typed, or `None` when any has a problem (all are reported).
fn parse_targets(
    raw_targets: &[target::RawTarget],
    problems: &mut Vec<String>,
) -> Option<Vec<TargetConfig>> {
    let mut names = std::collections::BTreeSet::new();
    let mut targets = Vec::new();
    for raw in raw_targets {
        if !names.insert(raw.name.as_str()) {
            problems.push(format!(
                "target `{}` is listed twice; names must be unique",
                raw.name
            ));
        }
        let platform = raw
            .platform
            .parse::<Platform>()
            .map_err(|err| problems.push(format!("target `{}`: {err}", raw.name)))
            .ok()
            .filter(|platform| {
                let cloud = platform.is_cloud();
                if cloud {
                    problems.push(format!(
                        "target `{}`: {platform} is a cloud tenant, not a machine: configure it as a `[[cloud]]` table",
                        raw.name
                    ));
                }
                !cloud
            });
        targets.extend(raw.parse(platform, problems));
    }
    (targets.len() == raw_targets.len()).then_some(targets)
}

/// The `[[cloud]]` tables, each typed, or `None` when any has a problem (all are reported);
/// a tenant's name may not repeat another tenant's or a target's.
fn parse_cloud(
    raw_tenants: &[cloud::RawCloud],
    targets: &[TargetConfig],
    problems: &mut Vec<String>,
) -> Option<Vec<CloudTenantConfig>> {
    let mut names: std::collections::BTreeSet<&str> =
        targets.iter().map(|t| t.name.as_str()).collect();
    let mut tenants = Vec::new();
    for raw in raw_tenants {
        if !names.insert(raw.name.as_str()) {
            problems.push(format!(
                "cloud `{}`: the name is already used by a target or another tenant; names must be unique",
                raw.name
            ));
        }
        tenants.extend(raw.parse(problems));
    }
    (tenants.len() == raw_tenants.len()).then_some(tenants)
}

/// An optional section after parsing: `Some(None)` when absent, `None` when present but unusable.
fn optional_section<T>(parsed: Option<Option<T>>) -> Option<Option<T>> {
    match parsed {
        None => Some(None),
        Some(section) => section.map(Some),
    }
}

/// A password comes from exactly one place: a 0600 file or a vault entry.
fn password_source(
    what: &str,
    file: &Option<PathBuf>,
    credential: &Option<String>,
    problems: &mut Vec<String>,
) -> Option<PasswordSource> {
    match (file, credential) {
        (Some(file), None) => Some(PasswordSource::File(file.clone())),
        (None, Some(entry)) => Some(PasswordSource::Credential(entry.clone())),
        _ => {
            problems.push(format!(
                "{what}: give exactly one of `password_file` (a file of mode 0600 holding the password) and `credential` (a vault entry)"
            ));
            None
        }
    }
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

/// A local account name without a domain (as LAPS names it), e.g. `Administrator`: at most 20
/// characters, the characters [`is_valid_windows_user`] allows, no `\\` or `@`.
pub fn is_valid_local_account(name: &str) -> bool {
    name.len() <= 20 && !name.contains(['\\', '@']) && is_valid_windows_user(name)
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
    fn metrics_listen_is_a_socket_address() {
        check(
            "site = \"lab\"\n[daemon]\nmetrics_listen = \"localhost:metrics\"\n",
            expect![
                "site.toml:3:18: daemon.metrics_listen `localhost:metrics` is not an address:port (e.g. 127.0.0.1:9464)"
            ],
        );
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
                site.toml: target `a`: unknown platform `windoze` (known: linux, windows-server, windows-workstation, macos, microsoft365, google-workspace, aws, okta)
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
                site.toml: target `win2`: auth = "kerberos" is available for the workstations found in the directory ([workstations] auth); for a configured target use "ntlm" over HTTPS
                site.toml: target `win2`: give at most one of `ca_file` and `cert_sha256`
                site.toml: target `win3`: platform `windows-server` is reached with transport `ssh`; Windows targets use `winrm`, others `local` or `ssh`"#]],
        );
    }

    #[test]
    fn l2_is_off_unless_asked_and_every_setting_is_checked() {
        let off = parse("site.toml", "site = \"lab\"\n[l2]\nmode = \"off\"\n").unwrap();
        assert_eq!(off.l2, None);
        let on = parse(
            "site.toml",
            r#"site = "lab"
[l2]
mode = "local"
provider = "anthropic"
endpoint = "https://api.anthropic.com"
model = "claude-sonnet-4-5"
credential = "anthropic"
daily_budget_usd = 5.25
approval_required = ["LIN-FW-001"]
[l2.prices."claude-sonnet-4-5"]
input_usd_per_mtok = 3.0
output_usd_per_mtok = 15.0
"#,
        )
        .unwrap();
        let l2 = on.l2.unwrap();
        assert_eq!(l2.key, L2Key::Vault("anthropic".to_owned()));
        assert_eq!(l2.daily_budget_micro_usd, 5_250_000);
        assert_eq!(
            l2.price,
            L2Price {
                input_micro_usd_per_mtok: 3_000_000,
                output_micro_usd_per_mtok: 15_000_000
            }
        );
        assert!(!l2.dry_run);
        // A local model server on loopback needs no key.
        check(
            r#"site = "lab"
[l2]
mode = "local"
provider = "openai"
endpoint = "http://127.0.0.1:8080/v1"
model = "qwen"
[l2.prices.qwen]
input_usd_per_mtok = 0
output_usd_per_mtok = 0
"#,
            expect!["ok: site=lab targets=1"],
        );
        check(
            r#"site = "lab"
[l2]
mode = "remote"
endpoint = "http://llm.example.com/v1?key=sk-123"
model = "gpt-x"
credential = "openai"
api_key_file = "key.txt"
confidence_floor = 1.5
daily_budget_usd = 0.0000001
"#,
            expect![[r#"
                site.toml: l2.provider is required when l2.mode is not "off": "anthropic" or "openai"
                site.toml: l2.endpoint `http://llm.example.com/v1?key=sk-123` must not carry a user name, password or query: the key goes in credential or api_key_file
                site.toml: l2: set either credential or api_key_file, not both
                site.toml: l2.prices has no entry for model `gpt-x`: add [l2.prices."gpt-x"] with input_usd_per_mtok and output_usd_per_mtok (0 for a local model), so the budget can be enforced
                site.toml: l2.confidence_floor = 1.5 is out of range 0..=1
                site.toml: l2.daily_budget_usd = 0.0000001 must be a dollar amount from 0 with at most 6 decimals"#]],
        );
        check(
            r#"site = "lab"
[l2]
mode = "local"
provider = "openai"
endpoint = "http://10.0.0.9:8000/v1"
model = "m"
api_key = "sk-live-123"
"#,
            expect![[
                r#"site.toml:7:1: unknown field `api_key`, expected one of `mode`, `provider`, `endpoint`, `model`, `credential`, `api_key_file`, `prices`, `max_tokens`, `timeout_secs`, `confidence_floor`, `approval_required`, `dry_run`, `daily_token_budget`, `daily_budget_usd`, `max_per_hour`, `breaker_failures`, `breaker_cooldown_minutes`"#
            ]],
        );
        check(
            r#"site = "lab"
[l2]
mode = "local"
provider = "openai"
endpoint = "http://10.0.0.9:8000/v1"
model = "m"
[l2.prices.m]
input_usd_per_mtok = 1
output_usd_per_mtok = 1
"#,
            expect![[r#"
                site.toml: l2.endpoint `http://10.0.0.9:8000/v1` must be https:// (plain http:// only to a model server on this machine's loopback)
                site.toml: l2: an endpoint off this machine needs credential = "NAME" (a vault entry) or api_key_file; the key itself never goes into the configuration"#]],
        );
    }

    #[test]
    fn central_settings_are_checked() {
        check(
            r#"site = "lab"
[central]
url = "https://central.acme-it.example"
ca_file = "/etc/osiris/central-ca.pem"
"#,
            expect!["ok: site=lab targets=1"],
        );
        let config = parse(
            "site.toml",
            "site = \"lab\"\n[central]\nurl = \"https://central.acme-it.example\"\n",
        )
        .unwrap();
        let central = config.central.unwrap();
        assert_eq!(central.url, "https://central.acme-it.example/");
        assert_eq!(central.push_secs, 300);
        check(
            r#"site = "lab"
[central]
url = "http://central.acme-it.example"
ca_file = "central-ca.pem"
push_secs = 1
"#,
            expect![[r#"
                site.toml: central.url `http://central.acme-it.example` must be an https:// URL (the link to Central Command is always TLS)
                site.toml: central.ca_file `central-ca.pem` must be an absolute path
                site.toml: central.push_secs = 1 is out of range 5..=86400"#]],
        );
        check(
            "site = \"lab\"\n[central]\nurl = \"https://user@evil.example\"\n",
            expect!["site.toml: central.url `https://user@evil.example` has no usable host"],
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
console_lock_secs = 5
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
                site.toml: daemon.console_lock_secs = 5 is impossible: use 30 to 3600 seconds
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
    fn targets_parse_into_one_typed_variant_per_transport() {
        let config = parse(
            "site.toml",
            r#"site = "lab"
[[target]]
name = "web1"
platform = "linux"
transport = "ssh"
address = "10.77.0.11"
user = "alice"
credential = "web1-key"
become = "sudo"
[[target]]
name = "win1"
platform = "windows-server"
transport = "winrm"
address = "10.77.0.51"
user = "LAB\\administrator"
password_file = "/p"
auth = "basic"
cert_sha256 = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
[[target]]
name = "win2"
platform = "windows-workstation"
transport = "winrm"
address = "ws2"
user = "nurse"
credential = "ws"
https = false
[directory]
domain = "lab.example"
resolver = "10.77.0.2"
bind_user = "svc@lab.example"
credential = "bind"
tls = "starttls"
ca_file = "/ca.pem"
[workstations]
user = "LAB\\osiris"
credential = "ws"
ca_file = "/ws-ca.pem"
scope = "OU=Workstations,DC=lab,DC=example"
[escalation]
[[escalation.channel]]
name = "mail"
kind = "email"
server = "mx"
from = "a@b"
to = ["c@d"]
security = "tls"
min_severity = "critical"
"#,
        )
        .map_err(|err| err.to_string());
        let actual = match config {
            Ok(config) => {
                let targets: Vec<String> =
                    config.targets.iter().map(|t| format!("{t:?}")).collect();
                format!(
                    "{}\n{:?}\n{:?}\n{:?}",
                    targets.join("\n"),
                    config.directory.map(|d| (d.resolver, d.tls, d.password)),
                    config.workstations.map(|w| (w.auth, w.trust, w.scope)),
                    config.escalation.map(|e| e.channels),
                )
            }
            Err(err) => err,
        };
        expect![[r#"
            TargetConfig { name: "web1", platform: Linux, transport: Ssh(SshConfig { address: "10.77.0.11", port: 22, user: "alice", login: Credential("web1-key"), become_root: true, host_key: None }) }
            TargetConfig { name: "win1", platform: WindowsServer, transport: WinRm(WinRmConfig { address: "10.77.0.51", port: None, user: "LAB\\administrator", password: File("/p"), security: Https { auth: Basic, trust: PinSha256([0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255, 0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255]) }, verify_name: None }) }
            TargetConfig { name: "win2", platform: WindowsWorkstation, transport: WinRm(WinRmConfig { address: "ws2", port: None, user: "nurse", password: Credential("ws"), security: HttpNtlm, verify_name: None }) }
            Some((Some(10.77.0.2), StartTls, Credential("bind")))
            Some((Kerberos, CaFile("/ws-ca.pem"), WorkstationScope { ou: Some("OU=Workstations,DC=lab,DC=example"), group: None, approved: [] }))
            Some([ChannelConfig { name: "mail", min_severity: Critical, kind: Email(EmailConfig { server: "mx", port: 587, security: Tls, from: "a@b", to: ["c@d"], login: None, ca_file: None }) }])"#]].assert_eq(&actual);
    }

    const DIRECTORY: &str = r#"site = "lab"
[directory]
domain = "lab.example"
dc = "dc1.lab.example"
bind_user = "svc@lab.example"
credential = "bind"
ca_file = "/ca.pem"
"#;

    #[test]
    fn workstations_are_never_reached_over_http() {
        check(
            &format!(
                "{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\nhttps = false\nscope = \"OU=Workstations,DC=lab,DC=example\"\n"
            ),
            expect![
                "site.toml: workstations: https = false is refused: the workstation login would go by NTLM over HTTP to whatever address DNS gives for a name in the directory, where a rogue host collects it; delete `https = false` and set `ca_file` to the CA that issues the workstations' WinRM certificates (e.g. your AD CS root)"
            ],
        );
    }

    #[test]
    fn the_workstation_account_goes_only_by_kerberos() {
        let ws = |auth: &str| {
            format!(
                "{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\nscope = \"OU=Workstations,DC=lab,DC=example\"\nauth = \"{auth}\"\n"
            )
        };
        check(
            &ws("ntlm"),
            expect![[
                r#"site.toml: workstations: auth = "ntlm" is refused: every workstation would receive an NTLM response of the one account that is administrator on all of them, which a compromised workstation can crack offline; delete `auth` to log in by Kerberos (the default: the password goes only to the domain controller), or give each workstation its own password with LAPS (laps = "require")"#
            ]],
        );
        check(
            &ws("basic"),
            expect![[
                r#"site.toml: workstations: auth = "basic" is refused: every workstation would receive the password of the one account that is administrator on all of them; delete `auth` to log in by Kerberos (the default: the password goes only to the domain controller), or give each workstation its own password with LAPS (laps = "require")"#
            ]],
        );
        check(
            &ws("negotiate"),
            expect![[
                r#"site.toml: workstations.auth `negotiate` is unknown (only "kerberos", the default, is accepted)"#
            ]],
        );
        let auth = parse("site.toml", &ws("kerberos")).map(|c| c.workstations.map(|w| w.auth));
        assert_eq!(
            auth.map_err(|e| e.to_string()),
            Ok(Some(WinRmAuth::Kerberos))
        );
    }

    #[test]
    fn laps_modes_and_the_legacy_account_are_checked() {
        let ws = |extra: &str| {
            format!(
                "{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\nscope = \"OU=Workstations,DC=lab,DC=example\"\n{extra}"
            )
        };
        check(
            &ws("laps = \"always\"\nlaps_account = \"LAB\\\\admin\"\n"),
            expect![[r#"
                site.toml: workstations.laps `always` is unknown (use "off", "prefer" or "require")
                site.toml: workstations.laps_account `LAB\\admin` is not a local account name (e.g. "Administrator", without a domain)"#]],
        );
        let parsed = |extra: &str| {
            parse("site.toml", &ws(extra))
                .map(|c| c.workstations.map(|w| (w.laps, w.laps_account)))
                .map_err(|err| err.to_string())
        };
        assert_eq!(
            parsed(""),
            Ok(Some((Laps::Off, "Administrator".to_owned())))
        );
        assert_eq!(
            parsed("laps = \"require\"\nlaps_account = \"ClinicAdmin\"\n"),
            Ok(Some((Laps::Require, "ClinicAdmin".to_owned())))
        );
        // Only `require` may do without the domain account, which it never sends anywhere.
        let without_account = |laps: &str| {
            parse(
                "site.toml",
                &format!(
                    "{DIRECTORY}[workstations]\nscope = \"OU=Workstations,DC=lab,DC=example\"\nlaps = \"{laps}\"\n"
                ),
            )
            .map(|c| {
                let kerberos = c.workstation_kerberos();
                c.workstations.map(|w| (w.account, kerberos))
            })
            .map_err(|err| err.to_string())
        };
        assert_eq!(without_account("require"), Ok(Some((None, None))));
        check(
            &format!(
                "{DIRECTORY}[workstations]\nscope = \"OU=Workstations,DC=lab,DC=example\"\nlaps = \"prefer\"\n"
            ),
            expect![[
                r#"site.toml: workstations.user is missing: the domain account with local admin rights on the workstations (e.g. user = "osiris-scan@clinic.local") with its password_file or credential; only with laps = "require" may all three be left out"#
            ]],
        );
    }

    #[test]
    fn workstations_need_a_scope_chosen_by_an_administrator() {
        check(
            &format!("{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\n"),
            expect![[
                r#"site.toml: [workstations] needs `scope` (the OU whose computers receive the workstation login, e.g. scope = "OU=Workstations,DC=clinic,DC=local") or `group` (a group of the computers to scan, e.g. group = "CN=Scanned PCs,OU=Groups,DC=clinic,DC=local"), or both: without one, any domain user who joins a computer to the domain receives the login"#
            ]],
        );
        check(
            &format!(
                "{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\nscope = \"Workstations\"\ngroup = \"CN=PCs,,DC=lab\"\n"
            ),
            expect![[r#"
                site.toml: workstations.scope `Workstations` is not a distinguished name (e.g. "OU=Workstations,DC=clinic,DC=local")
                site.toml: workstations.group `CN=PCs,,DC=lab` is not a distinguished name (e.g. "OU=Workstations,DC=clinic,DC=local")"#]],
        );
        let config = parse(
            "site.toml",
            &format!(
                "{DIRECTORY}[workstations]\nuser = \"osiris\"\ncredential = \"ws\"\ngroup = 'CN=Scanned PCs\\, front desk,DC=lab,DC=example'\n"
            ),
        )
        .map_err(|err| err.to_string());
        assert_eq!(
            config.map(|c| c.workstations.map(|w| w.scope)),
            Ok(Some(WorkstationScope {
                ou: None,
                group: Some("CN=Scanned PCs\\, front desk,DC=lab,DC=example".to_owned()),
                approved: Vec::new(),
            }))
        );
    }

    #[test]
    fn embedded_default_is_what_an_empty_file_gives() {
        let parsed = parse("site.toml", "site = \"local\"\n").map_err(|err| err.to_string());
        assert_eq!(parsed, Ok(Config::embedded_default()));
    }
}

//! The daemon's sections: `[daemon]` (schedule, local API socket, metrics), `[escalation]`
//! (L3 channels and reminders, each channel parsed into one typed variant per kind) and
//! `[credentials]` (the encrypted vault).

use std::path::PathBuf;

use serde::Deserialize;

use model::Severity;

/// How `osirisd` runs. Every interval is in seconds; each run is shifted by up to
/// `jitter_percent` so a fleet of appliances does not scan in lockstep.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The local API's Unix socket.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group allowed to use the socket besides root (mode 0660); none: root only (0600).
    #[serde(default)]
    pub socket_group: Option<String>,
    /// Configured servers and Linux hosts: scan, then heal.
    #[serde(default = "default_server_scan")]
    pub server_scan_secs: u64,
    /// Workstations from the last AD inventory.
    #[serde(default = "default_workstation_scan")]
    pub workstation_scan_secs: u64,
    /// AD discovery.
    #[serde(default = "default_discovery")]
    pub discovery_secs: u64,
    /// The `[[cloud]]` tenants (Graph's reports change over hours, not minutes).
    #[serde(default = "default_cloud_scan")]
    pub cloud_scan_secs: u64,
    /// The `[[rmm]]` device inventories (they change over days).
    #[serde(default = "default_rmm_import")]
    pub rmm_import_secs: u64,
    /// OpenTimestamps submit and upgrade.
    #[serde(default = "default_anchor")]
    pub anchor_secs: u64,
    /// Signed evidence checkpoint.
    #[serde(default = "default_checkpoint")]
    pub checkpoint_secs: u64,
    /// After a scan found drift, the next server scan comes this soon.
    #[serde(default = "default_drift_rescan")]
    pub drift_rescan_secs: u64,
    #[serde(default = "default_jitter")]
    pub jitter_percent: u8,
    /// On SIGTERM, running cycles get this long to finish before the daemon exits.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
    /// Prometheus metrics on this loopback address (off unless set), e.g. `127.0.0.1:9464`.
    #[serde(default, deserialize_with = "socket_addr")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The partner portal's claim page; the console shows it with the appliance's code as a QR code.
    #[serde(default = "default_claim_url")]
    pub claim_url: String,
    /// The image updater's state directory (read for status; queued update evidence is sealed).
    #[serde(default = "default_update_state_dir")]
    pub update_state_dir: PathBuf,
    /// Where removable media are mounted: evidence kits are written only into a filesystem
    /// mounted below one of these (a USB stick), never elsewhere.
    #[serde(default = "default_export_roots")]
    pub export_roots: Vec<PathBuf>,
    /// The on-site console locks after this many seconds without a key, hiding site data until
    /// the console PIN is typed; an unlock the console stops using expires after as long.
    #[serde(default = "default_console_lock")]
    pub console_lock_secs: u64,
}

/// Where target secrets are kept: an encrypted vault, its key in a 0600 file or a systemd
/// credential named `credentials-key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// Default: `<data_dir>/credentials.vault`.
    #[serde(default)]
    pub vault: Option<PathBuf>,
    /// Default: `$CREDENTIALS_DIRECTORY/credentials-key` under systemd, else `<data_dir>/keys/credentials.key`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// L3: who hears about what the appliance cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationConfig {
    /// Remind when nobody acknowledged within this many minutes, per severity (absent: never).
    pub remind_after_minutes: RemindAfter,
    pub max_reminders: u32,
    /// Delivery attempts per notification and channel (first try included; 1 to 20).
    pub max_attempts: u32,
    /// First retry delay in seconds (at least 1); doubles per retry up to `max_backoff_secs`.
    pub first_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// At least one; names are unique.
    pub channels: Vec<ChannelConfig>,
}

/// `[escalation]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    /// Remind when nobody acknowledged within this many minutes, per severity (absent: never).
    #[serde(default)]
    remind_after_minutes: RemindAfter,
    #[serde(default = "default_max_reminders")]
    max_reminders: u32,
    /// Delivery attempts per notification and channel (first try included).
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    /// First retry delay in seconds; doubles per retry up to `max_backoff_secs`.
    #[serde(default = "default_first_backoff")]
    first_backoff_secs: u64,
    #[serde(default = "default_max_backoff")]
    max_backoff_secs: u64,
    #[serde(rename = "channel")]
    channels: Vec<RawChannel>,
}

/// Reminder delays per severity, in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindAfter {
    pub low: Option<u32>,
    pub medium: Option<u32>,
    pub high: Option<u32>,
    pub critical: Option<u32>,
}

/// One destination. Secrets (SMTP password, chat webhook URLs, PagerDuty routing key, webhook
/// signing secret) are read from 0600 files named here, never written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Letters, digits, `-`, `_` or `.`; unique.
    pub name: String,
    /// Only this severity and above go here.
    pub min_severity: Severity,
    pub kind: ChannelKind,
}

/// What a channel is, with the settings of that kind only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKind {
    Email(EmailConfig),
    /// The incoming-webhook URL (a secret) is in `url_file`.
    Slack {
        url_file: PathBuf,
    },
    /// The incoming-webhook URL (a secret) is in `url_file`.
    Teams {
        url_file: PathBuf,
    },
    PagerDuty {
        /// The integration's routing key (a secret).
        routing_key_file: PathBuf,
        /// Default: the documented Events API v2 endpoint.
        events_url: Option<String>,
    },
    Webhook {
        /// Where to POST (an http(s) URL).
        url: String,
        /// HMAC-SHA256 signing secret.
        secret_file: PathBuf,
    },
}

/// An email channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub server: String,
    /// Default 587.
    pub port: u16,
    pub security: EmailSecurity,
    pub from: String,
    /// At least one recipient.
    pub to: Vec<String>,
    /// SMTP login, when the server wants one.
    pub login: Option<EmailLogin>,
    /// PEM file of the CA that issued the server's certificate (default: system roots).
    pub ca_file: Option<PathBuf>,
}

/// An SMTP account; the password is read from a 0600 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLogin {
    pub username: String,
    pub password_file: PathBuf,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSecurity {
    /// STARTTLS (the default).
    StartTls,
    /// TLS from the first byte.
    Tls,
    /// None: a relay on this machine only.
    None,
}

/// `[[escalation.channel]]` as written: one flat table for every kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    /// `email`, `slack`, `teams`, `pagerduty` or `webhook`.
    kind: String,
    /// `low`, `medium`, `high` or `critical`: only this severity and above go here.
    #[serde(default)]
    min_severity: Option<String>,
    // email
    server: Option<String>,
    port: Option<u16>,
    /// `starttls` (default), `tls`, or `none` (loopback relay only).
    security: Option<String>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    /// slack, teams: the incoming-webhook URL (a secret).
    url_file: Option<PathBuf>,
    /// pagerduty: the integration's routing key (a secret).
    routing_key_file: Option<PathBuf>,
    /// pagerduty: default the documented Events API v2 endpoint.
    events_url: Option<String>,
    /// webhook: where to POST.
    url: Option<String>,
    /// webhook: HMAC-SHA256 signing secret.
    secret_file: Option<PathBuf>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: default_socket(),
            socket_group: None,
            server_scan_secs: default_server_scan(),
            workstation_scan_secs: default_workstation_scan(),
            discovery_secs: default_discovery(),
            cloud_scan_secs: default_cloud_scan(),
            rmm_import_secs: default_rmm_import(),
            anchor_secs: default_anchor(),
            checkpoint_secs: default_checkpoint(),
            drift_rescan_secs: default_drift_rescan(),
            jitter_percent: default_jitter(),
            drain_secs: default_drain(),
            metrics_listen: None,
            claim_url: default_claim_url(),
            update_state_dir: default_update_state_dir(),
            export_roots: default_export_roots(),
            console_lock_secs: default_console_lock(),
        }
    }
}

impl Default for RemindAfter {
    fn default() -> Self {
        RemindAfter {
            low: None,
            medium: Some(24 * 60),
            high: Some(4 * 60),
            critical: Some(60),
        }
    }
}

/// Shortest idle time before the console locks.
pub(crate) const MIN_CONSOLE_LOCK_SECS: u64 = 30;
/// Longest idle time before the console locks.
pub(crate) const MAX_CONSOLE_LOCK_SECS: u64 = 3600;

/// Shortest interval any cycle may have.
pub const MIN_INTERVAL_SECS: u64 = 5;

impl DaemonConfig {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let day = 7 * 24 * 3600;
        for (name, value) in [
            ("server_scan_secs", self.server_scan_secs),
            ("workstation_scan_secs", self.workstation_scan_secs),
            ("discovery_secs", self.discovery_secs),
            ("cloud_scan_secs", self.cloud_scan_secs),
            ("rmm_import_secs", self.rmm_import_secs),
            ("anchor_secs", self.anchor_secs),
            ("checkpoint_secs", self.checkpoint_secs),
            ("drift_rescan_secs", self.drift_rescan_secs),
        ] {
            if !(MIN_INTERVAL_SECS..=day).contains(&value) {
                problems.push(format!(
                    "daemon.{name} = {value} is impossible: use {MIN_INTERVAL_SECS} to {day} seconds"
                ));
            }
        }
        if self.drift_rescan_secs > self.server_scan_secs {
            problems.push(format!(
                "daemon.drift_rescan_secs ({}) is longer than server_scan_secs ({}): the re-scan after drift must come sooner than the regular scan",
                self.drift_rescan_secs, self.server_scan_secs
            ));
        }
        if self.jitter_percent > 50 {
            problems.push(format!(
                "daemon.jitter_percent = {} is too large: use 0 to 50",
                self.jitter_percent
            ));
        }
        if self.drain_secs == 0 || self.drain_secs > 600 {
            problems.push(format!(
                "daemon.drain_secs = {} is impossible: use 1 to 600 seconds",
                self.drain_secs
            ));
        }
        for root in &self.export_roots {
            let plain = root.is_absolute()
                && root.components().all(|c| {
                    matches!(
                        c,
                        std::path::Component::RootDir | std::path::Component::Normal(_)
                    )
                });
            if !plain || root == std::path::Path::new("/") {
                problems.push(format!(
                    "daemon.export_roots: `{}` must be an absolute path without `..`, and not `/`",
                    root.display()
                ));
            }
        }
        if !(MIN_CONSOLE_LOCK_SECS..=MAX_CONSOLE_LOCK_SECS).contains(&self.console_lock_secs) {
            problems.push(format!(
                "daemon.console_lock_secs = {} is impossible: use {MIN_CONSOLE_LOCK_SECS} to {MAX_CONSOLE_LOCK_SECS} seconds",
                self.console_lock_secs
            ));
        }
        if !self.socket.is_absolute() {
            problems.push(format!(
                "daemon.socket `{}` must be an absolute path",
                self.socket.display()
            ));
        }
        if let Some(group) = &self.socket_group
            && !crate::is_valid_unix_name(group)
        {
            problems.push(format!(
                "daemon.socket_group `{}` is not a group name",
                group.escape_debug()
            ));
        }
        if !self.claim_url.starts_with("https://") {
            problems.push(format!(
                "daemon.claim_url `{}` must be an https:// URL",
                self.claim_url.escape_debug()
            ));
        }
        if let Some(addr) = self.metrics_listen
            && !addr.ip().is_loopback()
        {
            problems.push(format!(
                "daemon.metrics_listen `{addr}` is not a loopback address: metrics carry no authentication, so they are served on 127.0.0.1 or ::1 only"
            ));
        }
        problems
    }
}

/// `"ADDR:PORT"` as a socket address, with a message that shows the expected form.
fn socket_addr<'de, D>(deserializer: D) -> Result<Option<std::net::SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "daemon.metrics_listen `{}` is not an address:port (e.g. 127.0.0.1:9464)",
            text.escape_debug()
        ))
    })
}

impl RawEscalation {
    /// The typed section, or `None` with every problem pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<EscalationConfig> {
        let start = problems.len();
        if self.channels.is_empty() {
            problems.push(
                "[escalation] has no [[escalation.channel]]: add one, or remove the section"
                    .to_owned(),
            );
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            problems.push(format!(
                "escalation.max_attempts = {} is impossible: use 1 to 20",
                self.max_attempts
            ));
        }
        if self.first_backoff_secs == 0 || self.first_backoff_secs > self.max_backoff_secs {
            problems.push(
                "escalation.first_backoff_secs must be at least 1 and at most max_backoff_secs"
                    .to_owned(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        let mut channels = Vec::new();
        for channel in &self.channels {
            if !names.insert(channel.name.as_str()) {
                problems.push(format!(
                    "escalation channel `{}` is listed twice; names must be unique",
                    channel.name
                ));
            }
            channels.extend(channel.parse(problems));
        }
        if problems.len() > start {
            return None;
        }
        Some(EscalationConfig {
            remind_after_minutes: self.remind_after_minutes.clone(),
            max_reminders: self.max_reminders,
            max_attempts: self.max_attempts,
            first_backoff_secs: self.first_backoff_secs,
            max_backoff_secs: self.max_backoff_secs,
            channels,
        })
    }
}

impl RawChannel {
    fn parse(&self, problems: &mut Vec<String>) -> Option<ChannelConfig> {
        let start = problems.len();
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            problems.push(format!(
                "escalation channel name `{}` is invalid: use letters, digits, `-`, `_` or `.`",
                name.escape_debug()
            ));
        }
        let min_severity = match self.min_severity.as_deref() {
            None => Some(Severity::High),
            Some(text) => text.parse::<Severity>().ok().or_else(|| {
                problems.push(format!(
                    "escalation channel `{name}`: min_severity `{}` is unknown (use low, medium, high or critical)",
                    text.escape_debug()
                ));
                None
            }),
        };
        let kind = self.kind(problems);
        if problems.len() > start {
            return None;
        }
        Some(ChannelConfig {
            name: name.clone(),
            min_severity: min_severity?,
            kind: kind?,
        })
    }

    fn kind(&self, problems: &mut Vec<String>) -> Option<ChannelKind> {
        let name = &self.name;
        let need = |problems: &mut Vec<String>, field: &str, value: Option<&PathBuf>| {
            if value.is_none() {
                problems.push(format!(
                    "escalation channel `{name}` ({}): `{field}` is missing",
                    self.kind
                ));
            }
            value.cloned()
        };
        match self.kind.as_str() {
            "email" => self.email(problems).map(ChannelKind::Email),
            "slack" => Some(ChannelKind::Slack {
                url_file: need(problems, "url_file", self.url_file.as_ref())?,
            }),
            "teams" => Some(ChannelKind::Teams {
                url_file: need(problems, "url_file", self.url_file.as_ref())?,
            }),
            "pagerduty" => Some(ChannelKind::PagerDuty {
                routing_key_file: need(
                    problems,
                    "routing_key_file",
                    self.routing_key_file.as_ref(),
                )?,
                events_url: self.events_url.clone(),
            }),
            "webhook" => {
                if self.url.is_none() {
                    problems.push(format!(
                        "escalation channel `{name}` ({}): `url` is missing",
                        self.kind
                    ));
                }
                let secret_file = need(problems, "secret_file", self.secret_file.as_ref());
                let url = self.url.clone().filter(|url| {
                    let ok = url.starts_with("https://") || url.starts_with("http://");
                    if !ok {
                        problems.push(format!(
                            "escalation channel `{name}`: url `{}` is not an http(s) URL",
                            url.escape_debug()
                        ));
                    }
                    ok
                });
                Some(ChannelKind::Webhook {
                    url: url?,
                    secret_file: secret_file?,
                })
            }
            other => {
                problems.push(format!(
                    "escalation channel `{name}`: kind `{}` is unknown (use email, slack, teams, pagerduty or webhook)",
                    other.escape_debug()
                ));
                None
            }
        }
    }

    fn email(&self, problems: &mut Vec<String>) -> Option<EmailConfig> {
        let name = &self.name;
        let missing = |field: &str| {
            format!(
                "escalation channel `{name}` ({}): `{field}` is missing",
                self.kind
            )
        };
        if self.server.is_none() {
            problems.push(missing("server"));
        }
        if self.from.is_none() {
            problems.push(missing("from"));
        }
        if self.to.is_empty() {
            problems.push(missing("to"));
        }
        let security = match self.security.as_deref() {
            None | Some("starttls") => Some(EmailSecurity::StartTls),
            Some("tls") => Some(EmailSecurity::Tls),
            Some("none") => Some(EmailSecurity::None),
            Some(other) => {
                problems.push(format!(
                    "escalation channel `{name}`: security `{}` is unknown (use starttls, tls, or none for a relay on this machine)",
                    other.escape_debug()
                ));
                None
            }
        };
        let login = match (&self.username, &self.password_file) {
            (None, None) => Some(None),
            (Some(username), Some(password_file)) => Some(Some(EmailLogin {
                username: username.clone(),
                password_file: password_file.clone(),
            })),
            _ => {
                problems.push(format!(
                    "escalation channel `{name}`: give both `username` and `password_file`, or neither"
                ));
                None
            }
        };
        Some(EmailConfig {
            server: self.server.clone()?,
            port: self.port.unwrap_or(587),
            security: security?,
            from: self.from.clone()?,
            to: self.to.clone(),
            login: login?,
            ca_file: self.ca_file.clone(),
        })
    }
}

fn default_export_roots() -> Vec<PathBuf> {
    vec![PathBuf::from("/media"), PathBuf::from("/run/media")]
}

fn default_update_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/osiris-update")
}

fn default_claim_url() -> String {
    "https://portal.osiriscare.net/claim".to_owned()
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/osiris/api.sock")
}
const fn default_server_scan() -> u64 {
    300
}
const fn default_workstation_scan() -> u64 {
    600
}
const fn default_discovery() -> u64 {
    3600
}
const fn default_cloud_scan() -> u64 {
    3600
}
const fn default_rmm_import() -> u64 {
    21_600
}
const fn default_anchor() -> u64 {
    3600
}
const fn default_checkpoint() -> u64 {
    900
}
const fn default_drift_rescan() -> u64 {
    60
}
const fn default_jitter() -> u8 {
    10
}
const fn default_console_lock() -> u64 {
    300
}
const fn default_drain() -> u64 {
    30
}
const fn default_max_reminders() -> u32 {
    3
}
const fn default_max_attempts() -> u32 {
    5
}
const fn default_first_backoff() -> u64 {
    2
}
const fn default_max_backoff() -> u64 {
    300
}

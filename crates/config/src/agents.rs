//! `[agents]`: the gateway endpoint agents connect to (off unless the table is present).

use std::net::SocketAddr;

use serde::Deserialize;

/// The agent gateway, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentsConfig {
    /// Where the gateway listens, e.g. `0.0.0.0:7443`.
    pub listen: SocketAddr,
    /// What agents are told to connect to (`host:port`, printed by `osiris agent token create`);
    /// none: the listen address, or the appliance's first address when that is unspecified.
    pub advertise: Option<String>,
    /// How long a client certificate is valid (hours); renewed over the stream after half.
    pub certificate_hours: u32,
    /// How often agents send a heartbeat (seconds).
    pub heartbeat_secs: u32,
    /// How often agents run each check (seconds).
    pub check_secs: u32,
    /// How often agents send every result even when unchanged (hours).
    pub full_report_hours: u32,
    /// The agents' offline queue: most items, most MiB, oldest item in hours.
    pub queue_items: u64,
    pub queue_mib: u64,
    pub queue_hours: u32,
    /// How long an agent's last results keep its host off the WinRM workstation cycle (minutes).
    pub fresh_minutes: u32,
    /// Enrollment attempts per minute from one address.
    pub enroll_per_minute: u32,
    /// The vendor's agent root (a signed JSON file, docs/AGENT-UPDATES.md) that releases must
    /// chain to; none: no agent releases are offered.
    pub release_root: Option<std::path::PathBuf>,
    /// The checks agents run (runbook IDs of any platform; each agent runs those of its own);
    /// empty: every check of the catalogue for the agent's platform.
    pub checks: Vec<String>,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgents {
    listen: String,
    #[serde(default)]
    advertise: Option<String>,
    #[serde(default = "default_certificate_hours")]
    certificate_hours: u32,
    #[serde(default = "default_heartbeat")]
    heartbeat_secs: u32,
    #[serde(default = "default_check")]
    check_secs: u32,
    #[serde(default = "default_full_report")]
    full_report_hours: u32,
    #[serde(default = "default_queue_items")]
    queue_items: u64,
    #[serde(default = "default_queue_mib")]
    queue_mib: u64,
    #[serde(default = "default_queue_hours")]
    queue_hours: u32,
    #[serde(default = "default_fresh")]
    fresh_minutes: u32,
    #[serde(default = "default_enroll")]
    enroll_per_minute: u32,
    #[serde(default)]
    release_root: Option<std::path::PathBuf>,
    #[serde(default)]
    checks: Vec<String>,
}

const fn default_certificate_hours() -> u32 {
    7 * 24
}
const fn default_heartbeat() -> u32 {
    60
}
const fn default_check() -> u32 {
    900
}
const fn default_full_report() -> u32 {
    24
}
const fn default_queue_items() -> u64 {
    100_000
}
const fn default_queue_mib() -> u64 {
    64
}
const fn default_queue_hours() -> u32 {
    30 * 24
}
const fn default_fresh() -> u32 {
    120
}
const fn default_enroll() -> u32 {
    120
}

impl RawAgents {
    /// The typed section, or `None` with every problem pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<AgentsConfig> {
        let before = problems.len();
        let listen = match self.listen.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.push(format!(
                    "agents.listen `{}` is not an address and port such as `0.0.0.0:7443`",
                    self.listen.escape_debug()
                ));
                None
            }
        };
        if let Some(advertise) = &self.advertise {
            let ok = advertise.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
            });
            if !ok {
                problems.push(format!(
                    "agents.advertise `{}` must be `host:port` (a DNS name or IP address the agents can reach)",
                    advertise.escape_debug()
                ));
            }
        }
        let mut range = |name: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                problems.push(format!(
                    "agents.{name} = {value} is out of range {min}..={max}"
                ));
            }
        };
        range(
            "certificate_hours",
            self.certificate_hours.into(),
            1,
            90 * 24,
        );
        range("heartbeat_secs", self.heartbeat_secs.into(), 10, 3_600);
        range("check_secs", self.check_secs.into(), 60, 7 * 24 * 3_600);
        range(
            "full_report_hours",
            self.full_report_hours.into(),
            1,
            7 * 24,
        );
        range("queue_items", self.queue_items, 16, 1_000_000);
        range("queue_mib", self.queue_mib, 1, 1_024);
        range("queue_hours", self.queue_hours.into(), 1, 90 * 24);
        range("fresh_minutes", self.fresh_minutes.into(), 5, 7 * 24 * 60);
        range(
            "enroll_per_minute",
            self.enroll_per_minute.into(),
            1,
            100_000,
        );
        (problems.len() == before).then(|| AgentsConfig {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            advertise: self.advertise.clone(),
            certificate_hours: self.certificate_hours,
            heartbeat_secs: self.heartbeat_secs,
            check_secs: self.check_secs,
            full_report_hours: self.full_report_hours,
            queue_items: self.queue_items,
            queue_mib: self.queue_mib,
            queue_hours: self.queue_hours,
            fresh_minutes: self.fresh_minutes,
            enroll_per_minute: self.enroll_per_minute,
            release_root: self.release_root.clone(),
            checks: self.checks.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn agents_settings_have_defaults_and_every_problem_is_named() {
        let config = crate::parse(
            "site.toml",
            "site = \"lab\"\n[agents]\nlisten = \"0.0.0.0:7443\"\n",
        )
        .unwrap();
        let agents = config.agents.unwrap();
        assert_eq!(agents.listen.port(), 7443);
        assert_eq!(
            (
                agents.heartbeat_secs,
                agents.certificate_hours,
                agents.fresh_minutes
            ),
            (60, 168, 120)
        );
        let err = crate::parse("site.toml", "site = \"lab\"\n[agents]\nlisten = \"everywhere\"\nadvertise = \"bad host:1\"\nheartbeat_secs = 1\nqueue_mib = 0\nsurprise = 1\n")
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `surprise`"), "{err}");
        let err = crate::parse("site.toml", "site = \"lab\"\n[agents]\nlisten = \"everywhere\"\nadvertise = \"bad host:1\"\nheartbeat_secs = 1\nqueue_mib = 0\n")
        .unwrap_err()
        .to_string();
        for expected in [
            "agents.listen `everywhere` is not an address",
            "agents.advertise `bad host:1` must be `host:port`",
            "agents.heartbeat_secs = 1 is out of range 10..=3600",
            "agents.queue_mib = 0 is out of range 1..=1024",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
    }
}

//! Appliance and CLI configuration: the TOML schema, its defaults, and validation.
//!
//! One format serves `osiris` and (later) `osirisd`. The file says *what* to scan and where
//! evidence goes; it never holds secrets, only paths to credential files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use model::{ParamValue, Platform};

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
    /// Per-runbook parameter overrides: `[checks.LIN-DISK-001] threshold_percent = 95`.
    #[serde(default)]
    pub checks: BTreeMap<String, BTreeMap<String, toml::Value>>,
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

/// One machine to scan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Display name; unique within the file.
    pub name: String,
    /// `linux`, `windows-server`, `windows-workstation` or `macos`.
    pub platform: String,
    /// How to reach it: `local` (the machine osiris runs on).
    pub transport: String,
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
            targets: default_targets(),
            checks: BTreeMap::new(),
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
            if target.transport != "local" {
                problems.push(format!(
                    "target `{}`: transport `{}` is not available in this version (available: local)",
                    target.name, target.transport
                ));
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
    }]
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
                site.toml: target `a`: transport `ssh` is not available in this version (available: local)
                site.toml: target `a` is listed twice; names must be unique
                site.toml: target `a`: unknown platform `windoze` (known: linux, windows-server, windows-workstation, macos)
                site.toml: evidence.calendars: `ftp://x` is not an http(s) URL
                site.toml: checks.LIN-DISK-001.threshold_percent: float values are not accepted; use an integer, boolean or string"#]],
        );
    }

    #[test]
    fn embedded_default_is_valid() {
        assert!(Config::embedded_default().problems().is_empty());
    }
}

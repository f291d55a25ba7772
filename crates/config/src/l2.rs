//! `[l2]`: the LLM planner (off unless `mode` says otherwise): provider, endpoint, model, where
//! the API key comes from (a vault entry or a 0600 file, never the key itself), prices per model,
//! the daily budget, the rate limit, the circuit breaker, the confidence floor and dry-run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Where L2 plans are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L2Mode {
    /// No L2: failed checks without an L1 fix go to a person.
    Off,
    /// The appliance calls the provider itself.
    Local,
    /// The appliance sends the scrubbed request to Central Command's `POST /v1/l2/plan`
    /// (docs/L2.md), which holds the key; the endpoint is that server.
    Remote,
}

/// The API the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L2Provider {
    Anthropic,
    /// OpenAI Chat Completions and compatible servers (Azure OpenAI, vLLM, Ollama, llama.cpp).
    Openai,
}

/// Where the API key is read from at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L2Key {
    /// An entry of the credential vault.
    Vault(String),
    /// A file of mode 0600 holding only the key.
    File(PathBuf),
    /// No key: a local model server on loopback that wants none.
    None,
}

/// A model's prices, in millionths of a US dollar per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Price {
    pub input_micro_usd_per_mtok: u64,
    pub output_micro_usd_per_mtok: u64,
}

/// The planner, typed (present only when `mode` is not `off`).
#[derive(Debug, Clone, PartialEq)]
pub struct L2Config {
    pub mode: L2Mode,
    pub provider: L2Provider,
    /// Base URL as the official SDKs take it (`https://api.anthropic.com`,
    /// `https://api.openai.com/v1`); `http://` only to loopback.
    pub endpoint: String,
    pub model: String,
    pub key: L2Key,
    /// The price of `model`.
    pub price: L2Price,
    /// Most output tokens per consultation.
    pub max_tokens: u32,
    pub timeout_secs: u64,
    /// Plans below this confidence escalate.
    pub confidence_floor: f64,
    /// Runbooks that need a person's approval besides those the catalogue marks.
    pub approval_required: Vec<String>,
    pub dry_run: bool,
    pub daily_token_budget: u64,
    /// Millionths of a US dollar per UTC day.
    pub daily_budget_micro_usd: u64,
    pub max_per_hour: u32,
    pub breaker_failures: u32,
    pub breaker_cooldown_minutes: u32,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawL2 {
    /// `off` (default), `local` or `remote`.
    #[serde(default = "default_mode")]
    mode: L2Mode,
    /// `anthropic` or `openai`.
    #[serde(default)]
    provider: Option<L2Provider>,
    /// The provider's base URL.
    #[serde(default)]
    endpoint: Option<String>,
    /// The model name the provider knows.
    #[serde(default)]
    model: Option<String>,
    /// A vault entry holding the API key (`osiris credentials set NAME`).
    #[serde(default)]
    credential: Option<String>,
    /// A 0600 file holding only the API key.
    #[serde(default)]
    api_key_file: Option<PathBuf>,
    /// Prices per model: `[l2.prices."model"] input_usd_per_mtok = 3.0`.
    #[serde(default)]
    prices: BTreeMap<String, RawPrice>,
    /// Most output tokens per consultation.
    #[serde(default = "default_max_tokens")]
    max_tokens: u32,
    /// Seconds per attempt.
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// 0 to 1.
    #[serde(default = "default_floor")]
    confidence_floor: f64,
    /// Runbook IDs that always need a person's approval.
    #[serde(default)]
    approval_required: Vec<String>,
    /// Decide and record, never run.
    #[serde(default)]
    dry_run: bool,
    /// Tokens per UTC day (input and output).
    #[serde(default = "default_tokens")]
    daily_token_budget: u64,
    /// US dollars per UTC day, at most 6 decimals.
    #[serde(default = "default_usd")]
    daily_budget_usd: f64,
    /// Consultations per hour.
    #[serde(default = "default_per_hour")]
    max_per_hour: u32,
    /// Failures in a row before the breaker opens.
    #[serde(default = "default_breaker")]
    breaker_failures: u32,
    /// Minutes the breaker stays open.
    #[serde(default = "default_breaker_minutes")]
    breaker_cooldown_minutes: u32,
}

/// One model's prices as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrice {
    /// US dollars per million input tokens.
    input_usd_per_mtok: f64,
    /// US dollars per million output tokens.
    output_usd_per_mtok: f64,
}

const fn default_mode() -> L2Mode {
    L2Mode::Off
}
const fn default_max_tokens() -> u32 {
    1024
}
const fn default_timeout() -> u64 {
    60
}
const fn default_floor() -> f64 {
    0.7
}
const fn default_tokens() -> u64 {
    200_000
}
const fn default_usd() -> f64 {
    2.0
}
const fn default_per_hour() -> u32 {
    20
}
const fn default_breaker() -> u32 {
    3
}
const fn default_breaker_minutes() -> u32 {
    60
}

impl RawL2 {
    /// `None` when off or when a problem was pushed.
    pub(crate) fn parse(&self, problems: &mut Vec<String>) -> Option<L2Config> {
        if self.mode == L2Mode::Off {
            return None;
        }
        let before = problems.len();
        let mut require = |value: Option<&str>, field: &str, what: &str| -> String {
            match value.map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => v.to_owned(),
                None => {
                    problems.push(format!(
                        "l2.{field} is required when l2.mode is not \"off\": {what}"
                    ));
                    String::new()
                }
            }
        };
        let endpoint = require(
            self.endpoint.as_deref(),
            "endpoint",
            "set the provider's base URL, e.g. \"https://api.anthropic.com\"",
        );
        let model = require(
            self.model.as_deref(),
            "model",
            "set the model name the provider knows",
        );
        let provider = self.provider.unwrap_or_else(|| {
            problems.push(
                "l2.provider is required when l2.mode is not \"off\": \"anthropic\" or \"openai\""
                    .to_owned(),
            );
            L2Provider::Anthropic
        });
        let loopback = endpoint_problem(&endpoint, problems);
        let key = match (&self.credential, &self.api_key_file) {
            (Some(_), Some(_)) => {
                problems.push("l2: set either credential or api_key_file, not both".to_owned());
                L2Key::None
            }
            (Some(name), None) => L2Key::Vault(name.clone()),
            (None, Some(path)) => {
                if !path.is_absolute() {
                    problems.push(format!(
                        "l2.api_key_file `{}` must be an absolute path (a 0600 file holding only the key)",
                        path.display()
                    ));
                }
                L2Key::File(path.clone())
            }
            (None, None) if loopback => L2Key::None,
            (None, None) => {
                problems.push("l2: an endpoint off this machine needs credential = \"NAME\" (a vault entry) or api_key_file; the key itself never goes into the configuration".to_owned());
                L2Key::None
            }
        };
        let price = match self.prices.get(&model) {
            Some(raw) => {
                let input = usd_to_micro(
                    raw.input_usd_per_mtok,
                    &format!("l2.prices.\"{model}\".input_usd_per_mtok"),
                    problems,
                );
                let output = usd_to_micro(
                    raw.output_usd_per_mtok,
                    &format!("l2.prices.\"{model}\".output_usd_per_mtok"),
                    problems,
                );
                L2Price {
                    input_micro_usd_per_mtok: input,
                    output_micro_usd_per_mtok: output,
                }
            }
            None => {
                if !model.is_empty() {
                    problems.push(format!(
                        "l2.prices has no entry for model `{model}`: add [l2.prices.\"{model}\"] with input_usd_per_mtok and output_usd_per_mtok (0 for a local model), so the budget can be enforced"
                    ));
                }
                L2Price {
                    input_micro_usd_per_mtok: 0,
                    output_micro_usd_per_mtok: 0,
                }
            }
        };
        if !(0.0..=1.0).contains(&self.confidence_floor) {
            problems.push(format!(
                "l2.confidence_floor = {} is out of range 0..=1",
                self.confidence_floor
            ));
        }
        if !(16..=32_768).contains(&self.max_tokens) {
            problems.push(format!(
                "l2.max_tokens = {} is out of range 16..=32768",
                self.max_tokens
            ));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            problems.push(format!(
                "l2.timeout_secs = {} is out of range 1..=600",
                self.timeout_secs
            ));
        }
        if self.daily_token_budget == 0
            || self.max_per_hour == 0
            || self.breaker_cooldown_minutes == 0
        {
            problems.push("l2: daily_token_budget, max_per_hour and breaker_cooldown_minutes must be at least 1 (set mode = \"off\" to disable L2)".to_owned());
        }
        let daily = usd_to_micro(self.daily_budget_usd, "l2.daily_budget_usd", problems);
        (problems.len() == before).then(|| L2Config {
            mode: self.mode,
            provider,
            endpoint,
            model,
            key,
            price,
            max_tokens: self.max_tokens,
            timeout_secs: self.timeout_secs,
            confidence_floor: self.confidence_floor,
            approval_required: self.approval_required.clone(),
            dry_run: self.dry_run,
            daily_token_budget: self.daily_token_budget,
            daily_budget_micro_usd: daily,
            max_per_hour: self.max_per_hour,
            breaker_failures: self.breaker_failures,
            breaker_cooldown_minutes: self.breaker_cooldown_minutes,
        })
    }
}

/// Whether the endpoint is on loopback; pushes a problem when it is not https:// or loopback
/// http://, or carries a user name, password or query (where a key might hide).
fn endpoint_problem(endpoint: &str, problems: &mut Vec<String>) -> bool {
    if endpoint.is_empty() {
        return false;
    }
    let (scheme, rest) = match endpoint.split_once("://") {
        Some(parts) => parts,
        None => {
            problems.push(format!(
                "l2.endpoint `{endpoint}` is not a URL: use https://HOST[/PATH]"
            ));
            return false;
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || endpoint.contains('?') {
        problems.push(format!(
            "l2.endpoint `{endpoint}` must not carry a user name, password or query: the key goes in credential or api_key_file"
        ));
        return false;
    }
    let host = authority
        .strip_prefix('[')
        .and_then(|h| h.split(']').next())
        .unwrap_or_else(|| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" if !host.is_empty() => loopback,
        "http" if loopback => true,
        _ => {
            problems.push(format!(
                "l2.endpoint `{endpoint}` must be https:// (plain http:// only to a model server on this machine's loopback)"
            ));
            false
        }
    }
}

/// Dollars (at most 6 decimals, not negative) as millionths.
fn usd_to_micro(usd: f64, field: &str, problems: &mut Vec<String>) -> u64 {
    let micro = (usd * 1_000_000.0).round();
    if !usd.is_finite() || usd < 0.0 || micro > 1e15 || (usd * 1_000_000.0 - micro).abs() > 1e-6 {
        problems.push(format!(
            "{field} = {usd} must be a dollar amount from 0 with at most 6 decimals"
        ));
        return 0;
    }
    micro as u64
}

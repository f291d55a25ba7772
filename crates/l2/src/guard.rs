//! Guardrails, deterministic and outside the model: what an answer must be to run (one tool call
//! naming a registered runbook of the platform, parameters of the declared types without shell
//! metacharacters, a confidence above the floor, a person's approval for high-risk runbooks,
//! dry-run), and the site's limits around every call (daily budget in tokens and money, exact to
//! the token; calls per hour; a circuit breaker after repeated failures). Time is an argument.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use model::{ParamSpec, ParamType, ParamValue, Runbook};

use crate::reply::{ParsedReply, Usage};
use crate::request::{ESCALATE_TOOL, PLAN_TOOL, Prepared};

/// Prices of one model, in millionths of a US dollar per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_micro_usd_per_mtok: u64,
    pub output_micro_usd_per_mtok: u64,
}

/// A site's daily limits (UTC days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub daily_tokens: u64,
    pub daily_micro_usd: u64,
}

/// The guardrails' settings. No `Default`: the configuration states them.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardSettings {
    /// Plans below this confidence escalate.
    pub confidence_floor: f64,
    /// Runbooks that need a person's approval besides those the catalogue marks (`auto_heal =
    /// false`).
    pub approval_required: Vec<String>,
    /// Decide and record, run nothing.
    pub dry_run: bool,
    pub budget: Budget,
    pub price: Price,
    /// Consultations allowed per site per hour.
    pub max_per_hour: u32,
    /// After this many failures in a row (provider errors, rejected plans, fixes that did not
    /// verify), no consultation for `breaker_cooldown_secs`.
    pub breaker_failures: u32,
    pub breaker_cooldown_secs: i64,
}

/// The site's running state: spending today, recent calls, the breaker.
#[derive(Debug, Clone)]
pub struct Guard {
    settings: GuardSettings,
    day: i64,
    tokens_today: u64,
    /// Trillionths of a dollar: a token times a price in micro-dollars per million tokens.
    pico_usd_today: u128,
    calls: Vec<i64>,
    failures_in_a_row: u32,
    open_until: Option<i64>,
}

/// What a consultation was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub pico_usd: u128,
    /// The provider did not report usage (a cut-off answer): the reserved worst case was charged.
    pub estimated: bool,
}

/// A reservation made before a call, charged after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    input_tokens: u64,
    output_tokens: u64,
}

/// A plan that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub runbook: String,
    /// The parameters the model set, pseudonyms mapped back, validated.
    pub params: BTreeMap<String, ParamValue>,
    pub confidence: f64,
    /// The model's reason, pseudonyms mapped back where known.
    pub rationale: String,
}

/// What happens with an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it.
    Accept(Plan),
    /// Valid, but the runbook is high-risk: a person approves it first.
    NeedsApproval(Plan),
    /// Valid; dry-run mode records it and runs nothing.
    DryRun { plan: Plan, needs_approval: bool },
    /// Hand the incident to a person, with the reason.
    Escalate(Rejection),
}

/// Why no plan runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rejection {
    /// The model wrote prose instead of calling a tool.
    NoToolCall { text: String },
    /// More than one tool call.
    SeveralToolCalls(usize),
    /// A tool that was not offered.
    UnknownTool(String),
    /// The answer stopped at the output limit.
    CutOff,
    /// The tool input is not the declared object.
    BadInput(String),
    /// A runbook that is not registered for this platform (or has no remediation).
    UnregisteredRunbook(String),
    /// A parameter the runbook does not declare, of the wrong type, or out of range.
    BadParam(String),
    /// A parameter value with shell metacharacters its type does not allow.
    ShellMetacharacters { name: String, value: String },
    /// Below the confidence floor.
    LowConfidence { confidence: f64, floor: f64 },
    /// The model itself asked for a person.
    ModelEscalated(String),
    /// Today's budget cannot cover the worst case of another call.
    BudgetExhausted(String),
    /// Too many consultations this hour.
    RateLimited { max_per_hour: u32 },
    /// Repeated failures: no consultation until then (Unix seconds).
    BreakerOpen { until: i64 },
    /// The provider could not be reached or refused.
    Provider(String),
}

/// Characters never accepted in a free-text or path parameter from a model.
pub const SHELL_METACHARACTERS: &[char] = &[
    ';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '[', ']', '\\', '\'', '"', '*', '?',
    '!', '~', '#', '\n', '\r', '\t',
];

impl Guard {
    pub fn new(settings: GuardSettings) -> Guard {
        Guard {
            settings,
            day: i64::MIN,
            tokens_today: 0,
            pico_usd_today: 0,
            calls: Vec::new(),
            failures_in_a_row: 0,
            open_until: None,
        }
    }

    pub fn settings(&self) -> &GuardSettings {
        &self.settings
    }

    /// Checks the breaker, the rate limit and the budget against the request's worst case
    /// before a call, and reserves it; the call may go ahead only on `Ok`.
    pub fn admit(&mut self, prepared: &Prepared, now: i64) -> Result<Reservation, Rejection> {
        self.roll_day(now);
        if let Some(until) = self.open_until.filter(|until| now < *until) {
            return Err(Rejection::BreakerOpen { until });
        }
        self.calls.retain(|at| now - at < 3600);
        if self.calls.len() >= self.settings.max_per_hour as usize {
            return Err(Rejection::RateLimited {
                max_per_hour: self.settings.max_per_hour,
            });
        }
        let (input_tokens, output_tokens) = prepared.worst_case_tokens();
        let tokens = input_tokens + output_tokens;
        let cost = self.cost(input_tokens, output_tokens);
        let budget = self.settings.budget;
        if self.tokens_today + tokens > budget.daily_tokens {
            return Err(Rejection::BudgetExhausted(format!(
                "{} of {} tokens used today; this request may need up to {tokens}",
                self.tokens_today, budget.daily_tokens
            )));
        }
        let daily_pico = u128::from(budget.daily_micro_usd) * 1_000_000;
        if self.pico_usd_today + cost > daily_pico {
            return Err(Rejection::BudgetExhausted(format!(
                "{} of {} spent today; this request may cost up to {}",
                money_words(self.pico_usd_today),
                money_words(daily_pico),
                money_words(cost)
            )));
        }
        self.calls.push(now);
        Ok(Reservation {
            input_tokens,
            output_tokens,
        })
    }

    /// Charges what the provider reported (never more than reserved: a provider that reports
    /// more is charged its report, and the excess is visible in evidence), or the reservation
    /// when it reported nothing.
    pub fn charge(&mut self, reservation: Reservation, usage: Option<Usage>, now: i64) -> Charge {
        self.roll_day(now);
        let (input_tokens, output_tokens, estimated) = match usage {
            Some(u) => (u.input_tokens, u.output_tokens, false),
            None => (reservation.input_tokens, reservation.output_tokens, true),
        };
        let pico_usd = self.cost(input_tokens, output_tokens);
        self.tokens_today += input_tokens + output_tokens;
        self.pico_usd_today += pico_usd;
        Charge {
            input_tokens,
            output_tokens,
            pico_usd,
            estimated,
        }
    }

    /// Records whether a consultation ended well (a plan that ran and verified, or a valid plan
    /// held for approval or dry-run) or not, for the breaker.
    pub fn record_outcome(&mut self, success: bool, now: i64) {
        if success {
            self.failures_in_a_row = 0;
            self.open_until = None;
            return;
        }
        self.failures_in_a_row += 1;
        if self.settings.breaker_failures > 0
            && self.failures_in_a_row >= self.settings.breaker_failures
        {
            self.open_until = Some(now + self.settings.breaker_cooldown_secs);
        }
    }

    /// Tokens and trillionths of a dollar spent on the UTC day of `now`.
    pub fn spent(&self, now: i64) -> (u64, u128) {
        if now.div_euclid(86_400) == self.day {
            (self.tokens_today, self.pico_usd_today)
        } else {
            (0, 0)
        }
    }

    /// The spending to persist across restarts: the UTC day number (Unix days), tokens and
    /// trillionths of a dollar spent on it.
    pub fn spending(&self) -> (i64, u64, u128) {
        (self.day, self.tokens_today, self.pico_usd_today)
    }

    /// Restores spending saved by [`Guard::spending`] (ignored when `day` is not today's).
    pub fn restore_spending(&mut self, day: i64, tokens: u64, pico_usd: u128, now: i64) {
        self.roll_day(now);
        if day == self.day {
            self.tokens_today = tokens;
            self.pico_usd_today = pico_usd;
        }
    }

    fn cost(&self, input_tokens: u64, output_tokens: u64) -> u128 {
        let price = self.settings.price;
        u128::from(input_tokens) * u128::from(price.input_micro_usd_per_mtok)
            + u128::from(output_tokens) * u128::from(price.output_micro_usd_per_mtok)
    }

    fn roll_day(&mut self, now: i64) {
        let day = now.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            self.tokens_today = 0;
            self.pico_usd_today = 0;
        }
    }
}

/// Trillionths of a dollar in words: `$0.012345`.
pub fn money_words(pico_usd: u128) -> String {
    let micro = pico_usd.div_ceil(1_000_000);
    format!("${}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

/// Judges an answer: one tool call, to a registered runbook, with valid parameters and enough
/// confidence; then approval and dry-run. `checks` gets one line per guardrail, for evidence.
pub fn judge_reply(
    reply: &ParsedReply,
    prepared: &Prepared,
    runbooks: &[&Runbook],
    settings: &GuardSettings,
    checks: &mut Vec<String>,
) -> Verdict {
    match judge(reply, prepared, runbooks, settings, checks) {
        Ok(verdict) => verdict,
        Err(rejection) => {
            checks.push(format!("rejected: {rejection}"));
            Verdict::Escalate(rejection)
        }
    }
}

fn judge(
    reply: &ParsedReply,
    prepared: &Prepared,
    runbooks: &[&Runbook],
    settings: &GuardSettings,
    checks: &mut Vec<String>,
) -> Result<Verdict, Rejection> {
    let call = match reply.tool_calls.as_slice() {
        [] if reply.stop_reason == "max_tokens" || reply.stop_reason == "length" => {
            return Err(Rejection::CutOff);
        }
        [] => {
            return Err(Rejection::NoToolCall {
                text: reply.text.chars().take(300).collect(),
            });
        }
        [call] => call,
        calls => return Err(Rejection::SeveralToolCalls(calls.len())),
    };
    checks.push(format!("one tool call: {}", call.name));
    let input = call
        .input
        .as_ref()
        .map_err(|e| Rejection::BadInput(e.clone()))?;
    let Value::Object(input) = input else {
        return Err(Rejection::BadInput(
            "the tool input is not an object".to_owned(),
        ));
    };
    if call.name == ESCALATE_TOOL {
        let reason = input
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(Rejection::ModelEscalated(
            prepared.scrubber.restore_lossy(reason),
        ));
    }
    if call.name != PLAN_TOOL {
        return Err(Rejection::UnknownTool(call.name.clone()));
    }
    if let Some(extra) = input
        .keys()
        .find(|k| !["runbook_id", "params", "confidence", "rationale"].contains(&k.as_str()))
    {
        return Err(Rejection::BadInput(format!("unexpected field `{extra}`")));
    }
    let id = input
        .get("runbook_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Rejection::BadInput("`runbook_id` is missing or not a string".to_owned()))?;
    let runbook = runbooks
        .iter()
        .find(|rb| rb.id == id)
        .filter(|_| prepared.offered.iter().any(|offered| offered == id))
        .ok_or_else(|| Rejection::UnregisteredRunbook(id.chars().take(80).collect()))?;
    checks.push(format!("registered runbook for the platform: {id}"));
    let params = match input.get("params") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(params)) => validate_params(runbook, params, prepared)?,
        Some(_) => return Err(Rejection::BadInput("`params` is not an object".to_owned())),
    };
    checks.push(format!(
        "parameters valid for their declared types: {}",
        if params.is_empty() {
            "none set".to_owned()
        } else {
            params.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    ));
    let confidence = input
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or_else(|| {
            Rejection::BadInput("`confidence` must be a number from 0 to 1".to_owned())
        })?;
    if confidence < settings.confidence_floor {
        return Err(Rejection::LowConfidence {
            confidence,
            floor: settings.confidence_floor,
        });
    }
    checks.push(format!(
        "confidence {confidence} ≥ floor {}",
        settings.confidence_floor
    ));
    let rationale = input
        .get("rationale")
        .and_then(Value::as_str)
        .map(|r| prepared.scrubber.restore_lossy(r))
        .unwrap_or_default();
    let plan = Plan {
        runbook: runbook.id.clone(),
        params,
        confidence,
        rationale,
    };
    let needs_approval =
        !runbook.auto_heal || settings.approval_required.iter().any(|r| r == &runbook.id);
    checks.push(format!(
        "approval: {}",
        if needs_approval {
            "required (high-risk runbook)"
        } else {
            "not required"
        }
    ));
    if settings.dry_run {
        checks.push("dry run: nothing runs".to_owned());
        return Ok(Verdict::DryRun {
            plan,
            needs_approval,
        });
    }
    if needs_approval {
        return Ok(Verdict::NeedsApproval(plan));
    }
    Ok(Verdict::Accept(plan))
}

fn validate_params(
    runbook: &Runbook,
    params: &serde_json::Map<String, Value>,
    prepared: &Prepared,
) -> Result<BTreeMap<String, ParamValue>, Rejection> {
    let mut out = BTreeMap::new();
    for (name, value) in params {
        let spec = runbook
            .params
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| {
                Rejection::BadParam(format!(
                    "{} declares no parameter `{}`",
                    runbook.id,
                    name.chars().take(60).collect::<String>()
                ))
            })?;
        if value.is_null() {
            continue;
        }
        let typed = typed_value(spec, value, prepared)?;
        spec.check(&typed)
            .map_err(|err| Rejection::BadParam(format!("{}: {err}", runbook.id)))?;
        out.insert(name.clone(), typed);
    }
    model::resolve_params(&runbook.params, &out)
        .map_err(|err| Rejection::BadParam(format!("{}: {err}", runbook.id)))?;
    Ok(out)
}

fn typed_value(
    spec: &ParamSpec,
    value: &Value,
    prepared: &Prepared,
) -> Result<ParamValue, Rejection> {
    let wrong = || {
        Rejection::BadParam(format!(
            "parameter `{}` must be {}, got {}",
            spec.name,
            spec.ty,
            json_type(value)
        ))
    };
    match &spec.ty {
        ParamType::Integer { .. } => value.as_i64().map(ParamValue::Integer).ok_or_else(wrong),
        ParamType::Boolean => value.as_bool().map(ParamValue::Boolean).ok_or_else(wrong),
        ParamType::String { .. } | ParamType::Path | ParamType::Enum { .. } => {
            let text = value.as_str().ok_or_else(wrong)?;
            let restored = prepared
                .scrubber
                .restore(text)
                .map_err(|err| Rejection::BadParam(format!("parameter `{}`: {err}", spec.name)))?;
            let free_text = !matches!(spec.ty, ParamType::Enum { .. });
            if free_text && restored.contains(SHELL_METACHARACTERS) {
                return Err(Rejection::ShellMetacharacters {
                    name: spec.name.clone(),
                    value: text.chars().take(120).collect(),
                });
            }
            Ok(ParamValue::Text(restored))
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoToolCall { text } => write!(
                f,
                "the model answered in prose instead of choosing a runbook: {text:?}"
            ),
            Rejection::SeveralToolCalls(n) => {
                write!(f, "the model made {n} tool calls; exactly one is accepted")
            }
            Rejection::UnknownTool(name) => write!(f, "the model called an unknown tool `{name}`"),
            Rejection::CutOff => write!(
                f,
                "the model's answer stopped at the output token limit before a tool call"
            ),
            Rejection::BadInput(problem) => write!(f, "the plan is malformed: {problem}"),
            Rejection::UnregisteredRunbook(id) => write!(
                f,
                "the model named `{id}`, which is not a registered runbook with a remediation for this platform"
            ),
            Rejection::BadParam(problem) => write!(f, "invalid parameter: {problem}"),
            Rejection::ShellMetacharacters { name, value } => write!(
                f,
                "parameter `{name}` contains shell metacharacters ({value:?}); runbook parameters are data, never commands"
            ),
            Rejection::LowConfidence { confidence, floor } => write!(
                f,
                "the model's confidence {confidence} is below the floor {floor}"
            ),
            Rejection::ModelEscalated(reason) => {
                write!(f, "the model found no safe runbook: {reason}")
            }
            Rejection::BudgetExhausted(detail) => {
                write!(f, "the daily L2 budget is exhausted: {detail}")
            }
            Rejection::RateLimited { max_per_hour } => write!(
                f,
                "L2 rate limit reached ({max_per_hour} consultations per hour)"
            ),
            Rejection::BreakerOpen { until } => write!(
                f,
                "L2 circuit breaker open after repeated failures, until {until} (Unix time)"
            ),
            Rejection::Provider(problem) => write!(f, "the model provider failed: {problem}"),
        }
    }
}

impl Rejection {
    /// A short stable name for metrics and evidence.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoToolCall { .. } => "no_tool_call",
            Rejection::SeveralToolCalls(_) => "several_tool_calls",
            Rejection::UnknownTool(_) => "unknown_tool",
            Rejection::CutOff => "cut_off",
            Rejection::BadInput(_) => "bad_input",
            Rejection::UnregisteredRunbook(_) => "unregistered_runbook",
            Rejection::BadParam(_) => "bad_param",
            Rejection::ShellMetacharacters { .. } => "shell_metacharacters",
            Rejection::LowConfidence { .. } => "low_confidence",
            Rejection::ModelEscalated(_) => "model_escalated",
            Rejection::BudgetExhausted(_) => "budget_exhausted",
            Rejection::RateLimited { .. } => "rate_limited",
            Rejection::BreakerOpen { .. } => "breaker_open",
            Rejection::Provider(_) => "provider",
        }
    }
}

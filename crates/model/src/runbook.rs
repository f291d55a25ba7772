//! Runbooks: one check with its detect script, expectations, and optional remediation.

use std::fmt;
use std::time::Duration;

use crate::control::Control;
use crate::param::ParamSpec;
use crate::target::Platform;

/// A catalogue entry: detect → (remediate → verify) for one concern.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Runbook {
    /// Stable ID, e.g. `LIN-SSH-001`.
    pub id: String,
    pub title: String,
    pub description: String,
    pub platforms: Vec<Platform>,
    pub severity: Severity,
    pub controls: Vec<Control>,
    pub params: Vec<ParamSpec>,
    pub detect: Script,
    /// All must hold for the check to pass.
    pub expect: Vec<Expectation>,
    pub remediate: Option<Script>,
    pub verify: Option<Script>,
    pub rollback: Option<Script>,
    /// Whether L1 may run `remediate` without a human.
    pub auto_heal: bool,
    pub timeout: Duration,
    /// How often the check needs to run on a target while it passes; `None`: every scan.
    /// A check whose last result was not a pass (or was made with other parameters) runs at
    /// every scan regardless, and `osiris scan --all` runs everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Severity of a failed check.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// The interpreter a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Shell {
    /// POSIX `sh`.
    Sh,
    PowerShell,
    /// Not a script: a typed collector of the `cloud` crate, named by [`Script::body`], whose
    /// observation (one JSON object) the expectations judge like a detect script's output.
    Cloud,
}

/// A script with the catalogue path it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Script {
    pub shell: Shell,
    pub body: String,
    /// Catalogue-relative path, for messages.
    pub source: String,
}

/// One assertion over the detect script's JSON output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Expectation {
    /// Dot-separated path into the output object.
    pub field: String,
    pub op: ExpectOp,
    pub operand: Operand,
}

/// Comparison operators available to expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExpectOp {
    Eq,
    Ne,
    In,
    NotIn,
    Lt,
    Le,
    Gt,
    Ge,
    /// The field is an empty array, object or string.
    Empty,
}

/// The right-hand side of an expectation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Operand {
    None,
    Literal(serde_json::Value),
    /// The value of a declared parameter.
    Param(String),
}

/// A severity name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}` (known: low, medium, high, critical)")]
pub struct UnknownSeverity(pub String);

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one parser of severity names (catalogue, configuration, saved ledgers).
impl std::str::FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

impl ExpectOp {
    pub const ALL: [ExpectOp; 9] = [
        ExpectOp::Eq,
        ExpectOp::Ne,
        ExpectOp::In,
        ExpectOp::NotIn,
        ExpectOp::Lt,
        ExpectOp::Le,
        ExpectOp::Gt,
        ExpectOp::Ge,
        ExpectOp::Empty,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ExpectOp::Eq => "eq",
            ExpectOp::Ne => "ne",
            ExpectOp::In => "in",
            ExpectOp::NotIn => "not_in",
            ExpectOp::Lt => "lt",
            ExpectOp::Le => "le",
            ExpectOp::Gt => "gt",
            ExpectOp::Ge => "ge",
            ExpectOp::Empty => "empty",
        }
    }

    pub fn parse(s: &str) -> Option<ExpectOp> {
        ExpectOp::ALL.into_iter().find(|op| op.key() == s)
    }

    /// Whether the operator takes an operand.
    pub fn takes_operand(self) -> bool {
        self != ExpectOp::Empty
    }

    fn symbol(self) -> &'static str {
        match self {
            ExpectOp::Eq => "=",
            ExpectOp::Ne => "≠",
            ExpectOp::In => "in",
            ExpectOp::NotIn => "not in",
            ExpectOp::Lt => "<",
            ExpectOp::Le => "≤",
            ExpectOp::Gt => ">",
            ExpectOp::Ge => "≥",
            ExpectOp::Empty => "is empty",
        }
    }
}

impl Runbook {
    pub fn applies_to(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }
}

impl fmt::Display for ExpectOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

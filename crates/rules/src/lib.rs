//! L1 healing rules and the pure decision of what to do about one failed check.
//!
//! Facts in (the finding, the rule set, the runbook's healing facts, past attempts, the site's
//! policy, the time), a decision out. No IO, no clock, no async: the heal engine supplies all
//! of it, so every decision is reproducible in a test.

mod decide;
mod load;

pub use decide::{
    Attempt, AttemptResult, Decision, Finding, HoldReason, Policy, RunbookFacts, decide,
};
pub use load::{RuleError, embedded, embedded_with, parse};

use model::Expectation;

/// One L1 rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable ID, e.g. `L1-LIN-SSH-001`.
    pub id: String,
    /// The check whose failure this rule answers.
    pub check: String,
    /// Extra conditions on the detect output; all must hold.
    pub when: Vec<Expectation>,
    pub action: Action,
    /// Lower fires first.
    pub priority: u32,
    /// Minimum seconds between two attempts of this rule on one target.
    pub cooldown_secs: u64,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run this runbook's remediate script, then verify with its detect script.
    Remediate { runbook: String },
    /// Hand the finding to a person.
    Escalate,
}

/// A validated rule set, in firing order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

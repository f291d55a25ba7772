//! The L1 decision for one failed check: remediate, escalate, hold, or nothing to do.

use std::fmt;

use model::CheckStatus;

use crate::{Action, Rule, RuleSet};

/// One check result on one target, as the engine saw it.
#[derive(Debug, Clone, Copy)]
pub struct Finding<'a> {
    pub target: &'a str,
    pub check: &'a str,
    pub status: CheckStatus,
    pub observed: &'a serde_json::Value,
    /// The target's configuration is declarative (NixOS): report, never edit.
    pub declarative: bool,
}

/// What the catalogue says about healing with a runbook.
#[derive(Debug, Clone, Copy)]
pub struct RunbookFacts {
    pub auto_heal: bool,
}

/// A past remediation attempt (from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub rule: String,
    pub target: String,
    /// Unix seconds.
    pub at: i64,
    pub result: AttemptResult,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The remediation ran and the re-run detect passed.
    Verified,
    /// The remediation failed or did not verify.
    Failed,
}

/// Site-wide healing limits. No `Default`: the configuration states them.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Healing paused by a person (detection continues).
    pub paused: bool,
    /// Inside a maintenance window (detection continues).
    pub in_maintenance: bool,
    /// Remediations allowed per site per hour.
    pub max_per_hour: u32,
    /// A rule that verified this many times on one target within `flap_window_secs` is flapping.
    pub flap_max: u32,
    pub flap_window_secs: i64,
    /// After this many consecutive failed attempts on the site, stop for `breaker_cooldown_secs`.
    pub breaker_failures: u32,
    pub breaker_cooldown_secs: i64,
}

/// What to do about one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do: the check did not fail.
    NotFailing,
    /// No rule answers this finding; it stays open for a person (or L2, later).
    NoRule,
    Remediate {
        rule: String,
        runbook: String,
    },
    Escalate {
        rule: Option<String>,
        reason: String,
    },
    Hold {
        rule: String,
        reason: HoldReason,
    },
}

/// Why a remediation is not run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldReason {
    Paused,
    Maintenance,
    Cooldown { until: i64 },
    RateLimited { max_per_hour: u32 },
    BreakerOpen { until: i64 },
}

/// Decides what L1 does about `finding` at time `now` (Unix seconds).
///
/// `history` holds past attempts for this site (any order); `runbook_facts` looks up a runbook.
pub fn decide(
    finding: &Finding<'_>,
    rules: &RuleSet,
    runbook_facts: &dyn Fn(&str) -> Option<RunbookFacts>,
    history: &[Attempt],
    policy: &Policy,
    now: i64,
) -> Decision {
    if finding.status != CheckStatus::Fail {
        return Decision::NotFailing;
    }
    let Some(rule) = rules.rules().iter().find(|rule| matches(rule, finding)) else {
        return Decision::NoRule;
    };
    let runbook = match &rule.action {
        Action::Escalate => {
            return Decision::Escalate {
                rule: Some(rule.id.clone()),
                reason: "this finding always needs a person".to_owned(),
            };
        }
        Action::Remediate { runbook } => runbook,
    };
    if finding.declarative {
        return Decision::Escalate {
            rule: Some(rule.id.clone()),
            reason: "configuration change needed: this target is configured declaratively (NixOS), osiris does not edit it".to_owned(),
        };
    }
    match runbook_facts(runbook) {
        None => {
            return Decision::Escalate {
                rule: Some(rule.id.clone()),
                reason: format!("runbook {runbook} is not in the catalogue"),
            };
        }
        Some(facts) if !facts.auto_heal => {
            return Decision::Escalate {
                rule: Some(rule.id.clone()),
                reason: format!(
                    "automatic healing is off for {runbook}: a person must approve the fix"
                ),
            };
        }
        Some(_) => {}
    }
    let hold = |reason| Decision::Hold {
        rule: rule.id.clone(),
        reason,
    };
    if policy.paused {
        return hold(HoldReason::Paused);
    }
    if policy.in_maintenance {
        return hold(HoldReason::Maintenance);
    }
    let same = |a: &&Attempt| a.rule == rule.id && a.target == finding.target;
    let verified_recently = history
        .iter()
        .filter(same)
        .filter(|a| a.result == AttemptResult::Verified && now - a.at < policy.flap_window_secs)
        .count();
    if verified_recently >= policy.flap_max as usize {
        return Decision::Escalate {
            rule: Some(rule.id.clone()),
            reason: format!(
                "flapping: fixed {verified_recently} times in the last {} minutes and failing again; something keeps undoing the fix",
                policy.flap_window_secs / 60
            ),
        };
    }
    if let Some(last) = history.iter().filter(same).map(|a| a.at).max() {
        let until = last + i64::try_from(rule.cooldown_secs).unwrap_or(i64::MAX);
        if now < until {
            return hold(HoldReason::Cooldown { until });
        }
    }
    let mut by_time: Vec<&Attempt> = history.iter().collect();
    by_time.sort_by_key(|a| std::cmp::Reverse(a.at));
    let failures = policy.breaker_failures as usize;
    if failures > 0
        && by_time.len() >= failures
        && by_time[..failures]
            .iter()
            .all(|a| a.result == AttemptResult::Failed)
    {
        let until = by_time[0].at + policy.breaker_cooldown_secs;
        if now < until {
            return hold(HoldReason::BreakerOpen { until });
        }
    }
    let last_hour = history.iter().filter(|a| now - a.at < 3600).count();
    if last_hour >= policy.max_per_hour as usize {
        return hold(HoldReason::RateLimited {
            max_per_hour: policy.max_per_hour,
        });
    }
    Decision::Remediate {
        rule: rule.id.clone(),
        runbook: runbook.clone(),
    }
}

fn matches(rule: &Rule, finding: &Finding<'_>) -> bool {
    rule.check == finding.check && model::all_hold(&rule.when, finding.observed)
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldReason::Paused => f.write_str("healing is paused"),
            HoldReason::Maintenance => f.write_str("inside a maintenance window"),
            HoldReason::Cooldown { until } => write!(
                f,
                "cooling down until {until} (Unix time) after the last attempt"
            ),
            HoldReason::RateLimited { max_per_hour } => write!(
                f,
                "site limit of {max_per_hour} remediations per hour reached"
            ),
            HoldReason::BreakerOpen { until } => {
                write!(
                    f,
                    "circuit breaker open after consecutive failures, until {until} (Unix time)"
                )
            }
        }
    }
}

//! L1 healing of one target: for each failed check, ask `rules` what to do; to remediate, run
//! the runbook's remediate script, re-run its detect script to verify, and roll back (where the
//! runbook can) a fix that did not verify. Never two remediations on one host at once: a target's
//! findings are handled one after another over one session.

use std::time::Duration;

use model::{CheckOutcome, CheckStatus, Platform, Runbook, Script, Target};
use rules::{Attempt, AttemptResult, Decision, Finding, HoldReason, Policy, RuleSet, RunbookFacts};
use scan::powershell::Phase;
use scan::{Diagnostic, ParamOverrides, ScriptContext, TargetReport};
use transport::{Interpreter, ScriptRun, Session, Transport};

/// What healing needs besides the target.
#[derive(Debug, Clone, Copy)]
pub struct HealContext<'a> {
    pub catalog: &'a catalog::Catalog,
    pub rules: &'a RuleSet,
    pub policy: Policy,
    pub overrides: &'a ParamOverrides,
    /// Decide and report, change nothing.
    pub dry_run: bool,
    /// Unix seconds.
    pub now: i64,
}

/// What happened to one failed check.
#[derive(Debug, Clone)]
pub struct HealRecord {
    pub target: String,
    pub check: String,
    pub decision: Decision,
    /// The scan result that triggered healing.
    pub before: CheckOutcome,
    pub remediation: Option<StepRecord>,
    /// The detect result after the remediation.
    pub after: Option<CheckOutcome>,
    pub rollback: Option<StepRecord>,
    pub result: HealResult,
}

/// One script run of a remediation or rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub exit_code: Option<i32>,
    /// At most `EXCERPT` bytes of each stream.
    pub stdout: String,
    pub stderr: String,
    /// The transport error, when the script could not run to completion.
    pub error: Option<String>,
}

/// The end state of one failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealResult {
    /// Remediated and verified by the re-run detect script.
    Fixed,
    /// The remediation failed or did not verify; rolled back where the runbook can; needs a person.
    NotFixed { rolled_back: bool, reason: String },
    /// Handed to a person without trying.
    Escalated { reason: String },
    /// Not tried now (paused, maintenance, cool-down, limits).
    Held { reason: String },
    /// Dry run: this is what would run.
    Planned { runbook: String },
    /// No L1 rule covers this finding.
    NoRule,
}

/// Most bytes of script output kept in a record (and in evidence).
pub const EXCERPT: usize = 4096;

/// Heals the failed checks of one target's scan report.
///
/// `history` is the site's recent attempts; each attempt made here is appended to it, so limits
/// apply within the same run.
pub fn heal_target(
    target: &Target,
    transport: &dyn Transport,
    report: &TargetReport,
    history: &mut Vec<Attempt>,
    ctx: &HealContext<'_>,
) -> (Vec<HealRecord>, Vec<Diagnostic>) {
    let mut records = Vec::new();
    let mut diagnostics = Vec::new();
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome.status == CheckStatus::Fail)
        .collect();
    if failed.is_empty() {
        return (records, diagnostics);
    }
    let mut session = if ctx.dry_run {
        None
    } else {
        match transport.open() {
            Ok(session) => Some(session),
            Err(err) => {
                diagnostics.push(Diagnostic {
                    target: target.name.clone(),
                    message: err.to_string(),
                });
                None
            }
        }
    };
    let declarative = target.platform == Platform::Linux
        && session.as_mut().is_some_and(|s| is_declarative(s.as_mut()));
    let facts = |id: &str| {
        ctx.catalog.get(id).map(|rb| RunbookFacts {
            auto_heal: rb.auto_heal,
        })
    };
    for result in failed {
        let finding = Finding {
            target: &target.name,
            check: &result.runbook_id,
            status: result.outcome.status,
            observed: &result.outcome.observed,
            declarative,
        };
        let decision = rules::decide(&finding, ctx.rules, &facts, history, &ctx.policy, ctx.now);
        tracing::info!(target_name = %target.name, check = %result.runbook_id, decision = ?decision, "L1 decision.");
        let mut record = HealRecord {
            target: target.name.clone(),
            check: result.runbook_id.clone(),
            decision: decision.clone(),
            before: result.outcome.clone(),
            remediation: None,
            after: None,
            rollback: None,
            result: HealResult::NoRule,
        };
        match decision {
            Decision::NotFailing | Decision::NoRule => {}
            Decision::Escalate { reason, .. } => record.result = HealResult::Escalated { reason },
            Decision::Hold { reason, .. } => {
                record.result = HealResult::Held {
                    reason: hold_words(&reason, ctx.now),
                }
            }
            Decision::Remediate { rule, runbook } => {
                let Some(runbook) = ctx.catalog.get(&runbook) else {
                    record.result = HealResult::Escalated {
                        reason: format!("runbook {runbook} is not in the catalogue"),
                    };
                    records.push(record);
                    continue;
                };
                if ctx.dry_run {
                    record.result = HealResult::Planned {
                        runbook: runbook.id.clone(),
                    };
                } else if let Some(session) = session.as_mut() {
                    let scripts = ScriptContext {
                        overrides: ctx.overrides,
                        powershell_prelude: ctx.catalog.powershell_prelude(),
                    };
                    remediate(
                        session.as_mut(),
                        runbook,
                        &scripts,
                        (runbook, &scripts),
                        &mut record,
                    );
                    let verified = record.result == HealResult::Fixed;
                    history.push(Attempt {
                        rule,
                        target: target.name.clone(),
                        at: ctx.now,
                        result: if verified {
                            AttemptResult::Verified
                        } else {
                            AttemptResult::Failed
                        },
                    });
                } else {
                    record.result = HealResult::NotFixed {
                        rolled_back: false,
                        reason: "target unreachable: see the diagnostics".to_owned(),
                    };
                }
            }
        }
        records.push(record);
    }
    (records, diagnostics)
}

impl HealRecord {
    /// The rule that decided, if any.
    pub fn rule(&self) -> Option<&str> {
        match &self.decision {
            Decision::Remediate { rule, .. } | Decision::Hold { rule, .. } => Some(rule),
            Decision::Escalate { rule, .. } => rule.as_deref(),
            Decision::NotFailing | Decision::NoRule => None,
        }
    }
}

/// A plan from L2: run `runbook`'s remediation with the plan's parameters, then verify with the
/// failed check's own detect script and the site's parameters (so a plan can never make its own
/// verification easier), and roll back with the plan's parameters if it does not verify.
#[derive(Debug, Clone, Copy)]
pub struct PlanRun<'a> {
    /// The runbook whose remediation runs.
    pub runbook: &'a Runbook,
    /// The failed check, re-run to verify.
    pub check: &'a Runbook,
    /// The site's overrides with the plan's parameters for `runbook` on top.
    pub plan_overrides: &'a ParamOverrides,
    /// The site's overrides, for the verification.
    pub site_overrides: &'a ParamOverrides,
    pub powershell_prelude: &'a str,
}

/// Runs an L2 plan through the same remediate → verify → rollback path as an L1 fix, filling in
/// `record`'s remediation, after, rollback and result.
pub fn execute_plan(session: &mut dyn Session, plan: &PlanRun<'_>, record: &mut HealRecord) {
    let scripts = ScriptContext {
        overrides: plan.plan_overrides,
        powershell_prelude: plan.powershell_prelude,
    };
    let verify = ScriptContext {
        overrides: plan.site_overrides,
        powershell_prelude: plan.powershell_prelude,
    };
    remediate(
        session,
        plan.runbook,
        &scripts,
        (plan.check, &verify),
        record,
    );
}

fn remediate(
    session: &mut dyn Session,
    runbook: &Runbook,
    scripts: &ScriptContext<'_>,
    (check, verify): (&Runbook, &ScriptContext<'_>),
    record: &mut HealRecord,
) {
    let Some(script) = &runbook.remediate else {
        record.result = HealResult::Escalated {
            reason: format!("{} has no remediate script", runbook.id),
        };
        return;
    };
    let step = run_step(session, runbook, script, Phase::Remediate, scripts);
    let ran_ok = step.exit_code == Some(0) && step.error.is_none();
    record.remediation = Some(step.clone());
    if ran_ok {
        let after = scan::run_check(session, check, verify);
        let verified = after.status == CheckStatus::Pass;
        let reason = format!(
            "after the fix the check is {}: {}",
            after.status, after.reason
        );
        record.after = Some(after);
        if verified {
            record.result = HealResult::Fixed;
            return;
        }
        record.result = roll_back(session, runbook, scripts, record, reason);
    } else {
        let reason = match (&step.error, step.exit_code) {
            (Some(err), _) => format!("remediation did not complete: {err}"),
            (None, code) => format!(
                "remediation failed with exit code {}: {}",
                code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                reason_line(&step.stderr)
            ),
        };
        record.result = roll_back(session, runbook, scripts, record, reason);
    }
}

fn roll_back(
    session: &mut dyn Session,
    runbook: &Runbook,
    scripts: &ScriptContext<'_>,
    record: &mut HealRecord,
    reason: String,
) -> HealResult {
    let Some(script) = &runbook.rollback else {
        return HealResult::NotFixed {
            rolled_back: false,
            reason,
        };
    };
    let step = run_step(session, runbook, script, Phase::Rollback, scripts);
    let rolled_back = step.exit_code == Some(0) && step.error.is_none();
    record.rollback = Some(step);
    HealResult::NotFixed {
        rolled_back,
        reason,
    }
}

fn run_step(
    session: &mut dyn Session,
    runbook: &Runbook,
    script: &Script,
    phase: Phase,
    scripts: &ScriptContext<'_>,
) -> StepRecord {
    match scan::run_step(session, runbook, script, phase, scripts) {
        Ok(output) => StepRecord {
            exit_code: output.exit_code,
            stdout: excerpt(&output.stdout),
            stderr: excerpt(&output.stderr),
            error: None,
        },
        Err(err) => StepRecord {
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            error: Some(err),
        },
    }
}

fn is_declarative(session: &mut dyn Session) -> bool {
    let run = ScriptRun {
        interpreter: Interpreter::Sh,
        script: "[ -e /etc/NIXOS ] && echo declarative || true",
        env: &[],
        timeout: Duration::from_secs(10),
    };
    session
        .run(&run)
        .is_ok_and(|out| out.stdout.starts_with(b"declarative"))
}

/// The first line of a target's output as it goes into a reason (and from there into
/// escalations): at most 200 characters, control characters written as `\u{..}`, so a
/// compromised host cannot send terminal escapes or extra lines. Each channel escapes the rest
/// for its own format (`escalate::payload`).
fn reason_line(output: &str) -> String {
    let mut line = String::new();
    for c in output.lines().next().unwrap_or_default().chars().take(200) {
        if c.is_control() {
            line.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            line.push(c);
        }
    }
    line
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT)]);
    text.into_owned()
}

fn hold_words(reason: &HoldReason, now: i64) -> String {
    let minutes = |until: &i64| (until - now + 59) / 60;
    match reason {
        HoldReason::Cooldown { until } => {
            format!(
                "cooling down: tried on this target recently, next attempt in {} min",
                minutes(until)
            )
        }
        HoldReason::BreakerOpen { until } => {
            format!(
                "circuit breaker open after repeated failed fixes on this site; retry in {} min",
                minutes(until)
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::reason_line;

    #[test]
    fn hostile_output_in_a_reason_is_one_bounded_line_without_control_characters() {
        let hostile = format!(
            "\u{1b}]0;owned\u{7}<!channel>{}\rBcc: x\nsecond line",
            "A".repeat(500)
        );
        let line = reason_line(&hostile);
        assert!(
            line.starts_with("\\u{1b}]0;owned\\u{7}<!channel>AAA"),
            "{line}"
        );
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(!line.contains("second line"), "{line}");
        assert!(line.chars().count() < 240, "{line}");
    }
}

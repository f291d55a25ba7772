//! The scan engine: runs each applicable runbook's detect script on a target through a
//! transport and turns the output into check results.
//!
//! Scans never fail as a whole: an unreachable target or a broken script becomes `error`
//! results plus diagnostics, and the other checks still run.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use model::{
    CheckOutcome, CheckStatus, ParamValue, Runbook, Shell, Target, evaluate, resolve_params,
};
use transport::{Interpreter, ScriptRun, Transport};

/// Per-runbook parameter overrides from the site configuration, keyed by runbook ID.
pub type ParamOverrides = BTreeMap<String, BTreeMap<String, ParamValue>>;

/// One check's result on one target.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub runbook_id: String,
    pub outcome: CheckOutcome,
    pub elapsed: Duration,
}

/// Everything one scan of one target produced.
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub target: Target,
    pub started: OffsetDateTime,
    pub finished: OffsetDateTime,
    pub results: Vec<CheckResult>,
}

/// Something an operator should know about a scan, besides the results themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub target: String,
    pub message: String,
}

/// Counts of results by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skipped: usize,
}

/// Scans one target with the given runbooks (already filtered to its platform).
pub fn scan_target(
    target: &Target,
    transport: &dyn Transport,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> (TargetReport, Vec<Diagnostic>) {
    let started = OffsetDateTime::now_utc();
    let mut diagnostics = Vec::new();
    let mut results = Vec::with_capacity(runbooks.len());
    let mut session = match transport.open() {
        Ok(session) => Ok(session),
        Err(err) => {
            tracing::warn!(target_name = %target.name, transport = %transport.describe(), error = %err, "Cannot open session.");
            diagnostics.push(Diagnostic {
                target: target.name.clone(),
                message: err.to_string(),
            });
            Err(err)
        }
    };
    for runbook in runbooks {
        let check_started = std::time::Instant::now();
        let outcome = match &mut session {
            Ok(session) => run_check(session.as_mut(), runbook, overrides),
            // Every check of an unreachable target records why, so the evidence says it was not checked.
            Err(err) => error_outcome(format!("not checked: {err}")),
        };
        tracing::debug!(target_name = %target.name, check = %runbook.id, status = %outcome.status, "Check finished.");
        results.push(CheckResult {
            runbook_id: runbook.id.clone(),
            outcome,
            elapsed: check_started.elapsed(),
        });
    }
    let report = TargetReport {
        target: target.clone(),
        started,
        finished: OffsetDateTime::now_utc(),
        results,
    };
    (report, diagnostics)
}

impl TargetReport {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            total: self.results.len(),
            ..Summary::default()
        };
        for result in &self.results {
            match result.outcome.status {
                CheckStatus::Pass => summary.pass += 1,
                CheckStatus::Fail => summary.fail += 1,
                CheckStatus::Error => summary.error += 1,
                CheckStatus::Skipped => summary.skipped += 1,
            }
        }
        summary
    }
}

/// Runs one runbook's detect script in an open session and evaluates it; the heal engine calls it again after a remediation to verify.
pub fn run_check(
    session: &mut dyn transport::Session,
    runbook: &Runbook,
    overrides: &ParamOverrides,
) -> CheckOutcome {
    let empty = BTreeMap::new();
    let params = match resolve_params(
        &runbook.params,
        overrides.get(&runbook.id).unwrap_or(&empty),
    ) {
        Ok(params) => params,
        Err(err) => return error_outcome(format!("configuration: {err}")),
    };
    let env = params.env();
    let interpreter = match runbook.detect.shell {
        Shell::Sh => Interpreter::Sh,
        Shell::PowerShell => Interpreter::PowerShell,
    };
    let run = ScriptRun {
        interpreter,
        script: &runbook.detect.body,
        env: &env,
        timeout: runbook.timeout,
    };
    let output = match session.run(&run) {
        Ok(output) => output,
        Err(err) => return error_outcome(format!("detect script: {err}")),
    };
    if output.truncated {
        return error_outcome(format!(
            "detect output exceeded {} bytes",
            transport::MAX_OUTPUT
        ));
    }
    if output.exit_code != Some(0) {
        let code = output
            .exit_code
            .map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let detail = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {}", first_line(stderr))
        };
        return error_outcome(format!("detect script ended with {code}{detail}"));
    }
    match std::str::from_utf8(&output.stdout) {
        Ok(stdout) => evaluate(runbook, &params, stdout),
        Err(_) => error_outcome("detect output is not UTF-8".to_owned()),
    }
}

fn error_outcome(reason: String) -> CheckOutcome {
    CheckOutcome {
        status: CheckStatus::Error,
        observed: serde_json::Value::Null,
        expected: String::new(),
        reason,
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

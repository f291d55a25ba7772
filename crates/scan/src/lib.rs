//! The scan engine: runs each applicable runbook's detect script on a target through a
//! transport and turns the output into check results.
//!
//! Scans never fail as a whole: an unreachable target or a broken script becomes `error`
//! results plus diagnostics, and the other checks still run.

mod batch;

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
    let started_checks = std::time::Instant::now();
    let outcomes: Vec<CheckOutcome> = match &mut session {
        Ok(session) => run_all(session.as_mut(), &target.name, runbooks, overrides),
        // Every check of an unreachable target records why, so the evidence says it was not checked.
        Err(err) => runbooks
            .iter()
            .map(|_| error_outcome(format!("not checked: {err}")))
            .collect(),
    };
    // Checks may run as one batch, so each result carries the time of the run that produced it.
    let elapsed = started_checks.elapsed();
    for (runbook, outcome) in runbooks.iter().zip(outcomes) {
        tracing::debug!(target_name = %target.name, check = %runbook.id, status = %outcome.status, "Check finished.");
        results.push(CheckResult {
            runbook_id: runbook.id.clone(),
            outcome,
            elapsed,
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

/// Runs every runbook's detect script over one session: all `sh` scripts in one batch when
/// there are several, each on its own otherwise, or when the batch as a whole fails.
fn run_all(
    session: &mut dyn transport::Session,
    target_name: &str,
    runbooks: &[&Runbook],
    overrides: &ParamOverrides,
) -> Vec<CheckOutcome> {
    let empty = BTreeMap::new();
    let params: Vec<_> = runbooks
        .iter()
        .map(|rb| resolve_params(&rb.params, overrides.get(&rb.id).unwrap_or(&empty)))
        .collect();
    let batchable: Vec<usize> = (0..runbooks.len())
        .filter(|&idx| runbooks[idx].detect.shell == Shell::Sh && params[idx].is_ok())
        .collect();
    let mut outcomes: Vec<Option<CheckOutcome>> = vec![None; runbooks.len()];
    if batchable.len() >= 2 {
        let checks: Vec<(&Runbook, &model::ResolvedParams)> = batchable
            .iter()
            .filter_map(|&idx| params[idx].as_ref().ok().map(|p| (runbooks[idx], p)))
            .collect();
        if let Some(results) = run_batch(session, &checks) {
            for (&idx, raw) in batchable.iter().zip(results) {
                if let Ok(params) = &params[idx] {
                    outcomes[idx] = Some(judge_batched(runbooks[idx], params, &raw));
                }
            }
        } else {
            tracing::warn!(target_name = %target_name, "Batched detect run failed; running checks one by one.");
        }
    }
    runbooks
        .iter()
        .zip(outcomes)
        .map(|(runbook, outcome)| outcome.unwrap_or_else(|| run_check(session, runbook, overrides)))
        .collect()
}

/// Runs a batch; `None` when it could not run or its output is not exactly one frame per check.
fn run_batch(
    session: &mut dyn transport::Session,
    checks: &[(&Runbook, &model::ResolvedParams)],
) -> Option<Vec<batch::RawResult>> {
    let script = batch::build(checks)?;
    let timeout = checks
        .iter()
        .map(|(rb, _)| rb.timeout)
        .sum::<std::time::Duration>()
        + std::time::Duration::from_secs(10);
    let run = ScriptRun {
        interpreter: Interpreter::Sh,
        script: &script,
        env: &[],
        timeout,
    };
    match session.run(&run) {
        Ok(output) if output.exit_code == Some(0) && !output.truncated => {
            batch::parse(&output.stdout, checks.len())
        }
        Ok(output) => {
            tracing::warn!(exit_code = ?output.exit_code, error = %String::from_utf8_lossy(&output.stderr), "Detect batch failed.");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "Detect batch failed.");
            None
        }
    }
}

/// A check's outcome from its batched run.
fn judge_batched(
    runbook: &Runbook,
    params: &model::ResolvedParams,
    raw: &batch::RawResult,
) -> CheckOutcome {
    // `timeout -s KILL` ends a check that ran too long with status 128 + 9.
    if raw.exit_code == 137 {
        return error_outcome(format!(
            "detect script: timed out after {}s and was stopped",
            runbook.timeout.as_secs()
        ));
    }
    if raw.truncated {
        return error_outcome(format!(
            "detect output exceeded {} bytes",
            batch::CHECK_STDOUT_MAX
        ));
    }
    judge(
        runbook,
        params,
        Some(raw.exit_code),
        &raw.stdout,
        &raw.stderr,
    )
}

/// A check's outcome from its exit code and output.
fn judge(
    runbook: &Runbook,
    params: &model::ResolvedParams,
    exit_code: Option<i32>,
    stdout: &[u8],
    stderr: &[u8],
) -> CheckOutcome {
    if exit_code != Some(0) {
        let code = exit_code.map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
        let stderr = String::from_utf8_lossy(stderr);
        let stderr = stderr.trim();
        let detail = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {}", first_line(stderr))
        };
        return error_outcome(format!("detect script ended with {code}{detail}"));
    }
    match std::str::from_utf8(stdout) {
        Ok(stdout) => evaluate(runbook, params, stdout),
        Err(_) => error_outcome("detect output is not UTF-8".to_owned()),
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
    judge(
        runbook,
        &params,
        output.exit_code,
        &output.stdout,
        &output.stderr,
    )
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

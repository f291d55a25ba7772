//! The scan engine: runs each applicable runbook's detect script on a target through a
//! transport and turns the output into check results.
//!
//! Scans never fail as a whole: an unreachable target or a broken script becomes `error`
//! results plus diagnostics, and the other checks still run.

mod batch;
pub mod cadence;
pub mod powershell;

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use model::{
    CheckOutcome, CheckStatus, ParamValue, Runbook, Shell, Target, TargetVerdict, evaluate,
    resolve_params,
};
use transport::{Interpreter, ScriptRun, Transport};

/// Per-runbook parameter overrides from the site configuration, keyed by runbook ID.
pub type ParamOverrides = BTreeMap<String, BTreeMap<String, ParamValue>>;

/// What running catalogue scripts needs besides the runbooks themselves.
#[derive(Debug, Clone, Copy)]
pub struct ScriptContext<'a> {
    /// The site's parameter overrides.
    pub overrides: &'a ParamOverrides,
    /// The catalogue's PowerShell prelude, sent once at the top of every PowerShell batch.
    pub powershell_prelude: &'a str,
}

/// One remediation or rollback script run, as the heal engine records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

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
    /// Every check's result: those that ran in this scan and those carried from an earlier one.
    pub results: Vec<CheckResult>,
    /// The checks of `results` that did not run in this scan ([`cadence`]), with the time their
    /// result was observed.
    pub carried: BTreeMap<String, OffsetDateTime>,
    /// CPU time the target spent on each batched `sh` check that ran (the batch shell's
    /// `times` around it), when the target reports it.
    pub target_cpu: BTreeMap<String, Duration>,
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
    ctx: &ScriptContext<'_>,
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
    let mut target_cpu = BTreeMap::new();
    let outcomes: Vec<CheckOutcome> = match &mut session {
        Ok(session) => run_all(
            session.as_mut(),
            &target.name,
            runbooks,
            ctx,
            &mut target_cpu,
        ),
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
        carried: BTreeMap::new(),
        target_cpu,
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

    /// Compliant, drifted, or a failed scan (every check in error): [`TargetVerdict::of`] its results.
    pub fn verdict(&self) -> TargetVerdict {
        TargetVerdict::of(self.results.iter().map(|result| result.outcome.status))
    }
}

/// Runs every runbook's detect script over one session: all `sh` scripts in one batch when
/// there are several, each on its own otherwise, or when the batch as a whole fails.
fn run_all(
    session: &mut dyn transport::Session,
    target_name: &str,
    runbooks: &[&Runbook],
    ctx: &ScriptContext<'_>,
    target_cpu: &mut BTreeMap<String, Duration>,
) -> Vec<CheckOutcome> {
    let empty = BTreeMap::new();
    let overrides = ctx.overrides;
    let params: Vec<_> = runbooks
        .iter()
        .map(|rb| resolve_params(&rb.params, overrides.get(&rb.id).unwrap_or(&empty)))
        .collect();
    let mut outcomes: Vec<Option<CheckOutcome>> = vec![None; runbooks.len()];
    // PowerShell checks always go as one batch: one command per target and cycle.
    let powershell: Vec<usize> = (0..runbooks.len())
        .filter(|&idx| runbooks[idx].detect.shell == Shell::PowerShell && params[idx].is_ok())
        .collect();
    if !powershell.is_empty() {
        let checks: Vec<powershell::PsCheck<'_>> = powershell
            .iter()
            .filter_map(|&idx| {
                params[idx].as_ref().ok().map(|p| powershell::PsCheck {
                    id: &runbooks[idx].id,
                    body: &runbooks[idx].detect.body,
                    params: p,
                })
            })
            .collect();
        let timeout = powershell
            .iter()
            .map(|&idx| runbooks[idx].timeout)
            .sum::<Duration>()
            + Duration::from_secs(10);
        let results = run_powershell(session, powershell::Phase::Detect, &checks, ctx, timeout);
        for ((&idx, result), params) in powershell
            .iter()
            .zip(results)
            .zip(powershell.iter().map(|&idx| &params[idx]))
        {
            if let Ok(params) = params {
                outcomes[idx] = Some(judge_powershell(runbooks[idx], params, result));
            }
        }
    }
    let batchable: Vec<usize> = (0..runbooks.len())
        .filter(|&idx| runbooks[idx].detect.shell == Shell::Sh && params[idx].is_ok())
        .collect();
    if batchable.len() >= 2 {
        let checks: Vec<(&Runbook, &model::ResolvedParams)> = batchable
            .iter()
            .filter_map(|&idx| params[idx].as_ref().ok().map(|p| (runbooks[idx], p)))
            .collect();
        if let Some(results) = run_batch(session, &checks) {
            let mut before = Duration::ZERO;
            for (&idx, raw) in batchable.iter().zip(&results) {
                if let Some(after) = raw.children_cpu {
                    target_cpu.insert(runbooks[idx].id.clone(), after.saturating_sub(before));
                    before = after;
                }
            }
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
        .map(|(runbook, outcome)| outcome.unwrap_or_else(|| run_check(session, runbook, ctx)))
        .collect()
}

/// Runs a batch; `None` when it could not run or its output is not exactly one frame per check.
fn run_batch(
    session: &mut dyn transport::Session,
    checks: &[(&Runbook, &model::ResolvedParams)],
) -> Option<Vec<batch::RawResult>> {
    let script = batch::build(checks);
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
    ctx: &ScriptContext<'_>,
) -> CheckOutcome {
    let empty = BTreeMap::new();
    let params = match resolve_params(
        &runbook.params,
        ctx.overrides.get(&runbook.id).unwrap_or(&empty),
    ) {
        Ok(params) => params,
        Err(err) => return error_outcome(format!("configuration: {err}")),
    };
    if runbook.detect.shell == Shell::PowerShell {
        let check = powershell::PsCheck {
            id: &runbook.id,
            body: &runbook.detect.body,
            params: &params,
        };
        let result = run_powershell(
            session,
            powershell::Phase::Detect,
            &[check],
            ctx,
            runbook.timeout + Duration::from_secs(10),
        )
        .pop()
        .unwrap_or_else(|| Err("no result".to_owned()));
        return judge_powershell(runbook, &params, result);
    }
    let env = params.env();
    let interpreter = match runbook.detect.shell {
        Shell::Sh => Interpreter::Sh,
        Shell::PowerShell => Interpreter::PowerShell,
        Shell::Cloud => return error_outcome(CLOUD_ON_HOST.to_owned()),
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

/// Runs one remediation or rollback script of a runbook (`phase` says which) with its validated
/// parameters. PowerShell scripts go through the batch wrapper, and their result document is
/// turned into an exit code (0 when the script succeeded), stdout (its output as JSON) and stderr
/// (its error); `sh` scripts run as they are with their parameters in the environment.
pub fn run_step(
    session: &mut dyn transport::Session,
    runbook: &Runbook,
    script: &model::Script,
    phase: powershell::Phase,
    ctx: &ScriptContext<'_>,
) -> Result<StepOutput, String> {
    let empty = BTreeMap::new();
    let params = resolve_params(
        &runbook.params,
        ctx.overrides.get(&runbook.id).unwrap_or(&empty),
    )
    .map_err(|err| err.to_string())?;
    match script.shell {
        Shell::PowerShell => {
            let check = powershell::PsCheck {
                id: &runbook.id,
                body: &script.body,
                params: &params,
            };
            let result = run_powershell(
                session,
                phase,
                &[check],
                ctx,
                runbook.timeout + Duration::from_secs(10),
            )
            .pop()
            .unwrap_or_else(|| Err("no result".to_owned()));
            Ok(match result {
                Ok(output) => StepOutput {
                    exit_code: Some(0),
                    stdout: output.to_string().into_bytes(),
                    stderr: Vec::new(),
                },
                Err(err) => StepOutput {
                    exit_code: Some(1),
                    stdout: Vec::new(),
                    stderr: err.into_bytes(),
                },
            })
        }
        Shell::Cloud => Err(CLOUD_ON_HOST.to_owned()),
        Shell::Sh => {
            let env = params.env();
            let run = ScriptRun {
                interpreter: Interpreter::Sh,
                script: &script.body,
                env: &env,
                timeout: runbook.timeout,
            };
            let output = session.run(&run).map_err(|err| err.to_string())?;
            Ok(StepOutput {
                exit_code: output.exit_code,
                stdout: output.stdout,
                stderr: output.stderr,
            })
        }
    }
}

/// Why a cloud check met a host (the catalogue gives them cloud platforms only).
const CLOUD_ON_HOST: &str =
    "a cloud check has no script to run on a host; `osiris cloud scan` checks the tenant";

/// Runs a PowerShell batch; one result per check, in order. A batch that cannot be built, run
/// or read makes every one of its checks an error with the reason.
fn run_powershell(
    session: &mut dyn transport::Session,
    phase: powershell::Phase,
    checks: &[powershell::PsCheck<'_>],
    ctx: &ScriptContext<'_>,
    timeout: Duration,
) -> Vec<powershell::PsResult> {
    let all = |reason: String| checks.iter().map(|_| Err(reason.clone())).collect();
    let script = match powershell::build(phase, ctx.powershell_prelude, checks) {
        Ok(script) => script,
        Err(err) => return all(err.to_string()),
    };
    let run = ScriptRun {
        interpreter: Interpreter::PowerShell,
        script: &script,
        env: &[],
        timeout,
    };
    let output = match session.run(&run) {
        Ok(output) => output,
        Err(err) => return all(format!("{phase} script: {err}")),
    };
    if output.truncated {
        return all(format!(
            "PowerShell output exceeded {} bytes",
            transport::MAX_OUTPUT
        ));
    }
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    match powershell::parse(&output.stdout, phase, &ids) {
        Ok(results) => results,
        Err(err) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let code = output
                .exit_code
                .map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
            if stderr.is_empty() {
                all(format!("{err} (PowerShell ended with {code})"))
            } else {
                all(format!(
                    "{err} (PowerShell ended with {code}: {})",
                    first_line(stderr)
                ))
            }
        }
    }
}

/// A PowerShell check's outcome from its batch result.
fn judge_powershell(
    runbook: &Runbook,
    params: &model::ResolvedParams,
    result: powershell::PsResult,
) -> CheckOutcome {
    match result {
        Ok(output) => evaluate(runbook, params, &output.to_string()),
        Err(err) => error_outcome(format!("detect script: {}", first_line(&err))),
    }
}

pub(crate) fn error_outcome(reason: String) -> CheckOutcome {
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

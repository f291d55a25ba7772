//! `osiris-agent`'s library: what the agent checks on the machine it runs on. Built so far: the
//! catalogue's checks for this platform run locally (the same embedded catalogue, detect scripts
//! and evaluation as the appliance's SSH and WinRM scans: one catalogue, three ways to reach a
//! host). Enrollment, the stream to the appliance, the offline queue and self-update come next
//! (issue 17).

use model::Platform;
use serde::Serialize;

/// One check's result as the agent reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalResult {
    /// The catalogue id.
    pub check: String,
    /// `pass`, `fail`, `error` or `skipped`.
    pub status: String,
    /// What the detect script observed (its JSON object), or `null`.
    pub observed: serde_json::Value,
    /// Why the status is what it is; empty for a plain pass.
    pub reason: String,
}

/// Why local checks could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The embedded catalogue did not load (a build defect).
    #[error("the embedded check catalogue is invalid: {0}")]
    Catalog(String),
    /// This platform has no local checks in this build.
    #[error("no local checks for this platform ({0}) in this build")]
    Platform(&'static str),
}

/// The platform this agent was built for.
pub fn this_platform() -> Result<Platform, AgentError> {
    if cfg!(target_os = "linux") {
        Ok(Platform::Linux)
    } else if cfg!(windows) {
        Ok(Platform::WindowsWorkstation)
    } else {
        Err(AgentError::Platform(std::env::consts::OS))
    }
}

/// Runs every catalogue check for this platform on this machine, in catalogue order.
pub fn check_once() -> Result<Vec<LocalResult>, AgentError> {
    let catalog = catalog::embedded().map_err(|err| AgentError::Catalog(err.to_string()))?;
    let platform = this_platform()?;
    Ok(run_checks(&catalog, platform))
}

/// On Windows the catalogue's checks run natively (WMI and the registry, no PowerShell), judged
/// by the same expectations (crates/agent-windows).
#[cfg(windows)]
fn run_checks(catalog: &catalog::Catalog, platform: Platform) -> Vec<LocalResult> {
    let runbooks: Vec<_> = catalog.for_platform(platform).collect();
    agent_windows::check(&runbooks, &std::collections::BTreeMap::new())
        .into_iter()
        .map(|result| LocalResult {
            check: result.check_id,
            status: match result.status {
                agent_windows::Status::NotApplicable => "skipped".to_owned(),
                status => status.as_str().to_owned(),
            },
            observed: result.observed,
            reason: result.reason,
        })
        .collect()
}

#[cfg(not(windows))]
fn run_checks(catalog: &catalog::Catalog, platform: Platform) -> Vec<LocalResult> {
    use model::{DeviceType, Target};
    let target = Target {
        name: "localhost".to_owned(),
        platform,
        device_type: DeviceType::Workstation,
    };
    let runbooks: Vec<_> = catalog.for_platform(platform).collect();
    let overrides: scan::ParamOverrides = std::collections::BTreeMap::new();
    let context = scan::ScriptContext {
        overrides: &overrides,
        powershell_prelude: catalog.powershell_prelude(),
    };
    let (report, _diagnostics) =
        scan::scan_target(&target, &scan_local::LocalTransport, &runbooks, &context);
    report
        .results
        .into_iter()
        .map(|result| LocalResult {
            check: result.runbook_id,
            status: result.outcome.status.to_string(),
            observed: result.outcome.observed,
            reason: result.outcome.reason,
        })
        .collect()
}

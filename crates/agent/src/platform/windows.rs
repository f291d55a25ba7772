//! The Windows platform, on `agent-windows`: the workstation checks read natively (WMI and the
//! registry, no PowerShell), the catalogue's PowerShell remediations run through
//! `powershell.exe` with the script on stdin (the scan engine's wrapper, as over WinRM), the
//! device key sealed with DPAPI, the state directory under `%ProgramData%` closed to all but
//! SYSTEM and Administrators, and the `OsirisAgent` service.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agent_windows::dpapi;
use agent_windows::service::{self, InstallWarning, ServiceSpec};
use model::{CheckOutcome, CheckStatus, Runbook, Script, Shell};
use transport::{Output, ScriptRun, Session, Transport, TransportError};

use crate::platform::{
    Device, Params, Platform, PlatformError, StepOutcome, StepPhase, StepStatus,
};
use crate::state::StateDir;

/// The Windows implementation of [`Platform`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Windows;

/// The service's name (the MSI registers the same one).
pub const SERVICE_NAME: &str = "OsirisAgent";

/// The service's display name.
const DISPLAY_NAME: &str = "OsirisCare Agent";

/// The state directory under `%ProgramData%`.
const STATE_SUBDIR: &str = r"OsirisCare\Agent";

/// Longest detail line sent to the appliance, in bytes (the protocol allows 1,024).
const DETAIL_BYTES: usize = 1000;

impl Platform for Windows {
    fn wire_platform(&self) -> agent_proto::v1::Platform {
        agent_proto::v1::Platform::WindowsX8664
    }

    fn catalog_platform(&self) -> model::Platform {
        model::Platform::WindowsWorkstation
    }

    fn describe_device(&self) -> Device {
        let device = agent_windows::device::read();
        Device {
            hostname: device.hostname,
            os: device.os,
            os_version: device.os_version,
        }
    }

    fn default_state_dir(&self) -> PathBuf {
        let program_data = std::env::var_os("ProgramData")
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
        program_data.join(STATE_SUBDIR)
    }

    fn run_check(
        &self,
        _catalog: &catalog::Catalog,
        runbook: &Runbook,
        params: &Params,
    ) -> CheckOutcome {
        let overrides = BTreeMap::from([(runbook.id.clone(), params.clone())]);
        agent_windows::check(&[runbook], &overrides)
            .pop()
            .map_or_else(
                || error_outcome("the native check returned nothing".to_owned()),
                outcome,
            )
    }

    fn run_checks(&self, _catalog: &catalog::Catalog, runbooks: &[&Runbook]) -> Vec<CheckOutcome> {
        // One WMI connection for all of them.
        agent_windows::check(runbooks, &BTreeMap::new())
            .into_iter()
            .map(outcome)
            .collect()
    }

    fn run_step(
        &self,
        catalog: &catalog::Catalog,
        runbook: &Runbook,
        script: &Script,
        phase: StepPhase,
        params: &Params,
    ) -> StepOutcome {
        let failed = |detail: String| StepOutcome {
            status: StepStatus::Failed,
            detail: clip(&detail),
        };
        if script.shell != Shell::PowerShell {
            return failed(format!(
                "{} is not a PowerShell script; this agent runs PowerShell scripts only",
                script.source
            ));
        }
        let overrides = scan::ParamOverrides::from([(runbook.id.clone(), params.clone())]);
        let context = scan::ScriptContext {
            overrides: &overrides,
            powershell_prelude: catalog.powershell_prelude(),
        };
        let session = match agent_windows::powershell::LocalPowerShell::system().open() {
            Ok(session) => session,
            Err(err) => return failed(format!("could not start PowerShell: {err}")),
        };
        let mut session = Watched {
            inner: session,
            timed_out: false,
        };
        let scan_phase = match phase {
            StepPhase::Remediate => scan::powershell::Phase::Remediate,
            StepPhase::Rollback => scan::powershell::Phase::Rollback,
        };
        let res = scan::run_step(&mut session, runbook, script, scan_phase, &context);
        match res {
            _ if session.timed_out => StepOutcome {
                status: StepStatus::TimedOut,
                detail: clip(&format!(
                    "the {} script ran out of time and was stopped",
                    scan_phase
                )),
            },
            Ok(output) if output.exit_code == Some(0) => StepOutcome {
                status: StepStatus::Succeeded,
                detail: clip(&first_line(&output.stdout)),
            },
            Ok(output) => {
                let said = first_line(&output.stderr);
                failed(if said.is_empty() {
                    "the script failed without a message".to_owned()
                } else {
                    said
                })
            }
            Err(err) => failed(err),
        }
    }

    fn seal_device_key(&self, seed: &[u8; 32]) -> Result<Vec<u8>, PlatformError> {
        // The machine scope: the administrator who enrolls is not LocalSystem, which runs the
        // service; the state directory's ACL keeps other accounts from the blob (dpapi.rs).
        dpapi::protect(seed, dpapi::Scope::Machine)
            .map_err(|err| PlatformError::Unsupported(format!("sealing with DPAPI: {err}")))
    }

    fn open_device_key(
        &self,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, PlatformError> {
        let opened = dpapi::unprotect(sealed)
            .map_err(|err| PlatformError::Unsupported(format!("opening with DPAPI: {err}")))?;
        let seed: [u8; 32] = opened.as_slice().try_into().map_err(|_| {
            PlatformError::Unsupported(format!(
                "the device key holds {} bytes; an Ed25519 seed is 32",
                opened.len()
            ))
        })?;
        Ok(zeroize::Zeroizing::new(seed))
    }

    fn install_service(&self, exe: &Path, state_dir: &Path) -> Result<Vec<String>, PlatformError> {
        if let Some(installed) = service::query(SERVICE_NAME).map_err(service_error)? {
            return Err(PlatformError::Unsupported(format!(
                "the service {SERVICE_NAME} is already installed (it runs {}); run `osiris-agent uninstall` first to install it again",
                installed.executable.display()
            )));
        }
        let spec = ServiceSpec {
            name: SERVICE_NAME.to_owned(),
            display_name: DISPLAY_NAME.to_owned(),
            description: "Checks this computer with the OsirisCare appliance's catalogue and reports to the appliance.".to_owned(),
            executable: exe.to_owned(),
            arguments: vec![
                OsString::from("run"),
                OsString::from("--service"),
                OsString::from("--state-dir"),
                state_dir.as_os_str().to_owned(),
            ],
        };
        let warnings = service::install(&spec).map_err(service_error)?;
        let mut done = vec![format!(
            "installed service {SERVICE_NAME} (LocalSystem, automatic start, restarted after a failure)"
        )];
        for warning in warnings {
            match warning {
                InstallWarning::NoRecoveryOnErrorExit => done.push(
                    "this service manager restarts the agent after a crash but not after an exit with an error".to_owned(),
                ),
            }
        }
        service::start(SERVICE_NAME).map_err(service_error)?;
        done.push(format!("started service {SERVICE_NAME}"));
        done.push(format!(
            "the service runs {}: keep the program there",
            exe.display()
        ));
        Ok(done)
    }

    fn uninstall_service(&self) -> Result<Vec<String>, PlatformError> {
        if service::uninstall(SERVICE_NAME).map_err(service_error)? {
            Ok(vec![format!("stopped and removed service {SERVICE_NAME}")])
        } else {
            Err(PlatformError::Unsupported(format!(
                "the service {SERVICE_NAME} is not installed"
            )))
        }
    }
}

/// The session PowerShell runs in, noting whether a run timed out (the scan engine turns a
/// transport error into the script's error text).
struct Watched {
    inner: Box<dyn Session>,
    timed_out: bool,
}

impl Session for Watched {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        let res = self.inner.run(run);
        self.timed_out |= matches!(res, Err(TransportError::Timeout { .. }));
        res
    }
}

/// A native result as the agent's check outcome.
fn outcome(result: agent_windows::NativeResult) -> CheckOutcome {
    CheckOutcome {
        status: match result.status {
            agent_windows::Status::Pass => CheckStatus::Pass,
            agent_windows::Status::Fail => CheckStatus::Fail,
            agent_windows::Status::Error => CheckStatus::Error,
            agent_windows::Status::NotApplicable => CheckStatus::Skipped,
        },
        observed: result.observed,
        expected: result.expected,
        reason: result.reason,
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

fn service_error(err: service::ServiceError) -> PlatformError {
    PlatformError::Command {
        command: format!("the service control manager ({SERVICE_NAME})"),
        detail: err.to_string(),
    }
}

/// The first non-empty line of a script's output.
fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// `text` without control characters, at most [`DETAIL_BYTES`] bytes.
fn clip(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > DETAIL_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// The state directory the service runs from, for [`service_body`] (the service control
/// manager calls a plain function).
static SERVICE_STATE_DIR: OnceLock<StateDir> = OnceLock::new();

/// Runs the agent as the `OsirisAgent` service under the service control manager (`run
/// --service`) until the manager stops it; blocks. The agent's log goes where the caller's
/// tracing subscriber writes (the binary: `agent.log` in the state directory).
///
/// # Errors
/// When this process was not started by the service control manager, or the dispatcher could
/// not start.
pub fn run_service(state_dir: StateDir) -> Result<(), PlatformError> {
    let _ = SERVICE_STATE_DIR.set(state_dir);
    service::run(SERVICE_NAME, service_body).map_err(|err| PlatformError::Command {
        command: format!("running as the service {SERVICE_NAME}"),
        detail: format!(
            "{err}; `run --service` is for the service control manager (in a console, use `osiris-agent run`)"
        ),
    })
}

/// The service's work: the agent's loop on a one-thread runtime until the manager asks it to
/// stop. An error is logged and reported to the manager as a failure, which the recovery
/// actions restart.
fn service_body(shutdown: service::Shutdown) -> Result<(), String> {
    let Some(state_dir) = SERVICE_STATE_DIR.get().cloned() else {
        return Err("the service started without a state directory".to_owned());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("starting the runtime: {err}"))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        while !shutdown.wait_timeout(Duration::from_secs(3600)) {}
        let _ = stop_tx.send(());
    });
    let stop = async move {
        let _ = stop_rx.await;
    };
    tracing::info!(service = SERVICE_NAME, state_dir = %state_dir.path().display(), "Running as a Windows service.");
    runtime
        .block_on(crate::run::run(Arc::new(Windows), state_dir, stop))
        .map_err(|err| {
            let text = crate::error_chain(&err);
            tracing::error!(error = %text, "The agent stopped with an error.");
            text
        })
}

//! What differs between the operating systems the agent runs on, behind one trait: running one
//! check or one remediation step of the embedded catalogue, protecting the device key at rest,
//! describing the device, and installing the agent as a service.
//!
//! `Linux` (`linux.rs`) and `Windows` (`windows.rs`, on crate `agent-windows`: native WMI and
//! registry checks, PowerShell remediations, DPAPI for the device key, the state directory's
//! ACL, a Windows service) implement it, one per build, and hand it to the same
//! [`crate::enroll`], [`crate::run`] and [`crate::status`].

#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::{CheckOutcome, ParamValue, Runbook, Script};

#[cfg(target_os = "linux")]
pub use crate::platform::linux::{Linux, systemd_unit};
#[cfg(windows)]
pub use crate::platform::windows::{SERVICE_NAME, Windows, run_service};

/// Typed parameters for one runbook's scripts, by name (absent ones take the runbook's defaults).
pub type Params = BTreeMap<String, ParamValue>;

/// The operating system's part of the agent. Every method may block (scripts, files, service
/// managers); the runtime calls the slow ones on its blocking pool.
pub trait Platform: Send + Sync + 'static {
    /// The platform as the protocol names it.
    fn wire_platform(&self) -> agent_proto::v1::Platform;

    /// The platform whose runbooks this agent runs.
    fn catalog_platform(&self) -> model::Platform;

    /// What the device says about itself at enrollment.
    fn describe_device(&self) -> Device;

    /// Where the agent keeps its state unless told otherwise.
    fn default_state_dir(&self) -> PathBuf;

    /// Runs one runbook's detect script (or its native equivalent) on this machine with `params`
    /// and evaluates it. Never fails: a check that cannot run is an `error` outcome with the
    /// reason.
    fn run_check(
        &self,
        catalog: &catalog::Catalog,
        runbook: &Runbook,
        params: &Params,
    ) -> CheckOutcome;

    /// Runs `runbooks`' checks with their default parameters, in order (`check --once`); a
    /// platform may batch them, as the Linux one does through the appliance's scan engine.
    fn run_checks(&self, catalog: &catalog::Catalog, runbooks: &[&Runbook]) -> Vec<CheckOutcome> {
        runbooks
            .iter()
            .map(|runbook| self.run_check(catalog, runbook, &Params::new()))
            .collect()
    }

    /// Runs one remediation or rollback script of `runbook` (`phase` says which) with `params`,
    /// which the caller has already checked against the runbook's declarations.
    fn run_step(
        &self,
        catalog: &catalog::Catalog,
        runbook: &Runbook,
        script: &Script,
        phase: StepPhase,
        params: &Params,
    ) -> StepOutcome;

    /// The device key's 32-byte seed as it is stored at rest (on Windows: DPAPI-sealed to the
    /// machine, in a directory only SYSTEM and Administrators can open; on Linux: as it is, in
    /// a file only root can read).
    fn seal_device_key(&self, seed: &[u8; 32]) -> Result<Vec<u8>, PlatformError>;

    /// The seed back from what [`Platform::seal_device_key`] made.
    fn open_device_key(&self, sealed: &[u8])
    -> Result<zeroize::Zeroizing<[u8; 32]>, PlatformError>;

    /// Installs the agent as a service that runs `exe run --state-dir state_dir` at boot and
    /// starts it now; returns what was done, one line per step.
    fn install_service(&self, exe: &Path, state_dir: &Path) -> Result<Vec<String>, PlatformError>;

    /// Stops and removes the service (the state directory stays); returns what was done.
    fn uninstall_service(&self) -> Result<Vec<String>, PlatformError>;
}

/// What the device says about itself at enrollment (`DeviceFacts` without the agent's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The host name.
    pub hostname: String,
    /// The operating system's name, e.g. `Debian GNU/Linux`.
    pub os: String,
    /// Its version, e.g. `12`.
    pub os_version: String,
}

/// Which script of a runbook a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepPhase {
    /// The remediation.
    Remediate,
    /// The rollback.
    Rollback,
}

/// How a remediation or rollback script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// Succeeded, failed or timed out.
    pub status: StepStatus,
    /// One line for the appliance: the script's output or why it failed.
    pub detail: String,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// The script ran and exited 0.
    Succeeded,
    /// It could not run or exited otherwise.
    Failed,
    /// It ran out of time and was stopped.
    TimedOut,
}

/// A platform operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// A file or system call failed.
    #[error("{action}")]
    Io {
        /// What was being done, e.g. `writing /etc/systemd/system/osiris-agent.service`.
        action: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A command (a service manager) failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and error output.
        detail: String,
    },
    /// The request cannot be met here.
    #[error("{0}")]
    Unsupported(String),
}

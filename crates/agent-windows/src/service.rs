//! The agent as a Windows service (`windows-service`): install (LocalSystem, automatic start,
//! restart on failure), uninstall (stop, then delete), query, and run under the service control
//! manager with a shutdown signal for the agent's own loop.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

/// What the service control manager does after the agent fails: restart it after each delay in
/// turn (the last one repeats), and forget earlier failures after [`RESET_AFTER`].
pub const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];
/// See [`RESTART_DELAYS`].
pub const RESET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long `uninstall` waits for a running service to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A service to install.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The service's key name (e.g. `OsirisAgent`).
    pub name: String,
    pub display_name: String,
    pub description: String,
    /// The executable the service control manager starts (quoted by the crate when needed).
    pub executable: PathBuf,
    /// Arguments it is started with (e.g. `run --service`).
    pub arguments: Vec<OsString>,
}

/// What the service control manager says about an installed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub state: State,
    pub automatic_start: bool,
    pub executable: PathBuf,
    /// The account it runs as (`LocalSystem` for the agent).
    pub account: Option<String>,
    /// The recovery actions (`None`: this service control manager cannot report them; Wine's
    /// accepts them but cannot).
    pub recovery: Option<Recovery>,
    /// Whether a stop with a non-zero exit code counts as a failure for recovery (`None`: this
    /// service control manager cannot say; Wine's cannot).
    pub recover_on_error_exit: Option<bool>,
}

/// What `install` could not set up as asked, though the service is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallWarning {
    /// The service control manager does not know the "failure actions on non-crash failures"
    /// setting (`ERROR_INVALID_LEVEL`; Windows has it since Vista, Wine 8 does not): the service
    /// is restarted when it crashes, not when it stops with an error exit code.
    NoRecoveryOnErrorExit,
}

/// What the service control manager does when the service fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Each action's delay when it is a restart (`None` for any other action).
    pub restart_delays: Vec<Option<Duration>>,
    /// When earlier failures are forgotten (`None`: never).
    pub reset_after: Option<Duration>,
}

/// A service's run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Stopped,
    Starting,
    Stopping,
    Running,
    Other,
}

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A call into the service control manager failed.
    #[error("{what}: {source}")]
    Manager {
        what: String,
        source: windows_service::Error,
    },
    /// The service did not stop in time.
    #[error("service {0} did not stop within {1:?}")]
    StopTimeout(String, Duration),
    /// The service is deleted but still listed: the manager removes it once every handle to it
    /// is closed and its process has exited.
    #[error(
        "service {0} is marked for deletion but still listed after {1:?}: close any program \
         holding it (the Services console, another installer) or restart Windows to finish \
         removing it"
    )]
    StillListed(String, Duration),
    /// `run` was called twice in one process.
    #[error("the service dispatcher was already started in this process")]
    AlreadyRunning,
}

/// The signal the running service's body waits on: set when the manager asks it to stop.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

/// The agent's own work while it runs as a service: returns when `Shutdown` is set (`Ok`) or
/// when it fails (`Err`, reported to the manager as a service-specific exit code 1, which the
/// recovery actions restart).
pub type ServiceBody = fn(Shutdown) -> Result<(), String>;

/// Installs the service: own process, LocalSystem, automatic start, normal error control, the
/// description, and the recovery actions (restart after [`RESTART_DELAYS`], also when the
/// service stops with an error exit code). Does not start it.
pub fn install(spec: &ServiceSpec) -> Result<Vec<InstallWarning>, ServiceError> {
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let info = ServiceInfo {
        name: OsString::from(&spec.name),
        display_name: OsString::from(&spec.display_name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: spec.executable.clone(),
        launch_arguments: spec.arguments.clone(),
        dependencies: vec![],
        // None is LocalSystem.
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .map_err(failed(&format!("creating service {}", spec.name)))?;
    service
        .set_description(&spec.description)
        .map_err(failed("setting the service description"))?;
    set_recovery(&service)
}

/// Sets the recovery actions of an installed service (what `install` does, and what `run`
/// does at every start, so a service registered by the MSI, whose `wixl` cannot write them,
/// gets them too).
pub fn apply_recovery(name: &str) -> Result<Vec<InstallWarning>, ServiceError> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(name, ServiceAccess::CHANGE_CONFIG)
        .map_err(failed(&format!("opening service {name}")))?;
    set_recovery(&service)
}

fn set_recovery(
    service: &windows_service::service::Service,
) -> Result<Vec<InstallWarning>, ServiceError> {
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(RESET_AFTER),
            reboot_msg: None,
            command: None,
            actions: Some(
                RESTART_DELAYS
                    .iter()
                    .map(|&delay| ServiceAction {
                        action_type: ServiceActionType::Restart,
                        delay,
                    })
                    .collect(),
            ),
        })
        .map_err(failed("setting the recovery actions"))?;
    match service.set_failure_actions_on_non_crash_failures(true) {
        Ok(()) => Ok(Vec::new()),
        Err(err) if is_invalid_level(&err) => Ok(vec![InstallWarning::NoRecoveryOnErrorExit]),
        Err(err) => Err(failed("enabling recovery on error exits")(err)),
    }
}

/// Stops the service if it runs (waiting up to [`STOP_TIMEOUT`]), deletes it, and returns once
/// the manager no longer lists it (again up to [`STOP_TIMEOUT`]): a deleted service stays
/// listed until its process has exited and every handle to it is closed, and installing it
/// again before then fails. A service that is not installed is not an error (`Ok(false)`).
pub fn uninstall(name: &str) -> Result<bool, ServiceError> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = match manager.open_service(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    ) {
        Ok(service) => service,
        Err(err) if is_not_installed(&err) => return Ok(false),
        Err(err) => return Err(failed(&format!("opening service {name}"))(err)),
    };
    let status = service
        .query_status()
        .map_err(failed("querying the service"))?;
    if status.current_state != ServiceState::Stopped {
        if status.current_state != ServiceState::StopPending {
            service.stop().map_err(failed("stopping the service"))?;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let state = service
                .query_status()
                .map_err(failed("querying the service"))?
                .current_state;
            if state == ServiceState::Stopped {
                break;
            }
            if Instant::now() > deadline {
                return Err(ServiceError::StopTimeout(name.to_owned(), STOP_TIMEOUT));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    service.delete().map_err(failed("deleting the service"))?;
    drop(service);
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match manager.open_service(name, ServiceAccess::QUERY_STATUS) {
            Err(err) if is_not_installed(&err) => return Ok(true),
            Err(err) => return Err(failed(&format!("opening service {name}"))(err)),
            Ok(_) if Instant::now() > deadline => {
                return Err(ServiceError::StillListed(name.to_owned(), STOP_TIMEOUT));
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The installed service's state and configuration, or `None` when it is not installed.
pub fn query(name: &str) -> Result<Option<Installed>, ServiceError> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = match manager.open_service(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    ) {
        Ok(service) => service,
        Err(err) if is_not_installed(&err) => return Ok(None),
        Err(err) => return Err(failed(&format!("opening service {name}"))(err)),
    };
    let status = service
        .query_status()
        .map_err(failed("querying the service"))?;
    let config = service
        .query_config()
        .map_err(failed("querying the service configuration"))?;
    let recovery = match service.get_failure_actions() {
        Ok(actions) => Some(Recovery {
            restart_delays: actions
                .actions
                .unwrap_or_default()
                .iter()
                .map(|action| {
                    (action.action_type == ServiceActionType::Restart).then_some(action.delay)
                })
                .collect(),
            reset_after: match actions.reset_period {
                ServiceFailureResetPeriod::After(after) => Some(after),
                ServiceFailureResetPeriod::Never => None,
            },
        }),
        Err(err) if is_invalid_level(&err) => None,
        Err(err) => return Err(failed("querying the recovery actions")(err)),
    };
    let recover_on_error_exit = match service.get_failure_actions_on_non_crash_failures() {
        Ok(enabled) => Some(enabled),
        Err(err) if is_invalid_level(&err) => None,
        Err(err) => return Err(failed("querying recovery on error exits")(err)),
    };
    Ok(Some(Installed {
        state: match status.current_state {
            ServiceState::Stopped => State::Stopped,
            ServiceState::StartPending => State::Starting,
            ServiceState::StopPending => State::Stopping,
            ServiceState::Running => State::Running,
            _ => State::Other,
        },
        automatic_start: config.start_type == ServiceStartType::AutoStart,
        executable: config.executable_path,
        account: config
            .account_name
            .map(|account| account.to_string_lossy().into_owned()),
        recovery,
        recover_on_error_exit,
    }))
}

/// Starts an installed service.
pub fn start(name: &str) -> Result<(), ServiceError> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(name, ServiceAccess::START)
        .map_err(failed(&format!("opening service {name}")))?;
    service
        .start::<&OsStr>(&[])
        .map_err(failed(&format!("starting service {name}")))
}

/// Runs `body` as the service `name` under the service control manager; blocks until the
/// service has stopped. Only for a process the manager started; once per process.
pub fn run(name: &str, body: ServiceBody) -> Result<(), ServiceError> {
    RUNNING
        .set((name.to_owned(), body))
        .map_err(|_| ServiceError::AlreadyRunning)?;
    service_dispatcher::start(name, ffi_service_main)
        .map_err(failed("starting the service dispatcher"))
}

impl Shutdown {
    /// Asks the body to stop.
    pub fn request(&self) {
        let (flag, wake) = &*self.inner;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// Whether stopping was asked for.
    pub fn is_requested(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until stopping is asked for or `timeout` passes; true when it was asked for.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (flag, wake) = &*self.inner;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = wake
            .wait_timeout_while(guard, timeout, |requested| !*requested)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// The service the dispatcher runs in this process: its name and body.
static RUNNING: OnceLock<(String, ServiceBody)> = OnceLock::new();

windows_service::define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let Some((name, body)) = RUNNING.get() else {
        return;
    };
    let shutdown = Shutdown::default();
    let on_control = {
        let shutdown = shutdown.clone();
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                shutdown.request();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    // Without a status handle the manager cannot be told anything; it times the start out.
    let Ok(status) = service_control_handler::register(name, on_control) else {
        return;
    };
    let report = |state: ServiceState, accept: ServiceControlAccept, exit_code: ServiceExitCode| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    // Best effort: a service that cannot set its own recovery actions still runs.
    let _ = apply_recovery(name);
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::NO_ERROR,
    );
    let exit_code = match body(shutdown) {
        Ok(()) => ServiceExitCode::NO_ERROR,
        // A service-specific non-zero exit is a failure the recovery actions restart.
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit_code,
    );
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, ServiceError> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(failed("connecting to the service control manager"))
}

fn failed(what: &str) -> impl FnOnce(windows_service::Error) -> ServiceError + '_ {
    move |source| ServiceError::Manager {
        what: what.to_owned(),
        source,
    }
}

/// `ERROR_INVALID_LEVEL` (124): a configuration level this service control manager lacks.
fn is_invalid_level(err: &windows_service::Error) -> bool {
    matches!(err, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(124))
}

/// `ERROR_SERVICE_DOES_NOT_EXIST` (1060).
fn is_not_installed(err: &windows_service::Error) -> bool {
    matches!(err, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(1060))
}

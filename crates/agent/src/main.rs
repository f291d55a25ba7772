//! The `osiris-agent` binary: parse arguments, set up logging and the runtime, run one
//! subcommand from the library, and map its outcome to an exit code (0 success, 1 failure,
//! 2 usage, 78 not enrolled or unusable state). The same commands on Linux and Windows; the
//! platform (`agent::platform::Linux` or `Windows`) decides what `install`, `uninstall` and
//! `run --service` do.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agent::cli::{Command, EnrollFrom, USAGE};
use agent::enroll::EnrollOptions;
#[cfg(target_os = "linux")]
use agent::platform::Linux as ThisPlatform;
use agent::platform::Platform;
#[cfg(windows)]
use agent::platform::Windows as ThisPlatform;
use agent::run::RunError;
use agent::state::{StateDir, StateError};
use anyhow::Context as _;

/// `EX_CONFIG`: not enrolled, or the state cannot be used; restarting does not help.
const EXIT_CONFIG: u8 = 78;
/// A command line that cannot be run.
const EXIT_USAGE: u8 = 2;

#[allow(
    clippy::print_stderr,
    reason = "the binary reports its final error on stderr"
)]
fn main() -> ExitCode {
    let command = match agent::cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let platform = Arc::new(ThisPlatform);
    init_tracing(&command, platform.as_ref());
    match dispatch(command, platform) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            let config = err
                .chain()
                .any(|cause| matches!(cause.downcast_ref::<RunError>(), Some(RunError::State(_))));
            ExitCode::from(if config { EXIT_CONFIG } else { 1 })
        }
    }
}

fn dispatch(command: Command, platform: Arc<dyn Platform>) -> anyhow::Result<ExitCode> {
    let state_dir =
        |dir: Option<PathBuf>| StateDir::new(&dir.unwrap_or_else(|| platform.default_state_dir()));
    let mut out = std::io::stdout().lock();
    match command {
        Command::Help => write!(out, "{USAGE}")?,
        Command::Version => writeln!(out, "osiris-agent {}", env!("CARGO_PKG_VERSION"))?,
        Command::Enroll {
            how,
            state_dir: dir,
        } => {
            let options = match how {
                EnrollFrom::Flags {
                    appliance,
                    ca_pin,
                    token,
                } => EnrollOptions {
                    gateway: appliance,
                    token: agent::enroll::read_token(&token)?,
                    ca_pin,
                },
                EnrollFrom::Link(source) => agent::enroll::read_link(&source)?,
            };
            let enrolled = runtime()?.block_on(agent::enroll::enroll(
                platform.as_ref(),
                &state_dir(dir),
                options,
            ))?;
            writeln!(
                out,
                "enrolled as agent {} with {} ({} checks, configuration revision {}); state in {}",
                enrolled.agent_id,
                enrolled.gateway,
                enrolled.n_checks,
                enrolled.config_revision,
                enrolled.state_dir.display()
            )?;
            writeln!(
                out,
                "start it with `osiris-agent install` (a service) or `osiris-agent run`"
            )?;
        }
        Command::Run {
            state_dir: dir,
            service,
        } => {
            let state_dir = state_dir(dir);
            #[cfg(windows)]
            if service {
                agent::platform::run_service(state_dir)?;
                return Ok(ExitCode::SUCCESS);
            }
            // systemd needs nothing more than a process that stops at SIGTERM.
            let _ = service;
            runtime()?.block_on(agent::run::run(platform, state_dir, shutdown_signal()))?;
        }
        Command::Status {
            json,
            state_dir: dir,
        } => {
            let report = runtime()?.block_on(agent::status::report(&state_dir(dir)))?;
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", agent::status::render(&report))?;
            }
        }
        Command::Install { state_dir: dir } => {
            let state_dir = state_dir(dir);
            if !state_dir.is_enrolled() {
                return Err(StateError::NotEnrolled {
                    dir: state_dir.path().to_owned(),
                }
                .into());
            }
            let exe = std::env::current_exe().context("finding this executable")?;
            for step in platform.install_service(&exe, state_dir.path())? {
                writeln!(out, "{step}")?;
            }
        }
        Command::Uninstall => {
            for step in platform.uninstall_service()? {
                writeln!(out, "{step}")?;
            }
            writeln!(
                out,
                "the state directory {} stays; remove it to forget this enrollment",
                platform.default_state_dir().display()
            )?;
        }
        Command::Check { json } => {
            let results = agent::check_once(platform.as_ref()).context("checking this machine")?;
            if json {
                serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "results": results }))?;
                writeln!(out)?;
            } else {
                for result in &results {
                    writeln!(
                        out,
                        "{:<8} {}  {}",
                        result.status, result.check, result.reason
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One thread: the agent spends its life waiting, and a small footprint matters more.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Resolves at the first SIGTERM or SIGINT; a second one exits at once.
#[cfg(unix)]
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("Signal handlers could not be installed; stop the agent with SIGKILL.");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("Second signal: exiting now.");
        std::process::exit(1);
    });
}

/// Resolves at the first Ctrl+C, Ctrl+Break or closed console; a second one exits at once.
#[cfg(windows)]
async fn shutdown_signal() {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let (Ok(mut c), Ok(mut brk), Ok(mut close)) = (ctrl_c(), ctrl_break(), ctrl_close()) else {
        tracing::error!(
            "Console handlers could not be installed; end the agent's process to stop it."
        );
        return std::future::pending().await;
    };
    tokio::select! {
        _ = c.recv() => {}
        _ = brk.recv() => {}
        _ = close.recv() => {}
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = c.recv() => {}
            _ = brk.recv() => {}
        }
        tracing::warn!("Second signal: exiting now.");
        std::process::exit(1);
    });
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info` for `run`, `warn` otherwise); under
/// systemd without timestamps, which the journal adds. The Windows service has no stderr: it
/// logs to `agent.log` in its state directory.
fn init_tracing(command: &Command, platform: &dyn Platform) {
    use agent::log::{Filter, Logger};
    let run = matches!(command, Command::Run { .. });
    let default = if run {
        tracing::level_filters::LevelFilter::INFO
    } else {
        tracing::level_filters::LevelFilter::WARN
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| Filter::parse(&text))
        .unwrap_or_else(|| Filter::at(default));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    if let Command::Run {
        service: true,
        state_dir,
    } = command
        && cfg!(windows)
    {
        let dir = state_dir
            .clone()
            .unwrap_or_else(|| platform.default_state_dir());
        if let Some(file) = service_log(&dir) {
            Logger::new(filter, Box::new(file), true).install();
            return;
        }
    }
    Logger::new(filter, Box::new(std::io::stderr()), !journald).install();
}

/// The service's log file, `agent.log` in `dir`, appended to; at start, one that passed
/// [`LOG_ROTATE_BYTES`] becomes `agent.log.1` (replacing the one before). `None` when it cannot
/// be opened (the directory is missing: the agent is not enrolled, which the service then
/// reports to the service control manager as a failure).
fn service_log(dir: &std::path::Path) -> Option<std::fs::File> {
    let path = dir.join("agent.log");
    if std::fs::metadata(&path).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&path, dir.join("agent.log.1"));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()
}

/// See [`service_log`].
const LOG_ROTATE_BYTES: u64 = 8 << 20;

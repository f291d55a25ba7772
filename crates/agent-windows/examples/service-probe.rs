//! A program the Windows service tests install and start as a service: with `--service MARKER`
//! it runs under the service control manager through `agent_windows::service::run`, writes
//! `running` to MARKER, waits for the stop request and writes `stopped`.

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("--service") || args.len() != 3 {
        return std::process::ExitCode::from(2);
    }
    if MARKER.set(std::path::PathBuf::from(&args[2])).is_err() {
        return std::process::ExitCode::from(1);
    }
    match agent_windows::service::run("OsirisProbe", body) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::from(1),
    }
}

#[cfg(windows)]
static MARKER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

#[cfg(windows)]
fn body(shutdown: agent_windows::service::Shutdown) -> Result<(), String> {
    let marker = MARKER.get().ok_or("no marker path")?;
    std::fs::write(marker, "running").map_err(|err| err.to_string())?;
    while !shutdown.wait_timeout(std::time::Duration::from_secs(60)) {}
    std::fs::write(marker, "stopped").map_err(|err| err.to_string())
}

#[cfg(not(windows))]
fn main() {}

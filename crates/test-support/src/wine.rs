//! Wine for tests: runs a cross-built Windows executable (the agent's `x86_64-pc-windows-gnu`
//! build) under Debian's `wine64` in a throwaway prefix, headless (no display, no desktop
//! entries, no Mono or Gecko prompts), with `HOME` inside the prefix's directory so nothing
//! touches the developer's home. Dropping the `Wine` ends this prefix's `wineserver` (only
//! this prefix's) and removes the directory.
//!
//! Wine 8 (Debian 12) has no `bcryptprimitives.dll`, from which Rust's standard library (1.78
//! and later) imports `ProcessPrng`; without it no Rust program for Windows starts. Every prefix
//! gets a small stand-in (`wine/bcryptprimitives.c`, built with mingw-w64's gcc) that fills the
//! buffer from `RtlGenRandom`. Real Windows 10 and later have the DLL.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::root::{find_program, gate};

/// The environment variable through which `scripts/test` hands the tests the cross-built agent.
pub const AGENT_EXE_VAR: &str = "OSIRIS_AGENT_WINDOWS_EXE";

/// The mingw-w64 C compiler (Debian's `gcc-mingw-w64-x86-64`), for the stand-in DLL.
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// A throwaway Wine prefix.
#[derive(Debug)]
pub struct Wine {
    dir: tempfile::TempDir,
    wine: PathBuf,
}

/// What went wrong preparing or running Wine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WineError {
    /// A program could not be started or waited for.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A preparation step exited unsuccessfully.
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// A program under Wine did not finish in time (it was killed).
    #[error("{0} did not finish within {1:?} under Wine")]
    Timeout(String, Duration),
}

/// Whether Wine and mingw-w64 are here: `true` to go on; otherwise a loud skip, or a failure
/// under `OSIRIS_REQUIRE_ROOT=1` or `CI` (the rule of `require_root`).
pub fn require_wine(test: &str) -> bool {
    let mut missing = Vec::new();
    if wine_program().is_none() {
        missing.push("`wine` (Debian's wine64; scripts/setup-windows installs it)".to_owned());
    }
    if find_program(MINGW_GCC).is_none() {
        missing.push(format!("`{MINGW_GCC}` (scripts/setup-windows installs it)"));
    }
    gate(test, &missing)
}

/// Whether every program in `tools` is installed (e.g. `wixl`, `osslsigncode`): `true` to go
/// on; otherwise a loud skip, or a failure under `OSIRIS_REQUIRE_ROOT=1` or `CI`.
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|tool| find_program(tool).is_none())
        .map(|tool| format!("`{tool}` (scripts/setup-windows installs it)"))
        .collect();
    gate(test, &missing)
}

/// The cross-built agent that `scripts/test` names in [`AGENT_EXE_VAR`]: `Some` to go on;
/// otherwise a loud skip, or a failure under `OSIRIS_REQUIRE_ROOT=1` or `CI`.
pub fn agent_exe(test: &str) -> Option<PathBuf> {
    let missing = match std::env::var_os(AGENT_EXE_VAR) {
        Some(path) if Path::new(&path).is_file() => return Some(PathBuf::from(path)),
        Some(path) => format!(
            "{AGENT_EXE_VAR}={} (not a file; build it with `cargo build -p agent --profile agent --target x86_64-pc-windows-gnu`)",
            Path::new(&path).display()
        ),
        None => format!(
            "{AGENT_EXE_VAR} (the cross-built osiris-agent.exe; scripts/test builds it and sets it)"
        ),
    };
    gate(test, &[missing]);
    None
}

/// The workspace's own binaries `names` (each with the package that builds it, for the hint)
/// from the running test's target directory (`target/debug/`, which `cargo test --workspace`
/// fills before any test runs; a test of another package cannot use `CARGO_BIN_EXE_…`): `Some`
/// with their paths to go on; otherwise a loud skip, or a failure under `OSIRIS_REQUIRE_ROOT=1`
/// or `CI`.
pub fn workspace_binaries(test: &str, names: &[(&str, &str)]) -> Option<Vec<PathBuf>> {
    // The test binary is target/debug/deps/NAME-HASH.
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf));
    let found: Vec<Option<PathBuf>> = names
        .iter()
        .map(|(name, _)| {
            dir.as_ref()
                .map(|dir| dir.join(name))
                .filter(|path| path.is_file())
        })
        .collect();
    let missing: Vec<String> = names
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|((name, package), _)| {
            format!("`{name}` beside the test binary (build it with `cargo build -p {package}`)")
        })
        .collect();
    if gate(test, &missing) {
        found.into_iter().collect()
    } else {
        None
    }
}

impl Wine {
    /// A fresh prefix, initialised (`wineboot --init`) and given the `bcryptprimitives.dll`
    /// stand-in.
    pub fn new() -> Result<Wine, WineError> {
        let wine = wine_program().ok_or_else(|| WineError::Io {
            what: "finding wine".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let dir = tempfile::Builder::new()
            .prefix("osiris-wine-")
            .tempdir()
            .map_err(|source| WineError::Io {
                what: "creating the Wine directory".into(),
                source,
            })?;
        std::fs::create_dir_all(dir.path().join("home")).map_err(|source| WineError::Io {
            what: "creating the Wine HOME".into(),
            source,
        })?;
        let this = Wine { dir, wine };
        let boot = this
            .builtin("wineboot")
            .arg("--init")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| WineError::Io {
                what: "running wineboot".into(),
                source,
            })?;
        succeeded("wineboot --init", &boot)?;
        // Wait for wineboot's wineserver (and its services.exe) to exit: a program started while
        // it lingers gets a second services.exe, and service calls then reach either at random.
        this.wait_for_server();
        let system32 = this.prefix().join("drive_c/windows/system32");
        let source = this.dir.path().join("bcryptprimitives.c");
        std::fs::write(&source, include_str!("wine/bcryptprimitives.c")).map_err(|source| {
            WineError::Io {
                what: "writing the bcryptprimitives stand-in".into(),
                source,
            }
        })?;
        let built = Command::new(MINGW_GCC)
            .args(["-shared", "-O2", "-s", "-o"])
            .arg(system32.join("bcryptprimitives.dll"))
            .arg(&source)
            .arg("-ladvapi32")
            .output()
            .map_err(|source| WineError::Io {
                what: format!("running {MINGW_GCC}"),
                source,
            })?;
        succeeded("building bcryptprimitives.dll", &built)?;
        Ok(this)
    }

    /// The prefix (`WINEPREFIX`); `drive_c` is `C:`.
    pub fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    /// A command that runs `exe` under this prefix with its environment set; add arguments and
    /// environment, then spawn it (or use [`Wine::run`]).
    pub fn command(&self, exe: &Path) -> Command {
        let mut command = Command::new(&self.wine);
        self.environment(&mut command);
        command.arg(exe);
        command
    }

    /// Runs `exe args…` with the extra environment `env`, stdin closed, and waits for it up
    /// to `timeout` (then kills it and this prefix's Wine processes).
    pub fn run<I, S>(
        &self,
        exe: &Path,
        args: I,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Output, WineError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(exe);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let name = exe.display().to_string();
        let mut child = command.spawn().map_err(|source| WineError::Io {
            what: format!("starting {name} under Wine"),
            source,
        })?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.kill_server();
                    return Err(WineError::Timeout(name, timeout));
                }
                Err(source) => {
                    return Err(WineError::Io {
                        what: format!("waiting for {name}"),
                        source,
                    });
                }
            }
        }
        child.wait_with_output().map_err(|source| WineError::Io {
            what: format!("reading the output of {name}"),
            source,
        })
    }

    /// A command that runs one of Wine's own programs in this prefix (`reg`, `sc`, `wineboot`, …).
    pub fn builtin(&self, program: &str) -> Command {
        let mut command = Command::new(&self.wine);
        self.environment(&mut command);
        command.arg(program);
        command
    }

    fn environment(&self, command: &mut Command) {
        command
            .env("WINEPREFIX", self.prefix())
            .env("WINEARCH", "win64")
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installers, no desktop entries in a menu.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml,winemenubuilder.exe=")
            .env("HOME", self.dir.path().join("home"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("XDG_RUNTIME_DIR");
    }

    /// A Windows path's place on this machine: `C:\x\y` is `<prefix>/drive_c/x/y`.
    pub fn host_path(&self, windows_path: &str) -> PathBuf {
        let rest = windows_path
            .strip_prefix("C:\\")
            .or_else(|| windows_path.strip_prefix("c:\\"))
            .unwrap_or(windows_path);
        rest.split('\\')
            .filter(|part| !part.is_empty())
            .fold(self.prefix().join("drive_c"), |path, part| path.join(part))
    }

    /// Ends this prefix's wineserver and every Wine process in it (`wineserver -k` with this
    /// `WINEPREFIX`: other prefixes are untouched).
    fn kill_server(&self) {
        if let Some(server) = wineserver_program() {
            let _ = Command::new(server)
                .arg("-k")
                .env("WINEPREFIX", self.prefix())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        self.kill_server();
        self.wait_for_server();
    }
}

impl Wine {
    /// Waits until this prefix's wineserver has exited (`wineserver -w`), which it does a few
    /// seconds after its last process: a program started while it lingers can get a second
    /// `services.exe`, and service calls then reach either at random.
    pub fn wait_for_server(&self) {
        if let Some(server) = wineserver_program() {
            let _ = Command::new(server)
                .arg("-w")
                .env("WINEPREFIX", self.prefix())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn wine_program() -> Option<PathBuf> {
    // Debian's `wine` wrapper picks the 64-bit loader when there is no 32-bit Wine.
    find_program("wine")
        .or_else(|| find_program("wine64"))
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
}

fn wineserver_program() -> Option<PathBuf> {
    find_program("wineserver")
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wineserver")).filter(|p| p.is_file()))
}

fn succeeded(what: &str, output: &Output) -> Result<(), WineError> {
    if output.status.success() {
        return Ok(());
    }
    Err(WineError::Failed {
        what: what.to_owned(),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

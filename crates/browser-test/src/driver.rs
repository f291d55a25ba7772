//! The ChromeDriver process: started in its own process group with a cleared environment whose
//! home is a temporary directory, on a port it picks itself, and killed with its whole group.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How long ChromeDriver may take to say which port it listens on.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running ChromeDriver; dropping it kills its process group (the browser included).
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `program` with `--port=0` and waits for the port it reports. `home` becomes
    /// `HOME` and the XDG directories (so neither ChromeDriver, Chromium nor Chromium's crash
    /// handler touches the real home directory); ChromeDriver's and the browser's output goes to
    /// `home/chromedriver.log`, temporary files to `home/tmp`.
    pub(crate) fn start(program: &Path, home: &Path) -> Result<Driver> {
        // Chromium's shared memory files (`--disable-dev-shm-usage`) and ChromeDriver's scoped
        // directories go here too, so even a killed browser leaves nothing in /tmp.
        let tmp = home.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| Error::Io {
            action: "writing",
            path: tmp.clone(),
            source,
        })?;
        let log_path = home.join("chromedriver.log");
        let log = File::create(&log_path).map_err(|source| Error::Io {
            action: "writing",
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| Error::Io {
            action: "writing",
            path: log_path.clone(),
            source,
        })?;
        let mut command = Command::new(program);
        command
            .args(["--port=0", "--log-level=SEVERE"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("TMPDIR", &tmp)
            // Pages that format dates or numbers render the same on every machine.
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Its own process group, so one signal reaches the browser's processes too.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|err| Error::Start {
            message: format!("{}: {err}", program.display()),
        })?;
        // From here on, `Drop` kills the group whatever happens.
        let mut driver = Driver { child, port: 0 };
        driver.port = wait_for_port(&mut driver.child, &log_path)?;
        Ok(driver)
    }

    /// The port ChromeDriver listens on (loopback).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// ChromeDriver's process id (also its process group's).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // No libc here (unsafe code is forbidden): kill(1) signals the whole group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads ChromeDriver's log until it says `ChromeDriver was started successfully on port N.`.
fn wait_for_port(child: &mut Child, log_path: &Path) -> Result<u16> {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        if let Some(port) = reported_port(&log) {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Start {
                message: format!(
                    "chromedriver exited ({status}) before listening: {}",
                    log.trim()
                ),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(Error::Start {
                message: format!(
                    "chromedriver did not report its port within {START_TIMEOUT:?}: {}",
                    log.trim()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reported_port(log: &str) -> Option<u16> {
    let rest = log.split("started successfully on port ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

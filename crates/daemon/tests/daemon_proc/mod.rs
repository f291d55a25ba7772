//! A real `osirisd` started by a lab test (`lab_daemon.rs`, `lab_l2.rs`): its log appended to a
//! file, killed when dropped, and a bounded wait that shows that log when it gives up.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon's process, killed on drop.
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `osirisd --config CONFIG`, its stderr appended to `log`.
pub(crate) fn start(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_osirisd"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Daemon(child)
}

/// Polls `f` every 100 ms until it returns `Some`, or fails after `secs` with `what` and the
/// daemon's log.
pub(crate) fn wait_for<T>(
    secs: u64,
    what: &str,
    log: &Path,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}; daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

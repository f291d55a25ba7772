//! The real `osiris-console` under tmux against a real `osirisd`: the binaries beside the test's
//! own, the session and the daemon (both ended when the test ends), keys, and waiting for text on
//! the screen.
//!
//! `osirisd` and `osiris` are taken from the same build directory as `osiris-console`
//! (`cargo test --workspace` builds all three before any test runs).

#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Ends the tmux session and the daemon when dropped.
pub struct Cleanup {
    pub daemon: Child,
    pub session: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A binary built beside `osiris-console`.
pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_osiris-console")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// Runs tmux; its stdout, after checking it succeeded.
pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the console in a detached session of `width`×`height` talking to `socket`.
pub fn start_console(session: &str, socket: &Path, width: u16, height: u16) {
    let console = sibling("osiris-console");
    tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        &width.to_string(),
        "-y",
        &height.to_string(),
        "-e",
        "TERM=tmux-256color",
        &format!("{} --socket {}", console.display(), socket.display()),
    ]);
}

/// What the session shows now.
pub fn screen(session: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", session])
}

/// Waits until the screen shows `text`; fails with the screen and the daemon log.
pub fn wait_for(session: &str, text: &str, secs: u64, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = screen(session);
        if now.contains(text) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "waited {secs} s for {text:?}; the screen shows:\n{now}\ndaemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends keys in order; the console reads them in order, so a test waits on the screen only
/// where a key starts something asynchronous (a request to the daemon, a new dialog).
pub fn keys(session: &str, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", session];
    args.extend_from_slice(keys);
    tmux(&args);
}

/// Types `literal` as text.
pub fn text(session: &str, literal: &str) {
    tmux(&["send-keys", "-t", session, "-l", literal]);
}

/// Whether tmux is installed (the test needs no root): the project's skip-or-fail gate.
pub fn available(test: &str) -> bool {
    test_support::root::require_tools(test, &["tmux"])
}

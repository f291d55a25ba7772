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

/// Starts `osirisd --config CONFIG` (its log in `log`), waits for its API, sets the console
/// PIN and completes setup as the wizard would; then starts the console in `session` at
/// 160×48 and unlocks it with the PIN, so the test begins on the home screen. The returned
/// guard ends both.
pub fn unlocked_console(
    config: &Path,
    socket: &Path,
    log: &Path,
    session: &str,
    pin: &str,
) -> (Cleanup, api::Client) {
    let daemon = Command::new(sibling("osirisd"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let cleanup = Cleanup {
        daemon,
        session: session.to_owned(),
    };
    let client = api::Client::new(socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.status().is_err() {
        assert!(
            Instant::now() < deadline,
            "osirisd did not answer within 20 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    client
        .call(
            &api::endpoint::SetPin,
            &api::PinRequest {
                pin: pin.into(),
                current_pin: None,
            },
        )
        .unwrap();
    client
        .call(&api::endpoint::CompleteSetup, &api::endpoint::Empty {})
        .unwrap();
    start_console(session, socket, 160, 48);
    wait_for(session, "This console is locked.", 30, log);
    text(session, pin);
    keys(session, &["Enter"]);
    wait_for(session, "╭ Today", 30, log);
    (cleanup, client)
}

/// Whether tmux is installed (the test needs no root): the project's skip-or-fail gate.
pub fn available(test: &str) -> bool {
    test_support::root::require_tools(test, &["tmux"])
}

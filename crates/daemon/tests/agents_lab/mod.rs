//! The namespace lab with real `osiris-agent`s and a real `osirisd` (`lab_agents.rs`,
//! `lab_workstations.rs`): starting the daemon, tokens, and agents inside lab targets.

#![allow(dead_code, reason = "each test binary uses its own part")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::lab::Lab;

pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process inside a lab target, killed on drop.
pub(crate) struct InTarget(pub(crate) Child);

impl Drop for InTarget {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary built beside `osirisd` (scripts/test builds the workspace's binaries first).
pub(crate) fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p agent -p cli`)",
        path.display()
    );
    path
}

/// `nsenter` into lab target `n` (its namespaces and its root), running `args`.
pub(crate) fn in_target(lab: &Lab, n: usize, args: &[&str]) -> Command {
    let pid = std::fs::read_to_string(lab.dir.join(format!("run/h{n}.pid"))).unwrap();
    let mut command = Command::new("nsenter");
    command
        .args(["--target", pid.trim(), "--mount", "--uts", "--ipc", "--net"])
        // No fork: the agent is the process started here, so killing it (SIGKILL) kills the agent
        // and not an nsenter that would leave it running (it stays in the host's PID namespace,
        // which none of the checks used here looks at).
        .args(["--root", "--wd", "--no-fork", "--"])
        .args(args);
    command
}

pub(crate) fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) struct Site {
    pub(crate) dir: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) socket: PathBuf,
}

impl Site {
    pub(crate) fn start(&self) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("osirisd.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_osirisd"))
            .args(["--config", self.config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Daemon(child);
        wait(Duration::from_secs(30), "osirisd answers", || {
            api::Client::new(&self.socket).status().is_ok()
        });
        daemon
    }

    pub(crate) fn agents(&self) -> api::AgentsState {
        api::Client::new(&self.socket)
            .call(&api::endpoint::Agents, &())
            .unwrap()
    }

    pub(crate) fn token(&self, uses: &str) -> api::AgentToken {
        let out = Command::new(sibling("osiris"))
            .args([
                "agent",
                "token",
                "create",
                "--uses",
                uses,
                "--expires",
                "1h",
                "--json",
            ])
            .args(["--config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub(crate) fn wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `osiris-agent enroll` inside target `n`, the token on stdin.
pub(crate) fn enroll(lab: &Lab, n: usize, token: &api::AgentToken, pin: &str) -> Output {
    let agent = sibling("osiris-agent");
    let mut command = in_target(
        lab,
        n,
        &[
            agent.to_str().unwrap(),
            "enroll",
            "--appliance",
            &token.gateway,
            "--ca-pin",
            pin,
            "--token",
            "-",
        ],
    );
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", token.token).as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `osiris-agent run` inside target `n`, until dropped.
pub(crate) fn agent_run(lab: &Lab, n: usize, log: &Path) -> InTarget {
    let agent = sibling("osiris-agent");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = in_target(lab, n, &[agent.to_str().unwrap(), "run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    InTarget(child)
}

/// The agent's own account of its queue inside target `n`.
pub(crate) fn agent_status(lab: &Lab, n: usize) -> serde_json::Value {
    let agent = sibling("osiris-agent");
    let out = run(in_target(
        lab,
        n,
        &[agent.to_str().unwrap(), "status", "--json"],
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

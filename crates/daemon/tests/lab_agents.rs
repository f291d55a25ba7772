//! Issue 17 acceptance against the namespace lab: real `osiris-agent`s inside lab targets (their
//! own network, mount, PID and UTS namespaces) enroll against a real `osirisd` on the lab bridge;
//! drift on one becomes an incident and is healed through its agent and sealed; `osirisd` killed
//! and restarted mid-stream loses and duplicates nothing; an agent killed at random points twenty
//! times while the appliance is away delivers exactly what it queued; refusals (used token, wrong
//! CA pin) store nothing; the evidence kit accounts for every number of every agent.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::lab::{LAB_TOOLS, Lab};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process inside a lab target, killed on drop.
struct InTarget(Child);

impl Drop for InTarget {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary built beside `osirisd` (scripts/test builds the workspace's binaries first).
fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p agent -p cli`)",
        path.display()
    );
    path
}

/// `nsenter` into lab target `n` (its namespaces and its root), running `args`.
fn in_target(lab: &Lab, n: usize, args: &[&str]) -> Command {
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

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Site {
    dir: PathBuf,
    config: PathBuf,
    socket: PathBuf,
}

impl Site {
    fn start(&self) -> Daemon {
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

    fn agents(&self) -> api::AgentsState {
        api::Client::new(&self.socket)
            .call(&api::endpoint::Agents, &())
            .unwrap()
    }

    fn token(&self, uses: &str) -> api::AgentToken {
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

fn wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
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
fn enroll(lab: &Lab, n: usize, token: &api::AgentToken, pin: &str) -> Output {
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
fn agent_run(lab: &Lab, n: usize, log: &Path) -> InTarget {
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
fn agent_status(lab: &Lab, n: usize) -> serde_json::Value {
    let agent = sibling("osiris-agent");
    let out = run(in_target(
        lab,
        n,
        &[agent.to_str().unwrap(), "status", "--json"],
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stored(site: &Site, host: &str) -> u64 {
    site.agents()
        .agents
        .iter()
        .find(|a| a.hostname == host)
        .map_or(0, |a| a.stored_seq)
}

#[test]
fn lab_agents_enroll_heal_survive_restarts_and_deliver_exactly_what_they_queued() {
    let mut tools = LAB_TOOLS.to_vec();
    tools.push("nsenter");
    if !test_support::require_root(
        "lab_agents_enroll_heal_survive_restarts_and_deliver_exactly_what_they_queued",
        &tools,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &dir.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let site = Site {
        dir: dir.path().to_owned(),
        config: dir.path().join("appliance.toml"),
        socket: dir.path().join("run/api.sock"),
    };
    // The gateway listens on the lab bridge, where the targets reach it, on a port that stays the
    // same across restarts (the agents keep the address they enrolled with); no SSH targets, so
    // every result comes from the agents.
    let port = std::net::TcpListener::bind("10.77.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &site.config,
        format!(
            "site = \"lab\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"10.77.0.1:{port}\"\ncheck_secs = 60\nheartbeat_secs = 10\nchecks = [\"LIN-SSH-001\", \"LIN-PERM-001\", \"LIN-CRYPTO-001\"]\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            site.socket.display(),
        ),
    )
    .unwrap();
    let daemon = site.start();
    let token = site.token("2");

    // A wrong pin is refused before anything is sent or stored.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = enroll(&lab, 1, &token, &wrong);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&token.ca_pin),
        "names the CA it found: {}",
        text(&out.stderr)
    );
    assert!(site.agents().agents.is_empty());

    // Both targets enroll with the two uses; a third enrollment finds the token used up.
    for n in [1, 2] {
        let out = enroll(&lab, n, &token, &token.ca_pin);
        assert!(
            out.status.success(),
            "target{n}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let out = enroll(&lab, 1, &token, &token.ca_pin);
    assert!(
        !out.status.success(),
        "a used-up token, and an agent that is enrolled already"
    );
    assert_eq!(site.agents().agents.len(), 2);

    let logs = dir.path().join("agents.log");
    let mut agent1 = agent_run(&lab, 1, &logs);
    let agent2 = agent_run(&lab, 2, &logs);
    wait(
        Duration::from_secs(60),
        "both agents delivered results",
        || stored(&site, "target1") > 0 && stored(&site, "target2") > 0,
    );

    // Drift on target1: root may log in over SSH. Its agent finds it at its next run (started
    // again, every check runs within its jitter), L1 has the agent fix it, the fix is sealed.
    let out = run(in_target(
        &lab,
        1,
        &[
            "sh",
            "-c",
            "sed -i 's/^PermitRootLogin .*/PermitRootLogin yes/' /etc/ssh/sshd_config && grep PermitRootLogin /etc/ssh/sshd_config",
        ],
    ));
    assert!(
        text(&out.stdout).contains("PermitRootLogin yes"),
        "{}",
        text(&out.stderr)
    );
    drop(agent1);
    agent1 = agent_run(&lab, 1, &logs);
    wait(
        Duration::from_secs(90),
        "the drift on target1 was healed through its agent",
        || {
            api::Client::new(&site.socket)
                .call(&api::endpoint::Healing { limit: 100 }, &())
                .unwrap()
                .iter()
                .any(|h| h.target == "target1" && h.check == "LIN-SSH-001" && h.result == "fixed")
        },
    );
    let out = run(in_target(
        &lab,
        1,
        &["grep", "^PermitRootLogin", "/etc/ssh/sshd_config"],
    ));
    assert_eq!(
        text(&out.stdout).trim(),
        "PermitRootLogin no",
        "the agent fixed the target itself"
    );

    // osirisd killed mid-stream and restarted: the agents reconnect and go on.
    let before = (stored(&site, "target1"), stored(&site, "target2"));
    let mut daemon = daemon;
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    drop(daemon);
    let daemon = site.start();
    wait(Duration::from_secs(90), "both agents reconnected", || {
        let agents = site.agents().agents;
        agents.len() == 2 && agents.iter().all(|a| a.connected)
    });
    assert!(stored(&site, "target1") >= before.0 && stored(&site, "target2") >= before.1);

    // The appliance away: target2's agent queues while it is killed at random points 20 times
    // (each start runs its checks within their jitter, 6 s here, so some runs queue results and
    // some are killed before, during or after).
    drop(daemon);
    drop(agent2);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20 {
        let agent = agent_run(&lab, 2, &logs);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(1_500 + seed % 5_000));
        drop(agent); // SIGKILL
    }
    let queued = agent_status(&lab, 2);
    let newest = queued["queue"]["newest_seq"].as_u64().unwrap();
    let acked = queued["queue"]["acked_through"].as_u64().unwrap();
    assert!(
        newest > acked,
        "the agent queued while the appliance was away: {queued}"
    );
    let daemon = site.start();
    let agent2 = agent_run(&lab, 2, &logs);
    wait(
        Duration::from_secs(90),
        "target2 delivered what it queued",
        || stored(&site, "target2") >= newest,
    );
    drop(agent2);
    drop(agent1);
    drop(daemon);

    // The kit: every number of both agents accounted for, no gap (nothing was dropped), each
    // result signed by its device.
    let kit = dir.path().join("kit");
    let out = run({
        let mut command = Command::new(sibling("osiris"));
        command.args([
            "evidence",
            "export",
            "--out",
            kit.to_str().unwrap(),
            "--config",
            site.config.to_str().unwrap(),
        ]);
        command
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run({
        let mut command = Command::new(sibling("osiris"));
        command.args([
            "evidence",
            "verify",
            kit.to_str().unwrap(),
            "--trust-kit-key",
        ]);
        command
    });
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    let agent_lines: Vec<&str> = said
        .lines()
        .filter(|l| l.trim_start().starts_with("agent "))
        .collect();
    assert_eq!(agent_lines.len(), 2, "{said}");
    for line in agent_lines {
        assert!(!line.contains("lost"), "nothing dropped: {line}");
    }
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    assert!(
        bundles.contains("\"kind\":\"heal\"") && bundles.contains("agent_remediation"),
        "the fix is sealed"
    );
    // Exactly once: no agent number is sealed twice (verify would name a repeat too).
    let mut seen = std::collections::BTreeSet::new();
    for line in bundles.lines() {
        let bundle: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = bundle["kind"].as_str().unwrap();
        if kind == "agent_result" || kind == "agent_remediation" {
            let key = (
                bundle["body"]["agent_id"].as_str().unwrap().to_owned(),
                bundle["body"]["seq"].as_u64().unwrap(),
            );
            assert!(seen.insert(key.clone()), "sealed twice: {key:?}");
        }
    }
}

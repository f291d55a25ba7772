//! Agent self-update against a real `osirisd` with a real `osiris-agent`: a vendor-signed release
//! added on the appliance is offered, verified by the agent against the root it pins, downloaded
//! over mutual TLS, swapped in, and confirmed once the new version reaches the appliance; a
//! release whose new version cannot reach the appliance is rolled back to the old binary after
//! its trial, and not taken again.
//!
//! The "new versions" are this build's agent with its version marker rewritten (the version a
//! binary reports is the marker in it), as a rebuilt release would differ.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_release::vendor::{self, ManifestSpec, RootSpec};
use agent_release::{Platform, SecretKey, Version};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it first",
        path.display()
    );
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// This build's agent with its version marker saying `version`.
fn agent_binary(version: &str) -> Vec<u8> {
    // A test build carries tens of MB of debug information; a release carries none.
    let stripped =
        std::env::temp_dir().join(format!("osiris-agent-stripped-{}", std::process::id()));
    std::fs::copy(sibling("osiris-agent"), &stripped).unwrap();
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg(&stripped)
        .status()
        .unwrap();
    assert!(status.success(), "strip (binutils) failed");
    let mut bytes = std::fs::read(&stripped).unwrap();
    let _ = std::fs::remove_file(&stripped);
    let from = format!("osiris-agent-version={};", agent::agent_version());
    let to = format!("osiris-agent-version={version};");
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("the version marker is in the binary");
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    bytes
}

struct Site {
    dir: PathBuf,
    config: PathBuf,
    socket: PathBuf,
}

impl Site {
    fn start(&self) -> Killed {
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
        let daemon = Killed(child);
        wait(Duration::from_secs(20), "osirisd answers", || {
            api::Client::new(&self.socket).status().is_ok()
        });
        daemon
    }

    fn osiris(&self, args: &[&str]) -> String {
        let out = Command::new(sibling("osiris"))
            .args(args)
            .args(["--config", self.config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "osiris {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn agent(&self) -> Option<api::AgentView> {
        api::Client::new(&self.socket)
            .call(&api::endpoint::Agents, &())
            .ok()?
            .agents
            .into_iter()
            .next()
    }
}

/// Runs the installed agent until it exits or is dropped; its log goes to `log`.
fn run_agent(exe: &Path, state: &Path, log: &Path) -> Killed {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Killed(
        Command::new(exe)
            .args(["run", "--state-dir", state.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn release(dir: &Path, key: &SecretKey, version: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let binary = agent_binary(version);
    let binary_path = dir.join(format!("osiris-agent-{version}"));
    std::fs::write(&binary_path, &binary).unwrap();
    let manifest = vendor::sign_manifest(
        &ManifestSpec::for_binary(
            Platform::LinuxX86_64,
            version.parse::<Version>().unwrap(),
            "osiris-agent",
            &binary,
        ),
        &[key],
    )
    .unwrap();
    let manifest_path = dir.join(format!("manifest-{version}.json"));
    std::fs::write(&manifest_path, manifest).unwrap();
    (manifest_path, binary_path, binary)
}

#[test]
fn a_release_is_installed_and_confirmed_and_one_that_cannot_connect_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let vendor_dir = dir.path().join("vendor");
    std::fs::create_dir(&vendor_dir).unwrap();
    let root_key = SecretKey::generate("vendor-root-1").unwrap();
    let release_key = SecretKey::generate("vendor-release-1").unwrap();
    let root = vendor::sign_root(
        &RootSpec {
            version: 1,
            expires_unix: 4_102_444_800,
            root_keys: vec![root_key.public()],
            root_threshold: 1,
            release_keys: vec![release_key.public()],
            release_threshold: 1,
        },
        &[&root_key],
    )
    .unwrap();
    let root_path = vendor_dir.join("agent-root.json");
    std::fs::write(&root_path, &root).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = Site {
        dir: dir.path().to_owned(),
        config: dir.path().join("appliance.toml"),
        socket: dir.path().join("run/api.sock"),
    };
    std::fs::write(
        &site.config,
        format!(
            "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:{port}\"\ncheck_secs = 86400\nrelease_root = \"{}\"\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            root_path.display(),
            site.socket.display()
        ),
    )
    .unwrap();
    let mut daemon = site.start();

    // The agent installed where it may replace itself, with the vendor's root beside it.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("osiris-agent");
    std::fs::copy(sibling("osiris-agent"), &exe).unwrap();
    std::fs::write(bin.join(agent::update::ROOT_FILE_NAME), &root).unwrap();
    let state = dir.path().join("state");
    let token: api::AgentToken =
        serde_json::from_str(&site.osiris(&["agent", "token", "create", "--json"])).unwrap();
    let mut enroll = Command::new(&exe)
        .args([
            "enroll",
            "--appliance",
            &token.gateway,
            "--ca-pin",
            &token.ca_pin,
            "--token",
            "-",
        ])
        .args(["--state-dir", state.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    enroll
        .stdin
        .take()
        .unwrap()
        .write_all(token.token.as_bytes())
        .unwrap();
    let out = enroll.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = dir.path().join("agent.log");
    let mut agent = run_agent(&exe, &state, &log);
    wait(Duration::from_secs(30), "the agent is connected", || {
        site.agent().is_some_and(|a| a.connected)
    });
    let running = agent::agent_version();
    assert_eq!(site.agent().unwrap().agent_version, running);

    // 1. A newer release: offered, verified, downloaded, swapped in; the agent exits for it.
    let (manifest, binary_path, new_binary) = release(&vendor_dir, &release_key, "0.1.1");
    site.osiris(&[
        "agent",
        "release",
        "add",
        "--manifest",
        manifest.to_str().unwrap(),
        "--binary",
        binary_path.to_str().unwrap(),
        "--rollout",
        "100",
    ]);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = agent.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not install the update: {}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(
        status.code(),
        Some(75),
        "exits for the service manager to restart it"
    );
    assert_eq!(
        std::fs::read(&exe).unwrap(),
        new_binary,
        "the new binary is in place"
    );
    // The service manager starts it: on trial, it connects and confirms.
    agent = run_agent(&exe, &state, &log);
    wait(
        Duration::from_secs(30),
        "version 0.1.1 is connected",
        || {
            site.agent()
                .is_some_and(|a| a.connected && a.agent_version == "0.1.1")
        },
    );
    wait(
        Duration::from_secs(10),
        "the update is confirmed (the old binary removed)",
        || !bin.join("osiris-agent.old").exists(),
    );

    // 2. A release whose new version cannot reach the appliance: it is installed, then the
    // appliance is gone for the new version's whole trial; after more starts than a trial allows,
    // the old binary is put back.
    let (manifest, binary_path, _) = release(&vendor_dir, &release_key, "0.1.2");
    site.osiris(&[
        "agent",
        "release",
        "add",
        "--manifest",
        manifest.to_str().unwrap(),
        "--binary",
        binary_path.to_str().unwrap(),
        "--rollout",
        "100",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the agent did not install 0.1.2");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(daemon);
    for _ in 0..5 {
        let mut start = run_agent(&exe, &state, &log);
        std::thread::sleep(Duration::from_millis(700));
        let _ = start.0.try_wait();
        drop(start);
    }
    assert_eq!(
        std::fs::read(&exe).unwrap(),
        new_binary,
        "0.1.1 is back in place"
    );
    daemon = site.start();
    agent = run_agent(&exe, &state, &log);
    wait(Duration::from_secs(30), "0.1.1 is connected again", || {
        site.agent()
            .is_some_and(|a| a.connected && a.agent_version == "0.1.1")
    });
    // The appliance still offers 0.1.2; the agent refuses the version it rolled back.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent keeps running 0.1.1"
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("rolled back") || said.contains("did not stay"),
        "{said}"
    );
    drop(agent);
    drop(daemon);
}

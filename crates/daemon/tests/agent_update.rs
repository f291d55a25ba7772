//! Agent self-update against a real `osirisd` with a real `osiris-agent`: a vendor-signed release
//! added on the appliance is offered, verified by the agent against the root it pins, downloaded
//! over mutual TLS, swapped in, and confirmed once the new version reaches the appliance; a
//! release whose new version cannot reach the appliance is rolled back to the old binary after
//! its trial, and not taken again.
//!
//! The "new versions" are this build's agent with its version marker rewritten (the version a
//! binary reports is the marker in it), as a rebuilt release would differ.
//!
//! These agents run on the test machine itself, so the site pauses healing and lists checks that
//! only read: the appliance never remediates the machine the tests run on.

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
            "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:{port}\"\ncheck_secs = 86400\nchecks = [\"LIN-SSH-002\"]\nrelease_root = \"{}\"\n[healing]\npaused = true\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
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

/// A listener that stands where the appliance should be: `Intercepting` answers TLS with a
/// certificate of its own CA for the gateway's name (a TLS-inspecting proxy); `Blocking` answers
/// any connection with an HTTP 403 page and closes (a proxy that blocks gRPC).
#[derive(Clone, Copy)]
enum Proxy {
    Intercepting,
    Blocking,
}

fn proxy(kind: Proxy) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec![agent_proto::GATEWAY_TLS_NAME.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = std::sync::Arc::clone(&config);
            std::thread::spawn(move || {
                let mut stream = stream;
                match kind {
                    Proxy::Blocking => {
                        let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                    Proxy::Intercepting => {
                        let mut conn = rustls::ServerConnection::new(config).unwrap();
                        let mut tls = rustls::Stream::new(&mut conn, &mut stream);
                        let _ = tls.write_all(b"");
                        let _ = std::io::Read::read(&mut tls, &mut [0u8; 64]);
                    }
                }
            });
        }
    });
    addr
}

/// Where gRPC to the appliance is blocked or intercepted (a laptop on a hotel or corporate
/// network), the agent sends nothing anywhere else, keeps its results queued, says why in its
/// status, and delivers them once it reaches the appliance again.
#[test]
fn behind_a_blocking_or_intercepting_proxy_the_agent_queues_says_why_and_delivers_later() {
    let dir = tempfile::tempdir().unwrap();
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
            "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[agents]\nlisten = \"127.0.0.1:{port}\"\ncheck_secs = 60\nchecks = [\"LIN-SSH-002\", \"LIN-DISK-001\"]\n[healing]\npaused = true\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            site.socket.display()
        ),
    )
    .unwrap();
    let daemon = site.start();
    let exe = sibling("osiris-agent");
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
    assert!(enroll.wait_with_output().unwrap().status.success());
    let state_file = state.join("state.json");
    let enrolled = std::fs::read_to_string(&state_file).unwrap();
    let status = || -> serde_json::Value {
        let out = Command::new(&exe)
            .args(["status", "--json", "--state-dir", state.to_str().unwrap()])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let log = dir.path().join("agent.log");
    for (kind, words) in [
        (Proxy::Blocking, ["connecting", "not tls"]),
        (
            Proxy::Intercepting,
            ["connecting", "not from this appliance's agent ca"],
        ),
    ] {
        let addr = proxy(kind);
        std::fs::write(
            &state_file,
            enrolled.replace(&token.gateway, &addr.to_string()),
        )
        .unwrap();
        let agent = run_agent(&exe, &state, &log);
        let mut last = serde_json::Value::Null;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = status();
            let queued = now["queue"]["items"].as_u64().unwrap_or(0) > 0;
            let said = now["last_error"].as_str().is_some_and(|error| {
                let error = error.to_lowercase();
                words.iter().all(|word| error.contains(word))
            });
            if now["connected"] == serde_json::Value::Bool(false) && queued && said {
                break;
            }
            last = now;
            assert!(
                Instant::now() < deadline,
                "the agent should queue and say why it is not connected: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = last;
        drop(agent);
        assert_eq!(
            site.agent().unwrap().stored_seq,
            0,
            "nothing reached the appliance"
        );
    }
    // Back on the practice's network: everything queued is delivered.
    std::fs::write(&state_file, &enrolled).unwrap();
    let queued = status()["queue"]["newest_seq"].as_u64().unwrap();
    let agent = run_agent(&exe, &state, &log);
    wait(
        Duration::from_secs(30),
        "the queued results were delivered",
        || site.agent().is_some_and(|a| a.stored_seq >= queued),
    );
    drop(agent);
    drop(daemon);
}

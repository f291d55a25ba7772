//! `osirisd` as a process: configuration errors stop it before it binds anything, a second
//! daemon on the same data refuses to start, the socket is for root and the daemon's user only,
//! SIGTERM stops it cleanly, and the local API answers.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn osirisd(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osirisd"));
    command
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A configuration with no targets (nothing is scanned), data and socket under `dir`.
fn quiet_config(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "site = \"test\"\ndata_dir = \"{data}\"\ntarget = []\n{extra}\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{socket}\"\nexport_roots = [\"{media}\"]\n",
        data = dir.join("data").display(),
        socket = dir.join("run/api.sock").display(),
        media = dir.join("media").display(),
    );
    let path = dir.join("appliance.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, socket: &Path) -> Daemon {
    let child = osirisd(config).spawn().unwrap();
    let mut daemon = Daemon { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if api::Client::new(socket).status().is_ok() {
            return daemon;
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(daemon.child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("osirisd exited with {status}:\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "osirisd did not answer within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output(mut command: Command) -> Output {
    command.stdout(Stdio::piped()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_configuration_exits_78_before_binding_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[healing]\nspeed = 3\n", "unknown field `speed`"),
        ("[daemon2]\n", "unknown field `daemon2`"),
        (
            "[agents]\nlisten = \"127.0.0.1:0\"\nchecks = [\"LIN-SSH-001\", \"NOPE-001\"]\n",
            "agents.checks names checks the catalogue does not have: NOPE-001",
        ),
    ];
    for (extra, want) in cases {
        let config = quiet_config(dir.path(), extra);
        let out = output(osirisd(&config));
        assert_eq!(
            out.status.code(),
            Some(78),
            "{extra}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{extra}: {}",
            text(&out.stderr)
        );
        assert!(!dir.path().join("run/api.sock").exists());
        assert!(
            !dir.path().join("data").exists(),
            "nothing may be created for a bad config"
        );
    }
    // Impossible values, and an escalation secret that others can read.
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let config = dir.path().join("impossible.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[daemon]\nserver_scan_secs = 0\nsocket = \"{}\"\n",
            dir.path().join("data").display(),
            dir.path().join("run/api.sock").display()
        ),
    )
    .unwrap();
    let out = output(osirisd(&config));
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("daemon.server_scan_secs = 0 is impossible"),
        "{}",
        text(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = quiet_config(
        dir.path(),
        &format!(
            "[escalation]\n[[escalation.channel]]\nname = \"psa\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    );
    let out = output(osirisd(&config));
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("run/api.sock").exists());
}

#[test]
fn a_second_daemon_refuses_and_sigterm_stops_the_first_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let mut first = start(&config, &socket);
    let status = api::Client::new(&socket).status().unwrap();
    assert_eq!(status.site, "test");
    assert_eq!(status.devices.total, 0);
    // The claim code is a secret of this appliance: kept 0600, never the key id every kit prints.
    let setup = api::Client::new(&socket)
        .call(&api::endpoint::Setup, &())
        .unwrap();
    let claim_file = dir.path().join("data/claim-code");
    assert_eq!(
        std::fs::read_to_string(&claim_file).unwrap().trim(),
        setup.claim.code
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&claim_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // `PRIVATE+KEY+<name>+<key id hex>+<key>` (C2SP signed-note signer key).
    let signer_key = std::fs::read_to_string(dir.path().join("data/keys/appliance.key")).unwrap();
    let key_id = signer_key.trim().split('+').nth(3).unwrap().to_uppercase();
    assert_eq!(key_id.len(), 8, "{key_id}");
    assert!(
        !setup.claim.code.replace('-', "").contains(&key_id[..4]),
        "claim code {} is derived from key id {key_id}",
        setup.claim.code
    );
    assert!(
        !status
            .cycles
            .iter()
            .any(|c| c.kind == api::CycleKind::ServerScan && c.enabled)
    );

    let second = output(osirisd(&config));
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("another osirisd"),
        "{}",
        text(&second.stderr)
    );
    // The first one is untouched and still answers.
    assert!(api::Client::new(&socket).status().is_ok());

    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let code = first.child.wait().unwrap();
    assert_eq!(code.code(), Some(0), "SIGTERM is a clean stop");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!socket.exists(), "the socket is removed on exit");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/daemon-state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["version"], 1);
}

#[test]
fn the_socket_is_for_root_and_the_daemon_user_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Connecting as another user needs root.
    if !test_support::require_root(
        "the_socket_is_for_root_and_the_daemon_user_only (connecting as nobody)",
        &["setpriv"],
    ) {
        return;
    }
    // Let `nobody` through the directories, so only the socket's own mode stands in the way.
    for d in [dir.path(), &dir.path().join("run")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/usr/bin/python3", "-c"])
        .arg(format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect({:?}); print('connected')\nexcept PermissionError: print('refused')",
            socket.display().to_string()
        ))
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "refused", "{}", text(&out.stderr));
}

#[test]
fn the_api_answers_with_plain_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let client = api::Client::new(&socket);
    // Nothing to scan: the trigger says so instead of pretending.
    let err = client.scan_now().unwrap_err();
    assert!(err.to_string().contains("not configured"), "{err}");
    // A pause needs a reason and a name, and is reflected in status.
    let err = client
        .call(
            &api::endpoint::PauseHealing,
            &api::PauseRequest {
                reason: " ".into(),
                by: "alice".into(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("reason is required"), "{err}");
    let paused = client
        .call(
            &api::endpoint::PauseHealing,
            &api::PauseRequest {
                reason: "PACS upgrade tonight".into(),
                by: "alice".into(),
            },
        )
        .unwrap();
    assert!(paused.paused);
    assert_eq!(
        client.status().unwrap().healing.paused_by.as_deref(),
        Some("alice")
    );
    let resumed = client
        .call(
            &api::endpoint::ResumeHealing,
            &api::PauseRequest {
                reason: "upgrade done".into(),
                by: "alice".into(),
            },
        )
        .unwrap();
    assert!(!resumed.paused);
    // Unknown endpoints and bad JSON get an answer, not a hang.
    let err = client.get::<serde_json::Value>("/v1/nope").unwrap_err();
    assert!(
        matches!(err, api::ClientError::Api { status: 404, .. }),
        "{err:?}"
    );
    // Both operator actions are evidence.
    let evidence = client.get::<api::EvidenceState>("/v1/evidence").unwrap();
    assert_eq!(evidence.bundles, 2);
    // An export to a place that does not exist says what to do, and writes nothing.
    let err = client
        .call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: "/nonexistent/usb".into(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("removable media"), "{err}");
    // Issue 14 finding 7: a directory that is not below an export root is refused, whatever it is.
    let elsewhere = dir.path().join("usb");
    std::fs::create_dir(&elsewhere).unwrap();
    let err = client
        .call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: elsewhere.display().to_string(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("not on removable media"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // Maintenance windows: a backwards one is refused; a good one shows in status.
    let now = client.status().unwrap().now;
    let err = client
        .call(
            &api::endpoint::AddMaintenance,
            &api::MaintenanceRequest {
                start: now + 100,
                end: now + 10,
                reason: "patch night".into(),
                targets: vec![],
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("must end after it starts"),
        "{err}"
    );
    let err = client
        .call(
            &api::endpoint::AddMaintenance,
            &api::MaintenanceRequest {
                start: now,
                end: now + 3600,
                reason: "patch night".into(),
                targets: vec!["fs1; reboot".into()],
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("is not a device name"), "{err}");
    let window = client
        .call(
            &api::endpoint::AddMaintenance,
            &api::MaintenanceRequest {
                start: now,
                end: now + 3600,
                reason: "patch night".into(),
                targets: vec!["fs1".into()],
            },
        )
        .unwrap();
    let healing = client.status().unwrap().healing;
    assert_eq!(healing.maintenance, vec![window]);
}

#[test]
fn update_records_queued_by_osiris_update_are_sealed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let updates = dir.path().join("update");
    // The records wait in the updater's spool (on NixOS owned by the daemon's user).
    let spool = updates.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(
        spool.join("pending-evidence.jsonl"),
        "{\"step\":\"staged\",\"version\":\"1.2.0\"}\n{\"step\":\"rolled_back\",\"reason\":\"health gate: no scan\"}\n",
    )
    .unwrap();
    std::fs::write(updates.join("update-state.json"), "{\"phase\":\"idle\"}").unwrap();
    let config = quiet_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!("update_state_dir = \"{}\"\n", updates.display());
    std::fs::write(&config, text).unwrap();
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let status = api::Client::new(&socket).status().unwrap();
    assert_eq!(
        status.evidence.bundles, 2,
        "both queued records are evidence now"
    );
    assert_eq!(status.health.update.state, "idle");
    assert!(!spool.join("pending-evidence.jsonl").exists());
    assert!(!spool.join("pending-evidence.jsonl.sealing").exists());
}

#[test]
fn a_corrupted_database_stops_the_daemon_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let garbage = b"this is not SQLite, but it is someone's data".repeat(100);
    std::fs::write(dir.path().join("data/osiris.db"), &garbage).unwrap();
    let out = output(osirisd(&config));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("osiris.db"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("data/osiris.db")).unwrap(),
        garbage
    );
    assert!(
        !dir.path().join("run/api.sock").exists(),
        "no socket for a daemon that cannot run"
    );
}

#[test]
fn metrics_are_off_by_default_and_served_on_loopback_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    {
        let _daemon = start(&config, &socket);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "no metrics listener unless configured"
        );
    }
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!("metrics_listen = \"127.0.0.1:{port}\"\n");
    std::fs::write(&config, text).unwrap();
    let _daemon = start(&config, &socket);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("osiris_evidence_bundles 0"), "{answer}");
    assert!(
        answer.contains("osiris_cycle_runs_total{cycle=\"checkpoint\"}"),
        "{answer}"
    );
}

/// Mounts a tmpfs (root only) and unmounts it on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "osiris-test-usb"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs {options} at {}", at.display());
        Mount(at.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn exports_go_only_onto_mounted_sticks_with_room_and_leave_nothing_half_written() {
    // Mounting test media needs root.
    if !test_support::require_root(
        "exports_go_only_onto_mounted_sticks_with_room_and_leave_nothing_half_written",
        &["mount", "umount"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let client = api::Client::new(&socket).with_timeout(Duration::from_secs(30));
    // Some evidence to export (each pause/resume is a bundle).
    for i in 0..20 {
        let request = api::PauseRequest {
            reason: format!("reason {i} {}", "x".repeat(400)),
            by: "test".into(),
        };
        client.call(&api::endpoint::PauseHealing, &request).unwrap();
        client
            .call(&api::endpoint::ResumeHealing, &request)
            .unwrap();
    }
    let export = |dest: &Path| {
        client.call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: dest.display().to_string(),
            },
        )
    };
    let media = dir.path().join("media");
    // A real stick: the kit is written, and nothing else.
    let usb = Mount::tmpfs(&media.join("usb"), "size=64m");
    let kit = export(&usb.0).unwrap();
    assert_eq!(kit.bundles, 40);
    let entries: Vec<String> = std::fs::read_dir(&usb.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "only the finished kit, no partial: {entries:?}"
    );
    assert!(entries[0].starts_with("osiris-evidence-test-"));
    // Issue 14 finding 7, the attacks: the data directory, /etc, a link planted below the root
    // that points at /etc, and a plain directory below the root (the system disk, which repeated
    // exports would fill). Each is refused and nothing is written.
    for dest in [
        dir.path().join("data"),
        PathBuf::from("/etc"),
        PathBuf::from("/run"),
    ] {
        let err = export(&dest).unwrap_err();
        assert!(
            err.to_string().contains("not on removable media"),
            "{}: {err}",
            dest.display()
        );
    }
    std::os::unix::fs::symlink("/etc", media.join("evil")).unwrap();
    let err = export(&media.join("evil")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    std::os::unix::fs::symlink(&usb.0, media.join("usb-link")).unwrap();
    assert!(
        export(&media.join("usb-link"))
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
    std::fs::create_dir(media.join("plain")).unwrap();
    let err = export(&media.join("plain")).unwrap_err();
    assert!(err.to_string().contains("not a mounted USB stick"), "{err}");
    assert_eq!(std::fs::read_dir(media.join("plain")).unwrap().count(), 0);
    let err = export(&media.join("usb/../plain")).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");

    // A stick without room: refused before anything is written.
    let full = Mount::tmpfs(&media.join("full-usb"), "size=16k");
    let err = export(&full.0).unwrap_err();
    assert!(err.to_string().contains("MiB free"), "{err}");
    assert!(err.to_string().contains("free some space"), "{err}");
    assert_eq!(
        std::fs::read_dir(&full.0).unwrap().count(),
        0,
        "nothing half-written"
    );

    let read_only = Mount::tmpfs(&media.join("ro-usb"), "ro,size=64m");
    let err = client
        .call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: read_only.0.display().to_string(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[test]
fn every_declared_endpoint_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let client = api::Client::new(&socket);
    for (method, route) in api::endpoint::ALL {
        // Path parameters get a number nobody has; the handler answers (404 "no incident #999"),
        // never the router's "no such endpoint" or 405.
        let path = route.replace("{id}", "999");
        let body = (*method == api::Method::Post).then_some(&b"{}"[..]);
        match client.send(*method, &path, body) {
            Ok(_) => {}
            Err(api::ClientError::Api { status, error }) => {
                assert_ne!(status, 405, "{} {path}", method.as_str());
                assert_ne!(
                    error.error,
                    "no such endpoint",
                    "{} {path}",
                    method.as_str()
                );
            }
            Err(err) => panic!("{} {path}: {err}", method.as_str()),
        }
    }
}

#[test]
fn an_action_that_cannot_be_sealed_does_not_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let client = api::Client::new(&socket);
    // Times beyond ±2^53 have no exact canonical JSON (RFC 8785), so the bundle cannot be sealed.
    let start = 1_i64 << 60;
    let err = client
        .call(
            &api::endpoint::AddMaintenance,
            &api::MaintenanceRequest {
                start,
                end: start + 3600,
                reason: "patch night".into(),
                targets: vec![],
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("not recorded as evidence"),
        "{err}"
    );
    let status = client.status().unwrap();
    assert!(
        status.healing.maintenance.is_empty(),
        "the window is not in effect: {:?}",
        status.healing.maintenance
    );
    assert_eq!(status.evidence.bundles, 0);
    // Nothing was saved either (the state file is only written when something changes).
    if let Ok(bytes) = std::fs::read(dir.path().join("data/daemon-state.json")) {
        let saved: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(saved["maintenance"], serde_json::json!([]));
    }
}

#[test]
fn a_second_sigterm_while_draining_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // An "SSH server" that accepts and never speaks: the scan waits for its handshake (10 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let password = dir.path().join("password");
    std::fs::write(&password, "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = format!(
        "[[target]]\nname = \"silent\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"127.0.0.1\"\nport = {port}\nuser = \"osiris\"\npassword_file = \"{}\"\n",
        password.display()
    );
    let config = quiet_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("target = []\n", "")
        .replacen("[evidence]", &format!("{target}[evidence]"), 1)
        + "drain_secs = 120\n";
    std::fs::write(&config, text).unwrap();
    let socket = dir.path().join("run/api.sock");
    let mut daemon = start(&config, &socket);
    // The first server scan starts a second after start and connects to the silent server.
    let (_connection, _) = silent.accept().unwrap();
    let signal = |daemon: &Daemon| {
        let sent = Command::new("kill")
            .args(["-TERM", &daemon.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let stderr = daemon.child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    signal(&daemon);
    // Draining: the daemon waits for the scan, which waits for the silent server.
    loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).unwrap();
        if line.contains("Stopping: letting running cycles finish") {
            break;
        }
    }
    assert!(daemon.child.try_wait().unwrap().is_none(), "still draining");
    let second = Instant::now();
    signal(&daemon);
    let code = daemon.child.wait().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "stopped {:?} after the second signal",
        second.elapsed()
    );
    assert_eq!(code.code(), Some(1), "a forced stop is not a clean one");
}

/// Issue 15: the console's claim QR leads to the partner's own Central Command (the one the
/// appliance links to), with the console's code, not to a fixed portal.
#[test]
fn the_claim_qr_points_at_the_partners_central_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(
        dir.path(),
        "[central]\nurl = \"https://central.partner.example:8443/\"\n",
    );
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let state = api::Client::new(&socket)
        .call(&api::endpoint::Setup, &())
        .unwrap();
    assert_eq!(
        state.claim.url,
        format!(
            "https://central.partner.example:8443/claim?code={}",
            state.claim.code
        )
    );
    assert!(!state.claim.code.is_empty());
}

/// Issue 14 finding 8: setup closes when it is complete. Afterwards a caller without the site's
/// claim code changes nothing, the console no longer shows the code, and the partner's code
/// re-opens the settings.
#[test]
fn setup_closes_after_completion_unless_the_claim_code_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    let client = api::Client::new(&socket);
    let tz = |zone: &str| api::TimezoneRequest {
        timezone: zone.to_owned(),
    };
    // During setup: open to the console.
    let state = client
        .call(&api::endpoint::SetTimezone, &tz("Europe/Berlin"))
        .unwrap();
    assert_eq!(state.timezone, "Europe/Berlin");
    let state = client
        .call(&api::endpoint::CompleteSetup, &api::endpoint::Empty {})
        .unwrap();
    assert!(state.complete);
    assert_eq!(state.claim.code, "", "the code is not shown after setup");
    let code = std::fs::read_to_string(dir.path().join("data/claim-code")).unwrap();

    // Afterwards: refused without the code, and with a wrong one; nothing changed.
    let err = client
        .call(&api::endpoint::SetTimezone, &tz("America/New_York"))
        .unwrap_err();
    assert!(err.to_string().contains("claim code"), "{err}");
    let wrong = client.clone().with_claim_code("AAAA-BBBB-CCCC");
    assert!(
        wrong
            .call(&api::endpoint::SetTimezone, &tz("America/New_York"))
            .is_err()
    );
    assert!(
        client
            .call(&api::endpoint::CompleteSetup, &api::endpoint::Empty {})
            .is_err()
    );
    let state = client.call(&api::endpoint::Setup, &()).unwrap();
    assert_eq!(state.timezone, "Europe/Berlin");
    // The partner's code (any case, with or without dashes) re-opens them.
    let partner = client.clone().with_claim_code(&code.trim().to_lowercase());
    let state = partner
        .call(&api::endpoint::SetTimezone, &tz("America/New_York"))
        .unwrap();
    assert_eq!(state.timezone, "America/New_York");
}

/// Issue 14 finding 8: an operator action records who really asked (the kernel's peer
/// credentials), not only the name the caller typed.
#[test]
fn operator_actions_record_the_callers_uid_not_only_the_claimed_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let socket = dir.path().join("run/api.sock");
    let daemon = start(&config, &socket);
    api::Client::new(&socket)
        .call(
            &api::endpoint::PauseHealing,
            &api::PauseRequest {
                reason: "vendor upgrade".into(),
                by: "partner-admin".into(),
            },
        )
        .unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut daemon = daemon;
    daemon.child.wait().unwrap();
    // Read the sealed bundle back through the evidence store, as an auditor's kit would show it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let store = store::Store::open(&store::StoreConfig {
            data_dir: dir.path().join("data"),
            site: "test".into(),
        })
        .await
        .unwrap();
        let mut found = None;
        for seq in 0..store.size() {
            let entry = store.entry(seq).await.unwrap().unwrap();
            let bundle: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
            if bundle["kind"] == "operator_action" {
                found = Some(bundle["body"].clone());
            }
        }
        store.close().await;
        found.expect("an operator_action bundle")
    });
    assert_eq!(
        body["by"], "partner-admin",
        "the claimed name is kept as such"
    );
    // This process's uid: the owner of a file it creates.
    let mine = tempfile::NamedTempFile::new().unwrap();
    let me = std::os::unix::fs::MetadataExt::uid(&mine.as_file().metadata().unwrap());
    assert_eq!(body["peer"]["uid"], me, "{body}");
    assert!(body["peer"]["pid"].as_i64().unwrap() > 0, "{body}");
}

/// Issue 14 finding 9: a local user who opens many connections and trickles bytes (slowloris)
/// neither keeps root's `status` from being answered nor holds the connections for long.
#[test]
fn a_user_holding_connections_open_cannot_starve_the_api() {
    if !test_support::require_root(
        "a_user_holding_connections_open_cannot_starve_the_api",
        &["setpriv", "python3"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    // Let `nobody` (group nogroup) use the socket, as the osiris group's members may.
    let text_config = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nsocket_group = \"nogroup\"\n");
    std::fs::write(&config, text_config).unwrap();
    let socket = dir.path().join("run/api.sock");
    let _daemon = start(&config, &socket);
    for path in [dir.path(), &dir.path().join("run")] {
        Command::new("chmod")
            .args(["o+x", path.to_str().unwrap()])
            .status()
            .unwrap();
    }
    // The attacker: 60 connections, each sending half a request line and a byte now and then.
    let attacker = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(format!(
            r#"
import socket, time
held = []
for _ in range(60):
    s = socket.socket(socket.AF_UNIX)
    s.connect({socket:?})
    try:
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHo")
    except OSError:
        pass  # already closed by the server (over the per-user limit): counted as closed below
    held.append(s)
print("opened", len(held), flush=True)
closed = set()
deadline = time.time() + 40
while time.time() < deadline and len(closed) < len(held):
    for i, s in enumerate(held):
        if i in closed:
            continue
        try:
            s.sendall(b"s")
            s.settimeout(0.01)
            if s.recv(1) == b"":
                closed.add(i)
        except socket.timeout:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.5)
print("closed by the server", len(closed), flush=True)
"#,
            socket = socket.display().to_string()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // Root is answered while the attacker holds its connections.
    for _ in 0..5 {
        let status = api::Client::new(&socket).status().unwrap();
        assert_eq!(status.site, "test");
    }
    let out = attacker.wait_with_output().unwrap();
    let report = text(&out.stdout);
    assert!(
        report.contains("opened 60"),
        "{report}\n{}",
        text(&out.stderr)
    );
    assert!(
        report.contains("closed by the server 60"),
        "the server must drop connections that never finish a request: {report}"
    );
}

/// One request to the API as `nobody` (a member of the socket's group, as the console's user
/// is): status code and JSON body.
fn as_nobody(
    socket: &Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut headers = serde_json::json!({"Content-Type": "application/json"});
    if let Some(token) = token {
        headers[api::UNLOCK_HEADER] = token.into();
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            r#"
import http.client, json, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
connection = Unix("osirisd")
body = sys.argv[5] if sys.argv[2] != "GET" else None
connection.request(sys.argv[2], sys.argv[3], body=body, headers=json.loads(sys.argv[4]))
answer = connection.getresponse()
print(answer.status)
print(answer.read().decode())
"#,
        ])
        .arg(socket)
        .args([method, path, &headers.to_string(), &body.to_string()])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let (status, body) = stdout
        .split_once('\n')
        .unwrap_or_else(|| panic!("{stdout}\n{}", text(&out.stderr)));
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null),
    )
}

/// Issue 14 finding 8: with a console PIN set, whoever stands at a console left open (any user
/// but root) cannot pause healing, acknowledge, change maintenance or export without the PIN;
/// guessing it is slowed down by the daemon; the PIN is stored only as a salted hash in a 0600
/// file; and no log line carries it.
#[test]
fn a_console_pin_locks_operator_actions_and_slows_down_guessing() {
    if !test_support::require_root(
        "a_console_pin_locks_operator_actions_and_slows_down_guessing",
        &["setpriv", "python3"],
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // Eight digits or more, so no timestamp in the log can hold one by chance.
    const PIN: &str = "48291375";
    const NEW_PIN: &str = "73058264";
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config(dir.path(), "");
    let text_config = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nsocket_group = \"nogroup\"\n");
    std::fs::write(&config, text_config).unwrap();
    let socket = dir.path().join("run/api.sock");
    let daemon = start(&config, &socket);
    for path in [dir.path(), &dir.path().join("run")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let root = api::Client::new(&socket);
    let pause = serde_json::json!({"reason": "nobody should be able to", "by": "intruder"});

    // No PIN yet: the console's user may act (today's behaviour, kept until a PIN is set).
    let (status, body) = as_nobody(&socket, "POST", "/v1/healing/pause", None, &pause);
    assert_eq!(status, 200, "{body}");
    let state = root
        .call(
            &api::endpoint::SetPin,
            &api::PinRequest {
                pin: "12ab".into(),
                current_pin: None,
            },
        )
        .unwrap_err();
    assert!(
        state.to_string().contains("4 to 12 digits"),
        "the rule is named: {state}"
    );
    let state = root
        .call(
            &api::endpoint::SetPin,
            &api::PinRequest {
                pin: PIN.into(),
                current_pin: None,
            },
        )
        .unwrap();
    assert!(state.pin_set);
    assert!(root.status().unwrap().console.pin_set);
    let file = dir.path().join("data/console-pin");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PIN), "the PIN itself is not stored");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The attack: every state-changing action from the console's side is refused while locked.
    let now = root.status().unwrap().now;
    for (method, path, body) in [
        ("POST", "/v1/healing/pause", pause.clone()),
        ("POST", "/v1/healing/resume", pause.clone()),
        (
            "POST",
            "/v1/incidents/1/ack",
            serde_json::json!({"by": "intruder"}),
        ),
        (
            "POST",
            "/v1/maintenance",
            serde_json::json!({"start": now, "end": now + 3600, "reason": "x", "targets": []}),
        ),
        ("DELETE", "/v1/maintenance/1", serde_json::Value::Null),
        (
            "POST",
            "/v1/evidence/export",
            serde_json::json!({"dest_dir": dir.path().join("media").display().to_string()}),
        ),
    ] {
        let (status, body) = as_nobody(&socket, method, path, None, &body);
        assert_eq!(status, 423, "{method} {path}: {body}");
        assert_eq!(
            body["error"], "the console is locked: type the console PIN to unlock it first",
            "{method} {path}"
        );
        // A made-up token is no better.
        let (status, _) = as_nobody(&socket, method, path, Some("00ff"), &body);
        assert_eq!(status, 423, "{method} {path} with a forged token");
    }
    assert!(
        root.status().unwrap().healing.paused,
        "still as the first pause left it"
    );

    // Guessing: three wrong PINs are judged, then the daemon makes the guesser wait, and even
    // the right PIN is not checked before the wait is over.
    let unlock = |pin: &str| {
        as_nobody(
            &socket,
            "POST",
            "/v1/console/unlock",
            None,
            &serde_json::json!({"pin": pin}),
        )
    };
    for (guess, wait) in [
        ("10000001", "try again"),
        ("20000002", "try again"),
        ("30000003", "wait 1 s before trying again"),
    ] {
        let (status, body) = unlock(guess);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], format!("wrong PIN: {wait}"));
    }
    let (status, body) = unlock(PIN);
    assert_eq!(status, 429, "the right PIN during the wait: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("too many wrong PINs: wait"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let (status, body) = unlock("40000004");
    assert_eq!(status, 403);
    assert_eq!(
        body["error"], "wrong PIN: wait 2 s before trying again",
        "it doubles"
    );
    let (status, _) = unlock(PIN);
    assert_eq!(status, 429);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, body) = unlock(PIN);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["expires_after_secs"], 300);

    // Unlocked, the console's user may act; root (the `osiris` command) never needs the PIN.
    let (status, body) = as_nobody(&socket, "POST", "/v1/healing/resume", Some(&token), &pause);
    assert_eq!(status, 200, "{body}");
    root.call(
        &api::endpoint::PauseHealing,
        &api::PauseRequest {
            reason: "root is root".into(),
            by: "partner".into(),
        },
    )
    .unwrap();

    // After setup the PIN changes only with the current one (or the claim code).
    root.call(&api::endpoint::CompleteSetup, &api::endpoint::Empty {})
        .unwrap();
    let change = |current: Option<&str>| {
        as_nobody(
            &socket,
            "POST",
            "/v1/setup/pin",
            None,
            &serde_json::json!({"pin": NEW_PIN, "current_pin": current}),
        )
    };
    let (status, body) = change(None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("current PIN"),
        "{body}"
    );
    let (status, body) = change(Some("90000009"));
    assert_eq!(status, 403);
    assert_eq!(body["error"], "the current PIN is wrong: try again");
    let (status, body) = change(Some(PIN));
    assert_eq!(status, 200, "{body}");
    // A new PIN ends every unlock made with the old one.
    let (status, _) = as_nobody(&socket, "POST", "/v1/healing/resume", Some(&token), &pause);
    assert_eq!(status, 423);

    // Every attempt is in the log with its user; no line carries a PIN.
    let mut daemon = daemon;
    Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    daemon.child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("Refused a console PIN: wrong."), "{log}");
    assert!(log.contains("Refused a console PIN unchecked"), "{log}");
    assert!(log.contains("Console unlocked with the PIN."), "{log}");
    assert!(
        log.contains("Refused an operator action: the console is locked."),
        "{log}"
    );
    for pin in [PIN, NEW_PIN, "10000001", "40000004", "90000009"] {
        assert!(!log.contains(pin), "{pin} in the log:\n{log}");
    }
}

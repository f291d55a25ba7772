//! The WinRM transport against the lab WinRM peer (real HTTP/HTTPS, NTLM with sealing and channel
//! binding, Basic over TLS, WS-Man shells): one batch per session, scripts byte-exact, errors clear.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use scan_winrm::{Auth, ShellPool, Tls, WinRmTarget, WinRmTransport};
use test_support::winrm::{FakeWinrm, FakeWinrmConfig};
use transport::{Interpreter, ScriptRun, Transport, TransportError};

/// One fake runbook: a compliant state on the default profile.
fn fixtures(dir: &Path) {
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(
        dir.join("runbooks/WIN-T-001.json"),
        r#"{"id": "WIN-T-001", "provenance": "test",
            "states": {"compliant": {"output": {"enabled": true, "name": "Ünïcode ✓"}},
                       "drift": {"output": {"enabled": false, "name": "Ünïcode ✓"}}},
            "remediate": {"to": "compliant", "output": {"changed": true}},
            "rollback": {"to": "drift", "output": {"changed": true}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("profiles/test.json"),
        r#"{"platform": "windows-server", "states": {"WIN-T-001": "drift"}}"#,
    )
    .unwrap();
}

fn peer(dir: &Path) -> Option<FakeWinrm> {
    peer_with(dir, None)
}

/// The peer, deleting shells unused for `shell_idle_timeout` as Windows does.
fn peer_with(dir: &Path, shell_idle_timeout: Option<Duration>) -> Option<FakeWinrm> {
    fixtures(dir);
    FakeWinrm::start(&FakeWinrmConfig {
        fixtures: dir.to_owned(),
        default_profile: "test".to_owned(),
        ntlm_any_connection: false,
        replay: None,
        replay_skip: false,
        shell_idle_timeout,
    })
    .unwrap()
}

fn target(peer: &FakeWinrm, https: bool, auth: Auth, tls: Tls) -> WinRmTarget {
    WinRmTarget {
        name: "win1".to_owned(),
        address: "127.0.0.1".to_owned(),
        port: Some(if https {
            peer.https_port()
        } else {
            peer.http_port()
        }),
        https,
        auth,
        user: format!("{}\\{}", FakeWinrm::DOMAIN, FakeWinrm::USER),
        password: FakeWinrm::PASSWORD.to_owned().into(),
        tls,
        server_name: None,
        connect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(20),
    }
}

/// An osiris batch for the fake runbook, with a body full of PowerShell metacharacters.
fn batch(phase: &str, pad: usize) -> String {
    let input = format!(
        r#"{{"osiris": 1, "phase": "{phase}", "checks": [{{"id": "WIN-T-001", "params": {{}}}}]}}"#
    );
    use base64::Engine as _;
    let input = base64::engine::general_purpose::STANDARD.encode(input);
    format!(
        "# osiris powershell batch v1\n$OsirisInput = ConvertFrom-Json ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('{input}')))\n$OsirisBodies = @{{}}\n$OsirisBodies['WIN-T-001'] = @'\n# quotes ' \" `$(whoami) `n ; & | < > {}\n[ordered]@{{ enabled = $true }}\n'@\n",
        "#".repeat(pad)
    )
}

fn run(
    transport: &WinRmTransport,
    scripts: &[String],
) -> Result<Vec<serde_json::Value>, TransportError> {
    let mut session = transport.open()?;
    scripts
        .iter()
        .map(|script| {
            let out = session.run(&ScriptRun {
                interpreter: Interpreter::PowerShell,
                script,
                env: &[],
                timeout: Duration::from_secs(20),
            })?;
            assert_eq!(
                out.exit_code,
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        })
        .collect()
}

#[test]
fn batches_run_over_every_supported_transport_and_arrive_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    let pin = peer.cert_sha256();
    let transports = [
        (
            "ntlm over http, sealed",
            target(&peer, false, Auth::Ntlm, Tls::SystemRoots),
        ),
        (
            "ntlm over https, CA",
            target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path())),
        ),
        (
            "basic over https, CA",
            target(&peer, true, Auth::Basic, Tls::CaFile(peer.ca_path())),
        ),
        (
            "ntlm over https, pinned",
            target(&peer, true, Auth::Ntlm, Tls::PinSha256(pin)),
        ),
    ];
    for (what, target) in transports {
        let transport = WinRmTransport::new(target).unwrap();
        // detect (drift) → remediate → detect (compliant) → rollback → detect (drift), one shell.
        let docs = run(
            &transport,
            &[
                batch("detect", 0),
                batch("remediate", 0),
                batch("detect", 0),
                batch("rollback", 0),
                batch("detect", 0),
            ],
        )
        .unwrap_or_else(|err| panic!("{what}: {err}"));
        let enabled: Vec<_> = [0, 2, 4]
            .iter()
            .map(|&i| docs[i]["results"][0]["output"]["enabled"].clone())
            .collect();
        assert_eq!(enabled, [false, true, false], "{what}: {docs:?}");
        assert_eq!(
            docs[0]["results"][0]["output"]["name"], "Ünïcode ✓",
            "{what}: UTF-8 output"
        );
        assert_eq!(docs[1]["results"][0]["output"]["changed"], true, "{what}");
    }
    // The peer decoded exactly our script, and saw one shell per session.
    let log = peer.log_entries().unwrap();
    let scripts: Vec<&str> = log.iter().filter_map(|e| e["script"].as_str()).collect();
    let cycle =
        ["detect", "remediate", "detect", "rollback", "detect"].map(|phase| batch(phase, 0));
    let expected: Vec<&str> = (0..4)
        .flat_map(|_| cycle.iter().map(String::as_str))
        .collect();
    assert_eq!(
        scripts, expected,
        "the peer decoded exactly the scripts sent, in order"
    );
    let creates = log.iter().filter(|e| e["action"] == "Create").count();
    assert_eq!(creates, 4, "one shell per session");
    let lines: Vec<&str> = log
        .iter()
        .filter_map(|e| e["command_line"].as_str())
        .collect();
    assert!(lines.iter().all(|l| l.starts_with("powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ")), "{lines:?}");
}

#[test]
fn a_script_far_beyond_the_command_line_limit_travels_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    let transport =
        WinRmTransport::new(target(&peer, false, Auth::Ntlm, Tls::SystemRoots)).unwrap();
    let big = batch("detect", 300 * 1024);
    let docs = run(&transport, std::slice::from_ref(&big)).unwrap();
    assert_eq!(docs[0]["results"][0]["id"], "WIN-T-001");
    let log = peer.log_entries().unwrap();
    assert!(
        log.iter()
            .any(|e| e["script"].as_str() == Some(big.as_str()))
    );
}

#[test]
fn wrong_password_untrusted_certificate_and_wrong_pin_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    let wrong = WinRmTarget {
        password: "not-it".to_owned().into(),
        ..target(&peer, false, Auth::Ntlm, Tls::SystemRoots)
    };
    let err = WinRmTransport::new(wrong).unwrap().open().err().unwrap();
    assert!(matches!(err, TransportError::Auth { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-it"), "password in {err}");

    let untrusted = target(&peer, true, Auth::Ntlm, Tls::SystemRoots);
    let err = WinRmTransport::new(untrusted)
        .unwrap()
        .open()
        .err()
        .unwrap();
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let pinned = target(&peer, true, Auth::Ntlm, Tls::PinSha256([7; 32]));
    let err = WinRmTransport::new(pinned).unwrap().open().err().unwrap();
    assert!(
        matches!(
            err,
            TransportError::Connect { .. } | TransportError::Auth { .. }
        ),
        "{err:?}"
    );
    // No shell was ever created for a refused client.
    let creates = peer
        .log_entries()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "Create")
        .count();
    assert_eq!(creates, 0);
}

/// A directory host is reached at the address its name resolved to, with its certificate verified
/// for that name (SNI and name check): a certificate for the name works, while a host at that
/// address whose certificate does not name it (a rogue machine behind a forged DNS record) gets a
/// failed TLS handshake and never an HTTP request, so never the login.
#[test]
fn directory_hosts_are_verified_by_name_while_connected_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    // The peer's certificate names `localhost` (and 127.0.0.1).
    let by_name = WinRmTarget {
        server_name: Some("localhost".to_owned()),
        ..target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path()))
    };
    let transport = WinRmTransport::new(by_name).unwrap();
    assert!(
        transport
            .describe()
            .ends_with("(certificate for localhost)"),
        "{}",
        transport.describe()
    );
    let outputs = run(&transport, &[batch("detect", 0)]).unwrap();
    assert_eq!(outputs.len(), 1);
    let before = peer.log_entries().unwrap().len();
    assert!(before > 0);

    // The same address, the same trusted CA, but the name the directory gave is not on the
    // certificate: refused during the TLS handshake.
    let rogue = WinRmTarget {
        server_name: Some("ws9.lab.example".to_owned()),
        ..target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path()))
    };
    let err = WinRmTransport::new(rogue).unwrap().open().err().unwrap();
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let after = peer.log_entries().unwrap();
    assert_eq!(
        after.len(),
        before,
        "the host must see no request at all: {:#?}",
        &after[before..]
    );
}

/// Our client against bytes a real Windows server sent (pypsrp's recording of `powershell.exe -`
/// with stdin): the shell and command IDs, the stdout chunks and the exit code are read correctly.
#[test]
fn real_windows_responses_are_parsed_correctly() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let recording = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../vm-tests/lab/winrm/recordings/test_winrs_send.yml");
    let Some(peer) = FakeWinrm::start(&FakeWinrmConfig {
        fixtures: dir.path().to_owned(),
        default_profile: "test".to_owned(),
        ntlm_any_connection: false,
        replay: Some(recording),
        replay_skip: true,
        shell_idle_timeout: None,
    })
    .unwrap() else {
        return;
    };
    // Replay checks no credentials; Basic over TLS keeps the bodies as recorded (no sealing).
    let transport = WinRmTransport::new(target(
        &peer,
        true,
        Auth::Basic,
        Tls::CaFile(peer.ca_path()),
    ))
    .unwrap();
    let mut session = transport.open().unwrap();
    let out = session
        .run(&ScriptRun {
            interpreter: Interpreter::PowerShell,
            script: "Write-Host 'output 1'",
            env: &[],
            timeout: Duration::from_secs(10),
        })
        .unwrap_or_else(|err| panic!("{err}: {:#?}", peer.log_entries()));
    drop(session);
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "output 1\noutput 2\n"
    );
    assert!(out.stderr.is_empty());
    let log = peer.log_entries().unwrap();
    let replayed: Vec<&str> = log.iter().filter_map(|e| e["replayed"].as_str()).collect();
    assert_eq!(
        replayed,
        ["Create", "Command", "Send", "Receive", "Delete"],
        "{log:#?}"
    );
    assert!(!log.iter().any(|e| e["error"].is_string()), "{log:#?}");
}

/// Output beyond `transport::MAX_OUTPUT` is cut there and marked, never a failure or a silent loss.
#[test]
fn output_beyond_the_limit_is_cut_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let huge = "x".repeat(transport::MAX_OUTPUT + 100_000);
    std::fs::write(
        dir.path().join("runbooks/WIN-T-001.json"),
        serde_json::json!({"id": "WIN-T-001", "provenance": "test",
            "states": {"drift": {"output": {"enabled": false, "blob": huge}}, "compliant": {"output": {"enabled": true}}}})
        .to_string(),
    )
    .unwrap();
    let Some(peer) = FakeWinrm::start(&FakeWinrmConfig {
        fixtures: dir.path().to_owned(),
        default_profile: "test".to_owned(),
        ntlm_any_connection: false,
        replay: None,
        replay_skip: false,
        shell_idle_timeout: None,
    })
    .unwrap() else {
        return;
    };
    let transport =
        WinRmTransport::new(target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path()))).unwrap();
    let mut session = transport.open().unwrap();
    let out = session
        .run(&ScriptRun {
            interpreter: Interpreter::PowerShell,
            script: &batch("detect", 0),
            env: &[],
            timeout: Duration::from_secs(20),
        })
        .unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), transport::MAX_OUTPUT);
    assert!(out.stdout.starts_with(b"{\"osiris\":1"));
}

/// The strict peer binds each NTLM handshake to its TCP connection, as HTTP.sys does; many
/// sessions over HTTPS must never split a handshake across pooled connections.
#[test]
fn ntlm_over_https_never_splits_a_handshake_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    for session in 0..10 {
        let transport =
            WinRmTransport::new(target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path())))
                .unwrap();
        let docs = run(
            &transport,
            &[batch("detect", 0), batch("detect", 0), batch("detect", 0)],
        )
        .unwrap_or_else(|err| panic!("session {session}: {err}"));
        assert_eq!(docs.len(), 3);
    }
    let log = peer.log_entries().unwrap();
    assert!(
        !log.iter()
            .any(|e| e["action"] == "refused" || e["error"].is_string()),
        "{log:#?}"
    );
    assert_eq!(log.iter().filter(|e| e["action"] == "Create").count(), 10);
}

/// A host that stops answering mid-session: the run ends with `Timeout` close to the script's
/// timeout (starting the command included), and the session reports it instead of hanging.
#[test]
fn a_host_that_stops_answering_times_out_within_the_deadline() {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    // A TCP proxy in front of the peer's HTTP port that can stop passing answers back.
    let stalled = Arc::new(AtomicBool::new(false));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let upstream = peer.http_port();
    let flag = Arc::clone(&stalled);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut c_in, &mut s_out));
            let (mut s_in, mut c_out, flag) = (server, client, Arc::clone(&flag));
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    while flag.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let target = WinRmTarget {
        port: Some(proxy_port),
        ..target(&peer, false, Auth::Ntlm, Tls::SystemRoots)
    };
    let transport = WinRmTransport::new(target).unwrap();
    let mut session = transport.open().unwrap();
    let script = batch("detect", 0);
    let run = |session: &mut Box<dyn transport::Session>, secs| {
        session.run(&ScriptRun {
            interpreter: Interpreter::PowerShell,
            script: &script,
            env: &[],
            timeout: Duration::from_secs(secs),
        })
    };
    assert_eq!(run(&mut session, 20).unwrap().exit_code, Some(0));
    stalled.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let err = run(&mut session, 2).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        err,
        TransportError::Timeout {
            after: Duration::from_secs(2)
        }
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    // Dropping the session must not hang on the silent host either (bounded shell deletion).
    let started = std::time::Instant::now();
    drop(session);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

fn count(log: &[serde_json::Value], action: &str) -> usize {
    log.iter().filter(|e| e["action"] == action).count()
}

/// Warm shells (`osirisd` keeps a pool): a pooled transport opens one shell for several sessions
/// and for the next cycle's transport to the same host; another login never gets that shell; the
/// pool deletes it on the host when it goes.
#[test]
fn kept_shells_serve_later_sessions_of_the_same_login_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer(dir.path()) else { return };
    let pool = Arc::new(ShellPool::new(8, Duration::from_secs(600)));
    let https = || target(&peer, true, Auth::Ntlm, Tls::CaFile(peer.ca_path()));
    let transport = WinRmTransport::pooled(https(), Arc::clone(&pool)).unwrap();
    for _ in 0..3 {
        let docs = run(&transport, &[batch("detect", 0), batch("detect", 0)]).unwrap();
        assert_eq!(docs[1]["results"][0]["output"]["enabled"], false);
    }
    // The next cycle builds its transports anew, as ops does.
    let next_cycle = WinRmTransport::pooled(https(), Arc::clone(&pool)).unwrap();
    run(&next_cycle, &[batch("detect", 0)]).unwrap();
    assert_eq!(pool.idle(), 1);
    let log = peer.log_entries().unwrap();
    assert_eq!(
        count(&log, "Create"),
        1,
        "one shell for four sessions: {log:?}"
    );
    assert_eq!(count(&log, "Command"), 7, "every script ran once");
    assert_eq!(count(&log, "Delete"), 0, "the shell is kept");

    // Another password is another login: it must not be handed the shell of the first.
    let mut wrong = https();
    wrong.password = "Not-The-Passw0rd!".to_owned().into();
    let wrong = WinRmTransport::pooled(wrong, Arc::clone(&pool)).unwrap();
    let err = run(&wrong, &[batch("detect", 0)]).unwrap_err();
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    assert_eq!(pool.idle(), 1, "the kept shell is still there");

    drop((transport, next_cycle, wrong));
    drop(pool);
    let log = peer.log_entries().unwrap();
    assert_eq!(
        count(&log, "Delete"),
        1,
        "the pool deletes its shell when it goes"
    );
}

/// A kept shell the host dropped meanwhile (its WinRS idle timeout) is replaced before the
/// script runs, and the script runs exactly once: a remediation is not applied twice.
#[test]
fn a_kept_shell_the_host_dropped_is_replaced_and_the_script_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = peer_with(dir.path(), Some(Duration::from_secs(1))) else {
        return;
    };
    let pool = Arc::new(ShellPool::new(8, Duration::from_secs(600)));
    let transport = WinRmTransport::pooled(
        target(&peer, false, Auth::Ntlm, Tls::SystemRoots),
        Arc::clone(&pool),
    )
    .unwrap();
    let before = run(&transport, &[batch("detect", 0)]).unwrap();
    assert_eq!(before[0]["results"][0]["output"]["enabled"], false);
    std::thread::sleep(Duration::from_secs(3));
    let docs = run(&transport, &[batch("remediate", 0), batch("detect", 0)]).unwrap();
    assert_eq!(docs[0]["results"][0]["output"]["changed"], true);
    assert_eq!(docs[1]["results"][0]["output"]["enabled"], true);
    let log = peer.log_entries().unwrap();
    assert_eq!(count(&log, "ShellExpired"), 1, "{log:?}");
    assert_eq!(count(&log, "Create"), 2, "a new shell for the dropped one");
    let remediations = log
        .iter()
        .filter_map(|e| e["script"].as_str())
        .filter(|script| *script == batch("remediate", 0))
        .count();
    assert_eq!(remediations, 1, "the remediation ran once");
}

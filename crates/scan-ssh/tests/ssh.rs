//! End-to-end tests of the SSH transport against a real OpenSSH `sshd` on 127.0.0.1.
#![allow(clippy::print_stderr)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scan_ssh::{KnownHosts, SshAuth, SshTarget, SshTransport};
use transport::{Interpreter, MAX_OUTPUT, Output, ScriptRun, Session, Transport, TransportError};

use common::{Sshd, TempUser, can_run, random_hex};

fn target(sshd: &Sshd, user: &str, auth: SshAuth) -> SshTarget {
    SshTarget {
        name: "test-target".to_owned(),
        address: "127.0.0.1".to_owned(),
        port: sshd.port,
        user: user.to_owned(),
        auth,
        become_root: false,
        connect_timeout: Duration::from_secs(10),
        host_key: None,
    }
}

fn known_hosts(dir: &Path) -> Arc<KnownHosts> {
    Arc::new(KnownHosts::open(dir.join("known_hosts")).expect("open known_hosts"))
}

/// Root with the fixture's key, pins stored in the sshd's temp dir.
fn root_transport(sshd: &Sshd) -> SshTransport {
    let auth = SshAuth::Key {
        private_key: sshd.client_key.clone(),
    };
    SshTransport::new(target(sshd, "root", auth), known_hosts(sshd.dir.path()))
        .expect("valid target")
}

fn run(session: &mut dyn Session, script: &str) -> Result<Output, TransportError> {
    run_with(session, script, &[], Duration::from_secs(20))
}

fn run_with(
    session: &mut dyn Session,
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output, TransportError> {
    session.run(&ScriptRun {
        interpreter: Interpreter::Sh,
        script,
        env,
        timeout,
    })
}

#[test]
fn key_auth_runs_a_script_and_returns_stdout_stderr_and_exit_code() {
    if !can_run("key_auth_runs_a_script_and_returns_stdout_stderr_and_exit_code") {
        return;
    }
    let sshd = Sshd::start();
    let transport = root_transport(&sshd);
    assert_eq!(
        transport.describe(),
        format!("ssh root@127.0.0.1:{}", sshd.port)
    );
    let mut session = transport.open().expect("open");
    let output = run(
        session.as_mut(),
        "echo out; echo err >&2; printf '\\377\\376'; echo \"$LC_ALL $(id -u)\"; exit 7",
    )
    .expect("run");
    assert_eq!(output.stdout, b"out\n\xff\xfeC 0\n");
    assert_eq!(output.stderr, b"err\n");
    assert_eq!(output.exit_code, Some(7));
    assert!(!output.truncated);

    let powershell = ScriptRun {
        interpreter: Interpreter::PowerShell,
        script: "Get-Date",
        env: &[],
        timeout: Duration::from_secs(5),
    };
    assert_eq!(
        session.run(&powershell),
        Err(TransportError::Unsupported("PowerShell"))
    );
}

#[test]
fn several_scripts_share_one_connection() {
    if !can_run("several_scripts_share_one_connection") {
        return;
    }
    let sshd = Sshd::start();
    let mut session = root_transport(&sshd).open().expect("open");
    for idx in 0..5 {
        let output = run(session.as_mut(), &format!("echo script {idx}")).expect("run");
        assert_eq!(output.stdout, format!("script {idx}\n").into_bytes());
    }
    let logins = sshd.log().matches("Accepted publickey").count();
    assert_eq!(
        logins,
        1,
        "expected one login for five scripts:\n{}",
        sshd.log()
    );
}

/// Warm sessions: a pooled transport logs in once for several sessions, and a kept connection
/// the server closed meanwhile is replaced before anything runs; another user never gets it.
#[test]
fn a_pool_keeps_one_login_across_sessions_and_replaces_a_closed_one() {
    if !can_run("a_pool_keeps_one_login_across_sessions_and_replaces_a_closed_one") {
        return;
    }
    let sshd = Sshd::start();
    let pool = Arc::new(scan_ssh::SessionPool::new(8, Duration::from_secs(600)));
    let auth = SshAuth::Key {
        private_key: sshd.client_key.clone(),
    };
    let pins = known_hosts(sshd.dir.path());
    let transport = SshTransport::pooled(
        target(&sshd, "root", auth.clone()),
        Arc::clone(&pins),
        Arc::clone(&pool),
    )
    .expect("valid");
    let logins = || sshd.log().matches("Accepted publickey for root").count();
    for round in 0..3 {
        let mut session = transport.open().expect("open");
        let out = run(session.as_mut(), "echo round").expect("run");
        assert_eq!(out.stdout, b"round\n");
        drop(session);
        assert_eq!(
            pool.idle(),
            1,
            "round {round}: the connection waits in the pool"
        );
    }
    assert_eq!(logins(), 1, "three sessions, one login:\n{}", sshd.log());

    // The server ends the kept connection; the next session notices before running anything,
    // connects again and runs the script exactly once.
    sshd.drop_connections();
    std::thread::sleep(Duration::from_millis(300));
    let marker = sshd.dir.path().join("ran");
    let mut session = transport.open().expect("open");
    let script = format!("echo x >> {}; echo again", marker.display());
    let out = run(session.as_mut(), &script).expect("run on a new connection");
    assert_eq!(out.stdout, b"again\n");
    drop(session);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n", "ran once");
    assert_eq!(logins(), 2, "{}", sshd.log());

    // Another target entry (another name, so another pin and maybe other credentials) never
    // takes this one's connection.
    let mut other = target(&sshd, "root", auth);
    other.name = "other-target".to_owned();
    let other = SshTransport::pooled(other, pins, Arc::clone(&pool)).expect("valid");
    let mut session = other.open().expect("open");
    run(session.as_mut(), "true").expect("run");
    assert_eq!(logins(), 3, "{}", sshd.log());
}

#[test]
fn password_auth_logs_in() {
    if !can_run("password_auth_logs_in") {
        return;
    }
    let sshd = Sshd::start();
    let user = TempUser::create(false);
    let auth = SshAuth::Password {
        password: user.password.clone().into(),
    };
    // Issue 14 finding 9: on first contact, with no pin, the password is not sent to whoever
    // answers (here the real server, but it could be anyone on the LAN): refused before login,
    // naming the fingerprint to check and pin.
    let unpinned = SshTransport::new(
        target(&sshd, &user.name, auth.clone()),
        known_hosts(sshd.dir.path()),
    )
    .expect("valid");
    let err = unpinned
        .open()
        .map(|_| ())
        .expect_err("no password on first contact");
    let message = err.to_string();
    assert!(message.contains("NOT verified"), "{message}");
    assert!(message.contains(&sshd.host_fingerprint()), "{message}");
    assert!(
        !sshd.log().contains("password for"),
        "a password reached the server:\n{}",
        sshd.log()
    );
    assert!(
        !sshd.dir.path().join("known_hosts").exists(),
        "nothing pinned on a refused first contact"
    );
    // With the fingerprint the administrator read on the server, the login works.
    let mut pinned = target(&sshd, &user.name, auth);
    pinned.host_key = Some(sshd.host_fingerprint());
    let transport = SshTransport::new(pinned, known_hosts(sshd.dir.path())).expect("valid");
    let mut session = transport.open().expect("password login");
    let output = run(session.as_mut(), "id -un").expect("run");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", user.name)
    );
    assert_eq!(output.exit_code, Some(0));
}

#[test]
fn wrong_password_is_an_auth_error_that_does_not_contain_the_password() {
    if !can_run("wrong_password_is_an_auth_error_that_does_not_contain_the_password") {
        return;
    }
    let sshd = Sshd::start();
    let user = TempUser::create(false);
    let wrong = format!("wrong-{}", random_hex(10));
    let auth = SshAuth::Password {
        password: wrong.clone().into(),
    };
    let mut pinned = target(&sshd, &user.name, auth);
    pinned.host_key = Some(sshd.host_fingerprint());
    let transport = SshTransport::new(pinned, known_hosts(sshd.dir.path())).expect("valid");
    let err = transport.open().map(|_| ()).expect_err("login must fail");
    let TransportError::Auth { message, .. } = &err else {
        panic!("expected an Auth error, got {err:?}");
    };
    assert!(message.contains("password was refused"), "{message}");
    let shown = format!("{err} {err:?} {transport:?}");
    assert!(!shown.contains(&wrong), "password leaked: {shown}");
}

#[test]
fn first_contact_pins_and_a_different_host_key_is_refused() {
    if !can_run("first_contact_pins_and_a_different_host_key_is_refused") {
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let path = store.path().join("known_hosts");
    let first = Sshd::start();
    let port = first.port;
    let auth = SshAuth::Key {
        private_key: first.client_key.clone(),
    };
    let pins = known_hosts(store.path());
    let transport =
        SshTransport::new(target(&first, "root", auth.clone()), Arc::clone(&pins)).expect("valid");
    transport.open().expect("first contact");
    let text = std::fs::read_to_string(&path).expect("known_hosts written");
    assert!(
        text.contains(&format!("test-target 127.0.0.1:{port} ssh-ed25519 AAAA")),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    transport.open().expect("same key again");
    drop(first);

    // A different machine (new host key) now answers at the same address and port.
    let second = Sshd::start_on(port);
    for pins in [pins, known_hosts(store.path())] {
        let transport =
            SshTransport::new(target(&second, "root", auth.clone()), pins).expect("valid");
        match transport.open().map(|_| ()) {
            Err(TransportError::HostKeyChanged {
                pinned,
                presented,
                store,
                ..
            }) => {
                assert_ne!(pinned, presented);
                assert!(presented.starts_with("ssh-ed25519 SHA256:"), "{presented}");
                assert_eq!(store, path.display().to_string());
            }
            other => panic!("expected HostKeyChanged, got {other:?}"),
        }
    }
    assert!(
        !second.log().contains("Accepted"),
        "login attempted after key change:\n{}",
        second.log()
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        text,
        "pin must not be replaced"
    );
}

/// A configured host_key that the server does not have: refused before any login, whatever
/// the login is (an impostor at the address learns nothing).
#[test]
fn a_configured_host_key_is_enforced_before_logging_in() {
    if !can_run("a_configured_host_key_is_enforced_before_logging_in") {
        return;
    }
    let real = Sshd::start();
    let impostor = Sshd::start();
    let user = TempUser::create(false);
    for auth in [
        SshAuth::Password {
            password: user.password.clone().into(),
        },
        SshAuth::Key {
            private_key: impostor.client_key.clone(),
        },
    ] {
        let mut at_impostor = target(&impostor, &user.name, auth);
        at_impostor.host_key = Some(real.host_fingerprint());
        let transport =
            SshTransport::new(at_impostor, known_hosts(impostor.dir.path())).expect("valid");
        match transport.open().map(|_| ()) {
            Err(TransportError::HostKeyChanged {
                pinned, presented, ..
            }) => {
                assert!(pinned.contains(&real.host_fingerprint()), "{pinned}");
                assert!(
                    presented.contains(&impostor.host_fingerprint()),
                    "{presented}"
                );
            }
            other => panic!("expected HostKeyChanged, got {other:?}"),
        }
    }
    let log = impostor.log();
    assert!(
        !log.contains("password for") && !log.contains("Accepted") && !log.contains("Failed"),
        "a login reached the impostor:\n{log}"
    );
}

#[test]
fn parameter_values_arrive_byte_for_byte_and_cannot_inject_commands() {
    if !can_run("parameter_values_arrive_byte_for_byte_and_cannot_inject_commands") {
        return;
    }
    let sshd = Sshd::start();
    let mut session = root_transport(&sshd).open().expect("open");
    let marker = format!("/tmp/pwned-{}", random_hex(12));
    let value = format!("x'; touch {marker}; echo '");
    let tricky = "$(touch /tmp/pwned-x) `id` \"q\" \\ tab\there\nnew line";
    let env = [
        ("OSIRIS_PARAM_V".to_owned(), value.clone()),
        ("OSIRIS_PARAM_W".to_owned(), tricky.to_owned()),
    ];
    let script = "printf '%s' \"$OSIRIS_PARAM_V\"; printf '|%s' \"$OSIRIS_PARAM_W\"";
    let output = run_with(session.as_mut(), script, &env, Duration::from_secs(20)).expect("run");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{value}|{tricky}")
    );
    assert!(!Path::new(&marker).exists(), "injection created {marker}");
    assert!(!Path::new("/tmp/pwned-x").exists());

    let bad_name = [("OSIRIS_PARAM_X;id".to_owned(), "1".to_owned())];
    let err = run_with(session.as_mut(), "true", &bad_name, Duration::from_secs(5))
        .expect_err("bad name");
    assert!(
        err.to_string()
            .contains("not a valid environment variable name"),
        "{err}"
    );
}

#[test]
fn hostile_host_and_user_names_are_refused_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = known_hosts(dir.path());
    let make = |address: &str, user: &str| SshTarget {
        name: "evil".to_owned(),
        address: address.to_owned(),
        port: 22,
        user: user.to_owned(),
        auth: SshAuth::Password {
            password: "p".to_owned().into(),
        },
        become_root: false,
        connect_timeout: Duration::from_secs(1),
        host_key: None,
    };
    for address in [
        "10.0.0.1; reboot",
        "$(id)",
        "`id`",
        "-oProxyCommand=x",
        "a b",
        "",
        "host\n",
    ] {
        match SshTransport::new(make(address, "root"), Arc::clone(&pins)) {
            Err(TransportError::Connect { message, .. }) => {
                assert!(
                    message.contains("not a valid host name"),
                    "{address:?}: {message}"
                );
            }
            other => panic!("{address:?} accepted: {other:?}"),
        }
    }
    for user in ["root; id", "$(id)", "-l", "Admin", ""] {
        match SshTransport::new(make("127.0.0.1", user), Arc::clone(&pins)) {
            Err(TransportError::Connect { message, .. }) => {
                assert!(
                    message.contains("not a valid user name"),
                    "{user:?}: {message}"
                );
            }
            other => panic!("{user:?} accepted: {other:?}"),
        }
    }
    assert!(!dir.path().join("known_hosts").exists());
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let target = SshTarget {
        name: "down".to_owned(),
        address: "127.0.0.1".to_owned(),
        port,
        user: "root".to_owned(),
        auth: SshAuth::Key {
            private_key: dir.path().join("none"),
        },
        become_root: false,
        connect_timeout: Duration::from_secs(2),
        host_key: None,
    };
    let transport = SshTransport::new(target, known_hosts(dir.path())).expect("valid");
    match transport.open().map(|_| ()) {
        Err(TransportError::Connect { message, .. }) => {
            assert!(message.contains("TCP connect failed"), "{message}")
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[test]
fn a_hanging_script_times_out_and_the_next_run_reconnects() {
    if !can_run("a_hanging_script_times_out_and_the_next_run_reconnects") {
        return;
    }
    let sshd = Sshd::start();
    let transport = root_transport(&sshd);
    let mut session = transport.open().expect("open");
    let pid_file = sshd.dir.path().join("sleep.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let started = Instant::now();
    let res = run_with(session.as_mut(), &script, &[], Duration::from_secs(1));
    assert_eq!(
        res,
        Err(TransportError::Timeout {
            after: Duration::from_secs(1)
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // The target's `timeout` backstop ends the abandoned script a few seconds later.
    let pid = std::fs::read_to_string(&pid_file).expect("script wrote its pid");
    let proc_dir = format!("/proc/{}", pid.trim());
    let waiting = Instant::now();
    while Path::new(&proc_dir).exists() && waiting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !Path::new(&proc_dir).exists(),
        "abandoned script still runs as {proc_dir}"
    );
    let output = run(session.as_mut(), "echo again").expect("same session after timeout");
    assert_eq!(output.stdout, b"again\n");
    let output = run(
        transport.open().expect("new session").as_mut(),
        "echo fresh",
    )
    .expect("run");
    assert_eq!(output.stdout, b"fresh\n");
}

#[test]
fn megabytes_of_output_are_cut_at_max_output() {
    if !can_run("megabytes_of_output_are_cut_at_max_output") {
        return;
    }
    let sshd = Sshd::start();
    let mut session = root_transport(&sshd).open().expect("open");
    let script = "head -c 3000000 /dev/zero | tr '\\0' x; head -c 1500000 /dev/zero | tr '\\0' e >&2; exit 3";
    let output = run(session.as_mut(), script).expect("run");
    assert!(output.truncated);
    assert_eq!(output.stdout.len(), MAX_OUTPUT);
    assert!(output.stdout.iter().all(|&b| b == b'x'));
    assert_eq!(output.stderr.len(), MAX_OUTPUT);
    assert_eq!(output.exit_code, Some(3));
    let output = run(session.as_mut(), "echo still fine").expect("session still usable");
    assert_eq!(output.stdout, b"still fine\n");
    assert!(!output.truncated);
}

#[test]
fn a_connection_closed_mid_run_is_an_io_error() {
    if !can_run("a_connection_closed_mid_run_is_an_io_error") {
        return;
    }
    let sshd = Sshd::start();
    let mut session = root_transport(&sshd).open().expect("open");
    // Walk up from the script to the sshd process serving this connection and kill it.
    let script = "p=$PPID; while [ \"$(cat /proc/$p/comm)\" != sshd ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done; echo bye; kill -KILL $p; sleep 5";
    let res = run(session.as_mut(), script);
    assert!(matches!(res, Err(TransportError::Io(_))), "{res:?}");
    let output = run(session.as_mut(), "echo back").expect("reconnects");
    assert_eq!(output.stdout, b"back\n");
}

#[test]
fn become_root_runs_scripts_through_sudo() {
    if !can_run("become_root_runs_scripts_through_sudo")
        || !test_support::require_root("become_root_runs_scripts_through_sudo", &["sudo"])
    {
        return;
    }
    let sshd = Sshd::start();
    let user = TempUser::create(true);
    let auth = SshAuth::Key {
        private_key: sshd.client_key.clone(),
    };
    let mut plain = target(&sshd, &user.name, auth);
    plain.name = "sudo-target".to_owned();
    let mut elevated = plain.clone();
    elevated.become_root = true;
    let pins = known_hosts(sshd.dir.path());
    let env = [("OSIRIS_PARAM_P".to_owned(), "it's".to_owned())];
    let script = "id -u; printf '%s\\n' \"$OSIRIS_PARAM_P\"";
    let as_user = SshTransport::new(plain, Arc::clone(&pins)).expect("valid");
    let output = run_with(
        as_user.open().expect("open").as_mut(),
        script,
        &env,
        Duration::from_secs(20),
    )
    .expect("run");
    assert_ne!(output.stdout, b"0\nit's\n");
    let as_root = SshTransport::new(elevated, pins).expect("valid");
    let output = run_with(
        as_root.open().expect("open").as_mut(),
        script,
        &env,
        Duration::from_secs(20),
    )
    .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0\nit's\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn timings() {
    if !can_run("timings") {
        return;
    }
    let sshd = Sshd::start();
    let transport = root_transport(&sshd);
    transport.open().expect("pin the host key first");
    let started = Instant::now();
    let mut session = transport.open().expect("open");
    run(session.as_mut(), "echo hi").expect("run");
    let one = started.elapsed();
    let started = Instant::now();
    let mut session = transport.open().expect("open");
    for idx in 0..15 {
        let output = run(session.as_mut(), &format!("uname -s; echo {idx}")).expect("run");
        assert_eq!(output.exit_code, Some(0));
    }
    let fifteen = started.elapsed();
    eprintln!("TIMING connect+auth+1 script: {one:?}; connect+auth+15 scripts: {fifteen:?}");
    assert!(
        fifteen < Duration::from_secs(10),
        "15 scripts took {fifteen:?}"
    );
}

//! Runs real scripts through the local transport: output, exit codes, timeouts, parameters as data.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::{Duration, Instant};

use transport::{Interpreter, ScriptRun, Transport, TransportError};

fn run(
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<transport::Output, TransportError> {
    let mut session = scan_local::LocalTransport.open().unwrap();
    session.run(&ScriptRun {
        interpreter: Interpreter::Sh,
        script,
        env,
        timeout,
    })
}

#[test]
fn captures_stdout_stderr_and_exit_code() {
    let out = run(
        "echo out; echo err >&2; exit 3",
        &[],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, Some(3));
}

#[test]
fn timeout_kills_the_script_and_its_children() {
    let started = Instant::now();
    let err = run(
        "sleep 30 & sleep 30; echo never",
        &[],
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "background child kept the pipe open"
    );
}

#[test]
fn environment_is_cleared_and_parameters_are_data() {
    // The value must arrive byte for byte, never run; HOME from our own environment must not leak.
    let hostile = "x'; echo INJECTED; '$(echo INJECTED)`echo INJECTED`".to_owned();
    let env = vec![("OSIRIS_PARAM_NAME".to_owned(), hostile.clone())];
    let out = run(
        "printf '%s' \"$OSIRIS_PARAM_NAME\"; printf '|%s' \"${HOME:-unset}\"",
        &env,
        Duration::from_secs(5),
    )
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, format!("{hostile}|unset"));
}

#[test]
fn output_is_bounded() {
    let out = run("head -c 3000000 /dev/zero", &[], Duration::from_secs(10)).unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), transport::MAX_OUTPUT);
}

#[test]
fn powershell_is_refused_locally() {
    let mut session = scan_local::LocalTransport.open().unwrap();
    let err = session
        .run(&ScriptRun {
            interpreter: Interpreter::PowerShell,
            script: "Get-Date",
            env: &[],
            timeout: Duration::from_secs(1),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PowerShell scripts are not supported by this transport"
    );
}

#[test]
fn large_scripts_and_stdin_readers_are_fine() {
    // Well over the 128 KiB limit of one exec argument.
    let padding = format!("# {}\n", "x".repeat(200_000));
    let script = format!("{padding}read line || echo no-stdin; echo done");
    let out = run(&script, &[], Duration::from_secs(5)).unwrap();
    assert_eq!(
        out.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"no-stdin\ndone\n");
}

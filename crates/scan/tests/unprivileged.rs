//! Checks that cannot see everything without root must say so (`error`), never report a
//! verdict from partial data: the shipped catalogue, run for real as an unprivileged user.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use model::{CheckStatus, DeviceType, Platform, Target};
use transport::{Interpreter, Output, ScriptRun, Session, Transport, TransportError};

/// Runs scripts locally as `nobody` (through `setpriv`) when the test runs as root, else as the current user.
struct Unprivileged;

struct UnprivilegedSession;

impl Transport for Unprivileged {
    fn describe(&self) -> String {
        "local, unprivileged".to_owned()
    }

    fn open(&self) -> Result<Box<dyn Session>, TransportError> {
        Ok(Box::new(UnprivilegedSession))
    }
}

impl Session for UnprivilegedSession {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        assert_eq!(run.interpreter, Interpreter::Sh);
        let started = Instant::now();
        let mut command = if is_root() {
            let mut command = Command::new("setpriv");
            command.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/bin/sh",
                "-s",
            ]);
            command
        } else {
            let mut command = Command::new("/bin/sh");
            command.arg("-s");
            command
        };
        command
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(run.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // On stdin, like the real transports: one exec argument may not exceed 128 KiB.
        let input = format!("(\n{}\n) </dev/null\n", run.script);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut err_pipe = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut stderr = Vec::new();
            err_pipe.read_to_end(&mut stderr).map(|_| stderr)
        });
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let stderr = err_reader.join().unwrap().unwrap();
        let status = child.wait().unwrap();
        writer.join().unwrap().unwrap();
        Ok(Output {
            exit_code: status.code(),
            stdout,
            stderr,
            truncated: false,
            elapsed: started.elapsed(),
        })
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn checks_that_need_root_report_error_when_unprivileged() {
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog.for_platform(Platform::Linux).collect();
    let target = Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    };
    let (report, _) = scan::scan_target(
        &target,
        &Unprivileged,
        &runbooks,
        &scan::ScriptContext {
            overrides: &Default::default(),
            powershell_prelude: "",
        },
    );
    let mut needs_root = 0;
    for (runbook, result) in runbooks.iter().zip(&report.results) {
        if runbook
            .detect
            .body
            .lines()
            .any(|line| line.starts_with("require_root "))
        {
            needs_root += 1;
            assert_eq!(
                result.outcome.status,
                CheckStatus::Error,
                "{}: {:?}",
                runbook.id,
                result.outcome
            );
            assert!(
                result
                    .outcome
                    .reason
                    .contains("needs root: run osiris as root"),
                "{}",
                result.outcome.reason
            );
        } else {
            assert_ne!(
                result.outcome.status,
                CheckStatus::Error,
                "{}: {}",
                runbook.id,
                result.outcome.reason
            );
        }
    }
    assert!(
        needs_root >= 4,
        "only {needs_root} runbooks declare that they need root"
    );
}

//! Transport for the machine osiris itself runs on: scripts run as child processes.
//!
//! Each script is fed to `sh -s` on stdin and runs in its own process group with a cleared environment (only `PATH`,
//! `LC_ALL` and the validated parameters), so nothing from osiris's environment leaks into
//! scripts and a timeout stops the script together with everything it started.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use transport::{Interpreter, MAX_OUTPUT, Output, ScriptRun, Session, Transport, TransportError};

/// Runs scripts on the local machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalTransport;

impl Transport for LocalTransport {
    fn describe(&self) -> String {
        "local".to_owned()
    }

    fn open(&self) -> Result<Box<dyn Session>, TransportError> {
        Ok(Box::new(LocalSession))
    }
}

struct LocalSession;

impl Session for LocalSession {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        if run.interpreter != Interpreter::Sh {
            return Err(TransportError::Unsupported(run.interpreter.as_str()));
        }
        let started = Instant::now();
        let mut command = Command::new("/bin/sh");
        command
            .arg("-s")
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LC_ALL", "C")
            .envs(run.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|err| TransportError::Io(format!("cannot start /bin/sh: {err}")))?;
        let pid = child.id();
        // The script goes on stdin, not argv (one argument may not exceed 128 KiB), wrapped in a
        // subshell so the shell reads all of it before running any, with stdin from /dev/null.
        if let Some(mut stdin) = child.stdin.take() {
            let input = format!("(\n{}\n) </dev/null\n", run.script);
            thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let stdout = child.stdout.take().map(read_bounded);
        let stderr = child.stderr.take().map(read_bounded);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(run.timeout) {
            Ok(status) => {
                status.map_err(|err| TransportError::Io(format!("waiting for script: {err}")))?
            }
            Err(_) => {
                kill_group(pid);
                let _ = rx.recv_timeout(Duration::from_secs(5));
                return Err(TransportError::Timeout { after: run.timeout });
            }
        };
        let (stdout, out_cut) = stdout.map(join).unwrap_or_default();
        let (stderr, err_cut) = stderr.map(join).unwrap_or_default();
        Ok(Output {
            exit_code: status.code(),
            stdout,
            stderr,
            truncated: out_cut || err_cut,
            elapsed: started.elapsed(),
        })
    }
}

type Reader = thread::JoinHandle<(Vec<u8>, bool)>;

fn read_bounded(mut pipe: impl Read + Send + 'static) -> Reader {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
            }
        }
        (kept, truncated)
    })
}

fn join(reader: Reader) -> (Vec<u8>, bool) {
    reader.join().unwrap_or_default()
}

/// Kills the script's whole process group (the script and everything it started).
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

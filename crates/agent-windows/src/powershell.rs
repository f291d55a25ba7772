//! The one process the agent starts on Windows: `powershell.exe` for the embedded catalogue's
//! remediation and rollback scripts (never for checks, which are read natively), as a
//! `transport` for this machine, so the scan engine's PowerShell wrapper (`scan::run_step`)
//! runs them exactly as it does over WinRM.
//!
//! The command line is fixed (`transport::powershell`: `-NoProfile -NonInteractive
//! -EncodedCommand <bootstrap>`), and the script travels on stdin, so nothing of a script or its
//! parameters reaches a command line. The program is `%SystemRoot%\System32\WindowsPowerShell\
//! v1.0\powershell.exe` by its full path (never found through `PATH`), started without a window.
//! Output is bounded (`transport::MAX_OUTPUT` per stream); at the timeout the process and every
//! process it started are ended together (a job object; where the process cannot join one,
//! PowerShell alone is ended).

use std::io::{Read, Write};
use std::os::windows::io::AsRawHandle;
use std::os::windows::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use transport::{Interpreter, Output, ScriptRun, Session, Transport, TransportError};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, TerminateJobObject,
};

/// `CREATE_NO_WINDOW`: no console window for PowerShell.
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// PowerShell on this machine, as a transport.
#[derive(Debug, Clone)]
pub struct LocalPowerShell {
    program: PathBuf,
}

impl LocalPowerShell {
    /// Windows PowerShell 5.1 by its full path under `%SystemRoot%` (`C:\Windows` when unset).
    pub fn system() -> LocalPowerShell {
        let root = std::env::var_os("SystemRoot")
            .map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from);
        LocalPowerShell {
            program: root.join(r"System32\WindowsPowerShell\v1.0\powershell.exe"),
        }
    }

    /// Another program in PowerShell's place (for tests).
    pub fn at(program: PathBuf) -> LocalPowerShell {
        LocalPowerShell { program }
    }
}

impl Transport for LocalPowerShell {
    fn describe(&self) -> String {
        format!("local {}", self.program.display())
    }

    fn open(&self) -> Result<Box<dyn Session>, TransportError> {
        Ok(Box::new(self.clone()))
    }
}

impl Session for LocalPowerShell {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError> {
        if run.interpreter != Interpreter::PowerShell {
            return Err(TransportError::Unsupported(run.interpreter.as_str()));
        }
        if !run.env.is_empty() {
            // PowerShell scripts get their parameters as data inside the script (scan's batch).
            return Err(TransportError::Io(
                "environment parameters are not passed to PowerShell".to_owned(),
            ));
        }
        let started = Instant::now();
        let mut child = Command::new(&self.program)
            .args(transport::powershell::ARGS)
            .arg(transport::powershell::encoded_bootstrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .creation_flags(CREATE_NO_WINDOW)
            .spawn()
            .map_err(|err| {
                TransportError::Io(format!("could not start {}: {err}", self.program.display()))
            })?;
        let job = Job::around(&child);
        let payload = transport::powershell::stdin_payload(run.script);
        let stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // A script that exits before reading all of it closes the pipe; its exit code
                // and output say why.
                let _ = stdin.write_all(payload.as_bytes());
            }
        });
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let deadline = started + run.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    end(&mut child, job.as_ref());
                    return Err(TransportError::Timeout { after: run.timeout });
                }
                Err(err) => {
                    end(&mut child, job.as_ref());
                    return Err(TransportError::Io(format!("waiting for PowerShell: {err}")));
                }
            }
        };
        let _ = writer.join();
        let (stdout, cut_out) = stdout.join().unwrap_or_default();
        let (stderr, cut_err) = stderr.join().unwrap_or_default();
        Ok(Output {
            exit_code: status.code(),
            stdout,
            stderr,
            truncated: cut_out || cut_err,
            elapsed: started.elapsed(),
        })
    }
}

/// Reads a pipe to its end on a thread, keeping at most `MAX_OUTPUT` bytes; `true` when more
/// came.
fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut cut = false;
        let Some(mut pipe) = pipe else {
            return (kept, cut);
        };
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => return (kept, cut),
                Ok(n) => {
                    let room = transport::MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..n.min(room)]);
                    cut |= n > room;
                }
            }
        }
    })
}

/// Ends PowerShell and what it started, and reaps it.
fn end(child: &mut Child, job: Option<&Job>) {
    match job {
        Some(job) => job.terminate(),
        None => {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

/// A job object holding one started process (and whatever it starts).
struct Job(HANDLE);

impl Job {
    /// A new job with `child` in it; `None` when either fails (then only the child itself can
    /// be ended).
    fn around(child: &Child) -> Option<Job> {
        // SAFETY: no security attributes and no name: an anonymous job, owned by the result.
        let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if handle.is_null() {
            return None;
        }
        let job = Job(handle);
        // SAFETY: both handles are open: the job's above, the process's owned by `child`.
        let ok = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle().cast()) };
        (ok != 0).then_some(job)
    }

    /// Ends every process in the job.
    fn terminate(&self) {
        // SAFETY: the job handle is open until `drop`.
        unsafe { TerminateJobObject(self.0, 1) };
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: closed once; processes in the job keep running (no kill-on-close limit).
        unsafe { CloseHandle(self.0) };
    }
}

//! The transport seam: run a script on a target and return its output.
//!
//! The scan engine depends on these traits only; `scan-local` (and later SSH and WinRM)
//! implement them. Calls are blocking; async callers run them on a blocking pool.

use std::time::Duration;

pub mod pool;
pub mod powershell;

/// The interpreter a script needs on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    /// POSIX `sh`.
    Sh,
    PowerShell,
}

/// One script execution request.
#[derive(Debug, Clone, Copy)]
pub struct ScriptRun<'a> {
    pub interpreter: Interpreter,
    pub script: &'a str,
    /// Extra environment for the script (validated parameters); values are data, never script text.
    pub env: &'a [(String, String)],
    pub timeout: Duration,
}

/// What a finished script produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// `None` when the script was ended by a signal.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr exceeded `MAX_OUTPUT` and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Most bytes of stdout (and of stderr) a transport keeps from one script.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Why a script could not be run or finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The target could not be reached or the session not established.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    /// The target presented a host key that differs from the one pinned on first contact.
    /// This is a security finding: the connection is refused, never silently accepted.
    #[error(
        "host key of {target} changed: pinned {pinned}, presented {presented}; if the machine was reinstalled, remove its line from {store} after checking the new key"
    )]
    HostKeyChanged {
        target: String,
        pinned: String,
        presented: String,
        store: String,
    },
    /// Authentication was refused.
    #[error("authentication to {target} failed: {message}")]
    Auth { target: String, message: String },
    /// The script ran longer than its timeout and was stopped.
    #[error("timed out after {}s and was stopped", .after.as_secs_f32())]
    Timeout { after: Duration },
    /// The transport cannot run this kind of script.
    #[error("{0} scripts are not supported by this transport")]
    Unsupported(&'static str),
    /// Starting or talking to the script failed.
    #[error("{0}")]
    Io(String),
}

/// A way to reach one target.
pub trait Transport: Send + Sync {
    /// Human-readable description for messages, e.g. `local` or `ssh root@10.0.0.5:22`.
    fn describe(&self) -> String;

    /// Opens a session; one session serves all scripts of a scan cycle.
    fn open(&self) -> Result<Box<dyn Session>, TransportError>;
}

/// An open connection to a target.
pub trait Session: Send {
    fn run(&mut self, run: &ScriptRun<'_>) -> Result<Output, TransportError>;
}

/// Quotes `value` for a POSIX shell: inside single quotes, with `'` written as `'\''`.
/// Whatever the value holds, the shell sees it as one word of data.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

impl Interpreter {
    pub fn as_str(self) -> &'static str {
        match self {
            Interpreter::Sh => "sh",
            Interpreter::PowerShell => "PowerShell",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_real_shell() {
        for value in [
            "plain",
            "",
            "x'; touch /nonexistent; echo '",
            "$(id) `id` \"q\" \\ \n",
            "'",
        ] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(value)))
                .output()
                .expect("run /bin/sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }
}

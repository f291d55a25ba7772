//! The local LLM API peer (`vm-tests/lab/llm/fakellm.py`: Anthropic Messages and OpenAI Chat
//! Completions with tool calls and scripted misbehaviour) started on loopback for tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::python::reference_python;

/// The peer script.
pub const FAKELLM_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/llm/fakellm.py"
);

/// Why the peer could not start, be scripted or have its log read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeLlmError {
    /// A file, socket or process operation failed.
    #[error("{what} (check the temp dir and the venv python)")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The peer did not print its `READY` line.
    #[error("fakellm.py did not start (first line {line:?}); run it by hand to see the error")]
    NotReady {
        /// What it printed instead.
        line: String,
    },
    /// A log line is not JSON.
    #[error("peer log line {line_idx} is not JSON")]
    BadLog {
        /// Zero-based line index.
        line_idx: usize,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeLlm {
    child: Child,
    dir: tempfile::TempDir,
    python: PathBuf,
    port: u16,
}

impl FakeLlm {
    /// The API key the peer accepts (both APIs).
    pub const API_KEY: &'static str = "sk-test-osiris-fakellm-0000";

    /// Starts the peer, or returns `Ok(None)` after a loud skip message when the venv python is
    /// missing (fails instead under `CI` or `OSIRIS_REQUIRE_PYTHON=1`).
    pub fn start() -> Result<Option<Self>, FakeLlmError> {
        let Some(python) = reference_python() else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(|source| io("creating a temp dir", source))?;
        let mut child = Command::new(&python)
            .arg(FAKELLM_SCRIPT)
            .args(["--port", "0", "--api-key", Self::API_KEY, "--log"])
            .arg(dir.path().join("requests.jsonl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| io("starting fakellm.py", source))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|source| io("reading the peer's READY line", source))?;
        }
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FakeLlmError::NotReady { line });
        };
        Ok(Some(Self {
            child,
            dir,
            python,
            port,
        }))
    }

    /// The venv interpreter, for running the official SDKs against the peer.
    pub fn python(&self) -> &Path {
        &self.python
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL as the Anthropic SDK takes it.
    pub fn anthropic_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The base URL as the OpenAI SDK takes it.
    pub fn openai_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Queues the answers to the next requests (`plan`, `shell`, `rate_limit`, …; see the
    /// script's docstring).
    pub fn script(&self, steps: &[&str]) -> Result<(), FakeLlmError> {
        self.control(&serde_json::json!({ "steps": steps }))
    }

    /// Queues the answers to the next requests about one failed check (matched by the
    /// `Failed check ID:` line of the prompt), ahead of the general script.
    pub fn script_check(&self, check: &str, steps: &[&str]) -> Result<(), FakeLlmError> {
        self.control(&serde_json::json!({ "by_check": { check: steps } }))
    }

    /// The answer when nothing is queued (`plan` until set).
    pub fn script_default(&self, step: &str) -> Result<(), FakeLlmError> {
        self.control(&serde_json::json!({ "default": step }))
    }

    fn control(&self, script: &serde_json::Value) -> Result<(), FakeLlmError> {
        let body = script.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|source| io("connecting to the peer", source))?;
        let request = format!(
            "POST /_script HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|source| io("scripting the peer", source))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|source| io("reading the peer's answer", source))?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(io(
                "scripting the peer",
                std::io::Error::other(answer.lines().next().unwrap_or_default().to_owned()),
            ))
        }
    }

    /// Every API request the peer received so far, in order.
    pub fn requests(&self) -> Result<Vec<serde_json::Value>, FakeLlmError> {
        let path = self.dir.path().join("requests.jsonl");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text =
            std::fs::read_to_string(&path).map_err(|source| io("reading the peer log", source))?;
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(line_idx, line)| {
                serde_json::from_str(line)
                    .map_err(|source| FakeLlmError::BadLog { line_idx, source })
            })
            .collect()
    }

    /// The peer's log file (JSON lines).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.jsonl")
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn io(what: &str, source: std::io::Error) -> FakeLlmError {
    FakeLlmError::Io {
        what: what.to_owned(),
        source,
    }
}

/// The body of an `l2` bundle for an executed plan that fixed LIN-SSH-001 on `host` (`outcome`
/// `fixed` or `not_fixed`), as the heal path seals it (`evidence_schema::L2Body`); the flywheel's
/// tests fill stores with these.
pub fn executed_plan_body(host: &str, outcome: &str) -> serde_json::Value {
    let state = |status: &str| serde_json::json!({"status": status, "observed": {"permit_root_login": "yes"}, "reason": ""});
    serde_json::json!({
        "target": {"name": host, "platform": "linux", "device_type": "server"},
        "check": "LIN-SSH-001", "provider": "anthropic", "model": "m", "answered_by": "m",
        "request_sha256": "00".repeat(32), "request": "{}", "pseudonyms": {}, "reply": null,
        "guardrails": [], "verdict": "accepted", "reason": "", "runbook": "LIN-SSH-001",
        "params": {}, "confidence": 0.9, "input_tokens": 100, "output_tokens": 10,
        "tokens_estimated": false, "cost_usd": "$0.000450", "attempts": 1, "outcome": outcome,
        "before": state("fail"),
        "after": state(if outcome == "fixed" { "pass" } else { "fail" }),
        "remediation": null, "rollback": null,
    })
}

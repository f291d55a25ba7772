//! The lab WinRM peer (`vm-tests/lab/winrm/fakewinrm.py`) started on loopback for tests, with a throwaway CA.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

use crate::python::reference_python;

/// The peer script.
pub const FAKEWINRM_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/winrm/fakewinrm.py"
);

/// What the peer serves.
#[derive(Debug, Clone)]
pub struct FakeWinrmConfig {
    /// The fixtures directory (`runbooks/`, `profiles/`).
    pub fixtures: PathBuf,
    /// The host profile for 127.0.0.1.
    pub default_profile: String,
    /// Let an NTLM handshake span TCP connections (`--ntlm-any-connection`).
    pub ntlm_any_connection: bool,
    /// Answer from one pypsrp recording instead of simulating (`--replay`).
    pub replay: Option<PathBuf>,
    /// In replay mode, skip recorded requests the client does not make (`--replay-skip`).
    pub replay_skip: bool,
    /// Delete shells unused this long, as Windows' WinRS `IdleTimeout` does
    /// (`--shell-idle-timeout`).
    pub shell_idle_timeout: Option<std::time::Duration>,
}

/// Why the peer could not start or its log could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeWinrmError {
    /// A file or process operation failed.
    #[error("{what} (check the temp dir and that openssl and the venv python are installed)")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `openssl` exited non-zero while making the test CA.
    #[error("openssl {step} failed: {stderr}; install openssl (vm-tests/lab/install-deps)")]
    Openssl {
        /// Which step.
        step: String,
        /// Its stderr.
        stderr: String,
    },
    /// The peer did not print its `READY` line.
    #[error("fakewinrm.py did not start (first line {line:?}); run it by hand to see the error")]
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
pub struct FakeWinrm {
    child: Child,
    dir: tempfile::TempDir,
    python: PathBuf,
    http_port: u16,
    https_port: u16,
    cert_sha256: [u8; 32],
}

impl FakeWinrm {
    /// The NTLM/Basic user name (domain `LAB`).
    pub const USER: &'static str = "administrator";
    /// The NTLM domain.
    pub const DOMAIN: &'static str = "LAB";
    /// The password.
    pub const PASSWORD: &'static str = "Lab-Passw0rd!";

    /// Starts the peer, or returns `Ok(None)` after a loud skip message when the venv python or
    /// its WinRM packages are missing (fails instead under `CI` or `OSIRIS_REQUIRE_PYTHON=1`).
    ///
    /// # Panics
    /// When the venv is missing and required.
    #[allow(
        clippy::print_stderr,
        reason = "the skip must be loud in the test output"
    )]
    pub fn start(cfg: &FakeWinrmConfig) -> Result<Option<Self>, FakeWinrmError> {
        let Some(python) = reference_python() else {
            return Ok(None);
        };
        let probe = Command::new(&python)
            .args(["-c", "import spnego, winrm, pypsrp, yaml"])
            .output()
            .map_err(|source| io("running the venv python", source))?;
        if !probe.status.success() {
            let required = std::env::var_os("CI").is_some()
                || std::env::var("OSIRIS_REQUIRE_PYTHON").as_deref() == Ok("1");
            let message = "pyspnego/pywinrm/pypsrp missing from the venv: run scripts/setup-python";
            assert!(!required, "{message}");
            eprintln!("SKIPPED WinRM peer test: {message}");
            return Ok(None);
        }
        let dir = tempfile::tempdir().map_err(|source| io("creating a temp dir", source))?;
        let root = dir.path();
        make_pki(root)?;
        let users = root.join("users");
        let line = format!("{}:{}:{}\n", Self::DOMAIN, Self::USER, Self::PASSWORD);
        std::fs::write(&users, line).map_err(|source| io("writing the users file", source))?;
        let der = openssl(
            "x509 -outform DER",
            root,
            &["x509", "-in", "cert.pem", "-outform", "DER"],
        )?;
        let cert_sha256: [u8; 32] = Sha256::digest(&der).into();

        let mut command = Command::new(&python);
        command
            .arg(FAKEWINRM_SCRIPT)
            .args([
                "--listen",
                "127.0.0.1",
                "--http-port",
                "0",
                "--https-port",
                "0",
            ])
            .arg("--cert")
            .arg(root.join("cert.pem"))
            .arg("--key")
            .arg(root.join("key.pem"))
            .arg("--users")
            .arg(&users)
            .arg("--fixtures")
            .arg(&cfg.fixtures)
            .arg("--log")
            .arg(root.join("peer.jsonl"))
            .args(["--default-profile", &cfg.default_profile]);
        if cfg.ntlm_any_connection {
            command.arg("--ntlm-any-connection");
        }
        if let Some(idle) = cfg.shell_idle_timeout {
            command
                .arg("--shell-idle-timeout")
                .arg(idle.as_secs_f64().to_string());
        }
        if let Some(replay) = &cfg.replay {
            command.arg("--replay").arg(replay);
            if cfg.replay_skip {
                command.arg("--replay-skip");
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| io("starting fakewinrm.py", source))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|source| io("reading the peer's READY line", source))?;
        }
        let ports = parse_ready(&line);
        let Some((http_port, https_port)) = ports else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FakeWinrmError::NotReady { line });
        };
        Ok(Some(Self {
            child,
            dir,
            python,
            http_port,
            https_port,
            cert_sha256,
        }))
    }

    /// The venv interpreter, for running client snippets.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The HTTP (sealed NTLM) port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The test CA that signed the listener certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// SHA-256 of the listener certificate (DER), the `tls-server-end-point` binding.
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }

    /// The peer's JSONL log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("peer.jsonl")
    }

    /// Every log entry so far.
    pub fn log_entries(&self) -> Result<Vec<serde_json::Value>, FakeWinrmError> {
        let text = std::fs::read_to_string(self.log_path())
            .map_err(|source| io("reading the peer log", source))?;
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(line_idx, line)| {
                serde_json::from_str(line)
                    .map_err(|source| FakeWinrmError::BadLog { line_idx, source })
            })
            .collect()
    }
}

impl Drop for FakeWinrm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn io(what: &str, source: std::io::Error) -> FakeWinrmError {
    FakeWinrmError::Io {
        what: what.to_owned(),
        source,
    }
}

fn parse_ready(line: &str) -> Option<(u16, u16)> {
    let rest = line.trim().strip_prefix("READY http=")?;
    let (http, https) = rest.split_once(" https=")?;
    Some((http.parse().ok()?, https.parse().ok()?))
}

fn openssl(step: &str, dir: &Path, args: &[&str]) -> Result<Vec<u8>, FakeWinrmError> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| io("running openssl", source))?;
    if !output.status.success() {
        return Err(FakeWinrmError::Openssl {
            step: step.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

fn make_pki(dir: &Path) -> Result<(), FakeWinrmError> {
    openssl(
        "ca",
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=osiris test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    openssl(
        "leaf request",
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    )?;
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|source| io("writing leaf.ext", source))?;
    openssl(
        "leaf sign",
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    )?;
    Ok(())
}

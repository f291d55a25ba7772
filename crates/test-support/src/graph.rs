//! The Microsoft Graph peer (`vm-tests/lab/cloud/fakegraph.py`: the Entra ID token endpoint and
//! the Graph v1.0 endpoints the Microsoft 365 checks read) over HTTPS on loopback with a
//! throwaway CA, for the cloud tests and `osiris bench cloud`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The peer script.
pub const FAKEGRAPH_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/cloud/fakegraph.py"
);

/// The tenant the peer serves.
pub const TENANT: &str = "8a6f1c3e-2b4d-4e5f-9a0b-1c2d3e4f5a6b";
/// The application (client) ID it knows.
pub const CLIENT_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
/// The client secret it accepts.
pub const SECRET: &str = "Xq8~fakegraph.secret-value_0123456789";

/// The checks the small practice (`--profile small`, the default) fails, in ID order.
pub const SMALL_PRACTICE_FAILURES: [&str; 9] = [
    "M365-ALERT-001",
    "M365-APPS-001",
    "M365-DEV-001",
    "M365-DEV-002",
    "M365-GUEST-002",
    "M365-INACTIVE-001",
    "M365-MFA-001",
    "M365-MFA-003",
    "M365-SCORE-002",
];

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeGraph {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl FakeGraph {
    /// Starts the peer with `python` and extra flags (`--profile large`, `--roles …`,
    /// `--throttle-all`, …; see the script's docstring).
    ///
    /// # Panics
    /// When the peer does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, flags: &[&str]) -> FakeGraph {
        let dir = tempfile::tempdir().unwrap();
        crate::smtp::pki(dir.path());
        let (child, port) = spawn_peer(
            Command::new(python)
                .arg(FAKEGRAPH_SCRIPT)
                .args(["--tenant", TENANT, "--client-id", CLIENT_ID])
                .args(["--secret", SECRET])
                .args(flags),
            dir.path(),
        );
        FakeGraph { child, dir, port }
    }

    /// The peer's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The authority (`https://127.0.0.1:PORT`), as the appliance's `authority` takes it.
    pub fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Graph's base, as the appliance's `graph_base` takes it.
    pub fn graph_base(&self) -> String {
        format!("https://127.0.0.1:{}/v1.0", self.port)
    }

    /// The CA that issued the peer's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A `[[cloud]]` table for this peer: tenant `name`, its secret in vault entry `credential`.
    pub fn cloud_table(&self, name: &str, credential: &str) -> String {
        format!(
            "[[cloud]]\nname = \"{name}\"\nkind = \"microsoft365\"\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\ncredential = \"{credential}\"\nauthority = \"{}\"\ngraph_base = \"{}\"\nca_file = \"{}\"\n",
            self.authority(),
            self.graph_base(),
            self.ca_file().display()
        )
    }

    /// How many requests below `prefix` (a path such as `/v1.0/users`) the peer answered
    /// with `status`.
    pub fn answered(&self, prefix: &str, status: u16) -> usize {
        answered(&self.requests(), prefix, status)
    }

    /// Every request the peer answered: `{"method", "path", "status"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        logged_requests(self.dir.path())
    }
}

/// Starts a lab cloud peer (`command`: the script and its own flags) on a free loopback port
/// with the TLS files of `dir` (`crate::smtp::pki`) and its request log in
/// `dir/requests.jsonl`; the process and the port of its `READY <port>` line.
///
/// # Panics
/// When the peer does not start (a test setup failure).
#[allow(clippy::unwrap_used, reason = "test helper")]
pub(crate) fn spawn_peer(command: &mut Command, dir: &Path) -> (Child, u16) {
    let mut child = command
        .args(["--port", "0", "--cert"])
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--log")
        .arg(dir.join("requests.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the peer {command:?} did not start: {line:?}"));
    (child, port)
}

/// The requests a peer started by [`spawn_peer`] in `dir` answered.
///
/// # Panics
/// When a log line is not JSON.
#[allow(clippy::unwrap_used, reason = "test helper")]
pub(crate) fn logged_requests(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// How many of `requests` below `prefix` were answered with `status`.
pub(crate) fn answered(requests: &[serde_json::Value], prefix: &str, status: u16) -> usize {
    requests
        .iter()
        .filter(|r| {
            r["path"].as_str().is_some_and(|p| p.starts_with(prefix)) && r["status"] == status
        })
        .count()
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RSA key and a self-signed certificate for an application's certificate credential, made
/// with the openssl CLI in `dir`: `<name>.pem` (key and certificate, as the vault holds it) and
/// `<name>.crt` (the certificate alone, as Entra ID registers it).
///
/// # Panics
/// When openssl fails (a test setup failure).
#[allow(clippy::unwrap_used, reason = "test helper")]
pub fn app_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = dir.join(format!("{name}.pem"));
    let both = std::fs::read_to_string(&key).unwrap() + &std::fs::read_to_string(&crt).unwrap();
    std::fs::write(&pem, both).unwrap();
    (pem, crt)
}

//! The AWS peer (`vm-tests/lab/cloud/fakeaws.py`: STS, IAM, EC2, S3, S3 Control and CloudTrail
//! shaped by botocore's service models, checking SigV4 with botocore's signer) over HTTPS on
//! loopback with a throwaway CA, for the cloud tests and `osiris bench cloud --provider aws`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The peer script.
pub const FAKEAWS_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/cloud/fakeaws.py"
);

/// The account the peer serves.
pub const ACCOUNT: &str = "404122885710";
/// The access key ID it knows.
pub const ACCESS_KEY_ID: &str = "AKIAQ3EGOSIRISAUDIT1";
/// The secret access key it accepts (a throwaway value).
pub const SECRET: &str = "k7Tq/0s1r1s+fakeaws+secret+value+01234567";
/// The small practice's regions, home first.
pub const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeAws {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl FakeAws {
    /// Starts the peer with `python` and extra flags (`--profile large`, `--deny ACTION`,
    /// `--throttle-first`, …; see the script's docstring).
    ///
    /// # Panics
    /// When the peer does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, flags: &[&str]) -> FakeAws {
        let dir = tempfile::tempdir().unwrap();
        crate::smtp::pki(dir.path());
        let (child, port) = crate::graph::spawn_peer(
            Command::new(python)
                .arg(FAKEAWS_SCRIPT)
                .args(["--account", ACCOUNT])
                .args(["--access-key-id", ACCESS_KEY_ID, "--secret", SECRET])
                .args(flags),
            dir.path(),
        );
        FakeAws { child, dir, port }
    }

    /// The endpoint every service answers at, as the appliance's `endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that issued the peer's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The access key as the vault entry holds it.
    pub fn vault_text() -> String {
        format!("aws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET}\n")
    }

    /// A `[[cloud]]` table for this peer: account `name`, its key in vault entry `credential`.
    pub fn cloud_table(&self, name: &str, credential: &str) -> String {
        format!(
            "[[cloud]]\nname = \"{name}\"\nkind = \"aws\"\naccount_id = \"{ACCOUNT}\"\nregions = [\"us-east-1\", \"us-west-2\"]\ncredential = \"{credential}\"\nendpoint = \"{}\"\nca_file = \"{}\"\n",
            self.endpoint(),
            self.ca_file().display()
        )
    }

    /// How many requests for `operation` (`ListBuckets`, …) the peer answered with `status`.
    pub fn answered(&self, operation: &str, status: u16) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["operation"] == operation && r["status"] == status)
            .count()
    }

    /// Every request the peer answered: `{"method", "path", "service", "operation", "status",
    /// "code"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        crate::graph::logged_requests(self.dir.path())
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

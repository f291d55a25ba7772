//! The Google peer (`vm-tests/lab/cloud/fakegoogle.py`: Google's OAuth 2.0 token endpoint and the
//! Admin SDK Directory API endpoints the Google Workspace checks read) over HTTPS on loopback
//! with a throwaway CA, and a service account's JSON key it trusts, for the cloud tests and
//! `osiris bench cloud --provider google-workspace`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The peer script.
pub const FAKEGOOGLE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/cloud/fakegoogle.py"
);

/// The account's customer ID.
pub const CUSTOMER_ID: &str = "C03az79cb";
/// The service account.
pub const SERVICE_ACCOUNT: &str = "osiris-posture@smith-practice-posture.iam.gserviceaccount.com";
/// Its key's ID (`private_key_id`, the JWT's `kid`).
pub const KEY_ID: &str = "3f1c9a7be2d04c5e8a6b1d2c3e4f5a6b7c8d9e0f";
/// The super administrator the service account acts for.
pub const ADMIN: &str = "ann.smith@smithfamilypractice.com";

/// The checks the small practice (`--profile small`, the default) fails, in ID order.
pub const SMALL_PRACTICE_FAILURES: [&str; 5] = [
    "GWS-2SV-001",
    "GWS-2SV-002",
    "GWS-ADMIN-002",
    "GWS-DEV-001",
    "GWS-INACTIVE-001",
];

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeGoogle {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl FakeGoogle {
    /// Starts the peer with `python` and extra flags (`--profile large`, `--scopes …`,
    /// `--throttle-all`, …; see the script's docstring), trusting a service account key made
    /// here (see [`FakeGoogle::key_json`]).
    ///
    /// # Panics
    /// When the peer does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, flags: &[&str]) -> FakeGoogle {
        let dir = tempfile::tempdir().unwrap();
        crate::smtp::pki(dir.path());
        let (_, sa_cert) = crate::graph::app_certificate(dir.path(), "service-account");
        let (child, port) = crate::graph::spawn_peer(
            Command::new(python)
                .arg(FAKEGOOGLE_SCRIPT)
                .args(["--customer-id", CUSTOMER_ID])
                .args(["--sa-email", SERVICE_ACCOUNT, "--sa-key-id", KEY_ID])
                .arg("--sa-cert")
                .arg(&sa_cert)
                .arg("--assertions")
                .arg(dir.path().join("assertions.txt"))
                .args(flags),
            dir.path(),
        );
        FakeGoogle { child, dir, port }
    }

    /// The peer's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The token endpoint, as the appliance's `token_url` takes it.
    pub fn token_url(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }

    /// The Directory API's base, as the appliance's `directory_base` takes it.
    pub fn directory_base(&self) -> String {
        format!("https://127.0.0.1:{}/admin/directory/v1", self.port)
    }

    /// The CA that issued the peer's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The service account's certificate (PEM file) the peer verifies JWTs with.
    pub fn service_account_certificate(&self) -> PathBuf {
        self.dir.path().join("service-account.crt")
    }

    /// The service account's JSON key as the Google Cloud console gives it, its `token_uri`
    /// this peer's.
    ///
    /// # Panics
    /// When the key made at start cannot be read.
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn key_json(&self) -> String {
        let key = std::fs::read_to_string(self.dir.path().join("service-account.key")).unwrap();
        self.key_json_with(&key)
    }

    /// A JSON key of the same service account and key ID but another private key: what a
    /// deleted (revoked) key signs with.
    ///
    /// # Panics
    /// When openssl fails.
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn revoked_key_json(&self) -> String {
        crate::graph::app_certificate(self.dir.path(), "revoked");
        let key = std::fs::read_to_string(self.dir.path().join("revoked.key")).unwrap();
        self.key_json_with(&key)
    }

    fn key_json_with(&self, private_key: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "smith-practice-posture",
            "private_key_id": KEY_ID,
            "private_key": private_key,
            "client_email": SERVICE_ACCOUNT,
            "client_id": "107365913248106348522",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/osiris-posture%40smith-practice-posture.iam.gserviceaccount.com",
            "universe_domain": "googleapis.com"
        })
        .to_string()
    }

    /// A `[[cloud]]` table for this peer: account `name`, its key in vault entry `credential`.
    pub fn cloud_table(&self, name: &str, credential: &str) -> String {
        format!(
            "[[cloud]]\nname = \"{name}\"\nkind = \"google-workspace\"\ncustomer_id = \"{CUSTOMER_ID}\"\nadmin_subject = \"{ADMIN}\"\ncredential = \"{credential}\"\ntoken_url = \"{}\"\ndirectory_base = \"{}\"\nca_file = \"{}\"\n",
            self.token_url(),
            self.directory_base(),
            self.ca_file().display()
        )
    }

    /// How many requests below `prefix` (a path such as `/admin/directory/v1/users`) the peer
    /// answered with `status`.
    pub fn answered(&self, prefix: &str, status: u16) -> usize {
        crate::graph::answered(&self.requests(), prefix, status)
    }

    /// Every request the peer answered: `{"method", "path", "status"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        crate::graph::logged_requests(self.dir.path())
    }

    /// Every JWT the token endpoint received, in order.
    pub fn assertions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("assertions.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

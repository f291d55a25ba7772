//! The Okta peer (`vm-tests/lab/cloud/fakeokta.py`: the Management API endpoints the Okta
//! client reads) over HTTPS on loopback with a throwaway CA, for the cloud tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The peer script.
pub const FAKEOKTA_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/cloud/fakeokta.py"
);

/// The API token the peer accepts.
pub const TOKEN: &str = "00Xk3v9QpLr7Tz2Wm5Yb8Nc1Hd4Gf6Js0Aa-OsirisPosture";
/// A token the peer answers with 401 E0000011 (expired or revoked).
pub const EXPIRED_TOKEN: &str = "00Expired0Token0Revoked0In0The0Admin0Console";

/// The service app's client ID.
pub const CLIENT_ID: &str = "0oa9x8w7v6u5t4s3r2q1";

/// The small practice's failing checks, in catalogue order (see the peer's `practice()`).
pub const SMALL_PRACTICE_FAILURES: [&str; 4] = [
    "OKTA-ADMIN-001",
    "OKTA-INACTIVE-001",
    "OKTA-MFA-001",
    "OKTA-SIGNON-001",
];

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeOkta {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl FakeOkta {
    /// Starts the peer with `python` and extra flags (`--profile large`, `--deny users`,
    /// `--throttle-first`, …; see the script's docstring).
    ///
    /// # Panics
    /// When the peer does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, flags: &[&str]) -> FakeOkta {
        let dir = tempfile::tempdir().unwrap();
        crate::smtp::pki(dir.path());
        let (_, app_cert) = crate::graph::app_certificate(dir.path(), "service-app");
        let (child, port) = crate::graph::spawn_peer(
            Command::new(python)
                .arg(FAKEOKTA_SCRIPT)
                .args(["--token", TOKEN, "--expired-token", EXPIRED_TOKEN])
                .args(["--client-id", CLIENT_ID])
                .arg("--client-cert")
                .arg(&app_cert)
                .args(flags),
            dir.path(),
        );
        FakeOkta { child, dir, port }
    }

    /// The org URL, as the appliance's `org_url` takes it.
    pub fn org_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A `[[cloud]]` table for this peer: `auth = "private_key_jwt"` with the service app's
    /// client ID when `service_app`, else `auth = "ssws"`; the secret in vault entry
    /// `credential`.
    pub fn cloud_table(&self, name: &str, credential: &str, service_app: bool) -> String {
        let auth = if service_app {
            format!("auth = \"private_key_jwt\"\nclient_id = \"{CLIENT_ID}\"\n")
        } else {
            "auth = \"ssws\"\n".to_owned()
        };
        format!(
            "[[cloud]]\nname = \"{name}\"\nkind = \"okta\"\norg_url = \"{}\"\n{auth}credential = \"{credential}\"\nca_file = \"{}\"\n",
            self.org_url(),
            self.ca_file().display()
        )
    }

    /// The CA that issued the peer's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The service app's private key (PEM) whose certificate the peer trusts.
    ///
    /// # Panics
    /// When the key made at start cannot be read.
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn app_key_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service-app.key")).unwrap()
    }

    /// A key the peer does not trust (PEM).
    ///
    /// # Panics
    /// When openssl fails.
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn other_key_pem(&self) -> String {
        crate::graph::app_certificate(self.dir.path(), "other-app");
        std::fs::read_to_string(self.dir.path().join("other-app.key")).unwrap()
    }

    /// The service app's certificate (PEM file) the peer verifies assertions with.
    pub fn app_certificate(&self) -> PathBuf {
        self.dir.path().join("service-app.crt")
    }

    /// The service app's private key (PEM file).
    pub fn app_key_file(&self) -> PathBuf {
        self.dir.path().join("service-app.key")
    }

    /// Every client assertion the token endpoint received, in order.
    pub fn assertions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl.assertions"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The scopes of every token request, space-separated as sent, in order.
    pub fn token_scopes(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl.scopes"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many requests below `prefix` the peer answered with `status`.
    pub fn answered(&self, prefix: &str, status: u16) -> usize {
        crate::graph::answered(
            &crate::graph::logged_requests(self.dir.path()),
            prefix,
            status,
        )
    }
}

impl Drop for FakeOkta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

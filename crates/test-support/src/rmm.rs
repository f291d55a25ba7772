//! The RMM peer (`vm-tests/lab/cloud/fakermm.py`: Datto RMM's API v2 or ConnectWise Automate's
//! REST API) over HTTPS on loopback with a throwaway CA, for the RMM inventory tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The peer script.
pub const FAKERMM_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vm-tests/lab/cloud/fakermm.py"
);

/// Datto: the API key; Automate: the integrator user.
pub const USER: &str = "K7QX2M9BDL4RT8WN3HZP6CVJ";
/// Datto: the API secret key; Automate: the integrator password.
pub const SECRET: &str = "s3cr3t-Pq9!rT2#vX7$kL4&mN8*";
/// The practice's Datto site UID.
pub const SITE: &str = "8a2f3c4d-1b2c-4d5e-8f90-0123456789ab";
/// Another practice's site in the same Datto account.
pub const OTHER_SITE: &str = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a";
/// The practice's Automate client ID.
pub const CLIENT: &str = "17";
/// The integration's ClientId GUID.
pub const CLIENT_ID: &str = "c8b2f1d3-5a6e-4f70-9b1c-2d3e4f5a6b7c";

/// Which API the peer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Datto,
    Automate,
}

/// A running peer on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct FakeRmm {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    vendor: Vendor,
}

impl FakeRmm {
    /// Starts the peer with `python` and extra flags (`--profile large`, `--throttle-first`,
    /// `--devices FILE`, …; see the script's docstring).
    ///
    /// # Panics
    /// When the peer does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, vendor: Vendor, flags: &[&str]) -> FakeRmm {
        let dir = tempfile::tempdir().unwrap();
        crate::smtp::pki(dir.path());
        let (child, port) = crate::graph::spawn_peer(
            Command::new(python)
                .arg(FAKERMM_SCRIPT)
                .args([
                    "--vendor",
                    match vendor {
                        Vendor::Datto => "datto",
                        Vendor::Automate => "automate",
                    },
                ])
                .args(["--user", USER, "--secret", SECRET, "--site", SITE])
                .args(["--client", CLIENT, "--client-id", CLIENT_ID])
                .args(flags),
            dir.path(),
        );
        FakeRmm {
            child,
            dir,
            port,
            vendor,
        }
    }

    /// The API URL, as `[[rmm]] api_url` takes it.
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that issued the peer's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The practice's site (Datto) or client (Automate) ID.
    pub fn site(&self) -> &'static str {
        match self.vendor {
            Vendor::Datto => SITE,
            Vendor::Automate => CLIENT,
        }
    }

    /// A `[[rmm]]` table for this peer, the secret in vault entry `credential`.
    pub fn rmm_table(&self, name: &str, credential: &str) -> String {
        let (kind, client_id) = match self.vendor {
            Vendor::Datto => ("datto", String::new()),
            Vendor::Automate => (
                "connectwise-automate",
                format!("client_id = \"{CLIENT_ID}\"\n"),
            ),
        };
        format!(
            "[[rmm]]\nname = \"{name}\"\nkind = \"{kind}\"\napi_url = \"{}\"\nsite = \"{}\"\napi_user = \"{USER}\"\n{client_id}credential = \"{credential}\"\nca_file = \"{}\"\n",
            self.api_url(),
            self.site(),
            self.ca_file().display()
        )
    }

    /// How many requests below `prefix` the peer answered with `status`.
    pub fn answered(&self, prefix: &str, status: u16) -> usize {
        crate::graph::answered(
            &crate::graph::logged_requests(self.dir.path()),
            prefix,
            status,
        )
    }

    /// Every request the peer answered: `{"method", "path", "status"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        crate::graph::logged_requests(self.dir.path())
    }
}

impl Drop for FakeRmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The namespace lab (vm-tests/lab/lab) from tests: `lab up` with settings, `lab down` on drop.

#![allow(
    clippy::unwrap_used,
    reason = "test helper: a failed setup should fail the test loudly"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running lab; `lab down` on drop, so a failed test leaves nothing behind.
#[derive(Debug)]
pub struct Lab {
    pub dir: PathBuf,
    script: PathBuf,
    /// `lab.env`, parsed.
    pub env: BTreeMap<String, String>,
    /// The machine-wide lab lock, held until the lab is down.
    _lock: std::fs::File,
}

/// The lab's namespaces and addresses are fixed, so one lab runs on a machine at a time: every
/// `Lab::up` (any test binary, any checkout) waits for this lock.
const LOCK: &str = "/run/lock/osiris-lab.lock";

impl Lab {
    /// `lab up` in `dir` with the given settings (`LAB_TARGETS`, `LAB_WIN_TARGETS`, `LAB_DC`, …).
    pub fn up(dir: &Path, settings: &[(&str, &str)]) -> Lab {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/lab/lab");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .unwrap_or_else(|err| panic!("opening the lab lock {LOCK}: {err}"));
        lock.lock()
            .unwrap_or_else(|err| panic!("taking the lab lock {LOCK}: {err}"));
        let mut command = Command::new(&script);
        command.arg("up").env("LAB_DIR", dir);
        for (key, value) in settings {
            command.env(key, value);
        }
        let out = command.output().unwrap();
        // Constructed before the assertion, so a half-started lab is torn down too.
        let mut lab = Lab {
            dir: dir.to_owned(),
            script,
            env: BTreeMap::new(),
            _lock: lock,
        };
        assert!(
            out.status.success(),
            "lab up failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        lab.env = std::fs::read_to_string(dir.join("lab.env"))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        lab
    }

    /// Runs the lab script with other arguments (e.g. `ssh N …`).
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new(&self.script)
            .args(args)
            .env("LAB_DIR", &self.dir)
            .output()
            .unwrap()
    }

    /// Runs `command` with `sh` as root (`sudo -n sh -c`) on lab host `host` (`1`, `2`, … for
    /// the hostoverlay targets, `s1`, `s2`, … for the systemd targets) through the lab's own ssh
    /// helper, as drift is planted.
    ///
    /// # Panics
    /// When the command fails.
    pub fn as_root(&self, host: &str, command: &str) {
        // ssh joins its arguments into one remote command line, so the script is quoted once more.
        let quoted = format!("'{}'", command.replace('\'', "'\\''"));
        let out = self.script(&["ssh", host, "sudo", "-n", "sh", "-c", &quoted]);
        assert!(
            out.status.success(),
            "on lab host {host}: {command}: {}",
            text(&out.stderr)
        );
    }

    /// The SSH host key fingerprint of Linux target `n` (1-based), read on the target itself
    /// (`ssh-keygen -lf` over the lab's key login), as an administrator pins it in `host_key`.
    ///
    /// # Panics
    /// When the target does not answer.
    pub fn host_fingerprint(&self, n: usize) -> String {
        let out = self.script(&[
            "ssh",
            &n.to_string(),
            "ssh-keygen",
            "-lf",
            "/etc/ssh/ssh_host_ed25519_key.pub",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(1)
            .filter(|fp| fp.starts_with("SHA256:"))
            .unwrap_or_else(|| panic!("no host key fingerprint from target {n}: {text}"))
            .to_owned()
    }

    /// Adds the A record `name.<the DC's domain>` → `ip` to the lab DC's DNS (ADIDNS, through
    /// `samba-tool` as the domain administrator), as a workstation registers itself. A DC that
    /// has just started (a freshly provisioned one especially) answers LDAP before its RPC
    /// logins work, so this tries for up to 30 s before failing with samba-tool's last words.
    pub fn dns_add(&self, name: &str, ip: &str) {
        let admin = std::fs::read_to_string(self.dir.join("dc/samba/admin-password"))
            .expect("the lab runs a DC (LAB_DC=1)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = std::process::Command::new("samba-tool")
                .args([
                    "dns",
                    "add",
                    &self.env["LAB_DC_HOST"],
                    &self.env["LAB_DC_DOMAIN"],
                    name,
                    "A",
                    ip,
                ])
                .arg(format!("-UAdministrator%{}", admin.trim()))
                .output()
                .expect("samba-tool runs");
            if out.status.success() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "samba-tool dns add {name} {ip}: {}",
                text(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("site.toml")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The lock is released after this, when the file is closed.
        let _ = Command::new(&self.script)
            .arg("down")
            .env("LAB_DIR", &self.dir)
            .output();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lab tests need root for network namespaces; CI runs as root. Gate tests with
/// [`crate::require_root`], which fails instead of skipping under `OSIRIS_REQUIRE_ROOT=1`.
pub fn is_root() -> bool {
    crate::root::is_root()
}

/// The programs `lab up` needs for its Linux targets (vm-tests/lab/install-deps installs them).
pub const LAB_TOOLS: &[&str] = &["sshd", "ip", "unshare", "nft", "sudo", "openssl"];

//! Test fixture: a real OpenSSH `sshd` on 127.0.0.1, plus throwaway users removed on drop.
#![allow(clippy::print_stderr, dead_code, unreachable_pub)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running `sshd`, killed on drop. Root may log in with `client_key`.
pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    pub client_key: PathBuf,
    child: Child,
}

/// A system user created for one test, deleted (with any sudoers drop-in) on drop.
pub struct TempUser {
    pub name: String,
    pub password: String,
    sudoers: Option<PathBuf>,
}

/// Returns false (after printing a loud notice) when the tests cannot start sshd; fails instead
/// under `OSIRIS_REQUIRE_ROOT=1`.
pub fn can_run(test: &str) -> bool {
    test_support::require_root(test, &["sshd", "ssh-keygen", "useradd", "userdel"])
}

impl Sshd {
    /// Starts sshd on a free loopback port with a fresh host key.
    pub fn start() -> Sshd {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        Self::start_on(port)
    }

    /// Starts sshd on `port` with a fresh ed25519 host key and a fresh client key.
    pub fn start_on(port: u16) -> Sshd {
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::tempdir().expect("tempdir");
        let host_key = dir.path().join("host_ed25519");
        let client_key = dir.path().join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        let public = fs::read_to_string(client_key.with_extension("pub")).expect("read client key");
        fs::write(dir.path().join("authorized_keys"), public).expect("write authorized_keys");
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\n\
                 HostKey {host}\n\
                 PidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 PasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin yes\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 MaxStartups 100\n\
                 LogLevel VERBOSE\n",
                host = host_key.display(),
                dir = dir.path().display(),
            ),
        )
        .expect("write sshd_config");
        let log = fs::File::create(dir.path().join("sshd.log")).expect("create log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/sshd");
        let sshd = Sshd {
            dir,
            port,
            client_key,
            child,
        };
        sshd.wait_listening();
        sshd
    }

    /// Ends every connection the server holds (its per-connection processes), as a restart or
    /// an idle timeout on the server would, while the server keeps listening.
    pub fn drop_connections(&self) {
        let status = Command::new("pkill")
            .args(["-TERM", "-P", &self.child.id().to_string()])
            .status()
            .expect("run pkill");
        assert!(status.success(), "no connection to drop");
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it on the server (`SHA256:…`):
    /// what an administrator copies into `host_key`.
    pub fn host_fingerprint(&self) -> String {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .expect("ssh-keygen -lf");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_owned()
    }

    fn wait_listening(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.log().contains("Server listening on") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not start on port {}:\n{}", self.port, self.log());
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serialises useradd/userdel, which lock /etc/passwd.
static USERS: Mutex<()> = Mutex::new(());

impl TempUser {
    /// Creates a user with a random password; with `sudo`, also a NOPASSWD sudoers drop-in.
    pub fn create(sudo: bool) -> TempUser {
        let _guard = USERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = format!("osiristest{}", random_hex(6));
        let password = format!("pw-{}", random_hex(12));
        run(Command::new("useradd").args(["-M", "-N", "-s", "/bin/sh", &name]));
        let mut user = TempUser {
            name,
            password,
            sudoers: None,
        };
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("start chpasswd");
        std::io::Write::write_all(
            chpasswd.stdin.as_mut().expect("stdin"),
            format!("{}:{}\n", user.name, user.password).as_bytes(),
        )
        .expect("write chpasswd");
        drop(chpasswd.stdin.take());
        assert!(
            chpasswd.wait().expect("chpasswd").success(),
            "chpasswd failed"
        );
        if sudo {
            let path = PathBuf::from(format!("/etc/sudoers.d/{}", user.name));
            fs::write(&path, format!("{} ALL=(root) NOPASSWD: ALL\n", user.name))
                .expect("write sudoers drop-in");
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o440))
                .expect("chmod sudoers drop-in");
            user.sudoers = Some(path);
        }
        user
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _guard = USERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(path) = &self.sudoers {
            let _ = fs::remove_file(path);
        }
        // userdel refuses while a session of the user is still ending: retry for a while.
        for _ in 0..20 {
            let status = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status();
            if status.is_ok_and(|status| status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("WARNING: could not delete test user {}", self.name);
    }
}

/// Random lowercase hex digits.
pub fn random_hex(n: usize) -> String {
    use std::hash::{BuildHasher, RandomState};
    let mut out = String::new();
    while out.len() < n {
        out.push_str(&format!(
            "{:016x}",
            RandomState::new().hash_one(Instant::now())
        ));
    }
    out.truncate(n);
    out
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "osiris-test", "-f"])
        .arg(path));
}

fn run(command: &mut Command) {
    let out = command.output().expect("run command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, its own port on
//! loopback, password (SCRAM) authentication, torn down when dropped. Never a system service.
//! As root, the server runs as `nobody` (PostgreSQL refuses to run as root).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::root::{is_root, root_tests_required};

/// A running test server.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
}

/// The user every test server is created with.
pub const SUPERUSER: &str = "osiris";

impl PgServer {
    /// Starts a fresh server for `test`. Returns `None` (after a loud SKIPPED line) when
    /// PostgreSQL is not installed, unless `OSIRIS_REQUIRE_ROOT=1` or `CI` is set: then it panics.
    /// `scripts/setup` installs PostgreSQL.
    ///
    /// # Panics
    /// When `initdb` or `pg_ctl` fails, or PostgreSQL is missing and tests may not skip.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            let message = format!(
                "{test} needs PostgreSQL's server programs (initdb, pg_ctl); scripts/setup installs Debian's `postgresql`"
            );
            assert!(!root_tests_required(), "{message}; tests may not skip here");
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {message} ***\n");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("osiris-pg-")
            .tempdir()
            .unwrap_or_else(|err| panic!("creating a temporary directory: {err}"));
        let password = random_password();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{password}\n")).unwrap_or_else(|err| panic!("{err}"));
        if is_root() {
            chown_nobody(dir.path());
        }
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", path_str(&pwfile)),
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let log = dir.path().join("server.log");
        // The port is free when chosen but another test may take it before the server binds
        // it; then the server exits at once, and another port is tried.
        let mut attempt = 0;
        let port = loop {
            attempt += 1;
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                path_str(dir.path())
            );
            let out = as_server_user(&bin.join("pg_ctl"))
                .args(["-D", path_str(&data), "-o", &options, "-l", path_str(&log)])
                .args(["-w", "-t", "120", "start"])
                .output()
                .unwrap_or_else(|err| panic!("running pg_ctl: {err}"));
            if out.status.success() {
                break port;
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            let port_taken = server_log.contains("could not bind")
                || server_log.contains("Address already in use");
            assert!(
                port_taken && attempt < 5,
                "pg_ctl start failed (attempt {attempt}): {}\n{}\nserver log:\n{server_log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        Some(PgServer {
            dir,
            bin,
            port,
            password,
        })
    }

    /// The URL of database `db` as the superuser (with its password).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates database `name` (letters, digits and `_` only) and returns its URL.
    ///
    /// # Panics
    /// On a bad name or when `createdb` fails.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database name {name:?}"
        );
        let out = self.client("createdb", &[name]);
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    /// Stops the server (fast shutdown), e.g. to test what happens while the database is down.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path_str(self.dir.path())
        );
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "start",
            ],
        );
    }

    /// Runs a client program (`psql`, `createdb`) against this server as the superuser.
    pub fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(self.bin.join(program))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(args)
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap_or_else(|err| panic!("running {program}: {err}"))
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .args(["-D", path_str(&data), "-m", "fast", "-w", action])
            .output();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .args(["-D", path_str(&data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Debian's server programs: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let dir = entry.path().join("bin");
            has_server(&dir).then_some((version, dir))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(bin: &Path, program: &str, args: &[&str]) {
    let out = as_server_user(&bin.join(program))
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running {program}: {err}"));
    assert!(
        out.status.success(),
        "{program} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chown_nobody(dir: &Path) {
    for path in [dir.to_path_buf(), dir.join("pw")] {
        let out = Command::new("chown")
            .args(["nobody:nogroup", path_str(&path)])
            .output()
            .unwrap_or_else(|err| panic!("chown: {err}"));
        assert!(
            out.status.success(),
            "chown {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|err| panic!("finding a free port: {err}"))
}

fn random_password() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes
        .iter()
        .map(|b| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[usize::from(b % 32)]))
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", path.display()))
}

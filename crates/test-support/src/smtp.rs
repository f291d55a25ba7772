//! A real SMTP server for tests: aiosmtpd (from the project's Python venv) requiring STARTTLS
//! and AUTH, writing each accepted mail as `NNNN.json` into a maildir; and a throwaway PKI made
//! with the openssl CLI for it.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running SMTP server; killed on drop.
#[derive(Debug)]
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Starts the server on 127.0.0.1 (a free port) with the TLS certificate `pki` made in
    /// `dir`, accepting `user`/`password`; mails go to `dir/mail`.
    ///
    /// # Panics
    /// When the server does not start (a test setup failure).
    #[allow(clippy::unwrap_used, reason = "test helper")]
    pub fn start(python: &Path, dir: &Path, user: &str, password: &str) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smtp_server.py");
        let maildir = dir.join("mail");
        std::fs::create_dir_all(&maildir).unwrap();
        let mut child = Command::new(python)
            .arg(script)
            .args([
                dir.join("server.pem"),
                dir.join("server.key"),
                maildir.clone(),
            ])
            .args([user, password])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("smtp server said {line:?}"))
            .parse()
            .unwrap();
        Smtp {
            child,
            port,
            maildir,
        }
    }

    /// The mails received so far (parsed `NNNN.json` envelopes, in arrival order).
    pub fn mails(&self) -> Vec<serde_json::Value> {
        self.files("json")
            .iter()
            .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
            .collect()
    }

    /// The raw text (RFC 5322) of each mail received so far, in arrival order.
    pub fn raw_mails(&self) -> Vec<String> {
        self.files("eml")
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// The maildir's files with this extension, in name (= arrival) order.
    #[allow(clippy::unwrap_used, reason = "test helper")]
    fn files(&self, extension: &str) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        names.sort();
        names
    }
}

/// Runs the openssl CLI with `args` in `dir`.
///
/// # Panics
/// When openssl cannot run or fails (a test setup failure), with its message.
#[allow(clippy::unwrap_used, reason = "test helper")]
pub fn openssl_in(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 (`server.pem`,
/// `server.key`) in `dir`, made with the openssl CLI.
///
/// # Panics
/// When openssl fails (a test setup failure).
#[allow(clippy::unwrap_used, reason = "test helper")]
pub fn pki(dir: &Path) {
    let run = |args: &[&str]| openssl_in(dir, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=osiris test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

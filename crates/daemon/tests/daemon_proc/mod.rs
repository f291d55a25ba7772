//! A real `osirisd` started by a test (`lab_daemon.rs`, `lab_l2.rs`, `cloud.rs`,
//! `expiry_notices.rs`): its log appended to a file, killed when dropped, a bounded wait that
//! shows that log when it gives up, and a webhook receiver that checks the daemon's signatures
//! as a PSA would.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon's process, killed on drop.
pub(crate) struct Daemon(pub(crate) Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `osirisd --config CONFIG`, its stderr appended to `log`.
pub(crate) fn start(config: &Path, log: &Path) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_osirisd"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Daemon(child)
}

/// Starts osirisd (its log in `log`) and waits until its API on `socket` answers.
pub(crate) fn start_answering(config: &Path, socket: &Path, log: &Path) -> Daemon {
    let mut daemon = start(config, log);
    wait_for(30, "the daemon's API", log, || {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "osirisd exited early:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        api::Client::new(socket).status().ok()
    });
    daemon
}

/// Runs the `osiris` built beside osirisd with `--config CONFIG`.
pub(crate) fn osiris(config: &Path, args: &[&str]) -> std::process::Output {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name("osiris");
    assert!(bin.exists(), "{} is missing: build it first", bin.display());
    Command::new(bin)
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Polls `f` every 100 ms until it returns `Some`, or fails after `secs` with `what` and the
/// daemon's log.
pub(crate) fn wait_for<T>(
    secs: u64,
    what: &str,
    log: &Path,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}; daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the webhook receiver accepted: bodies whose HMAC signature verified.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) verified: Vec<serde_json::Value>,
    pub(crate) rejected: u32,
}

pub(crate) const HOOK_SECRET: &str = "hook-secret-for-the-lab-0123456789";

/// A receiver on 127.0.0.1 that checks our signature like a PSA would.
pub(crate) fn webhook_receiver(hooks: Arc<Mutex<Hooks>>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(
                    move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                        let hooks = Arc::clone(&hooks);
                        async move {
                            let header = |name: &str| {
                                headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let timestamp: i64 = header(escalate::payload::TIMESTAMP_HEADER)
                                .parse()
                                .unwrap_or_default();
                            let now = time::OffsetDateTime::now_utc().unix_timestamp();
                            let ok = escalate::payload::verify(
                                HOOK_SECRET.as_bytes(),
                                timestamp,
                                &body,
                                &header(escalate::payload::SIGNATURE_HEADER),
                                now,
                                300,
                            );
                            let mut hooks = hooks.lock().unwrap();
                            if ok {
                                hooks.verified.push(serde_json::from_slice(&body).unwrap());
                                axum::http::StatusCode::NO_CONTENT
                            } else {
                                hooks.rejected += 1;
                                axum::http::StatusCode::UNAUTHORIZED
                            }
                        }
                    },
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/hook", rx.recv().unwrap())
}

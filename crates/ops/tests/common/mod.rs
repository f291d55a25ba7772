//! What the `ops` tests share: configuration from TOML text (through the same loader `osiris`
//! and `osirisd` use), credential files, a real store in a temp dir, the auditor kit it exports
//! (verified offline), and the log lines the operations emit.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Writes `toml` to `dir/site.toml` and loads it as `osiris` does: parse, then check the
/// `[checks.*]` overrides against the built-in catalogue.
pub(crate) fn load(dir: &Path, toml: &str) -> anyhow::Result<config::Config> {
    let path = dir.join("site.toml");
    std::fs::write(&path, toml).unwrap();
    let config = ops::setup::load_config(Some(&path))?;
    ops::setup::check_overrides(&config, &catalog())?;
    Ok(config)
}

/// The built-in catalogue.
pub(crate) fn catalog() -> catalog::Catalog {
    ops::setup::load_catalog().unwrap()
}

/// Writes a credential file with `mode`.
pub(crate) fn secret_file(path: &Path, content: &str, mode: u32) -> PathBuf {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_owned()
}

/// A vault at `dir/credentials.vault` under a new key `dir/credentials.key`, holding `entries`
/// (`name`, `kind`, `secret`); returns the `[credentials]` section that names both.
pub(crate) fn vault(dir: &Path, entries: &[(&str, credentials::CredentialKind, &str)]) -> String {
    let key = dir.join("credentials.key");
    let path = dir.join("credentials.vault");
    if !key.exists() {
        credentials::Vault::init_key(&key).unwrap();
    }
    let mut vault =
        credentials::Vault::open(&path, &credentials::KeySource::File(key.clone())).unwrap();
    for (name, kind, secret) in entries {
        vault
            .set(name, *kind, credentials::Secret::new((*secret).to_owned()))
            .unwrap();
    }
    format!(
        "\n[credentials]\nvault = {:?}\nkey_file = {:?}\n",
        path.display().to_string(),
        key.display().to_string()
    )
}

/// The error is a configuration error (exit 78); returns its text with `dir` shown as `$DIR`.
#[track_caller]
pub(crate) fn bad_config(err: &anyhow::Error, dir: &Path) -> String {
    assert!(
        err.downcast_ref::<ops::BadConfig>().is_some(),
        "not a BadConfig (exit 78) but: {err:#}"
    );
    format!("{err:#}").replace(&dir.display().to_string(), "$DIR")
}

/// A multi-threaded runtime like the one `osiris` and `osirisd` build (healing needs one).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Exports the store's evidence as an auditor kit under `out`, verifies it offline as an auditor
/// would, and returns its bundles.
pub(crate) async fn verified_kit(store: &store::Store, out: &Path) -> Vec<serde_json::Value> {
    store.export_kit(out).await.unwrap();
    // Pinned to the key the appliance holds, as an auditor does with `--key`.
    let opts = evidence::kit::VerifyOptions {
        pinned_key: Some(store.verifier().clone()),
        ..Default::default()
    };
    let report = evidence::kit::verify(out, &opts);
    assert!(
        report.problems.is_empty(),
        "the kit does not verify: {:?}",
        report.problems
    );
    std::fs::read_to_string(out.join("bundles.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The bundles of `kind` among `bundles`.
pub(crate) fn of_kind<'a>(
    bundles: &'a [serde_json::Value],
    kind: &str,
) -> Vec<&'a serde_json::Value> {
    bundles.iter().filter(|b| b["kind"] == kind).collect()
}

/// Everything logged through `tracing` by this test binary so far (every thread, up to DEBUG:
/// what an operator sees with `RUST_LOG=debug`).
pub(crate) fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// Starts capturing `tracing` output for the whole test binary (idempotent).
pub(crate) fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(Arc::default)
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The statuses of a scan bundle's results, by check.
pub(crate) fn statuses(bundle: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    bundle["body"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Writes `text` to stderr past the harness's capture (timings of the slow tests).
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

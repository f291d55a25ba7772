//! The signing key as a systemd credential: the store signs with the key in
//! `$CREDENTIALS_DIRECTORY/appliance-key` and never writes a key into the data directory; a
//! requested but missing credential is refused before anything is created.
//!
//! The environment is per process (and changing it is `unsafe` in this edition), so each case
//! re-runs this test binary as a child with the environment systemd would give osirisd.

mod common;

use std::path::Path;
use std::process::Command;

use common::{config, scan_draft, verify_log};
use evidence::ApplianceKey;
use evidence::credential::{APPLIANCE_KEY_CREDENTIAL, APPLIANCE_KEY_CREDENTIAL_ENV};
use store::Store;

/// Set in the child: which case to run, and the data directory to use.
const CHILD_CASE: &str = "OSIRIS_STORE_CREDENTIAL_TEST_CASE";
const CHILD_DATA_DIR: &str = "OSIRIS_STORE_CREDENTIAL_TEST_DATA_DIR";

#[test]
fn store_signs_with_the_credential_and_writes_no_key() {
    let creds = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let key = ApplianceKey::from_seed(&[42u8; 32]);
    std::fs::write(
        creds.path().join(APPLIANCE_KEY_CREDENTIAL),
        format!("{}\n", key.private_key_text()),
    )
    .expect("write credential");

    // Found by name in the credentials directory, and when the unit requests it explicitly.
    for request in [None, Some(APPLIANCE_KEY_CREDENTIAL)] {
        let out = run_child("signs_with_credential", data.path(), creds.path(), request);
        assert!(out.status.success(), "child failed: {}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("verifier={}", key.verifier())),
            "{stdout}"
        );
    }
    assert!(
        !data.path().join("keys").exists(),
        "a key directory was created"
    );
    assert_no_key_material(data.path(), &key);
}

#[test]
fn requested_but_missing_credential_is_refused() {
    let creds = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let out = run_child(
        "refuses_missing_credential",
        data.path(),
        creds.path(),
        Some(APPLIANCE_KEY_CREDENTIAL),
    );
    assert!(out.status.success(), "child failed: {}", describe(&out));
    assert!(!data.path().join("keys").exists(), "a key file was created");
    assert!(
        !data.path().join("osiris.db").exists(),
        "a database was created"
    );
}

/// The child half of both cases; does nothing when run as an ordinary test.
#[tokio::test]
async fn credential_child() {
    let Ok(case) = std::env::var(CHILD_CASE) else {
        return;
    };
    let data_dir = std::path::PathBuf::from(std::env::var_os(CHILD_DATA_DIR).expect("data dir"));
    match case.as_str() {
        "signs_with_credential" => {
            let store = Store::open(&config(&data_dir)).await.expect("open");
            let size = store.size();
            store.append(scan_draft(size)).await.expect("append");
            // Every line verifies under the store's verifier, which the parent compares with the credential's.
            assert_eq!(verify_log(&store).await, size + 1);
            println!("verifier={}", store.verifier());
            store.close().await;
        }
        "refuses_missing_credential" => {
            let err = Store::open(&config(&data_dir))
                .await
                .expect_err("must refuse");
            let text = err.to_string();
            assert!(
                text.contains("systemd credential `appliance-key`")
                    && text.contains("does not exist"),
                "{text}"
            );
        }
        other => panic!("unknown case {other}"),
    }
}

fn run_child(
    case: &str,
    data_dir: &Path,
    credentials_dir: &Path,
    request: Option<&str>,
) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "credential_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_CASE, case)
    .env(CHILD_DATA_DIR, data_dir)
    .env("CREDENTIALS_DIRECTORY", credentials_dir)
    .env_remove(APPLIANCE_KEY_CREDENTIAL_ENV);
    if let Some(name) = request {
        cmd.env(APPLIANCE_KEY_CREDENTIAL_ENV, name);
    }
    cmd.output().expect("run child")
}

fn describe(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No file under `dir` holds the private key text or the seed's base64.
fn assert_no_key_material(dir: &Path, key: &ApplianceKey) {
    let text = key.private_key_text();
    // `PRIVATE+KEY+<name>+<keyid>+<base64>`; base64 itself may hold a `+`.
    let material = text.splitn(5, '+').nth(4).expect("key material");
    assert!(material.len() >= 44, "{text}");
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).expect("read");
        let found = bytes
            .windows(material.len())
            .any(|window| window == material.as_bytes());
        assert!(!found, "{} holds the signing key", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

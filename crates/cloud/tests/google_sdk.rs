//! The Google peer as Google's own clients see it: `tests/python/google_check.py` gets a token
//! with google-auth's service account credentials (domain-wide delegation) and reads users,
//! mobile devices, roles and role assignments through google-api-python-client's discovery
//! client (the Admin SDK Directory v1 document the package ships) with its own paging. What it
//! reads must be the small practice the Rust client judges (`tests/google_peer.rs`), a revoked
//! key must fail the way Google fails it, and the JWTs the Rust client sent must pass
//! google-auth's RS256 verification against the service account's certificate.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;
use std::time::Duration;

use test_support::google::{ADMIN, CUSTOMER_ID, FakeGoogle};

#[test]
fn google_s_clients_read_the_peer_and_verify_the_appliance_s_jwts() {
    let Some(python) = test_support::python::reference_python_with("googleapiclient") else {
        return;
    };
    let peer = FakeGoogle::start(&python, &[]);
    // The appliance's scan first: its JWTs are what google-auth verifies below.
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::GoogleWorkspace)
        .collect();
    let tenant = cloud::GoogleWorkspaceTenant {
        name: "clinic-google".to_owned(),
        customer_id: CUSTOMER_ID.to_owned(),
        directory: cloud::google::GoogleSettings {
            token_url: peer.token_url(),
            directory_base: peer.directory_base(),
            subject: ADMIN.to_owned(),
            key_json: zeroize::Zeroizing::new(peer.key_json()),
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        timeout: Duration::from_secs(60),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scan = runtime.block_on(cloud::scan_google_workspace(
        tenant,
        &runbooks,
        &Default::default(),
    ));
    assert!(
        scan.report
            .results
            .iter()
            .all(|r| r.outcome.status != model::CheckStatus::Error)
    );
    let dir = tempfile::tempdir().unwrap();
    let rust_jwts = dir.path().join("rust-jwts.txt");
    std::fs::write(&rust_jwts, peer.assertions().join("\n")).unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(&key, peer.key_json()).unwrap();
    let revoked = dir.path().join("revoked.json");
    std::fs::write(&revoked, peer.revoked_key_json()).unwrap();
    let out = Command::new(&python)
        .arg(format!(
            "{}/tests/python/google_check.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(peer.token_url())
        .arg(format!("https://127.0.0.1:{}/", peer.port()))
        .arg(&key)
        .arg(&revoked)
        .args([ADMIN, CUSTOMER_ID])
        .arg(peer.service_account_certificate())
        .arg(&rust_jwts)
        .env("SSL_CERT_FILE", peer.ca_file())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    expect_test::expect![[r#"
        {
         "altered_jwt": "Could not verify token signature.",
         "device_pages": 3,
         "devices": 13,
         "not_enforced": [
          "gina.rossi@smithfamilypractice.com",
          "hal.berg@smithfamilypractice.com",
          "ivy.chen@smithfamilypractice.com"
         ],
         "not_enrolled": [
          "gina.rossi@smithfamilypractice.com",
          "ivy.chen@smithfamilypractice.com"
         ],
         "revoked_key": "invalid_grant",
         "rust_jwts_verified": [
          {
           "alg": "RS256",
           "iss": "osiris-posture@smith-practice-posture.iam.gserviceaccount.com",
           "lifetime": 3600,
           "scope": "https://www.googleapis.com/auth/admin.directory.device.mobile.readonly",
           "sub": "ann.smith@smithfamilypractice.com"
          },
          {
           "alg": "RS256",
           "iss": "osiris-posture@smith-practice-posture.iam.gserviceaccount.com",
           "lifetime": 3600,
           "scope": "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
           "sub": "ann.smith@smithfamilypractice.com"
          },
          {
           "alg": "RS256",
           "iss": "osiris-posture@smith-practice-posture.iam.gserviceaccount.com",
           "lifetime": 3600,
           "scope": "https://www.googleapis.com/auth/admin.directory.user.readonly",
           "sub": "ann.smith@smithfamilypractice.com"
          }
         ],
         "super_admins": [
          "ann.smith@smithfamilypractice.com",
          "bob.jones@smithfamilypractice.com"
         ],
         "suspended_admins": [
          "pat.kerr@smithfamilypractice.com"
         ],
         "unencrypted": [
          "Samsung Galaxy A54 WIPED",
          "Samsung Galaxy S23 APPROVED"
         ],
         "user_pages": 4,
         "users": 18
        }
    "#]]
    .assert_eq(&String::from_utf8_lossy(&out.stdout));
}

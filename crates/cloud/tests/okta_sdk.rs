//! The Okta peer as Okta's own SDK sees it: `tests/python/okta_check.py` reads users (with the
//! SDK's `Link` paging), their factors, the administrators, the password policies and the
//! sign-on rules through the `okta` package's typed models. What it reads must be what
//! the Rust client reads from the same peer, and an expired token must fail with E0000011 there
//! too. `tests/python/okta_jwt_check.py` signs in with the SDK's own `private_key_jwt` and
//! verifies the appliance's client assertions against the service app's certificate.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;
use std::time::{Duration, Instant};

use cloud::okta::{OktaClient, OktaCredential, OktaSettings};
use test_support::okta::{CLIENT_ID, EXPIRED_TOKEN, FakeOkta, TOKEN};

#[test]
fn okta_s_sdk_reads_what_the_appliance_reads() {
    let Some(python) = test_support::python::reference_python_with("okta") else {
        return;
    };
    let peer = FakeOkta::start(&python, &[]);
    let output = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/okta_check.py"
        ))
        .arg(peer.org_url())
        .arg(TOKEN)
        .arg(EXPIRED_TOKEN)
        .env("SSL_CERT_FILE", peer.ca_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sdk: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sdk["pages"], 3, "12 users at 5 a page");
    assert!(
        sdk["expired_error"].as_str().unwrap().contains("E0000011"),
        "{sdk}"
    );

    let okta = OktaClient::new(
        OktaSettings {
            org_url: peer.org_url(),
            credential: OktaCredential::ApiToken(zeroize::Zeroizing::new(TOKEN.to_owned())),
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        Instant::now() + Duration::from_secs(60),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let users = runtime
        .block_on(okta.list(&["users"], &[("limit", "5")], "okta.users.read"))
        .unwrap();
    let mut ours = Vec::new();
    for user in &users {
        let factors = runtime
            .block_on(okta.list(
                &["users", user["id"].as_str().unwrap(), "factors"],
                &[],
                "okta.users.read",
            ))
            .unwrap();
        ours.push(serde_json::json!({
            "login": user["profile"]["login"],
            "status": user["status"],
            "factors": factors.iter().map(|f| f["factorType"].clone()).collect::<Vec<_>>(),
        }));
    }
    assert_eq!(serde_json::Value::Array(ours), sdk["users"]);
    // Without MFA among the active: what the MFA check will fail on, seen alike by both.
    let without: Vec<_> = sdk["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["status"] == "ACTIVE" && u["factors"].as_array().unwrap().is_empty())
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(
        without,
        [
            "gina.rossi@smithfamilypractice.com",
            "ivy.chen@smithfamilypractice.com"
        ]
    );

    // The posture sources as the SDK's typed models read them, and as the scan collects them.
    let sources = cloud::okta::source::Source::ALL.into_iter().collect();
    let facts = runtime.block_on(cloud::okta::collect(&okta, &sources));
    let logins: std::collections::BTreeMap<_, _> = facts
        .users
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap()
        .iter()
        .map(|u| (u.id.clone(), u.login.clone()))
        .collect();
    let mut admins: Vec<_> = facts
        .admins
        .unwrap()
        .unwrap()
        .iter()
        .map(|id| logins[id].clone())
        .collect();
    admins.sort();
    assert_eq!(serde_json::json!(admins), sdk["admins"]);
    let password: Vec<_> = facts
        .password_policies
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|p| {
            serde_json::json!({"name": p.name, "status": p.status, "min_length": p.min_length,
                "history": p.history, "lockout": p.lockout_attempts})
        })
        .collect();
    assert_eq!(serde_json::json!(password), sdk["password_policies"]);
    let rules: Vec<_> = facts
        .sign_on_rules
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|r| serde_json::json!({"rule": r.name, "mfa": r.requires_mfa}))
        .collect();
    assert_eq!(serde_json::json!(rules), sdk["allowing_rules"]);
    expect_test::expect![[r#"
        ["ann.smith@smithfamilypractice.com","bob.jones@smithfamilypractice.com","carla.diaz@smithfamilypractice.com"]
        [{"name":"Default Policy","status":"ACTIVE","min_length":12,"history":4,"lockout":6},{"name":"Legacy vendors","status":"INACTIVE","min_length":6,"history":0,"lockout":0}]
        [{"rule":"Default Policy / Office network","mfa":false},{"rule":"Default Policy / Default Rule","mfa":true},{"rule":"Any two factors / Catch-all Rule","mfa":true}]
    "#]].assert_eq(&format!(
        "{}\n{}\n{}\n",
        sdk["admins"], sdk["password_policies"], sdk["allowing_rules"]
    ));
}

#[test]
fn okta_s_sdk_signs_in_like_the_appliance_and_verifies_its_assertions() {
    let Some(python) = test_support::python::reference_python_with("okta") else {
        return;
    };
    let peer = FakeOkta::start(&python, &[]);
    let okta = OktaClient::new(
        OktaSettings {
            org_url: peer.org_url(),
            credential: OktaCredential::PrivateKeyJwt {
                client_id: CLIENT_ID.to_owned(),
                private_key_pem: zeroize::Zeroizing::new(peer.app_key_pem()),
                key_id: None,
                scopes: vec!["okta.users.read".to_owned()],
            },
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        Instant::now() + Duration::from_secs(60),
    )
    .unwrap();
    let users = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(okta.list(&["users"], &[], "okta.users.read"))
        .unwrap();
    assert_eq!(users.len(), 12);
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("assertions.txt");
    std::fs::write(&ours, peer.assertions().join("\n")).unwrap();
    let output = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/okta_jwt_check.py"
        ))
        .arg(peer.org_url())
        .arg(CLIENT_ID)
        .arg(peer.app_key_file())
        .arg(peer.app_certificate())
        .arg(&ours)
        .env("SSL_CERT_FILE", peer.ca_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sdk: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sdk["sdk_users"], 12, "{sdk}");
    assert_eq!(
        sdk["ours"],
        serde_json::json!([{"alg_matches": true, "claims_match": true, "sub": CLIENT_ID}]),
        "{sdk}"
    );
    assert_eq!(sdk["tampered_rejected"], true);
    // The SDK's sign-in and ours: two assertions, both accepted by the peer.
    assert_eq!(peer.answered("/oauth2/v1/token", 200), 2);
}

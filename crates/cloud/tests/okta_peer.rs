//! The Okta client against the Okta peer (`vm-tests/lab/cloud/fakeokta.py`) over HTTPS: the
//! small practice's users and factors, cursor paging through `Link` headers over 10,000 users,
//! a rate limit waited out until `X-Rate-Limit-Reset`, an expired token, a missing scope, and a
//! next link to another host refused.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use cloud::okta::{OktaClient, OktaCredential, OktaError, OktaSettings};
use test_support::okta::{CLIENT_ID, EXPIRED_TOKEN, FakeOkta, TOKEN};

fn client(peer: &FakeOkta, token: &str, timeout: Duration) -> OktaClient {
    OktaClient::new(
        OktaSettings {
            org_url: peer.org_url(),
            credential: OktaCredential::ApiToken(zeroize::Zeroizing::new(token.to_owned())),
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        Instant::now() + timeout,
    )
    .unwrap()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn logins(users: &[serde_json::Value]) -> Vec<&str> {
    users
        .iter()
        .map(|u| u["profile"]["login"].as_str().unwrap())
        .collect()
}

#[test]
fn small_practice_users_and_factors_are_read_in_pages() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &[]);
    let okta = client(&peer, TOKEN, Duration::from_secs(60));
    let users = block_on(okta.list(&["users"], &[("limit", "5")], "okta.users.read")).unwrap();
    assert_eq!(users.len(), 12);
    assert_eq!(logins(&users)[0], "ann.smith@smithfamilypractice.com");
    assert_eq!(logins(&users)[11], "lou.grant@smithfamilypractice.com");
    // 12 users at 5 a page: three pages, each followed through its Link header.
    assert_eq!(peer.answered("/api/v1/users", 200), 3);
    let ann = users[0]["id"].as_str().unwrap();
    let factors = block_on(okta.list(&["users", ann, "factors"], &[], "okta.users.read")).unwrap();
    let kinds: Vec<_> = factors
        .iter()
        .map(|f| f["factorType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["webauthn", "push"]);
}

#[test]
fn ten_thousand_users_are_paged_and_a_rate_limit_is_waited_out() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &["--profile", "large", "--throttle-first"]);
    let okta = client(&peer, TOKEN, Duration::from_secs(120));
    let users = block_on(okta.list(&["users"], &[("limit", "200")], "okta.users.read")).unwrap();
    assert_eq!(users.len(), 10_000);
    let mut ids: Vec<_> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 10_000, "a user was read twice");
    assert_eq!(peer.answered("/api/v1/users", 429), 1);
    assert_eq!(peer.answered("/api/v1/users", 200), 50);
}

#[test]
fn an_expired_token_says_what_to_do() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &[]);
    let okta = client(&peer, EXPIRED_TOKEN, Duration::from_secs(30));
    let err = block_on(okta.list(&["users"], &[], "okta.users.read")).unwrap_err();
    assert!(matches!(err, OktaError::Unauthorized { ref code, .. } if code == "E0000011"));
    assert!(err.to_string().contains("osiris credentials set"), "{err}");
}

#[test]
fn a_missing_scope_is_named() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &["--deny", "users"]);
    let okta = client(&peer, TOKEN, Duration::from_secs(30));
    let err = block_on(okta.list(&["users"], &[], "okta.users.read")).unwrap_err();
    assert!(err.to_string().contains("okta.users.read"), "{err}");
    assert!(err.to_string().contains("E0000006"), "{err}");
}

#[test]
fn a_next_link_to_another_host_is_refused() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &["--foreign-next-link"]);
    let okta = client(&peer, TOKEN, Duration::from_secs(30));
    let err = block_on(okta.list(&["users"], &[("limit", "5")], "okta.users.read")).unwrap_err();
    assert!(
        matches!(err, OktaError::ForeignLink(ref link) if link.starts_with("https://evil.example/")),
        "{err}"
    );
    // Only the first page was read; nothing went to the other host's path on the org.
    assert_eq!(peer.answered("/api/v1/users", 200), 1);
}

#[test]
fn rate_limit_exhaustion_ends_at_the_deadline() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    // A quota of 2 a minute: the third page's 429 names a reset up to a minute on, past the
    // scan's 10 s; the client gives up instead of waiting beyond its deadline.
    let peer = FakeOkta::start(&python, &["--quota", "2"]);
    let okta = client(&peer, TOKEN, Duration::from_secs(10));
    let err = block_on(okta.list(&["users"], &[("limit", "2")], "okta.users.read")).unwrap_err();
    assert!(matches!(err, OktaError::Throttled { .. }), "{err}");
    assert_eq!(peer.answered("/api/v1/users", 200), 2);
}

fn app_client(peer: &FakeOkta, key_pem: String, scopes: &[&str]) -> OktaClient {
    OktaClient::new(
        OktaSettings {
            org_url: peer.org_url(),
            credential: OktaCredential::PrivateKeyJwt {
                client_id: CLIENT_ID.to_owned(),
                private_key_pem: zeroize::Zeroizing::new(key_pem),
                key_id: Some("osiris-posture-1".to_owned()),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            },
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        Instant::now() + Duration::from_secs(60),
    )
    .unwrap()
}

#[test]
fn a_service_app_signs_in_with_private_key_jwt() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &[]);
    let okta = app_client(&peer, peer.app_key_pem(), &["okta.users.read"]);
    let users = block_on(async {
        let users = okta
            .list(&["users"], &[("limit", "5")], "okta.users.read")
            .await?;
        // A second listing reuses the cached token: one assertion in all.
        okta.list(&["users"], &[("limit", "200")], "okta.users.read")
            .await?;
        Ok::<_, OktaError>(users)
    })
    .unwrap();
    assert_eq!(users.len(), 12);
    assert_eq!(peer.assertions().len(), 1);
    assert_eq!(peer.answered("/oauth2/v1/token", 200), 1);

    // A token without okta.users.read: the listing's 403 names the scope.
    let narrow = app_client(&peer, peer.app_key_pem(), &["okta.policies.read"]);
    let err = block_on(narrow.list(&["users"], &[], "okta.users.read")).unwrap_err();
    assert!(
        matches!(err, OktaError::Forbidden { ref scope, .. } if scope == "okta.users.read"),
        "{err}"
    );
}

#[test]
fn a_scope_not_granted_and_an_unknown_key_are_refused_at_sign_in() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let peer = FakeOkta::start(&python, &["--granted-scopes", "okta.users.read"]);
    let okta = app_client(
        &peer,
        peer.app_key_pem(),
        &["okta.users.read", "okta.policies.read"],
    );
    // A token per scope: the granted one reads, the other is refused naming the scope.
    let users = block_on(okta.list(&["users"], &[], "okta.users.read")).unwrap();
    assert_eq!(users.len(), 12);
    let err = block_on(okta.list(&["policies"], &[("type", "PASSWORD")], "okta.policies.read"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("invalid_scope") && text.contains("okta.policies.read"),
        "{text}"
    );
    assert_eq!(
        peer.token_scopes(),
        ["okta.users.read", "okta.policies.read"]
    );
    let other = app_client(&peer, peer.other_key_pem(), &["okta.users.read"]);
    let err = block_on(other.list(&["users"], &[], "okta.users.read")).unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert_eq!(peer.answered("/api/v1/users", 200), 1);
}

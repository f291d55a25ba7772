//! The Google Workspace scan against the Google peer (`vm-tests/lab/cloud/fakegoogle.py`) over
//! HTTPS: the small practice's known failures, a revoked key, a scope not authorized for
//! domain-wide delegation, an administrator without the privilege, throttling and
//! unavailability, malformed JSON, a page token full of URL metacharacters, a key that would
//! send its JWT to another host, and a 10,000-user account.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use test_support::google::{ADMIN, CUSTOMER_ID, FakeGoogle};

/// The small practice's statuses: its known failures (see the peer's `practice()`).
const SMALL_PRACTICE: &str = "\
GWS-2SV-001 fail
GWS-2SV-002 fail
GWS-2SV-003 pass
GWS-ADMIN-001 pass
GWS-ADMIN-002 fail
GWS-DEV-001 fail
GWS-DEV-002 pass
GWS-INACTIVE-001 fail
";

/// A check's ID, status and reason.
type Judged = (String, String, String);

/// How the scan gets its key from the started peer.
enum Key {
    Good,
    Revoked,
    Json(String),
}

/// The catalogue's Google Workspace checks against a peer started with `flags`.
fn scan(flags: &[&str], key: Key, timeout: Duration) -> Option<(Vec<Judged>, FakeGoogle)> {
    let python = test_support::python::reference_python()?;
    let peer = FakeGoogle::start(&python, flags);
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::GoogleWorkspace)
        .collect();
    let key_json = match key {
        Key::Good => peer.key_json(),
        Key::Revoked => peer.revoked_key_json(),
        Key::Json(json) => json,
    };
    let tenant = cloud::GoogleWorkspaceTenant {
        name: "clinic-google".to_owned(),
        customer_id: CUSTOMER_ID.to_owned(),
        directory: cloud::google::GoogleSettings {
            token_url: peer.token_url(),
            directory_base: peer.directory_base(),
            subject: ADMIN.to_owned(),
            key_json: zeroize::Zeroizing::new(key_json),
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(cloud::scan_google_workspace(
            tenant,
            &runbooks,
            &Default::default(),
        ))
        .report;
    let results = report
        .results
        .iter()
        .map(|r| {
            (
                r.runbook_id.clone(),
                r.outcome.status.as_str().to_owned(),
                r.outcome.reason.clone(),
            )
        })
        .collect();
    Some((results, peer))
}

fn statuses(results: &[Judged]) -> String {
    results
        .iter()
        .map(|(id, status, _)| format!("{id} {status}\n"))
        .collect()
}

/// The status and reason of each check whose status is not `expected`.
fn others(results: &[Judged], expected: &str) -> String {
    results
        .iter()
        .filter(|(_, status, _)| status != expected)
        .map(|(id, status, reason)| format!("{id} {status}: {reason}\n"))
        .collect()
}

#[test]
fn small_practice_fails_exactly_its_known_problems() {
    let Some((results, peer)) = scan(&[], Key::Good, Duration::from_secs(60)) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    // One token per scope: users, mobile devices, role management.
    assert_eq!(peer.assertions().len(), 3);
}

#[test]
fn a_revoked_key_errs_every_check_with_the_token_endpoint_s_reason() {
    let Some((results, peer)) = scan(&[], Key::Revoked, Duration::from_secs(60)) else {
        return;
    };
    assert_eq!(others(&results, "error"), "", "every check is an error");
    expect_test::expect!["could not read the account's users: could not get an access token for https://www.googleapis.com/auth/admin.directory.user.readonly: HTTP 400 invalid_grant: Invalid JWT Signature. (the service account's key was deleted or disabled: create a new JSON key in the Google Cloud console and store it with `osiris credentials set`)"].assert_eq(&results[0].2);
    // Nothing was asked of the Directory API without a token.
    assert!(peer.requests().iter().all(|r| r["method"] == "POST"));
}

#[test]
fn a_scope_not_authorized_for_delegation_errs_only_its_checks_and_names_it() {
    let scopes = "https://www.googleapis.com/auth/admin.directory.user.readonly,https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly";
    let Some((results, _peer)) = scan(&["--scopes", scopes], Key::Good, Duration::from_secs(60))
    else {
        return;
    };
    expect_test::expect![[r#"
        GWS-DEV-001 error: could not read mobile devices: could not get an access token for https://www.googleapis.com/auth/admin.directory.device.mobile.readonly: HTTP 401 unauthorized_client: Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested. (authorize the service account's client ID for scope https://www.googleapis.com/auth/admin.directory.device.mobile.readonly in the Admin console: Security > Access and data control > API controls > Domain-wide delegation)
        GWS-DEV-002 error: could not read mobile devices: could not get an access token for https://www.googleapis.com/auth/admin.directory.device.mobile.readonly: HTTP 401 unauthorized_client: Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested. (authorize the service account's client ID for scope https://www.googleapis.com/auth/admin.directory.device.mobile.readonly in the Admin console: Security > Access and data control > API controls > Domain-wide delegation)
    "#]]
    .assert_eq(&others(&results, "pass").lines().filter(|l| l.contains(" error: ")).map(|l| format!("{l}\n")).collect::<String>());
}

#[test]
fn an_administrator_without_the_privilege_is_named() {
    let Some((results, _peer)) = scan(&["--deny", "roles"], Key::Good, Duration::from_secs(60))
    else {
        return;
    };
    let errors: Vec<&Judged> = results.iter().filter(|r| r.1 == "error").collect();
    assert_eq!(
        errors.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["GWS-ADMIN-001", "GWS-ADMIN-002"]
    );
    expect_test::expect!["could not read the super admin role's assignments: the acting administrator lacks the privilege Admin API privileges > Roles > Read (or the scope https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly); the Directory API refused access (HTTP 403 forbidden: Not Authorized to access this resource/api)"].assert_eq(&errors[0].2);
}

#[test]
fn throttled_and_unavailable_calls_are_retried_and_an_expired_token_renewed() {
    // Tokens live 2 s (renewed early); each resource's first call is 429 (no Retry-After: back
    // off) and then 503 with Retry-After.
    let Some((results, peer)) = scan(
        &[
            "--throttle-first",
            "--unavailable-first",
            "--token-lifetime",
            "2",
        ],
        Key::Good,
        Duration::from_secs(60),
    ) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    let requests = peer.requests();
    assert_eq!(
        requests.iter().filter(|r| r["status"] == 429).count(),
        4,
        "one 429 for each of users, mobile devices, roles and role assignments"
    );
    assert_eq!(requests.iter().filter(|r| r["status"] == 503).count(), 4);
    assert!(
        peer.assertions().len() > 3,
        "a token was renewed: {} JWTs",
        peer.assertions().len()
    );
}

#[test]
fn an_account_that_throttles_every_call_gives_errors_not_passes() {
    let Some((results, peer)) = scan(&["--throttle-all"], Key::Good, Duration::from_secs(12))
    else {
        return;
    };
    assert_eq!(others(&results, "error"), "", "every check is an error");
    assert!(results[0].2.contains("kept throttling"), "{}", results[0].2);
    assert!(peer.requests().iter().any(|r| r["status"] == 429));
}

#[test]
fn malformed_json_is_an_error_of_the_checks_that_read_it() {
    let Some((results, _peer)) = scan(
        &["--malformed", "devices/mobile"],
        Key::Good,
        Duration::from_secs(60),
    ) else {
        return;
    };
    expect_test::expect![[r#"
        GWS-DEV-001 error: could not read mobile devices: the Directory API's answer is not valid JSON of the documented shape: EOF while parsing a string at line 6 column 14 (GET /admin/directory/v1/customer/C03az79cb/devices/mobile)
        GWS-DEV-002 error: could not read mobile devices: the Directory API's answer is not valid JSON of the documented shape: EOF while parsing a string at line 6 column 14 (GET /admin/directory/v1/customer/C03az79cb/devices/mobile)
    "#]]
    .assert_eq(&others(&results, "pass").lines().filter(|l| l.contains(" error: ")).map(|l| format!("{l}\n")).collect::<String>());
}

#[test]
fn a_page_token_with_url_metacharacters_stays_one_query_value() {
    // The first page's nextPageToken holds `&customer=…`, `#`, `/../` and spaces: sent encoded,
    // it reaches the peer whole (else the peer answers 400 invalid pageToken).
    let Some((results, peer)) = scan(
        &[
            "--profile",
            "large",
            "--users",
            "1200",
            "--devices",
            "10",
            "--hostile-page-token",
            "users",
        ],
        Key::Good,
        Duration::from_secs(60),
    ) else {
        return;
    };
    assert_eq!(others(&results, "pass"), "");
    assert_eq!(peer.answered("/admin/directory/v1/users", 200), 3);
    assert_eq!(peer.answered("/admin/directory/v1/users", 400), 0);
}

#[test]
fn a_key_that_sends_its_jwt_to_another_host_is_refused_before_any_request() {
    let python = match test_support::python::reference_python() {
        Some(python) => python,
        None => return,
    };
    // A key whose token_uri is not the configured endpoint (as a tampered key would be).
    let other = FakeGoogle::start(&python, &[]);
    let mut key: serde_json::Value = serde_json::from_str(&other.key_json()).unwrap();
    key["token_uri"] = "https://oauth2.attacker.example/token".into();
    let Some((results, peer)) = scan(&[], Key::Json(key.to_string()), Duration::from_secs(60))
    else {
        return;
    };
    assert_eq!(others(&results, "error"), "", "every check is an error");
    assert!(
        results[0].2.starts_with("not checked: the service account's key sends its tokens to `https://oauth2.attacker.example/token`, not to the configured token_url"),
        "{}",
        results[0].2
    );
    assert!(peer.requests().is_empty());
}

#[test]
fn a_10000_user_account_is_read_whole() {
    let Some((results, peer)) = scan(
        &[
            "--profile",
            "large",
            "--users",
            "10000",
            "--devices",
            "3000",
        ],
        Key::Good,
        Duration::from_secs(120),
    ) else {
        return;
    };
    expect_test::expect![[""]].assert_eq(&others(&results, "pass"));
    // 10,000 users at 500 a page: 20 pages; 3,000 devices at 100: 30.
    assert_eq!(peer.answered("/admin/directory/v1/users", 200), 20);
    assert_eq!(
        peer.answered(
            &format!("/admin/directory/v1/customer/{CUSTOMER_ID}/devices/mobile"),
            200
        ),
        30
    );
}

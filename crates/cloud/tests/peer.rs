//! The Microsoft 365 scan against the Graph peer (`vm-tests/lab/cloud/fakegraph.py`) over
//! HTTPS: the small practice's known failures, a revoked secret, a missing permission,
//! throttling, a foreign page link, malformed JSON and a 10,000-user tenant.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use test_support::graph::{CLIENT_ID, FakeGraph, SECRET, TENANT};

/// The small practice's statuses: its known failures (see the peer's `practice()`).
const SMALL_PRACTICE: &str = "\
M365-ADMIN-001 pass
M365-ALERT-001 fail
M365-APPS-001 fail
M365-AUDIT-001 pass
M365-DEV-001 fail
M365-DEV-002 fail
M365-GUEST-001 pass
M365-GUEST-002 fail
M365-INACTIVE-001 fail
M365-LEGACY-001 pass
M365-MFA-001 fail
M365-MFA-002 pass
M365-MFA-003 fail
M365-SCORE-001 pass
M365-SCORE-002 fail
";

/// A check's ID, status and reason.
type Judged = (String, String, String);

/// The catalogue's Microsoft 365 checks against a peer started with `flags`.
fn scan(flags: &[&str], secret: &str, timeout: Duration) -> Option<(Vec<Judged>, FakeGraph)> {
    scan_with(
        flags,
        cloud::graph::ClientCredential::Secret(zeroize::Zeroizing::new(secret.to_owned())),
        timeout,
    )
}

/// [`scan`] with any credential.
fn scan_with(
    flags: &[&str],
    credential: cloud::graph::ClientCredential,
    timeout: Duration,
) -> Option<(Vec<Judged>, FakeGraph)> {
    let python = test_support::python::reference_python()?;
    let peer = FakeGraph::start(&python, flags);
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::Microsoft365)
        .collect();
    let tenant = cloud::Microsoft365Tenant {
        name: "clinic-m365".to_owned(),
        graph: cloud::graph::GraphSettings {
            token_url: format!("{}/{TENANT}/oauth2/v2.0/token", peer.authority()),
            graph_base: peer.graph_base(),
            client_id: CLIENT_ID.to_owned(),
            credential,
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
        .block_on(cloud::scan_microsoft365(
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

#[test]
fn small_practice_fails_exactly_its_known_problems() {
    let Some((results, _peer)) = scan(&[], SECRET, Duration::from_secs(60)) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    // The 90 days of history: 8 points lost over the last 30 (msgraph's SDK reads the same, see
    // sdk.rs).
    let trend = results.iter().find(|r| r.0 == "M365-SCORE-002").unwrap();
    assert_eq!(trend.2, "`drop` is 8.0");
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
fn a_revoked_secret_errs_every_check_with_the_authority_s_reason() {
    let Some((results, peer)) = scan(&[], "an-old-revoked-secret", Duration::from_secs(60)) else {
        return;
    };
    assert_eq!(others(&results, "error"), "", "every check is an error");
    expect_test::expect!["not checked: could not sign in to the tenant: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'. (the client secret is wrong, expired or revoked: create a new one in Entra ID and store it with `osiris credentials set`)"].assert_eq(&results[0].2);
    // Nothing was asked of Graph without a token.
    assert!(peer.requests().iter().all(|r| r["method"] == "POST"));
}

#[test]
fn a_token_without_a_role_errs_only_the_checks_that_need_it_and_names_the_permission() {
    let roles = "User.Read.All,AuditLog.Read.All,RoleManagement.Read.Directory,DeviceManagementManagedDevices.Read.All,SecurityAlert.Read.All,SecurityEvents.Read.All";
    let Some((results, _peer)) = scan(&["--roles", roles], SECRET, Duration::from_secs(60)) else {
        return;
    };
    expect_test::expect![[r#"
        M365-APPS-001 error: could not read the authorization policy: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /policies/authorizationPolicy: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.)
        M365-GUEST-001 error: could not read the authorization policy: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /policies/authorizationPolicy: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.)
        M365-LEGACY-001 error: could not read security defaults: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /policies/identitySecurityDefaultsEnforcementPolicy: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.); Conditional Access policies: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /identity/conditionalAccess/policies: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.)
        M365-MFA-002 error: could not read security defaults: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /policies/identitySecurityDefaultsEnforcementPolicy: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.); Conditional Access policies: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /identity/conditionalAccess/policies: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.)
        M365-MFA-003 error: could not read Conditional Access policies: needs application permission Policy.Read.All (grant it to the app registration and give admin consent); GET /identity/conditionalAccess/policies: Graph refused access (HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation.)"#]].assert_eq(&others(&results, "pass").lines().filter(|l| l.contains(" error: ")).collect::<Vec<_>>().join("\n"));
}

#[test]
fn a_tenant_that_throttles_every_call_gives_errors_not_passes() {
    let Some((results, peer)) = scan(&["--throttle-all"], SECRET, Duration::from_secs(12)) else {
        return;
    };
    assert_eq!(others(&results, "error"), "", "every check is an error");
    assert!(results[0].2.contains("kept throttling"), "{}", results[0].2);
    assert!(peer.requests().iter().any(|r| r["status"] == 429));
}

#[test]
fn a_page_link_to_another_host_is_refused() {
    let Some((results, peer)) = scan(
        &[
            "--foreign-link",
            "users",
            "--profile",
            "large",
            "--users",
            "1500",
        ],
        SECRET,
        Duration::from_secs(60),
    ) else {
        return;
    };
    expect_test::expect![[r#"
        M365-GUEST-002 error: could not read users and their sign-in activity: GET /users: refused to follow @odata.nextLink `https://graph.attacker.example:PORT/v1.0/users?$select=id,userPrincipalName,accountEnabled,userType,createdDateTime,signInActivity&$top=999&$skiptoken=999`: it leaves the configured Graph base https://127.0.0.1:PORT/v1.0/
        M365-INACTIVE-001 error: could not read users and their sign-in activity: GET /users: refused to follow @odata.nextLink `https://graph.attacker.example:PORT/v1.0/users?$select=id,userPrincipalName,accountEnabled,userType,createdDateTime,signInActivity&$top=999&$skiptoken=999`: it leaves the configured Graph base https://127.0.0.1:PORT/v1.0/
        M365-MFA-001 error: could not read users and their sign-in activity: GET /users: refused to follow @odata.nextLink `https://graph.attacker.example:PORT/v1.0/users?$select=id,userPrincipalName,accountEnabled,userType,createdDateTime,signInActivity&$top=999&$skiptoken=999`: it leaves the configured Graph base https://127.0.0.1:PORT/v1.0/
    "#]].assert_eq(&others(&results, "pass").replace(&peer.port().to_string(), "PORT"));
    // The peer saw one page of users: the second was never asked for, anywhere.
    assert_eq!(peer.answered("/v1.0/users", 200), 1);
}

#[test]
fn malformed_json_is_an_error_of_the_checks_that_read_it() {
    let Some((results, _peer)) = scan(
        &["--malformed", "security/alerts_v2"],
        SECRET,
        Duration::from_secs(60),
    ) else {
        return;
    };
    let alert = results.iter().find(|r| r.0 == "M365-ALERT-001").unwrap();
    assert_eq!(alert.1, "error");
    expect_test::expect!["could not read Defender alerts: GET /security/alerts_v2: Graph's answer is not valid JSON of the documented shape: EOF while parsing a string at line 1 column 98 (GET /v1.0/security/alerts_v2)"].assert_eq(&alert.2);
    assert_eq!(results.iter().filter(|r| r.1 == "error").count(), 1);
}

#[test]
fn a_10000_user_tenant_is_read_whole() {
    let Some((results, peer)) = scan(
        &[
            "--profile",
            "large",
            "--users",
            "10000",
            "--devices",
            "3000",
        ],
        SECRET,
        Duration::from_secs(120),
    ) else {
        return;
    };
    expect_test::expect![[""]].assert_eq(&others(&results, "pass"));
    // 10,000 users at 999 a page: 11 pages of users and 11 of the registration report.
    let pages = |prefix: &str| peer.answered(prefix, 200);
    assert_eq!(pages("/v1.0/users"), 11);
    assert_eq!(
        pages("/v1.0/reports/authenticationMethods/userRegistrationDetails"),
        11
    );
    assert_eq!(pages("/v1.0/deviceManagement/managedDevices"), 3);
}

#[test]
fn an_expired_token_is_renewed_and_throttled_calls_are_retried() {
    // Tokens live 2 s (renewed early by the client); every path's first call is throttled.
    let Some((results, peer)) = scan(
        &["--throttle-first", "--token-lifetime", "2"],
        SECRET,
        Duration::from_secs(60),
    ) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    let requests = peer.requests();
    assert!(requests.iter().any(|r| r["status"] == 429));
    assert!(
        requests.iter().filter(|r| r["method"] == "POST").count() >= 2,
        "the token was renewed"
    );
}

#[test]
fn a_certificate_credential_signs_in_and_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (registered, crt) = test_support::graph::app_certificate(dir.path(), "registered");
    let (other, _) = test_support::graph::app_certificate(dir.path(), "other");
    let flags = ["--client-cert", crt.to_str().unwrap()];
    let pem = |path: &std::path::Path| {
        cloud::graph::ClientCredential::Certificate(zeroize::Zeroizing::new(
            std::fs::read_to_string(path).unwrap(),
        ))
    };
    let Some((results, _peer)) = scan_with(&flags, pem(&registered), Duration::from_secs(60))
    else {
        return;
    };
    // The same practice, the same known failures as with the client secret.
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    assert_eq!(results.iter().filter(|r| r.1 == "error").count(), 0);
    let Some((results, _peer)) = scan_with(&flags, pem(&other), Duration::from_secs(60)) else {
        return;
    };
    assert_eq!(
        results.iter().filter(|r| r.1 == "error").count(),
        results.len()
    );
    assert!(results[0].2.contains("AADSTS700027"), "{}", results[0].2);
    assert!(
        results[0].2.contains("upload its public part in Entra ID"),
        "{}",
        results[0].2
    );
}

#[test]
fn a_tenant_without_entra_id_p1_errs_the_sign_in_checks_naming_the_licence() {
    let Some((results, _peer)) = scan(&["--no-premium"], SECRET, Duration::from_secs(60)) else {
        return;
    };
    let errors: Vec<&str> = results
        .iter()
        .filter(|r| r.1 == "error")
        .map(|r| r.0.as_str())
        .collect();
    assert_eq!(
        errors,
        ["M365-GUEST-002", "M365-INACTIVE-001", "M365-MFA-001"]
    );
    let inactive = results.iter().find(|r| r.0 == "M365-INACTIVE-001").unwrap();
    assert!(
        inactive
            .2
            .contains("no Microsoft Entra ID P1 or P2 licence"),
        "{}",
        inactive.2
    );
}

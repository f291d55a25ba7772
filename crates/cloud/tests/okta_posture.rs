//! The Okta posture scan against the Okta peer (`vm-tests/lab/cloud/fakeokta.py`) over HTTPS:
//! the small practice's known failures with an API token and with a service app (a token for
//! each scope the checks need; a scope not granted errs only its checks), one endpoint refused
//! (its checks `error` naming the scope, the others judged), a rate limit waited out, a next
//! link to another host refused, and hostile names from the tenant kept as data.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use cloud::okta::{OktaCredential, OktaSettings};
use test_support::okta::{CLIENT_ID, FakeOkta, TOKEN};

/// The small practice's statuses: its known failures (see the peer's `practice()` and
/// `policies()`).
const SMALL_PRACTICE: &str = "\
OKTA-ADMIN-001 fail
OKTA-INACTIVE-001 fail
OKTA-MFA-001 fail
OKTA-PWD-001 pass
OKTA-SIGNON-001 fail
";

/// A check's ID, status, reason and observation.
type Judged = (String, String, String, serde_json::Value);

enum Auth {
    Token,
    ServiceApp,
}

fn scan(flags: &[&str], auth: Auth) -> Option<(Vec<Judged>, FakeOkta)> {
    let python = test_support::python::reference_python()?;
    let peer = FakeOkta::start(&python, flags);
    let catalog = catalog::embedded().unwrap();
    let mut runbooks: Vec<_> = catalog.for_platform(model::Platform::Okta).collect();
    runbooks.sort_by(|a, b| a.id.cmp(&b.id));
    let credential = match auth {
        Auth::Token => OktaCredential::ApiToken(zeroize::Zeroizing::new(TOKEN.to_owned())),
        Auth::ServiceApp => OktaCredential::PrivateKeyJwt {
            client_id: CLIENT_ID.to_owned(),
            private_key_pem: zeroize::Zeroizing::new(peer.app_key_pem()),
            key_id: None,
            // Replaced by the scan with what the checks need.
            scopes: vec!["okta.apps.manage".to_owned()],
        },
    };
    let org = cloud::OktaOrg {
        name: "clinic-okta".to_owned(),
        settings: OktaSettings {
            org_url: peer.org_url(),
            credential,
            ca_pem: Some(std::fs::read(peer.ca_file()).unwrap()),
            request_timeout: Duration::from_secs(20),
        },
        timeout: Duration::from_secs(60),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(cloud::scan_okta(org, &runbooks, &Default::default()))
        .report;
    let results = report
        .results
        .iter()
        .map(|r| {
            (
                r.runbook_id.clone(),
                r.outcome.status.as_str().to_owned(),
                r.outcome.reason.clone(),
                r.outcome.observed.clone(),
            )
        })
        .collect();
    Some((results, peer))
}

fn statuses(results: &[Judged]) -> String {
    results
        .iter()
        .map(|(id, status, _, _)| format!("{id} {status}\n"))
        .collect()
}

fn observed<'a>(results: &'a [Judged], id: &str) -> &'a serde_json::Value {
    &results.iter().find(|r| r.0 == id).unwrap().3
}

#[test]
fn small_practice_fails_exactly_its_known_problems() {
    let Some((results, peer)) = scan(&[], Auth::Token) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    expect_test::expect![[r#"
        OKTA-ADMIN-001 {"active_admins":3,"not_phishing_resistant":1,"admins_without":["bob.jones@smithfamilypractice.com"]}
        OKTA-INACTIVE-001 {"active_users":10,"inactive":1,"inactive_users":["frank.ode@smithfamilypractice.com"],"max_days":90}
        OKTA-MFA-001 {"active_users":10,"not_enrolled":2,"not_enrolled_users":["gina.rossi@smithfamilypractice.com","ivy.chen@smithfamilypractice.com"]}
        OKTA-PWD-001 {"active_policies":1,"weak_policies":0,"weak":[]}
        OKTA-SIGNON-001 {"allowing_rules":3,"without_mfa":1,"rules_without_mfa":["Default Policy / Office network"]}
    "#]]
    .assert_eq(
        &results
            .iter()
            .map(|(id, _, _, obs)| format!("{id} {obs}\n"))
            .collect::<String>(),
    );
    // Factors were read for the ten active users only.
    assert_eq!(peer.answered("/api/v1/users/", 200), 10);
}

#[test]
fn a_service_app_asks_for_exactly_the_scopes_the_checks_need() {
    let Some((results, peer)) = scan(&[], Auth::ServiceApp) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    // One token per scope, each asked once however many requests use it.
    let mut scopes = peer.token_scopes();
    scopes.sort();
    assert_eq!(
        scopes,
        ["okta.policies.read", "okta.roles.read", "okta.users.read"]
    );
    assert_eq!(peer.assertions().len(), 3);

    // A scope the app was not granted errs only the checks that need it, naming it.
    let Some((results, _peer)) = scan(
        &["--granted-scopes", "okta.users.read,okta.policies.read"],
        Auth::ServiceApp,
    ) else {
        return;
    };
    let errors: Vec<_> = results.iter().filter(|r| r.1 == "error").collect();
    assert_eq!(errors.len(), 1, "{results:?}");
    assert_eq!(errors[0].0, "OKTA-ADMIN-001");
    assert!(
        errors[0].2.contains("invalid_scope") && errors[0].2.contains("okta.roles.read"),
        "{}",
        errors[0].2
    );
}

#[test]
fn a_refused_endpoint_errs_only_its_checks_and_names_the_scope() {
    let Some((results, _peer)) = scan(&["--deny", "policies"], Auth::Token) else {
        return;
    };
    let errors: String = results
        .iter()
        .filter(|r| r.1 == "error")
        .map(|(id, _, reason, _)| format!("{id}: {reason}\n"))
        .collect();
    expect_test::expect![[r#"
        OKTA-PWD-001: could not read the password policies: Okta refused access (HTTP 403 E0000006: You do not have permission to perform the requested action): the credential needs scope okta.policies.read (grant it to the service app, or use a read-only administrator's token)
        OKTA-SIGNON-001: could not read the sign-on and authentication policies: Okta refused access (HTTP 403 E0000006: You do not have permission to perform the requested action): the credential needs scope okta.policies.read (grant it to the service app, or use a read-only administrator's token)
    "#]]
    .assert_eq(&errors);
    // The users' checks were judged as usual.
    assert_eq!(
        statuses(&results)
            .lines()
            .filter(|l| l.ends_with(" fail"))
            .count(),
        3
    );

    let Some((results, _peer)) = scan(&["--deny", "roles"], Auth::Token) else {
        return;
    };
    let admin = results.iter().find(|r| r.0 == "OKTA-ADMIN-001").unwrap();
    assert_eq!(admin.1, "error");
    assert!(admin.2.contains("okta.roles.read"), "{}", admin.2);
    assert_eq!(
        results.iter().filter(|r| r.1 == "error").count(),
        1,
        "only the administrators' check needs the role assignments"
    );
}

#[test]
fn a_rate_limit_is_waited_out() {
    let Some((results, peer)) = scan(&["--throttle-first"], Auth::Token) else {
        return;
    };
    assert_eq!(statuses(&results), SMALL_PRACTICE);
    assert!(
        peer.answered("/api/v1/", 429) >= 3,
        "each bucket throttled once"
    );
}

#[test]
fn a_next_link_to_another_host_is_refused_and_never_passes() {
    // The scan reads users 200 a page, so the org needs more than one page.
    let Some((results, _peer)) = scan(
        &[
            "--profile",
            "large",
            "--users",
            "300",
            "--foreign-next-link",
        ],
        Auth::Token,
    ) else {
        return;
    };
    for id in ["OKTA-ADMIN-001", "OKTA-INACTIVE-001", "OKTA-MFA-001"] {
        let (_, status, reason, _) = results.iter().find(|r| r.0 == id).unwrap();
        assert_eq!(status, "error", "{id}");
        assert!(
            reason.contains("refusing Okta's next-page link `https://evil.example/"),
            "{reason}"
        );
    }
}

#[test]
fn names_from_the_tenant_stay_data() {
    let Some((results, _peer)) = scan(&["--hostile"], Auth::Token) else {
        return;
    };
    let login = "mal<script>alert(\"x\")</script>\u{1b}[31m@smithfamilypractice.com";
    let rule =
        "Default Policy / Front desk <img src=x onerror=alert(1)> & \"kiosk\"\u{1b}]0;pwned\u{7}";
    // Carried verbatim as JSON strings: whatever shows them escapes them for its medium.
    assert_eq!(
        observed(&results, "OKTA-MFA-001")["not_enrolled_users"][2],
        login
    );
    assert_eq!(
        observed(&results, "OKTA-SIGNON-001")["rules_without_mfa"][0],
        rule
    );
    let evidence = serde_json::to_string(observed(&results, "OKTA-SIGNON-001")).unwrap();
    assert!(
        !evidence.contains('\u{1b}') && !evidence.contains("\"kiosk\""),
        "{evidence}"
    );
}

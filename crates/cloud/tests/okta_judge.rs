//! The Okta checks judged over typed facts (pure): password policies short on each rule, a
//! parameter override, sign-on rules, factors that are no second factor, and a source that was
//! refused (never `pass`).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use cloud::okta::source::{Factor, Facts, PasswordPolicy, SignOnRule, User};
use time::OffsetDateTime;

fn judge(facts: &Facts, overrides: &scan::ParamOverrides) -> String {
    let catalog = catalog::embedded().unwrap();
    let mut runbooks: Vec<_> = catalog.for_platform(model::Platform::Okta).collect();
    runbooks.sort_by(|a, b| a.id.cmp(&b.id));
    cloud::judge::<cloud::Okta>(&runbooks, facts, overrides, OffsetDateTime::now_utc())
        .into_iter()
        .map(|(id, o)| format!("{id} {}: {} {}\n", o.status.as_str(), o.observed, o.reason))
        .collect()
}

fn policy(
    name: &str,
    min_length: i64,
    classes: i64,
    lockout: Option<i64>,
    history: i64,
) -> PasswordPolicy {
    PasswordPolicy {
        name: name.to_owned(),
        status: "ACTIVE".to_owned(),
        min_length,
        character_classes: classes,
        lockout_attempts: lockout,
        history,
    }
}

fn user(id: &str, status: &str) -> User {
    User {
        id: id.to_owned(),
        login: format!("{id}@clinic.example"),
        status: status.to_owned(),
        last_login: Some(OffsetDateTime::now_utc()),
        since: None,
    }
}

fn factor(kind: &str, status: &str) -> Factor {
    Factor {
        kind: kind.to_owned(),
        status: status.to_owned(),
    }
}

fn facts() -> Facts {
    let users = vec![
        user("ann", "ACTIVE"),
        user("bob", "PASSWORD_EXPIRED"),
        user("cat", "ACTIVE"),
        user("dan", "SUSPENDED"),
    ];
    let factors = BTreeMap::from([
        ("ann".to_owned(), vec![factor("signed_nonce", "ACTIVE")]),
        // A security question is known, like the password; a pending factor is not enrolled.
        (
            "bob".to_owned(),
            vec![
                factor("question", "ACTIVE"),
                factor("webauthn", "PENDING_ACTIVATION"),
            ],
        ),
        ("cat".to_owned(), vec![factor("sms", "ACTIVE")]),
    ]);
    Facts {
        users: Some(Ok(users)),
        factors: Some(Ok(factors)),
        admins: Some(Ok(vec![
            "ann".to_owned(),
            "cat".to_owned(),
            "dan".to_owned(),
        ])),
        password_policies: Some(Ok(vec![
            policy("Default Policy", 8, 3, Some(10), 4),
            policy("Contractors", 14, 1, None, 0),
            policy("Staff", 12, 4, Some(5), 24),
        ])),
        sign_on_rules: Some(Ok(vec![
            SignOnRule {
                name: "Default Policy / Default Rule".to_owned(),
                requires_mfa: true,
            },
            SignOnRule {
                name: "Apps / VPN".to_owned(),
                requires_mfa: false,
            },
        ])),
    }
}

#[test]
fn each_shortfall_is_named() {
    expect_test::expect![[r#"
        OKTA-ADMIN-001 fail: {"active_admins":2,"not_phishing_resistant":1,"admins_without":["cat@clinic.example"]} `not_phishing_resistant` is 1
        OKTA-INACTIVE-001 pass: {"active_users":3,"inactive":0,"inactive_users":[],"max_days":90} 
        OKTA-MFA-001 fail: {"active_users":3,"not_enrolled":1,"not_enrolled_users":["bob@clinic.example"]} `not_enrolled` is 1
        OKTA-PWD-001 fail: {"active_policies":3,"weak_policies":2,"weak":["Default Policy: minimum length 8 < 12","Contractors: 1 character classes required < 3, no lockout, history of 0 < 4"]} `weak_policies` is 2
        OKTA-SIGNON-001 fail: {"allowing_rules":2,"without_mfa":1,"rules_without_mfa":["Apps / VPN"]} `without_mfa` is 1
    "#]]
    .assert_eq(&judge(&facts(), &Default::default()));
}

#[test]
fn the_password_expectation_is_a_parameter() {
    let overrides = scan::ParamOverrides::from([(
        "OKTA-PWD-001".to_owned(),
        BTreeMap::from([
            ("min_length".to_owned(), model::ParamValue::Integer(8)),
            (
                "min_character_classes".to_owned(),
                model::ParamValue::Integer(1),
            ),
            (
                "max_lockout_attempts".to_owned(),
                model::ParamValue::Integer(10),
            ),
            ("min_history".to_owned(), model::ParamValue::Integer(0)),
        ]),
    )]);
    let mut facts = facts();
    facts.password_policies = Some(Ok(vec![
        policy("Default Policy", 8, 3, Some(10), 4),
        policy("Contractors", 14, 1, Some(3), 0),
    ]));
    let out = judge(&facts, &overrides);
    assert!(out.contains("OKTA-PWD-001 pass"), "{out}");
}

#[test]
fn a_refused_source_is_an_error_never_a_pass() {
    let mut facts = facts();
    facts.admins = Some(Err(
        "Okta refused access (HTTP 403 E0000006: …): the credential needs scope okta.roles.read"
            .to_owned(),
    ));
    facts.sign_on_rules = None;
    let out = judge(&facts, &Default::default());
    assert!(out.contains("OKTA-ADMIN-001 error: null could not read the administrator role assignments: Okta refused access"), "{out}");
    assert!(out.contains("okta.roles.read"), "{out}");
    assert!(out.contains("OKTA-SIGNON-001 error: null could not read the sign-on and authentication policies was not read"), "{out}");
}

//! The Microsoft 365 checks as pure functions of Graph's answers: each case is the answers a
//! tenant gave (Graph's JSON, by source), judged by the shipped catalogue's checks at a fixed
//! time; the snapshot is each check's status and what it observed or why it could not.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use serde_json::{Value, json};
use time::macros::datetime;

use cloud::microsoft365::source::{Facts, Source};
use model::ParamValue;

/// A tenant where every check passes; cases change one part.
fn good() -> Value {
    json!({
        "Users": [
            {"id": "u1", "userPrincipalName": "ann@clinic.example", "accountEnabled": true, "userType": "Member",
             "createdDateTime": "2024-01-01T00:00:00Z",
             "signInActivity": {"lastSignInDateTime": "2026-11-30T08:00:00.1234567Z"}},
            {"id": "u2", "userPrincipalName": "bob@clinic.example", "accountEnabled": true, "userType": "Member",
             "createdDateTime": "2024-01-01T00:00:00Z",
             "signInActivity": {"lastNonInteractiveSignInDateTime": "2026-11-20T08:00:00Z"}},
            {"id": "g1", "userPrincipalName": "vendor_ext#EXT#@clinic.example", "accountEnabled": true, "userType": "Guest",
             "createdDateTime": "2026-01-01T00:00:00Z", "signInActivity": {"lastSignInDateTime": "2026-11-01T00:00:00Z"}}
        ],
        "Registration": [
            {"id": "u1", "userPrincipalName": "ann@clinic.example", "isAdmin": true, "isMfaRegistered": true,
             "methodsRegistered": ["fido2SecurityKey", "microsoftAuthenticatorPush"]},
            {"id": "u2", "userPrincipalName": "bob@clinic.example", "isAdmin": false, "isMfaRegistered": true,
             "methodsRegistered": ["microsoftAuthenticatorPush"]}
        ],
        "SecurityDefaults": {"isEnabled": false},
        "ConditionalAccess": [
            {"displayName": "MFA for everyone", "state": "enabled",
             "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": ["breakglass"]},
                            "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
             "grantControls": {"builtInControls": ["mfa"]}},
            {"displayName": "Block legacy", "state": "enabled",
             "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]},
                            "clientAppTypes": ["exchangeActiveSync", "other"]},
             "grantControls": {"builtInControls": ["block"]}},
            {"displayName": "Admins phishing-resistant", "state": "enabled",
             "conditions": {"users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]},
                            "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
             "grantControls": {"builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}}
        ],
        "AuthorizationPolicy": {"allowInvitesFrom": "adminsAndGuestInviters",
            "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
            "defaultUserRolePermissions": {"allowedToCreateApps": false,
                "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"]}},
        "GlobalAdmins": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "userPrincipalName": "ann@clinic.example", "accountEnabled": true},
            {"@odata.type": "#microsoft.graph.user", "id": "u3", "userPrincipalName": "cat@clinic.example", "accountEnabled": true},
            {"@odata.type": "#microsoft.graph.user", "id": "u4", "userPrincipalName": "old@clinic.example", "accountEnabled": false}
        ],
        "ManagedDevices": [
            {"id": "d1", "deviceName": "FRONT-DESK", "operatingSystem": "Windows", "complianceState": "compliant", "isEncrypted": true},
            {"id": "d2", "deviceName": "DR-IPAD", "operatingSystem": "iOS", "complianceState": "compliant", "isEncrypted": true}
        ],
        "Alerts": [
            {"id": "a1", "title": "Old malware", "severity": "high", "status": "resolved", "createdDateTime": "2026-10-01T00:00:00Z"},
            {"id": "a2", "title": "Fresh phish", "severity": "high", "status": "new", "createdDateTime": "2026-11-29T00:00:00Z"},
            {"id": "a3", "title": "Odd sign-in", "severity": "medium", "status": "new", "createdDateTime": "2026-09-01T00:00:00Z"}
        ],
        "SecureScores": {"value": [
            {"currentScore": 61.5, "maxScore": 100.0, "createdDateTime": "2026-11-30T03:00:00Z"},
            {"currentScore": 80.0, "maxScore": 100.0, "createdDateTime": "2026-09-03T03:00:00Z"},
            {"currentScore": 63.0, "maxScore": 100.0, "createdDateTime": "2026-11-02T03:00:00Z"}
        ]},
        "DirectoryAudits": {"value": [{"activityDateTime": "2026-11-30T23:00:00Z"}]}
    })
}

/// Judges the catalogue's Microsoft 365 checks over `answers` (source name → Graph's answer, or
/// `{"refused": "…"}` for a source that could not be read) with `overrides` as
/// `[checks.ID] name = value` pairs; prints the checks whose status is not `pass`.
#[track_caller]
fn check(answers: &Value, overrides: &[(&str, &str, i64)], expect: Expect) {
    let mut facts = Facts::default();
    for source in Source::ALL {
        let name = format!("{source:?}");
        let answer = match &answers[&name] {
            Value::Null => continue,
            Value::Object(map) if map.contains_key("refused") => {
                Err(map["refused"].as_str().unwrap().to_owned())
            }
            Value::Array(items) => Ok(items.clone()),
            one => Ok(vec![one.clone()]),
        };
        source.store(&mut facts, answer);
    }
    let mut params: BTreeMap<String, BTreeMap<String, ParamValue>> = BTreeMap::new();
    for (id, name, value) in overrides {
        params
            .entry((*id).to_owned())
            .or_default()
            .insert((*name).to_owned(), ParamValue::Integer(*value));
    }
    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = catalog
        .for_platform(model::Platform::Microsoft365)
        .collect();
    let judged = cloud::judge::<cloud::Microsoft365>(
        &runbooks,
        &facts,
        &params,
        datetime!(2026-12-01 00:00 UTC),
    );
    let mut out = String::new();
    for (id, outcome) in judged {
        if outcome.status == model::CheckStatus::Pass {
            continue;
        }
        let detail = if outcome.reason.is_empty() {
            outcome.observed.to_string()
        } else {
            outcome.reason.clone()
        };
        out.push_str(&format!("{id} {}: {detail}\n", outcome.status));
    }
    expect.assert_eq(&out);
}

fn with(mut base: Value, source: &str, answer: Value) -> Value {
    base[source] = answer;
    base
}

#[test]
fn a_well_kept_tenant_passes_everything() {
    check(&good(), &[], expect![[""]]);
}

#[test]
fn registration_is_not_enforcement() {
    // Everyone registered, but the MFA policy only reports and nothing else requires MFA.
    let mut tenant = good();
    tenant["ConditionalAccess"][0]["state"] = json!("enabledForReportingButNotEnforced");
    check(
        &tenant,
        &[],
        expect![[r#"
        M365-MFA-002 fail: `enforced` is false
    "#]],
    );
    // Security defaults enforce MFA and block legacy authentication without any policy.
    let tenant = with(
        with(good(), "ConditionalAccess", json!([])),
        "SecurityDefaults",
        json!({"isEnabled": true}),
    );
    check(
        &tenant,
        &[],
        expect![[r#"
        M365-MFA-003 fail: `enforced` is false
    "#]],
    );
}

#[test]
fn accounts_unused_for_the_limit_and_never_used_accounts() {
    let mut tenant = good();
    let users = tenant["Users"].as_array_mut().unwrap();
    users[1]["signInActivity"] = json!({"lastSignInDateTime": "2026-08-01T00:00:00Z"});
    users.push(
        json!({"id": "u9", "userPrincipalName": "new@clinic.example", "accountEnabled": true,
        "userType": "Member", "createdDateTime": "2026-11-25T00:00:00Z", "signInActivity": null}),
    );
    users.push(
        json!({"id": "u8", "userPrincipalName": "never@clinic.example", "accountEnabled": true,
        "userType": "Member", "createdDateTime": "2025-01-01T00:00:00Z"}),
    );
    users.push(
        json!({"id": "u7", "userPrincipalName": "gone@clinic.example", "accountEnabled": false,
        "userType": "Member", "createdDateTime": "2020-01-01T00:00:00Z"}),
    );
    check(
        &tenant,
        &[],
        expect![[r#"
        M365-INACTIVE-001 fail: `inactive` is 2
        M365-MFA-001 fail: `without_mfa` is 2
    "#]],
    );
    // The site's own limit: 30 days also catches the guest (last seen 30 days ago, 1 November).
    check(
        &good(),
        &[("M365-GUEST-002", "max_guest_inactive_days", 29)],
        expect![[r#"
            M365-GUEST-002 fail: `stale` is 1
        "#]],
    );
}

#[test]
fn admins_devices_alerts_and_score_at_their_limits() {
    let mut tenant = good();
    tenant["GlobalAdmins"].as_array_mut().unwrap().truncate(1);
    tenant["ManagedDevices"][1]["complianceState"] = json!("inGracePeriod");
    tenant["ManagedDevices"][0]["isEncrypted"] = json!(false);
    tenant["Alerts"][1]["createdDateTime"] = json!("2026-11-20T00:00:00Z");
    tenant["SecureScores"]["value"][0]["currentScore"] = json!(59.9);
    // 5 points lost within the 30 days (the 80 of September is older): the most allowed.
    tenant["SecureScores"]["value"][2]["currentScore"] = json!(64.9);
    tenant["Registration"][0]["methodsRegistered"] = json!(["microsoftAuthenticatorPush"]);
    check(
        &tenant,
        &[],
        expect![[r#"
        M365-ADMIN-001 fail: `global_admins` is 1
        M365-ALERT-001 fail: `overdue` is 1
        M365-DEV-001 fail: `noncompliant` is 1
        M365-DEV-002 fail: `unencrypted` is 1
        M365-MFA-003 fail: `admins_without_phishing_resistant` is 1
        M365-SCORE-001 fail: `percent` is 59
    "#]],
    );
}

#[test]
fn nothing_to_judge_is_skipped_or_an_error_never_a_pass() {
    let tenant = with(
        with(
            with(good(), "ManagedDevices", json!([])),
            "SecureScores",
            json!({"value": [{"currentScore": 10.0, "maxScore": 0.0, "createdDateTime": "2026-11-30T03:00:00Z"}]}),
        ),
        "DirectoryAudits",
        json!({"value": []}),
    );
    check(
        &tenant,
        &[],
        expect![[r#"
            M365-AUDIT-001 fail: `recording` is false
            M365-DEV-001 skipped: no device is enrolled in Intune
            M365-DEV-002 skipped: no device is enrolled in Intune
            M365-SCORE-001 error: the Secure Score 10 of 0 cannot be a percentage
            M365-SCORE-002 skipped: fewer than two Secure Scores in the last 30 days: no trend yet
        "#]],
    );
}

#[test]
fn unread_sources_malformed_records_and_bad_parameters_are_errors() {
    let tenant = with(
        with(
            good(),
            "ConditionalAccess",
            json!({"refused": "needs application permission Policy.Read.All"}),
        ),
        "Alerts",
        json!([{"id": "a1", "title": "No severity", "status": "new", "createdDateTime": "2026-11-29T00:00:00Z"}]),
    );
    let tenant = with(
        tenant,
        "Users",
        json!([{"id": "u1", "accountEnabled": true, "createdDateTime": "yesterday"}]),
    );
    check(
        &tenant,
        &[("M365-SCORE-001", "min_percent", 101)],
        expect![[r#"
            M365-ALERT-001 error: could not read Defender alerts: an alert has no `severity`
            M365-GUEST-002 error: could not read users and their sign-in activity: a user record does not parse: missing field `userPrincipalName`
            M365-INACTIVE-001 error: could not read users and their sign-in activity: a user record does not parse: missing field `userPrincipalName`
            M365-LEGACY-001 error: could not read Conditional Access policies: needs application permission Policy.Read.All
            M365-MFA-001 error: could not read users and their sign-in activity: a user record does not parse: missing field `userPrincipalName`
            M365-MFA-002 error: could not read Conditional Access policies: needs application permission Policy.Read.All
            M365-MFA-003 error: could not read Conditional Access policies: needs application permission Policy.Read.All
            M365-SCORE-001 error: configuration: parameter `min_percent`: 101 is above the maximum 100
        "#]],
    );
}

#[test]
fn every_shipped_check_names_a_collector_this_crate_provides() {
    let catalog = catalog::embedded().unwrap();
    for runbook in catalog.for_platform(model::Platform::Microsoft365) {
        assert!(
            cloud::microsoft365::observe::sources_of(&runbook.detect.body).is_some(),
            "{} names unknown collector `{}`",
            runbook.id,
            runbook.detect.body
        );
    }
}

#[test]
fn a_secure_score_that_fell_over_the_period_fails() {
    let mut tenant = good();
    tenant["SecureScores"]["value"][2]["currentScore"] = json!(64.9);
    check(
        &tenant,
        &[("M365-SCORE-002", "max_drop_points", 3)],
        expect![[r#"
            M365-SCORE-002 fail: `drop` is 3.4
        "#]],
    );
    // Over 90 days the September score counts: 18.5 points lost.
    check(
        &good(),
        &[("M365-SCORE-002", "period_days", 90)],
        expect![[r#"
            M365-SCORE-002 fail: `drop` is 18.5
        "#]],
    );
}

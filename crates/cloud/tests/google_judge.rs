//! The Google Workspace checks as pure functions of the Directory API's answers: each case is
//! the items an account listed (the API's JSON, by source), judged by the shipped catalogue's
//! checks at a fixed time; the snapshot is each check that does not pass, with what it observed
//! or why it could not.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use serde_json::{Value, json};
use time::macros::datetime;

use cloud::google_workspace::source::{Facts, Source};
use model::ParamValue;

fn user(id: &str, email: &str, last_login: &str) -> Value {
    json!({"kind": "admin#directory#user", "id": id, "primaryEmail": email, "isAdmin": false,
           "isDelegatedAdmin": false, "suspended": false, "archived": false,
           "lastLoginTime": last_login, "creationTime": "2024-01-01T00:00:00.000Z",
           "isEnrolledIn2Sv": true, "isEnforcedIn2Sv": true})
}

/// An account where every check passes; cases change one part.
fn good() -> Value {
    let mut ann = user("1", "ann@clinic.example", "2026-11-30T08:00:00.000Z");
    ann["isAdmin"] = json!(true);
    let mut bob = user("2", "bob@clinic.example", "2026-11-20T08:00:00.000Z");
    bob["isDelegatedAdmin"] = json!(true);
    json!({
        "Users": [ann, bob, user("3", "cat@clinic.example", "2026-10-01T00:00:00.000Z")],
        "MobileDevices": [
            {"kind": "admin#directory#mobiledevice", "resourceId": "r1", "model": "Pixel 8",
             "email": ["ann@clinic.example"], "status": "APPROVED", "encryptionStatus": "Encrypted",
             "deviceCompromisedStatus": "No compromise detected"},
            {"kind": "admin#directory#mobiledevice", "resourceId": "r2", "model": "iPhone 15",
             "email": ["bob@clinic.example"], "status": "APPROVED"}
        ],
        "SuperAdmins": [{"kind": "admin#directory#roleAssignment", "roleId": "9170730350149633",
                         "assignedTo": "1", "assigneeType": "user", "scopeType": "CUSTOMER"}]
    })
}

/// Judges the catalogue's Google Workspace checks over `answers` (source name → the listing's
/// items, or `{"refused": "…"}`) with `overrides` as `[checks.ID] name = value` pairs.
#[track_caller]
fn check(answers: &Value, overrides: &[(&str, &str, i64)], expect: Expect) {
    let mut facts = Facts::default();
    for source in Source::ALL {
        let answer = match &answers[format!("{source:?}")] {
            Value::Null => continue,
            Value::Object(map) => Err(map["refused"].as_str().unwrap().to_owned()),
            Value::Array(items) => Ok(items.clone()),
            other => panic!("{other}"),
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
        .for_platform(model::Platform::GoogleWorkspace)
        .collect();
    let judged = cloud::judge::<cloud::GoogleWorkspace>(
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

#[test]
fn a_well_kept_account_passes_everything() {
    check(&good(), &[], expect![[""]]);
}

#[test]
fn enrolment_is_not_enforcement_and_admins_are_held_to_enrolment() {
    let mut account = good();
    account["Users"][2]["isEnforcedIn2Sv"] = json!(false);
    account["Users"][1]["isEnrolledIn2Sv"] = json!(false);
    check(
        &account,
        &[],
        expect![[r#"
            GWS-2SV-001 fail: `not_enforced` is 1
            GWS-2SV-002 fail: `not_enrolled` is 1
            GWS-2SV-003 fail: `not_enrolled` is 1
        "#]],
    );
    // A suspended or archived user is not held to either.
    let mut account = good();
    account["Users"][2]["isEnforcedIn2Sv"] = json!(false);
    account["Users"][2]["suspended"] = json!(true);
    check(&account, &[], expect![[""]]);
}

#[test]
fn accounts_unused_for_the_limit_and_never_used_accounts() {
    let mut account = good();
    let users = account["Users"].as_array_mut().unwrap();
    // Never signed in (the API's epoch), created long ago; and one created last week.
    let mut never = user("4", "never@clinic.example", "1970-01-01T00:00:00.000Z");
    never["creationTime"] = json!("2025-01-01T00:00:00.000Z");
    let mut new = user("5", "new@clinic.example", "1970-01-01T00:00:00.000Z");
    new["creationTime"] = json!("2026-11-25T00:00:00.000Z");
    users.extend([never, new]);
    check(
        &account,
        &[],
        expect![[r#"
            GWS-INACTIVE-001 fail: `inactive` is 1
        "#]],
    );
    // The site's own limit: 60 days also catches cat (last seen 1 October).
    check(
        &good(),
        &[("GWS-INACTIVE-001", "max_inactive_days", 60)],
        expect![[r#"
            GWS-INACTIVE-001 fail: `inactive` is 1
        "#]],
    );
}

#[test]
fn super_admins_at_their_limits_and_a_suspended_admin() {
    let mut account = good();
    for idx in 0..3 {
        account["Users"][idx]["isAdmin"] = json!(true);
    }
    check(
        &account,
        &[("GWS-ADMIN-001", "max_super_admins", 2)],
        expect![[r#"
            GWS-ADMIN-001 fail: `super_admins` is 3
        "#]],
    );
    // A role assignment counts even where `isAdmin` lags; a suspended holder does not count
    // as a super admin but fails GWS-ADMIN-002.
    let mut account = good();
    account["Users"][0]["isAdmin"] = json!(false);
    account["Users"][1]["suspended"] = json!(true);
    check(
        &account,
        &[],
        expect![[r#"
            GWS-ADMIN-002 fail: `suspended_or_archived` is 1
        "#]],
    );
    let mut account = good();
    account["Users"][0]["isAdmin"] = json!(false);
    account["SuperAdmins"] = json!([]);
    check(
        &account,
        &[],
        expect![[r#"
            GWS-ADMIN-001 fail: `super_admins` is 0
        "#]],
    );
}

#[test]
fn devices_unencrypted_compromised_wiped_and_none() {
    let mut account = good();
    account["MobileDevices"][0]["encryptionStatus"] = json!("Unencrypted");
    account["MobileDevices"][0]["deviceCompromisedStatus"] = json!("Compromised");
    check(
        &account,
        &[],
        expect![[r#"
            GWS-DEV-001 fail: `unencrypted` is 1
            GWS-DEV-002 fail: `compromised` is 1
        "#]],
    );
    // A wiped device holds nothing any more; with none left there is nothing to judge.
    account["MobileDevices"][0]["status"] = json!("WIPED");
    account["MobileDevices"][1]["status"] = json!("WIPED");
    check(
        &account,
        &[],
        expect![[r#"
            GWS-DEV-001 skipped: no mobile device is managed by the account
            GWS-DEV-002 skipped: no mobile device is managed by the account
        "#]],
    );
}

#[test]
fn unread_sources_and_malformed_records_are_errors() {
    let mut account = good();
    account["SuperAdmins"] = json!({"refused": "needs scope X"});
    account["MobileDevices"] = json!([{"resourceId": 7}]);
    check(
        &account,
        &[],
        expect![[r#"
            GWS-ADMIN-001 error: could not read the super admin role's assignments: needs scope X
            GWS-ADMIN-002 error: could not read the super admin role's assignments: needs scope X
            GWS-DEV-001 error: could not read mobile devices: a mobile device record does not parse: invalid type: integer `7`, expected a string
            GWS-DEV-002 error: could not read mobile devices: a mobile device record does not parse: invalid type: integer `7`, expected a string
        "#]],
    );
    let mut account = good();
    account["Users"][0]["lastLoginTime"] = json!("yesterday");
    account["Users"][1]
        .as_object_mut()
        .unwrap()
        .remove("isEnforcedIn2Sv");
    check(
        &account,
        &[],
        expect![[r#"
            GWS-2SV-001 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
            GWS-2SV-002 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
            GWS-2SV-003 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
            GWS-ADMIN-001 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
            GWS-ADMIN-002 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
            GWS-INACTIVE-001 error: could not read the account's users: user `ann@clinic.example`: lastLoginTime `yesterday` is not a date and time: the 'year' component could not be parsed
        "#]],
    );
}

#[test]
fn every_shipped_check_names_a_collector_this_crate_provides() {
    let catalog = catalog::embedded().unwrap();
    let shipped: Vec<_> = catalog
        .for_platform(model::Platform::GoogleWorkspace)
        .collect();
    assert!(shipped.len() >= 6, "only {} checks", shipped.len());
    for runbook in shipped {
        assert_eq!(runbook.detect.shell, model::Shell::Cloud, "{}", runbook.id);
        assert!(
            cloud::google_workspace::observe::sources_of(&runbook.detect.body).is_some(),
            "{} names unknown collector `{}`",
            runbook.id,
            runbook.detect.body
        );
        assert!(runbook.remediate.is_none(), "{}", runbook.id);
    }
}

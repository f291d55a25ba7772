//! The Google Workspace collectors (pure): each turns the typed facts and the check's parameters
//! into the one JSON object the catalogue's expectations judge. An active user is one neither
//! suspended nor archived. `{"applicable": false, "reason": …}` when there is nothing to check.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use model::{ParamValue, ResolvedParams};

use crate::google_workspace::source::{Facts, Source, User};
use crate::microsoft365::observe::{listed, read};

/// Every collector the catalogue may name, with the sources it reads.
pub const COLLECTORS: &[(&str, &[Source])] = &[
    ("two_step_enforcement", &[Source::Users]),
    ("two_step_enrollment", &[Source::Users]),
    ("admin_two_step", &[Source::Users]),
    ("super_admins", &[Source::Users, Source::SuperAdmins]),
    ("suspended_admins", &[Source::Users, Source::SuperAdmins]),
    ("inactive_accounts", &[Source::Users]),
    ("mobile_encryption", &[Source::MobileDevices]),
    ("mobile_compromised", &[Source::MobileDevices]),
];

/// The sources a collector reads; `None` for a name this crate does not know.
pub fn sources_of(collector: &str) -> Option<&'static [Source]> {
    crate::sources_in(COLLECTORS, collector)
}

/// The observation of `collector` over `facts` at `now`; `Err` when a source it needs was not
/// read (the message names the scope or privilege) or the parameters are unusable.
pub fn observe(
    collector: &str,
    facts: &Facts,
    params: &ResolvedParams,
    now: OffsetDateTime,
) -> Result<Value, String> {
    crate::all_read(
        collector,
        sources_of(collector).map(|sources| {
            sources
                .iter()
                .map(|&source| (source.describe(), source.collected(facts)))
        }),
    )?;
    if matches!(collector, "mobile_encryption" | "mobile_compromised") {
        return mobile(collector, facts);
    }
    let users = read(&facts.users)?;
    let active: Vec<&User> = users
        .iter()
        .filter(|u| !u.suspended && !u.archived)
        .collect();
    match collector {
        "two_step_enforcement" => Ok(failing(
            &active,
            |u| !u.enforced_2sv,
            ("active_users", "not_enforced", "not_enforced_users"),
        )),
        "two_step_enrollment" => Ok(failing(
            &active,
            |u| !u.enrolled_2sv,
            ("active_users", "not_enrolled", "not_enrolled_users"),
        )),
        "admin_two_step" => {
            let admins: Vec<&User> = active
                .iter()
                .copied()
                .filter(|u| u.super_admin || u.delegated_admin)
                .collect();
            Ok(failing(
                &admins,
                |u| !u.enrolled_2sv,
                ("active_admins", "not_enrolled", "not_enrolled_admins"),
            ))
        }
        "super_admins" => {
            let assigned = assigned(facts)?;
            let members: Vec<String> = active
                .iter()
                .filter(|u| u.super_admin || assigned.contains(u.id.as_str()))
                .map(|u| u.email.clone())
                .collect();
            Ok(json!({
                "super_admins": members.len(),
                "members": listed(members),
            }))
        }
        "suspended_admins" => {
            let assigned = assigned(facts)?;
            let admins: Vec<&User> = users
                .iter()
                .filter(|u| u.super_admin || u.delegated_admin || assigned.contains(u.id.as_str()))
                .collect();
            let idle: Vec<String> = admins
                .iter()
                .filter(|u| u.suspended || u.archived)
                .map(|u| {
                    let state = if u.suspended { "suspended" } else { "archived" };
                    format!("{} ({state})", u.email)
                })
                .collect();
            Ok(json!({
                "admins": admins.len(),
                "suspended_or_archived": idle.len(),
                "accounts": listed(idle),
            }))
        }
        "inactive_accounts" => {
            let max_days = match params.get("max_inactive_days") {
                Some(ParamValue::Integer(n)) => *n,
                _ => return Err("parameter `max_inactive_days` is not an integer".to_owned()),
            };
            let cutoff = now - Duration::days(max_days);
            let mut res = failing(
                &active,
                |u| match (u.last_login, u.created) {
                    (Some(last), _) => last < cutoff,
                    // Never signed in: unused once it is older than the limit.
                    (None, Some(created)) => created < cutoff,
                    (None, None) => true,
                },
                ("active_users", "inactive", "inactive_users"),
            );
            res["max_days"] = json!(max_days);
            Ok(res)
        }
        other => Err(format!("collector `{other}` has no observation")),
    }
}

/// The IDs assigned a super admin role.
fn assigned(facts: &Facts) -> Result<BTreeSet<&str>, String> {
    Ok(read(&facts.super_admins)?
        .iter()
        .map(String::as_str)
        .collect())
}

/// `{total: n, count: failing, list: [their addresses]}` over `users`.
fn failing(users: &[&User], fails: impl Fn(&User) -> bool, keys: (&str, &str, &str)) -> Value {
    let names: Vec<String> = users
        .iter()
        .filter(|u| fails(u))
        .map(|u| u.email.clone())
        .collect();
    let mut res = serde_json::Map::new();
    res.insert(keys.0.to_owned(), json!(users.len()));
    res.insert(keys.1.to_owned(), json!(names.len()));
    res.insert(keys.2.to_owned(), json!(listed(names)));
    Value::Object(res)
}

fn mobile(collector: &str, facts: &Facts) -> Result<Value, String> {
    // Wiped devices hold no data any more.
    let devices: Vec<_> = read(&facts.mobile_devices)?
        .iter()
        .filter(|d| !matches!(d.status.as_str(), "WIPED" | "WIPING"))
        .collect();
    if devices.is_empty() {
        return Ok(json!({
            "applicable": false,
            "reason": "no mobile device is managed by the account",
        }));
    }
    if collector == "mobile_compromised" {
        let compromised: Vec<String> = devices
            .iter()
            .filter(|d| d.compromised.as_deref() == Some("Compromised"))
            .map(|d| d.name.clone())
            .collect();
        return Ok(json!({
            "devices": devices.len(),
            "compromised": compromised.len(),
            "compromised_devices": listed(compromised),
        }));
    }
    let unencrypted: Vec<String> = devices
        .iter()
        .filter(|d| d.encryption.as_deref().is_some_and(|e| e != "Encrypted"))
        .map(|d| d.name.clone())
        .collect();
    let unreported = devices.iter().filter(|d| d.encryption.is_none()).count();
    Ok(json!({
        "devices": devices.len(),
        "unencrypted": unencrypted.len(),
        "unencrypted_devices": listed(unencrypted),
        "not_reporting_encryption": unreported,
    }))
}

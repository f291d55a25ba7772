//! The Okta collectors (pure): each turns the typed facts and the check's parameters into the one
//! JSON object the catalogue's expectations judge. An active user is an activated account that
//! can sign in (see [`User::is_active`]); a factor counts only when its status is `ACTIVE`.
//! Values from the org (logins, policy and rule names) go into the JSON as strings, never
//! interpreted.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use model::{ParamValue, ResolvedParams};

use crate::microsoft365::observe::{listed, read};
use crate::okta::source::{Factor, Facts, Source, User};

/// Every collector the catalogue may name, with the sources it reads.
pub const COLLECTORS: &[(&str, &[Source])] = &[
    ("mfa_enrollment", &[Source::Users, Source::Factors]),
    (
        "admin_phishing_resistant",
        &[Source::Users, Source::Factors, Source::Admins],
    ),
    ("password_policy", &[Source::PasswordPolicies]),
    ("inactive_users", &[Source::Users]),
    ("sign_on_mfa", &[Source::SignOnRules]),
];

/// Factor types that resist phishing: FIDO2/WebAuthn, U2F security keys and Okta Verify
/// FastPass (`signed_nonce`).
pub const PHISHING_RESISTANT: &[&str] = &["webauthn", "u2f", "signed_nonce"];

/// Factor types that are no second factor: a security question is something known, like the
/// password.
const NOT_A_SECOND_FACTOR: &[&str] = &["question", "password"];

/// The sources a collector reads; `None` for a name this crate does not know.
pub fn sources_of(collector: &str) -> Option<&'static [Source]> {
    crate::sources_in(COLLECTORS, collector)
}

/// The observation of `collector` over `facts` at `now`; `Err` when a source it needs was not
/// read (the message names the scope) or the parameters are unusable.
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
    match collector {
        "mfa_enrollment" => {
            let active = active(facts)?;
            let enrolled = |u: &User| {
                factors_of(facts, u).is_ok_and(|f| {
                    f.iter().any(|f| {
                        f.status == "ACTIVE" && !NOT_A_SECOND_FACTOR.contains(&f.kind.as_str())
                    })
                })
            };
            Ok(failing(
                &active,
                |u| !enrolled(u),
                ("active_users", "not_enrolled", "not_enrolled_users"),
            ))
        }
        "admin_phishing_resistant" => {
            let admins: std::collections::BTreeSet<&str> =
                read(&facts.admins)?.iter().map(String::as_str).collect();
            let active: Vec<&User> = active(facts)?
                .into_iter()
                .filter(|u| admins.contains(u.id.as_str()))
                .collect();
            let resistant = |u: &User| {
                factors_of(facts, u).is_ok_and(|f| {
                    f.iter().any(|f| {
                        f.status == "ACTIVE" && PHISHING_RESISTANT.contains(&f.kind.as_str())
                    })
                })
            };
            Ok(failing(
                &active,
                |u| !resistant(u),
                ("active_admins", "not_phishing_resistant", "admins_without"),
            ))
        }
        "inactive_users" => {
            let max_days = integer(params, "max_inactive_days")?;
            let cutoff = now - Duration::days(max_days);
            let mut res = failing(
                &active(facts)?,
                |u| match (u.last_login, u.since) {
                    (Some(last), _) => last < cutoff,
                    // Never signed in: unused once activated longer ago than the limit.
                    (None, Some(since)) => since < cutoff,
                    (None, None) => true,
                },
                ("active_users", "inactive", "inactive_users"),
            );
            res["max_days"] = json!(max_days);
            Ok(res)
        }
        "password_policy" => password(facts, params),
        "sign_on_mfa" => {
            let rules = read(&facts.sign_on_rules)?;
            if rules.is_empty() {
                return Ok(json!({
                    "applicable": false,
                    "reason": "no active sign-on or authentication policy rule allows access",
                }));
            }
            let without: Vec<String> = rules
                .iter()
                .filter(|r| !r.requires_mfa)
                .map(|r| r.name.clone())
                .collect();
            Ok(json!({
                "allowing_rules": rules.len(),
                "without_mfa": without.len(),
                "rules_without_mfa": listed(without),
            }))
        }
        other => Err(format!("collector `{other}` has no observation")),
    }
}

fn integer(params: &ResolvedParams, name: &str) -> Result<i64, String> {
    match params.get(name) {
        Some(ParamValue::Integer(n)) => Ok(*n),
        _ => Err(format!("parameter `{name}` is not an integer")),
    }
}

fn active(facts: &Facts) -> Result<Vec<&User>, String> {
    Ok(read(&facts.users)?
        .iter()
        .filter(|u| u.is_active())
        .collect())
}

/// A user's factors; an active user whose factors were not listed is a gap, never "none".
fn factors_of<'a>(facts: &'a Facts, user: &User) -> Result<&'a [Factor], String> {
    read(&facts.factors)?
        .get(&user.id)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            format!(
                "the factors of `{}` were not read",
                user.login.escape_debug()
            )
        })
}

/// Each active password policy against the parameters; the ones falling short with why.
fn password(facts: &Facts, params: &ResolvedParams) -> Result<Value, String> {
    let min_length = integer(params, "min_length")?;
    let min_classes = integer(params, "min_character_classes")?;
    let max_attempts = integer(params, "max_lockout_attempts")?;
    let min_history = integer(params, "min_history")?;
    let policies: Vec<_> = read(&facts.password_policies)?
        .iter()
        .filter(|p| p.status == "ACTIVE")
        .collect();
    if policies.is_empty() {
        return Err("the org has no active password policy (Okta always has its Default Policy: the answer is incomplete)".to_owned());
    }
    let mut short = Vec::new();
    for p in &policies {
        let mut why = Vec::new();
        if p.min_length < min_length {
            why.push(format!("minimum length {} < {min_length}", p.min_length));
        }
        if p.character_classes < min_classes {
            why.push(format!(
                "{} character classes required < {min_classes}",
                p.character_classes
            ));
        }
        match p.lockout_attempts {
            Some(n) if n > 0 && n <= max_attempts => {}
            Some(n) if n > 0 => why.push(format!("lockout after {n} attempts > {max_attempts}")),
            _ => why.push("no lockout".to_owned()),
        }
        if p.history < min_history {
            why.push(format!("history of {} < {min_history}", p.history));
        }
        if !why.is_empty() {
            short.push(format!("{}: {}", p.name, why.join(", ")));
        }
    }
    Ok(json!({
        "active_policies": policies.len(),
        "weak_policies": short.len(),
        "weak": listed(short),
    }))
}

/// `{total: n, count: failing, list: [their logins]}` over `users`.
fn failing(users: &[&User], fails: impl Fn(&User) -> bool, keys: (&str, &str, &str)) -> Value {
    let names: Vec<String> = users
        .iter()
        .filter(|u| fails(u))
        .map(|u| u.login.clone())
        .collect();
    let mut res = serde_json::Map::new();
    res.insert(keys.0.to_owned(), json!(users.len()));
    res.insert(keys.1.to_owned(), json!(names.len()));
    res.insert(keys.2.to_owned(), json!(listed(names)));
    Value::Object(res)
}

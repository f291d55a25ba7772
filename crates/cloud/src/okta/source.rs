//! What the Okta checks read from the Management API: one [`Source`] per listing with the OAuth
//! scope it needs, its typed records, and the parse of Okta's JSON into them (a record of the
//! wrong shape is an error, never a default).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One Management API listing the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Every user not deprovisioned (`GET /api/v1/users`).
    Users,
    /// Each active user's enrolled factors (`GET /api/v1/users/{id}/factors`); needs the users.
    Factors,
    /// The users holding an administrator role (`GET /api/v1/iam/assignees/users`).
    Admins,
    /// The password policies (`GET /api/v1/policies?type=PASSWORD`).
    PasswordPolicies,
    /// The global session (`OKTA_SIGN_ON`) and authentication (`ACCESS_POLICY`) policies with
    /// their rules (`GET /api/v1/policies?type=…`, then `…/{id}/rules`).
    SignOnRules,
}

/// A user as `GET /api/v1/users` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// `profile.login`, for messages.
    pub login: String,
    /// `ACTIVE`, `STAGED`, `PROVISIONED`, `SUSPENDED`, `DEPROVISIONED`, `LOCKED_OUT`,
    /// `PASSWORD_EXPIRED`, `RECOVERY`.
    pub status: String,
    /// `None`: never signed in.
    pub last_login: Option<OffsetDateTime>,
    /// When the account was activated, else created (the start of "unused" for one that never
    /// signed in).
    pub since: Option<OffsetDateTime>,
}

impl User {
    /// An activated account that can sign in or recover (neither staged, provisioned,
    /// suspended nor deprovisioned).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "ACTIVE" | "PASSWORD_EXPIRED" | "LOCKED_OUT" | "RECOVERY"
        )
    }
}

/// An enrolled factor as `GET /api/v1/users/{id}/factors` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// `push`, `sms`, `call`, `email`, `question`, `token:software:totp`, `webauthn`, `u2f`,
    /// `signed_nonce` (Okta Verify FastPass), …
    pub kind: String,
    /// `ACTIVE`, `PENDING_ACTIVATION`, …
    pub status: String,
}

/// A password policy's rules as `GET /api/v1/policies?type=PASSWORD` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub name: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub min_length: i64,
    /// How many of lower case, upper case, digit and symbol are required.
    pub character_classes: i64,
    /// Failed attempts before lockout; `None` or 0: never locked out.
    pub lockout_attempts: Option<i64>,
    /// Previous passwords that may not be reused.
    pub history: i64,
}

/// One rule of a sign-on or authentication policy that allows access. A global session rule
/// requires MFA when it requires a factor or leaves the factors to the authentication policies
/// (`primaryFactor` `PASSWORD_IDP_ANY_FACTOR`); an authentication policy rule when its
/// verification method asks for two factors (`factorMode` `2FA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOnRule {
    /// `policy name / rule name`, for messages.
    pub name: String,
    /// Whether signing in under the rule needs a second factor.
    pub requires_mfa: bool,
}

/// Everything read from one org, each source on its own (one failing does not hide another).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub users: Option<Result<Vec<User>, String>>,
    /// Each active user's factors, by user ID.
    pub factors: Option<Result<BTreeMap<String, Vec<Factor>>, String>>,
    /// The IDs of the users holding an administrator role.
    pub admins: Option<Result<Vec<String>, String>>,
    pub password_policies: Option<Result<Vec<PasswordPolicy>, String>>,
    /// The active rules of active sign-on and authentication policies that allow access.
    pub sign_on_rules: Option<Result<Vec<SignOnRule>, String>>,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Users,
        Source::Factors,
        Source::Admins,
        Source::PasswordPolicies,
        Source::SignOnRules,
    ];

    /// The OAuth scope reading it needs (granted to the service app; an SSWS token's
    /// administrator needs the matching read permission).
    pub fn scope(self) -> &'static str {
        match self {
            Source::Users | Source::Factors => "okta.users.read",
            Source::Admins => "okta.roles.read",
            Source::PasswordPolicies | Source::SignOnRules => "okta.policies.read",
        }
    }

    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Users => "the org's users",
            Source::Factors => "the users' enrolled factors",
            Source::Admins => "the administrator role assignments",
            Source::PasswordPolicies => "the password policies",
            Source::SignOnRules => "the sign-on and authentication policies",
        }
    }

    /// Whether `facts` holds this source's answer (read or failed).
    pub fn collected(self, facts: &Facts) -> Option<Result<(), &str>> {
        fn state<T>(slot: &Option<Result<T, String>>) -> Option<Result<(), &str>> {
            slot.as_ref()
                .map(|res| res.as_ref().map(drop).map_err(String::as_str))
        }
        match self {
            Source::Users => state(&facts.users),
            Source::Factors => state(&facts.factors),
            Source::Admins => state(&facts.admins),
            Source::PasswordPolicies => state(&facts.password_policies),
            Source::SignOnRules => state(&facts.sign_on_rules),
        }
    }
}

/// An ISO 8601 instant as Okta writes it (`2026-11-30T08:15:00.000Z`).
fn timestamp(value: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
    value
        .map(|text| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|err| format!("`{}` is not a date and time: {err}", text.escape_debug()))
        })
        .transpose()
}

/// A user record.
///
/// # Errors
/// When it lacks `id`, `status` or `profile.login`, or a date does not parse.
pub fn user(value: Value) -> Result<User, String> {
    #[derive(Deserialize)]
    struct Profile {
        login: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        id: String,
        status: String,
        created: Option<String>,
        activated: Option<String>,
        last_login: Option<String>,
        profile: Profile,
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|err| format!("a user record does not parse: {err}"))?;
    let what = |field: &str, err: String| {
        format!("user `{}`: {field} {err}", raw.profile.login.escape_debug())
    };
    let last_login = timestamp(raw.last_login.as_deref()).map_err(|err| what("lastLogin", err))?;
    let activated = timestamp(raw.activated.as_deref()).map_err(|err| what("activated", err))?;
    let created = timestamp(raw.created.as_deref()).map_err(|err| what("created", err))?;
    Ok(User {
        id: raw.id,
        login: raw.profile.login,
        status: raw.status,
        last_login,
        since: activated.or(created),
    })
}

/// An enrolled factor record.
///
/// # Errors
/// When it lacks `factorType` or `status`.
pub fn factor(value: Value) -> Result<Factor, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        factor_type: String,
        status: String,
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|err| format!("a factor record does not parse: {err}"))?;
    Ok(Factor {
        kind: raw.factor_type,
        status: raw.status,
    })
}

/// A user's ID from a role assignee record (`{"id", "orn", "_links"}`).
///
/// # Errors
/// When it has no `id`.
pub fn assignee(value: Value) -> Result<String, String> {
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a role assignee record has no `id`".to_owned())
}

/// A password policy record (`settings.password.complexity`, `.age`, `.lockout`).
///
/// # Errors
/// When it lacks `name`, `status` or the password settings.
pub fn password_policy(value: Value) -> Result<PasswordPolicy, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Complexity {
        min_length: i64,
        #[serde(default)]
        min_lower_case: i64,
        #[serde(default)]
        min_upper_case: i64,
        #[serde(default)]
        min_number: i64,
        #[serde(default)]
        min_symbol: i64,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Age {
        #[serde(default)]
        history_count: i64,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Lockout {
        max_attempts: Option<i64>,
    }
    #[derive(Deserialize)]
    struct Password {
        complexity: Complexity,
        #[serde(default)]
        age: Age,
        #[serde(default)]
        lockout: Lockout,
    }
    #[derive(Deserialize)]
    struct Settings {
        password: Password,
    }
    #[derive(Deserialize)]
    struct Raw {
        name: String,
        status: String,
        settings: Settings,
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|err| format!("a password policy does not parse: {err}"))?;
    let c = &raw.settings.password.complexity;
    let character_classes = [
        c.min_lower_case,
        c.min_upper_case,
        c.min_number,
        c.min_symbol,
    ]
    .iter()
    .filter(|&&n| n > 0)
    .count() as i64;
    Ok(PasswordPolicy {
        name: raw.name,
        status: raw.status,
        min_length: c.min_length,
        character_classes,
        lockout_attempts: raw.settings.password.lockout.max_attempts,
        history: raw.settings.password.age.history_count,
    })
}

/// The rules of one policy (`kind` its type) that allow access, typed; inactive rules are left
/// out.
///
/// # Errors
/// When a rule lacks `name`, `status` or its actions.
pub fn sign_on_rules(
    policy: &str,
    kind: &str,
    rules: Vec<Value>,
) -> Result<Vec<SignOnRule>, String> {
    let mut out = Vec::new();
    for rule in rules {
        let name = rule["name"]
            .as_str()
            .ok_or_else(|| format!("a rule of policy `{}` has no name", policy.escape_debug()))?;
        let what = format!("{policy} / {name}");
        if rule["status"].as_str() != Some("ACTIVE") {
            continue;
        }
        let (access, requires_mfa) = match kind {
            "OKTA_SIGN_ON" => {
                let signon = &rule["actions"]["signon"];
                // Identity Engine's "any factor used to meet the authentication policy" leaves
                // the factors to the authentication policies, whose rules are judged as well.
                (
                    signon["access"].as_str(),
                    signon["requireFactor"].as_bool() == Some(true)
                        || signon["primaryFactor"].as_str() == Some("PASSWORD_IDP_ANY_FACTOR"),
                )
            }
            _ => {
                let app = &rule["actions"]["appSignOn"];
                (
                    app["access"].as_str(),
                    app["verificationMethod"]["factorMode"].as_str() == Some("2FA"),
                )
            }
        };
        match access {
            Some("DENY") => {}
            Some("ALLOW") => out.push(SignOnRule {
                name: what,
                requires_mfa,
            }),
            _ => {
                return Err(format!(
                    "rule `{}` has no access action (ALLOW or DENY)",
                    what.escape_debug()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use serde_json::json;

    fn signon(name: &str, status: &str, access: &str, require: bool, primary: &str) -> Value {
        json!({"name": name, "status": status, "actions": {"signon": {
            "access": access, "requireFactor": require, "primaryFactor": primary}}})
    }

    #[test]
    fn which_rules_require_mfa() {
        let rules = sign_on_rules(
            "Default Policy",
            "OKTA_SIGN_ON",
            vec![
                signon("Office", "ACTIVE", "ALLOW", false, "PASSWORD_IDP"),
                signon(
                    "Deferred",
                    "ACTIVE",
                    "ALLOW",
                    false,
                    "PASSWORD_IDP_ANY_FACTOR",
                ),
                signon("Strict", "ACTIVE", "ALLOW", true, "PASSWORD_IDP"),
                signon("Blocked", "ACTIVE", "DENY", false, "PASSWORD_IDP"),
                signon("Old", "INACTIVE", "ALLOW", false, "PASSWORD_IDP"),
            ],
        )
        .unwrap();
        let judged: Vec<_> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.requires_mfa))
            .collect();
        assert_eq!(
            judged,
            [
                ("Default Policy / Office", false),
                ("Default Policy / Deferred", true),
                ("Default Policy / Strict", true),
            ]
        );
        let app = |mode: &str| {
            json!({"name": mode, "status": "ACTIVE", "actions": {"appSignOn": {
                "access": "ALLOW", "verificationMethod": {"type": "ASSURANCE", "factorMode": mode}}}})
        };
        let rules = sign_on_rules("Apps", "ACCESS_POLICY", vec![app("1FA"), app("2FA")]).unwrap();
        assert_eq!(
            rules.iter().map(|r| r.requires_mfa).collect::<Vec<_>>(),
            [false, true]
        );
        let err = sign_on_rules(
            "Apps",
            "ACCESS_POLICY",
            vec![json!({"name": "x", "status": "ACTIVE", "actions": {}})],
        )
        .unwrap_err();
        assert_eq!(err, "rule `Apps / x` has no access action (ALLOW or DENY)");
    }
}

//! What the Microsoft 365 checks read from Graph: one [`Source`] per endpoint with the
//! application permission it needs, its typed records, and the parse of Graph's JSON into them
//! (a record of the wrong shape is an error, never a default).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One Graph endpoint the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Users with their sign-in activity.
    Users,
    /// The authentication methods registration report.
    Registration,
    /// Security defaults.
    SecurityDefaults,
    /// Conditional Access policies.
    ConditionalAccess,
    /// The tenant's authorization policy (guests, app registration, user consent).
    AuthorizationPolicy,
    /// The members of the Global Administrator role.
    GlobalAdmins,
    /// Intune managed devices.
    ManagedDevices,
    /// Microsoft Defender alerts (security alerts v2).
    Alerts,
    /// Microsoft Secure Score, newest first.
    SecureScores,
    /// The newest directory audit record.
    DirectoryAudits,
}

/// The Global Administrator role's template ID (the same in every tenant).
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";
/// The built-in "Phishing-resistant MFA" authentication strength.
pub const PHISHING_RESISTANT_STRENGTH: &str = "00000000-0000-0000-0000-000000000004";

/// An enabled or disabled user as `/users` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub enabled: bool,
    /// `Member` or `Guest`.
    pub guest: bool,
    pub created: Option<OffsetDateTime>,
    /// The newest of the interactive, non-interactive and successful sign-ins.
    pub last_sign_in: Option<OffsetDateTime>,
}

/// One user's row of the registration report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: String,
    pub user_principal_name: String,
    pub is_admin: bool,
    pub mfa_registered: bool,
    pub methods: Vec<String>,
}

/// A Conditional Access policy, reduced to what the checks judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPolicy {
    pub name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    pub include_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub include_roles: Vec<String>,
    pub include_applications: Vec<String>,
    pub client_app_types: Vec<String>,
    pub built_in_controls: Vec<String>,
    pub authentication_strength: Option<String>,
}

/// The authorization policy's settings the checks judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    pub allow_invites_from: String,
    pub guest_user_role_id: String,
    pub users_can_register_apps: bool,
    pub permission_grant_policies: Vec<String>,
}

/// A member of the Global Administrator role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMember {
    pub name: String,
    /// `false` only when Graph says the account is disabled.
    pub enabled: bool,
}

/// An Intune managed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub operating_system: String,
    pub compliance_state: String,
    pub encrypted: bool,
}

/// A Defender alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub title: String,
    pub severity: String,
    pub status: String,
    pub created: OffsetDateTime,
}

/// The days of Secure Score history read (`$top`; Microsoft keeps one score a day).
pub const SECURE_SCORE_DAYS: usize = 90;

/// One day's Secure Score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecureScore {
    pub current: f64,
    pub max: f64,
    /// When Microsoft computed it (`createdDateTime`).
    pub created: OffsetDateTime,
}

/// Everything read from one tenant, each source on its own (one failing does not hide another).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub users: Option<Result<Vec<User>, String>>,
    pub registration: Option<Result<Vec<Registration>, String>>,
    pub security_defaults: Option<Result<bool, String>>,
    pub conditional_access: Option<Result<Vec<CaPolicy>, String>>,
    pub authorization_policy: Option<Result<AuthorizationPolicy, String>>,
    pub global_admins: Option<Result<Vec<RoleMember>, String>>,
    pub managed_devices: Option<Result<Vec<Device>, String>>,
    pub alerts: Option<Result<Vec<Alert>, String>>,
    /// The recent Secure Scores (one a day, up to [`SECURE_SCORE_DAYS`]), newest first.
    pub secure_score: Option<Result<Vec<SecureScore>, String>>,
    pub newest_audit: Option<Result<Option<OffsetDateTime>, String>>,
}

impl Source {
    pub const ALL: [Source; 10] = [
        Source::Users,
        Source::Registration,
        Source::SecurityDefaults,
        Source::ConditionalAccess,
        Source::AuthorizationPolicy,
        Source::GlobalAdmins,
        Source::ManagedDevices,
        Source::Alerts,
        Source::SecureScores,
        Source::DirectoryAudits,
    ];

    /// The request below Graph's base, and whether it is a paged collection.
    pub fn request(self) -> (&'static str, bool) {
        match self {
            Source::Users => (
                "users?$select=id,userPrincipalName,accountEnabled,userType,createdDateTime,signInActivity&$top=999",
                true,
            ),
            Source::Registration => (
                "reports/authenticationMethods/userRegistrationDetails?$select=id,userPrincipalName,isAdmin,isMfaRegistered,methodsRegistered&$top=999",
                true,
            ),
            Source::SecurityDefaults => {
                ("policies/identitySecurityDefaultsEnforcementPolicy", false)
            }
            Source::ConditionalAccess => ("identity/conditionalAccess/policies", true),
            Source::AuthorizationPolicy => ("policies/authorizationPolicy", false),
            Source::GlobalAdmins => (
                "directoryRoles(roleTemplateId='62e90394-69f5-4237-9190-012177145e10')/members?$select=id,displayName,userPrincipalName,accountEnabled",
                true,
            ),
            Source::ManagedDevices => (
                "deviceManagement/managedDevices?$select=id,deviceName,operatingSystem,complianceState,isEncrypted&$top=1000",
                true,
            ),
            Source::Alerts => (
                "security/alerts_v2?$select=id,title,severity,status,createdDateTime&$top=2000",
                true,
            ),
            Source::SecureScores => (
                "security/secureScores?$select=currentScore,maxScore,createdDateTime&$top=90",
                false,
            ),
            Source::DirectoryAudits => ("auditLogs/directoryAudits?$top=1", false),
        }
    }

    /// The application permission (Graph app role) reading it needs.
    pub fn permission(self) -> &'static str {
        match self {
            Source::Users => "User.Read.All and AuditLog.Read.All",
            Source::Registration | Source::DirectoryAudits => "AuditLog.Read.All",
            Source::SecurityDefaults | Source::ConditionalAccess | Source::AuthorizationPolicy => {
                "Policy.Read.All"
            }
            Source::GlobalAdmins => "RoleManagement.Read.Directory",
            Source::ManagedDevices => "DeviceManagementManagedDevices.Read.All",
            Source::Alerts => "SecurityAlert.Read.All",
            Source::SecureScores => "SecurityEvents.Read.All",
        }
    }

    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Users => "users and their sign-in activity",
            Source::Registration => "the MFA registration report",
            Source::SecurityDefaults => "security defaults",
            Source::ConditionalAccess => "Conditional Access policies",
            Source::AuthorizationPolicy => "the authorization policy",
            Source::GlobalAdmins => "the Global Administrator role's members",
            Source::ManagedDevices => "Intune managed devices",
            Source::Alerts => "Defender alerts",
            Source::SecureScores => "Secure Score",
            Source::DirectoryAudits => "the directory audit log",
        }
    }

    /// Stores what Graph answered (the collection's items, or the one object) into `facts`.
    pub fn store(self, facts: &mut Facts, answer: Result<Vec<Value>, String>) {
        match self {
            Source::Users => facts.users = Some(answer.and_then(|v| items(v, user))),
            Source::Registration => {
                facts.registration = Some(answer.and_then(|v| items(v, registration)));
            }
            Source::SecurityDefaults => {
                facts.security_defaults = Some(answer.and_then(|v| {
                    one(v)?
                        .get("isEnabled")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| "security defaults: no boolean `isEnabled`".to_owned())
                }));
            }
            Source::ConditionalAccess => {
                facts.conditional_access = Some(answer.and_then(|v| items(v, ca_policy)));
            }
            Source::AuthorizationPolicy => {
                facts.authorization_policy =
                    Some(answer.and_then(|v| authorization_policy(&one(v)?)));
            }
            Source::GlobalAdmins => {
                facts.global_admins = Some(answer.and_then(|v| items(v, role_member)));
            }
            Source::ManagedDevices => {
                facts.managed_devices = Some(answer.and_then(|v| items(v, device)));
            }
            Source::Alerts => facts.alerts = Some(answer.and_then(|v| items(v, alert))),
            Source::SecureScores => {
                facts.secure_score = Some(answer.and_then(|v| {
                    let page = one(v)?;
                    let mut scores = page
                        .get("value")
                        .and_then(Value::as_array)
                        .ok_or_else(|| "Secure Score: no `value` array".to_owned())?
                        .iter()
                        .map(secure_score)
                        .collect::<Result<Vec<_>, _>>()?;
                    scores.sort_by_key(|s| std::cmp::Reverse(s.created));
                    Ok(scores)
                }));
            }
            Source::DirectoryAudits => {
                facts.newest_audit = Some(answer.and_then(|v| {
                    let page = one(v)?;
                    let newest = page
                        .get("value")
                        .and_then(Value::as_array)
                        .ok_or_else(|| "directory audits: no `value` array".to_owned())?
                        .first()
                        .cloned();
                    newest
                        .map(|record| {
                            timestamp(record.get("activityDateTime"))?.ok_or_else(|| {
                                "a directory audit record has no `activityDateTime`".to_owned()
                            })
                        })
                        .transpose()
                }));
            }
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
            Source::Registration => state(&facts.registration),
            Source::SecurityDefaults => state(&facts.security_defaults),
            Source::ConditionalAccess => state(&facts.conditional_access),
            Source::AuthorizationPolicy => state(&facts.authorization_policy),
            Source::GlobalAdmins => state(&facts.global_admins),
            Source::ManagedDevices => state(&facts.managed_devices),
            Source::Alerts => state(&facts.alerts),
            Source::SecureScores => state(&facts.secure_score),
            Source::DirectoryAudits => state(&facts.newest_audit),
        }
    }
}

fn one(values: Vec<Value>) -> Result<Value, String> {
    values
        .into_iter()
        .next()
        .ok_or_else(|| "Graph answered nothing".to_owned())
}

fn items<T>(values: Vec<Value>, parse: fn(Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    values.into_iter().map(parse).collect()
}

/// Deserializes one record, naming the record kind in the error.
fn record<T: for<'de> Deserialize<'de>>(kind: &str, value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|err| format!("a {kind} record does not parse: {err}"))
}

/// An ISO 8601 time as Graph writes it (`2026-11-30T08:15:00Z`, up to seven fraction digits).
fn timestamp(value: Option<&Value>) -> Result<Option<OffsetDateTime>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(Some)
                .map_err(|err| format!("`{}` is not a date and time: {err}", text.escape_debug()))
        }
        Some(other) => Err(format!("`{other}` is not a date and time")),
    }
}

fn user(value: Value) -> Result<User, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        id: String,
        user_principal_name: String,
        account_enabled: Option<bool>,
        user_type: Option<String>,
        created_date_time: Option<Value>,
        sign_in_activity: Option<Value>,
    }
    let raw: Raw = record("user", value)?;
    let activity = raw.sign_in_activity.unwrap_or(Value::Null);
    let mut last = None;
    for key in [
        "lastSignInDateTime",
        "lastNonInteractiveSignInDateTime",
        "lastSuccessfulSignInDateTime",
    ] {
        last = last.max(timestamp(activity.get(key))?);
    }
    Ok(User {
        id: raw.id,
        user_principal_name: raw.user_principal_name,
        enabled: raw.account_enabled.unwrap_or(false),
        guest: raw.user_type.as_deref() == Some("Guest"),
        created: timestamp(raw.created_date_time.as_ref())?,
        last_sign_in: last,
    })
}

fn registration(value: Value) -> Result<Registration, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        id: String,
        user_principal_name: String,
        #[serde(default)]
        is_admin: bool,
        is_mfa_registered: bool,
        #[serde(default)]
        methods_registered: Vec<String>,
    }
    let raw: Raw = record("registration", value)?;
    Ok(Registration {
        id: raw.id,
        user_principal_name: raw.user_principal_name,
        is_admin: raw.is_admin,
        mfa_registered: raw.is_mfa_registered,
        methods: raw.methods_registered,
    })
}

fn ca_policy(value: Value) -> Result<CaPolicy, String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let name = value["displayName"]
        .as_str()
        .unwrap_or("(unnamed)")
        .to_owned();
    let Some(state) = value["state"].as_str() else {
        return Err(format!(
            "Conditional Access policy `{}` has no `state`",
            name.escape_debug()
        ));
    };
    let conditions = &value["conditions"];
    let grant = &value["grantControls"];
    Ok(CaPolicy {
        state: state.to_owned(),
        include_users: strings(&conditions["users"]["includeUsers"]),
        exclude_users: strings(&conditions["users"]["excludeUsers"]),
        include_roles: strings(&conditions["users"]["includeRoles"]),
        include_applications: strings(&conditions["applications"]["includeApplications"]),
        client_app_types: strings(&conditions["clientAppTypes"]),
        built_in_controls: strings(&grant["builtInControls"]),
        authentication_strength: grant["authenticationStrength"]["id"]
            .as_str()
            .map(str::to_owned),
        name,
    })
}

fn authorization_policy(value: &Value) -> Result<AuthorizationPolicy, String> {
    let missing = |field: &str| format!("the authorization policy has no `{field}`");
    let defaults = &value["defaultUserRolePermissions"];
    Ok(AuthorizationPolicy {
        allow_invites_from: value["allowInvitesFrom"]
            .as_str()
            .ok_or_else(|| missing("allowInvitesFrom"))?
            .to_owned(),
        guest_user_role_id: value["guestUserRoleId"]
            .as_str()
            .ok_or_else(|| missing("guestUserRoleId"))?
            .to_owned(),
        users_can_register_apps: defaults["allowedToCreateApps"]
            .as_bool()
            .ok_or_else(|| missing("defaultUserRolePermissions.allowedToCreateApps"))?,
        permission_grant_policies: defaults["permissionGrantPoliciesAssigned"]
            .as_array()
            .ok_or_else(|| missing("defaultUserRolePermissions.permissionGrantPoliciesAssigned"))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    })
}

fn role_member(value: Value) -> Result<RoleMember, String> {
    let name = value["userPrincipalName"]
        .as_str()
        .or_else(|| value["displayName"].as_str())
        .or_else(|| value["id"].as_str())
        .ok_or_else(|| "a role member has no id".to_owned())?
        .to_owned();
    Ok(RoleMember {
        name,
        enabled: value["accountEnabled"].as_bool() != Some(false),
    })
}

fn device(value: Value) -> Result<Device, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        device_name: Option<String>,
        id: String,
        operating_system: Option<String>,
        compliance_state: String,
        is_encrypted: bool,
    }
    let raw: Raw = record("managed device", value)?;
    Ok(Device {
        name: raw.device_name.unwrap_or(raw.id),
        operating_system: raw.operating_system.unwrap_or_default(),
        compliance_state: raw.compliance_state,
        encrypted: raw.is_encrypted,
    })
}

fn alert(value: Value) -> Result<Alert, String> {
    let created = timestamp(value.get("createdDateTime"))?
        .ok_or_else(|| "an alert has no `createdDateTime`".to_owned())?;
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("an alert has no `{name}`"))
    };
    Ok(Alert {
        title: field("title")?,
        severity: field("severity")?,
        status: field("status")?,
        created,
    })
}

fn secure_score(value: &Value) -> Result<SecureScore, String> {
    let number = |name: &str| {
        value[name]
            .as_f64()
            .ok_or_else(|| format!("the Secure Score has no number `{name}`"))
    };
    let created = timestamp(value.get("createdDateTime"))?
        .ok_or_else(|| "a Secure Score has no `createdDateTime`".to_owned())?;
    Ok(SecureScore {
        current: number("currentScore")?,
        max: number("maxScore")?,
        created,
    })
}

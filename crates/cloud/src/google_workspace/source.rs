//! What the Google Workspace checks read from the Directory API: one [`Source`] per listing with
//! the OAuth scope it needs, its typed records, and the parse of the API's JSON into them (a
//! record of the wrong shape is an error, never a default).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One Directory API listing the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Every user of the account (`users.list`).
    Users,
    /// Every mobile device (`mobiledevices.list`, full projection).
    MobileDevices,
    /// The users assigned a super admin role (`roles.list`, then `roleAssignments.list` per
    /// super admin role).
    SuperAdmins,
}

/// A user as `users.list` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    /// A super administrator (`isAdmin`).
    pub super_admin: bool,
    /// Holds a delegated admin role (`isDelegatedAdmin`).
    pub delegated_admin: bool,
    pub suspended: bool,
    pub archived: bool,
    /// `None`: never signed in (the API writes `1970-01-01T00:00:00.000Z`).
    pub last_login: Option<OffsetDateTime>,
    pub created: Option<OffsetDateTime>,
    pub enrolled_2sv: bool,
    pub enforced_2sv: bool,
}

/// A mobile device as `mobiledevices.list` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileDevice {
    /// The model and its owner, for messages.
    pub name: String,
    /// `APPROVED`, `BLOCKED`, `PENDING`, `WIPING`, `WIPED`, …
    pub status: String,
    /// `encryptionStatus`; `None` when the device does not report it.
    pub encryption: Option<String>,
    /// `deviceCompromisedStatus`; `None` when the device does not report it.
    pub compromised: Option<String>,
}

/// Everything read from one account, each source on its own (one failing does not hide another).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub users: Option<Result<Vec<User>, String>>,
    pub mobile_devices: Option<Result<Vec<MobileDevice>, String>>,
    /// The IDs of the users (or groups) assigned a super admin role.
    pub super_admins: Option<Result<Vec<String>, String>>,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Users, Source::MobileDevices, Source::SuperAdmins];

    /// The OAuth scope reading it needs (authorized for the service account's client ID under
    /// domain-wide delegation).
    pub fn scope(self) -> &'static str {
        match self {
            Source::Users => "https://www.googleapis.com/auth/admin.directory.user.readonly",
            Source::MobileDevices => {
                "https://www.googleapis.com/auth/admin.directory.device.mobile.readonly"
            }
            Source::SuperAdmins => {
                "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly"
            }
        }
    }

    /// The administrator privilege the acting admin needs for it (a 403 means it lacks it).
    pub fn privilege(self) -> &'static str {
        match self {
            Source::Users => "Admin API privileges > Users > Read",
            Source::MobileDevices => {
                "Services > Mobile Device Management > Manage Devices and Settings"
            }
            Source::SuperAdmins => "Admin API privileges > Roles > Read",
        }
    }

    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Users => "the account's users",
            Source::MobileDevices => "mobile devices",
            Source::SuperAdmins => "the super admin role's assignments",
        }
    }

    /// Stores what the API answered (the listing's items) into `facts`.
    pub fn store(self, facts: &mut Facts, answer: Result<Vec<Value>, String>) {
        match self {
            Source::Users => facts.users = Some(answer.and_then(|v| items(v, user))),
            Source::MobileDevices => {
                facts.mobile_devices = Some(answer.and_then(|v| items(v, mobile_device)));
            }
            Source::SuperAdmins => {
                facts.super_admins = Some(answer.and_then(|v| items(v, assignee)));
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
            Source::MobileDevices => state(&facts.mobile_devices),
            Source::SuperAdmins => state(&facts.super_admins),
        }
    }
}

fn items<T>(values: Vec<Value>, parse: fn(Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    values.into_iter().map(parse).collect()
}

/// A `date-time` as the API writes it (`2026-11-30T08:15:00.000Z`); the epoch means never.
fn timestamp(value: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
    let Some(text) = value else {
        return Ok(None);
    };
    let when = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|err| format!("`{}` is not a date and time: {err}", text.escape_debug()))?;
    Ok((when.unix_timestamp() > 0).then_some(when))
}

fn user(value: Value) -> Result<User, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        id: String,
        primary_email: String,
        #[serde(default)]
        is_admin: bool,
        #[serde(default)]
        is_delegated_admin: bool,
        #[serde(default)]
        suspended: bool,
        #[serde(default)]
        archived: bool,
        last_login_time: Option<String>,
        creation_time: Option<String>,
        is_enrolled_in2_sv: bool,
        is_enforced_in2_sv: bool,
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|err| format!("a user record does not parse: {err}"))?;
    let last_login = timestamp(raw.last_login_time.as_deref())
        .map_err(|err| format!("user `{}`: lastLoginTime {err}", raw.primary_email))?;
    let created = timestamp(raw.creation_time.as_deref())
        .map_err(|err| format!("user `{}`: creationTime {err}", raw.primary_email))?;
    Ok(User {
        id: raw.id,
        email: raw.primary_email,
        super_admin: raw.is_admin,
        delegated_admin: raw.is_delegated_admin,
        suspended: raw.suspended,
        archived: raw.archived,
        last_login,
        created,
        enrolled_2sv: raw.is_enrolled_in2_sv,
        enforced_2sv: raw.is_enforced_in2_sv,
    })
}

fn mobile_device(value: Value) -> Result<MobileDevice, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        resource_id: String,
        model: Option<String>,
        #[serde(default)]
        email: Vec<String>,
        status: Option<String>,
        encryption_status: Option<String>,
        device_compromised_status: Option<String>,
    }
    let raw: Raw = serde_json::from_value(value)
        .map_err(|err| format!("a mobile device record does not parse: {err}"))?;
    let owner = raw.email.first().cloned().unwrap_or_default();
    Ok(MobileDevice {
        name: format!(
            "{} of {owner}",
            raw.model.unwrap_or_else(|| raw.resource_id.clone())
        ),
        status: raw.status.unwrap_or_default(),
        encryption: raw.encryption_status,
        compromised: raw.device_compromised_status,
    })
}

/// A role assignment's assignee (`assignedTo`).
fn assignee(value: Value) -> Result<String, String> {
    value["assignedTo"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a role assignment has no `assignedTo`".to_owned())
}

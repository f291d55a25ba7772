//! `osiris-central admin …`: the operator's commands that create partners and their first users,
//! each in one transaction with its audit-log entry.

use sqlx::PgPool;

use crate::password::{self, PasswordError};

/// An administrative change that was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A name is empty, too long or holds control characters.
    #[error("{what} `{value}` is not usable: {why}")]
    BadName {
        /// `partner name`, `practice name`, …
        what: &'static str,
        /// The value, with control characters escaped.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Not an e-mail address.
    #[error("`{0}` is not an e-mail address (expected name@domain, no spaces)")]
    BadEmail(String),
    /// The password does not meet the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A partner of that name exists (names compare case-insensitively).
    #[error("a partner named `{0}` already exists")]
    PartnerExists(String),
    /// A user with that e-mail address exists.
    #[error("a user with e-mail `{0}` already exists")]
    UserExists(String),
    /// No such partner.
    #[error("no partner `{0}`; `osiris-central admin partner list` shows them")]
    NoSuchPartner(String),
    /// No such practice.
    #[error("no practice with id {0}")]
    NoSuchPractice(i64),
    /// Not a role.
    #[error("`{0}` is not a role (partner_admin, partner_technician, practice_viewer, auditor)")]
    BadRole(String),
    /// A practice viewer without a practice.
    #[error("a practice_viewer sees one practice: give --practice")]
    NeedsPractice,
    /// An auditor without an expiry.
    #[error("auditor access always expires: give --expires-days")]
    NeedsExpiry,
    /// The name is taken (case-insensitively) within its parent.
    #[error("a {0} named `{1}` already exists there")]
    Exists(&'static str, String),
    /// No such appliance.
    #[error("no appliance with id {0}")]
    NoSuchAppliance(i64),
    /// The system's random number generator failed.
    #[error("no random numbers for a key: {0}")]
    Random(String),
    /// The database refused or is unreachable.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

/// One partner's L2 spending on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2UsageRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub partner_id: i64,
    pub partner: String,
    pub tokens: i64,
    /// Trillionths of a dollar.
    pub pico_usd: i64,
    pub requests: i64,
    pub refused: i64,
}

/// Makes a new L2 key for an appliance (remote L2); returns the key, which is stored only as
/// its SHA-256.
pub async fn create_l2_key(
    pool: &PgPool,
    appliance_id: i64,
    actor: &str,
) -> Result<zeroize::Zeroizing<String>, AdminError> {
    let key = zeroize::Zeroizing::new(
        crate::l2_relay::new_key().map_err(|err| AdminError::Random(err.to_string()))?,
    );
    let mut tx = pool.begin().await?;
    let partner_id = appliance_partner(&mut tx, appliance_id).await?;
    sqlx::query("INSERT INTO l2_keys (appliance_id, key_sha256) VALUES ($1, $2)")
        .bind(appliance_id)
        .bind(crate::l2_relay::key_digest(&key).as_slice())
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "l2.key_create",
        serde_json::json!({"appliance_id": appliance_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// The partner an appliance belongs to.
async fn appliance_partner(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
) -> Result<i64, AdminError> {
    sqlx::query_scalar("SELECT partner_id FROM appliances WHERE id = $1")
        .bind(appliance_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(AdminError::NoSuchAppliance(appliance_id))
}

/// Revokes every L2 key of an appliance; returns how many were live.
pub async fn revoke_l2_keys(
    pool: &PgPool,
    appliance_id: i64,
    actor: &str,
) -> Result<u64, AdminError> {
    let mut tx = pool.begin().await?;
    let partner_id = appliance_partner(&mut tx, appliance_id).await?;
    let revoked = sqlx::query(
        "UPDATE l2_keys SET revoked_at = now() WHERE appliance_id = $1 AND revoked_at IS NULL",
    )
    .bind(appliance_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "l2.key_revoke",
        serde_json::json!({"appliance_id": appliance_id, "revoked": revoked}),
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Sets a partner's daily L2 budget (tokens, millionths of a dollar).
pub async fn set_l2_budget(
    pool: &PgPool,
    partner_id: i64,
    daily_tokens: u64,
    daily_micro_usd: u64,
    actor: &str,
) -> Result<(), AdminError> {
    let mut tx = pool.begin().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM partners WHERE id = $1")
        .bind(partner_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(AdminError::NoSuchPartner(partner_id.to_string()));
    }
    let tokens = i64::try_from(daily_tokens).unwrap_or(i64::MAX);
    let micro = i64::try_from(daily_micro_usd).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO l2_budgets (partner_id, daily_tokens, daily_micro_usd) VALUES ($1, $2, $3) \
         ON CONFLICT (partner_id) DO UPDATE SET daily_tokens = $2, daily_micro_usd = $3",
    )
    .bind(partner_id)
    .bind(tokens)
    .bind(micro)
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "l2.budget_set",
        serde_json::json!({"daily_tokens": tokens, "daily_micro_usd": micro}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every partner's L2 spending per UTC day over the last 30 days, newest first.
pub async fn l2_usage(pool: &PgPool) -> Result<Vec<L2UsageRow>, AdminError> {
    let rows: Vec<(String, i64, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT u.day::text, u.partner_id, p.name, u.tokens, u.pico_usd, u.requests, u.refused \
         FROM l2_usage u JOIN partners p ON p.id = u.partner_id \
         WHERE u.day > (now() AT TIME ZONE 'UTC')::date - 30 ORDER BY u.day DESC, u.partner_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(day, partner_id, partner, tokens, pico_usd, requests, refused)| L2UsageRow {
                day,
                partner_id,
                partner,
                tokens,
                pico_usd,
                requests,
                refused,
            },
        )
        .collect())
}

/// The partner and its first administrator, as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPartner {
    /// The partner's id.
    pub partner_id: i64,
    /// The administrator's user id.
    pub admin_id: i64,
}

/// One row of `admin partner list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRow {
    /// Id.
    pub id: i64,
    /// Name, as stored.
    pub name: String,
    /// Number of users.
    pub users: i64,
}

/// Creates partner `name` with its first partner administrator `email`, recording who did it.
pub async fn create_partner(
    pool: &PgPool,
    name: &str,
    email: &str,
    password: &str,
    actor: &str,
) -> Result<CreatedPartner, AdminError> {
    check_name("partner name", name)?;
    let email = check_email(email)?;
    // Hash before the transaction: argon2 takes tens of milliseconds of CPU.
    let hash = password::hash(password)?;
    let mut tx = pool.begin().await?;
    let partner_id: i64 =
        sqlx::query_scalar("INSERT INTO partners (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| {
                unique_to(err, "partners_name", || {
                    AdminError::PartnerExists(name.to_owned())
                })
            })?;
    let admin_id: i64 = sqlx::query_scalar(
        "INSERT INTO users (partner_id, email, role, password_hash) VALUES ($1, $2, 'partner_admin', $3) RETURNING id",
    )
    .bind(partner_id)
    .bind(&email)
    .bind(&hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| unique_to(err, "users_email", || AdminError::UserExists(email.clone())))?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, 'partner.create', $3)",
    )
    .bind(partner_id)
    .bind(actor)
    .bind(serde_json::json!({"name": name, "admin": email, "admin_id": admin_id}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(partner_id, admin_id, actor, "partner created");
    Ok(CreatedPartner {
        partner_id,
        admin_id,
    })
}

/// Creates practice `name` of partner `partner_id`; returns its id.
pub async fn create_practice(
    pool: &PgPool,
    partner_id: i64,
    name: &str,
    actor: &str,
) -> Result<i64, AdminError> {
    check_name("practice name", name)?;
    let mut tx = pool.begin().await?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO practices (partner_id, name) VALUES ($1, $2) RETURNING id")
            .bind(partner_id)
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    AdminError::NoSuchPartner(partner_id.to_string())
                }
                sqlx::Error::Database(db) if db.constraint() == Some("practices_name") => {
                    AdminError::Exists("practice", name.to_owned())
                }
                _ => AdminError::Db(err),
            })?;
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "practice.create",
        serde_json::json!({"practice_id": id, "name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates site `name` of practice `practice_id`; returns its id.
pub async fn create_site(
    pool: &PgPool,
    practice_id: i64,
    name: &str,
    actor: &str,
) -> Result<i64, AdminError> {
    check_name("site name", name)?;
    let mut tx = pool.begin().await?;
    let partner_id: i64 = sqlx::query_scalar("SELECT partner_id FROM practices WHERE id = $1")
        .bind(practice_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AdminError::NoSuchPractice(practice_id))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sites (partner_id, practice_id, name) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(partner_id)
    .bind(practice_id)
    .bind(name)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("sites_name") => {
            AdminError::Exists("site", name.to_owned())
        }
        _ => AdminError::Db(err),
    })?;
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "site.create",
        serde_json::json!({"site_id": id, "practice_id": practice_id, "name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    partner_id: Option<i64>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(partner_id)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a user to a partner (and, for practice viewers, a practice of it); auditors get access
/// that expires after `expires_days`. Returns the user's id.
#[allow(
    clippy::too_many_arguments,
    reason = "one administrative command's fields"
)]
pub async fn add_user(
    pool: &PgPool,
    partner_id: i64,
    email: &str,
    role: &str,
    password: &str,
    practice_id: Option<i64>,
    expires_days: Option<u32>,
    actor: &str,
) -> Result<i64, AdminError> {
    let email = check_email(email)?;
    if crate::scope::Role::parse(role).is_none() {
        return Err(AdminError::BadRole(role.to_owned()));
    }
    if role == "practice_viewer" && practice_id.is_none() {
        return Err(AdminError::NeedsPractice);
    }
    if role == "auditor" && expires_days.is_none() {
        return Err(AdminError::NeedsExpiry);
    }
    let hash = password::hash(password)?;
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (partner_id, practice_id, email, role, password_hash, expires_at)
         VALUES ($1, $2, $3, $4::user_role, $5, now() + make_interval(days => $6))
         RETURNING id",
    )
    .bind(partner_id)
    .bind(practice_id)
    .bind(&email)
    .bind(role)
    .bind(&hash)
    .bind(expires_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX)))
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email") => {
            AdminError::UserExists(email.clone())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            AdminError::NoSuchPartner(partner_id.to_string())
        }
        _ => AdminError::Db(err),
    })?;
    audit(
        &mut tx,
        Some(partner_id),
        actor,
        "user.create",
        serde_json::json!({"user_id": id, "email": email, "role": role}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Every partner with its number of users, by name.
pub async fn list_partners(pool: &PgPool) -> Result<Vec<PartnerRow>, AdminError> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT p.id, p.name, count(u.id) FROM partners p LEFT JOIN users u ON u.partner_id = p.id GROUP BY p.id ORDER BY lower(p.name), p.id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, users)| PartnerRow { id, name, users })
        .collect())
}

fn unique_to(err: sqlx::Error, constraint: &str, to: impl FnOnce() -> AdminError) -> AdminError {
    match &err {
        sqlx::Error::Database(db) if db.constraint() == Some(constraint) => to(),
        _ => AdminError::Db(err),
    }
}

/// Names are shown on pages and in reports: 1–200 characters, no control characters.
pub fn check_name(what: &'static str, value: &str) -> Result<(), AdminError> {
    let bad = |why| AdminError::BadName {
        what,
        value: value.escape_debug().to_string(),
        why,
    };
    if value.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if value.chars().count() > 200 {
        return Err(bad("it is longer than 200 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if value.trim() != value {
        return Err(bad("it starts or ends with spaces"));
    }
    Ok(())
}

/// A plausible address, lower-cased: one `@`, something on both sides, no spaces or controls.
pub fn check_email(value: &str) -> Result<String, AdminError> {
    let bad = || AdminError::BadEmail(value.escape_debug().to_string());
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || value.len() > 254
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(value.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails_are_checked_before_the_database_sees_them() {
        assert!(check_name("partner name", "Acme IT").is_ok());
        assert!(check_name("partner name", "O'Brien; DROP TABLE partners;--").is_ok());
        for bad in ["", "  ", " lead", "a\u{1b}[31m", &"x".repeat(201)] {
            assert!(check_name("partner name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_email("Admin@Acme.Example").unwrap(),
            "admin@acme.example"
        );
        for bad in [
            "admin",
            "@acme.example",
            "admin@",
            "a b@acme.example",
            "a@b@c.d",
            "a@localhost",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}

//! The partner pages' reads and the few changes they make (users, passwords), each taking the
//! caller's [`Scope`] and filtering by it in SQL like every other query of this module's parent.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{PgPool, Row};

use super::{
    DeviceRow, HealingRow, IncidentRow, Role, SITE_IN_SCOPE, Scope, ScopeError, TS,
    appliance as appliance_in_scope, site as site_in_scope,
};

/// An appliance not heard from for this long is offline (it pushes every few minutes).
pub const OFFLINE_AFTER_SECS: i64 = 30 * 60;

/// One site on the partner overview: everything its one-word verdict is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteSummary {
    /// Id.
    pub id: i64,
    /// Its practice's name.
    pub practice: String,
    /// Name.
    pub name: String,
    /// Claimed appliances.
    pub appliances: i64,
    /// Appliances not heard from for [`OFFLINE_AFTER_SECS`] (or never).
    pub offline: i64,
    /// Newest contact of any of its appliances (RFC 3339).
    pub last_seen: Option<String>,
    /// Appliances whose update rolled back or that have a release waiting.
    pub not_updated: i64,
    /// Checkpoints the witness refused as forks of history.
    pub forks: i64,
    /// Escalated incidents: a person must act.
    pub escalated: i64,
    /// Incidents not resolved (open, healing, escalated).
    pub open_incidents: i64,
    /// Devices in the newest snapshots.
    pub devices: i64,
    /// Devices not compliant.
    pub devices_failing: i64,
    /// Workstations known (from AD).
    pub workstations_known: i64,
    /// Workstations with a current result.
    pub workstations_checked: i64,
    /// Compliance per framework in tenths of a percent (the mean of the site's appliances).
    pub compliance: BTreeMap<String, Option<i64>>,
    /// When the newest device snapshot was taken (RFC 3339).
    pub observed_at: Option<String>,
}

/// The sites the scope sees with their state at a glance (not for auditors), in name order;
/// the page orders them by verdict.
pub async fn overview(pool: &PgPool, scope: &Scope) -> Result<Vec<SiteSummary>, ScopeError> {
    summaries(pool, scope, None).await
}

/// One site's state at a glance (not for auditors).
pub async fn site_summary(
    pool: &PgPool,
    scope: &Scope,
    site_id: i64,
) -> Result<SiteSummary, ScopeError> {
    summaries(pool, scope, Some(site_id))
        .await?
        .into_iter()
        .next()
        .ok_or(ScopeError::NotFound)
}

async fn summaries(
    pool: &PgPool,
    scope: &Scope,
    site_id: Option<i64>,
) -> Result<Vec<SiteSummary>, ScopeError> {
    scope.sees_operations()?;
    let sql = format!(
        "SELECT s.id, p.name AS practice, s.name,
                coalesce(a.n, 0) AS appliances, coalesce(a.offline, 0) AS offline, a.last_seen,
                coalesce(a.not_updated, 0) AS not_updated, coalesce(a.forks, 0) AS forks,
                coalesce(i.escalated, 0) AS escalated, coalesce(i.open, 0) AS open_incidents,
                coalesce(a.devices, 0) AS devices, coalesce(a.devices_failing, 0) AS devices_failing,
                coalesce(a.ws_known, 0) AS ws_known, coalesce(a.ws_checked, 0) AS ws_checked,
                a.compliance, a.observed_at
         FROM sites s JOIN practices p ON p.id = s.practice_id
         LEFT JOIN LATERAL (
             SELECT count(*) AS n,
                    count(*) FILTER (WHERE ap.last_seen IS NULL OR ap.last_seen < now() - make_interval(secs => $3)) AS offline,
                    to_char(max(ap.last_seen) AT TIME ZONE 'UTC', {TS}) AS last_seen,
                    count(*) FILTER (WHERE ap.update_state = 'rolled_back' OR ap.update_available IS NOT NULL) AS not_updated,
                    sum((SELECT count(*) FROM witness_forks f WHERE f.appliance_id = ap.id))::bigint AS forks,
                    sum(ap.devices_total)::bigint AS devices, sum(ap.devices_failing)::bigint AS devices_failing,
                    sum(ap.workstations_known)::bigint AS ws_known, sum(ap.workstations_checked)::bigint AS ws_checked,
                    jsonb_agg(ap.compliance_now) AS compliance,
                    to_char(max(ap.devices_observed_at) AT TIME ZONE 'UTC', {TS}) AS observed_at
             FROM appliances ap WHERE ap.site_id = s.id
         ) a ON true
         LEFT JOIN LATERAL (
             SELECT count(*) FILTER (WHERE inc.phase = 'escalated') AS escalated, count(*) AS open
             FROM appliances ap JOIN incidents inc ON inc.appliance_id = ap.id
             WHERE ap.site_id = s.id AND inc.phase IN ('open', 'healing', 'escalated')
         ) i ON true
         WHERE {SITE_IN_SCOPE} AND ($4::bigint IS NULL OR s.id = $4)
         ORDER BY lower(p.name), lower(s.name), s.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(OFFLINE_AFTER_SECS as f64)
        .bind(site_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(SiteSummary {
                id: row.try_get("id")?,
                practice: row.try_get("practice")?,
                name: row.try_get("name")?,
                appliances: row.try_get("appliances")?,
                offline: row.try_get("offline")?,
                last_seen: row.try_get("last_seen")?,
                not_updated: row.try_get("not_updated")?,
                forks: row.try_get("forks")?,
                escalated: row.try_get("escalated")?,
                open_incidents: row.try_get("open_incidents")?,
                devices: row.try_get("devices")?,
                devices_failing: row.try_get("devices_failing")?,
                workstations_known: row.try_get("ws_known")?,
                workstations_checked: row.try_get("ws_checked")?,
                compliance: mean_compliance(
                    row.try_get::<Option<serde_json::Value>, _>("compliance")?,
                ),
                observed_at: row.try_get("observed_at")?,
            })
        })
        .collect()
}

/// The mean per framework of the appliances' `{framework: permille}` objects; `None` where no
/// appliance has a value for a framework it names.
fn mean_compliance(objects: Option<serde_json::Value>) -> BTreeMap<String, Option<i64>> {
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let Some(serde_json::Value::Array(objects)) = objects else {
        return BTreeMap::new();
    };
    for object in objects {
        let serde_json::Value::Object(map) = object else {
            continue;
        };
        for (framework, value) in map {
            let entry = sums.entry(framework).or_default();
            if let Some(permille) = value.as_i64() {
                entry.0 += permille;
                entry.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(framework, (sum, n))| (framework, (n > 0).then(|| sum / n)))
        .collect()
}

/// One day of a compliance trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The mean over the appliances that reported that day, tenths of a percent.
    pub permille: i64,
}

/// A framework's daily compliance over the last `days` days, for one site or (with `None`) for
/// every site in scope, oldest first; days without a report are absent.
pub async fn trend(
    pool: &PgPool,
    scope: &Scope,
    site_id: Option<i64>,
    framework: &str,
    days: i32,
) -> Result<Vec<TrendPoint>, ScopeError> {
    scope.sees_operations()?;
    if let Some(site_id) = site_id {
        site_in_scope(pool, scope, site_id).await?;
    }
    if site_id.is_none() && scope.practice_id.is_none() {
        // The whole partner: its daily sums.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT to_char(day, 'YYYY-MM-DD'), round(total::numeric / reports)::bigint
             FROM compliance_daily_partner
             WHERE partner_id = $1 AND framework = $2 AND reports > 0
                   AND day > (now() AT TIME ZONE 'UTC')::date - $3
             ORDER BY day",
        )
        .bind(scope.partner_id)
        .bind(framework)
        .bind(days)
        .fetch_all(pool)
        .await?;
        return Ok(rows
            .into_iter()
            .map(|(day, permille)| TrendPoint { day, permille })
            .collect());
    }
    let sql = format!(
        "SELECT to_char(c.day, 'YYYY-MM-DD') AS day, round(avg(c.permille))::bigint AS permille
         FROM compliance_daily c JOIN appliances a ON a.id = c.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND ($3::bigint IS NULL OR s.id = $3) AND c.framework = $4
               AND c.day > (now() AT TIME ZONE 'UTC')::date - $5 AND c.permille IS NOT NULL
         GROUP BY c.day ORDER BY c.day"
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .bind(framework)
        .bind(days)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(day, permille)| TrendPoint { day, permille })
        .collect())
}

/// One change of a device's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceChange {
    /// When the appliance reported it (RFC 3339).
    pub observed_at: String,
    /// `compliant`, `drifted`, `error`, `unknown`.
    pub status: String,
    /// Checks at that scan.
    pub checks_total: i32,
    /// The failed check ids.
    pub failing: Vec<String>,
}

/// A device with its history, incidents and healing (not for auditors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceDetail {
    /// Its site.
    pub site_id: i64,
    /// The site's name.
    pub site_name: String,
    /// The practice's name.
    pub practice: String,
    /// The device now.
    pub device: DeviceRow,
    /// Its verdict changes, newest first (at most 200).
    pub history: Vec<DeviceChange>,
    /// Its incidents, newest first (at most 100).
    pub incidents: Vec<IncidentRow>,
    /// Its healing-log entries, newest first (at most 100); their evidence bundles are named by
    /// sequence number.
    pub healing: Vec<HealingRow>,
}

/// One device of one appliance.
pub async fn device_detail(
    pool: &PgPool,
    scope: &Scope,
    appliance_id: i64,
    name: &str,
) -> Result<DeviceDetail, ScopeError> {
    scope.sees_operations()?;
    let appliance = appliance_in_scope(pool, scope, appliance_id).await?;
    let (site, _) = site_in_scope(pool, scope, appliance.site_id).await?;
    let device = super::site_devices(pool, scope, site.id)
        .await?
        .into_iter()
        .find(|d| d.appliance_id == appliance_id && d.name == name)
        .ok_or(ScopeError::NotFound)?;
    // The appliance is in scope (checked above); these read only its rows.
    let history = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT to_char(observed_at AT TIME ZONE 'UTC', {TS}) AS observed_at, status, checks_total, failing
         FROM device_history WHERE appliance_id = $1 AND name = $2 ORDER BY observed_at DESC LIMIT 200"
    )))
    .bind(appliance_id)
    .bind(name)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(DeviceChange {
            observed_at: row.try_get("observed_at")?,
            status: row.try_get("status")?,
            checks_total: row.try_get("checks_total")?,
            failing: serde_json::from_value(row.try_get("failing")?).unwrap_or_default(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Only this device's rows (the appliance is in scope, checked above).
    let incident_columns = super::incident_columns();
    let incidents = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {incident_columns} FROM incidents i WHERE i.appliance_id = $1 AND i.device = $2
         ORDER BY i.updated_at DESC, i.incident_id DESC LIMIT 100"
    )))
    .bind(appliance_id)
    .bind(name)
    .fetch_all(pool)
    .await?
    .iter()
    .map(IncidentRow::read)
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let healing_columns = super::healing_columns();
    let healing = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {healing_columns} FROM healing_log h WHERE h.appliance_id = $1 AND h.device = $2
         ORDER BY h.at DESC, h.entry_id DESC LIMIT 100"
    )))
    .bind(appliance_id)
    .bind(name)
    .fetch_all(pool)
    .await?
    .iter()
    .map(HealingRow::read)
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(DeviceDetail {
        site_id: site.id,
        site_name: site.name,
        practice: site.practice,
        device,
        history,
        incidents,
        healing,
    })
}

/// What the witness holds of one appliance's evidence log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceRow {
    /// The appliance.
    pub appliance_id: i64,
    /// Its site.
    pub site_id: i64,
    /// The newest cosigned checkpoint's size (bundles), if any.
    pub witnessed_size: Option<i64>,
    /// When it was cosigned (RFC 3339).
    pub witnessed_at: Option<String>,
    /// Cosignatures issued in all.
    pub cosignatures: i64,
    /// Refused forks of history.
    pub forks: i64,
    /// Checkpoints waiting for a Bitcoin block at the OpenTimestamps calendars.
    pub ots_pending: Option<i64>,
    /// Checkpoints with a complete Bitcoin attestation.
    pub ots_anchored: Option<i64>,
}

/// The evidence state of a site's appliances (auditors too).
pub async fn site_evidence(
    pool: &PgPool,
    scope: &Scope,
    site_id: i64,
) -> Result<Vec<EvidenceRow>, ScopeError> {
    site_in_scope(pool, scope, site_id).await?;
    evidence_rows(pool, scope, Some(site_id)).await
}

/// The evidence state of every appliance in scope, by site (auditors too).
pub async fn all_evidence(pool: &PgPool, scope: &Scope) -> Result<Vec<EvidenceRow>, ScopeError> {
    evidence_rows(pool, scope, None).await
}

async fn evidence_rows(
    pool: &PgPool,
    scope: &Scope,
    site_id: Option<i64>,
) -> Result<Vec<EvidenceRow>, ScopeError> {
    let sql = format!(
        "SELECT a.id, a.site_id, h.size, to_char(h.cosigned_at AT TIME ZONE 'UTC', {TS}) AS cosigned_at,
                (SELECT count(*) FROM cosignatures c WHERE c.appliance_id = a.id) AS cosignatures,
                (SELECT count(*) FROM witness_forks f WHERE f.appliance_id = a.id) AS forks,
                a.ots_pending, a.ots_anchored
         FROM appliances a JOIN sites s ON s.id = a.site_id LEFT JOIN witness_heads h ON h.appliance_id = a.id
         WHERE {SITE_IN_SCOPE} AND ($3::bigint IS NULL OR s.id = $3) ORDER BY a.site_id, a.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(EvidenceRow {
                appliance_id: row.try_get("id")?,
                site_id: row.try_get("site_id")?,
                witnessed_size: row.try_get("size")?,
                witnessed_at: row.try_get("cosigned_at")?,
                cosignatures: row.try_get("cosignatures")?,
                forks: row.try_get("forks")?,
                ots_pending: row.try_get("ots_pending")?,
                ots_anchored: row.try_get("ots_anchored")?,
            })
        })
        .collect()
}

/// A user as the partner's administrators see it (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Login.
    pub email: String,
    /// Role.
    pub role: Role,
    /// The practice a practice viewer is limited to.
    pub practice: Option<String>,
    /// Whether an authenticator is set up.
    pub mfa: bool,
    /// When access ends (auditors), RFC 3339.
    pub expires_at: Option<String>,
    /// Whether access has ended.
    pub expired: bool,
    /// Locked after failed logins, until then.
    pub locked_until: Option<String>,
}

/// The partner's users (partner administrators only).
pub async fn users(pool: &PgPool, scope: &Scope) -> Result<Vec<UserRow>, ScopeError> {
    scope.administers()?;
    let sql = format!(
        "SELECT u.id, u.email, u.role::text AS role, p.name AS practice, u.totp_secret IS NOT NULL AS mfa,
                to_char(u.expires_at AT TIME ZONE 'UTC', {TS}) AS expires_at,
                coalesce(u.expires_at < now(), false) AS expired,
                CASE WHEN u.locked_until > now() THEN to_char(u.locked_until AT TIME ZONE 'UTC', {TS}) END AS locked_until
         FROM users u LEFT JOIN practices p ON p.id = u.practice_id
         WHERE u.partner_id = $1 ORDER BY u.role, lower(u.email)"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("role")?;
            Ok(UserRow {
                id: row.try_get("id")?,
                email: row.try_get("email")?,
                role: Role::parse(&role).unwrap_or(Role::Auditor),
                practice: row.try_get("practice")?,
                mfa: row.try_get("mfa")?,
                expires_at: row.try_get("expires_at")?,
                expired: row.try_get("expired")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ScopeError::from)
}

/// The partner's practices `(id, name)` by name (for forms).
pub async fn practices(pool: &PgPool, scope: &Scope) -> Result<Vec<(i64, String)>, ScopeError> {
    Ok(sqlx::query_as(
        "SELECT id, name FROM practices WHERE partner_id = $1 AND ($2::bigint IS NULL OR id = $2) ORDER BY lower(name), id",
    )
    .bind(scope.partner_id)
    .bind(scope.practice_id)
    .fetch_all(pool)
    .await?)
}

/// A user a partner administrator adds.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login.
    pub email: String,
    /// Role.
    pub role: Role,
    /// The practice, required for practice viewers.
    pub practice_id: Option<i64>,
    /// Days of access, required for auditors (1–365).
    pub expires_days: Option<u32>,
    /// The first password (at least [`MIN_PASSWORD`] characters), to be changed at first use.
    pub password: zeroize::Zeroizing<String>,
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// Adds a user to the caller's partner (partner administrators only), audit-logged.
pub async fn create_user(pool: &PgPool, scope: &Scope, user: NewUser) -> Result<i64, ScopeError> {
    scope.administers()?;
    check_password(&user.password)?;
    let role = match user.role {
        Role::PartnerAdmin => "partner_admin",
        Role::PartnerTechnician => "partner_technician",
        Role::PracticeViewer => "practice_viewer",
        Role::Auditor => "auditor",
    };
    if user.role == Role::Auditor && !matches!(user.expires_days, Some(1..=365)) {
        return Err(ScopeError::Invalid(
            "an auditor's access must end: give 1-365 days".to_owned(),
        ));
    }
    let practice_id = match user.role {
        Role::PracticeViewer => {
            let id = user.practice_id.ok_or_else(|| {
                ScopeError::Invalid("a practice viewer needs a practice".to_owned())
            })?;
            if !practices(pool, scope).await?.iter().any(|(p, _)| *p == id) {
                return Err(ScopeError::Invalid(
                    "choose one of your practices".to_owned(),
                ));
            }
            Some(id)
        }
        _ => None,
    };
    let expires = (user.role == Role::Auditor)
        .then_some(user.expires_days)
        .flatten();
    crate::admin::add_user(
        pool,
        scope.partner_id,
        &user.email,
        role,
        &user.password,
        practice_id,
        expires,
        &format!("user:{}", scope.user_id),
    )
    .await
    .map_err(|err| match err {
        crate::admin::AdminError::Db(err) => ScopeError::Db(err),
        other => ScopeError::Invalid(other.to_string()),
    })
}

/// Ends a user's access at once (partner administrators; not their own): the account counts as
/// expired and its sessions end. Audit-logged.
pub async fn end_access(pool: &PgPool, scope: &Scope, user_id: i64) -> Result<(), ScopeError> {
    scope.administers()?;
    if user_id == scope.user_id {
        return Err(ScopeError::Invalid(
            "you cannot end your own access; ask another partner administrator".to_owned(),
        ));
    }
    let mut tx = pool.begin().await?;
    let email: Option<String> = sqlx::query_scalar(
        "UPDATE users SET expires_at = now() WHERE id = $1 AND partner_id = $2 RETURNING email",
    )
    .bind(user_id)
    .bind(scope.partner_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(email) = email else {
        return Err(ScopeError::NotFound);
    };
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, 'user.access_ended', $3)",
    )
    .bind(scope.partner_id)
    .bind(format!("user:{}", scope.user_id))
    .bind(serde_json::json!({"user_id": user_id, "email": email}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

fn check_password(password: &str) -> Result<(), ScopeError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ScopeError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD} characters (and at most 1024 bytes)"
        )));
    }
    Ok(())
}

/// Changes the caller's own password after checking the current one; other sessions of the
/// user end. Audit-logged.
pub async fn change_password(
    pool: &PgPool,
    scope: &Scope,
    current: &str,
    new: &str,
    keep_session: &[u8; 32],
) -> Result<(), ScopeError> {
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(scope.user_id)
        .fetch_one(pool)
        .await?;
    if !crate::password::verify(current, &hash) {
        return Err(ScopeError::Invalid(
            "the current password is wrong".to_owned(),
        ));
    }
    check_password(new)?;
    if new == current {
        return Err(ScopeError::Invalid(
            "the new password must differ from the current one".to_owned(),
        ));
    }
    let hash = crate::password::hash(new)
        .map_err(|err| ScopeError::Invalid(format!("password: {err}")))?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(&hash)
        .bind(scope.user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_sha256 <> $2")
        .bind(scope.user_id)
        .bind(keep_session.as_slice())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, 'user.password_changed', '{}')",
    )
    .bind(scope.partner_id)
    .bind(format!("user:{}", scope.user_id))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The partner's name (for the page header).
pub async fn partner_name(pool: &PgPool, scope: &Scope) -> Result<String, ScopeError> {
    Ok(
        sqlx::query_scalar("SELECT name FROM partners WHERE id = $1")
            .bind(scope.partner_id)
            .fetch_one(pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_is_the_mean_of_the_appliances_that_have_a_value() {
        let objects = serde_json::json!([
            {"HIPAA": 900, "SOC 2": null},
            {"HIPAA": 700, "SOC 2": null, "CIS": 500},
        ]);
        let mean = mean_compliance(Some(objects));
        assert_eq!(mean["HIPAA"], Some(800));
        assert_eq!(mean["SOC 2"], None);
        assert_eq!(mean["CIS"], Some(500));
        assert!(mean_compliance(None).is_empty());
    }
}

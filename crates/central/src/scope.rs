//! Tenant scoping in one place: the [`Scope`] of a logged-in user (partner, optional practice,
//! role) and every query that reads or changes tenant data, each taking the scope and filtering
//! by it in SQL. Handlers never write SQL of their own, so no handler can forget the filter.

use serde::Serialize;
use sqlx::PgPool;

/// What a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything of the partner, including users and settings.
    PartnerAdmin,
    /// Everything of the partner's sites, not users.
    PartnerTechnician,
    /// One practice, read-only.
    PracticeViewer,
    /// Read-only evidence, for a limited time.
    Auditor,
}

impl Role {
    /// From the database's enum label.
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "partner_admin" => Role::PartnerAdmin,
            "partner_technician" => Role::PartnerTechnician,
            "practice_viewer" => Role::PracticeViewer,
            "auditor" => Role::Auditor,
            _ => return None,
        })
    }

    /// Partner roles must use a second factor.
    pub fn requires_mfa(self) -> bool {
        matches!(self, Role::PartnerAdmin | Role::PartnerTechnician)
    }
}

/// The caller's reach: one partner, perhaps one practice of it, and a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// The user.
    pub user_id: i64,
    /// Their partner: nothing of another partner is ever visible.
    pub partner_id: i64,
    /// Set for users limited to one practice.
    pub practice_id: Option<i64>,
    /// What they may do.
    pub role: Role,
}

/// An action the scope does not allow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// Not found in this scope (also what another tenant's ids get: nothing is revealed).
    #[error("not found")]
    NotFound,
    /// The role does not allow it.
    #[error("your role does not allow this")]
    Forbidden,
    /// The request is not one (words say what to change).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the state of things (words say what).
    #[error("{0}")]
    Conflict(String),
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
}

impl Scope {
    fn may_change(self) -> Result<(), ScopeError> {
        match self.role {
            Role::PartnerAdmin | Role::PartnerTechnician => Ok(()),
            Role::PracticeViewer | Role::Auditor => Err(ScopeError::Forbidden),
        }
    }

    fn administers(self) -> Result<(), ScopeError> {
        match (self.role, self.practice_id) {
            (Role::PartnerAdmin, None) => Ok(()),
            _ => Err(ScopeError::Forbidden),
        }
    }

    fn asks_for_evidence(self) -> Result<(), ScopeError> {
        match self.role {
            Role::PracticeViewer => Err(ScopeError::Forbidden),
            _ => Ok(()),
        }
    }

    fn sees_operations(self) -> Result<(), ScopeError> {
        match self.role {
            Role::Auditor => Err(ScopeError::Forbidden),
            _ => Ok(()),
        }
    }
}

/// SQL predicate on a `sites` row aliased `s`, with `$1` the partner and `$2` the practice (or
/// NULL): the one filter every site-related query uses. Queries here are composed only of such
/// constant fragments (hence `AssertSqlSafe`); every value travels as a bind parameter.
const SITE_IN_SCOPE: &str = "s.partner_id = $1 AND ($2::bigint IS NULL OR s.practice_id = $2)";

/// One site in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteRow {
    /// Id.
    pub id: i64,
    /// Its practice's name.
    pub practice: String,
    /// Name.
    pub name: String,
    /// Claimed appliances.
    pub appliances: i64,
    /// Newest contact of any of its appliances (RFC 3339), if any.
    pub last_seen: Option<String>,
}

/// One appliance as a partner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplianceRow {
    /// Id.
    pub id: i64,
    /// Its site.
    pub site_id: i64,
    /// The evidence key (its name is the log's origin).
    pub appliance_key: String,
    /// Last contact (RFC 3339), if any.
    pub last_seen: Option<String>,
    /// Size of the newest witnessed checkpoint.
    pub witnessed_size: Option<i64>,
    /// When it was cosigned (RFC 3339).
    pub witnessed_at: Option<String>,
    /// Refused forks of its log.
    pub forks: i64,
    /// The osiris version it runs, once reported.
    pub software_version: Option<String>,
    /// Its image-update state, once reported.
    pub update: Option<UpdateRow>,
}

/// An appliance's image-update state as it last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateRow {
    /// `idle`, `staged`, `rolled_back`, … (`osiris status`'s words).
    pub state: String,
    /// The version offered or being installed.
    pub available: Option<String>,
    /// The updater's words.
    pub detail: Option<String>,
    /// When the appliance reported it (RFC 3339).
    pub observed_at: String,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    /// Id.
    pub id: i64,
    /// The appliance, if about one.
    pub appliance_id: Option<i64>,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What kind, e.g. `evidence_fork`.
    pub kind: String,
    /// In words.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
    /// Acknowledged, by whom.
    pub acknowledged_by: Option<i64>,
}

/// An audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who (`user:<id>`, `cli:uid=<n>`).
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    pub detail: serde_json::Value,
}

const TS: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

/// The sites the scope sees, by practice and name.
pub async fn sites(pool: &PgPool, scope: &Scope) -> Result<Vec<SiteRow>, ScopeError> {
    let sql = format!(
        "SELECT s.id, p.name AS practice, s.name,
                (SELECT count(*) FROM appliances a WHERE a.site_id = s.id) AS appliances,
                (SELECT to_char(max(a.last_seen) AT TIME ZONE 'UTC', {TS}) FROM appliances a WHERE a.site_id = s.id) AS last_seen
         FROM sites s JOIN practices p ON p.id = s.practice_id
         WHERE {SITE_IN_SCOPE} ORDER BY lower(p.name), lower(s.name), s.id"
    );
    let rows: Vec<(i64, String, String, i64, Option<String>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.partner_id)
            .bind(scope.practice_id)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, practice, name, appliances, last_seen)| SiteRow {
            id,
            practice,
            name,
            appliances,
            last_seen,
        })
        .collect())
}

/// One site and its appliances.
pub async fn site(
    pool: &PgPool,
    scope: &Scope,
    id: i64,
) -> Result<(SiteRow, Vec<ApplianceRow>), ScopeError> {
    let site = sites(pool, scope)
        .await?
        .into_iter()
        .find(|site| site.id == id)
        .ok_or(ScopeError::NotFound)?;
    let appliances = appliances_where(pool, scope, "a.site_id = $3", id).await?;
    Ok((site, appliances))
}

/// One appliance.
pub async fn appliance(pool: &PgPool, scope: &Scope, id: i64) -> Result<ApplianceRow, ScopeError> {
    appliances_where(pool, scope, "a.id = $3", id)
        .await?
        .into_iter()
        .next()
        .ok_or(ScopeError::NotFound)
}

async fn appliances_where(
    pool: &PgPool,
    scope: &Scope,
    filter: &str,
    id: i64,
) -> Result<Vec<ApplianceRow>, ScopeError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT a.id, a.site_id, a.appliance_key,
                to_char(a.last_seen AT TIME ZONE 'UTC', {TS}) AS last_seen,
                h.size AS witnessed_size,
                to_char(h.cosigned_at AT TIME ZONE 'UTC', {TS}) AS witnessed_at,
                (SELECT count(*) FROM witness_forks f WHERE f.appliance_id = a.id) AS forks,
                a.software_version, a.update_state, a.update_available, a.update_detail,
                to_char(a.update_observed_at AT TIME ZONE 'UTC', {TS}) AS update_observed_at
         FROM appliances a JOIN sites s ON s.id = a.site_id
         LEFT JOIN witness_heads h ON h.appliance_id = a.id
         WHERE {SITE_IN_SCOPE} AND {filter} ORDER BY a.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ApplianceRow {
                id: row.try_get("id")?,
                site_id: row.try_get("site_id")?,
                appliance_key: row.try_get("appliance_key")?,
                last_seen: row.try_get("last_seen")?,
                witnessed_size: row.try_get("witnessed_size")?,
                witnessed_at: row.try_get("witnessed_at")?,
                forks: row.try_get("forks")?,
                software_version: row.try_get("software_version")?,
                update: match row.try_get::<Option<String>, _>("update_state")? {
                    Some(state) => Some(UpdateRow {
                        state,
                        available: row.try_get("update_available")?,
                        detail: row.try_get("update_detail")?,
                        observed_at: row
                            .try_get::<Option<String>, _>("update_observed_at")?
                            .unwrap_or_default(),
                    }),
                    None => None,
                },
            })
        })
        .collect()
}

/// A device as its appliance last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    /// The appliance that reported it.
    pub appliance_id: i64,
    /// Name.
    pub name: String,
    /// `windows_server`, `workstation`, `linux`.
    pub class: String,
    /// `compliant`, `drifted`, `error`, `unknown`.
    pub status: String,
    /// Last scan (RFC 3339).
    pub last_scan_at: Option<String>,
    /// Checks at the last scan.
    pub checks_total: i32,
    /// Failed at the last scan.
    pub checks_failed: i32,
    /// Failed check ids.
    pub failing: serde_json::Value,
    /// When the appliance reported this (RFC 3339): every figure says when it was observed.
    pub observed_at: String,
    /// Why it has no current result (`not_scanned_yet`, `unreachable`, `login_refused`,
    /// `scan_failed`), when it has none.
    pub unchecked: Option<String>,
}

/// The devices of one site, worst first.
pub async fn site_devices(
    pool: &PgPool,
    scope: &Scope,
    site_id: i64,
) -> Result<Vec<DeviceRow>, ScopeError> {
    site(pool, scope, site_id).await?;
    let sql = format!(
        "SELECT d.appliance_id, d.name, d.class, d.status,
                to_char(d.last_scan_at AT TIME ZONE 'UTC', {TS}), d.checks_total, d.checks_failed, d.failing,
                to_char(d.observed_at AT TIME ZONE 'UTC', {TS}), d.unchecked
         FROM devices d JOIN appliances a ON a.id = d.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND s.id = $3
         ORDER BY CASE d.status WHEN 'error' THEN 0 WHEN 'drifted' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END, lower(d.name)"
    );
    type Row = (
        i64,
        String,
        String,
        String,
        Option<String>,
        i32,
        i32,
        serde_json::Value,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                appliance_id,
                name,
                class,
                status,
                last_scan_at,
                checks_total,
                checks_failed,
                failing,
                observed_at,
                unchecked,
            )| DeviceRow {
                appliance_id,
                name,
                class,
                status,
                last_scan_at,
                checks_total,
                checks_failed,
                failing,
                observed_at,
                unchecked,
            },
        )
        .collect())
}

/// An incident as its appliance last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentRow {
    /// The appliance that reported it.
    pub appliance_id: i64,
    /// The appliance's incident id.
    pub incident_id: i64,
    /// The device.
    pub device: String,
    /// The check.
    pub check: String,
    /// `low` … `critical`.
    pub severity: String,
    /// `open`, `healing`, `escalated`, `resolved` or `closed`.
    pub phase: String,
    /// Opened (RFC 3339).
    pub opened_at: String,
    /// Opened (POSIX seconds): with the appliance and incident ids, the incident's
    /// [`IncidentKey`].
    pub opened_unix: i64,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Failed scans seen while open.
    pub occurrences: i32,
    /// Resolving and failing again repeatedly.
    pub flapping: bool,
    /// A person acknowledged it on the appliance.
    pub acknowledged: bool,
    /// Phase changes `{at, from, to}` (POSIX seconds), oldest first.
    pub transitions: serde_json::Value,
    /// When the appliance reported this (RFC 3339).
    pub observed_at: String,
}

/// The incidents of one site: those that need a person first (escalated, then open or healing),
/// then the rest, newest first; at most 500 (not for auditors).
pub async fn site_incidents(
    pool: &PgPool,
    scope: &Scope,
    site_id: i64,
) -> Result<Vec<IncidentRow>, ScopeError> {
    scope.sees_operations()?;
    site(pool, scope, site_id).await?;
    let columns = incident_columns();
    let sql = format!(
        "SELECT {columns}
         FROM incidents i JOIN appliances a ON a.id = i.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND s.id = $3
         ORDER BY CASE i.phase WHEN 'escalated' THEN 0 WHEN 'open' THEN 1 WHEN 'healing' THEN 1 ELSE 2 END,
                  i.updated_at DESC, i.appliance_id, i.incident_id
         LIMIT 500"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| IncidentRow::read(row).map_err(ScopeError::from))
        .collect()
}

/// The columns [`IncidentRow::read`] takes, from `incidents` aliased `i`.
fn incident_columns() -> String {
    format!(
        "i.appliance_id, i.incident_id, i.device, i.check_id, i.severity, i.phase,
         to_char(i.opened_at AT TIME ZONE 'UTC', {TS}) AS opened_at,
         extract(epoch from i.opened_at)::bigint AS opened_unix,
         to_char(i.updated_at AT TIME ZONE 'UTC', {TS}) AS updated_at,
         i.occurrences, i.flapping, i.acknowledged, i.transitions,
         to_char(i.observed_at AT TIME ZONE 'UTC', {TS}) AS observed_at"
    )
}

impl IncidentRow {
    /// One row selected with [`incident_columns`].
    fn read(row: &sqlx::postgres::PgRow) -> Result<IncidentRow, sqlx::Error> {
        use sqlx::Row;
        Ok(IncidentRow {
            appliance_id: row.try_get("appliance_id")?,
            incident_id: row.try_get("incident_id")?,
            device: row.try_get("device")?,
            check: row.try_get("check_id")?,
            severity: row.try_get("severity")?,
            phase: row.try_get("phase")?,
            opened_at: row.try_get("opened_at")?,
            opened_unix: row.try_get("opened_unix")?,
            updated_at: row.try_get("updated_at")?,
            occurrences: row.try_get("occurrences")?,
            flapping: row.try_get("flapping")?,
            acknowledged: row.try_get("acknowledged")?,
            transitions: row.try_get("transitions")?,
            observed_at: row.try_get("observed_at")?,
        })
    }
}

/// The columns [`HealingRow::read`] takes, from `healing_log` aliased `h`.
fn healing_columns() -> String {
    format!(
        "h.appliance_id, h.entry_id, to_char(h.at AT TIME ZONE 'UTC', {TS}) AS at, h.device,
         h.check_id, h.tier, h.rule, h.result, h.evidence_seq"
    )
}

impl HealingRow {
    /// One row selected with [`healing_columns`].
    fn read(row: &sqlx::postgres::PgRow) -> Result<HealingRow, sqlx::Error> {
        use sqlx::Row;
        Ok(HealingRow {
            appliance_id: row.try_get("appliance_id")?,
            entry_id: row.try_get("entry_id")?,
            at: row.try_get("at")?,
            device: row.try_get("device")?,
            check: row.try_get("check_id")?,
            tier: row.try_get("tier")?,
            rule: row.try_get("rule")?,
            result: row.try_get("result")?,
            evidence_seq: row.try_get("evidence_seq")?,
        })
    }
}

/// One healing-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealingRow {
    /// The appliance.
    pub appliance_id: i64,
    /// Its entry id.
    pub entry_id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The device.
    pub device: String,
    /// The check.
    pub check: String,
    /// `L1`, `L2` or `L3`.
    pub tier: String,
    /// The rule that acted.
    pub rule: Option<String>,
    /// `fixed`, `not_fixed` or `escalated`.
    pub result: String,
    /// The evidence bundle recording it.
    pub evidence_seq: Option<i64>,
}

/// The newest 500 healing-log entries of one site, newest first (not for auditors).
pub async fn site_healing(
    pool: &PgPool,
    scope: &Scope,
    site_id: i64,
) -> Result<Vec<HealingRow>, ScopeError> {
    scope.sees_operations()?;
    site(pool, scope, site_id).await?;
    let columns = healing_columns();
    let sql = format!(
        "SELECT {columns}
         FROM healing_log h JOIN appliances a ON a.id = h.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND s.id = $3
         ORDER BY h.at DESC, h.appliance_id, h.entry_id DESC
         LIMIT 500"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| HealingRow::read(row).map_err(ScopeError::from))
        .collect()
}

/// Open alerts, newest first (not for auditors).
pub async fn alerts(pool: &PgPool, scope: &Scope) -> Result<Vec<AlertRow>, ScopeError> {
    scope.sees_operations()?;
    let sql = format!(
        "SELECT al.id, al.appliance_id, al.severity::text AS severity, al.kind, al.message,
                to_char(al.at AT TIME ZONE 'UTC', {TS}) AS at, al.acknowledged_by
         FROM alerts al
         LEFT JOIN appliances a ON a.id = al.appliance_id
         LEFT JOIN sites s ON s.id = a.site_id
         WHERE al.partner_id = $1 AND ($2::bigint IS NULL OR s.practice_id = $2)
         ORDER BY al.at DESC, al.id DESC"
    );
    type Row = (
        i64,
        Option<i64>,
        String,
        String,
        String,
        String,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, appliance_id, severity, kind, message, at, acknowledged_by)| AlertRow {
                id,
                appliance_id,
                severity,
                kind,
                message,
                at,
                acknowledged_by,
            },
        )
        .collect())
}

/// Acknowledges an alert (partner roles), recorded in the audit log.
pub async fn acknowledge_alert(pool: &PgPool, scope: &Scope, id: i64) -> Result<(), ScopeError> {
    scope.may_change()?;
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE alerts SET acknowledged_by = $3, acknowledged_at = now()
         WHERE id = $2 AND partner_id = $1 AND acknowledged_at IS NULL",
    )
    .bind(scope.partner_id)
    .bind(id)
    .bind(scope.user_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ScopeError::NotFound);
    }
    record(
        &mut tx,
        scope,
        "alert.acknowledge",
        serde_json::json!({"alert_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the scope may claim an appliance into site `site_id` (partner roles, own site).
pub async fn check_claim(pool: &PgPool, scope: &Scope, site_id: i64) -> Result<(), ScopeError> {
    scope.may_change()?;
    let sql = format!("SELECT s.id FROM sites s WHERE {SITE_IN_SCOPE} AND s.id = $3");
    let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(site_id)
        .fetch_optional(pool)
        .await?;
    found.map(|_| ()).ok_or(ScopeError::NotFound)
}

/// The partner's audit log, newest first (partner administrators only).
pub async fn audit_log(
    pool: &PgPool,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<AuditRow>, ScopeError> {
    if scope.role != Role::PartnerAdmin {
        return Err(ScopeError::Forbidden);
    }
    let sql = format!(
        "SELECT id, to_char(at AT TIME ZONE 'UTC', {TS}) AS at, actor, action, detail
         FROM audit_log WHERE partner_id = $1 ORDER BY id DESC LIMIT $2"
    );
    let rows: Vec<(i64, String, String, String, serde_json::Value)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.partner_id)
            .bind(limit.clamp(1, 1000))
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, actor, action, detail)| AuditRow {
            id,
            at,
            actor,
            action,
            detail,
        })
        .collect())
}

/// An evidence kit asked of an appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KitRow {
    /// The request's id.
    pub id: i64,
    /// The appliance asked.
    pub appliance_id: i64,
    /// Its site.
    pub site_id: i64,
    /// When it was asked for (RFC 3339).
    pub requested_at: String,
    /// The period the requester cares about (`YYYY-MM-DD`); the kit holds the whole log.
    pub period_from: Option<String>,
    /// End of that period.
    pub period_to: Option<String>,
    /// `pending` (the appliance has not delivered it yet), `verified` (ready to download) or
    /// `refused` (it did not verify; see `problems`).
    pub status: String,
    /// When it was delivered (RFC 3339).
    pub finished_at: Option<String>,
    /// Bundles in the kit.
    pub bundles: Option<i64>,
    /// The newest checkpoint size the witness cosigned in it.
    pub witnessed_size: Option<i64>,
    /// Why it was refused.
    pub problems: serde_json::Value,
    /// Archive size in bytes.
    pub size_bytes: Option<i64>,
    /// SHA-256 of the archive (hex): compare with the downloaded file.
    pub sha256: Option<String>,
}

/// At most this many kits wait for one appliance at a time.
pub const MAX_PENDING_KITS: i64 = 5;

/// Parses `YYYY-MM-DD`.
fn parse_day(what: &str, text: &str) -> Result<time::Date, ScopeError> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        ScopeError::Invalid(format!(
            "{what} must be a date as YYYY-MM-DD, not `{}`",
            text.escape_debug()
        ))
    })
}

/// Asks appliance `appliance_id` for an evidence kit (partner roles and auditors), recorded in
/// the audit log; returns the request's id.
pub async fn request_kit(
    pool: &PgPool,
    scope: &Scope,
    appliance_id: i64,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<i64, ScopeError> {
    scope.asks_for_evidence()?;
    appliance(pool, scope, appliance_id).await?;
    let from = from.map(|f| parse_day("from", f)).transpose()?;
    let to = to.map(|t| parse_day("to", t)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ScopeError::Invalid(format!(
            "the period ends ({to}) before it starts ({from})"
        )));
    }
    let mut tx = pool.begin().await?;
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM kit_requests WHERE appliance_id = $1 AND status = 'pending'",
    )
    .bind(appliance_id)
    .fetch_one(&mut *tx)
    .await?;
    if pending >= MAX_PENDING_KITS {
        return Err(ScopeError::Conflict(format!(
            "{pending} kits already wait for this appliance; they are delivered at its next contact"
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO kit_requests (partner_id, appliance_id, requested_by, period_from, period_to)
         VALUES ($1, $2, $3, $4::date, $5::date) RETURNING id",
    )
    .bind(scope.partner_id)
    .bind(appliance_id)
    .bind(scope.user_id)
    .bind(from.map(|d| d.to_string()))
    .bind(to.map(|d| d.to_string()))
    .fetch_one(&mut *tx)
    .await?;
    record(
        &mut tx,
        scope,
        "kit.request",
        serde_json::json!({"kit_id": id, "appliance_id": appliance_id,
            "from": from.map(|d| d.to_string()), "to": to.map(|d| d.to_string())}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The kits asked of the scope's appliances, newest first (at most 200).
pub async fn kits(pool: &PgPool, scope: &Scope) -> Result<Vec<KitRow>, ScopeError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT k.id, k.appliance_id, a.site_id,
                to_char(k.requested_at AT TIME ZONE 'UTC', {TS}) AS requested_at,
                to_char(k.period_from, 'YYYY-MM-DD') AS period_from,
                to_char(k.period_to, 'YYYY-MM-DD') AS period_to, k.status,
                to_char(k.finished_at AT TIME ZONE 'UTC', {TS}) AS finished_at,
                k.bundles, k.witnessed_size, k.problems, k.size_bytes, encode(k.sha256, 'hex') AS sha256
         FROM kit_requests k JOIN appliances a ON a.id = k.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND k.partner_id = $1
         ORDER BY k.id DESC LIMIT 200"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(KitRow {
                id: row.try_get("id")?,
                appliance_id: row.try_get("appliance_id")?,
                site_id: row.try_get("site_id")?,
                requested_at: row.try_get("requested_at")?,
                period_from: row.try_get("period_from")?,
                period_to: row.try_get("period_to")?,
                status: row.try_get("status")?,
                finished_at: row.try_get("finished_at")?,
                bundles: row.try_get("bundles")?,
                witnessed_size: row.try_get("witnessed_size")?,
                problems: row.try_get("problems")?,
                size_bytes: row.try_get("size_bytes")?,
                sha256: row.try_get("sha256")?,
            })
        })
        .collect()
}

/// A verified kit's archive (tar) and its appliance, recorded in the audit log.
pub async fn kit_download(
    pool: &PgPool,
    scope: &Scope,
    id: i64,
) -> Result<(Vec<u8>, i64), ScopeError> {
    let sql = format!(
        "SELECT k.status, k.kit, k.appliance_id
         FROM kit_requests k JOIN appliances a ON a.id = k.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND k.partner_id = $1 AND k.id = $3"
    );
    let mut tx = pool.begin().await?;
    let found: Option<(String, Option<Vec<u8>>, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let (status, kit, appliance_id) = found.ok_or(ScopeError::NotFound)?;
    let Some(kit) = kit else {
        return Err(ScopeError::Conflict(match status.as_str() {
            "pending" => format!(
                "kit {id} has not been delivered yet: the appliance sends it at its next contact"
            ),
            _ => format!("kit {id} did not verify and was not kept; see its problems in /v1/kits"),
        }));
    };
    record(
        &mut tx,
        scope,
        "kit.download",
        serde_json::json!({"kit_id": id, "appliance_id": appliance_id}),
    )
    .await?;
    tx.commit().await?;
    Ok((kit, appliance_id))
}

/// A monthly compliance packet an appliance sent, kept whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketRow {
    /// Its id.
    pub id: i64,
    /// The appliance that made it.
    pub appliance_id: i64,
    /// Its site.
    pub site_id: i64,
    /// The month it reports (`YYYY-MM`).
    pub period: String,
    /// False when the month held no scan evidence (its reports say so).
    pub evidence: bool,
    /// When the appliance made it (RFC 3339).
    pub generated_at: String,
    /// When Central Command received it (RFC 3339).
    pub received_at: String,
    /// The `packet` bundle that names its files, in the appliance's evidence log.
    pub bundle_seq: i64,
    /// `[{"name", "sha256", "size"}]`, as the sealed bundle names them.
    pub files: serde_json::Value,
}

/// The packets of the scope's appliances, newest month first (at most 500).
pub async fn packets(pool: &PgPool, scope: &Scope) -> Result<Vec<PacketRow>, ScopeError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT k.id, k.appliance_id, a.site_id, k.period, k.evidence, k.generated_at,
                to_char(k.received_at AT TIME ZONE 'UTC', {TS}) AS received_at, k.bundle_seq,
                (SELECT coalesce(json_agg(json_build_object('name', f.name, 'sha256', encode(f.sha256, 'hex'), 'size', f.size_bytes) ORDER BY f.name), '[]'::json)
                 FROM packet_files f WHERE f.packet_id = k.id)::jsonb AS files
         FROM packets k JOIN appliances a ON a.id = k.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND k.partner_id = $1 AND k.complete
         ORDER BY k.period DESC, k.id DESC LIMIT 500"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PacketRow {
                id: row.try_get("id")?,
                appliance_id: row.try_get("appliance_id")?,
                site_id: row.try_get("site_id")?,
                period: row.try_get("period")?,
                evidence: row.try_get("evidence")?,
                generated_at: row.try_get("generated_at")?,
                received_at: row.try_get("received_at")?,
                bundle_seq: row.try_get("bundle_seq")?,
                files: row.try_get("files")?,
            })
        })
        .collect()
}

/// One file of a packet of the scope's appliances and its SHA-256 (hex), recorded in the audit log.
pub async fn packet_file(
    pool: &PgPool,
    scope: &Scope,
    id: i64,
    name: &str,
) -> Result<(Vec<u8>, String), ScopeError> {
    let sql = format!(
        "SELECT f.content, encode(f.sha256, 'hex'), k.appliance_id, k.period
         FROM packet_files f JOIN packets k ON k.id = f.packet_id
              JOIN appliances a ON a.id = k.appliance_id JOIN sites s ON s.id = a.site_id
         WHERE {SITE_IN_SCOPE} AND k.partner_id = $1 AND k.id = $3 AND f.name = $4 AND k.complete"
    );
    let mut tx = pool.begin().await?;
    let found: Option<(Option<Vec<u8>>, String, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(scope.partner_id)
            .bind(scope.practice_id)
            .bind(id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let (content, sha256, appliance_id, period) = found.ok_or(ScopeError::NotFound)?;
    let content = content.ok_or(ScopeError::NotFound)?;
    record(
        &mut tx,
        scope,
        "packet.download",
        serde_json::json!({"packet_id": id, "appliance_id": appliance_id, "period": period, "file": name}),
    )
    .await?;
    tx.commit().await?;
    Ok((content, sha256))
}

/// An image release this Central Command relays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    /// Id.
    pub id: i64,
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The manifest's counter.
    pub counter: i64,
    /// When its manifest expires (RFC 3339): the vendor re-signs it before then.
    pub expires_at: String,
    /// This partner's rollout of it: the share of appliances (0–100)…
    pub percent: Option<i32>,
    /// …and the practices offered it first.
    pub practices: Option<Vec<i64>>,
}

/// The releases, newest first, with the scope's partner's rollout of each (partner roles).
pub async fn releases(pool: &PgPool, scope: &Scope) -> Result<Vec<ReleaseRow>, ScopeError> {
    use sqlx::Row;
    scope.may_change()?;
    let sql = format!(
        "SELECT r.id, r.version, r.counter, to_char(r.expires_at AT TIME ZONE 'UTC', {TS}) AS expires_at,
                o.percent, o.practices
         FROM releases r LEFT JOIN rollouts o ON o.release_id = r.id AND o.partner_id = $1
         ORDER BY r.id DESC LIMIT 100"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ReleaseRow {
                id: row.try_get("id")?,
                version: row.try_get("version")?,
                counter: row.try_get("counter")?,
                expires_at: row.try_get("expires_at")?,
                percent: row.try_get("percent")?,
                practices: row.try_get("practices")?,
            })
        })
        .collect()
}

/// A rollout's practices, sorted and without repeats, once its share is 0 to 100.
fn rollout_practices(percent: i64, practices: &[i64]) -> Result<Vec<i64>, ScopeError> {
    if !(0..=100).contains(&percent) {
        return Err(ScopeError::Invalid(format!(
            "percent must be 0 to 100, not {percent}"
        )));
    }
    let mut practices = practices.to_vec();
    practices.sort_unstable();
    practices.dedup();
    Ok(practices)
}

/// Every practice named is the partner's; another partner's answers as an unknown one, so
/// nothing is revealed.
async fn own_practices(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    scope: &Scope,
    practices: &[i64],
) -> Result<(), ScopeError> {
    let own: i64 =
        sqlx::query_scalar("SELECT count(*) FROM practices WHERE partner_id = $1 AND id = ANY($2)")
            .bind(scope.partner_id)
            .bind(practices)
            .fetch_one(&mut **tx)
            .await?;
    if own != practices.len() as i64 {
        return Err(ScopeError::NotFound);
    }
    Ok(())
}

/// Offers release `release_id` to `percent` of the partner's appliances and to `practices`
/// whatever the share (partner administrators), recorded in the audit log.
pub async fn set_rollout(
    pool: &PgPool,
    scope: &Scope,
    release_id: i64,
    percent: i64,
    practices: &[i64],
) -> Result<(), ScopeError> {
    scope.administers()?;
    let practices = rollout_practices(percent, practices)?;
    let mut tx = pool.begin().await?;
    let version: Option<String> = sqlx::query_scalar("SELECT version FROM releases WHERE id = $1")
        .bind(release_id)
        .fetch_optional(&mut *tx)
        .await?;
    let version = version.ok_or(ScopeError::NotFound)?;
    own_practices(&mut tx, scope, &practices).await?;
    sqlx::query(
        "INSERT INTO rollouts (partner_id, release_id, percent, practices, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (partner_id, release_id) DO UPDATE SET percent = EXCLUDED.percent,
             practices = EXCLUDED.practices, updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(scope.partner_id)
    .bind(release_id)
    .bind(i32::try_from(percent).unwrap_or(0))
    .bind(&practices)
    .bind(format!("user:{}", scope.user_id))
    .execute(&mut *tx)
    .await?;
    record(
        &mut tx,
        scope,
        "rollout.set",
        serde_json::json!({"version": version, "percent": percent, "practices": practices}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An endpoint-agent release this Central Command relays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentReleaseRow {
    /// Id.
    pub id: i64,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The binary's size in bytes.
    pub size: i64,
    /// The binary's SHA-256, lowercase hex.
    pub sha256: String,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// This partner's rollout of it: the share of appliances (0–100)…
    pub percent: Option<i32>,
    /// …and the practices offered it first.
    pub practices: Option<Vec<i64>>,
}

/// The agent releases, newest first, with the scope's partner's rollout of each (partner roles).
pub async fn agent_releases(
    pool: &PgPool,
    scope: &Scope,
) -> Result<Vec<AgentReleaseRow>, ScopeError> {
    use sqlx::Row;
    scope.may_change()?;
    let sql = format!(
        "SELECT r.id, r.platform, r.version, r.size, encode(r.sha256, 'hex') AS sha256,
                to_char(r.added_at AT TIME ZONE 'UTC', {TS}) AS added_at, o.percent, o.practices
         FROM agent_releases r
         LEFT JOIN agent_rollouts o ON o.agent_release_id = r.id AND o.partner_id = $1
         ORDER BY r.id DESC LIMIT 100"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AgentReleaseRow {
                id: row.try_get("id")?,
                platform: row.try_get("platform")?,
                version: row.try_get("version")?,
                size: row.try_get("size")?,
                sha256: row.try_get("sha256")?,
                added_at: row.try_get("added_at")?,
                percent: row.try_get("percent")?,
                practices: row.try_get("practices")?,
            })
        })
        .collect()
}

/// Offers agent release `release_id` to `percent` of the partner's appliances and to
/// `practices` whatever the share (partner administrators), recorded in the audit log.
pub async fn set_agent_rollout(
    pool: &PgPool,
    scope: &Scope,
    release_id: i64,
    percent: i64,
    practices: &[i64],
) -> Result<(), ScopeError> {
    scope.administers()?;
    let practices = rollout_practices(percent, practices)?;
    let mut tx = pool.begin().await?;
    let release: Option<(String, String)> =
        sqlx::query_as("SELECT platform, version FROM agent_releases WHERE id = $1")
            .bind(release_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (platform, version) = release.ok_or(ScopeError::NotFound)?;
    own_practices(&mut tx, scope, &practices).await?;
    sqlx::query(
        "INSERT INTO agent_rollouts (partner_id, agent_release_id, percent, practices, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (partner_id, agent_release_id) DO UPDATE SET percent = EXCLUDED.percent,
             practices = EXCLUDED.practices, updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(scope.partner_id)
    .bind(release_id)
    .bind(i32::try_from(percent).unwrap_or(0))
    .bind(&practices)
    .bind(format!("user:{}", scope.user_id))
    .execute(&mut *tx)
    .await?;
    record(
        &mut tx,
        scope,
        "agent_rollout.set",
        serde_json::json!({"platform": platform, "version": version, "percent": percent, "practices": practices}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One appliance of the fleet: what it runs, its update state, the release it is offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetRow {
    /// The appliance.
    pub appliance_id: i64,
    /// Its site.
    pub site_id: i64,
    /// Its practice.
    pub practice_id: i64,
    /// Last contact (RFC 3339).
    pub last_seen: Option<String>,
    /// The osiris version it reported.
    pub software_version: Option<String>,
    /// Its updater's state as it reported it.
    pub update: Option<UpdateRow>,
    /// The release the partner's rollouts offer it now.
    pub offered: Option<String>,
    /// The agent releases the partner's rollouts offer it now, by platform.
    pub agents_offered: std::collections::BTreeMap<String, String>,
}

/// The scope's appliances with their versions, update states and offered releases (not for
/// auditors).
pub async fn fleet(pool: &PgPool, scope: &Scope) -> Result<Vec<FleetRow>, ScopeError> {
    scope.sees_operations()?;
    // Every appliance in scope (the filter only has to use the bound parameter).
    let appliances = appliances_where(pool, scope, "$3::bigint IS NOT NULL", 0).await?;
    let practice_of: std::collections::BTreeMap<i64, i64> = sqlx::query_as(
        "SELECT a.id, s.practice_id FROM appliances a JOIN sites s ON s.id = a.site_id WHERE a.partner_id = $1",
    )
    .bind(scope.partner_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let rollouts = crate::fleet::partner_rollouts(pool, scope.partner_id).await?;
    let agent_rollouts = crate::agent_fleet::partner_rollouts(pool, scope.partner_id).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(appliances
        .into_iter()
        .map(|a| {
            let practice_id = practice_of.get(&a.id).copied().unwrap_or_default();
            FleetRow {
                offered: crate::fleet::offer(&rollouts, &a.appliance_key, practice_id, now)
                    .map(|r| r.version.to_string()),
                agents_offered: crate::agent_fleet::offers(
                    &agent_rollouts,
                    &a.appliance_key,
                    practice_id,
                )
                .into_iter()
                .map(|(platform, r)| (platform.to_string(), r.version.to_string()))
                .collect(),
                appliance_id: a.id,
                site_id: a.site_id,
                practice_id,
                last_seen: a.last_seen,
                software_version: a.software_version,
                update: a.update,
            }
        })
        .collect())
}

/// A partner's escalation channel, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelRow {
    /// Name.
    pub name: String,
    /// `slack`, `teams`, `pagerduty` or `webhook`.
    pub kind: String,
    /// The least severity it receives.
    pub min_severity: String,
    /// A webhook's URL.
    pub url: Option<String>,
    /// An e-mail channel's server, addresses and login (never its password).
    pub email: Option<serde_json::Value>,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A channel to set: its secret arrives in the clear over HTTPS and is sealed before it is kept.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// 1–48 of `a-z 0-9 - _`.
    pub name: String,
    /// `slack`, `teams`, `pagerduty` or `webhook`.
    pub kind: String,
    /// `low`, `medium`, `high` or `critical` (default `high`).
    #[serde(default = "default_min_severity")]
    pub min_severity: String,
    /// For `webhook`: the https URL to POST to.
    #[serde(default)]
    pub url: Option<String>,
    /// For `email`: server, port, security, from, to and the SMTP login.
    #[serde(default)]
    pub email: Option<link_proto::EmailSettings>,
    /// The Slack or Teams webhook URL, the PagerDuty routing key, the webhook signing secret, or
    /// the SMTP password.
    #[serde(deserialize_with = "zeroizing")]
    pub secret: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for NewChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewChannel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn zeroizing<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<zeroize::Zeroizing<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(deserializer).map(zeroize::Zeroizing::new)
}

fn default_min_severity() -> String {
    "high".to_owned()
}

/// The `info` a channel secret is sealed with at rest.
pub fn channel_at_rest_info(partner_id: i64, name: &str) -> Vec<u8> {
    format!("osiris-central/channel-secret-at-rest/v1\n{partner_id}\n{name}").into_bytes()
}

/// Sets (adds or replaces) one of the partner's escalation channels (partner administrators),
/// its secret sealed to `at_rest` (Central Command's key); recorded in the audit log without
/// the secret. Every appliance of the partner takes it at its next contact.
pub async fn set_channel(
    pool: &PgPool,
    scope: &Scope,
    at_rest_public: &str,
    channel: &NewChannel,
) -> Result<(), ScopeError> {
    scope.administers()?;
    let invalid = |m: String| Err(ScopeError::Invalid(m));
    if !link_proto::is_channel_name(&channel.name) {
        return invalid(format!(
            "channel name `{}`: 1-48 of a-z, 0-9, - and _",
            channel.name.escape_debug()
        ));
    }
    if !link_proto::CHANNEL_KINDS.contains(&channel.kind.as_str()) {
        return invalid(format!(
            "channel kind `{}`: one of slack, teams, pagerduty, webhook, email",
            channel.kind.escape_debug()
        ));
    }
    if !link_proto::SEVERITIES.contains(&channel.min_severity.as_str()) {
        return invalid(format!(
            "min_severity `{}`: one of low, medium, high, critical",
            channel.min_severity.escape_debug()
        ));
    }
    let https =
        |u: &str| u.starts_with("https://") && u.len() <= 2048 && !u.chars().any(char::is_control);
    match (channel.kind.as_str(), &channel.url) {
        ("webhook", Some(url)) if https(url) => {}
        ("webhook", _) => {
            return invalid("a webhook channel needs url = an https:// address".into());
        }
        (_, Some(_)) => {
            return invalid(
                "only a webhook channel takes url (the others' URL is their secret)".into(),
            );
        }
        _ => {}
    }
    match (channel.kind.as_str(), &channel.email) {
        ("email", Some(email)) => {
            if let Some(problem) = email.problem() {
                return invalid(problem);
            }
        }
        ("email", None) => {
            return invalid(
                "an email channel needs email = {server, port, security, from, to, username}"
                    .into(),
            );
        }
        (_, Some(_)) => return invalid("only an email channel takes email settings".into()),
        _ => {}
    }
    let secret = channel.secret.trim();
    let secret_ok = match channel.kind.as_str() {
        "slack" | "teams" => https(secret),
        _ => !secret.is_empty() && secret.len() <= 2048 && !secret.chars().any(char::is_control),
    };
    if !secret_ok {
        return invalid(match channel.kind.as_str() {
            "slack" | "teams" => "secret: the incoming-webhook https:// URL".to_owned(),
            "pagerduty" => "secret: the integration's routing key".to_owned(),
            "email" => "secret: the SMTP password".to_owned(),
            _ => "secret: the signing secret (1-2048 characters)".to_owned(),
        });
    }
    let sealed = link_proto::seal::seal(
        at_rest_public,
        secret.as_bytes(),
        &channel_at_rest_info(scope.partner_id, &channel.name),
    )
    .map_err(|err| ScopeError::Invalid(err.to_string()))?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO partner_channels (partner_id, name, kind, min_severity, url, secret_sealed, updated_by, email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (partner_id, name) DO UPDATE SET kind = EXCLUDED.kind, min_severity = EXCLUDED.min_severity,
             url = EXCLUDED.url, secret_sealed = EXCLUDED.secret_sealed, updated_at = now(),
             updated_by = EXCLUDED.updated_by, email = EXCLUDED.email",
    )
    .bind(scope.partner_id)
    .bind(&channel.name)
    .bind(&channel.kind)
    .bind(&channel.min_severity)
    .bind(&channel.url)
    .bind(serde_json::json!(sealed))
    .bind(format!("user:{}", scope.user_id))
    .bind(channel.email.as_ref().map(|e| serde_json::json!(e)))
    .execute(&mut *tx)
    .await?;
    record(
        &mut tx,
        scope,
        "channel.set",
        serde_json::json!({"name": channel.name, "kind": channel.kind, "min_severity": channel.min_severity}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The partner's channels (partner roles), never their secrets.
pub async fn channels(pool: &PgPool, scope: &Scope) -> Result<Vec<ChannelRow>, ScopeError> {
    use sqlx::Row;
    scope.may_change()?;
    let sql = format!(
        "SELECT name, kind, min_severity, url, email, to_char(updated_at AT TIME ZONE 'UTC', {TS}) AS updated_at
         FROM partner_channels WHERE partner_id = $1 ORDER BY name"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ChannelRow {
                name: row.try_get("name")?,
                kind: row.try_get("kind")?,
                min_severity: row.try_get("min_severity")?,
                url: row.try_get("url")?,
                email: row.try_get("email")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Removes one of the partner's channels (partner administrators); appliances drop it at their
/// next contact.
pub async fn delete_channel(pool: &PgPool, scope: &Scope, name: &str) -> Result<(), ScopeError> {
    scope.administers()?;
    let mut tx = pool.begin().await?;
    let gone = sqlx::query("DELETE FROM partner_channels WHERE partner_id = $1 AND name = $2")
        .bind(scope.partner_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if gone.rows_affected() == 0 {
        return Err(ScopeError::NotFound);
    }
    record(
        &mut tx,
        scope,
        "channel.delete",
        serde_json::json!({"name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    scope: &Scope,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(scope.partner_id)
    .bind(format!("user:{}", scope.user_id))
    .bind(action)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

mod dashboard;
mod incident;
pub use dashboard::*;
pub use incident::*;

//! One incident and what partner users do about it (acknowledge, assign, comment): the actions
//! are kept, audit-logged, and handed to the incident's appliance over the link
//! (`link::operator_actions`), which seals each as evidence and says as which bundle, so a page
//! can tell "sealed on the appliance as bundle #N" from "waiting for the appliance".

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::scope::{IncidentRow, SITE_IN_SCOPE, Scope, ScopeError, TS, record};

/// At most this many actions wait for one appliance at a time.
pub const MAX_WAITING_ACTIONS: i64 = 200;
/// At most this many actions are kept per incident.
pub const MAX_ACTIONS_PER_INCIDENT: i64 = 500;

/// Names one incident: the appliance, its incident id and its opening time (POSIX seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentKey {
    /// The appliance that reported it.
    pub appliance_id: i64,
    /// The appliance's incident id.
    pub incident_id: i64,
    /// When it opened (POSIX seconds): ids start again if an appliance's state is reset.
    pub opened_at: i64,
}

/// What a partner user does about an incident; as JSON `{"action": "acknowledge"}`,
/// `{"action": "assign", "to": "…"}` or `{"action": "comment", "text": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ActionBody")]
pub enum IncidentAction {
    /// Someone is on it: the appliance acknowledges the incident too (reminders stop).
    Acknowledge,
    /// Puts a partner user in charge.
    Assign {
        /// The e-mail address of a partner administrator or technician of the same partner.
        to: String,
    },
    /// Adds a note.
    Comment {
        /// 1–2000 characters, no control characters but line breaks; trimmed. Kept verbatim:
        /// escaping is the page's job.
        text: String,
    },
}

/// An [`IncidentAction`] as JSON. Read through this struct rather than serde's internally tagged
/// enum, which would let unknown members of `{"action": "acknowledge", …}` through.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

impl TryFrom<ActionBody> for IncidentAction {
    type Error = String;

    fn try_from(body: ActionBody) -> Result<IncidentAction, String> {
        match (body.action.as_str(), body.to, body.text) {
            ("acknowledge", None, None) => Ok(IncidentAction::Acknowledge),
            ("assign", Some(to), None) => Ok(IncidentAction::Assign { to }),
            ("comment", None, Some(text)) => Ok(IncidentAction::Comment { text }),
            ("acknowledge" | "assign" | "comment", _, _) => Err(
                "acknowledge takes nothing more, assign takes `to`, comment takes `text`"
                    .to_owned(),
            ),
            (other, _, _) => Err(format!(
                "unknown action `{}`: acknowledge, assign or comment",
                other.chars().take(40).collect::<String>().escape_debug()
            )),
        }
    }
}

/// One action on an incident, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRow {
    /// Id.
    pub id: i64,
    /// When it was done (RFC 3339).
    pub at: String,
    /// Who did it (e-mail).
    pub by: String,
    /// `acknowledge`, `assign` or `comment`.
    pub kind: String,
    /// For `assign`: who is in charge now (e-mail).
    pub assignee: Option<String>,
    /// For `comment`: the comment, verbatim.
    pub text: Option<String>,
    /// When the appliance was first handed it (RFC 3339).
    pub delivered_at: Option<String>,
    /// The sequence number of the evidence bundle that seals it on the appliance; `None` while
    /// it waits for the appliance.
    pub sealed_seq: Option<i64>,
    /// When the appliance sealed it (RFC 3339, the appliance's clock).
    pub sealed_at: Option<String>,
}

/// An incident with where it is and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentDetail {
    /// Its site.
    pub site_id: i64,
    /// The site's name.
    pub site_name: String,
    /// The site's practice's name.
    pub practice: String,
    /// The incident as its appliance last reported it.
    pub incident: IncidentRow,
    /// What partner users did about it, oldest first.
    pub actions: Vec<ActionRow>,
    /// Who is in charge: the latest assignment's assignee.
    pub assignee: Option<String>,
}

/// One incident with its actions (not for auditors: they do not see operations). Another
/// tenant's incident is not found.
pub async fn incident_detail(
    pool: &PgPool,
    scope: &Scope,
    key: IncidentKey,
) -> Result<IncidentDetail, ScopeError> {
    scope.sees_operations()?;
    let found = find_incident(pool, scope, key)
        .await?
        .ok_or(ScopeError::NotFound)?;
    let actions = actions_of(pool, scope, key).await?;
    let assignee = actions
        .iter()
        .rev()
        .find(|action| action.kind == "assign")
        .and_then(|action| action.assignee.clone());
    Ok(IncidentDetail {
        site_id: found.site_id,
        site_name: found.site_name,
        practice: found.practice,
        incident: found.incident,
        actions,
        assignee,
    })
}

/// Acknowledges, assigns or comments on an incident (partner roles), recorded in the audit log
/// in the same transaction; the incident's appliance seals it at its next contact. Returns the
/// action's id.
pub async fn act_on_incident(
    pool: &PgPool,
    scope: &Scope,
    key: IncidentKey,
    action: IncidentAction,
) -> Result<i64, ScopeError> {
    scope.may_change()?;
    let text = match &action {
        IncidentAction::Comment { text } => {
            let text = link_proto::normalize_comment(text);
            if let Some(problem) = link_proto::comment_problem(&text) {
                return Err(ScopeError::Invalid(problem));
            }
            Some(text)
        }
        IncidentAction::Acknowledge | IncidentAction::Assign { .. } => None,
    };
    let mut tx = pool.begin().await?;
    let found = find_incident(&mut *tx, scope, key)
        .await?
        .ok_or(ScopeError::NotFound)?;
    // One action on an incident at a time: two acknowledgements cannot both pass the checks
    // below.
    sqlx::query(
        "SELECT 1 FROM incidents WHERE appliance_id = $1 AND incident_id = $2
             AND opened_at = to_timestamp($3) FOR UPDATE",
    )
    .bind(key.appliance_id)
    .bind(key.incident_id)
    .bind(key.opened_at as f64)
    .execute(&mut *tx)
    .await?;
    let assignee = match &action {
        IncidentAction::Assign { to } => {
            Some(assignee(&mut tx, scope, to, found.practice_id).await?)
        }
        IncidentAction::Acknowledge | IncidentAction::Comment { .. } => None,
    };
    let kind = match &action {
        IncidentAction::Acknowledge => "acknowledge",
        IncidentAction::Assign { .. } => "assign",
        IncidentAction::Comment { .. } => "comment",
    };
    let (waiting, on_incident, ack_waiting): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE sealed_seq IS NULL),
                count(*) FILTER (WHERE incident_id = $2 AND opened_at = to_timestamp($3)),
                count(*) FILTER (WHERE incident_id = $2 AND opened_at = to_timestamp($3)
                                   AND kind = 'acknowledge' AND sealed_seq IS NULL)
         FROM incident_actions WHERE appliance_id = $1",
    )
    .bind(key.appliance_id)
    .bind(key.incident_id)
    .bind(key.opened_at as f64)
    .fetch_one(&mut *tx)
    .await?;
    if waiting >= MAX_WAITING_ACTIONS {
        return Err(ScopeError::Conflict(format!(
            "{waiting} actions already wait for this appliance; they are sealed at its next contact"
        )));
    }
    if on_incident >= MAX_ACTIONS_PER_INCIDENT {
        return Err(ScopeError::Conflict(format!(
            "this incident already has {on_incident} actions, the most it keeps"
        )));
    }
    if kind == "acknowledge" && found.incident.acknowledged {
        return Err(ScopeError::Conflict(
            "this incident is already acknowledged on the appliance".to_owned(),
        ));
    }
    if kind == "acknowledge" && ack_waiting > 0 {
        return Err(ScopeError::Conflict(
            "an acknowledgement of this incident already waits for the appliance".to_owned(),
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incident_actions (partner_id, appliance_id, incident_id, opened_at, kind, by_user,
             assignee_user, text)
         VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7, $8) RETURNING id",
    )
    .bind(scope.partner_id)
    .bind(key.appliance_id)
    .bind(key.incident_id)
    .bind(key.opened_at as f64)
    .bind(kind)
    .bind(scope.user_id)
    .bind(assignee.as_ref().map(|(id, _)| *id))
    .bind(&text)
    .fetch_one(&mut *tx)
    .await?;
    // The comment itself is in the action's row, not repeated in the audit log.
    record(
        &mut tx,
        scope,
        &format!("incident.{kind}"),
        serde_json::json!({
            "action_id": id,
            "appliance_id": key.appliance_id,
            "incident_id": key.incident_id,
            "opened_at": key.opened_at,
            "assignee": assignee.map(|(_, email)| email),
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        action_id = id,
        kind,
        appliance_id = key.appliance_id,
        incident_id = key.incident_id,
        "Incident action recorded; it waits for the appliance."
    );
    Ok(id)
}

/// The e-mail addresses of the partner's administrators and technicians whose access has not
/// expired (whom an incident can be assigned to), sorted (partner roles).
pub async fn partner_people(pool: &PgPool, scope: &Scope) -> Result<Vec<String>, ScopeError> {
    scope.may_change()?;
    let people: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM users
         WHERE partner_id = $1 AND role IN ('partner_admin', 'partner_technician')
           AND (expires_at IS NULL OR expires_at > now())
           AND ($2::bigint IS NULL OR practice_id IS NULL OR practice_id = $2)
         ORDER BY email",
    )
    .bind(scope.partner_id)
    .bind(scope.practice_id)
    .fetch_all(pool)
    .await?;
    Ok(people)
}

/// An incident found in the scope, with its site.
struct Found {
    site_id: i64,
    site_name: String,
    practice: String,
    practice_id: i64,
    incident: IncidentRow,
}

async fn find_incident<'e>(
    db: impl sqlx::PgExecutor<'e>,
    scope: &Scope,
    key: IncidentKey,
) -> Result<Option<Found>, ScopeError> {
    use sqlx::Row;
    let columns = super::incident_columns();
    let sql = format!(
        "SELECT s.id AS site_id, s.name AS site_name, p.name AS practice, p.id AS practice_id,
                {columns}
         FROM incidents i JOIN appliances a ON a.id = i.appliance_id JOIN sites s ON s.id = a.site_id
              JOIN practices p ON p.id = s.practice_id
         WHERE {SITE_IN_SCOPE} AND i.appliance_id = $3 AND i.incident_id = $4
           AND i.opened_at = to_timestamp($5)"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(scope.practice_id)
        .bind(key.appliance_id)
        .bind(key.incident_id)
        .bind(key.opened_at as f64)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Found {
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        practice: row.try_get("practice")?,
        practice_id: row.try_get("practice_id")?,
        incident: IncidentRow::read(&row)?,
    }))
}

/// The actions on one incident, oldest first (the caller found the incident in the scope).
async fn actions_of(
    pool: &PgPool,
    scope: &Scope,
    key: IncidentKey,
) -> Result<Vec<ActionRow>, ScopeError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT x.id, to_char(x.created_at AT TIME ZONE 'UTC', {TS}) AS at, u.email AS by, x.kind,
                v.email AS assignee, x.text,
                to_char(x.delivered_at AT TIME ZONE 'UTC', {TS}) AS delivered_at, x.sealed_seq,
                to_char(x.sealed_at AT TIME ZONE 'UTC', {TS}) AS sealed_at
         FROM incident_actions x JOIN users u ON u.id = x.by_user
              LEFT JOIN users v ON v.id = x.assignee_user
         WHERE x.partner_id = $1 AND x.appliance_id = $2 AND x.incident_id = $3
           AND x.opened_at = to_timestamp($4)
         ORDER BY x.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.partner_id)
        .bind(key.appliance_id)
        .bind(key.incident_id)
        .bind(key.opened_at as f64)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ActionRow {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                by: row.try_get("by")?,
                kind: row.try_get("kind")?,
                assignee: row.try_get("assignee")?,
                text: row.try_get("text")?,
                delivered_at: row.try_get("delivered_at")?,
                sealed_seq: row.try_get("sealed_seq")?,
                sealed_at: row.try_get("sealed_at")?,
            })
        })
        .collect()
}

/// The partner user `to` names, if they may be put in charge of an incident of practice
/// `practice_id`: a partner administrator or technician of the scope's partner, not expired,
/// seeing that practice. Returns (id, e-mail).
async fn assignee(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    scope: &Scope,
    to: &str,
    practice_id: i64,
) -> Result<(i64, String), ScopeError> {
    let to = to.trim();
    if to.is_empty() {
        return Err(ScopeError::Invalid(
            "assign needs `to`: the e-mail address of one of your partner administrators or technicians"
                .to_owned(),
        ));
    }
    let shown: String = to
        .chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let found: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, email, practice_id FROM users
         WHERE partner_id = $1 AND lower(email) = lower($2)
           AND role IN ('partner_admin', 'partner_technician')
           AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(scope.partner_id)
    .bind(to)
    .fetch_optional(&mut **tx)
    .await?;
    match found {
        None => Err(ScopeError::Invalid(format!(
            "`{shown}` is not one of your partner administrators or technicians; assign the incident to one of them"
        ))),
        Some((_, _, Some(their))) if their != practice_id => Err(ScopeError::Invalid(format!(
            "`{shown}` sees only another practice; assign the incident to someone who sees this site"
        ))),
        Some((id, email, _)) => Ok((id, email)),
    }
}

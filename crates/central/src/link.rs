//! The appliance link, server side: enrollment by claim code, certificate pickup, and in-order
//! pushes over mutual TLS (docs/CENTRAL-PROTOCOL.md). Appliances always connect out to here.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence::{VerifierKey, WitnessKey};
use link_proto::{
    EnrollRequest, EnrollResponse, ErrorBody, PickupRequest, PickupResponse, PushItem, PushRequest,
    PushResponse,
};
use sqlx::PgPool;
use zeroize::Zeroizing;

pub mod packets;

use crate::link_ca::{LinkCa, ed25519_from_spki};
use crate::witness::WitnessError;
use crate::witness_store::{self, Outcome, WitnessStoreError};

/// How long an unclaimed enrollment request is kept.
pub const ENROLLMENT_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this many open enrollment requests; more are refused until some expire.
pub const MAX_OPEN_ENROLLMENTS: i64 = 10_000;
/// Clock skew tolerated on signed pickup requests.
pub const MAX_SKEW: u64 = 300;

/// The link's keys, shared by every request.
#[derive(Debug)]
pub struct LinkKeys {
    /// Issues appliance client certificates.
    pub ca: LinkCa,
    /// Cosigns checkpoints.
    pub witness: WitnessKey,
    /// Keeps the partners' escalation-channel secrets sealed at rest (derived from the witness
    /// key file with [`channel_key_from`], so it needs no file of its own).
    pub channels: link_proto::seal::OpeningKey,
}

/// The at-rest key for channel secrets, derived from the witness key file's secret text.
pub fn channel_key_from(witness_key_text: &str) -> link_proto::seal::OpeningKey {
    let ikm = Zeroizing::new(
        [
            b"osiris-central/channel-secrets-at-rest/v1\n".as_slice(),
            witness_key_text.trim().as_bytes(),
        ]
        .concat(),
    );
    link_proto::seal::OpeningKey::derive(&ikm)
}

/// The SHA-256 of the client certificate the TLS layer verified against the link CA, if the
/// peer presented one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCert(pub Option<[u8; 32]>);

/// What the link handlers need.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// The database.
    pub pool: PgPool,
    /// The CA and witness keys.
    pub keys: Arc<LinkKeys>,
}

/// An error answer: status and words (JSON [`ErrorBody`]).
#[derive(Debug)]
pub struct LinkError {
    status: StatusCode,
    body: ErrorBody,
}

impl LinkError {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> LinkError {
        LinkError {
            status,
            body: ErrorBody {
                error: error.into(),
                next_seq: None,
                witness_size: None,
            },
        }
    }

    fn bad(error: impl Into<String>) -> LinkError {
        LinkError::new(StatusCode::BAD_REQUEST, error)
    }
}

impl From<sqlx::Error> for LinkError {
    fn from(err: sqlx::Error) -> LinkError {
        tracing::warn!(error = %err, "link request: database unavailable");
        LinkError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; keep the item queued and retry",
        )
    }
}

impl IntoResponse for LinkError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn decode(field: &str, text: &str) -> Result<Vec<u8>, LinkError> {
    BASE64
        .decode(text)
        .map_err(|_| LinkError::bad(format!("{field} is not standard base64")))
}

/// `POST /v1/link/enroll`.
pub async fn enroll(
    State(state): State<LinkState>,
    Json(request): Json<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollResponse>), LinkError> {
    let key: VerifierKey = request
        .appliance_key
        .parse()
        .map_err(|err| LinkError::bad(format!("appliance_key: {err}")))?;
    let spki = decode("tls_public_key", &request.tls_public_key)?;
    ed25519_from_spki(&spki)
        .ok_or_else(|| LinkError::bad("tls_public_key must be an Ed25519 SubjectPublicKeyInfo"))?;
    let proof = decode("claim_proof", &request.claim_proof)?;
    if proof.len() != 32 {
        return Err(LinkError::bad("claim_proof must be 32 bytes"));
    }
    let message = link_proto::enroll_message(&request.appliance_key, &request.tls_public_key);
    if !link_proto::verify_appliance_signature(&key, &message, &request.signature) {
        return Err(LinkError::new(
            StatusCode::UNAUTHORIZED,
            "the signature does not verify with appliance_key",
        ));
    }
    let mut tx = state.pool.begin().await?;
    let claimed: Option<i64> =
        sqlx::query_scalar("SELECT id FROM appliances WHERE appliance_key = $1")
            .bind(&request.appliance_key)
            .fetch_optional(&mut *tx)
            .await?;
    if claimed.is_some() {
        return Err(LinkError::new(
            StatusCode::CONFLICT,
            "this appliance is already claimed; collect its certificate, or ask the partner to release it",
        ));
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM enrollments WHERE appliance_id IS NULL AND expires_at > now()",
    )
    .fetch_one(&mut *tx)
    .await?;
    if open >= MAX_OPEN_ENROLLMENTS {
        return Err(LinkError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open enrollment requests; retry later",
        ));
    }
    let ttl = i64::try_from(ENROLLMENT_TTL.as_secs()).unwrap_or(86_400);
    let (id, expires_at): (i64, String) = sqlx::query_as(
        "INSERT INTO enrollments (appliance_key, tls_public_key, claim_proof, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         RETURNING id, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .bind(&request.appliance_key)
    .bind(&spki)
    .bind(&proof)
    .bind(ttl as f64)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        enrollment_id = id,
        appliance = key.name(),
        "enrollment requested"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(EnrollResponse {
            enrollment_id: id,
            expires_at,
        }),
    ))
}

/// `POST /v1/link/certificate`.
pub async fn pickup(
    State(state): State<LinkState>,
    Json(request): Json<PickupRequest>,
) -> Result<Json<PickupResponse>, LinkError> {
    if now().abs_diff(request.time) > MAX_SKEW {
        return Err(LinkError::bad(
            "time is more than 5 minutes from Central Command's clock; check the appliance's time",
        ));
    }
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT appliance_key, appliance_id FROM enrollments WHERE id = $1")
            .bind(request.enrollment_id)
            .fetch_optional(&state.pool)
            .await?;
    let unknown = || LinkError::new(StatusCode::NOT_FOUND, "no such enrollment; enroll again");
    let (key_text, appliance_id) = row.ok_or_else(unknown)?;
    let key: VerifierKey = key_text.parse().map_err(|_| unknown())?;
    let message = link_proto::pickup_message(request.enrollment_id, request.time);
    if !link_proto::verify_appliance_signature(&key, &message, &request.signature) {
        // The same answer as an unknown id: nobody learns which enrollments exist.
        return Err(unknown());
    }
    let Some(appliance_id) = appliance_id else {
        return Ok(Json(PickupResponse {
            status: "pending".into(),
            appliance_id: None,
            certificate_pem: None,
            witness_key: None,
        }));
    };
    let cert: Vec<u8> = sqlx::query_scalar("SELECT certificate FROM appliances WHERE id = $1")
        .bind(appliance_id)
        .fetch_one(&state.pool)
        .await?;
    Ok(Json(PickupResponse {
        status: "issued".into(),
        appliance_id: Some(appliance_id),
        certificate_pem: Some(der_to_pem(&cert)),
        witness_key: Some(state.keys.witness.verifier().to_string()),
    }))
}

/// `POST /v1/link/push` (mutual TLS).
pub async fn push(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    Json(request): Json<PushRequest>,
) -> Result<Json<PushResponse>, LinkError> {
    let Some(cert_sha) = peer.0 else {
        return Err(LinkError::new(
            StatusCode::UNAUTHORIZED,
            "pushes need the appliance's client certificate (mutual TLS)",
        ));
    };
    let mut tx = state.pool.begin().await?;
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, next_seq FROM appliances WHERE cert_sha256 = $1 FOR UPDATE")
            .bind(cert_sha.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
    let (appliance_id, next_seq) = row.ok_or_else(|| {
        LinkError::new(
            StatusCode::FORBIDDEN,
            "this certificate belongs to no appliance here (released, or issued by another Central Command)",
        )
    })?;
    let next_seq = u64::try_from(next_seq).unwrap_or(u64::MAX);
    if request.seq != next_seq {
        let mut err = LinkError::new(
            StatusCode::CONFLICT,
            if request.seq < next_seq {
                format!(
                    "item {} was already received; send item {next_seq}",
                    request.seq
                )
            } else {
                format!(
                    "items must arrive in order: send item {next_seq} before {}",
                    request.seq
                )
            },
        );
        err.body.next_seq = Some(next_seq);
        return Err(err);
    }
    let mut response = PushResponse {
        next_seq: next_seq + 1,
        cosignature: None,
        witness_size: None,
    };
    match request.item {
        PushItem::Checkpoint {
            note,
            proof_from,
            proof,
        } => {
            let proof = proof
                .iter()
                .map(|hash| {
                    BASE64
                        .decode(hash)
                        .ok()
                        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                        .ok_or_else(|| {
                            LinkError::bad("every proof hash must be 32 bytes of standard base64")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let outcome = witness_store::push_checkpoint_in(
                &mut tx,
                appliance_id,
                &note,
                proof_from,
                &proof,
                &state.keys.witness,
                now(),
            )
            .await;
            match outcome {
                Ok(Outcome::Cosigned { cosignature }) => response.cosignature = Some(cosignature),
                Ok(Outcome::Fork { reason }) => {
                    // Recorded and alerted; the item is consumed so the queue moves on.
                    advance(&mut tx, appliance_id).await?;
                    tx.commit().await?;
                    let mut err = LinkError::new(
                        StatusCode::CONFLICT,
                        format!(
                            "checkpoint refused as a fork: {reason}; your partner has been alerted"
                        ),
                    );
                    err.body.next_seq = Some(next_seq + 1);
                    return Err(err);
                }
                Err(WitnessStoreError::Refused(refusal)) => {
                    let size = witness_store::head_size(&mut tx, appliance_id).await?;
                    let mut err = LinkError::new(StatusCode::CONFLICT, refusal.to_string());
                    err.body.next_seq = Some(next_seq);
                    err.body.witness_size = size;
                    if matches!(
                        refusal,
                        WitnessError::Invalid(_) | WitnessError::ProofTooLong(_)
                    ) {
                        err.status = StatusCode::BAD_REQUEST;
                    }
                    return Err(err);
                }
                Err(WitnessStoreError::Db(err)) => return Err(err.into()),
                Err(other) => {
                    return Err(LinkError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        other.to_string(),
                    ));
                }
            }
            response.witness_size = witness_store::head_size(&mut tx, appliance_id).await?;
        }
        PushItem::Devices {
            at,
            devices,
            compliance,
        } => {
            check_devices(&devices, &compliance)?;
            store_devices(&mut tx, appliance_id, at, &devices, &compliance).await?;
            response.witness_size = witness_store::head_size(&mut tx, appliance_id).await?;
        }
        PushItem::Incidents { incidents } => {
            check_incidents(&incidents)?;
            store_incidents(&mut tx, appliance_id, &incidents).await?;
            response.witness_size = witness_store::head_size(&mut tx, appliance_id).await?;
        }
        PushItem::Healing { entries } => {
            check_healing(&entries)?;
            store_healing(&mut tx, appliance_id, &entries).await?;
            response.witness_size = witness_store::head_size(&mut tx, appliance_id).await?;
        }
        PushItem::Update { state } => {
            check_update(&state)?;
            sqlx::query(
                "UPDATE appliances SET software_version = $2, update_state = $3, update_available = $4,
                     update_detail = $5, update_observed_at = now(),
                     ots_pending = coalesce($6, ots_pending), ots_anchored = coalesce($7, ots_anchored)
                 WHERE id = $1",
            )
            .bind(appliance_id)
            .bind(&state.current)
            .bind(&state.state)
            .bind(&state.available)
            .bind(&state.detail)
            .bind(state.ots.map(|o| i64::try_from(o.pending).unwrap_or(i64::MAX)))
            .bind(state.ots.map(|o| i64::try_from(o.anchored).unwrap_or(i64::MAX)))
            .execute(&mut *tx)
            .await?;
            response.witness_size = witness_store::head_size(&mut tx, appliance_id).await?;
        }
    }
    advance(&mut tx, appliance_id).await?;
    tx.commit().await?;
    Ok(Json(response))
}

const CLASSES: [&str; 3] = ["windows_server", "workstation", "linux"];
const STATUSES: [&str; 4] = ["compliant", "drifted", "error", "unknown"];

/// Refuses a snapshot Central Command would not store whole: too many devices, a name with
/// control characters, an unknown class or status, a check id that is not one.
fn check_devices(
    devices: &[link_proto::DeviceSummary],
    compliance: &[link_proto::FrameworkSummary],
) -> Result<(), LinkError> {
    if devices.len() > link_proto::MAX_DEVICES {
        return Err(LinkError::bad(format!(
            "{} devices in one snapshot; at most {}",
            devices.len(),
            link_proto::MAX_DEVICES
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    for device in devices {
        let shown = device.name.escape_debug().to_string();
        if !link_proto::is_plain_name(&device.name) {
            return Err(LinkError::bad(format!(
                "device name `{shown}`: 1-255 characters, no control characters"
            )));
        }
        if !names.insert(device.name.to_lowercase()) {
            return Err(LinkError::bad(format!("device `{shown}` is listed twice")));
        }
        if !CLASSES.contains(&device.class.as_str()) || !STATUSES.contains(&device.status.as_str())
        {
            return Err(LinkError::bad(format!(
                "device `{shown}`: unknown class or status"
            )));
        }
        let is_check_id = |id: &String| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if device
            .unchecked
            .as_deref()
            .is_some_and(|reason| !link_proto::UNCHECKED_REASONS.contains(&reason))
        {
            return Err(LinkError::bad(format!(
                "device `{shown}`: unchecked must be one of {}",
                link_proto::UNCHECKED_REASONS.join(", ")
            )));
        }
        if device.failing.len() > 1000 || !device.failing.iter().all(is_check_id) {
            return Err(LinkError::bad(format!(
                "device `{shown}`: failing must list check ids"
            )));
        }
    }
    for score in compliance {
        if !link_proto::is_plain_name(&score.framework)
            || score.framework.len() > 64
            || score.permille.is_some_and(|p| p > 1000)
        {
            return Err(LinkError::bad(
                "compliance: a framework name of at most 64 characters and a permille of 0-1000",
            ));
        }
    }
    Ok(())
}

/// [`store_devices`] in a transaction of its own (for `bench-pages`, which times it).
pub async fn store_snapshot(
    pool: &sqlx::PgPool,
    appliance_id: i64,
    at: i64,
    devices: &[link_proto::DeviceSummary],
    compliance: &[link_proto::FrameworkSummary],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    store_devices(&mut tx, appliance_id, at, devices, compliance).await?;
    tx.commit().await
}

/// Replaces the appliance's device snapshot, appends its compliance scores, keeps each
/// device's verdict history (only changes) and the day's compliance, and refreshes the
/// appliance's counts the overview reads.
async fn store_devices(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    at: i64,
    devices: &[link_proto::DeviceSummary],
    compliance: &[link_proto::FrameworkSummary],
) -> Result<(), sqlx::Error> {
    let names: Vec<String> = devices.iter().map(|d| d.name.clone()).collect();
    sqlx::query("DELETE FROM devices WHERE appliance_id = $1 AND NOT (name = ANY($2))")
        .bind(appliance_id)
        .bind(&names)
        .execute(&mut **tx)
        .await?;
    let column = |f: fn(&link_proto::DeviceSummary) -> serde_json::Value| -> serde_json::Value {
        serde_json::Value::Array(devices.iter().map(f).collect())
    };
    // One statement for the whole snapshot: the history gets a row for every device whose
    // verdict or failing checks changed (or that is new), then the snapshot is upserted.
    let rows = serde_json::json!({
        "name": column(|d| serde_json::json!(d.name)),
        "class": column(|d| serde_json::json!(d.class)),
        "status": column(|d| serde_json::json!(d.status)),
        "last_scan_at": column(|d| serde_json::json!(d.last_scan_at)),
        "checks_total": column(|d| serde_json::json!(d.checks_total)),
        "checks_failed": column(|d| serde_json::json!(d.checks_failed)),
        "failing": column(|d| serde_json::json!(d.failing)),
        "unchecked": column(|d| serde_json::json!(d.unchecked)),
    });
    sqlx::query(
        "WITH input AS (
             SELECT n.name, c.class, st.status, ls.last_scan_at, t.checks_total, cf.checks_failed, f.failing, u.unchecked
             FROM jsonb_array_elements_text($2->'name') WITH ORDINALITY n(name, i)
             JOIN jsonb_array_elements_text($2->'class') WITH ORDINALITY c(class, i) USING (i)
             JOIN jsonb_array_elements_text($2->'status') WITH ORDINALITY st(status, i) USING (i)
             JOIN jsonb_array_elements($2->'last_scan_at') WITH ORDINALITY ls(last_scan_at, i) USING (i)
             JOIN jsonb_array_elements($2->'checks_total') WITH ORDINALITY t(checks_total, i) USING (i)
             JOIN jsonb_array_elements($2->'checks_failed') WITH ORDINALITY cf(checks_failed, i) USING (i)
             JOIN jsonb_array_elements($2->'failing') WITH ORDINALITY f(failing, i) USING (i)
             JOIN jsonb_array_elements($2->'unchecked') WITH ORDINALITY u(unchecked, i) USING (i)
         ),
         history AS (
             INSERT INTO device_history (appliance_id, name, observed_at, status, checks_total, failing)
             SELECT $1, i.name, to_timestamp($3), i.status, (i.checks_total)::text::int, i.failing
             FROM input i LEFT JOIN devices d ON d.appliance_id = $1 AND d.name = i.name
             WHERE d.name IS NULL OR d.status <> i.status OR d.failing <> i.failing
             ON CONFLICT DO NOTHING
         )
         INSERT INTO devices (appliance_id, name, class, status, last_scan_at, checks_total, checks_failed, failing, observed_at, unchecked)
         SELECT $1, i.name, i.class, i.status,
                CASE WHEN jsonb_typeof(i.last_scan_at) = 'number' THEN to_timestamp((i.last_scan_at)::text::double precision) END,
                (i.checks_total)::text::int, (i.checks_failed)::text::int, i.failing, to_timestamp($3),
                CASE WHEN jsonb_typeof(i.unchecked) = 'string' THEN i.unchecked #>> '{}' END
         FROM input i
         ON CONFLICT (appliance_id, name) DO UPDATE SET class = EXCLUDED.class, status = EXCLUDED.status,
             last_scan_at = EXCLUDED.last_scan_at, checks_total = EXCLUDED.checks_total,
             checks_failed = EXCLUDED.checks_failed, failing = EXCLUDED.failing,
             observed_at = EXCLUDED.observed_at, unchecked = EXCLUDED.unchecked",
    )
    .bind(appliance_id)
    .bind(rows)
    .bind(at as f64)
    .execute(&mut **tx)
    .await?;
    let mut now = serde_json::Map::new();
    for score in compliance {
        let permille = score.permille.map(|p| i32::try_from(p).unwrap_or(1000));
        now.insert(score.framework.clone(), serde_json::json!(permille));
        sqlx::query(
            "INSERT INTO compliance (appliance_id, framework, permille, observed_at) VALUES ($1, $2, $3, to_timestamp($4))
             ON CONFLICT DO NOTHING",
        )
        .bind(appliance_id)
        .bind(&score.framework)
        .bind(permille)
        .bind(at as f64)
        .execute(&mut **tx)
        .await?;
        // The day's value replaces the appliance's earlier one; the partner's sum moves by the
        // difference (both statements see the row as it was before this one).
        sqlx::query(
            "WITH day AS (SELECT (to_timestamp($4) AT TIME ZONE 'UTC')::date AS d),
             old AS (SELECT permille FROM compliance_daily, day WHERE appliance_id = $1 AND framework = $2 AND day = day.d),
             up AS (
                 INSERT INTO compliance_daily (appliance_id, framework, day, permille)
                 SELECT $1, $2, d, $3 FROM day
                 ON CONFLICT (appliance_id, framework, day) DO UPDATE SET permille = EXCLUDED.permille
             )
             INSERT INTO compliance_daily_partner (partner_id, framework, day, total, reports)
             SELECT a.partner_id, $2, day.d,
                    coalesce($3, 0) - coalesce((SELECT permille FROM old), 0),
                    (CASE WHEN $3 IS NULL THEN 0 ELSE 1 END)
                      - (CASE WHEN (SELECT permille FROM old) IS NULL THEN 0 ELSE 1 END)
             FROM appliances a, day WHERE a.id = $1
             ON CONFLICT (partner_id, framework, day) DO UPDATE
                 SET total = compliance_daily_partner.total + EXCLUDED.total,
                     reports = compliance_daily_partner.reports + EXCLUDED.reports",
        )
        .bind(appliance_id)
        .bind(&score.framework)
        .bind(permille)
        .bind(at as f64)
        .execute(&mut **tx)
        .await?;
    }
    let workstations = devices.iter().filter(|d| d.class == "workstation");
    let checked = |d: &&link_proto::DeviceSummary| d.status == "compliant" || d.status == "drifted";
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "UPDATE appliances SET devices_total = $2, devices_failing = $3, workstations_known = $4,
             workstations_checked = $5, compliance_now = $6, devices_observed_at = to_timestamp($7)
         WHERE id = $1",
    )
    .bind(appliance_id)
    .bind(count(devices.len()))
    .bind(count(
        devices.iter().filter(|d| d.status != "compliant").count(),
    ))
    .bind(count(workstations.clone().count()))
    .bind(count(workstations.filter(checked).count()))
    .bind(serde_json::Value::Object(now))
    .bind(at as f64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The appliance a verified client certificate belongs to: (id, partner, evidence key).
pub(crate) async fn peer_appliance(
    pool: &PgPool,
    peer: PeerCert,
) -> Result<(i64, i64, String), LinkError> {
    let Some(cert_sha) = peer.0 else {
        return Err(LinkError::new(
            StatusCode::UNAUTHORIZED,
            "this needs the appliance's client certificate (mutual TLS)",
        ));
    };
    sqlx::query_as("SELECT id, partner_id, appliance_key FROM appliances WHERE cert_sha256 = $1")
        .bind(cert_sha.as_slice())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| {
            LinkError::new(
                StatusCode::FORBIDDEN,
                "this certificate belongs to no appliance here (released, or issued by another Central Command)",
            )
        })
}

/// `POST /v1/link/manifest`: the newest release the partner's rollouts offer this appliance.
pub async fn manifest_offer(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::ManifestOffer>, LinkError> {
    let (appliance_id, partner_id, appliance_key) = peer_appliance(&state.pool, peer).await?;
    let practice_id: i64 = sqlx::query_scalar(
        "SELECT s.practice_id FROM appliances a JOIN sites s ON s.id = a.site_id WHERE a.id = $1",
    )
    .bind(appliance_id)
    .fetch_one(&state.pool)
    .await?;
    let rollouts = crate::fleet::partner_rollouts(&state.pool, partner_id).await?;
    let now = i64::try_from(now()).unwrap_or(i64::MAX);
    let offered = crate::fleet::offer(&rollouts, &appliance_key, practice_id, now);
    Ok(Json(link_proto::ManifestOffer {
        version: offered.map(|r| r.version.to_string()),
        manifest: offered.map(|r| String::from_utf8_lossy(&r.manifest).into_owned()),
    }))
}

/// The agent releases the partner's rollouts offer the appliance of `peer`, per platform.
async fn agent_offers(
    pool: &PgPool,
    peer: PeerCert,
) -> Result<Vec<crate::agent_fleet::AgentRollout>, LinkError> {
    let (appliance_id, partner_id, appliance_key) = peer_appliance(pool, peer).await?;
    let practice_id: i64 = sqlx::query_scalar(
        "SELECT s.practice_id FROM appliances a JOIN sites s ON s.id = a.site_id WHERE a.id = $1",
    )
    .bind(appliance_id)
    .fetch_one(pool)
    .await?;
    let rollouts = crate::agent_fleet::partner_rollouts(pool, partner_id).await?;
    Ok(
        crate::agent_fleet::offers(&rollouts, &appliance_key, practice_id)
            .into_values()
            .cloned()
            .collect(),
    )
}

/// `POST /v1/link/agent-releases`: per platform, the newest endpoint-agent release the
/// partner's rollouts offer this appliance, with the vendor's document verbatim.
pub async fn agent_release_offers(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::AgentReleaseOffers>, LinkError> {
    let offered = agent_offers(&state.pool, peer).await?;
    let ids: Vec<i64> = offered.iter().map(|r| r.id).collect();
    type Row = (i64, String, String, Vec<u8>, i64, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, platform, version, manifest, size, sha256 FROM agent_releases WHERE id = ANY($1) ORDER BY platform",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(link_proto::AgentReleaseOffers {
        releases: rows
            .into_iter()
            .map(
                |(id, platform, version, manifest, size, sha256)| link_proto::AgentReleaseOffer {
                    id,
                    platform,
                    version,
                    manifest: String::from_utf8_lossy(&manifest).into_owned(),
                    size: u64::try_from(size).unwrap_or(0),
                    sha256: hex::encode(sha256),
                },
            )
            .collect(),
    }))
}

/// `POST /v1/link/agent-releases/{id}/binary`: the binary of an agent release offered to this
/// appliance now; any other id answers 404 (unknown and not offered look the same).
pub async fn agent_release_binary(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<Response, LinkError> {
    let offered = agent_offers(&state.pool, peer).await?;
    let not_offered = || {
        LinkError::new(
            StatusCode::NOT_FOUND,
            format!("agent release {id} is not offered to this appliance"),
        )
    };
    if !offered.iter().any(|r| r.id == id) {
        return Err(not_offered());
    }
    let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM agent_releases WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(not_offered)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response())
}

/// `POST /v1/link/channels`: the partner's escalation channels, each secret opened from its
/// at-rest seal and sealed again to the key the appliance gives (bound to the appliance and the
/// channel), so only that appliance can read it.
pub async fn channels(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    Json(request): Json<link_proto::ChannelsRequest>,
) -> Result<Json<link_proto::ChannelsOffer>, LinkError> {
    let (appliance_id, partner_id, _) = peer_appliance(&state.pool, peer).await?;
    let key_ok = BASE64
        .decode(&request.sealing_key)
        .is_ok_and(|key| key.len() == 32);
    if !key_ok {
        return Err(LinkError::bad(
            "sealing_key must be 32 bytes of standard base64 (an X25519 public key)",
        ));
    }
    sqlx::query("UPDATE appliances SET sealing_key = $2 WHERE id = $1")
        .bind(appliance_id)
        .bind(&request.sealing_key)
        .execute(&state.pool)
        .await?;
    type Row = (
        String,
        String,
        String,
        Option<String>,
        serde_json::Value,
        Option<serde_json::Value>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT name, kind, min_severity, url, secret_sealed, email FROM partner_channels WHERE partner_id = $1 ORDER BY name",
    )
    .bind(partner_id)
    .fetch_all(&state.pool)
    .await?;
    let mut offers = Vec::with_capacity(rows.len());
    for (name, kind, min_severity, url, sealed, email) in rows {
        let internal = |what: String| LinkError::new(StatusCode::INTERNAL_SERVER_ERROR, what);
        let email: Option<link_proto::EmailSettings> = email
            .map(serde_json::from_value)
            .transpose()
            .map_err(|err| {
                internal(format!("channel `{name}`: the kept e-mail settings: {err}"))
            })?;
        let at_rest: link_proto::seal::Sealed = serde_json::from_value(sealed)
            .map_err(|err| internal(format!("channel `{name}`: the kept secret: {err}")))?;
        let secret = state
            .keys
            .channels
            .open(
                &at_rest,
                &crate::scope::channel_at_rest_info(partner_id, &name),
            )
            .map_err(|err| {
                internal(format!(
                    "channel `{name}`: {err} (was the witness key file replaced?); set the channel again"
                ))
            })?;
        let secret = link_proto::seal::seal(
            &request.sealing_key,
            &secret,
            &link_proto::seal::channel_info(appliance_id, &name),
        )
        .map_err(|err| LinkError::bad(err.to_string()))?;
        offers.push(link_proto::ChannelOffer {
            name,
            kind,
            min_severity,
            url,
            email,
            secret,
        });
    }
    Ok(Json(link_proto::ChannelsOffer { channels: offers }))
}

/// `POST /v1/link/kit-requests`: the kits asked of this appliance, oldest first.
pub async fn kit_requests(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::KitRequests>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM kit_requests WHERE appliance_id = $1 AND status = 'pending' ORDER BY id LIMIT 10",
    )
    .bind(appliance_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(link_proto::KitRequests {
        requests: ids
            .into_iter()
            .map(|id| link_proto::KitRequest { id })
            .collect(),
    }))
}

/// `POST /v1/link/operator-actions`: what partner users did about this appliance's incidents
/// and the appliance has not reported sealed yet, oldest first (at most
/// [`link_proto::MAX_OPERATOR_ACTIONS`]). Handing one out again is harmless: the appliance seals
/// each id once and answers a repeat from its record.
pub async fn operator_actions(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::OperatorActions>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    type Row = (
        i64,
        i64,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT x.id, x.incident_id, extract(epoch from x.opened_at)::bigint, x.kind, u.email,
                v.email, x.text, extract(epoch from x.created_at)::bigint
         FROM incident_actions x JOIN users u ON u.id = x.by_user
              LEFT JOIN users v ON v.id = x.assignee_user
         WHERE x.appliance_id = $1 AND x.sealed_seq IS NULL
         ORDER BY x.id LIMIT $2",
    )
    .bind(appliance_id)
    .bind(i64::try_from(link_proto::MAX_OPERATOR_ACTIONS).unwrap_or(50))
    .fetch_all(&state.pool)
    .await?;
    let mut actions = Vec::with_capacity(rows.len());
    for (id, incident, opened_at, kind, by, assignee, text, at) in rows {
        let action = link_proto::OperatorAction {
            id,
            incident: u64::try_from(incident).unwrap_or(u64::MAX),
            opened_at,
            kind,
            by,
            assignee,
            text,
            at,
        };
        match action.problem() {
            None => actions.push(action),
            // Kept only after the same checks; an ERROR: an operator must look at the row.
            Some(problem) => tracing::error!(
                appliance_id,
                action_id = id,
                %problem,
                "A kept operator action is not one; it is not handed out."
            ),
        }
    }
    let ids: Vec<i64> = actions.iter().map(|action| action.id).collect();
    sqlx::query(
        "UPDATE incident_actions SET delivered_at = now()
         WHERE appliance_id = $1 AND id = ANY($2) AND delivered_at IS NULL",
    )
    .bind(appliance_id)
    .bind(&ids)
    .execute(&state.pool)
    .await?;
    Ok(Json(link_proto::OperatorActions { actions }))
}

/// `POST /v1/link/operator-actions/sealed`: the appliance reports which of its operator actions
/// it sealed, as which evidence bundle. Refused whole (nothing recorded) for more than
/// [`link_proto::MAX_OPERATOR_ACTIONS`], an id listed twice, an out-of-range entry, or an action
/// that is not this appliance's. An action reported before keeps its first report.
pub async fn operator_actions_sealed(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    Json(report): Json<link_proto::SealedActions>,
) -> Result<Json<link_proto::SealedAnswer>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    if report.sealed.len() > link_proto::MAX_OPERATOR_ACTIONS {
        return Err(LinkError::bad(format!(
            "{} sealed actions in one report; at most {}",
            report.sealed.len(),
            link_proto::MAX_OPERATOR_ACTIONS
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for sealed in &report.sealed {
        if let Some(problem) = sealed.problem() {
            return Err(LinkError::bad(problem));
        }
        if !seen.insert(sealed.id) {
            return Err(LinkError::bad(format!(
                "sealed action {} is listed twice",
                sealed.id
            )));
        }
    }
    let mut tx = state.pool.begin().await?;
    let mut recorded = 0u32;
    for sealed in &report.sealed {
        let seq = i64::try_from(sealed.seq).unwrap_or(i64::MAX);
        let kept: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT sealed_seq FROM incident_actions WHERE id = $1 AND appliance_id = $2 FOR UPDATE",
        )
        .bind(sealed.id)
        .bind(appliance_id)
        .fetch_optional(&mut *tx)
        .await?;
        match kept {
            // Another appliance's action answers as an unknown one.
            None => {
                return Err(LinkError::new(
                    StatusCode::NOT_FOUND,
                    format!("no operator action {} for this appliance", sealed.id),
                ));
            }
            Some(Some(first)) => {
                if first != seq {
                    tracing::warn!(
                        appliance_id,
                        action_id = sealed.id,
                        first,
                        now = seq,
                        "An operator action was reported sealed again as another bundle; the first report stands."
                    );
                }
            }
            Some(None) => {
                sqlx::query(
                    "UPDATE incident_actions SET sealed_seq = $3, sealed_at = to_timestamp($4),
                         delivered_at = coalesce(delivered_at, now())
                     WHERE id = $1 AND appliance_id = $2",
                )
                .bind(sealed.id)
                .bind(appliance_id)
                .bind(seq)
                .bind(sealed.at as f64)
                .execute(&mut *tx)
                .await?;
                recorded += 1;
            }
        }
    }
    tx.commit().await?;
    if recorded > 0 {
        tracing::info!(
            appliance_id,
            recorded,
            "Operator actions sealed on the appliance."
        );
    }
    Ok(Json(link_proto::SealedAnswer { recorded }))
}

/// `POST /v1/link/kits/{id}`: a kit (tar) answering request `id`, verified with the same code as
/// `osiris evidence verify` (the appliance's key pinned; the witness's cosignature required once
/// this witness has cosigned the appliance's log). Kept for download only when it verifies; a
/// refused kit raises a warning to the partner. The body is read only after the certificate and
/// the request were found waiting, so nobody can make Central Command buffer a large upload
/// that was not asked for.
pub async fn kit_upload(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    body: axum::body::Body,
) -> Result<Json<link_proto::KitUploadResponse>, LinkError> {
    let (appliance_id, partner_id, appliance_key) = peer_appliance(&state.pool, peer).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM kit_requests WHERE id = $1 AND appliance_id = $2")
            .bind(id)
            .bind(appliance_id)
            .fetch_optional(&state.pool)
            .await?;
    match status.as_deref() {
        None => {
            return Err(LinkError::new(
                StatusCode::NOT_FOUND,
                format!("no kit request {id} for this appliance"),
            ));
        }
        Some("pending") => {}
        Some(other) => {
            return Err(LinkError::new(
                StatusCode::CONFLICT,
                format!("kit request {id} was already answered ({other})"),
            ));
        }
    }
    let body = axum::body::to_bytes(body, link_proto::MAX_KIT)
        .await
        .map_err(|err| {
            LinkError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the kit could not be read whole (at most {} MiB): {err}",
                    link_proto::MAX_KIT >> 20
                ),
            )
        })?;
    let witnessed: Option<i64> =
        sqlx::query_scalar("SELECT size FROM witness_heads WHERE appliance_id = $1")
            .bind(appliance_id)
            .fetch_optional(&state.pool)
            .await?;
    let witness = witnessed
        .filter(|size| *size > 0)
        .map(|_| state.keys.witness.verifier().clone());
    let key: VerifierKey = appliance_key.parse().map_err(|err| {
        LinkError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the appliance's stored key does not parse: {err}"),
        )
    })?;
    let archive = body.clone();
    let judged = tokio::task::spawn_blocking(move || judge_kit(&archive, key, witness))
        .await
        .map_err(|err| LinkError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&body).to_vec()
    };
    let mut tx = state.pool.begin().await?;
    let (status, problems) = match &judged {
        Ok(verdict) => {
            sqlx::query(
                "UPDATE kit_requests SET status = 'verified', finished_at = now(), bundles = $3,
                     witnessed_size = $4, size_bytes = $5, sha256 = $6, kit = $7
                 WHERE id = $1 AND appliance_id = $2 AND status = 'pending'",
            )
            .bind(id)
            .bind(appliance_id)
            .bind(i64::try_from(verdict.bundles).unwrap_or(i64::MAX))
            .bind(
                verdict
                    .witnessed
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            )
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .bind(&sha)
            .bind(body.as_ref())
            .execute(&mut *tx)
            .await?;
            ("verified", Vec::new())
        }
        Err(problems) => {
            sqlx::query(
                "UPDATE kit_requests SET status = 'refused', finished_at = now(), problems = $3,
                     size_bytes = $4, sha256 = $5
                 WHERE id = $1 AND appliance_id = $2 AND status = 'pending'",
            )
            .bind(id)
            .bind(appliance_id)
            .bind(serde_json::json!(problems))
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .bind(&sha)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO alerts (partner_id, appliance_id, severity, kind, message) VALUES ($1, $2, 'warning', 'kit_refused', $3)",
            )
            .bind(partner_id)
            .bind(appliance_id)
            .bind(format!(
                "the evidence kit of request {id} did not verify: {}",
                problems.first().map_or("", String::as_str)
            ))
            .execute(&mut *tx)
            .await?;
            ("refused", problems.clone())
        }
    };
    tx.commit().await?;
    tracing::info!(
        request = id,
        appliance = appliance_id,
        status,
        bytes = body.len(),
        "evidence kit received"
    );
    Ok(Json(link_proto::KitUploadResponse {
        id,
        status: status.to_owned(),
        problems,
    }))
}

/// What a verified kit holds.
#[derive(Debug)]
struct KitVerdict {
    bundles: u64,
    witnessed: Option<u64>,
}

/// Unpacks an uploaded kit into a private temporary directory and verifies it; the problems
/// found (at most 20) when it does not verify.
fn judge_kit(
    archive: &[u8],
    key: VerifierKey,
    witness: Option<evidence::WitnessVerifier>,
) -> Result<KitVerdict, Vec<String>> {
    let scratch = tempfile::Builder::new()
        .prefix("osiris-central-kit-")
        .tempdir()
        .map_err(|err| vec![format!("no room to unpack the kit: {err}")])?;
    let dir = unpack_kit(archive, scratch.path()).map_err(|err| vec![err])?;
    let report = evidence::kit::verify(
        &dir,
        &evidence::kit::VerifyOptions {
            pinned_key: Some(key),
            witness,
            ..evidence::kit::VerifyOptions::default()
        },
    );
    if report.problems.is_empty() {
        Ok(KitVerdict {
            bundles: report.bundles,
            witnessed: report.witnessed.iter().map(|(size, _)| *size).max(),
        })
    } else {
        Err(report
            .problems
            .iter()
            .take(20)
            .map(|p| match p.line {
                Some(line) => format!("{}:{line}: {}", p.path, p.message),
                None => format!("{}: {}", p.path, p.message),
            })
            .collect())
    }
}

/// Unpacks a kit archive below `into`: only plain files and directories, every path inside one
/// top directory, none leaving it; returns that directory.
fn unpack_kit(archive: &[u8], into: &std::path::Path) -> Result<std::path::PathBuf, String> {
    use std::path::Component;
    let mut tar = tar::Archive::new(archive);
    let mut top: Option<std::ffi::OsString> = None;
    let entries = tar
        .entries()
        .map_err(|err| format!("not a tar archive: {err}"))?;
    for (n, entry) in entries.enumerate() {
        if n >= 100_000 {
            return Err("more than 100,000 entries: not a kit".to_owned());
        }
        let mut entry = entry.map_err(|err| format!("the archive is damaged: {err}"))?;
        let path = entry
            .path()
            .map_err(|err| format!("an entry's name is unreadable: {err}"))?
            .into_owned();
        let shown = path.display().to_string();
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(format!(
                "{shown}: only files and directories may be in a kit (links and devices are refused)"
            ));
        }
        let mut parts = path.components();
        let first = match parts.next() {
            Some(Component::Normal(first)) => first.to_owned(),
            _ => {
                return Err(format!(
                    "{shown}: every path must be inside the kit's directory"
                ));
            }
        };
        if !parts.all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "{shown}: every path must be inside the kit's directory"
            ));
        }
        match &top {
            None => top = Some(first),
            Some(top) if *top == first => {}
            Some(_) => return Err(format!("{shown}: a kit has one top directory")),
        }
        let unpacked = entry
            .unpack_in(into)
            .map_err(|err| format!("{shown}: {err}"))?;
        if !unpacked {
            return Err(format!("{shown}: outside the kit's directory"));
        }
    }
    let top = top.ok_or_else(|| "the archive is empty".to_owned())?;
    Ok(into.join(top))
}

/// The shown form of a name in an error: control characters escaped, at most 80 characters.
fn shown(text: &str) -> String {
    text.chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// A plausible POSIX time: 2000-01-01 up to year 2200.
fn is_time(t: i64) -> bool {
    (946_684_800..7_258_118_400).contains(&t)
}

/// Refuses an incidents push Central Command would not store whole.
fn check_incidents(incidents: &[link_proto::IncidentSummary]) -> Result<(), LinkError> {
    if incidents.len() > link_proto::MAX_BATCH {
        return Err(LinkError::bad(format!(
            "{} incidents in one push; at most {}",
            incidents.len(),
            link_proto::MAX_BATCH
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for incident in incidents {
        let id = incident.id;
        if !seen.insert((id, incident.opened_at)) {
            return Err(LinkError::bad(format!("incident {id} is listed twice")));
        }
        if !link_proto::is_plain_name(&incident.device) {
            return Err(LinkError::bad(format!(
                "incident {id}: device `{}`: 1-255 characters, no control characters",
                shown(&incident.device)
            )));
        }
        if !link_proto::is_id(&incident.check) {
            return Err(LinkError::bad(format!(
                "incident {id}: check `{}` is not a check id",
                shown(&incident.check)
            )));
        }
        if !link_proto::SEVERITIES.contains(&incident.severity.as_str())
            || !link_proto::INCIDENT_PHASES.contains(&incident.phase.as_str())
        {
            return Err(LinkError::bad(format!(
                "incident {id}: unknown severity `{}` or phase `{}`",
                shown(&incident.severity),
                shown(&incident.phase)
            )));
        }
        if i64::try_from(id).is_err()
            || !is_time(incident.opened_at)
            || !is_time(incident.updated_at)
            || incident.updated_at < incident.opened_at
        {
            return Err(LinkError::bad(format!(
                "incident {id}: its id or times are out of range"
            )));
        }
        if incident.transitions.len() > 100
            || !incident.transitions.iter().all(|t| {
                is_time(t.at)
                    && link_proto::INCIDENT_PHASES.contains(&t.from.as_str())
                    && link_proto::INCIDENT_PHASES.contains(&t.to.as_str())
            })
        {
            return Err(LinkError::bad(format!(
                "incident {id}: at most 100 transitions between known phases"
            )));
        }
    }
    Ok(())
}

/// Inserts or replaces each incident (a later push of the same incident is its newer state).
async fn store_incidents(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    incidents: &[link_proto::IncidentSummary],
) -> Result<(), sqlx::Error> {
    for incident in incidents {
        sqlx::query(
            "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase,
                 updated_at, occurrences, flapping, acknowledged, transitions, observed_at)
             VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, to_timestamp($8), $9, $10, $11, $12, now())
             ON CONFLICT (appliance_id, incident_id, opened_at) DO UPDATE SET device = EXCLUDED.device,
                 check_id = EXCLUDED.check_id, severity = EXCLUDED.severity, phase = EXCLUDED.phase,
                 updated_at = EXCLUDED.updated_at, occurrences = EXCLUDED.occurrences,
                 flapping = EXCLUDED.flapping, acknowledged = EXCLUDED.acknowledged,
                 transitions = EXCLUDED.transitions, observed_at = now()",
        )
        .bind(appliance_id)
        .bind(i64::try_from(incident.id).unwrap_or(i64::MAX))
        .bind(incident.opened_at as f64)
        .bind(&incident.device)
        .bind(&incident.check)
        .bind(&incident.severity)
        .bind(&incident.phase)
        .bind(incident.updated_at as f64)
        .bind(i32::try_from(incident.occurrences).unwrap_or(i32::MAX))
        .bind(incident.flapping)
        .bind(incident.acknowledged)
        .bind(serde_json::json!(incident.transitions))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Refuses a healing push Central Command would not store whole.
fn check_healing(entries: &[link_proto::HealEntry]) -> Result<(), LinkError> {
    if entries.len() > link_proto::MAX_BATCH {
        return Err(LinkError::bad(format!(
            "{} healing entries in one push; at most {}",
            entries.len(),
            link_proto::MAX_BATCH
        )));
    }
    let mut last = i64::MIN;
    for entry in entries {
        let id = entry.id;
        if id <= last {
            return Err(LinkError::bad(format!(
                "healing entry {id}: ids must increase"
            )));
        }
        last = id;
        if !link_proto::is_plain_name(&entry.device)
            || !link_proto::is_id(&entry.check)
            || entry.rule.as_deref().is_some_and(|r| !link_proto::is_id(r))
        {
            return Err(LinkError::bad(format!(
                "healing entry {id}: device `{}` must be 1-255 characters without control characters, check `{}` and rule ids",
                shown(&entry.device),
                shown(&entry.check)
            )));
        }
        if !link_proto::TIERS.contains(&entry.tier.as_str())
            || !link_proto::HEAL_RESULTS.contains(&entry.result.as_str())
            || !is_time(entry.at)
            || entry
                .evidence_seq
                .is_some_and(|s| i64::try_from(s).is_err())
        {
            return Err(LinkError::bad(format!(
                "healing entry {id}: unknown tier `{}` or result `{}`, or a time out of range",
                shown(&entry.tier),
                shown(&entry.result)
            )));
        }
    }
    Ok(())
}

/// Appends healing entries; one already taken (a retried push) changes nothing.
async fn store_healing(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    entries: &[link_proto::HealEntry],
) -> Result<(), sqlx::Error> {
    for entry in entries {
        sqlx::query(
            "INSERT INTO healing_log (appliance_id, entry_id, at, device, check_id, tier, rule, result, evidence_seq)
             VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(appliance_id)
        .bind(entry.id)
        .bind(entry.at as f64)
        .bind(&entry.device)
        .bind(&entry.check)
        .bind(&entry.tier)
        .bind(&entry.rule)
        .bind(&entry.result)
        .bind(entry.evidence_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Refuses an update state that is not one.
fn check_update(state: &link_proto::UpdateSummary) -> Result<(), LinkError> {
    let version_ok = |v: &str| {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    };
    if !version_ok(&state.current) || state.available.as_deref().is_some_and(|v| !version_ok(v)) {
        return Err(LinkError::bad(
            "update: versions are 1-64 letters, digits and - _ . +",
        ));
    }
    if !link_proto::UPDATE_STATES.contains(&state.state.as_str()) {
        return Err(LinkError::bad(format!(
            "update: unknown state `{}`",
            shown(&state.state)
        )));
    }
    if state
        .detail
        .as_deref()
        .is_some_and(|d| d.chars().count() > 500 || d.chars().any(char::is_control))
    {
        return Err(LinkError::bad(
            "update: detail is at most 500 characters without control characters",
        ));
    }
    Ok(())
}

async fn advance(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE appliances SET next_seq = next_seq + 1, last_seen = now() WHERE id = $1")
        .bind(appliance_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn der_to_pem(der: &[u8]) -> String {
    let encoded = BASE64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::unpack_kit;

    fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw, so names the tar crate itself would refuse (`..`, absolute) get through.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_kit_unpacks_into_its_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let kit = archive(|b| {
            file(b, "osiris-kit-7/bundles.jsonl", b"{}\n");
            file(b, "osiris-kit-7/checkpoints/1.txt", b"note\n");
        });
        let top = unpack_kit(&kit, dir.path()).unwrap();
        assert_eq!(top, dir.path().join("osiris-kit-7"));
        assert_eq!(
            std::fs::read(top.join("checkpoints/1.txt")).unwrap(),
            b"note\n"
        );
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let link = archive(|b| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_path("osiris-kit-1/bundles.jsonl").unwrap();
            header.set_link_name("/etc/shadow").unwrap();
            header.set_cksum();
            b.append(&header, std::io::empty()).unwrap();
        });
        let cases: [(&str, Vec<u8>, &str); 6] = [
            (
                "escape",
                archive(|b| file(b, "osiris-kit-1/../../escaped", b"x")),
                "inside the kit's directory",
            ),
            (
                "absolute",
                archive(|b| file(b, "/tmp/osiris-escaped", b"x")),
                "inside the kit's directory",
            ),
            ("symlink", link, "links and devices are refused"),
            (
                "two tops",
                archive(|b| {
                    file(b, "a/x", b"x");
                    file(b, "b/y", b"y");
                }),
                "one top directory",
            ),
            ("empty", archive(|_| {}), "empty"),
            (
                "garbage",
                b"not a tar archive at all, just words".repeat(20),
                "damaged",
            ),
        ];
        for (what, bytes, want) in cases {
            let err = unpack_kit(&bytes, &scratch).expect_err(what);
            assert!(err.contains(want), "{what}: {err}");
        }
        assert!(!dir.path().join("escaped").exists());
        assert!(!std::path::Path::new("/tmp/osiris-escaped").exists());
    }
}

//! The monthly compliance packets over the link (docs/CENTRAL-PROTOCOL.md, "Monthly packets"):
//! `POST /v1/link/packets` tells the appliance which months Central Command keeps for it and
//! what it still lacks of those begun; `POST /v1/link/packets/{period}` takes the packet's sealed
//! `packet` bundle (signed by the appliance's evidence key, naming every file with its SHA-256
//! and size), and `POST /v1/link/packets/{period}/files/{name}` one file at a time, each checked
//! against the bundle on arrival, so no request is larger than one file. A packet is complete,
//! and shown to partner users, once every file is in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use sha2::Digest as _;

use evidence::VerifierKey;

use crate::link::{LinkError, LinkState, PeerCert, peer_appliance};

/// `POST /v1/link/packets`: the months of the complete packets kept for this appliance, and
/// the files the begun ones lack.
pub async fn held(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::PacketsHeld>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    let rows: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT k.period, k.complete, f.name FROM packets k
         LEFT JOIN packet_files f ON f.packet_id = k.id AND f.content IS NULL
         WHERE k.appliance_id = $1 ORDER BY k.period, f.name",
    )
    .bind(appliance_id)
    .fetch_all(&state.pool)
    .await?;
    let mut held = link_proto::PacketsHeld {
        periods: Vec::new(),
        pending: Vec::new(),
    };
    for (period, complete, missing) in rows {
        if complete {
            held.periods.push(period);
            continue;
        }
        match held.pending.last_mut() {
            Some(last) if last.period == period => last.missing.extend(missing),
            _ => held.pending.push(link_proto::PacketProgress {
                period,
                missing: missing.into_iter().collect(),
            }),
        }
    }
    Ok(Json(held))
}

/// `POST /v1/link/packets/{period}`: a packet's sealed bundle. Taken when it is this
/// appliance's, signed, canonical and of this month; offering the same bundle again answers
/// where the packet stands; another bundle for a month begun is refused.
pub async fn offer(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    axum::extract::Path(period): axum::extract::Path<String>,
    Json(offer): Json<link_proto::PacketOffer>,
) -> Result<Json<link_proto::PacketProgress>, LinkError> {
    let (appliance_id, partner_id, appliance_key) = peer_appliance(&state.pool, peer).await?;
    check_period(&period)?;
    let key: VerifierKey = appliance_key.parse().map_err(|err| {
        LinkError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the appliance's stored key does not parse: {err}"),
        )
    })?;
    let line = offer.bundle.into_bytes();
    let (seq, body) = check_bundle(&line, &key, &period).map_err(|problem| {
        LinkError::new(
            StatusCode::BAD_REQUEST,
            format!("the packet of {period} is refused: {problem}"),
        )
    })?;
    let mut tx = state.pool.begin().await?;
    let kept: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT id, bundle_line FROM packets WHERE appliance_id = $1 AND period = $2 FOR UPDATE",
    )
    .bind(appliance_id)
    .bind(&period)
    .fetch_optional(&mut *tx)
    .await?;
    match kept {
        Some((_, kept_line)) if kept_line != line => {
            return Err(LinkError::new(
                StatusCode::CONFLICT,
                format!("another packet of {period} is kept already"),
            ));
        }
        Some(_) => {}
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO packets (partner_id, appliance_id, period, bundle_seq, bundle_line, evidence, generated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(partner_id)
            .bind(appliance_id)
            .bind(&period)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(&line)
            .bind(body.evidence)
            .bind(&body.generated_at)
            .fetch_one(&mut *tx)
            .await?;
            for record in &body.files {
                sqlx::query(
                    "INSERT INTO packet_files (packet_id, name, sha256, size_bytes) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(&record.name)
                .bind(hex::decode(&record.sha256).unwrap_or_default())
                .bind(i64::try_from(record.size).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    let progress = progress(&mut tx, appliance_id, &period).await?;
    tx.commit().await?;
    Ok(Json(progress))
}

/// `POST /v1/link/packets/{period}/files/{name}`: one file of a begun packet, kept when it has
/// the SHA-256 and size the sealed bundle names. The body is read only after the file was found
/// missing, so nobody can make Central Command buffer a file that was not expected.
pub async fn file(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    axum::extract::Path((period, name)): axum::extract::Path<(String, String)>,
    body: axum::body::Body,
) -> Result<Json<link_proto::PacketProgress>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    check_period(&period)?;
    let expected: Option<(i64, Vec<u8>, i64, bool)> = sqlx::query_as(
        "SELECT k.id, f.sha256, f.size_bytes, f.content IS NOT NULL FROM packets k
         JOIN packet_files f ON f.packet_id = k.id
         WHERE k.appliance_id = $1 AND k.period = $2 AND f.name = $3",
    )
    .bind(appliance_id)
    .bind(&period)
    .bind(&name)
    .fetch_optional(&state.pool)
    .await?;
    let Some((id, sha256, size, arrived)) = expected else {
        return Err(LinkError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the packet of {period} names no file `{}` (offer its bundle first)",
                name.escape_debug()
            ),
        ));
    };
    if !arrived {
        let bytes = axum::body::to_bytes(body, link_proto::MAX_PACKET_FILE)
            .await
            .map_err(|err| {
                LinkError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{name} could not be read whole (at most {} MiB): {err}",
                        link_proto::MAX_PACKET_FILE >> 20
                    ),
                )
            })?;
        let actual = sha2::Sha256::digest(&bytes);
        if actual.as_slice() != sha256.as_slice() || i64::try_from(bytes.len()) != Ok(size) {
            return Err(LinkError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "{name} has SHA-256 {} and {} bytes; the sealed bundle names {} and {size} bytes",
                    hex::encode(actual),
                    bytes.len(),
                    hex::encode(&sha256)
                ),
            ));
        }
        sqlx::query(
            "UPDATE packet_files SET content = $3 WHERE packet_id = $1 AND name = $2 AND content IS NULL",
        )
        .bind(id)
        .bind(&name)
        .bind(bytes.as_ref())
        .execute(&state.pool)
        .await?;
    }
    let mut tx = state.pool.begin().await?;
    let progress = progress(&mut tx, appliance_id, &period).await?;
    if progress.missing.is_empty() {
        let completed =
            sqlx::query("UPDATE packets SET complete = true WHERE id = $1 AND NOT complete")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if completed.rows_affected() > 0 {
            tracing::info!(appliance = appliance_id, period = %period, "Monthly packet received whole.");
        }
    }
    tx.commit().await?;
    Ok(Json(progress))
}

/// The files of this appliance's packet of `period` that have not arrived.
async fn progress(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    appliance_id: i64,
    period: &str,
) -> Result<link_proto::PacketProgress, sqlx::Error> {
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT f.name FROM packets k JOIN packet_files f ON f.packet_id = k.id
         WHERE k.appliance_id = $1 AND k.period = $2 AND f.content IS NULL ORDER BY f.name",
    )
    .bind(appliance_id)
    .bind(period)
    .fetch_all(&mut **tx)
    .await?;
    Ok(link_proto::PacketProgress {
        period: period.to_owned(),
        missing,
    })
}

fn check_period(period: &str) -> Result<(), LinkError> {
    let b = period.as_bytes();
    let valid = b.len() == 7
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(LinkError::new(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a month (YYYY-MM)", period.escape_debug()),
        ))
    }
}

/// Checks that `line` is a canonical bundle of kind `packet` of this appliance, signed by `key`,
/// whose body fits its schema and is the packet of `period`; returns its sequence number and body.
fn check_bundle(
    line: &[u8],
    key: &VerifierKey,
    period: &str,
) -> Result<(u64, evidence_schema::PacketBody), String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|err| format!("the bundle is not JSON: {err}"))?;
    let canonical = evidence::jcs::canonicalize(&value)
        .map_err(|err| format!("the bundle does not canonicalise: {err}"))?;
    if canonical != line {
        return Err("the bundle line is not in canonical (JCS) form".to_owned());
    }
    let mut map = value
        .as_object()
        .cloned()
        .ok_or("the bundle is not a JSON object")?;
    let sig = map
        .remove("sig")
        .and_then(|s| s.as_str().map(str::to_owned))
        .ok_or("the bundle has no signature")?;
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(&sig)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the bundle's signature is not 64 bytes of base64")?;
    let message = evidence::jcs::canonicalize(&serde_json::Value::Object(map.clone()))
        .map_err(|err| format!("the bundle does not canonicalise: {err}"))?;
    if !key.verify_strict(&message, &sig) {
        return Err(
            "the bundle's signature does not verify under this appliance's evidence key".to_owned(),
        );
    }
    if map.get("kind").and_then(serde_json::Value::as_str) != Some(evidence_schema::KIND_PACKET) {
        return Err("the bundle is not a packet bundle".to_owned());
    }
    if map.get("appliance").and_then(serde_json::Value::as_str) != Some(key.appliance_id()) {
        return Err("the bundle names another appliance".to_owned());
    }
    let seq = map
        .get("seq")
        .and_then(serde_json::Value::as_u64)
        .ok_or("the bundle has no sequence number")?;
    let body: evidence_schema::PacketBody =
        serde_json::from_value(map.remove("body").unwrap_or_default())
            .map_err(|err| format!("the packet body does not fit its schema: {err}"))?;
    if let Some(problem) = body.problem() {
        return Err(format!("the packet body: {problem}"));
    }
    if body.period != period {
        return Err(format!(
            "the bundle is the packet of {}, not of {period}",
            body.period
        ));
    }
    Ok((seq, body))
}

#[cfg(test)]
mod tests {
    use crate::link::packets::check_bundle;

    /// The line of a `packet` bundle sealed by `key`, with `body`.
    fn sealed(key: &evidence::ApplianceKey, body: serde_json::Value) -> Vec<u8> {
        evidence::LogWriter::new(key.clone())
            .seal(&evidence::BundleDraft {
                site: "clinic".into(),
                kind: "packet".into(),
                catalog: "test".into(),
                time: time::macros::datetime!(2026-12-01 00:00:05 UTC),
                body,
            })
            .unwrap()
            .line
    }

    fn body() -> serde_json::Value {
        serde_json::json!({"period": "2026-11", "generated_at": "2026-12-01T00:00:04Z",
            "directory": "packets/2026-11", "evidence": true,
            "files": [{"name": "hipaa-2026-11.csv", "sha256": "a".repeat(64), "size": 18},
                      {"name": "MANIFEST.sha256", "sha256": "b".repeat(64), "size": 86}]})
    }

    #[test]
    fn a_packet_bundle_is_taken_only_signed_canonical_and_of_its_month() {
        let key = evidence::ApplianceKey::from_seed(&[3; 32]);
        let verifier = key.verifier();
        let (seq, taken) = check_bundle(&sealed(&key, body()), &verifier, "2026-11").unwrap();
        assert_eq!(seq, 0);
        assert_eq!(taken.files.len(), 2);

        let mut traversal = body();
        traversal["files"][0]["name"] = "../../etc/cron.d/x".into();
        let mut spaced = sealed(&key, body());
        spaced.insert(1, b' ');
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            (
                "another appliance's key",
                sealed(&evidence::ApplianceKey::from_seed(&[4; 32]), body()),
                "2026-11",
                "does not verify under this appliance's evidence key",
            ),
            (
                "another month's route",
                sealed(&key, body()),
                "2026-10",
                "the bundle is the packet of 2026-11, not of 2026-10",
            ),
            (
                "a file name that leaves the packet",
                sealed(&key, traversal),
                "2026-11",
                "is not a plain name",
            ),
            (
                "a line that is not canonical",
                spaced,
                "2026-11",
                "not in canonical (JCS) form",
            ),
        ];
        for (what, line, period, expected) in cases {
            let problem = check_bundle(&line, &verifier, period)
                .err()
                .unwrap_or_else(|| panic!("{what} was taken"));
            assert!(problem.contains(expected), "{what}: {problem}");
        }
        // Another kind of bundle, signed all the same.
        let mut writer = evidence::LogWriter::new(key.clone());
        let scan = writer
            .seal(&evidence::BundleDraft {
                site: "clinic".into(),
                kind: "scan".into(),
                catalog: "test".into(),
                time: time::macros::datetime!(2026-12-01 00:00:05 UTC),
                body: body(),
            })
            .unwrap()
            .line;
        let problem = check_bundle(&scan, &verifier, "2026-11").err().unwrap();
        assert!(problem.contains("not a packet bundle"), "{problem}");
    }
}

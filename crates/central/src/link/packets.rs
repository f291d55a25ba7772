//! The monthly compliance packets over the link (docs/CENTRAL-PROTOCOL.md, "Monthly packets"):
//! `POST /v1/link/packets` tells the appliance which months Central Command keeps for it;
//! `POST /v1/link/packets/{period}` takes one as a tar archive, checks that the appliance's
//! evidence key signed its `packet` bundle and that every file is there with the SHA-256 and
//! size the bundle names (and nothing else), and keeps it once.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use sha2::Digest as _;

use evidence::VerifierKey;

use crate::link::{LinkError, LinkState, PeerCert, peer_appliance};

/// At most this many files in a packet archive (a packet holds 26).
const MAX_FILES: usize = 64;

/// `POST /v1/link/packets`: the months of the packets kept for this appliance.
pub async fn held(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
) -> Result<Json<link_proto::PacketsHeld>, LinkError> {
    let (appliance_id, _, _) = peer_appliance(&state.pool, peer).await?;
    let periods: Vec<String> =
        sqlx::query_scalar("SELECT period FROM packets WHERE appliance_id = $1 ORDER BY period")
            .bind(appliance_id)
            .fetch_all(&state.pool)
            .await?;
    Ok(Json(link_proto::PacketsHeld { periods }))
}

/// `POST /v1/link/packets/{period}`: one month's packet (tar), checked against its sealed bundle
/// and kept. The body is read only after the certificate was found and the month is not kept yet.
pub async fn upload(
    State(state): State<LinkState>,
    axum::Extension(peer): axum::Extension<PeerCert>,
    axum::extract::Path(period): axum::extract::Path<String>,
    body: axum::body::Body,
) -> Result<Json<link_proto::PacketUploadResponse>, LinkError> {
    let (appliance_id, partner_id, appliance_key) = peer_appliance(&state.pool, peer).await?;
    if !is_period(&period) {
        return Err(LinkError::new(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a month (YYYY-MM)", period.escape_debug()),
        ));
    }
    let kept: Option<i64> =
        sqlx::query_scalar("SELECT id FROM packets WHERE appliance_id = $1 AND period = $2")
            .bind(appliance_id)
            .bind(&period)
            .fetch_optional(&state.pool)
            .await?;
    if kept.is_some() {
        return Err(LinkError::new(
            StatusCode::CONFLICT,
            format!("the packet of {period} is kept already"),
        ));
    }
    let body = axum::body::to_bytes(body, link_proto::MAX_PACKET)
        .await
        .map_err(|err| {
            LinkError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the packet could not be read whole (at most {} MiB): {err}",
                    link_proto::MAX_PACKET >> 20
                ),
            )
        })?;
    let key: VerifierKey = appliance_key.parse().map_err(|err| {
        LinkError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the appliance's stored key does not parse: {err}"),
        )
    })?;
    let checked_period = period.clone();
    let judged = tokio::task::spawn_blocking(move || judge(&body, &key, &checked_period))
        .await
        .map_err(|err| LinkError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let packet = judged.map_err(|problem| {
        LinkError::new(
            StatusCode::BAD_REQUEST,
            format!("the packet of {period} is refused: {problem}"),
        )
    })?;
    let mut tx = state.pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO packets (partner_id, appliance_id, period, bundle_seq, bundle_line, evidence, generated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (appliance_id, period) DO NOTHING RETURNING id",
    )
    .bind(partner_id)
    .bind(appliance_id)
    .bind(&period)
    .bind(i64::try_from(packet.seq).unwrap_or(i64::MAX))
    .bind(&packet.line)
    .bind(packet.body.evidence)
    .bind(&packet.body.generated_at)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Err(LinkError::new(
            StatusCode::CONFLICT,
            format!("the packet of {period} is kept already"),
        ));
    };
    for record in &packet.body.files {
        let content = packet.files.get(&record.name).cloned().unwrap_or_default();
        sqlx::query(
            "INSERT INTO packet_files (packet_id, name, sha256, size_bytes, content) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&record.name)
        .bind(hex::decode(&record.sha256).unwrap_or_default())
        .bind(i64::try_from(record.size).unwrap_or(i64::MAX))
        .bind(content)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(appliance = appliance_id, period = %period, files = packet.body.files.len(), "Monthly packet received and kept.");
    Ok(Json(link_proto::PacketUploadResponse {
        period,
        files: u32::try_from(packet.body.files.len()).unwrap_or(u32::MAX),
    }))
}

/// A packet that holds together.
struct Judged {
    seq: u64,
    line: Vec<u8>,
    body: evidence_schema::PacketBody,
    files: BTreeMap<String, Vec<u8>>,
}

/// `YYYY-MM`.
fn is_period(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit())
}

/// Reads the archive (plain files directly inside `osiris-packet-<period>/`), checks the bundle
/// line's signature under `key` and its body, then every file against it.
fn judge(archive: &[u8], key: &VerifierKey, period: &str) -> Result<Judged, String> {
    let top = format!("osiris-packet-{period}");
    let mut files = BTreeMap::new();
    let mut entries = tar::Archive::new(archive);
    for entry in entries
        .entries()
        .map_err(|err| format!("not a tar archive: {err}"))?
    {
        let mut entry = entry.map_err(|err| format!("not a tar archive: {err}"))?;
        let path = entry
            .path()
            .map_err(|err| format!("an entry's name does not read: {err}"))?
            .into_owned();
        let shown = path.display().to_string();
        let kind = entry.header().entry_type();
        if kind.is_dir() && path == std::path::Path::new(&top) {
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "{shown}: only files may be in a packet (links, devices and subdirectories are refused)"
            ));
        }
        let mut parts = path.components();
        let (
            Some(std::path::Component::Normal(dir)),
            Some(std::path::Component::Normal(name)),
            None,
        ) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{shown}: every file must be directly inside {top}/"
            ));
        };
        if dir.to_str() != Some(top.as_str()) {
            return Err(format!(
                "{shown}: every file must be directly inside {top}/"
            ));
        }
        let name = name
            .to_str()
            .ok_or_else(|| format!("{shown}: a file name must be UTF-8"))?
            .to_owned();
        if files.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} files: not a packet"));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)
            .map_err(|err| format!("{shown}: {err}"))?;
        if files.insert(name, bytes).is_some() {
            return Err(format!("{shown} is in the archive twice"));
        }
    }
    let line = files
        .remove(link_proto::PACKET_BUNDLE_FILE)
        .ok_or_else(|| format!("{top}/{} is missing", link_proto::PACKET_BUNDLE_FILE))?;
    let line = line.strip_suffix(b"\n").map(<[u8]>::to_vec).unwrap_or(line);
    let (seq, body) = check_bundle(&line, key)?;
    if body.period != period {
        return Err(format!(
            "the bundle is the packet of {}, not of {period}",
            body.period
        ));
    }
    for record in &body.files {
        let Some(bytes) = files.get(&record.name) else {
            return Err(format!(
                "{} is named by the bundle but missing",
                record.name
            ));
        };
        let actual = hex::encode(sha2::Sha256::digest(bytes));
        if actual != record.sha256 || bytes.len() as u64 != record.size {
            return Err(format!(
                "{} has SHA-256 {actual} and {} bytes; the sealed bundle names {} and {} bytes",
                record.name,
                bytes.len(),
                record.sha256,
                record.size
            ));
        }
    }
    if let Some(extra) = files
        .keys()
        .find(|name| !body.files.iter().any(|f| &f.name == *name))
    {
        return Err(format!("{extra} is not named by the sealed bundle"));
    }
    Ok(Judged {
        seq,
        line,
        body,
        files,
    })
}

/// Checks that `line` is a canonical bundle of kind `packet` of this appliance signed by `key`;
/// returns its sequence number and body.
fn check_bundle(
    line: &[u8],
    key: &VerifierKey,
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
    Ok((seq, body))
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use crate::link::packets::judge;

    /// A packet of two reports, its bundle sealed by `key`, as the appliance tars it; `edit` may
    /// change the files (name → bytes) before they are archived.
    fn packet(
        key: &evidence::ApplianceKey,
        edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
    ) -> Vec<u8> {
        let mut files = vec![
            (
                "hipaa-2026-11.csv".to_owned(),
                b"framework,control\n".to_vec(),
            ),
            ("hipaa-2026-11.html".to_owned(), b"<html></html>".to_vec()),
        ];
        let manifest: String = files
            .iter()
            .map(|(name, bytes)| format!("{}  {name}\n", hex::encode(sha2::Sha256::digest(bytes))))
            .collect();
        files.push(("MANIFEST.sha256".to_owned(), manifest.into_bytes()));
        let records: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({"name": name, "sha256": hex::encode(sha2::Sha256::digest(bytes)), "size": bytes.len()})
            })
            .collect();
        let mut writer = evidence::LogWriter::new(key.clone());
        let line = writer
            .seal(&evidence::BundleDraft {
                site: "clinic".into(),
                kind: "packet".into(),
                catalog: "test".into(),
                time: time::macros::datetime!(2026-12-01 00:00:05 UTC),
                body: serde_json::json!({"period": "2026-11", "generated_at": "2026-12-01T00:00:04Z",
                    "directory": "packets/2026-11", "evidence": true, "files": records}),
            })
            .unwrap()
            .line;
        edit(&mut files);
        files.push((link_proto::PACKET_BUNDLE_FILE.to_owned(), line));
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            // Written as raw bytes: the tar crate itself refuses to write `..` (a hostile
            // appliance would not use it).
            let path = format!("osiris-packet-2026-11/{name}");
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, bytes.as_slice()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_packet_is_kept_only_as_its_sealed_bundle_names_it() {
        let key = evidence::ApplianceKey::from_seed(&[3; 32]);
        let verifier = key.verifier();
        let judged = judge(&packet(&key, |_| {}), &verifier, "2026-11").unwrap();
        assert_eq!(judged.seq, 0);
        assert_eq!(judged.files.len(), 3);
        assert!(judged.body.evidence);

        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "an edited report",
                packet(&key, |files| {
                    files[0].1 = b"framework,control\nedited\n".to_vec()
                }),
                "hipaa-2026-11.csv has SHA-256",
            ),
            (
                "a file the bundle does not name",
                packet(&key, |files| {
                    files.push(("extra.html".into(), b"<script>".to_vec()))
                }),
                "extra.html is not named by the sealed bundle",
            ),
            (
                "a missing report",
                packet(&key, |files| {
                    files.remove(1);
                }),
                "hipaa-2026-11.html is named by the bundle but missing",
            ),
            (
                "another appliance's key",
                packet(&evidence::ApplianceKey::from_seed(&[4; 32]), |_| {}),
                "does not verify under this appliance's evidence key",
            ),
            (
                "a path outside the packet",
                packet(&key, |files| {
                    files.push(("../../etc/cron.d/x".into(), b"x".to_vec()))
                }),
                "every file must be directly inside osiris-packet-2026-11/",
            ),
        ];
        for (what, archive, expected) in cases {
            let problem = judge(&archive, &verifier, "2026-11")
                .err()
                .unwrap_or_else(|| panic!("{what} was accepted"));
            assert!(problem.contains(expected), "{what}: {problem}");
        }
        // Another month's route.
        let problem = judge(&packet(&key, |_| {}), &verifier, "2026-10")
            .err()
            .unwrap();
        assert!(problem.contains("osiris-packet-2026-10"), "{problem}");
    }
}

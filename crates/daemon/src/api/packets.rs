//! The monthly packets on the local API: `GET /v1/compliance/packets` lists the packets the log
//! says were made, and `POST /v1/compliance/packets/export` copies one onto a USB stick through
//! the kit export's checks (a mounted filesystem below `daemon.export_roots`, no symbolic link,
//! room for it, one export at a time): each file checked against the SHA-256 its `packet` bundle
//! names, written under a temporary name, synced and renamed into place, then recorded as an
//! `export` operator action.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sha2::Digest as _;

use crate::Shared;
use crate::api::{Answer, Fail, bad_request, blocking, internal, operator_action};

pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::PacketState>> {
    let store = &shared.store;
    let sealed = ops::report::sealed_packets(store.reads(), store.size())
        .await
        .map_err(|err| internal(format!("{err:#}")))?;
    Ok(Json(
        sealed
            .values()
            .rev()
            .map(|p| crate::packet::state_of(&p.body, p.seq, &p.sealed_at))
            .collect(),
    ))
}

pub(crate) async fn export(
    State(shared): State<Arc<Shared>>,
    _unlocked: crate::pin::ConsoleUnlocked,
    Json(request): Json<api::PacketExportRequest>,
) -> Answer<api::PacketExportResult> {
    let dest = PathBuf::from(&request.dest_dir);
    if !dest.is_absolute() {
        return Err(bad_request(
            format!("`{}` is not an absolute path", request.dest_dir),
            "give the USB stick's mount point, e.g. /media/usb",
        ));
    }
    let store = &shared.store;
    let sealed = ops::report::sealed_packets(store.reads(), store.size())
        .await
        .map_err(|err| internal(format!("{err:#}")))?;
    let Some(packet) = sealed.get(&request.period) else {
        let made: Vec<&str> = sealed.keys().map(String::as_str).collect();
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no packet of `{}` was made", request.period.escape_debug()),
            Some(if made.is_empty() {
                "the appliance makes the previous month's packet on the 1st; none was made yet"
                    .to_owned()
            } else {
                format!("packets were made for {}", made.join(", "))
            }),
        ));
    };
    let Ok(_one_at_a_time) = shared.export.try_lock() else {
        return Err(Fail(
            StatusCode::CONFLICT,
            "an export is already running".to_owned(),
            Some("wait for it to finish, then export again".to_owned()),
        ));
    };
    let body = packet.body.clone();
    let needed: u64 = body.files.iter().map(|f| f.size).sum::<u64>() + 1024 * 1024;
    let roots = shared.settings.config.daemon.export_roots.clone();
    let checked = dest.clone();
    let stem = format!(
        "osiris-packet-{}-{}-{}",
        shared.settings.config.site,
        body.period,
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let out = blocking(move || {
        crate::api::export::check_destination(&checked, &roots, needed, "the packet")?;
        crate::api::export::fresh_name(&checked, &stem)
    })
    .await??;
    let source = shared.settings.data_dir.join(&body.directory);
    let (written, files) = (out.clone(), body.files.clone());
    blocking(move || copy_packet(&source, &written, &files)).await??;
    let measured = out.clone();
    let bytes = blocking(move || crate::api::export::tree_size(&measured)).await?;
    operator_action(
        &shared,
        "export",
        "local API",
        "",
        serde_json::json!({
            "path": out.display().to_string(), "packet": body.period, "packet_bundle": packet.seq,
            "files": body.files.len(),
        }),
    )
    .await?;
    Ok(Json(api::PacketExportResult {
        path: out.display().to_string(),
        files: u32::try_from(body.files.len()).unwrap_or(u32::MAX),
        bytes,
    }))
}

/// Copies the packet's files from `source` into a new directory `dest`, each checked against
/// the SHA-256 its bundle names; the directory appears whole or not at all.
fn copy_packet(
    source: &Path,
    dest: &Path,
    files: &[evidence_schema::PacketFileRecord],
) -> Result<(), Fail> {
    let temp = durable::temp_sibling(dest).map_err(|err| write_failed(&err))?;
    let res = (|| {
        std::fs::create_dir(&temp).map_err(|err| write_failed(&err))?;
        for file in files {
            let path = source.join(&file.name);
            let bytes = std::fs::read(&path)
                .map_err(|err| internal(format!("reading {}: {err}", path.display())))?;
            if hex::encode(sha2::Sha256::digest(&bytes)) != file.sha256 {
                return Err(Fail(
                    StatusCode::CONFLICT,
                    format!(
                        "{} no longer matches the SHA-256 its packet bundle names: it was changed after it was sealed",
                        path.display()
                    ),
                    Some("nothing was exported; tell your IT partner (the sealed copy's hashes are in the evidence log)".to_owned()),
                ));
            }
            durable::write(&temp.join(&file.name), &bytes, 0o644)
                .map_err(|err| write_failed(&err))?;
        }
        durable::sync_dir(&temp).map_err(|err| write_failed(&err))?;
        durable::publish_dir(&temp, dest).map_err(|err| write_failed(&err))
    })();
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    res
}

fn write_failed(err: &(dyn std::error::Error + 'static)) -> Fail {
    let hint = match crate::api::export::io_kind(err) {
        Some(std::io::ErrorKind::ReadOnlyFilesystem) => {
            "the USB stick is read-only: check its lock switch, or use another stick"
        }
        Some(std::io::ErrorKind::StorageFull) => {
            "the USB stick is full: free some space or use a bigger stick"
        }
        _ => "check the USB stick and try again",
    };
    Fail(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "the packet could not be written: {}",
            crate::api::chain(err)
        ),
        Some(hint.to_owned()),
    )
}

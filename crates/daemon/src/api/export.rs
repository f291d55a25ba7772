//! `POST /v1/evidence/export`: an auditor kit onto a USB stick. The kit writer publishes the kit
//! atomically itself (written under a temporary name, synced, renamed into place), so a stick
//! pulled out or full midway never holds something that looks like a kit. One export runs at a
//! time; a second waits for the first.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::Shared;
use crate::api::{Answer, Fail, bad_request, blocking, operator_action};

pub(crate) async fn export(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<api::ExportRequest>,
) -> Answer<api::ExportResult> {
    let dest = Path::new(&request.dest_dir).to_path_buf();
    if !dest.is_absolute() {
        return Err(bad_request(
            format!("`{}` is not an absolute path", request.dest_dir),
            "give the USB stick's mount point, e.g. /media/usb",
        ));
    }
    let _one_at_a_time = shared.export.lock().await;
    let checked = dest.clone();
    let meta = blocking(move || std::fs::metadata(&checked))
        .await?
        .map_err(|err| {
            bad_request(
                format!("cannot use {}: {err}", dest.display()),
                "is the USB stick plugged in and mounted?",
            )
        })?;
    if !meta.is_dir() {
        return Err(bad_request(
            format!("{} is not a directory", dest.display()),
            "give the USB stick's mount point",
        ));
    }
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let kit = dest.join(format!(
        "osiris-evidence-{}-{stamp}",
        shared.settings.config.site
    ));
    // The store streams the log to a blocking writer thread.
    let summary = shared.store.export_kit(&kit).await.map_err(|err| {
        let hint = match io_kind(&err) {
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
                "the evidence kit could not be written: {}",
                crate::api::chain(&err)
            ),
            Some(hint.to_owned()),
        )
    })?;
    let measured = kit.clone();
    let bytes = blocking(move || tree_size(&measured)).await?;
    operator_action(
        &shared,
        "export",
        "local API",
        "",
        serde_json::json!({"path": kit.display().to_string(), "bundles": summary.bundles}),
    )
    .await?;
    Ok(Json(api::ExportResult {
        path: kit.display().to_string(),
        bundles: summary.bundles,
        bytes,
    }))
}

/// The kind of the first I/O error in an error's source chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        if let Some(durable) = err.downcast_ref::<durable::Error>() {
            return Some(durable.kind());
        }
        next = err.source();
    }
    None
}

fn tree_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        tree_size(&path)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

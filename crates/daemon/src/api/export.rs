//! `POST /v1/evidence/export`: an auditor kit onto a USB stick. The kit writer publishes the kit
//! atomically itself (written under a temporary name, synced, renamed into place), so a stick
//! pulled out or full midway never holds something that looks like a kit. The destination must
//! be a separately mounted filesystem below one of `daemon.export_roots` (`/media`,
//! `/run/media`), reached without any symbolic link, with room for the kit; one export runs at
//! a time and a second is refused while it does.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::Shared;
use crate::api::{Answer, Fail, bad_request, blocking, operator_action};

pub(crate) async fn export(
    State(shared): State<Arc<Shared>>,
    _unlocked: crate::pin::ConsoleUnlocked,
    Json(request): Json<api::ExportRequest>,
) -> Answer<api::ExportResult> {
    let dest = Path::new(&request.dest_dir).to_path_buf();
    if !dest.is_absolute() {
        return Err(bad_request(
            format!("`{}` is not an absolute path", request.dest_dir),
            "give the USB stick's mount point, e.g. /media/usb",
        ));
    }
    let Ok(_one_at_a_time) = shared.export.try_lock() else {
        return Err(Fail(
            StatusCode::CONFLICT,
            "an export is already running".to_owned(),
            Some("wait for it to finish, then export again".to_owned()),
        ));
    };
    let roots = shared.settings.config.daemon.export_roots.clone();
    let checked = dest.clone();
    let db = shared.store.db_path().to_path_buf();
    let stem = format!(
        "osiris-evidence-{}-{}",
        shared.settings.config.site,
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let kit = blocking(move || {
        let needed = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) + 8 * 1024 * 1024;
        check_destination(&checked, &roots, needed, "the kit")?;
        fresh_name(&checked, &stem)
    })
    .await??;
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

/// Refuses a destination that is not a mounted filesystem below an export root, is reached
/// through a symbolic link, or lacks room for `needed` bytes of `what`.
pub(crate) fn check_destination(
    dest: &Path,
    roots: &[std::path::PathBuf],
    needed: u64,
    what: &str,
) -> Result<(), Fail> {
    use std::os::unix::fs::MetadataExt;
    let usb_hint = "plug in a USB stick and give its mount point, e.g. /media/usb";
    if dest.components().any(|c| {
        !matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    }) {
        return Err(bad_request(
            format!("`{}` contains `..` or `.`", dest.display()),
            usb_hint,
        ));
    }
    let Some(root) = roots
        .iter()
        .find(|root| dest.starts_with(root) && dest != root.as_path())
    else {
        let allowed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(bad_request(
            format!(
                "{} is not on removable media: kits are written only below {}",
                dest.display(),
                allowed.join(" or ")
            ),
            usb_hint,
        ));
    };
    // Walk from `/` without following any link: every component must be a real directory.
    let mut walked = std::path::PathBuf::from("/");
    for component in dest.components().skip(1) {
        walked.push(component);
        let meta = std::fs::symlink_metadata(&walked).map_err(|err| {
            bad_request(
                format!("cannot use {}: {err}", walked.display()),
                "is the USB stick plugged in and mounted?",
            )
        })?;
        if meta.file_type().is_symlink() {
            return Err(bad_request(
                format!(
                    "{} is a symbolic link; kits are never written through links",
                    walked.display()
                ),
                usb_hint,
            ));
        }
        if !meta.is_dir() {
            return Err(bad_request(
                format!("{} is not a directory", walked.display()),
                usb_hint,
            ));
        }
    }
    // A USB stick is its own filesystem: a plain directory under /media is on the system disk.
    let root_dev = std::fs::metadata(root).map(|m| m.dev()).unwrap_or(0);
    let dest_dev = std::fs::metadata(dest).map(|m| m.dev()).unwrap_or(root_dev);
    if dest_dev == root_dev {
        return Err(bad_request(
            format!(
                "{} is not a mounted USB stick (it is on the same filesystem as {})",
                dest.display(),
                root.display()
            ),
            usb_hint,
        ));
    }
    let stat = rustix::fs::statvfs(dest).map_err(|err| {
        bad_request(
            format!("cannot read the free space of {}: {err}", dest.display()),
            usb_hint,
        )
    })?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < needed {
        return Err(Fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the USB stick at {} has {} MiB free; {what} needs about {} MiB",
                dest.display(),
                free / (1024 * 1024),
                needed.div_ceil(1024 * 1024)
            ),
            Some("free some space or use a bigger stick".to_owned()),
        ));
    }
    Ok(())
}

/// The kind of the first I/O error in an error's source chain.
pub(crate) fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
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

/// `dir/stem`, or `dir/stem-2`, `-3` … when an earlier export of the same second took the
/// name: a second export must never fail (or write into) the first one's kit.
pub(crate) fn fresh_name(dir: &Path, stem: &str) -> Result<std::path::PathBuf, Fail> {
    for n in 1..=100u32 {
        let name = match n {
            1 => stem.to_owned(),
            n => format!("{stem}-{n}"),
        };
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(err) => {
                return Err(bad_request(
                    format!("cannot use {}: {err}", path.display()),
                    "check the USB stick and try again",
                ));
            }
            Ok(_) => {}
        }
    }
    Err(bad_request(
        format!("{} already holds 100 exports named {stem}", dir.display()),
        "wait a second and export again",
    ))
}

pub(crate) fn tree_size(dir: &Path) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::fresh_name;

    #[test]
    fn a_second_export_in_the_same_second_gets_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let stem = "osiris-evidence-site-1796453884";
        assert_eq!(fresh_name(dir.path(), stem).unwrap(), dir.path().join(stem));
        std::fs::create_dir(dir.path().join(stem)).unwrap();
        assert_eq!(
            fresh_name(dir.path(), stem).unwrap(),
            dir.path().join(format!("{stem}-2"))
        );
        // A link or a file holding the name counts as taken; it is never written through.
        std::os::unix::fs::symlink("/etc", dir.path().join(format!("{stem}-2"))).unwrap();
        std::fs::write(dir.path().join(format!("{stem}-3")), b"").unwrap();
        assert_eq!(
            fresh_name(dir.path(), stem).unwrap(),
            dir.path().join(format!("{stem}-4"))
        );
    }
}

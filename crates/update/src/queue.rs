//! The queue of update evidence: `osiris update` (root) appends the records it cannot seal while
//! `osirisd` holds the evidence store, and the daemon seals them later, oldest first. A queue
//! being sealed is renamed first, so records may repeat after a crash but never vanish.
//!
//! The queue lives in its own spool directory (`<state_dir>/spool`), owned by the daemon's user,
//! so the daemon (which runs unprivileged) can read and remove what root queued: `enqueue` gives
//! each queue file to the spool directory's owner.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::state::UpdateRecord;

/// The queue's file name inside the spool directory.
pub const PENDING_FILE: &str = "pending-evidence.jsonl";

/// The release a partner's Central Command offers this appliance, written by osirisd into the
/// spool (the vendor-signed manifest JSON, verbatim); point `manifest_url` at it with
/// [`offered_manifest_url`] to take updates from Central Command's staged rollout.
pub const OFFERED_MANIFEST: &str = "offered-manifest.json";

/// The `file://` URL of the offered manifest of the updater whose state is in `state_dir`.
pub fn offered_manifest_url(state_dir: &Path) -> String {
    format!(
        "file://{}",
        spool_dir(state_dir).join(OFFERED_MANIFEST).display()
    )
}

/// The spool directory of the updater whose state is in `state_dir`.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

/// The queue could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{action} the update evidence queue {}", path.display())]
pub struct QueueError {
    action: &'static str,
    path: PathBuf,
    source: io::Error,
}

/// Records taken from the queue for sealing; [`Pending::done`] removes them once all are sealed.
#[derive(Debug)]
pub struct Pending {
    path: PathBuf,
    lines: Vec<String>,
}

/// Appends the records' bodies to the queue in `spool`, one JSON object per line, and syncs; the
/// file belongs to the spool directory's owner (the daemon's user), whoever writes it.
pub fn enqueue(spool: &Path, records: &[UpdateRecord]) -> Result<(), QueueError> {
    let path = spool.join(PENDING_FILE);
    let fail = |action| {
        let path = path.clone();
        move |source| QueueError {
            action,
            path,
            source,
        }
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(fail("opening"))?;
    let mut text = String::new();
    for record in records {
        text.push_str(&record.body().to_string());
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(fail("writing"))?;
    file.sync_all().map_err(fail("syncing"))?;
    let owner = fs::metadata(spool).map_err(fail("inspecting the spool of"))?;
    let mine = fs::metadata(&path).map_err(fail("inspecting"))?;
    {
        use std::os::unix::fs::MetadataExt;
        if (mine.uid(), mine.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .map_err(fail("giving to the daemon's user"))?;
        }
    }
    Ok(())
}

/// The queued records in `spool`, if any: a queue left half-sealed by a crash comes first,
/// otherwise the queue is moved aside so `osiris update` starts a new one.
pub fn take_pending(spool: &Path) -> Result<Option<Pending>, QueueError> {
    let queue = spool.join(PENDING_FILE);
    let sealing = spool.join(format!("{PENDING_FILE}.sealing"));
    if !sealing.exists() {
        match fs::rename(&queue, &sealing) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(QueueError {
                    action: "taking",
                    path: queue,
                    source,
                });
            }
        }
    }
    let text = fs::read_to_string(&sealing).map_err(|source| QueueError {
        action: "reading",
        path: sealing.clone(),
        source,
    })?;
    Ok(Some(Pending {
        lines: text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        path: sealing,
    }))
}

impl Pending {
    /// The queued bodies, oldest first: each a record's JSON object, or the parser's complaint
    /// about a line that is not one.
    pub fn bodies(&self) -> impl Iterator<Item = Result<serde_json::Value, serde_json::Error>> {
        self.lines.iter().map(|line| serde_json::from_str(line))
    }

    /// The file being sealed (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Forgets the queued records once every one is sealed.
    pub fn done(self) -> Result<(), QueueError> {
        fs::remove_file(&self.path).map_err(|source| QueueError {
            action: "removing",
            path: self.path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: &str) -> UpdateRecord {
        UpdateRecord {
            step: step.to_owned(),
            outcome: "ok".to_owned(),
            at: "2026-01-01T00:00:00Z".to_owned(),
            version: None,
            system: None,
            detail: serde_json::json!({}),
        }
    }

    #[test]
    fn queued_records_come_back_in_order_and_a_half_sealed_queue_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(take_pending(dir.path()).expect("empty").is_none());
        enqueue(dir.path(), &[record("a"), record("b")]).expect("enqueue");
        let steps = |pending: &Pending| -> Vec<String> {
            pending
                .bodies()
                .map(|body| {
                    body.expect("json")["step"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        };
        let pending = take_pending(dir.path()).expect("take").expect("some");
        assert_eq!(steps(&pending), ["a", "b"]);
        // A crash before `done`: the next start seals the same records, and new ones wait.
        enqueue(dir.path(), &[record("c")]).expect("enqueue");
        let again = take_pending(dir.path()).expect("take").expect("some");
        assert_eq!(steps(&again), ["a", "b"]);
        again.done().expect("done");
        let next = take_pending(dir.path()).expect("take").expect("some");
        assert_eq!(steps(&next), ["c"]);
        next.done().expect("done");
        assert!(take_pending(dir.path()).expect("empty").is_none());
    }

    /// Issue 14 finding 5: root queues records; the daemon's (unprivileged) user must be able
    /// to read and take them. The queue file is given to the spool's owner; a process running as
    /// that user reads it and moves it aside.
    #[test]
    fn records_root_queues_belong_to_the_spools_owner() {
        if !test_support::require_root(
            "records_root_queues_belong_to_the_spools_owner",
            &["setpriv", "chown"],
        ) {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool).expect("spool");
        let chown = std::process::Command::new("chown")
            .arg("nobody:nogroup")
            .arg(&spool)
            .status()
            .expect("chown");
        assert!(chown.success());
        std::process::Command::new("chmod")
            .args(["0711", dir.path().to_str().expect("utf-8")])
            .status()
            .expect("chmod");
        enqueue(&spool, &[record("verify"), record("stage")]).expect("enqueue as root");
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(spool.join(PENDING_FILE)).expect("queued");
        let nobody = std::fs::metadata(&spool).expect("spool");
        assert_eq!((meta.uid(), meta.gid()), (nobody.uid(), nobody.gid()));
        // The daemon's side, as that user: read every line and take the queue.
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(["/bin/sh", "-c"])
            .arg(format!(
                "cat {q} && mv {q} {q}.sealing && echo taken",
                q = spool.join(PENDING_FILE).display()
            ))
            .output()
            .expect("setpriv");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\"step\":\"verify\"") && text.contains("taken"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

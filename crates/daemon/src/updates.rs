//! The image updater as the daemon sees it: its state for status and the console, and the
//! evidence records `osiris update` queued while the daemon held the store (sealed here as
//! `update` bundles, oldest first).

use std::path::Path;

use crate::Shared;

/// File `osiris update` appends to when it cannot open the store itself.
const PENDING: &str = "pending-evidence.jsonl";

/// The update state for status (`unavailable` when the updater was never set up here).
pub(crate) fn state(state_dir: &Path) -> api::UpdateState {
    let current = env!("CARGO_PKG_VERSION").to_owned();
    let unavailable = |detail: String| api::UpdateState {
        current: current.clone(),
        available: None,
        state: "unavailable".to_owned(),
        detail: Some(detail),
        can_apply: false,
        can_roll_back: false,
    };
    let path = state_dir.join(update::STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(_) => {
            return unavailable(
                "image updates are applied by your IT partner with `osiris update`".to_owned(),
            );
        }
    };
    let Ok(phase) = serde_json::from_slice::<update::Phase>(&bytes) else {
        return unavailable(format!(
            "{} cannot be read; ask your IT partner",
            path.display()
        ));
    };
    let version = phase.manifest().map(|m| m.version.clone());
    let (state, detail) = match &phase {
        update::Phase::Idle => ("idle", None),
        update::Phase::Downloaded { .. } => ("downloaded", Some("verifying the update".to_owned())),
        update::Phase::Verified { .. } => (
            "verified",
            Some("ready to install at the next restart".to_owned()),
        ),
        update::Phase::Staged { .. } => (
            "staged",
            Some("installs when the appliance restarts".to_owned()),
        ),
        update::Phase::Booted { deadline, .. } => (
            "pending_health",
            Some(format!(
                "checking the new version is healthy (until {deadline})"
            )),
        ),
        update::Phase::Good { .. } => ("good", None),
        update::Phase::RolledBack { reason, .. } => (
            "rolled_back",
            Some(format!("went back to the previous version: {reason}")),
        ),
        _ => ("unknown", None),
    };
    api::UpdateState {
        current,
        available: version,
        state: state.to_owned(),
        detail,
        // Applying reboots the appliance; the partner does it with `osiris update apply`.
        can_apply: false,
        can_roll_back: false,
    }
}

/// Seals the records `osiris update` queued; the queue is removed once all are sealed.
pub(crate) async fn seal_pending(shared: &Shared) {
    let dir = &shared.config.daemon.update_state_dir;
    let queue = dir.join(PENDING);
    let sealing = dir.join(format!("{PENDING}.sealing"));
    // A queue left half-sealed by a crash is finished first (records may repeat, never vanish).
    if !sealing.exists() && std::fs::rename(&queue, &sealing).is_err() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(&sealing) else {
        return;
    };
    let mut sealed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let body: serde_json::Value = match serde_json::from_str(line) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(file = %sealing.display(), error = %err, "Skipping an unreadable queued update record.");
                continue;
            }
        };
        let appended = shared
            .store
            .append(evidence::BundleDraft {
                site: shared.config.site.clone(),
                kind: update::KIND_UPDATE.to_owned(),
                catalog: String::new(),
                time: time::OffsetDateTime::now_utc(),
                body,
            })
            .await;
        if let Err(err) = appended {
            tracing::error!(error = %format!("{:#}", anyhow::Error::new(err)), "Could not seal a queued update record; will retry.");
            return;
        }
        sealed += 1;
    }
    let _ = std::fs::remove_file(&sealing);
    tracing::info!(
        records = sealed,
        "Sealed the update records `osiris update` queued."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_updater_means_unavailable_and_a_rollback_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state(dir.path()).state, "unavailable");
        std::fs::write(dir.path().join(update::STATE_FILE), b"{\"phase\":\"idle\"}").unwrap();
        assert_eq!(state(dir.path()).state, "idle");
        std::fs::write(dir.path().join(update::STATE_FILE), b"{\"phase\":").unwrap();
        let damaged = state(dir.path());
        assert_eq!(damaged.state, "unavailable");
        assert!(damaged.detail.unwrap().contains("cannot be read"));
    }
}

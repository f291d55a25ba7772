//! The image updater as the daemon sees it: its state for status and the console (read through
//! `update::read_phase`), and the evidence records `osiris update` queued while the daemon held
//! the store (taken from `update`'s queue and sealed here as `update` bundles, oldest first).

use std::path::Path;

use crate::Shared;

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
    let phase = match update::read_phase(state_dir) {
        Ok(Some(phase)) => phase,
        Ok(None) => {
            return unavailable(
                "image updates are applied by your IT partner with `osiris update`".to_owned(),
            );
        }
        Err(_) => {
            return unavailable(format!(
                "{} cannot be read; ask your IT partner",
                state_dir.join(update::STATE_FILE).display()
            ));
        }
    };
    // Records the updater queued but this daemon cannot read never reach the evidence log:
    // say so rather than report an update as if it were recorded.
    let spool = update::spool_dir(state_dir);
    if let Err(err) = std::fs::read_dir(&spool)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        return unavailable(format!(
            "the update records queued in {} cannot be read ({err}), so they are not in the evidence log; ask your IT partner",
            spool.display()
        ));
    }
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
    let spool = update::spool_dir(&shared.settings.config.daemon.update_state_dir);
    let pending = match update::take_pending(&spool) {
        Ok(Some(pending)) => pending,
        Ok(None) => return,
        Err(err) => {
            tracing::error!(error = %format!("{:#}", anyhow::Error::new(err)), "Could not read the queued update records; will retry.");
            return;
        }
    };
    let mut sealed = 0;
    for body in pending.bodies() {
        let body = match body {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(file = %pending.path().display(), error = %err, "Skipping an unreadable queued update record.");
                continue;
            }
        };
        let appended = shared
            .store
            .append(evidence::BundleDraft {
                site: shared.settings.config.site.clone(),
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
    if let Err(err) = pending.done() {
        tracing::error!(error = %format!("{:#}", anyhow::Error::new(err)), "Could not remove the sealed update records; they will be sealed again.");
    }
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

    /// Issue 14 finding 5: update records the daemon cannot read are said in status, not
    /// silently left out of the evidence log. (As root every directory is readable, so the spool
    /// here is made unreadable by being a file; on NixOS the cause was the mode.)
    #[test]
    fn a_spool_the_daemon_cannot_read_shows_in_status() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(update::STATE_FILE), b"{\"phase\":\"idle\"}").unwrap();
        std::fs::create_dir(update::spool_dir(dir.path())).unwrap();
        assert_eq!(state(dir.path()).state, "idle");
        std::fs::remove_dir(update::spool_dir(dir.path())).unwrap();
        std::fs::write(update::spool_dir(dir.path()), b"not a directory").unwrap();
        let state = state(dir.path());
        assert_eq!(state.state, "unavailable");
        let detail = state.detail.unwrap();
        assert!(
            detail.contains("cannot be read") && detail.contains("not in the evidence log"),
            "{detail}"
        );
    }
}

//! Issue 14, finding 9: checks run as root used `/tmp/osiris-<name>.$$`; a local user who
//! plants symlinks at those names (the PIDs come in sequence) makes root write the check's
//! output through them. Here the symlinks are planted for the next PIDs, every affected check
//! runs through the local transport, and the file they point at must stay untouched.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use model::{DeviceType, Platform, Target};

/// Names the old scripts used, with the PID appended.
const OLD_NAMES: [&str; 4] = ["osiris-ww", "osiris-suid", "osiris-weak", "osiris-sshd-t"];
/// How many upcoming PIDs get a symlink per name.
const PIDS_AHEAD: u32 = 1500;

/// Removes the planted links even when an assertion fails.
struct Planted(Vec<PathBuf>);

impl Drop for Planted {
    fn drop(&mut self) {
        for link in &self.0 {
            let _ = std::fs::remove_file(link);
        }
    }
}

#[test]
fn symlinks_planted_at_the_old_temporary_paths_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let last_pid: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut planted = Planted(Vec::new());
    for pid in last_pid + 1..=last_pid + PIDS_AHEAD {
        for name in OLD_NAMES {
            let link = PathBuf::from(format!("/tmp/{name}.{pid}"));
            if symlink(&victim, &link).is_ok() {
                planted.0.push(link);
            }
        }
    }
    assert!(
        planted.0.len() > PIDS_AHEAD as usize,
        "could not plant the links"
    );

    let catalog = catalog::embedded().unwrap();
    let runbooks: Vec<_> = ["LIN-PERM-003", "LIN-SUIDBASE-001", "LIN-CRYPTO-001"]
        .iter()
        .map(|id| catalog.get(id).unwrap())
        .collect();
    let target = Target {
        name: "localhost".to_owned(),
        platform: Platform::Linux,
        device_type: DeviceType::Server,
    };
    let context = scan::ScriptContext {
        overrides: &Default::default(),
        powershell_prelude: "",
    };
    // Batched, and one by one as the fallback runs them.
    let (report, _) = scan::scan_target(&target, &scan_local::LocalTransport, &runbooks, &context);
    assert_eq!(report.results.len(), 3);
    for runbook in &runbooks {
        scan::scan_target(&target, &scan_local::LocalTransport, &[*runbook], &context);
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for result in &report.results {
        assert_ne!(
            result.outcome.status,
            model::CheckStatus::Error,
            "{}: {}",
            result.runbook_id,
            result.outcome.reason
        );
    }
}

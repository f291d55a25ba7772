//! The agent's swap on real files: executables replaced and run, confirmation, rollback after
//! the deadline and after a crash loop, tampered and downgraded releases refused.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_release::swap::{MAX_TRIAL_STARTS, OutcomeKind, Startup, UpdateError, Updater};
use agent_release::{Platform, VerifiedRelease, vendor, verify_offer};

use common::*;

struct Machine {
    _tmp: tempfile::TempDir,
    exe: PathBuf,
    downloads: PathBuf,
    updater: Updater,
}

fn script(version: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho {version}\n").into_bytes()
}

fn machine() -> Machine {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("osiris-agent");
    std::fs::write(&exe, script("1.0.0")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let updater = Updater::new(exe.clone(), tmp.path().join("state")).unwrap();
    Machine {
        _tmp: tmp,
        exe,
        downloads,
        updater,
    }
}

/// A verified release of `version` whose binary is a script printing it, downloaded.
fn offer(machine: &Machine, version: &str) -> (VerifiedRelease, PathBuf) {
    let (root, _, release_1) = first_root();
    let binary = script(version);
    let manifest = vendor::sign_manifest(
        &manifest_spec(Platform::LinuxX86_64, version, &binary),
        &[&release_1],
    )
    .unwrap();
    let release = verify_offer(
        &root,
        &[] as &[&[u8]],
        &manifest,
        v("0.0.1"),
        Platform::LinuxX86_64,
        NOW,
    )
    .unwrap();
    let downloaded = machine.downloads.join(format!("agent-{version}"));
    std::fs::write(&downloaded, &binary).unwrap();
    (release, downloaded)
}

fn run(exe: &Path) -> String {
    let out = Command::new(exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn siblings(machine: &Machine) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(machine.exe.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_update_is_swapped_in_runs_and_stays_once_confirmed() {
    let m = machine();
    assert_eq!(m.updater.startup(v("1.0.0"), NOW).unwrap(), Startup::Normal);
    let (release, downloaded) = offer(&m, "1.1.0");
    let installed = m
        .updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    assert_eq!(installed.deadline_unix, NOW + 600);
    assert_eq!(run(&m.exe), "1.1.0");
    assert_eq!(siblings(&m), ["osiris-agent", "osiris-agent.old"]);
    assert_eq!(run(&m.exe.with_file_name("osiris-agent.old")), "1.0.0");

    // The new binary starts (service manager), is on trial, connects, confirms.
    let startup = m.updater.startup(v("1.1.0"), NOW + 5).unwrap();
    assert_eq!(
        startup,
        Startup::Trial {
            from: v("1.0.0"),
            to: v("1.1.0"),
            deadline_unix: NOW + 600,
            starts: 1
        }
    );
    assert!(m.updater.confirm_connected(v("1.1.0"), NOW + 10).unwrap());
    assert!(!m.updater.confirm_connected(v("1.1.0"), NOW + 11).unwrap());
    assert_eq!(siblings(&m), ["osiris-agent"]);
    // Past the old deadline nothing happens any more.
    assert_eq!(
        m.updater.startup(v("1.1.0"), NOW + 9999).unwrap(),
        Startup::Normal
    );
    assert_eq!(run(&m.exe), "1.1.0");
    let outcome = m.updater.take_outcome().unwrap().unwrap();
    assert_eq!(outcome.result, OutcomeKind::Confirmed);
    assert_eq!(
        (outcome.from.as_str(), outcome.to.as_str()),
        ("1.0.0", "1.1.0")
    );
    assert_eq!(m.updater.take_outcome().unwrap(), None);
}

#[test]
fn no_confirmation_by_the_deadline_rolls_back_and_the_version_is_refused_after() {
    let m = machine();
    let (release, downloaded) = offer(&m, "1.1.0");
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    assert!(matches!(
        m.updater.startup(v("1.1.0"), NOW + 1).unwrap(),
        Startup::Trial { .. }
    ));

    // It ran but never reached the appliance; it restarts after the deadline.
    let Startup::RolledBack(outcome) = m.updater.startup(v("1.1.0"), NOW + 600).unwrap() else {
        panic!("expected a rollback");
    };
    assert_eq!(outcome.result, OutcomeKind::RolledBack);
    assert!(
        outcome.reason.contains("did not confirm a connection"),
        "{}",
        outcome.reason
    );
    assert_eq!(run(&m.exe), "1.0.0");
    assert_eq!(siblings(&m), ["osiris-agent"]);

    // The old binary starts normally and reports the rollback once.
    assert_eq!(
        m.updater.startup(v("1.0.0"), NOW + 601).unwrap(),
        Startup::Normal
    );
    assert_eq!(
        m.updater.take_outcome().unwrap().unwrap().result,
        OutcomeKind::RolledBack
    );
    let err = m
        .updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW + 700)
        .unwrap_err();
    assert!(matches!(err, UpdateError::RolledBackBefore { .. }), "{err}");

    // A deadline reached while running: the agent asks for the rollback itself.
    let (newer, downloaded) = offer(&m, "1.2.0");
    m.updater
        .install(&newer, &downloaded, v("1.0.0"), 60, NOW + 800)
        .unwrap();
    assert!(matches!(
        m.updater.startup(v("1.2.0"), NOW + 801).unwrap(),
        Startup::Trial { .. }
    ));
    let outcome = m
        .updater
        .roll_back(v("1.2.0"), "no acknowledged Hello in 60 s", NOW + 861)
        .unwrap();
    assert_eq!(outcome.unwrap().reason, "no acknowledged Hello in 60 s");
    assert_eq!(run(&m.exe), "1.0.0");
    assert_eq!(
        m.updater.roll_back(v("1.0.0"), "again", NOW + 862).unwrap(),
        None
    );
}

#[test]
fn a_crash_loop_ends_on_the_old_binary() {
    let m = machine();
    let (release, downloaded) = offer(&m, "2.0.0");
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 3600, NOW)
        .unwrap();
    for start in 1..=MAX_TRIAL_STARTS {
        let startup = m
            .updater
            .startup(v("2.0.0"), NOW + u64::from(start))
            .unwrap();
        assert!(
            matches!(startup, Startup::Trial { starts, .. } if starts == start),
            "{startup:?}"
        );
        // ... and crashes before confirming.
    }
    let Startup::RolledBack(outcome) = m.updater.startup(v("2.0.0"), NOW + 10).unwrap() else {
        panic!("expected a rollback");
    };
    assert!(
        outcome.reason.contains("started 4 times"),
        "{}",
        outcome.reason
    );
    assert_eq!(run(&m.exe), "1.0.0");
}

#[test]
fn tampered_and_downgraded_releases_change_nothing() {
    let m = machine();
    let (release, downloaded) = offer(&m, "1.1.0");
    std::fs::write(&downloaded, script("6.6.6")).unwrap();
    let err = m
        .updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap_err();
    assert!(matches!(err, UpdateError::Mismatch(_)), "{err}");
    std::fs::write(&downloaded, b"").unwrap();
    let err = m
        .updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap_err();
    assert!(err.to_string().contains("0 bytes"), "{err}");
    assert_eq!(siblings(&m), ["osiris-agent"]);
    assert_eq!(run(&m.exe), "1.0.0");
    assert_eq!(m.updater.startup(v("1.0.0"), NOW).unwrap(), Startup::Normal);

    let (release, downloaded) = offer(&m, "1.1.0");
    for running in ["1.1.0", "1.2.0"] {
        let err = m
            .updater
            .install(&release, &downloaded, v(running), 600, NOW)
            .unwrap_err();
        assert!(matches!(err, UpdateError::NotNewer { .. }), "{err}");
    }
    assert_eq!(run(&m.exe), "1.0.0");

    // A second update while one is on trial is refused too.
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    let (newer, downloaded) = offer(&m, "1.2.0");
    let err = m
        .updater
        .install(&newer, &downloaded, v("1.1.0"), 600, NOW)
        .unwrap_err();
    assert!(matches!(err, UpdateError::Pending { .. }), "{err}");
}

/// The running process is a real ELF executable: replacing its file by rename neither fails
/// (no "text file busy") nor disturbs it.
#[test]
fn a_running_executable_is_replaced_under_it() {
    let m = machine();
    std::fs::copy("/bin/sleep", &m.exe).unwrap();
    let mut running = Command::new(&m.exe).arg("30").spawn().unwrap();
    let (release, downloaded) = offer(&m, "1.1.0");
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    assert_eq!(run(&m.exe), "1.1.0");
    assert_eq!(
        running.try_wait().unwrap(),
        None,
        "the old process still runs"
    );
    running.kill().unwrap();
    running.wait().unwrap();

    // Rolled back, the old ELF is in place and runs.
    m.updater.startup(v("1.1.0"), NOW + 600).unwrap();
    let status = Command::new(&m.exe).arg("0").status().unwrap();
    assert!(status.success());
}

#[test]
fn an_interrupted_swap_or_an_unreadable_marker_ends_on_the_old_binary() {
    // The marker was written but the old version started again: nothing to roll back.
    let m = machine();
    let (release, downloaded) = offer(&m, "1.1.0");
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    std::fs::write(&m.exe, script("1.0.0")).unwrap();
    assert_eq!(
        m.updater.startup(v("1.0.0"), NOW + 1).unwrap(),
        Startup::Normal
    );
    let outcome = m.updater.take_outcome().unwrap().unwrap();
    assert_eq!(outcome.result, OutcomeKind::Abandoned);
    assert_eq!(siblings(&m), ["osiris-agent"]);

    // A damaged state file while a backup exists: roll back.
    let m = machine();
    let (release, downloaded) = offer(&m, "1.1.0");
    m.updater
        .install(&release, &downloaded, v("1.0.0"), 600, NOW)
        .unwrap();
    let state = m
        .exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("state/update-state.json");
    std::fs::write(&state, b"{garbage").unwrap();
    let startup = m.updater.startup(v("1.1.0"), NOW + 1).unwrap();
    assert!(
        matches!(startup, Startup::RolledBack(ref outcome) if outcome.reason.contains("unreadable")),
        "{startup:?}"
    );
    assert_eq!(run(&m.exe), "1.0.0");
    // Leftover staged files are cleaned at start.
    std::fs::write(m.exe.with_file_name(".osiris-agent.new"), b"x").unwrap();
    m.updater.startup(v("1.0.0"), NOW + 2).unwrap();
    assert_eq!(siblings(&m), ["osiris-agent"]);
}

#[test]
fn the_newest_root_walked_to_is_kept_and_a_damaged_one_ignored() {
    let m = machine();
    let (root_1, root_a, _) = first_root();
    let release_2 = key("release-2", 12);
    let root_2 = vendor::sign_root(&root_spec(2, &[&root_a], &[&release_2]), &[&root_a]).unwrap();
    assert_eq!(m.updater.trusted_root(root_1.bytes()).unwrap().version(), 1);
    let walked = root_1.walk(&[&root_2]).unwrap();
    m.updater.save_root(&walked).unwrap();
    assert_eq!(m.updater.trusted_root(root_1.bytes()).unwrap().version(), 2);
    // An older root never replaces it.
    m.updater.save_root(&root_1).unwrap();
    assert_eq!(m.updater.trusted_root(root_1.bytes()).unwrap().version(), 2);
    let stored = m
        .exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("state/agent-root.json");
    std::fs::write(&stored, b"damaged").unwrap();
    assert_eq!(m.updater.trusted_root(root_1.bytes()).unwrap().version(), 1);
    assert!(m.updater.trusted_root(b"not a root").is_err());
}

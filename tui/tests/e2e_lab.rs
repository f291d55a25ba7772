//! Issue 7 acceptance: the real `osiris-console` under tmux, against a real `osirisd` scanning the
//! namespace lab. The wizard is completed by keystrokes, the first scan runs and its result
//! appears on the home screen, and the evidence kit exported from the console verifies with
//! `osiris evidence verify`.
//!
//! `osirisd` and `osiris` are taken from the same build directory as `osiris-console`
//! (`cargo test --workspace` builds all three before any test runs).

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tmux::{Cleanup, keys, screen, sibling, start_console, text, wait_for};
use test_support::lab::{LAB_TOOLS, Lab};

/// Unmounts a test stick when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_console_sets_up_the_appliance_scans_and_exports_a_verifiable_kit() {
    if !test_support::require_root(
        "the_console_sets_up_the_appliance_scans_and_exports_a_verifiable_kit",
        &[LAB_TOOLS, &["tmux"]].concat(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &dir.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let socket = dir.path().join("api.sock");
    let config = dir.path().join("appliance.toml");
    let site = std::fs::read_to_string(lab.config()).unwrap();
    std::fs::write(
        &config,
        format!(
            "{site}\n[evidence]\ncalendars = []\n\n[daemon]\nsocket = \"{}\"\nserver_scan_secs = 3600\njitter_percent = 0\nexport_roots = [\"{}\"]\n",
            socket.display(),
            dir.path().join("media").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("osirisd.log");
    let daemon = Command::new(sibling("osirisd"))
        .args(["--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let session = format!("osiris-e2e-{}", std::process::id());
    let _cleanup = Cleanup {
        daemon,
        session: session.clone(),
    };
    start_console(&session, &socket, 100, 30);

    // Step 1: network, DHCP on the first port (once the daemon has listed the ports).
    wait_for(&session, "Step 1 of 8 — Network", 30, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while screen(&session).contains("looking for network ports") {
        assert!(
            Instant::now() < deadline,
            "the daemon never listed the network ports"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    keys(&session, &["Enter"]);
    // Step 2: the claim code the partner reads out.
    wait_for(&session, "Step 2 of 8 — Site claim", 15, &log);
    text(&session, "LAB1-E2E0");
    wait_for(&session, "LAB1-E2E0", 15, &log);
    keys(&session, &["Enter"]);
    // Steps 3–5: no directory and no extra credentials on this site (left empty = skipped).
    wait_for(&session, "Step 3 of 8 — Active Directory", 15, &log);
    keys(&session, &["Enter"]);
    wait_for(&session, "Step 4 of 8 — Windows credentials", 15, &log);
    keys(&session, &["Enter"]);
    wait_for(&session, "Step 5 of 8 — Linux credentials", 15, &log);
    keys(&session, &["Enter"]);
    // Step 6: time zone (garbage first: refused with a hint, nothing sent).
    wait_for(&session, "Step 6 of 8 — Time zone", 15, &log);
    keys(&session, &["BSpace", "BSpace", "BSpace"]);
    text(&session, "chicago");
    wait_for(&session, "chicago█", 15, &log);
    wait_for(&session, "Type Area/City", 15, &log);
    keys(&session, &["Enter"]);
    // Refused: the field keeps its focus, so what is typed next still lands in it.
    keys(&session, &["BSpace"; "chicago".len()]);
    text(&session, "America/Chicago");
    let corrected = wait_for(&session, "America/Chicago█", 15, &log);
    assert!(corrected.contains("Step 6 of 8"), "{corrected}");
    keys(&session, &["Enter"]);
    // Step 7: the console PIN, typed twice.
    wait_for(&session, "Step 7 of 8 — Console PIN", 15, &log);
    text(&session, "24681357");
    keys(&session, &["Tab"]);
    text(&session, "24681357");
    wait_for(&session, "••••••••█", 15, &log);
    keys(&session, &["Enter"]);
    // Step 8: run the first scan; progress, then home with the result, behind the lock.
    wait_for(&session, "Step 8 of 8 — Finish", 15, &log);
    keys(&session, &["Enter"]);
    wait_for(&session, "This console is locked.", 180, &log);
    text(&session, "24681357");
    keys(&session, &["Enter"]);
    let home = wait_for(&session, "╭ Today", 30, &log);
    let home = if home.contains("devices checked") {
        home
    } else {
        wait_for(&session, "devices checked", 30, &log)
    };
    assert!(
        home.contains("2 devices checked") || home.contains("All 2 devices"),
        "{home}"
    );

    // What the daemon recorded from the wizard.
    let setup = api::Client::new(&socket)
        .call(&api::endpoint::Setup, &())
        .unwrap();
    assert!(setup.complete);
    assert_eq!(setup.timezone, "America/Chicago");
    assert_eq!(setup.claim.claimed_with.as_deref(), Some("LAB1-E2E0"));
    assert!(setup.pin_set);
    let status = api::Client::new(&socket).status().unwrap();
    assert_eq!(status.devices.checked, 2);

    // Export the kit from the Evidence screen to a "USB stick" directory.
    // The "USB stick": its own filesystem, mounted below the export root (as the appliance's
    // automounter does), since kits go nowhere else.
    let usb = dir.path().join("media/usb");
    std::fs::create_dir_all(&usb).unwrap();
    assert!(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256m", "osiris-test-usb"])
            .arg(&usb)
            .status()
            .unwrap()
            .success()
    );
    let _unmount = Unmount(usb.clone());
    keys(&session, &["F5"]);
    wait_for(&session, "Records", 15, &log);
    keys(&session, &["e"]);
    wait_for(&session, "Folder to write the kit into:", 15, &log);
    // Replace whatever folder is suggested.
    keys(&session, &["BSpace"; 80]);
    text(&session, usb.to_str().unwrap());
    wait_for(&session, &format!("{}█", usb.display()), 15, &log);
    keys(&session, &["Enter"]);
    let done = wait_for(&session, "osiris-evidence-lab-", 120, &log);
    let kits: Vec<PathBuf> = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kits.len(), 1, "{kits:?}\n{done}");
    let verify = Command::new(sibling("osiris"))
        // The kit's origin is not what this test is about: accept its own key knowingly.
        .args([
            "evidence",
            "verify",
            kits[0].to_str().unwrap(),
            "--trust-kit-key",
        ])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

//! Issue 19: the real `osiris-console` under tmux, against a real `osirisd` that made last
//! month's compliance packet at start, lists the packet and the accepted risks and attestations
//! with their expiry on the Evidence screen, and exports the packet onto a USB stick (a tmpfs
//! mounted below the daemon's export root) through the daemon's export: every file arrives with
//! the SHA-256 its manifest names.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;

use sha2::Digest as _;
use time::OffsetDateTime;

use common::tmux::{self, keys, text, unlocked_console, wait_for};

const PIN: &str = "13572468";

/// A tmpfs mounted as a fake USB stick, unmounted when dropped.
struct Stick(std::path::PathBuf);

impl Drop for Stick {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn draft(kind: &str, at: OffsetDateTime, body: serde_json::Value) -> evidence::BundleDraft {
    evidence::BundleDraft {
        site: "e2e".to_owned(),
        kind: kind.to_owned(),
        catalog: "test".to_owned(),
        time: at,
        body,
    }
}

/// Last month's evidence: a failing scan, an accepted risk that still counts and an
/// attestation that expired yesterday.
fn seed(data_dir: &Path, now: OffsetDateTime) -> String {
    let first = now.date().replace_day(1).unwrap();
    let at = first
        .previous_day()
        .unwrap()
        .replace_day(3)
        .unwrap()
        .with_hms(12, 0, 0)
        .unwrap()
        .assume_utc();
    let stamp = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let scan = serde_json::json!({
        "target": {"name": "pacs-01", "platform": "linux", "device_type": "server"},
        "started": stamp, "finished": stamp,
        "results": [{
            "check": "LIN-SSH-002", "title": "SSH password authentication disabled", "severity": "high",
            "status": "fail", "observed": {"password_authentication": "yes"},
            "expected": "password_authentication = no", "reason": "password_authentication is \"yes\"",
            "controls": []
        }],
        "summary": {"total": 1, "pass": 0, "fail": 1, "error": 0, "skipped": 0}
    });
    let today = now.date();
    let drafts = vec![
        draft("scan", at, scan),
        draft(
            "exception",
            at,
            serde_json::json!({
                "check": "LIN-SSH-002", "target": "pacs-01", "reason": "vendor needs passwords",
                "compensating": "imaging VLAN only", "owner": "Dr. Ada Example",
                "expires": (today + time::Duration::days(40)).to_string(),
            }),
        ),
        draft(
            "attestation",
            at,
            serde_json::json!({
                "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis reviewed",
                "by": "Office manager", "expires": (today - time::Duration::days(1)).to_string(),
                "document": null,
            }),
        ),
    ];
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = ops::setup::open_store(data_dir, "e2e").await.unwrap();
            for d in drafts {
                store.append(d).await.unwrap();
            }
            store.create_checkpoint().await.unwrap();
            store.close().await;
        });
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

#[test]
fn the_console_lists_the_monthly_packet_and_exports_it_to_a_stick() {
    if !tmux::available("the_console_lists_the_monthly_packet_and_exports_it_to_a_stick")
        || !test_support::require_root(
            "the_console_lists_the_monthly_packet_and_exports_it_to_a_stick",
            &["mount", "umount"],
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let period = seed(&data_dir, OffsetDateTime::now_utc());
    let socket = dir.path().join("api.sock");
    let media = dir.path().join("media");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"e2e\"\ndata_dir = \"{}\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\nexport_roots = [\"{}\"]\n",
            data_dir.display(),
            socket.display(),
            media.display()
        ),
    )
    .unwrap();
    let usb = media.join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "osiris-test-usb"])
        .arg(&usb)
        .status()
        .unwrap()
        .success();
    assert!(mounted, "mount tmpfs at {}", usb.display());
    let _stick = Stick(usb.clone());
    let log = dir.path().join("osirisd.log");
    let session = format!("osiris-e2e-evidence-{}", std::process::id());
    let (_cleanup, client) = unlocked_console(&config, &socket, &log, &session, PIN);
    // The daemon makes the packet at start (last month's was missing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while client
        .status()
        .ok()
        .and_then(|s| s.evidence.last_packet)
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no packet:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    keys(&session, &["F5"]);
    let shown = wait_for(&session, &format!("› {period}  made"), 15, &log);
    for words in [
        "26 files",
        "Risk accepted: LIN-SSH-002 on pacs-01 until",
        "Expired",
        "counts no more: attested: HIPAA 164.308(a)(1)(ii)(A) (Office manager)",
    ] {
        assert!(shown.contains(words), "{words:?} missing:\n{shown}");
    }

    // M: the folder on the stick (whatever was prefilled is erased first), then Enter.
    keys(&session, &["m"]);
    wait_for(&session, "Export monthly packet", 15, &log);
    keys(&session, &["BSpace"; 80]);
    text(&session, &usb.display().to_string());
    keys(&session, &["Enter"]);
    let done = wait_for(&session, "The packet is on the USB stick", 60, &log);
    assert!(done.contains("26 files"), "{done}");

    let copies: Vec<_> = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    assert!(
        copy.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("osiris-packet-e2e-{period}-")),
        "{}",
        copy.display()
    );
    let manifest = std::fs::read_to_string(copy.join("MANIFEST.sha256")).unwrap();
    assert_eq!(manifest.lines().count(), 25);
    for line in manifest.lines() {
        let (sha256, name) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(copy.join(name)).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha256, "{name}");
    }
    let html = std::fs::read_to_string(copy.join(format!("hipaa-{period}.html"))).unwrap();
    assert!(html.contains("pacs-01"), "the report names the device");
}

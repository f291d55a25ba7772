//! OpenTimestamps end to end through the `osiris` binary: anchor a checkpoint at a local
//! calendar, upgrade once it is mined, export, verify against block headers (file and Esplora),
//! and have the reference Python library read the kit's `.ots` file.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use test_support::calendar::LabCalendar;

fn osiris(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn anchor_upgrade_export_and_verify_against_bitcoin_headers() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let calendar = LabCalendar::start().unwrap();
    let url = calendar.base_url();

    ok(&osiris(dir, &["scan"]));
    let out = ok(&osiris(dir, &["evidence", "anchor", "--calendar", url]));
    assert!(
        out.contains("checkpoint 1 submitted to 1 of 1 calendars"),
        "{out}"
    );
    assert!(
        ok(&osiris(dir, &["evidence", "show"]))
            .contains(&format!("checkpoint 1: pending at {url}"))
    );
    assert!(ok(&osiris(dir, &["evidence", "upgrade"])).contains("checkpoint 1: still pending"));

    let height = calendar.mine();
    let out = ok(&osiris(dir, &["evidence", "upgrade"]));
    assert!(
        out.contains(&format!("checkpoint 1: anchored in Bitcoin block {height}")),
        "{out}"
    );

    // A later scan adds bundles and a newer checkpoint, which is not anchored yet.
    ok(&osiris(dir, &["scan"]));
    ok(&osiris(dir, &["evidence", "export", "--out", "kit"]));
    let ots_file = dir.join("kit/checkpoints/000000000001.txt.ots");
    assert!(ots_file.exists());

    // Without headers the anchor is reported but not checked; with them it is.
    let out = ok(&osiris(dir, &["evidence", "verify", "kit"]));
    assert!(out.contains(&format!("Bitcoin block {height}")), "{out}");
    std::fs::write(dir.join("headers.txt"), calendar.headers_file()).unwrap();
    let out = ok(&osiris(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--block-headers",
            "headers.txt",
        ],
    ));
    assert!(out.contains("verified"), "{out}");
    let out = ok(&osiris(
        dir,
        &["evidence", "verify", "kit", "--esplora", url],
    ));
    assert!(out.contains("verified"), "{out}");
    let config = format!("site = \"clinic\"\n[evidence]\nesplora_url = \"{url}\"\n");
    std::fs::write(dir.join("site.toml"), config).unwrap();
    let out = ok(&osiris(
        dir,
        &["evidence", "verify", "kit", "--config", "site.toml"],
    ));
    assert!(out.contains("verified"), "{out}");

    // A header from another block at that height (here: the next block's) must fail.
    let next = calendar.mine();
    let wrong = format!("{height} {}\n", calendar.header(next).unwrap().to_hex());
    std::fs::write(dir.join("wrong.txt"), wrong).unwrap();
    let out = osiris(
        dir,
        &["evidence", "verify", "kit", "--block-headers", "wrong.txt"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("000000000001.txt.ots"));

    // The reference implementation reads our kit's proof and agrees on digest and block.
    if let Some(python) = test_support::python::reference_python() {
        let script = test_support::python::CHECK_OTS_SCRIPT;
        let header = format!("{height}={}", calendar.header(height).unwrap().to_hex());
        let out = Command::new(python)
            .arg(script)
            .arg(&ots_file)
            .arg(header)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let checkpoint = std::fs::read(dir.join("kit/checkpoints/000000000001.txt")).unwrap();
        assert_eq!(json["digest"], hex::encode(Sha256::digest(&checkpoint)));
        assert_eq!(json["reserialized_identical"], true);
        let bitcoin: Vec<_> = json["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "bitcoin")
            .collect();
        assert_eq!(bitcoin.len(), 1, "{json}");
        assert_eq!(bitcoin[0]["height"], height);
        assert!(bitcoin[0]["verified_time"].is_u64(), "{json}");
    }
}

#[test]
fn anchor_with_no_reachable_calendar_fails_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(&osiris(dir, &["scan"]));
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    let out = osiris(
        dir,
        &["evidence", "anchor", "--calendar", "http://127.0.0.1:9"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no calendar accepted checkpoint 1"));
    let show = ok(&osiris(dir, &["evidence", "show"]));
    assert!(!show.contains("timestamp"), "{show}");
}

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
        .env_remove(ots::client::REGTEST_ENV)
        .output()
        .unwrap()
}

/// `osiris` in the test mode that accepts the lab calendar's regtest proof-of-work.
fn osiris_regtest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env(ots::client::REGTEST_ENV, "1")
        .output()
        .unwrap()
}

/// A configuration (site `local`, as the default) whose Esplora is `url`.
fn esplora_config(dir: &Path, url: &str) -> &'static str {
    let config = format!("site = \"local\"\n[evidence]\nesplora_url = \"{url}\"\n");
    std::fs::write(dir.join("esplora.toml"), config).unwrap();
    "esplora.toml"
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
    // Without an explorer to check the header, the calendar's claim is not believed.
    let out = ok(&osiris(dir, &["evidence", "upgrade"]));
    assert!(
        out.contains(&format!(
            "checkpoint 1: still pending: a calendar claims Bitcoin block {height}, UNVERIFIED"
        )),
        "{out}"
    );
    // Regtest headers carry too little work for a real appliance.
    let config = esplora_config(dir, url);
    let out = ok(&osiris(dir, &["evidence", "upgrade", "--config", config]));
    assert!(
        out.contains("UNVERIFIED") && out.contains("too little proof-of-work"),
        "{out}"
    );
    let out = ok(&osiris_regtest(
        dir,
        &["evidence", "upgrade", "--config", config],
    ));
    assert!(
        out.contains(&format!("checkpoint 1: anchored in Bitcoin block {height}")),
        "{out}"
    );

    // A later scan adds bundles and a newer checkpoint, which is not anchored yet.
    ok(&osiris(dir, &["scan"]));
    ok(&osiris(dir, &["evidence", "export", "--out", "kit"]));
    let ots_file = dir.join("kit/checkpoints/000000000001.txt.ots");
    assert!(ots_file.exists());

    // Without headers the anchor is reported as unverified; with them it is checked.
    let out = ok(&osiris(
        dir,
        &["evidence", "verify", "kit", "--trust-kit-key"],
    ));
    assert!(
        out.contains(&format!(
            "Bitcoin attestation at block {height}, UNVERIFIED"
        )),
        "{out}"
    );
    std::fs::write(dir.join("headers.txt"), calendar.headers_file()).unwrap();
    // A headers file of cheap (regtest) headers is refused outside the test mode.
    let out = osiris(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--block-headers",
            "headers.txt",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too little proof-of-work"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = osiris(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--esplora",
            url,
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let out = ok(&osiris_regtest(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--block-headers",
            "headers.txt",
        ],
    ));
    assert!(out.contains("verified"), "{out}");
    let out = ok(&osiris_regtest(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--esplora",
            url,
        ],
    ));
    assert!(out.contains("verified"), "{out}");
    let config = format!("site = \"clinic\"\n[evidence]\nesplora_url = \"{url}\"\n");
    std::fs::write(dir.join("site.toml"), config).unwrap();
    let out = ok(&osiris_regtest(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--config",
            "site.toml",
        ],
    ));
    assert!(out.contains("verified"), "{out}");

    // A header from another block at that height (here: the next block's) must fail.
    let next = calendar.mine();
    let wrong = format!("{height} {}\n", calendar.header(next).unwrap().to_hex());
    std::fs::write(dir.join("wrong.txt"), wrong).unwrap();
    let out = osiris_regtest(
        dir,
        &[
            "evidence",
            "verify",
            "kit",
            "--trust-kit-key",
            "--block-headers",
            "wrong.txt",
        ],
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

/// Issue 14, finding 4: one calendar that answers with a Bitcoin attestation of its own making
/// (here: a block of its own chain) must neither mark the proof anchored nor stop the upgrades
/// from the honest calendar.
#[test]
fn a_lying_calendar_neither_anchors_the_proof_nor_stops_real_anchoring() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let honest = LabCalendar::start().unwrap();
    let liar = LabCalendar::start().unwrap();
    let config = esplora_config(dir, honest.base_url());

    ok(&osiris(dir, &["scan"]));
    let out = ok(&osiris(
        dir,
        &[
            "evidence",
            "anchor",
            "--calendar",
            honest.base_url(),
            "--calendar",
            liar.base_url(),
        ],
    ));
    assert!(out.contains("submitted to 2 of 2 calendars"), "{out}");

    let claimed = liar.mine();
    let out = ok(&osiris_regtest(
        dir,
        &["evidence", "upgrade", "--config", config],
    ));
    assert!(
        out.contains(&format!(
            "checkpoint 1: still pending: a calendar claims Bitcoin block {claimed}, UNVERIFIED"
        )),
        "{out}"
    );
    assert!(
        ok(&osiris(dir, &["evidence", "show"])).contains("checkpoint 1: pending at"),
        "the liar's claim anchored the proof"
    );

    // The honest calendar is still asked and its block, checked against the explorer, anchors.
    let asked = honest.n_requests();
    let height = honest.mine();
    let out = ok(&osiris_regtest(
        dir,
        &["evidence", "upgrade", "--config", config],
    ));
    assert!(
        out.contains(&format!("checkpoint 1: anchored in Bitcoin block {height}")),
        "{out}"
    );
    assert!(honest.n_requests() > asked);
    assert!(
        ok(&osiris(dir, &["evidence", "show"]))
            .contains(&format!("checkpoint 1: anchored in Bitcoin block {height}"))
    );
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

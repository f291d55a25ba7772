//! Cross-check with the reference Python library: it must read our proofs exactly as we do.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ots::DetachedTimestamp;
use ots::client::{CalendarAllowlist, CalendarClient};
use sha2::{Digest, Sha256};
use test_support::calendar::LabCalendar;

fn python() -> Option<PathBuf> {
    test_support::python::reference_python()
}

fn run_python(
    python: &PathBuf,
    ots_path: &std::path::Path,
    headers: &[String],
) -> serde_json::Value {
    let script = test_support::python::CHECK_OTS_SCRIPT;
    let output = Command::new(python)
        .arg(script)
        .arg(ots_path)
        .args(headers)
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", python.display()));
    assert!(
        output.status.success(),
        "python check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "python printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test]
async fn reference_library_reads_our_pending_and_complete_proofs() {
    let Some(python) = python() else { return };
    let dir = std::env::temp_dir().join(format!("ots-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let calendar = LabCalendar::start().unwrap();
    let client = CalendarClient::new(Duration::from_secs(10)).unwrap();
    let digest: [u8; 32] = Sha256::digest(b"checkpoint file\n").into();
    let mut detached = DetachedTimestamp::from_sha256_digest(digest);
    for _ in 0..3 {
        // Three submissions of the same digest give three branches and a 3-leaf calendar tree.
        let stamp = client.submit(calendar.base_url(), &digest).await.unwrap();
        detached.timestamp.merge(stamp).unwrap();
    }

    let pending_path = dir.join("pending.ots");
    std::fs::write(&pending_path, detached.to_bytes()).unwrap();
    let report = run_python(&python, &pending_path, &[]);
    assert_eq!(report["digest"], hex::encode(digest));
    assert_eq!(report["file_hash_op"], "sha256");
    assert_eq!(report["reserialized_identical"], true);
    let attestations = report["attestations"].as_array().unwrap();
    assert_eq!(attestations.len(), 3);
    let ours = detached.timestamp.all_attestations();
    for (msg, _) in &ours {
        assert!(
            attestations.iter().any(|a| a["kind"] == "pending"
                && a["uri"] == calendar.base_url()
                && a["msg"] == hex::encode(msg)),
            "python lacks pending attestation at {}: {report}",
            hex::encode(msg)
        );
    }

    let height = calendar.mine();
    client
        .upgrade(
            &mut detached,
            &CalendarAllowlist::for_submitted(&[calendar.base_url().to_owned()]),
        )
        .await
        .unwrap();
    let header = calendar.header(height).unwrap();
    let complete_path = dir.join("complete.ots");
    std::fs::write(&complete_path, detached.to_bytes()).unwrap();
    let report = run_python(
        &python,
        &complete_path,
        &[format!("{height}={}", header.to_hex())],
    );
    assert_eq!(report["reserialized_identical"], true);
    let attestations = report["attestations"].as_array().unwrap();
    assert_eq!(attestations.len(), 3, "{report}");
    for entry in attestations {
        assert_eq!(entry["kind"], "bitcoin", "{report}");
        assert_eq!(entry["height"], height);
        assert_eq!(entry["msg"], hex::encode(header.merkle_root()));
        assert_eq!(entry["verified_time"], header.time(), "{report}");
    }

    // A header of another block makes the reference verifier fail too.
    let other = calendar.mine();
    let wrong = calendar.header(other).unwrap();
    let report = run_python(
        &python,
        &complete_path,
        &[format!("{height}={}", wrong.to_hex())],
    );
    assert!(
        report["attestations"][0]["verify_error"].is_string(),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reference_library_reads_published_examples_as_we_do() {
    let Some(python) = python() else { return };
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    for name in [
        "hello-world.txt.ots",
        "two-calendars.txt.ots",
        "known-and-unknown-notary.txt.ots",
    ] {
        let path = PathBuf::from(data).join(name);
        let ours = DetachedTimestamp::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        let report = run_python(&python, &path, &[]);
        assert_eq!(report["digest"], hex::encode(ours.digest()), "{name}");
        assert_eq!(report["reserialized_identical"], true, "{name}");
        assert_eq!(
            report["attestations"].as_array().unwrap().len(),
            ours.timestamp.all_attestations().len(),
            "{name}"
        );
    }
}

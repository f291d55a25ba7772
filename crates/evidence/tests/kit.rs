//! Auditor kit export and verification, including the tamper acceptance suite.

use std::fs;
use std::path::{Path, PathBuf};

use evidence::kit::{self, KitError, KitSource, OtsStatus, VerifyOptions, VerifyReport};
use evidence::{ApplianceKey, BundleDraft, Checkpoint, LogWriter, note};
use sha2::{Digest, Sha256};

struct Log {
    key: ApplianceKey,
    lines: Vec<Vec<u8>>,
    checkpoints: Vec<String>,
}

/// Seals `n` bundles with small bodies, taking a checkpoint at each size in `checkpoint_sizes`.
fn build_log(key: ApplianceKey, n: u64, checkpoint_sizes: &[u64], tag: &str) -> Log {
    let mut writer = LogWriter::new(key.clone());
    let mut lines = Vec::new();
    let mut checkpoints = Vec::new();
    for seq in 0..n {
        let draft = BundleDraft {
            site: "clinic-1".to_owned(),
            kind: "scan".to_owned(),
            catalog: "2026.11".to_owned(),
            time: time::macros::datetime!(2026-11-28 03:40:12.5 UTC),
            body: serde_json::json!({"n": seq, "tag": tag}),
        };
        lines.push(writer.seal(&draft).expect("seal").line);
        if checkpoint_sizes.contains(&(seq + 1)) {
            checkpoints.push(writer.checkpoint().1);
        }
    }
    Log {
        key,
        lines,
        checkpoints,
    }
}

fn pending_ots(checkpoint_text: &str) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(checkpoint_text.as_bytes()).into();
    let mut detached = ots::DetachedTimestamp::from_sha256_digest(digest);
    detached
        .timestamp
        .add_attestation(ots::Attestation::pending("https://calendar.example").expect("uri"));
    detached.to_bytes()
}

fn export_log(
    out: &Path,
    log: &Log,
    ots_for: Option<(u64, usize)>,
) -> Result<kit::KitSummary, KitError> {
    let lines = log.lines.clone();
    kit::export(
        out,
        KitSource {
            key: &log.key,
            lines: Box::new(lines.into_iter().map(Ok)),
            checkpoints: log.checkpoints.clone(),
            ots: ots_for
                .map(|(size, idx)| (size, pending_ots(&log.checkpoints[idx])))
                .into_iter()
                .collect(),
            cosignatures: Vec::new(),
            auditor: None,
        },
    )
}

fn verify(dir: &Path) -> VerifyReport {
    kit::verify(dir, &VerifyOptions::default())
}

fn problems(report: &VerifyReport) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

/// Rewrites MANIFEST over the kit's current files, signed by `key` (an attacker who holds the key, or a test fixture).
fn resign_manifest(dir: &Path, key: &ApplianceKey) {
    let mut body = format!("osiris-kit/v1\n{}\n", key.origin());
    for path in all_files(dir) {
        if path == "MANIFEST" || path == "README.md" {
            continue;
        }
        let bytes = fs::read(dir.join(&path)).expect("read");
        body.push_str(&format!(
            "{} {} {path}\n",
            hex::encode(Sha256::digest(&bytes)),
            bytes.len()
        ));
    }
    fs::write(dir.join("MANIFEST"), note::sign(&body, key)).expect("write");
}

fn all_files(dir: &Path) -> Vec<String> {
    let mut res = Vec::new();
    for sub in ["", "checkpoints", "proofs"] {
        for entry in fs::read_dir(dir.join(sub)).expect("dir").flatten() {
            if entry.file_type().expect("type").is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                res.push(if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                });
            }
        }
    }
    res.sort();
    res
}

fn assert_names(report: &VerifyReport, needle: &str) {
    let list = problems(report);
    assert!(
        list.iter().any(|problem| problem.contains(needle)),
        "expected a problem mentioning {needle:?}, got {list:#?}"
    );
}

#[test]
fn exported_kit_verifies_clean_and_has_the_documented_layout() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 300, &[100, 200, 300], "a");
    let out = temp.path().join("kit");
    let summary = export_log(&out, &log, Some((200, 1))).expect("export");
    assert_eq!(
        (
            summary.bundles,
            summary.checkpoints,
            summary.signed_final_checkpoint
        ),
        (300, 3, false)
    );
    assert_eq!(
        all_files(&out),
        [
            "MANIFEST",
            "README.md",
            "appliance.pub",
            "bundles.jsonl",
            "checkpoints/000000000100.txt",
            "checkpoints/000000000200.txt",
            "checkpoints/000000000200.txt.ots",
            "checkpoints/000000000300.txt",
            "proofs/consistency-000000000100-000000000200.txt",
            "proofs/consistency-000000000200-000000000300.txt",
        ]
    );
    let report = verify(&out);
    assert_eq!(problems(&report), Vec::<String>::new());
    assert_eq!((report.bundles, report.checkpoints), (300, 3));
    assert_eq!(report.key, Some(log.key.verifier()));
    assert_eq!(
        report.ots.iter().map(|ots| ots.size).collect::<Vec<_>>(),
        [100, 200, 300]
    );
    assert_eq!(
        report.ots[1].status,
        OtsStatus::Pending {
            calendars: vec!["https://calendar.example".to_owned()]
        }
    );
    assert_eq!(report.ots[0].status, OtsStatus::None);
    let readme = fs::read_to_string(out.join("README.md")).expect("readme");
    assert!(readme.contains("osiris evidence verify DIR") && readme.contains("ots verify"));
    let pinned = VerifyOptions {
        pinned_key: Some(log.key.verifier()),
        ..VerifyOptions::default()
    };
    assert!(kit::verify(&out, &pinned).problems.is_empty());

    // No leftovers, and an existing non-empty directory is never overwritten.
    assert_eq!(fs::read_dir(temp.path()).expect("dir").count(), 1);
    assert!(matches!(
        export_log(&out, &log, None),
        Err(KitError::OutputExists(_))
    ));
}

#[test]
fn export_signs_a_final_checkpoint_when_none_covers_all_bundles() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 10, &[4], "a");
    let summary = export_log(&temp.path().join("kit"), &log, None).expect("export");
    assert!(summary.signed_final_checkpoint);
    assert!(verify(&temp.path().join("kit")).problems.is_empty());
}

#[test]
fn every_bit_flip_in_every_signed_file_is_detected() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 6, &[2, 5, 6], "b");
    let dir = temp.path().join("kit");
    export_log(&dir, &log, Some((5, 1))).expect("export");
    assert!(verify(&dir).problems.is_empty());
    let mut flips = 0;
    for path in all_files(&dir) {
        if path == "README.md" {
            continue;
        }
        let original = fs::read(dir.join(&path)).expect("read");
        for byte_idx in 0..original.len() {
            let mut tampered = original.clone();
            tampered[byte_idx] ^= 1 << (byte_idx % 8);
            fs::write(dir.join(&path), &tampered).expect("write");
            let report = verify(&dir);
            assert!(
                report
                    .problems
                    .iter()
                    .any(|problem| problem.path == path || problem.message.contains(&path)),
                "flip in {path} byte {byte_idx} not reported against it: {:#?}",
                problems(&report)
            );
            flips += 1;
        }
        fs::write(dir.join(&path), &original).expect("restore");
    }
    assert!(flips > 2000, "only {flips} flips");
    assert!(verify(&dir).problems.is_empty());
}

fn fresh_kit(temp: &Path, name: &str) -> (PathBuf, Log) {
    let log = build_log(ApplianceKey::generate(), 30, &[10, 20, 30], name);
    let dir = temp.join(name);
    export_log(&dir, &log, None).expect("export");
    (dir, log)
}

fn rewrite_bundles(dir: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let text = fs::read(dir.join("bundles.jsonl")).expect("read");
    let mut lines: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    edit(&mut lines);
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    fs::write(dir.join("bundles.jsonl"), out).expect("write");
}

#[test]
fn deleted_swapped_and_truncated_bundles_are_located() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (dir, log) = fresh_kit(temp.path(), "delete");
    rewrite_bundles(&dir, |lines| {
        lines.remove(14);
    });
    resign_manifest(&dir, &log.key);
    let report = verify(&dir);
    assert_names(
        &report,
        "bundles.jsonl:15: prev hash does not match line 14 (a bundle was removed, inserted or reordered)",
    );
    assert_names(&report, "bundles.jsonl:15: seq is 15, expected 14");
    assert_names(
        &report,
        "checkpoints/000000000020.txt: root does not match bundles 1..20: this checkpoint forks the log",
    );

    let (dir, log) = fresh_kit(temp.path(), "swap");
    rewrite_bundles(&dir, |lines| lines.swap(4, 5));
    resign_manifest(&dir, &log.key);
    let report = verify(&dir);
    assert_names(&report, "bundles.jsonl:5: prev hash does not match line 4");
    assert_names(&report, "bundles.jsonl:6: prev hash does not match line 5");

    let (dir, _) = fresh_kit(temp.path(), "truncate");
    let bytes = fs::read(dir.join("bundles.jsonl")).expect("read");
    fs::write(dir.join("bundles.jsonl"), &bytes[..bytes.len() - 40]).expect("write");
    let report = verify(&dir);
    assert_names(
        &report,
        "bundles.jsonl:30: truncated: last line has no newline",
    );
    assert_names(&report, "bundles.jsonl: SHA-256 or size");
}

#[test]
fn deleted_and_added_files_are_reported() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = fresh_kit(temp.path(), "files");
    for path in all_files(&dir) {
        if path == "README.md" {
            continue;
        }
        let original = fs::read(dir.join(&path)).expect("read");
        fs::remove_file(dir.join(&path)).expect("remove");
        let report = verify(&dir);
        assert!(
            !report.problems.is_empty(),
            "deleting {path} went unnoticed"
        );
        assert!(
            report.problems.iter().any(|problem| problem.path == path),
            "deleting {path}: {:#?}",
            problems(&report)
        );
        fs::write(dir.join(&path), original).expect("restore");
    }
    assert!(verify(&dir).problems.is_empty());
    fs::write(dir.join("proofs/extra.txt"), "x").expect("write");
    assert_names(&verify(&dir), "proofs/extra.txt: not listed in MANIFEST");
    fs::remove_file(dir.join("proofs/extra.txt")).expect("remove");
    fs::remove_file(dir.join("README.md")).expect("remove");
    assert!(
        verify(&dir).problems.is_empty(),
        "README.md is informational only"
    );
}

#[test]
fn kits_signed_by_another_key_fail() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (dir, log) = fresh_kit(temp.path(), "genuine");
    let (forged_dir, _) = fresh_kit(temp.path(), "forged");
    let pinned = VerifyOptions {
        pinned_key: Some(log.key.verifier()),
        ..VerifyOptions::default()
    };
    assert!(kit::verify(&dir, &pinned).problems.is_empty());
    let report = kit::verify(&forged_dir, &pinned);
    assert_names(&report, "appliance.pub: does not match the pinned key");
    assert_names(&report, "MANIFEST: no signature by key");
    assert_names(&report, "signature does not verify under appliance.pub");

    // Same bundle contents, re-signed by another key, dropped into the genuine kit.
    let other = build_log(ApplianceKey::generate(), 30, &[30], "genuine");
    let mut bytes = Vec::new();
    for line in &other.lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    fs::write(dir.join("bundles.jsonl"), bytes).expect("write");
    let report = verify(&dir);
    assert_names(&report, "bundles.jsonl: SHA-256 or size");
    assert_names(
        &report,
        "bundles.jsonl:1: signature does not verify under appliance.pub",
    );
    assert_names(&report, "bundles.jsonl:1: key is not");
}

#[test]
fn forked_and_oversized_checkpoints_are_reported() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (dir, log) = fresh_kit(temp.path(), "fork");
    // A validly signed checkpoint of the same size whose root is for a different log by the same key.
    let fork = build_log(log.key.clone(), 40, &[20, 40], "other");
    fs::write(
        dir.join("checkpoints/000000000020.txt"),
        &fork.checkpoints[0],
    )
    .expect("write");
    fs::write(
        dir.join("checkpoints/000000000040.txt"),
        &fork.checkpoints[1],
    )
    .expect("write");
    fs::write(
        dir.join("proofs/consistency-000000000030-000000000040.txt"),
        "",
    )
    .expect("write");
    resign_manifest(&dir, &log.key);
    let report = verify(&dir);
    assert_names(
        &report,
        "checkpoints/000000000020.txt: root does not match bundles 1..20: this checkpoint forks the log",
    );
    assert_names(
        &report,
        "checkpoints/000000000040.txt: claims 40 bundles but bundles.jsonl has only 30",
    );
    assert_names(
        &report,
        "proofs/consistency-000000000010-000000000020.txt: does not prove checkpoint 10 is a prefix of checkpoint 20",
    );
    let forged = Checkpoint::parse_and_verify(&fork.checkpoints[0], &log.key.verifier())
        .expect("validly signed");
    assert_eq!(forged.size, 20);
}

#[test]
fn problems_are_capped() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 150, &[150], "cap");
    let dir = temp.path().join("kit");
    export_log(&dir, &log, None).expect("export");
    rewrite_bundles(&dir, |lines| {
        for line in lines.iter_mut() {
            let text = String::from_utf8(line.clone())
                .expect("utf8")
                .replace("clinic-1", "clinic-2");
            *line = text.into_bytes();
        }
    });
    let report = verify(&dir);
    assert_eq!(report.problems.len(), kit::MAX_PROBLEMS + 1);
    assert!(
        report.problems[kit::MAX_PROBLEMS]
            .message
            .starts_with("and "),
        "{:?}",
        report.problems.last()
    );
}

#[test]
fn small_order_and_non_canonical_r_are_rejected_by_verify() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 3, &[3], "r");
    let dir = temp.path().join("kit");
    export_log(&dir, &log, None).expect("export");
    // R = identity (small order) and R = y >= p (non-canonical), with S = 0.
    for r_hex in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        let mut signature = hex::decode(r_hex).expect("hex");
        signature.extend_from_slice(&[0; 32]);
        let sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &signature);
        rewrite_bundles(&dir, |lines| {
            let mut value: serde_json::Value = serde_json::from_slice(&lines[1]).expect("json");
            value["sig"] = serde_json::Value::String(sig.clone());
            lines[1] = evidence::canonicalize(&value).expect("jcs");
        });
        assert_names(
            &verify(&dir),
            "bundles.jsonl:2: signature has a non-canonical or small-order R",
        );
    }
}

#[test]
fn bitcoin_attestation_without_header_is_reported_as_header_missing() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 4, &[4], "btc");
    let digest: [u8; 32] = Sha256::digest(log.checkpoints[0].as_bytes()).into();
    let mut detached = ots::DetachedTimestamp::from_sha256_digest(digest);
    detached
        .timestamp
        .add_attestation(ots::Attestation::Bitcoin { height: 358_391 });
    let dir = temp.path().join("kit");
    kit::export(
        &dir,
        KitSource {
            key: &log.key,
            lines: Box::new(log.lines.clone().into_iter().map(Ok)),
            checkpoints: log.checkpoints.clone(),
            ots: vec![(4, detached.to_bytes())],
            cosignatures: Vec::new(),
            auditor: None,
        },
    )
    .expect("export");
    let report = verify(&dir);
    assert_eq!(problems(&report), Vec::<String>::new());
    assert_eq!(
        report.ots[0].status,
        OtsStatus::Bitcoin {
            height: 358_391,
            verified_time: None,
            header_missing: true
        }
    );

    // An .ots file for another file's digest is caught even if MANIFEST is re-signed.
    let mut wrong = ots::DetachedTimestamp::from_sha256_digest([9; 32]);
    wrong
        .timestamp
        .add_attestation(ots::Attestation::pending("https://calendar.example").expect("uri"));
    fs::write(
        dir.join("checkpoints/000000000004.txt.ots"),
        wrong.to_bytes(),
    )
    .expect("write");
    resign_manifest(&dir, &log.key);
    assert_names(
        &verify(&dir),
        "checkpoints/000000000004.txt.ots: does not timestamp checkpoints/000000000004.txt",
    );
}

/// Every file of a kit exported from a fixed key and log: `<sha256> <size> <path>`, one line each.
fn listing(dir: &Path) -> String {
    all_files(dir)
        .iter()
        .map(|path| {
            let bytes = fs::read(dir.join(path)).expect("read");
            format!(
                "{} {} {path}\n",
                hex::encode(Sha256::digest(&bytes)),
                bytes.len()
            )
        })
        .collect()
}

#[test]
fn kit_bytes_and_verify_output_are_stable() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::from_seed(&[7; 32]), 12, &[4, 9], "golden");
    let dir = temp.path().join("kit");
    export_log(&dir, &log, Some((9, 1))).expect("export");
    expect_test::expect![[r#"
        34562fa0d17b79a59c662d673adb723f713beaedffba2de1100041baeeb76c97 977 MANIFEST
        2bf8a9464aa3dbe66b247c512ee0be69397c91bba4cacdf4e055dd6b07e41c74 3470 README.md
        19012dea845bcb6dd0c573e79e0580e8f36a1938c9081ca5e31a533efe0c7616 88 appliance.pub
        a5ece445f22fcb7c9b7aae3384ee3f2febe7e83b5684a99e19d5eb0ccc4899d1 4480 bundles.jsonl
        12f6c9737adf9d6af53be347b6e97ab1deb15f78c69620f03c20e24418057819 213 checkpoints/000000000004.txt
        b546f352e521f765da26883fcd64fa2cbbdeb8cfe49909c4fd681bbad5011861 213 checkpoints/000000000009.txt
        1a49b60d090b993c5c9e9a6d8167704a9eac393cbe126c9fb06abc44791fde15 100 checkpoints/000000000009.txt.ots
        f3b7541063f9017f7083e3a94c6f359374cc63a1720dce8253984166f6f829d4 214 checkpoints/000000000012.txt
        42e762bfceafd6323104272a79043620694811ed20d1658f28982aaf97b1238d 90 proofs/consistency-000000000004-000000000009.txt
        521c2a79fd525bb096f630195020525e220baf6dca65c4629cc072f45f6e1d13 180 proofs/consistency-000000000009-000000000012.txt
    "#]].assert_eq(&listing(&dir));

    rewrite_bundles(&dir, |lines| {
        lines.remove(5);
        lines[2][10] ^= 0x01;
    });
    fs::write(dir.join("proofs/extra.txt"), "x").expect("write");
    fs::remove_file(dir.join("checkpoints/000000000004.txt")).expect("remove");
    let report = verify(&dir);
    let mut rendered = problems(&report).join("\n");
    rendered.push_str(&format!(
        "\nbundles {} checkpoints {} root {}\n",
        report.bundles,
        report.checkpoints,
        hex::encode(report.root.expect("root"))
    ));
    expect_test::expect![[r#"
        bundles.jsonl:3: unexpected member "appliancd" (not a v1 bundle)
        bundles.jsonl:3: appliance is not fe812c12f3ab4ce6, the id of appliance.pub (bundle from another appliance)
        bundles.jsonl:3: signature does not verify under appliance.pub (bundle altered, or signed by another key)
        bundles.jsonl:4: prev hash does not match line 3 (a bundle was removed, inserted or reordered)
        bundles.jsonl:6: seq is 6, expected 5 (a bundle was removed, inserted or reordered)
        bundles.jsonl:6: prev hash does not match line 5 (a bundle was removed, inserted or reordered)
        bundles.jsonl:7: seq is 7, expected 6 (a bundle was removed, inserted or reordered)
        bundles.jsonl:8: seq is 8, expected 7 (a bundle was removed, inserted or reordered)
        bundles.jsonl:9: seq is 9, expected 8 (a bundle was removed, inserted or reordered)
        bundles.jsonl:10: seq is 10, expected 9 (a bundle was removed, inserted or reordered)
        bundles.jsonl:11: seq is 11, expected 10 (a bundle was removed, inserted or reordered)
        checkpoints/000000000009.txt: root does not match bundles 1..9: this checkpoint forks the log
        checkpoints/000000000012.txt: claims 12 bundles but bundles.jsonl has only 11: bundles were removed, or the checkpoint belongs to a longer log
        proofs/consistency-000000000004-000000000009.txt: unexpected file in proofs/ (no pair of consecutive checkpoints matches it)
        proofs/extra.txt: unexpected file in proofs/ (no pair of consecutive checkpoints matches it)
        bundles.jsonl: SHA-256 or size (4107 bytes, MANIFEST says 4480) does not match MANIFEST: the file was altered
        proofs/extra.txt: not listed in MANIFEST: a file was added to the kit after it was signed
        checkpoints/000000000004.txt: listed in MANIFEST but missing: a file was deleted from the kit
        bundles 11 checkpoints 0 root 7d2c0a522784013b2a785ac991826e0655435f00d2291d9d48642c01c493e86a
    "#]].assert_eq(&rendered);
}

/// The witness's cosignatures travel beside their checkpoints, are covered by the MANIFEST, and
/// with `--witness-key` must verify: a cosignature of another witness, an altered one, or none
/// at all is a problem; without a witness key they are only counted.
#[test]
fn witness_cosignatures_are_carried_and_checked_against_the_witness_key() {
    use evidence::{WitnessKey, WitnessVerifier};
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::from_seed(&[3; 32]), 6, &[2, 4, 6], "w");
    let witness = WitnessKey::from_seed("central.acme-it.example/witness", &[5; 32]).expect("key");
    let body = |note: &str| note[..=note.rfind("\n\n").expect("note")].to_owned();
    let cosign = |idx: usize, size: u64| {
        (
            size,
            witness.cosign(&body(&log.checkpoints[idx]), 1_764_000_000 + size),
        )
    };
    let export = |name: &str, cosignatures: Vec<(u64, String)>| {
        let dir = temp.path().join(name);
        kit::export(
            &dir,
            KitSource {
                key: &log.key,
                lines: Box::new(log.lines.clone().into_iter().map(Ok)),
                checkpoints: log.checkpoints.clone(),
                ots: Vec::new(),
                cosignatures,
                auditor: None,
            },
        )
        .map(|_| dir)
    };
    let with_witness = |w: &WitnessVerifier| VerifyOptions {
        witness: Some(w.clone()),
        ..VerifyOptions::default()
    };

    let dir = export("cosigned", vec![cosign(0, 2), cosign(1, 4)]).expect("export");
    assert!(dir.join("checkpoints/000000000004.txt.cosig").is_file());
    let report = verify(&dir);
    assert_eq!(problems(&report), Vec::<String>::new());
    assert_eq!((report.cosigned_files, report.witnessed.len()), (2, 0));
    let report = kit::verify(&dir, &with_witness(witness.verifier()));
    assert_eq!(problems(&report), Vec::<String>::new());
    assert_eq!(
        report.witnessed,
        vec![(2, 1_764_000_002), (4, 1_764_000_004)]
    );

    // Another witness's key: nothing it cosigned, so the kit fails that requirement.
    let other = WitnessKey::from_seed("central.acme-it.example/witness", &[6; 32]).expect("key");
    let report = kit::verify(&dir, &with_witness(other.verifier()));
    assert_names(
        &report,
        "no checkpoint carries a valid cosignature by witness central.acme-it.example/witness",
    );

    // A cosignature moved onto another checkpoint does not verify there (MANIFEST re-signed by
    // someone holding the appliance key, so only the cosignature check can catch it).
    let moved = export("moved", vec![cosign(0, 2)]).expect("export");
    fs::rename(
        moved.join("checkpoints/000000000002.txt.cosig"),
        moved.join("checkpoints/000000000004.txt.cosig"),
    )
    .expect("rename");
    resign_manifest(&moved, &log.key);
    let report = kit::verify(&moved, &with_witness(witness.verifier()));
    assert_names(
        &report,
        "checkpoints/000000000004.txt.cosig: the cosignature by witness central.acme-it.example/witness does not verify",
    );

    // A cosignature file without its checkpoint, and one for a checkpoint the export lacks.
    let orphan = export("orphan", vec![cosign(2, 6)]).expect("export");
    fs::remove_file(orphan.join("checkpoints/000000000006.txt")).expect("remove");
    resign_manifest(&orphan, &log.key);
    assert_names(
        &verify(&orphan),
        "cosigns checkpoints/000000000006.txt, which is not in the kit",
    );
    assert!(matches!(
        export("missing", vec![(3, cosign(0, 2).1)]),
        Err(KitError::OrphanCosignature(3))
    ));
}

#[test]
fn auditor_files_are_signed_and_the_html_manifest_lists_every_file() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = build_log(ApplianceKey::generate(), 5, &[3, 5], "auditor");
    let out = temp.path().join("kit");
    let export = |out: &Path, auditor: kit::AuditorFiles| {
        kit::export(
            out,
            KitSource {
                key: &log.key,
                lines: Box::new(log.lines.clone().into_iter().map(Ok)),
                checkpoints: log.checkpoints.clone(),
                ots: Vec::new(),
                cosignatures: Vec::new(),
                auditor: Some(auditor),
            },
        )
    };
    export(
        &out,
        kit::AuditorFiles {
            title: "Kit of &lt;b&gt;clinic&lt;/b&gt;".to_owned(),
            files: vec![(
                "index.csv".to_owned(),
                b"a,b\r\n".to_vec(),
                "The index".to_owned(),
            )],
            html_section: "<p>section</p>\n".to_owned(),
        },
    )
    .expect("export");
    let report = verify(&out);
    assert!(report.problems.is_empty(), "{:?}", problems(&report));
    let html = fs::read_to_string(out.join("auditor/manifest.html")).expect("manifest.html");
    assert!(
        !html.contains("<b>clinic") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("Kit of &lt;b&gt;clinic&lt;/b&gt;"));
    // Every file but the page itself, MANIFEST and README, with its SHA-256.
    for file in all_files(&out) {
        if ["auditor/manifest.html", "MANIFEST", "README.md"].contains(&file.as_str()) {
            continue;
        }
        let hash = hex::encode(Sha256::digest(fs::read(out.join(&file)).expect("read")));
        assert!(
            html.contains(&format!(
                "<tr><td><code>{file}</code></td><td><code>{hash}</code></td>"
            )),
            "{file} missing from the HTML manifest"
        );
    }
    assert!(html.ends_with("<p>section</p>\n</body>\n</html>\n"));
    // An edited manifest page is caught like any signed file.
    fs::write(
        out.join("auditor/manifest.html"),
        html.replace("section", "edited"),
    )
    .expect("write");
    assert_names(&verify(&out), "auditor/manifest.html");
    // A name that leaves auditor/ is refused.
    let refused = export(
        &temp.path().join("kit2"),
        kit::AuditorFiles {
            title: String::new(),
            files: vec![("../escape".to_owned(), Vec::new(), String::new())],
            html_section: String::new(),
        },
    );
    assert!(matches!(refused, Err(KitError::AuditorFileName(_))));
}

#[test]
fn packet_bundles_are_checked_against_their_schema() {
    let key = ApplianceKey::from_seed(&[7; 32]);
    let mut writer = LogWriter::new(key.clone());
    let good = serde_json::json!({
        "period": "2026-11", "generated_at": "2026-12-01T00:00:05Z", "directory": "packets/2026-11",
        "evidence": true,
        "files": [
            {"name": "hipaa-2026-11.pdf", "sha256": "a".repeat(64), "size": 10},
            {"name": "MANIFEST.sha256", "sha256": "b".repeat(64), "size": 86}
        ]
    });
    let mut traversal = good.clone();
    traversal["files"][0]["name"] = "../../etc/passwd".into();
    let mut bad_hash = good.clone();
    bad_hash["files"][0]["sha256"] = "A".repeat(64).into();
    let mut unknown_member = good.clone();
    unknown_member["signed_by"] = "someone".into();
    let mut elsewhere = good.clone();
    elsewhere["directory"] = "/tmp/packets".into();
    let mut lines = Vec::new();
    for body in [good, traversal, bad_hash, unknown_member, elsewhere] {
        let draft = BundleDraft {
            site: "clinic-1".to_owned(),
            kind: "packet".to_owned(),
            catalog: "2026.11".to_owned(),
            time: time::macros::datetime!(2026-12-01 00:00:06 UTC),
            body,
        };
        lines.push(writer.seal(&draft).expect("seal").line);
    }
    let checkpoints = vec![writer.checkpoint().1];
    let log = Log {
        key,
        lines,
        checkpoints,
    };
    let temp = tempfile::tempdir().expect("tempdir");
    let out = temp.path().join("kit");
    export_log(&out, &log, None).expect("export");
    let report = verify(&out);
    let found = problems(&report);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(!found.iter().any(|p| p.contains("line 1:")), "{found:#?}");
    assert_names(&report, "file name `../../etc/passwd` is not a plain name");
    assert_names(&report, "is not 64 lowercase hex digits");
    assert_names(
        &report,
        "packet body does not fit its schema: unknown field `signed_by`",
    );
    assert_names(&report, "directory `/tmp/packets` is not packets/2026-11");
}

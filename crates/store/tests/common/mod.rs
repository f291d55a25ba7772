//! Helpers shared by the store's integration tests: realistic drafts and a full log verifier.

#![allow(dead_code, unreachable_pub)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence::keys::VerifierKey;
use evidence::log::BundleDraft;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use store::{Store, StoreConfig};

pub fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_owned(),
        site: "clinic-1".to_owned(),
    }
}

/// A scan bundle draft of about 600 bytes, distinguishable by `n`.
pub fn scan_draft(n: u64) -> BundleDraft {
    BundleDraft {
        site: "clinic-1".to_owned(),
        kind: "scan".to_owned(),
        catalog: "2026.11.1".to_owned(),
        time: time::OffsetDateTime::now_utc(),
        body: serde_json::json!({
            "target": {"name": format!("host-{n}"), "platform": "linux", "device_type": "server"},
            "started": "2026-11-28T03:40:12.123Z",
            "finished": "2026-11-28T03:40:13.456Z",
            "results": [
                {"check": "LIN-SSH-001", "title": "SSH root login disabled", "severity": "high", "status": "fail",
                 "observed": {"permit_root_login": "yes"}, "expected": "permit_root_login in [no, prohibit-password]",
                 "reason": "permit_root_login is \"yes\"", "controls": ["HIPAA:164.312(a)(1)", "CIS:5.2.10"]}
            ],
            "summary": {"total": 12, "pass": 7, "fail": 3, "error": 1, "skipped": 1}
        }),
    }
}

/// Checks every stored line as an auditor would and returns the number of lines:
/// seq equals index, prev chains, the line is its own JCS serialisation, the signature verifies,
/// stored hashes match the line, and the Merkle root recomputed from the lines equals the store's tree.
pub async fn verify_log(store: &Store) -> u64 {
    verify_log_incremental(store, &mut Vec::new()).await
}

/// Like [`verify_log`], but lines already in `verified` (their line hashes, from an earlier call)
/// are only checked to be unchanged; newly verified lines are added to `verified`.
pub async fn verify_log_incremental(store: &Store, verified: &mut Vec<[u8; 32]>) -> u64 {
    let verifier: &VerifierKey = store.verifier();
    let entries: Vec<store::StoredEntry> = store
        .entries(0..u64::MAX)
        .try_collect()
        .await
        .expect("entries stream");
    let mut prev = [0u8; 32];
    let mut leaves = Vec::new();
    for (idx, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, idx as u64, "seqs must be contiguous from 0");
        let line_hash: [u8; 32] = Sha256::digest(&entry.line).into();
        assert_eq!(entry.line_hash, line_hash);
        assert_eq!(entry.leaf_hash, evidence::leaf_hash(&entry.line));
        leaves.push(entry.leaf_hash);
        if let Some(known) = verified.get(idx) {
            assert_eq!(&line_hash, known, "verified line {idx} changed");
            prev = line_hash;
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&entry.line).expect("line is JSON");
        assert_eq!(value["seq"].as_u64(), Some(entry.seq));
        assert_eq!(
            value["prev"].as_str(),
            Some(hex::encode(prev).as_str()),
            "chain broken at {idx}"
        );
        assert_eq!(
            evidence::canonicalize(&value).expect("jcs"),
            entry.line,
            "line is not JCS"
        );
        let mut unsigned = value.clone();
        let sig = unsigned
            .as_object_mut()
            .expect("object")
            .remove("sig")
            .expect("sig");
        let sig: [u8; 64] = BASE64
            .decode(sig.as_str().expect("sig string"))
            .expect("base64")
            .try_into()
            .expect("64 bytes");
        let signed = evidence::canonicalize(&unsigned).expect("jcs");
        assert!(
            verifier.verify_strict(&signed, &sig),
            "signature of {idx} does not verify"
        );
        verified.push(line_hash);
        prev = line_hash;
    }
    let mut tree = evidence::MerkleTree::new();
    for leaf in leaves {
        tree.push(leaf);
    }
    let (size, root) = store.root().await.expect("root");
    assert_eq!(size, entries.len() as u64);
    assert_eq!(
        root,
        tree.root(),
        "Merkle root recomputed from lines differs from the store's"
    );
    assert_eq!(store.size(), size);
    entries.len() as u64
}

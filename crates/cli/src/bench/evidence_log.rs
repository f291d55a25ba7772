//! Measurements of the evidence log core in memory: sealing throughput, kit export and verification, inclusion proofs.

use std::path::Path;
use std::time::{Duration, Instant};

use evidence::ApplianceKey;
use evidence::kit::{self, KitSource, VerifyOptions, VerifyReport};
use evidence::log::{BundleDraft, LogWriter};
use evidence::merkle::{self, MerkleTree};

/// Result of [`seal_throughput`].
#[derive(Debug, Clone)]
pub(crate) struct SealThroughput {
    /// Average line length in bytes.
    pub(crate) average_line_bytes: u64,
    /// Time spent in `prepare` (canonicalising the body), which callers may parallelise.
    pub(crate) prepare: Duration,
    /// Time spent in `seal_prepared` (chain, sign, Merkle), which is serial.
    pub(crate) seal: Duration,
}

/// Result of [`export_and_verify`].
#[derive(Debug)]
pub(crate) struct KitTimes {
    /// Time to seal the bundles.
    pub(crate) seal: Duration,
    /// Time to export the kit.
    pub(crate) export: Duration,
    /// Time to verify the kit.
    pub(crate) verify: Duration,
    /// The verification report.
    pub(crate) report: VerifyReport,
}

/// Mean and worst time of one inclusion proof (generation plus verification).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofTimes {
    /// Mean over all sampled leaves.
    pub(crate) mean: Duration,
    /// Slowest sampled leaf.
    pub(crate) worst: Duration,
}

/// Returns a draft whose sealed bundle is about 600 bytes: a scan with two check results.
pub(crate) fn sample_scan_draft(seq: u64) -> BundleDraft {
    BundleDraft {
        site: "clinic-main".to_owned(),
        kind: "scan".to_owned(),
        catalog: "2026.11.1".to_owned(),
        time: time::macros::datetime!(2026-11-28 03:40:13.456 UTC),
        body: serde_json::json!({
            "target": {"name": format!("host-{seq}"), "platform": "linux", "device_type": "server"},
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

/// Seals `bundles` sample scan bundles with a fresh key and times preparing and sealing separately.
pub(crate) fn seal_throughput(bundles: u64) -> anyhow::Result<SealThroughput> {
    let mut writer = LogWriter::new(ApplianceKey::generate());
    let mut prepare = Duration::ZERO;
    let mut seal = Duration::ZERO;
    let mut line_bytes = 0u64;
    for seq in 0..bundles {
        let draft = sample_scan_draft(seq);
        let started = Instant::now();
        let prepared = draft.prepare()?;
        let prepared_at = Instant::now();
        let entry = writer.seal_prepared(&prepared);
        seal += prepared_at.elapsed();
        prepare += prepared_at - started;
        line_bytes += entry.line.len() as u64;
    }
    Ok(SealThroughput {
        average_line_bytes: line_bytes / bundles.max(1),
        prepare,
        seal,
    })
}

/// Seals `bundles` sample bundles with 3 checkpoints, exports a kit to `out` and verifies it, timing each step.
pub(crate) fn export_and_verify(out: &Path, bundles: u64) -> anyhow::Result<KitTimes> {
    let key = ApplianceKey::generate();
    let mut writer = LogWriter::new(key.clone());
    let mut lines = Vec::with_capacity(usize::try_from(bundles).unwrap_or(0));
    let mut checkpoints = Vec::new();
    let started = Instant::now();
    for seq in 0..bundles {
        lines.push(writer.seal(&sample_scan_draft(seq))?.line);
        if (seq + 1) % (bundles / 3).max(1) == 0 {
            checkpoints.push(writer.checkpoint().1);
        }
    }
    let seal = started.elapsed();
    let started = Instant::now();
    kit::export(
        out,
        KitSource {
            key: &key,
            lines: Box::new(lines.into_iter().map(Ok)),
            checkpoints,
            ots: Vec::new(),
            cosignatures: Vec::new(),
            auditor: None,
        },
    )?;
    let export = started.elapsed();
    let started = Instant::now();
    let report = kit::verify(out, &VerifyOptions::default());
    Ok(KitTimes {
        seal,
        export,
        verify: started.elapsed(),
        report,
    })
}

/// Builds a tree of `leaves` leaves, then proves and verifies the inclusion of `proofs` leaves spread over the tree.
pub(crate) fn inclusion_proof_time(leaves: u64, proofs: u64) -> anyhow::Result<ProofTimes> {
    let mut tree = MerkleTree::new();
    for leaf_idx in 0..leaves {
        tree.push(merkle::leaf_hash(&leaf_idx.to_le_bytes()));
    }
    let root = tree.root();
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for proof_idx in 0..proofs {
        let index = proof_idx.wrapping_mul(7_919) % leaves.max(1);
        let one = Instant::now();
        let ok = match (tree.inclusion_proof(index, leaves), tree.leaf(index)) {
            (Some(proof), Some(leaf)) => {
                merkle::verify_inclusion(&leaf, index, leaves, &proof, &root)
            }
            _ => false,
        };
        worst = worst.max(one.elapsed());
        anyhow::ensure!(ok, "inclusion proof of leaf {index} does not verify");
    }
    let mean = started.elapsed() / u32::try_from(proofs.max(1)).unwrap_or(u32::MAX);
    Ok(ProofTimes { mean, worst })
}

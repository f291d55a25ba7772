//! The Merkle proofs a report carries: for each bundle it cites, an RFC 9162 inclusion proof to
//! the checkpoint it names, and for a report `--as-of` a moment, a consistency proof from the
//! checkpoint of that moment to a newer one. Only the data and its text form live here: the
//! caller computes the proofs with `evidence::merkle` and verifies them the same way.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::assess::Assessment;

/// Every proof of one report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proofs {
    /// The size of the checkpoint the inclusion proofs lead to (the report's checkpoint).
    pub tree_size: u64,
    /// One per cited bundle the checkpoint covers, by seq.
    pub inclusion: Vec<InclusionProof>,
    /// Cited bundles sealed after the checkpoint: no proof yet.
    pub uncovered: Vec<u64>,
    /// For a report `--as-of` a moment: from the checkpoint of that moment to a newer one.
    pub consistency: Option<ConsistencyProof>,
}

/// An RFC 9162 §2.1.3 inclusion proof of one bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The bundle's seq (its leaf index).
    pub seq: u64,
    /// Hex SHA-256 leaf hash of the bundle's line.
    pub leaf: String,
    /// Hex audit path, leaf to root.
    pub path: Vec<String>,
}

/// An RFC 9162 §2.1.4 consistency proof between two signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The newest checkpoint signed at or before the moment described: `(size, signed note)`.
    pub from: (u64, String),
    /// The checkpoint it leads to (the newest anchored one if any, else the newest): `(size, signed note)`.
    pub to: (u64, String),
    /// When `from` was signed (RFC 3339).
    pub from_signed_at: String,
    /// `to` is anchored in Bitcoin by OpenTimestamps.
    pub to_anchored: bool,
    /// Hex proof nodes.
    pub path: Vec<String>,
}

/// A proof's text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an inclusion proof (`#SEQ@SIZE LEAF PATH/PATH/…`): {reason}")]
pub struct ProofTextError {
    text: String,
    reason: &'static str,
}

impl Proofs {
    /// No proofs (a report without a checkpoint).
    pub const NONE: Proofs = Proofs {
        tree_size: 0,
        inclusion: Vec::new(),
        uncovered: Vec::new(),
        consistency: None,
    };

    /// The proof of bundle `seq`, if the report carries one.
    pub fn of(&self, seq: u64) -> Option<&InclusionProof> {
        self.inclusion
            .binary_search_by_key(&seq, |p| p.seq)
            .ok()
            .map(|i| &self.inclusion[i])
    }

    /// The text form of bundle `seq`'s proof, or why there is none (`#SEQ sealed after the
    /// checkpoint of SIZE bundles`).
    pub fn text_of(&self, seq: u64) -> String {
        match self.of(seq) {
            Some(proof) => proof.text(self.tree_size),
            None => format!(
                "#{seq} sealed after the checkpoint of {} bundles",
                self.tree_size
            ),
        }
    }
}

impl InclusionProof {
    /// `#SEQ@SIZE LEAF P1/P2/…` (hex; `-` for an empty path).
    pub fn text(&self, tree_size: u64) -> String {
        let path = if self.path.is_empty() {
            "-".to_owned()
        } else {
            self.path.join("/")
        };
        format!("#{}@{tree_size} {} {path}", self.seq, self.leaf)
    }

    /// Reads [`InclusionProof::text`] back: the proof and the tree size it names.
    pub fn parse(text: &str) -> Result<(InclusionProof, u64), ProofTextError> {
        let error = |reason| ProofTextError {
            text: text.chars().take(120).collect(),
            reason,
        };
        let mut parts = text.split(' ');
        let (Some(head), Some(leaf), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(error("expected three parts separated by spaces"));
        };
        let (seq, size) = head
            .strip_prefix('#')
            .and_then(|h| h.split_once('@'))
            .ok_or(error("the first part is not #SEQ@SIZE"))?;
        let seq = seq.parse().map_err(|_| error("SEQ is not a number"))?;
        let size = size.parse().map_err(|_| error("SIZE is not a number"))?;
        let is_hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hash(leaf) {
            return Err(error("the leaf hash is not 64 hex digits"));
        }
        let path: Vec<String> = if path == "-" {
            Vec::new()
        } else {
            path.split('/').map(str::to_owned).collect()
        };
        if !path.iter().all(|h| is_hash(h)) {
            return Err(error("a path node is not 64 hex digits"));
        }
        Ok((
            InclusionProof {
                seq,
                leaf: leaf.to_owned(),
                path,
            },
            size,
        ))
    }
}

/// The bundles a report cites: each check result's bundle, the exceptions and attestations it
/// names, in the report's own assessment and in each auditor sample's.
pub fn cited_bundles<'a, 'c: 'a>(
    assessments: impl IntoIterator<Item = &'a Assessment<'c>>,
) -> BTreeSet<u64> {
    let mut res = BTreeSet::new();
    for assessment in assessments {
        for control in &assessment.controls {
            for line in &control.checks {
                res.insert(line.seq);
                res.extend(line.exception.map(|e| e.seq));
                res.extend(line.incident.map(|i| i.seq));
            }
            res.extend(control.attestation.map(|a| a.seq));
        }
    }
    res
}

//! The append path of the evidence log: sealing bundles (canonicalise, chain, sign) and growing the Merkle tree.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence_schema::BUNDLE_SCHEMA_V1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::checkpoint::Checkpoint;
use crate::jcs::{self, JcsError};
use crate::keys::ApplianceKey;
use crate::merkle::{self, MerkleTree};

/// What the caller supplies for one bundle; the writer adds `seq`, `prev`, appliance, key and signature.
#[derive(Debug, Clone)]
pub struct BundleDraft {
    /// Site id from the appliance configuration.
    pub site: String,
    /// Bundle kind, e.g. `scan`.
    pub kind: String,
    /// Catalogue version.
    pub catalog: String,
    /// Sealing time; written as RFC 3339 UTC with milliseconds.
    pub time: OffsetDateTime,
    /// Kind-specific body; must be a JSON object.
    pub body: serde_json::Value,
}

/// A draft whose strings and body are already canonicalised, so that [`LogWriter::seal_prepared`] only chains and signs.
///
/// Prepare drafts in parallel, outside the writer's lock.
#[derive(Debug, Clone)]
pub struct PreparedDraft {
    site: Vec<u8>,
    kind: Vec<u8>,
    catalog: Vec<u8>,
    time: Vec<u8>,
    body: Vec<u8>,
}

/// One sealed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (= Merkle leaf index).
    pub seq: u64,
    /// The JCS line, without trailing newline.
    pub line: Vec<u8>,
    /// RFC 9162 leaf hash of `line`.
    pub leaf_hash: [u8; 32],
    /// SHA-256 of `line`: the next bundle's `prev`.
    pub line_hash: [u8; 32],
}

/// The single writer of an appliance's evidence log.
#[derive(Debug)]
pub struct LogWriter {
    key: ApplianceKey,
    tree: MerkleTree,
    last_line_hash: [u8; 32],
    appliance_json: Vec<u8>,
    key_json: Vec<u8>,
}

/// Why a bundle could not be sealed or a log could not be resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The body has no canonical JSON form.
    #[error("bundle body cannot be canonicalised")]
    Canonical(#[from] JcsError),
    /// The body is not a JSON object.
    #[error("bundle body must be a JSON object, found {0}: wrap the content in an object")]
    BodyNotObject(&'static str),
    /// The time cannot be written as RFC 3339 with a four-digit year.
    #[error("bundle time {0} is outside years 0000-9999: check the system clock")]
    TimeOutOfRange(String),
    /// A stored line could not be parsed while resuming.
    #[error(
        "stored bundle {seq} is not a valid bundle: {reason}; the log store is damaged, verify it with `osiris evidence verify`"
    )]
    BadStoredLine {
        /// The position of the line.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl BundleDraft {
    /// Canonicalises the draft's fields and body.
    pub fn prepare(&self) -> Result<PreparedDraft, EvidenceError> {
        if !self.body.is_object() {
            return Err(EvidenceError::BodyNotObject(json_type_name(&self.body)));
        }
        Ok(PreparedDraft {
            site: json_string(&self.site),
            kind: json_string(&self.kind),
            catalog: json_string(&self.catalog),
            time: json_string(&format_time(self.time)?),
            body: jcs::canonicalize(&self.body)?,
        })
    }
}

impl LogWriter {
    /// Starts an empty log.
    pub fn new(key: ApplianceKey) -> Self {
        Self::resume_from_hashes(key, std::iter::empty(), [0; 32])
    }

    /// Rebuilds the tree and chain head from the stored lines (without newline), checking `seq` order and `prev` linkage.
    ///
    /// Signatures are not checked here; `osiris evidence verify` does that.
    pub fn resume(
        key: ApplianceKey,
        lines: impl Iterator<Item = Vec<u8>>,
    ) -> Result<Self, EvidenceError> {
        let mut writer = Self::new(key);
        for (seq, line) in (0u64..).zip(lines) {
            let bad = |reason: String| EvidenceError::BadStoredLine { seq, reason };
            let value: serde_json::Value = serde_json::from_slice(&line)
                .map_err(|error| bad(format!("not JSON ({error})")))?;
            if value.get("seq").and_then(serde_json::Value::as_u64) != Some(seq) {
                return Err(bad(format!("its seq is not {seq}")));
            }
            let expected_prev = hex::encode(writer.last_line_hash);
            if value.get("prev").and_then(serde_json::Value::as_str) != Some(expected_prev.as_str())
            {
                return Err(bad(
                    "its prev does not match the previous line's hash".to_owned()
                ));
            }
            writer.tree.push(merkle::leaf_hash(&line));
            writer.last_line_hash = Sha256::digest(&line).into();
        }
        Ok(writer)
    }

    /// Rebuilds the tree from stored leaf hashes and the chain head from the last line's SHA-256 (all zeros for an empty log).
    pub fn resume_from_hashes(
        key: ApplianceKey,
        leaf_hashes: impl Iterator<Item = [u8; 32]>,
        last_line_hash: [u8; 32],
    ) -> Self {
        let mut tree = MerkleTree::new();
        for leaf in leaf_hashes {
            tree.push(leaf);
        }
        let appliance_json = json_string(key.appliance_id());
        let key_json = json_string(&key.key_id_hex());
        Self {
            key,
            tree,
            last_line_hash,
            appliance_json,
            key_json,
        }
    }

    /// Seals one draft: assigns `seq` and `prev`, signs, appends to the tree.
    pub fn seal(&mut self, draft: &BundleDraft) -> Result<Entry, EvidenceError> {
        Ok(self.seal_prepared(&draft.prepare()?))
    }

    /// Seals a prepared draft; cannot fail.
    pub fn seal_prepared(&mut self, draft: &PreparedDraft) -> Entry {
        let seq = self.tree.len();
        // JCS member order (`evidence_schema::BUNDLE_MEMBERS`): appliance, body, catalog, key, kind, prev, schema, seq, [sig,] site, time.
        let mut head = Vec::with_capacity(draft.body.len() + 512);
        head.extend_from_slice(b"{\"appliance\":");
        head.extend_from_slice(&self.appliance_json);
        head.extend_from_slice(b",\"body\":");
        head.extend_from_slice(&draft.body);
        head.extend_from_slice(b",\"catalog\":");
        head.extend_from_slice(&draft.catalog);
        head.extend_from_slice(b",\"key\":");
        head.extend_from_slice(&self.key_json);
        head.extend_from_slice(b",\"kind\":");
        head.extend_from_slice(&draft.kind);
        head.extend_from_slice(b",\"prev\":\"");
        head.extend_from_slice(hex::encode(self.last_line_hash).as_bytes());
        head.extend_from_slice(b"\",\"schema\":\"");
        head.extend_from_slice(BUNDLE_SCHEMA_V1.as_bytes());
        head.extend_from_slice(b"\",\"seq\":");
        head.extend_from_slice(seq.to_string().as_bytes());
        let mut tail = Vec::with_capacity(draft.site.len() + draft.time.len() + 16);
        tail.extend_from_slice(b",\"site\":");
        tail.extend_from_slice(&draft.site);
        tail.extend_from_slice(b",\"time\":");
        tail.extend_from_slice(&draft.time);
        tail.push(b'}');

        let mut unsigned = Vec::with_capacity(head.len() + tail.len());
        unsigned.extend_from_slice(&head);
        unsigned.extend_from_slice(&tail);
        let signature = self.key.sign(&unsigned);

        let mut line = head;
        line.extend_from_slice(b",\"sig\":\"");
        line.extend_from_slice(BASE64.encode(signature).as_bytes());
        line.push(b'"');
        line.extend_from_slice(&tail);

        let leaf_hash = merkle::leaf_hash(&line);
        let line_hash: [u8; 32] = Sha256::digest(&line).into();
        self.tree.push(leaf_hash);
        self.last_line_hash = line_hash;
        Entry {
            seq,
            line,
            leaf_hash,
            line_hash,
        }
    }

    /// Returns the number of sealed bundles.
    pub fn size(&self) -> u64 {
        self.tree.len()
    }

    /// Returns the Merkle tree of all sealed bundles.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Returns the signing key.
    pub fn key(&self) -> &ApplianceKey {
        &self.key
    }

    /// Returns SHA-256 of the last line (the next bundle's `prev`).
    pub fn last_line_hash(&self) -> [u8; 32] {
        self.last_line_hash
    }

    /// Returns a checkpoint of the current size and its signed note text.
    pub fn checkpoint(&self) -> (Checkpoint, String) {
        let checkpoint = Checkpoint {
            origin: self.key.origin().to_owned(),
            size: self.tree.len(),
            root: self.tree.root(),
        };
        let text = checkpoint.sign(&self.key);
        (checkpoint, text)
    }
}

/// Formats `time` as RFC 3339 UTC with millisecond precision and a `Z` suffix.
pub fn format_time(time: OffsetDateTime) -> Result<String, EvidenceError> {
    let utc = time.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&utc.year()) {
        return Err(EvidenceError::TimeOutOfRange(time.to_string()));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    ))
}

fn json_string(string: &str) -> Vec<u8> {
    let mut res = Vec::with_capacity(string.len() + 2);
    jcs::write_string(string, &mut res);
    res
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

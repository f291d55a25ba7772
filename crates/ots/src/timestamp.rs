//! The timestamp proof tree and the detached `.ots` file that wraps it.

use crate::attestation::Attestation;
use crate::error::OtsError;
use crate::op::{HashOp, MAX_MSG_LENGTH, Op};
use crate::serialize::{Reader, write_varuint};

/// A proof tree: each node holds a message, the attestations for that message,
/// and the operations leading to child nodes (whose message is the op applied to this one).
///
/// The fields are public for reading.
/// Build trees with [`Timestamp::add_op`], [`Timestamp::add_attestation`] and [`Timestamp::merge`],
/// which keep the children consistent with their parent's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// The message (commitment) at this node.
    pub msg: Vec<u8>,
    /// Attestations for `msg`, kept sorted in the reference order without duplicates.
    pub attestations: Vec<Attestation>,
    /// Operations from `msg` and the sub-trees they lead to, sorted by op without duplicates.
    pub ops: Vec<(Op, Timestamp)>,
}

/// A `.ots` file: the hash op used on the timestamped file, and the proof for its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedTimestamp {
    /// How the timestamped file was hashed.
    pub file_hash_op: HashOp,
    /// The proof; its `msg` is the file's digest.
    pub timestamp: Timestamp,
}

/// The header magic of a detached `.ots` file.
pub const HEADER_MAGIC: &[u8; 31] =
    b"\x00OpenTimestamps\x00\x00Proof\x00\xbf\x89\xe2\xe8\x84\xe8\x92\x94";
/// The only supported major version.
const MAJOR_VERSION: u64 = 1;
/// Deepest nesting the reference library parses.
const RECURSION_LIMIT: usize = 256;

impl Timestamp {
    /// An empty proof for `msg` (no attestations, no ops).
    pub fn new(msg: Vec<u8>) -> Self {
        Timestamp {
            msg,
            attestations: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Reads a serialised timestamp tree (no file header) whose root message is `msg`,
    /// as returned by calendars; the whole input must be consumed.
    pub fn from_bytes(msg: Vec<u8>, bytes: &[u8]) -> Result<Self, OtsError> {
        check_msg_len(&msg)?;
        let mut reader = Reader::new(bytes);
        let res = read_node(&mut reader, msg, RECURSION_LIMIT)?;
        reader.finish()?;
        Ok(res)
    }

    /// Serialises the tree (no file header) in the reference library's canonical order.
    ///
    /// A node with neither attestations nor ops has no encoding: it is written as nothing,
    /// and the result does not parse.
    /// Only proofs that have been submitted to a calendar are worth writing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut canonical = self.clone();
        canonical.normalize();
        canonical.write(&mut out);
        out
    }

    /// Every attestation in the tree with the message it attests, depth first in canonical order.
    pub fn all_attestations(&self) -> Vec<(Vec<u8>, Attestation)> {
        let mut res = Vec::new();
        self.collect_attestations(&mut res);
        res
    }

    /// Adds all attestations and ops of `other` (a proof of the same message) to this tree.
    pub fn merge(&mut self, other: Timestamp) -> Result<(), OtsError> {
        if self.msg != other.msg {
            return Err(OtsError::MessageMismatch {
                ours: hex::encode(&self.msg),
                theirs: hex::encode(&other.msg),
            });
        }
        for attestation in other.attestations {
            self.add_attestation(attestation);
        }
        for (op, stamp) in other.ops {
            self.add_op(op)?.merge(stamp)?;
        }
        Ok(())
    }

    /// Adds an attestation to this node (no-op if already present).
    pub fn add_attestation(&mut self, attestation: Attestation) {
        if let Err(idx) = self.attestations.binary_search(&attestation) {
            self.attestations.insert(idx, attestation);
        }
    }

    /// Returns the child reached by `op`, creating it if needed.
    pub fn add_op(&mut self, op: Op) -> Result<&mut Timestamp, OtsError> {
        let idx = match self.ops.binary_search_by(|(existing, _)| existing.cmp(&op)) {
            Ok(idx) => idx,
            Err(idx) => {
                let child_msg = op.apply(&self.msg)?;
                self.ops.insert(idx, (op, Timestamp::new(child_msg)));
                idx
            }
        };
        Ok(&mut self.ops[idx].1)
    }

    /// The child reached by `op`, if present.
    pub fn child(&self, op: &Op) -> Option<&Timestamp> {
        self.ops
            .iter()
            .find(|(existing, _)| existing == op)
            .map(|(_, stamp)| stamp)
    }

    /// The child reached by `op`, if present, mutably.
    pub fn child_mut(&mut self, op: &Op) -> Option<&mut Timestamp> {
        self.ops
            .iter_mut()
            .find(|(existing, _)| existing == op)
            .map(|(_, stamp)| stamp)
    }

    fn collect_attestations(&self, res: &mut Vec<(Vec<u8>, Attestation)>) {
        for attestation in &self.attestations {
            res.push((self.msg.clone(), attestation.clone()));
        }
        for (_, stamp) in &self.ops {
            stamp.collect_attestations(res);
        }
    }

    /// Sorts and deduplicates attestations and ops throughout the tree, merging duplicate ops.
    fn normalize(&mut self) {
        self.attestations.sort();
        self.attestations.dedup();
        let ops = std::mem::take(&mut self.ops);
        let mut ops_sorted: Vec<(Op, Timestamp)> = Vec::with_capacity(ops.len());
        let mut ops = ops;
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        for (op, stamp) in ops {
            match ops_sorted.last_mut() {
                Some((last_op, last_stamp)) if *last_op == op => {
                    // Same op on the same message gives the same child; an inconsistent
                    // hand-built tree keeps its first child for that op.
                    let _ = last_stamp.merge(stamp);
                }
                _ => ops_sorted.push((op, stamp)),
            }
        }
        for (_, stamp) in &mut ops_sorted {
            stamp.normalize();
        }
        self.ops = ops_sorted;
    }

    /// Writes a normalised node exactly as the reference library's `Timestamp.serialize`.
    fn write(&self, out: &mut Vec<u8>) {
        let n_attestations = self.attestations.len();
        for (idx, attestation) in self.attestations.iter().enumerate() {
            let is_last_item = idx + 1 == n_attestations && self.ops.is_empty();
            if !is_last_item {
                out.push(0xff);
            }
            out.push(0x00);
            attestation.write(out);
        }
        let n_ops = self.ops.len();
        for (idx, (op, stamp)) in self.ops.iter().enumerate() {
            if idx + 1 != n_ops {
                out.push(0xff);
            }
            op.write(out);
            stamp.write(out);
        }
    }
}

impl DetachedTimestamp {
    /// A proof (still empty) for a file whose SHA-256 digest is `digest`.
    pub fn from_sha256_digest(digest: [u8; 32]) -> Self {
        DetachedTimestamp {
            file_hash_op: HashOp::Sha256,
            timestamp: Timestamp::new(digest.to_vec()),
        }
    }

    /// Parses a `.ots` file strictly: header magic, version 1, a known file hash op,
    /// the tree with the reference library's size and depth limits, and nothing after it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OtsError> {
        let mut reader = Reader::new(bytes);
        let magic = reader
            .read_bytes(HEADER_MAGIC.len())
            .map_err(|_| OtsError::BadMagic)?;
        if magic != HEADER_MAGIC {
            return Err(OtsError::BadMagic);
        }
        let version = reader.read_varuint()?;
        if version != MAJOR_VERSION {
            return Err(OtsError::UnsupportedVersion(version));
        }
        let tag = reader.read_u8()?;
        let file_hash_op = HashOp::from_tag(tag).ok_or(OtsError::UnknownFileHashOp(tag))?;
        let digest = reader.read_bytes(file_hash_op.digest_len())?.to_vec();
        let timestamp = read_node(&mut reader, digest, RECURSION_LIMIT)?;
        reader.finish()?;
        Ok(DetachedTimestamp {
            file_hash_op,
            timestamp,
        })
    }

    /// Serialises the file exactly as the reference library's `DetachedTimestampFile.serialize`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = HEADER_MAGIC.to_vec();
        write_varuint(&mut out, MAJOR_VERSION);
        out.push(self.file_hash_op.tag());
        out.extend_from_slice(&self.timestamp.msg);
        out.extend_from_slice(&self.timestamp.to_bytes());
        out
    }

    /// The digest of the timestamped file.
    pub fn digest(&self) -> &[u8] {
        &self.timestamp.msg
    }
}

fn check_msg_len(msg: &[u8]) -> Result<(), OtsError> {
    if msg.len() > MAX_MSG_LENGTH {
        return Err(OtsError::BadLength {
            what: "timestamp message",
            len: msg.len() as u64,
            min: 0,
            max: MAX_MSG_LENGTH as u64,
        });
    }
    Ok(())
}

/// Reads one node as the reference library's `Timestamp.deserialize` does.
fn read_node(
    reader: &mut Reader<'_>,
    msg: Vec<u8>,
    depth_left: usize,
) -> Result<Timestamp, OtsError> {
    if depth_left == 0 {
        return Err(OtsError::RecursionLimit {
            limit: RECURSION_LIMIT,
        });
    }
    let mut node = Timestamp::new(msg);
    loop {
        let offset = reader.pos();
        let mut tag = reader.read_u8()?;
        let has_more = tag == 0xff;
        let item_offset = if has_more { reader.pos() } else { offset };
        if has_more {
            tag = reader.read_u8()?;
        }
        if tag == 0x00 {
            node.add_attestation(Attestation::read(reader)?);
        } else {
            let op = Op::read_after_tag(reader, tag, item_offset)?;
            let child_msg = op.apply(&node.msg)?;
            let child = read_node(reader, child_msg, depth_left - 1)?;
            // A repeated op replaces the earlier sub-tree, as in the reference library.
            match node.ops.binary_search_by(|(existing, _)| existing.cmp(&op)) {
                Ok(idx) => node.ops[idx].1 = child,
                Err(idx) => node.ops.insert(idx, (op, child)),
            }
        }
        if !has_more {
            return Ok(node);
        }
    }
}

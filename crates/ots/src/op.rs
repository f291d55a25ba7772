//! Proof operations (the edges of a timestamp tree) and the file hash ops of the file header.

use std::cmp::Ordering;

use sha2::Digest;

use crate::error::OtsError;
use crate::serialize::{Reader, write_varbytes};

/// Largest message an operation accepts and largest result it may produce (reference limit).
pub(crate) const MAX_MSG_LENGTH: usize = 4096;

/// A hash used to digest the timestamped file, as named in a detached proof's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashOp {
    /// SHA-256 (tag 0x08), 32 bytes.
    Sha256,
    /// SHA-1 (tag 0x02), 20 bytes.
    Sha1,
    /// RIPEMD-160 (tag 0x03), 20 bytes.
    Ripemd160,
    /// Keccak-256 (tag 0x67), 32 bytes.
    Keccak256,
}

/// One operation of a timestamp proof: computes a child message from its parent message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// SHA-256 of the message.
    Sha256,
    /// SHA-1 of the message.
    Sha1,
    /// RIPEMD-160 of the message.
    Ripemd160,
    /// Keccak-256 of the message.
    Keccak256,
    /// The message followed by these bytes.
    Append(Vec<u8>),
    /// These bytes followed by the message.
    Prepend(Vec<u8>),
    /// The message reversed.
    Reverse,
    /// Lower-case hex of the message.
    Hexlify,
}

impl HashOp {
    /// The op's tag byte in the binary format.
    pub fn tag(self) -> u8 {
        self.as_op().tag()
    }

    /// Length of the digest this hash produces.
    pub fn digest_len(self) -> usize {
        match self {
            HashOp::Sha256 | HashOp::Keccak256 => 32,
            HashOp::Sha1 | HashOp::Ripemd160 => 20,
        }
    }

    /// The reference library's name for the hash (`sha256`, `sha1`, `ripemd160`, `keccak256`).
    pub fn name(self) -> &'static str {
        self.as_op().name()
    }

    /// Hashes `data` with this hash.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashOp::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashOp::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashOp::Ripemd160 => ripemd::Ripemd160::digest(data).to_vec(),
            HashOp::Keccak256 => sha3::Keccak256::digest(data).to_vec(),
        }
    }

    /// The same hash as a proof operation.
    pub fn as_op(self) -> Op {
        match self {
            HashOp::Sha256 => Op::Sha256,
            HashOp::Sha1 => Op::Sha1,
            HashOp::Ripemd160 => Op::Ripemd160,
            HashOp::Keccak256 => Op::Keccak256,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<HashOp> {
        match tag {
            0x08 => Some(HashOp::Sha256),
            0x02 => Some(HashOp::Sha1),
            0x03 => Some(HashOp::Ripemd160),
            0x67 => Some(HashOp::Keccak256),
            _ => None,
        }
    }
}

impl Op {
    /// The op's tag byte in the binary format.
    pub fn tag(&self) -> u8 {
        match self {
            Op::Sha1 => 0x02,
            Op::Ripemd160 => 0x03,
            Op::Sha256 => 0x08,
            Op::Keccak256 => 0x67,
            Op::Append(_) => 0xf0,
            Op::Prepend(_) => 0xf1,
            Op::Reverse => 0xf2,
            Op::Hexlify => 0xf3,
        }
    }

    /// The reference library's name for the op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Sha1 => "sha1",
            Op::Ripemd160 => "ripemd160",
            Op::Sha256 => "sha256",
            Op::Keccak256 => "keccak256",
            Op::Append(_) => "append",
            Op::Prepend(_) => "prepend",
            Op::Reverse => "reverse",
            Op::Hexlify => "hexlify",
        }
    }

    /// Applies the op to `msg` with the reference library's limits (4096-byte messages and
    /// results, 2048 bytes for hexlify, no empty input to reverse or hexlify).
    pub fn apply(&self, msg: &[u8]) -> Result<Vec<u8>, OtsError> {
        let max_msg = if *self == Op::Hexlify {
            MAX_MSG_LENGTH / 2
        } else {
            MAX_MSG_LENGTH
        };
        let refuse = |reason| OtsError::OpInput {
            op: self.name(),
            len: msg.len(),
            reason,
        };
        if msg.len() > max_msg {
            return Err(refuse("message too long"));
        }
        let res = match self {
            Op::Sha256 => HashOp::Sha256.hash(msg),
            Op::Sha1 => HashOp::Sha1.hash(msg),
            Op::Ripemd160 => HashOp::Ripemd160.hash(msg),
            Op::Keccak256 => HashOp::Keccak256.hash(msg),
            Op::Append(arg) => [msg, arg].concat(),
            Op::Prepend(arg) => [arg, msg].concat(),
            Op::Reverse | Op::Hexlify if msg.is_empty() => {
                return Err(refuse("message is empty"));
            }
            Op::Reverse => msg.iter().rev().copied().collect(),
            Op::Hexlify => hex::encode(msg).into_bytes(),
        };
        if res.len() > MAX_MSG_LENGTH {
            return Err(refuse("result too long"));
        }
        Ok(res)
    }

    /// The argument of `Append`/`Prepend`, empty for the other ops.
    pub fn arg(&self) -> &[u8] {
        match self {
            Op::Append(arg) | Op::Prepend(arg) => arg,
            _ => &[],
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        if let Op::Append(arg) | Op::Prepend(arg) = self {
            write_varbytes(out, arg);
        }
    }

    /// Reads the rest of an op whose tag byte (read at `offset`) is `tag`.
    pub(crate) fn read_after_tag(
        reader: &mut Reader<'_>,
        tag: u8,
        offset: usize,
    ) -> Result<Op, OtsError> {
        let res = match tag {
            0x02 => Op::Sha1,
            0x03 => Op::Ripemd160,
            0x08 => Op::Sha256,
            0x67 => Op::Keccak256,
            0xf0 => Op::Append(
                reader
                    .read_varbytes("append argument", 1, MAX_MSG_LENGTH)?
                    .to_vec(),
            ),
            0xf1 => Op::Prepend(
                reader
                    .read_varbytes("prepend argument", 1, MAX_MSG_LENGTH)?
                    .to_vec(),
            ),
            0xf2 => Op::Reverse,
            0xf3 => Op::Hexlify,
            _ => return Err(OtsError::UnknownOp { offset, tag }),
        };
        Ok(res)
    }
}

/// Orders ops as the reference library does: by tag, then by argument bytes.
impl Ord for Op {
    fn cmp(&self, other: &Self) -> Ordering {
        self.tag()
            .cmp(&other.tag())
            .then_with(|| self.arg().cmp(other.arg()))
    }
}

impl PartialOrd for Op {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Append(arg) | Op::Prepend(arg) => write!(f, "{} {}", self.name(), hex::encode(arg)),
            _ => f.write_str(self.name()),
        }
    }
}

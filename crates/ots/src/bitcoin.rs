//! Bitcoin block headers: parsing, hashing, proof-of-work check, and attestation verification.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::error::OtsError;

/// An 80-byte Bitcoin block header, kept as its raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    bytes: [u8; 80],
}

/// Checks that `msg`, the commitment at a Bitcoin attestation, is the merkle root of `header`;
/// returns the block time (seconds since the Unix epoch) on success.
pub fn verify_attestation(msg: &[u8], header: &BlockHeader) -> Result<u32, OtsError> {
    if msg != header.merkle_root() {
        return Err(OtsError::MerkleRootMismatch {
            hash: header.block_hash_hex(),
            commitment: hex::encode(msg),
            merkle_root: hex::encode(header.merkle_root()),
        });
    }
    Ok(header.time())
}

/// Parses a block headers file: lines `<height> <160 hex digits>`, blank lines, `#` comments.
pub fn parse_headers_file(text: &str) -> Result<BTreeMap<u64, BlockHeader>, OtsError> {
    let mut res = BTreeMap::new();
    for (line_idx, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| OtsError::HeadersFile {
            line: line_idx + 1,
            reason,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [height, header_hex] = fields.as_slice() else {
            return Err(bad(format!("expected 2 fields, found {}", fields.len())));
        };
        let height: u64 = height
            .parse()
            .map_err(|_| bad(format!("height {height:?} is not a decimal number")))?;
        let header = BlockHeader::from_hex(header_hex).map_err(|err| bad(err.to_string()))?;
        if res.insert(height, header).is_some() {
            return Err(bad(format!("height {height} appears twice")));
        }
    }
    Ok(res)
}

impl BlockHeader {
    /// Wraps exactly 80 raw header bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OtsError> {
        let bytes: [u8; 80] = bytes.try_into().map_err(|_| OtsError::BadHeader {
            reason: format!("{} bytes", bytes.len()),
        })?;
        Ok(BlockHeader { bytes })
    }

    /// Parses 160 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, OtsError> {
        let bytes = hex::decode(text.trim()).map_err(|err| OtsError::BadHeader {
            reason: format!("not hex ({err})"),
        })?;
        BlockHeader::from_bytes(&bytes)
    }

    /// The raw 80 bytes.
    pub fn as_bytes(&self) -> &[u8; 80] {
        &self.bytes
    }

    /// The raw bytes as lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Block version.
    pub fn version(&self) -> u32 {
        self.u32_at(0)
    }

    /// Hash of the previous block, internal byte order.
    pub fn prev_block_hash(&self) -> [u8; 32] {
        self.hash_at(4)
    }

    /// Merkle root of the block's transactions, internal byte order (as in the header).
    pub fn merkle_root(&self) -> [u8; 32] {
        self.hash_at(36)
    }

    /// Block time, seconds since the Unix epoch.
    pub fn time(&self) -> u32 {
        self.u32_at(68)
    }

    /// Compact proof-of-work target.
    pub fn bits(&self) -> u32 {
        self.u32_at(72)
    }

    /// Proof-of-work nonce.
    pub fn nonce(&self) -> u32 {
        self.u32_at(76)
    }

    /// Double SHA-256 of the header, internal byte order.
    pub fn block_hash(&self) -> [u8; 32] {
        sha256d(&self.bytes)
    }

    /// Block hash in display order (reversed), as block explorers show it.
    pub fn block_hash_hex(&self) -> String {
        let mut hash = self.block_hash();
        hash.reverse();
        hex::encode(hash)
    }

    /// Checks that the block hash meets the target encoded in `bits`.
    pub fn check_proof_of_work(&self) -> Result<(), OtsError> {
        let target = target_from_bits(self.bits());
        let mut hash = self.block_hash();
        // Compare as big-endian 256-bit numbers.
        hash.reverse();
        if target.is_some_and(|target| hash <= target) {
            Ok(())
        } else {
            Err(OtsError::InsufficientWork {
                hash: self.block_hash_hex(),
            })
        }
    }

    fn u32_at(&self, offset: usize) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.bytes[offset..offset + 4]);
        u32::from_le_bytes(word)
    }

    fn hash_at(&self, offset: usize) -> [u8; 32] {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&self.bytes[offset..offset + 32]);
        hash
    }
}

/// Double SHA-256, as Bitcoin uses for block and transaction ids.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// Expands compact `bits` into a big-endian 256-bit target; `None` if negative or overflowing.
fn target_from_bits(bits: u32) -> Option<[u8; 32]> {
    let exponent = (bits >> 24) as usize;
    let mantissa = bits & 0x007f_ffff;
    if bits & 0x0080_0000 != 0 || exponent > 32 {
        return None;
    }
    let mut target = [0u8; 32];
    let mantissa_bytes = &mantissa.to_be_bytes()[1..];
    for (idx, byte) in mantissa_bytes.iter().enumerate() {
        // Byte `idx` of the mantissa lands at big-endian position 32 - exponent + idx.
        let pos = (32 + idx).checked_sub(exponent)?;
        // Bytes shifted below the least significant position drop out, as in Bitcoin Core.
        if pos < 32 {
            target[pos] = *byte;
        }
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use crate::bitcoin::{BlockHeader, target_from_bits};

    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn genesis_header_fields_hash_and_work() {
        let header = BlockHeader::from_hex(GENESIS).unwrap();
        assert_eq!(
            header.block_hash_hex(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert_eq!(header.time(), 1_231_006_505);
        assert_eq!(header.bits(), 0x1d00_ffff);
        assert_eq!(header.nonce(), 2_083_236_893);
        header.check_proof_of_work().unwrap();
        let mut tampered = *header.as_bytes();
        tampered[76] ^= 1;
        let tampered = BlockHeader::from_bytes(&tampered).unwrap();
        assert!(tampered.check_proof_of_work().is_err());
    }

    #[test]
    fn compact_targets_expand_like_bitcoin_core() {
        let target = target_from_bits(0x1d00_ffff).unwrap();
        assert_eq!(
            hex::encode(target),
            format!("00000000ffff{}", "0".repeat(52))
        );
        let regtest = target_from_bits(0x207f_ffff).unwrap();
        assert_eq!(hex::encode(regtest), format!("7fffff{}", "0".repeat(58)));
        assert_eq!(target_from_bits(0x0180_0000), None);
        assert!(BlockHeader::from_hex("00").is_err());
    }
}

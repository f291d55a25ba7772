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

/// The least proof-of-work a header must claim (and meet) before it is believed.
///
/// A header only proves anything because producing one costs work: a header that meets an easy
/// target can be made on a laptop for any merkle root. [`WorkFloor::MAINNET`] demands about the
/// work of a 2021 main-chain block, so forging a header costs about as much as mining a real
/// block; [`WorkFloor::REGTEST`] accepts the trivial work of a regtest chain and exists only for
/// tests (see `client::work_floor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkFloor {
    bits: u32,
}

impl WorkFloor {
    /// Difficulty 2^44 (about 1.8e13): below every main-chain block since 2021 and about
    /// eight times below the difficulty of 2025, so no real block an appliance anchors in falls
    /// under it, while forging a header above it needs about 2^76 hashes.
    pub const MAINNET: WorkFloor = WorkFloor { bits: 0x170f_fff0 };
    /// Regtest's maximal target: every other header qualifies. Tests only.
    pub const REGTEST: WorkFloor = WorkFloor { bits: 0x207f_ffff };

    /// The floor as a compact target.
    pub fn bits(self) -> u32 {
        self.bits
    }
}

/// Checks every header's proof-of-work against `floor`, and that headers at consecutive heights
/// link (each names its predecessor's hash).
pub fn check_headers(
    headers: &BTreeMap<u64, BlockHeader>,
    floor: WorkFloor,
) -> Result<(), OtsError> {
    let mut prev: Option<(u64, &BlockHeader)> = None;
    for (&height, header) in headers {
        header.check_work(floor)?;
        if let Some((prev_height, prev_header)) = prev
            && prev_height.checked_add(1) == Some(height)
            && header.prev_block_hash() != prev_header.block_hash()
        {
            return Err(OtsError::BrokenChain {
                height,
                prev_height,
            });
        }
        prev = Some((height, header));
    }
    Ok(())
}

/// Parses a block headers file: lines `<height> <160 hex digits>`, blank lines, `#` comments;
/// then checks the headers with [`check_headers`] against `floor`.
pub fn parse_headers_file(
    text: &str,
    floor: WorkFloor,
) -> Result<BTreeMap<u64, BlockHeader>, OtsError> {
    let headers = parse_headers_lines(text)?;
    check_headers(&headers, floor)?;
    Ok(headers)
}

fn parse_headers_lines(text: &str) -> Result<BTreeMap<u64, BlockHeader>, OtsError> {
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

    /// Checks the proof-of-work ([`Self::check_proof_of_work`]) and that the target is no
    /// easier than `floor`.
    pub fn check_work(&self, floor: WorkFloor) -> Result<(), OtsError> {
        let below_floor = || OtsError::BelowWorkFloor {
            hash: self.block_hash_hex(),
            bits: self.bits(),
            floor: floor.bits,
        };
        let (Some(target), Some(floor_target)) =
            (target_from_bits(self.bits()), target_from_bits(floor.bits))
        else {
            return Err(below_floor());
        };
        if target > floor_target {
            return Err(below_floor());
        }
        self.check_proof_of_work()
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
    use std::collections::BTreeMap;

    use crate::bitcoin::{
        BlockHeader, WorkFloor, check_headers, parse_headers_file, target_from_bits,
    };
    use crate::error::OtsError;

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

    /// Bitcoin's block 125552 (difficulty about 245,000), the wiki's hashing example.
    const BLOCK_125552: &str = "0100000081cd02ab7e569e8bcd9317e2fe99f2de44d49ab2b8851ba4a308000000000000e320b6c2fffc8d750423db8b1eb942ae710e951ed797f7affc8892b0f1fc122bc7f5d74df2b9441a42a14695";

    /// Makes a header with `bits` and `prev` that meets its own target (only feasible for easy
    /// targets), as an attacker crafting a headers file would.
    fn mine(bits: u32, prev: [u8; 32], merkle_root: [u8; 32]) -> BlockHeader {
        let mut bytes = [0u8; 80];
        bytes[0..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
        bytes[4..36].copy_from_slice(&prev);
        bytes[36..68].copy_from_slice(&merkle_root);
        bytes[68..72].copy_from_slice(&1_800_000_000u32.to_le_bytes());
        bytes[72..76].copy_from_slice(&bits.to_le_bytes());
        let mut nonce = 0u32;
        loop {
            bytes[76..80].copy_from_slice(&nonce.to_le_bytes());
            let header = BlockHeader::from_bytes(&bytes).unwrap();
            if header.check_proof_of_work().is_ok() {
                return header;
            }
            nonce += 1;
        }
    }

    #[test]
    fn crafted_cheap_headers_are_refused_by_the_mainnet_floor() {
        // A regtest header "proves" any merkle root the forger likes.
        let forged = mine(0x207f_ffff, [0; 32], [7; 32]);
        forged.check_work(WorkFloor::REGTEST).unwrap();
        let err = forged.check_work(WorkFloor::MAINNET).unwrap_err();
        assert!(
            matches!(
                err,
                OtsError::BelowWorkFloor {
                    bits: 0x207f_ffff,
                    ..
                }
            ),
            "{err}"
        );
        // Real headers with real but old, cheap work are below the floor too.
        let genesis = BlockHeader::from_hex(GENESIS).unwrap();
        genesis.check_proof_of_work().unwrap();
        assert!(genesis.check_work(WorkFloor::MAINNET).is_err());
        let old = BlockHeader::from_hex(BLOCK_125552).unwrap();
        assert_eq!(
            old.block_hash_hex(),
            "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d"
        );
        assert!(old.check_work(WorkFloor::MAINNET).is_err());
        // Claiming hard bits does not help if the hash does not meet them.
        let mut bytes = *forged.as_bytes();
        bytes[72..76].copy_from_slice(&0x1702_3a04u32.to_le_bytes());
        let liar = BlockHeader::from_bytes(&bytes).unwrap();
        let err = liar.check_work(WorkFloor::MAINNET).unwrap_err();
        assert!(matches!(err, OtsError::InsufficientWork { .. }), "{err}");
        // A negative or overflowing floor comparison never passes.
        bytes[72..76].copy_from_slice(&0x0180_0000u32.to_le_bytes());
        let negative = BlockHeader::from_bytes(&bytes).unwrap();
        assert!(negative.check_work(WorkFloor::REGTEST).is_err());
    }

    #[test]
    fn the_mainnet_floor_sits_between_2021_and_today() {
        let floor = target_from_bits(WorkFloor::MAINNET.bits()).unwrap();
        // Block 700,000 (September 2021) and a 2025 target are harder (smaller) than the floor.
        assert!(target_from_bits(0x170e_d0eb).unwrap() < floor);
        assert!(target_from_bits(0x1702_3a04).unwrap() < floor);
        // Block 400,000 (2016) is easier.
        assert!(target_from_bits(0x1806_b99f).unwrap() > floor);
    }

    #[test]
    fn headers_at_consecutive_heights_must_link() {
        let first = mine(0x207f_ffff, [0; 32], [1; 32]);
        let second = mine(0x207f_ffff, first.block_hash(), [2; 32]);
        let stray = mine(0x207f_ffff, [9; 32], [3; 32]);
        let chained = BTreeMap::from([(10, first), (11, second)]);
        check_headers(&chained, WorkFloor::REGTEST).unwrap();
        // A gap needs no link.
        check_headers(
            &BTreeMap::from([(10, first), (12, stray)]),
            WorkFloor::REGTEST,
        )
        .unwrap();
        let broken = BTreeMap::from([(10, first), (11, stray)]);
        let err = check_headers(&broken, WorkFloor::REGTEST).unwrap_err();
        assert!(
            matches!(
                err,
                OtsError::BrokenChain {
                    height: 11,
                    prev_height: 10
                }
            ),
            "{err}"
        );
        let file = format!("10 {}\n11 {}\n", first.to_hex(), stray.to_hex());
        assert!(parse_headers_file(&file, WorkFloor::REGTEST).is_err());
        let file = format!("10 {}\n", first.to_hex());
        assert!(parse_headers_file(&file, WorkFloor::REGTEST).is_ok());
        assert!(parse_headers_file(&file, WorkFloor::MAINNET).is_err());
    }
}

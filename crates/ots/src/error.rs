//! The single error type of the crate: parsing, merging, verification and HTTP failures.

/// Everything that can go wrong while reading, building, verifying or fetching a timestamp.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtsError {
    /// The input ended before a complete proof was read.
    #[error(
        "timestamp proof is truncated: needed {needed} more byte(s) at offset {offset}; the file is incomplete, fetch or copy it again"
    )]
    Truncated {
        /// Byte offset at which more input was needed.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The file does not start with the OpenTimestamps header magic.
    #[error("not an OpenTimestamps proof: the header magic is missing; pass a `.ots` file")]
    BadMagic,
    /// The major version in the header is not 1.
    #[error("unsupported OpenTimestamps proof version {0}; only version 1 is supported")]
    UnsupportedVersion(u64),
    /// The file hash op tag in the header is not a known hash.
    #[error(
        "unknown file hash op tag 0x{0:02x} in the header; the proof is corrupt or uses an unsupported hash"
    )]
    UnknownFileHashOp(u8),
    /// An operation tag in the proof tree is unknown.
    #[error(
        "unknown operation tag 0x{tag:02x} at offset {offset}; the proof is corrupt or from a newer format"
    )]
    UnknownOp {
        /// Byte offset of the tag.
        offset: usize,
        /// The tag byte.
        tag: u8,
    },
    /// Bytes remain after a complete proof.
    #[error(
        "{n_extra} trailing byte(s) after the end of the proof at offset {offset}; the file is corrupt"
    )]
    TrailingBytes {
        /// Offset where the proof ended.
        offset: usize,
        /// Number of extra bytes.
        n_extra: usize,
    },
    /// The proof tree nests deeper than the reference implementation allows.
    #[error("timestamp proof nests deeper than {limit} levels; refusing to parse it")]
    RecursionLimit {
        /// The nesting limit.
        limit: usize,
    },
    /// A length-prefixed field or a computed message exceeds its bound.
    #[error("{what} is {len} bytes, outside the allowed range {min}..={max}; the proof is corrupt")]
    BadLength {
        /// Which field was out of range.
        what: &'static str,
        /// Its length.
        len: u64,
        /// Smallest allowed length.
        min: u64,
        /// Largest allowed length.
        max: u64,
    },
    /// A variable-length integer is longer than 64 bits or not minimally encoded.
    #[error("invalid variable-length integer at offset {offset}: {reason}; the proof is corrupt")]
    BadVaruint {
        /// Byte offset of the integer.
        offset: usize,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An operation cannot be applied to its input (empty or too long message).
    #[error("operation {op} cannot be applied to a {len}-byte message: {reason}")]
    OpInput {
        /// The operation's name.
        op: &'static str,
        /// Length of the input message.
        len: usize,
        /// Why the operation refused it.
        reason: &'static str,
    },
    /// A pending attestation's calendar URI has a forbidden character or is too long.
    #[error("invalid calendar URI in pending attestation: {reason}")]
    BadUri {
        /// What is wrong with it.
        reason: String,
    },
    /// An attestation payload had bytes left after its known fields.
    #[error("attestation payload has {n_extra} trailing byte(s); the proof is corrupt")]
    AttestationTrailingBytes {
        /// Number of extra bytes.
        n_extra: usize,
    },
    /// Two timestamps for different messages cannot be merged.
    #[error(
        "cannot merge timestamps for different messages ({ours} vs {theirs}); merge only proofs of the same commitment"
    )]
    MessageMismatch {
        /// Hex of our message.
        ours: String,
        /// Hex of the other message.
        theirs: String,
    },
    /// A block header is not exactly 80 bytes or not valid hex.
    #[error(
        "invalid Bitcoin block header: {reason}; a header is exactly 80 bytes (160 hex digits)"
    )]
    BadHeader {
        /// What is wrong.
        reason: String,
    },
    /// A header's hash does not meet the target its `bits` field claims.
    #[error(
        "block header {hash} does not meet its proof-of-work target; the header is forged or corrupt"
    )]
    InsufficientWork {
        /// Block hash in display order.
        hash: String,
    },
    /// The commitment at a Bitcoin attestation is not the header's merkle root.
    #[error(
        "attestation does not match block header {hash}: commitment {commitment} is not its merkle root {merkle_root}; the proof or the header is wrong"
    )]
    MerkleRootMismatch {
        /// Block hash in display order.
        hash: String,
        /// Hex of the commitment.
        commitment: String,
        /// Hex of the header's merkle root (internal byte order).
        merkle_root: String,
    },
    /// A line of a block headers file is malformed.
    #[error(
        "block headers file line {line}: {reason}; lines are `<height> <160 hex digits>` or `#` comments"
    )]
    HeadersFile {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up failed).
    #[error("cannot build the HTTP client: {0}; check the system's TLS roots")]
    HttpClient(String),
    /// An HTTP request failed before a response arrived.
    #[error("HTTP request to {url} failed (check the URL and network)")]
    Http {
        /// The requested URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// A server answered with an unexpected status.
    #[error("{url} answered HTTP {status}: {body}")]
    HttpStatus {
        /// The requested URL.
        url: String,
        /// The status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// A server's answer could not be understood.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse {
        /// The requested URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header's `bits` claim less work than the floor the verifier demands.
    #[error(
        "block header {hash} claims too little proof-of-work (bits {bits:#010x}, easier than the floor {floor:#010x}); it is not a Bitcoin main-chain header"
    )]
    BelowWorkFloor {
        /// Block hash in display order.
        hash: String,
        /// The header's compact target.
        bits: u32,
        /// The floor's compact target.
        floor: u32,
    },
    /// Two headers at consecutive heights do not link.
    #[error(
        "block header at height {height} does not follow the header at height {prev_height}: its previous-block hash is not that header's hash"
    )]
    BrokenChain {
        /// Height of the header whose link is wrong.
        height: u64,
        /// Height of the header before it.
        prev_height: u64,
    },
    /// A URL is neither HTTPS nor plain HTTP to this machine's loopback.
    #[error(
        "refusing {url}: calendars and block explorers are reached over https:// only (plain http:// only to a loopback address such as 127.0.0.1)"
    )]
    InsecureUrl {
        /// The refused URL.
        url: String,
    },
}

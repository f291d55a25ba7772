//! Evidence log core: canonical JSON, Ed25519 signing, hash chain, RFC 9162 Merkle log, checkpoints, auditor kit.

pub mod checkpoint;
pub mod cosignature;
pub mod credential;
pub mod jcs;
pub mod keys;
pub mod kit;
pub mod log;
pub mod merkle;
pub mod note;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use cosignature::{CosignatureError, WitnessKey, WitnessVerifier};
pub use credential::ApplianceKeySource;
pub use jcs::{JcsError, canonicalize};
pub use keys::{ApplianceKey, KeyError, VerifierKey};
pub use log::{BundleDraft, Entry, EvidenceError, LogWriter, PreparedDraft};
pub use merkle::{MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion};

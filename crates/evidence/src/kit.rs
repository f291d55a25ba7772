//! The auditor kit: a self-contained, signed directory of the log, written by [`export`] and checked offline by [`verify`].
//!
//! The kit's layout and every check are specified in docs/EVIDENCE-FORMAT.md.
//! `export` writes a kit, `verify` checks one (`line` checks single bundle lines, `agent` the endpoint agents' bundles), `readme` is the kit's README.

mod agent;
mod export;
mod line;
mod manifest_html;
mod readme;
mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::keys::{ApplianceKey, VerifierKey};

pub use crate::kit::export::export;
pub use crate::kit::verify::verify;

/// What to export: the signing key, the bundle lines in `seq` order, signed checkpoints and their `.ots` proofs.
pub struct KitSource<'a> {
    /// Signs the MANIFEST (and a final checkpoint if none covers every bundle).
    pub key: &'a ApplianceKey,
    /// Bundle lines without newline, in `seq` order.
    pub lines: Box<dyn Iterator<Item = Result<Vec<u8>, KitError>> + 'a>,
    /// Signed checkpoint note texts, any order.
    pub checkpoints: Vec<String>,
    /// OpenTimestamps proofs, keyed by the size of the checkpoint they timestamp.
    pub ots: Vec<(u64, Vec<u8>)>,
    /// Witness cosignature lines (`— <witness> <base64>\n`), keyed by checkpoint size.
    pub cosignatures: Vec<(u64, String)>,
    /// Files for the auditor (`auditor/…`), listed in the signed MANIFEST, with an HTML manifest.
    pub auditor: Option<AuditorFiles>,
}

/// What a kit carries for an auditor beyond the log: files under `auditor/` and the HTML
/// manifest `auditor/manifest.html`, which lists every other file of the kit with its SHA-256 and
/// what it is, then the caller's section. Both are listed in, and so signed by, the MANIFEST.
/// `title`, the descriptions and `html_section` are HTML: the caller escapes every value in them.
#[derive(Debug, Clone)]
pub struct AuditorFiles {
    /// Title of the HTML manifest (HTML, escaped by the caller).
    pub title: String,
    /// `(file name under auditor/, bytes, what it is as HTML escaped by the caller)`.
    pub files: Vec<(String, Vec<u8>, String)>,
    /// HTML appended to the manifest after the file list; the caller escapes every value in it.
    pub html_section: String,
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitSummary {
    /// Number of bundles.
    pub bundles: u64,
    /// Number of checkpoints.
    pub checkpoints: u64,
    /// Root over all bundles.
    pub root: [u8; 32],
    /// True when no supplied checkpoint covered every bundle and export signed one.
    pub signed_final_checkpoint: bool,
}

/// Why a kit could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Naming the temporary directory, syncing the kit or moving it into place failed.
    #[error(transparent)]
    Durable(#[from] durable::Error),
    /// The output directory exists and is not empty.
    #[error("{0} already exists and is not empty: choose a new directory for the kit")]
    OutputExists(PathBuf),
    /// The source of bundle lines failed.
    #[error("reading bundles")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A bundle line contains a newline, so it is not a JCS line.
    #[error(
        "bundle {0} contains a raw newline: the evidence store is damaged, run `osiris evidence verify`"
    )]
    LineHasNewline(u64),
    /// A supplied checkpoint does not verify under the key.
    #[error("checkpoint {index} does not verify")]
    Checkpoint {
        /// Position in the supplied list.
        index: usize,
        /// Why.
        source: CheckpointError,
    },
    /// A supplied checkpoint does not match the exported bundles.
    #[error(
        "checkpoint of size {size} does not match the bundles ({reason}): the store and its checkpoints disagree"
    )]
    CheckpointMismatch {
        /// The checkpoint size.
        size: u64,
        /// What does not match.
        reason: &'static str,
    },
    /// An `.ots` proof refers to no supplied checkpoint.
    #[error("OpenTimestamps proof for size {0} has no matching checkpoint")]
    OrphanOts(u64),
    /// A cosignature refers to no supplied checkpoint.
    #[error("a witness cosignature for size {0} has no matching checkpoint")]
    OrphanCosignature(u64),
    /// An auditor file's name is not a plain file name (letters, digits, `-`, `_`, `.`).
    #[error("auditor file name {0:?} is not a plain file name, or is reserved")]
    AuditorFileName(String),
}

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// When set, `appliance.pub` must equal this key and everything is verified under it.
    pub pinned_key: Option<VerifierKey>,
    /// Bitcoin block headers by height, to check Bitcoin attestations offline.
    pub block_headers: BTreeMap<u64, ots::bitcoin::BlockHeader>,
    /// When set, at least one checkpoint must carry a valid cosignature by this witness, and
    /// every cosignature by it must verify.
    pub witness: Option<crate::cosignature::WitnessVerifier>,
}

/// One thing wrong with a kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path inside the kit.
    pub path: String,
    /// 1-based line number, when the problem is in one line.
    pub line: Option<u64>,
    /// What is wrong and what it means.
    pub message: String,
}

/// Timestamp status of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtsStatus {
    /// No `.ots` file.
    None,
    /// Only calendar (pending) attestations: not yet anchored in Bitcoin.
    Pending {
        /// Calendar URLs.
        calendars: Vec<String>,
    },
    /// A Bitcoin attestation.
    Bitcoin {
        /// Block height.
        height: u64,
        /// Block time when the supplied header verified the attestation.
        verified_time: Option<u32>,
        /// True when no header for `height` was supplied.
        header_missing: bool,
    },
    /// The proof is unusable (the reason is also reported as a problem).
    Invalid,
}

/// The timestamp status of the checkpoint of `size` bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOts {
    /// Checkpoint size.
    pub size: u64,
    /// Its status.
    pub status: OtsStatus,
}

/// The result of [`verify`]: the kit is good exactly when `problems` is empty.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Everything found wrong (at most [`MAX_PROBLEMS`] plus a final "and N more").
    pub problems: Vec<Problem>,
    /// Number of bundle lines read.
    pub bundles: u64,
    /// Number of checkpoint files that verified.
    pub checkpoints: u64,
    /// The key everything was verified under.
    pub key: Option<VerifierKey>,
    /// Root over all bundles.
    pub root: Option<[u8; 32]>,
    /// Timestamp status per checkpoint.
    pub ots: Vec<CheckpointOts>,
    /// Checkpoints cosigned by the witness given in [`VerifyOptions::witness`]: (size, time).
    pub witnessed: Vec<(u64, u64)>,
    /// Checkpoints that carry cosignature files (checked only against a given witness key).
    pub cosigned_files: u64,
    /// Every endpoint agent enrolled in the log, by agent ID: what it reported and what it lost.
    pub agents: Vec<AgentSummary>,
}

/// One endpoint agent as the log accounts for it (its problems are in [`VerifyReport::problems`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent's ID on the appliance.
    pub agent_id: String,
    /// The line of `bundles.jsonl` with its `agent_enrollment` (1-based, like [`Problem::line`]).
    pub enrollment_line: u64,
    /// The line with its `agent_revocation`, if it was revoked.
    pub revocation_line: Option<u64>,
    /// Its `agent_result` bundles.
    pub results: u64,
    /// Its `agent_remediation` bundles.
    pub remediations: u64,
    /// The highest sequence number accounted for, by an item or a gap (0 for none).
    pub last_seq: u64,
    /// The numbers it dropped and why, in log order.
    pub gaps: Vec<AgentGap>,
}

/// Sequence numbers an agent dropped, as its `agent_gap` bundle recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentGap {
    /// The first number dropped.
    pub first_seq: u64,
    /// The last number dropped.
    pub last_seq: u64,
    /// `queue_full`, `too_old` or `disk_full`.
    pub reason: String,
}

/// Most problems listed individually in a [`VerifyReport`].
pub const MAX_PROBLEMS: usize = 100;

const BUNDLES: &str = "bundles.jsonl";
const MANIFEST: &str = "MANIFEST";
const PUBKEY: &str = "appliance.pub";
const README: &str = "README.md";
const AUDITOR_DIR: &str = "auditor";
const MANIFEST_HTML: &str = "auditor/manifest.html";
const KIT_HEADER: &str = "osiris-kit/v1";

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

fn checkpoint_path(size: u64) -> String {
    format!("checkpoints/{size:012}.txt")
}

fn proof_path(old: u64, new: u64) -> String {
    format!("proofs/consistency-{old:012}-{new:012}.txt")
}

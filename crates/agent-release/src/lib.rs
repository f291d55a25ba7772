//! Signed endpoint-agent releases (issue 17, point 6; docs/AGENT-UPDATES.md).
//!
//! Three parts, from pure to IO:
//! - the trust model (pure, synchronous, no IO): a versioned *root* document names the release
//!   keys and the root keys with their thresholds; root N+1 is signed by a threshold of root N's
//!   keys and of its own, so an agent walks from the root it pins to the current one by itself
//!   (`TrustedRoot::walk`); a per-platform release *manifest* is signed by the current root's
//!   release keys (`verify_offer`); the vendor's side signs both (`vendor`);
//! - the appliance's release store (`store`, a directory, Unix only): verified releases, the
//!   root chain it relays to agents, staged rollout, the offer for one agent;
//! - the agent's swap (`swap`): the verified binary written beside the running executable,
//!   swapped atomically, a pending-update marker with a deadline, confirmation after the first
//!   acknowledged connection, and rollback after the deadline or a crash loop.
//!
//! Documents travel as a small JSON envelope whose payload is carried as base64, so the signed
//! bytes are exactly the bytes verified; signatures cover a domain-separated, length-prefixed
//! encoding of the payload type and payload (`signing_bytes`), never re-serialised JSON.

mod document;
mod error;
mod fsx;
mod key;
mod manifest;
mod root;
#[cfg(unix)]
pub mod store;
pub mod swap;
pub mod vendor;
mod version;

pub use document::{MANIFEST_TYPE, ROOT_TYPE, SIGNING_DOMAIN, signing_bytes};
pub use error::VerifyError;
pub use fsx::{BinaryMismatch, IoError};
pub use key::{KeyError, PublicKey, SecretKey};
pub use manifest::{UnverifiedManifest, VerifiedRelease, read_unverified, verify_offer};
pub use root::TrustedRoot;
pub use version::{Platform, Version};

/// Bounds on what the verifier reads; anything larger is refused before it is parsed.
pub mod limits {
    /// One document (a root or a manifest envelope), the `UpdateOffer.manifest` limit.
    pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
    /// Roots walked in one call (the vendor rotates rarely; TUF's reference client allows 32).
    pub const MAX_ROOT_CHAIN: usize = 32;
    /// Keys per role (root keys, release keys).
    pub const MAX_KEYS_PER_ROLE: usize = 16;
    /// Signatures on one document.
    pub const MAX_SIGNATURES: usize = 32;
    /// A key's name: 1 to this many ASCII letters, digits, `.`, `_` or `-`.
    pub const MAX_KEY_NAME_BYTES: usize = 64;
    /// A release's file name: 1 to this many ASCII letters, digits, `.`, `_` or `-`.
    pub const MAX_FILE_NAME_BYTES: usize = 64;
    /// A release binary (the agent is at most 3 MB; this leaves room and bounds a download).
    pub const MAX_BINARY_BYTES: u64 = 64 * 1024 * 1024;
}

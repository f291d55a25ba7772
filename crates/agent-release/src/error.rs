//! Why a root chain or a release manifest was refused.

use crate::version::{Platform, Version};

/// Why a root, a root chain or a release manifest was refused; every message names the document
/// and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The input is larger than its limit (checked before parsing).
    #[error("{what} is {size} bytes or more, over the limit of {limit}; refusing to parse it")]
    TooLarge {
        /// Which document.
        what: String,
        /// Its size (or the size at which reading stopped).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The envelope or payload is not what the format says.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A root was offered where a manifest belongs, or the other way round.
    #[error("{what} has payload type `{got}`, expected `{expected}`")]
    WrongType {
        /// Which document.
        what: String,
        /// The envelope's payload type.
        got: String,
        /// The type expected here.
        expected: &'static str,
    },
    /// A signature by a key the signer role lists does not verify, and the threshold is not met:
    /// the document was altered or the signature forged.
    #[error(
        "{what}: the signature by `{key}` does not verify under {role} (altered or forged); {valid} valid of {threshold} required"
    )]
    BadSignature {
        /// Which document.
        what: String,
        /// The key whose signature failed.
        key: String,
        /// Which role's keys were asked, e.g. `the release keys of root 3`.
        role: String,
        /// Valid signatures by distinct keys of the role.
        valid: usize,
        /// Required.
        threshold: usize,
    },
    /// The document is signed only by keys the role does not list (for a manifest: a release key
    /// the current root does not name, e.g. one rotated out), and the threshold is not met.
    #[error(
        "{what} has {valid} valid signatures of the {threshold} required by {role}; it is also signed by {keys:?}, which are not among {role}"
    )]
    UnknownKey {
        /// Which document.
        what: String,
        /// The names of the signing keys the role does not list.
        keys: Vec<String>,
        /// Which role's keys were asked.
        role: String,
        /// Valid signatures by distinct keys of the role.
        valid: usize,
        /// Required.
        threshold: usize,
    },
    /// Too few valid signatures by distinct keys of the role.
    #[error("{what} has {valid} valid signatures by {role}, {threshold} required")]
    ThresholdNotMet {
        /// Which document.
        what: String,
        /// Which role's keys were asked.
        role: String,
        /// Valid signatures by distinct keys of the role.
        valid: usize,
        /// Required.
        threshold: usize,
    },
    /// The next root in the chain is not the trusted version plus one (a skipped version).
    #[error(
        "root chain skips from version {trusted} to {got}: root {expected} is missing; every root must be walked in turn"
    )]
    RootSkipped {
        /// The version trusted so far.
        trusted: u64,
        /// The version expected next.
        expected: u64,
        /// The next version offered.
        got: u64,
    },
    /// Two different roots claim the same version (a vendor mistake or a compromised root key).
    #[error("two different roots claim version {version}; refusing the chain")]
    RootConflict {
        /// The version.
        version: u64,
    },
    /// More roots than one walk reads.
    #[error("{count} roots offered, over the limit of {limit} per walk")]
    TooManyRoots {
        /// Roots offered.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The newest root has expired: the vendor must publish a new root (signed as any rotation);
    /// agents reach it by themselves once the appliance relays it.
    #[error(
        "root {version} expired at unix time {expires_unix} (now {now_unix}); the vendor must publish a new root, or this machine's clock is wrong"
    )]
    RootExpired {
        /// The root's version.
        version: u64,
        /// Its expiry, Unix seconds.
        expires_unix: u64,
        /// The time it was checked at, Unix seconds.
        now_unix: u64,
    },
    /// The manifest is for another platform than the agent's.
    #[error("release is for {offered}, but this agent runs on {running}")]
    WrongPlatform {
        /// The manifest's platform.
        offered: Platform,
        /// The agent's.
        running: Platform,
    },
    /// The manifest's version is not newer than the running (or stored) one.
    #[error(
        "release {offered} is not newer than {running}; downgrades and re-installs are refused"
    )]
    NotNewer {
        /// The manifest's version.
        offered: Version,
        /// The running (or newest stored) version.
        running: Version,
    },
}

//! The root: which keys may sign releases, which keys may sign the next root, how many of each
//! must sign, and until when it may be used. Walking a chain of roots (TUF's root update,
//! specification §5.3) moves an agent from the root it pins to the vendor's current one.
//!
//! Payload (JSON, unknown fields refused):
//!
//! ```json
//! {"version": 2, "expires_unix": 1893456000,
//!  "root_keys": ["osiris-agent-root-a:<base64>", "…"], "root_threshold": 2,
//!  "release_keys": ["osiris-agent-release-2:<base64>"], "release_threshold": 1}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::{self, ROOT_TYPE};
use crate::error::VerifyError;
use crate::key::PublicKey;
use crate::limits::{MAX_KEYS_PER_ROLE, MAX_ROOT_CHAIN};

/// A root this program trusts: built in, stored after a walk, or reached by walking.
///
/// It can only be made by [`TrustedRoot::pin`] (for bytes the caller already trusts) or by
/// [`TrustedRoot::walk`], so holding one means its signatures were checked.
#[derive(Clone)]
pub struct TrustedRoot {
    bytes: Vec<u8>,
    root: Root,
}

/// A root's payload, parsed and checked for shape (not for signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Root {
    pub(crate) version: u64,
    pub(crate) expires_unix: u64,
    pub(crate) root_keys: Vec<PublicKey>,
    pub(crate) root_threshold: usize,
    pub(crate) release_keys: Vec<PublicKey>,
    pub(crate) release_threshold: usize,
}

/// The payload as it is written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RootPayload {
    pub(crate) version: u64,
    pub(crate) expires_unix: u64,
    pub(crate) root_keys: Vec<String>,
    pub(crate) root_threshold: u32,
    pub(crate) release_keys: Vec<String>,
    pub(crate) release_threshold: u32,
}

impl TrustedRoot {
    /// Trusts a root whose bytes the caller already trusts: the root built into the agent (or
    /// configured on the appliance), or one this program stored after a walk.
    ///
    /// It must still be well formed and signed by a threshold of its own root keys, so a damaged
    /// file or a wrong build input is refused rather than trusted.
    pub fn pin(bytes: &[u8]) -> Result<TrustedRoot, VerifyError> {
        let what = "pinned root";
        let opened = document::open(bytes, ROOT_TYPE, what)?;
        let root = Root::parse(&opened.payload, what)?;
        let what = format!("root {}", root.version);
        opened.check_threshold(
            &what,
            "its own root keys",
            &root.root_keys,
            root.root_threshold,
        )?;
        Ok(TrustedRoot {
            bytes: bytes.to_vec(),
            root,
        })
    }

    /// Walks from this root through `newer` (in any order; roots at or below this version are
    /// skipped, so an appliance may relay its whole chain) and returns the newest root reached.
    ///
    /// Root N+1 must be signed by a threshold of root N's root keys *and* of its own; a missing
    /// version, two different roots of one version, or a failed signature stops the walk with an
    /// error (nothing newer is trusted). Expiry is not checked here: as in TUF, an expired root
    /// can still lead to its successor; check the result with [`TrustedRoot::check_fresh`].
    pub fn walk<B: AsRef<[u8]>>(&self, newer: &[B]) -> Result<TrustedRoot, VerifyError> {
        Ok(self
            .walk_chain(newer)?
            .pop()
            .unwrap_or_else(|| self.clone()))
    }

    /// Like [`TrustedRoot::walk`], returning every root passed, oldest first (empty when nothing
    /// newer was offered).
    pub(crate) fn walk_chain<B: AsRef<[u8]>>(
        &self,
        newer: &[B],
    ) -> Result<Vec<TrustedRoot>, VerifyError> {
        if newer.len() > MAX_ROOT_CHAIN {
            return Err(VerifyError::TooManyRoots {
                count: newer.len(),
                limit: MAX_ROOT_CHAIN,
            });
        }
        let mut by_version: BTreeMap<u64, (&[u8], document::Opened, Root)> = BTreeMap::new();
        for (idx, bytes) in newer.iter().enumerate() {
            let bytes = bytes.as_ref();
            let what = format!("root #{} of the chain offered", idx + 1);
            let opened = document::open(bytes, ROOT_TYPE, &what)?;
            let root = Root::parse(&opened.payload, &what)?;
            if root.version <= self.root.version {
                if root.version == self.root.version && root != self.root {
                    return Err(VerifyError::RootConflict {
                        version: root.version,
                    });
                }
                continue;
            }
            match by_version.get(&root.version) {
                Some((_, _, seen)) if *seen != root => {
                    return Err(VerifyError::RootConflict {
                        version: root.version,
                    });
                }
                Some(_) => {}
                None => {
                    by_version.insert(root.version, (bytes, opened, root));
                }
            }
        }
        let mut chain: Vec<TrustedRoot> = Vec::with_capacity(by_version.len());
        for (version, (bytes, opened, root)) in by_version {
            let current = chain.last().unwrap_or(self);
            let trusted = current.root.version;
            let expected = trusted.saturating_add(1);
            if version != expected {
                return Err(VerifyError::RootSkipped {
                    trusted,
                    expected,
                    got: version,
                });
            }
            let what = format!("root {version}");
            opened.check_threshold(
                &what,
                &format!("the root keys of root {trusted}"),
                &current.root.root_keys,
                current.root.root_threshold,
            )?;
            opened.check_threshold(
                &what,
                "its own root keys",
                &root.root_keys,
                root.root_threshold,
            )?;
            chain.push(TrustedRoot {
                bytes: bytes.to_vec(),
                root,
            });
        }
        Ok(chain)
    }

    /// Refuses an expired root (`expires_unix` at or before `now_unix`).
    pub fn check_fresh(&self, now_unix: u64) -> Result<(), VerifyError> {
        if now_unix >= self.root.expires_unix {
            return Err(VerifyError::RootExpired {
                version: self.root.version,
                expires_unix: self.root.expires_unix,
                now_unix,
            });
        }
        Ok(())
    }

    /// The root's version.
    pub fn version(&self) -> u64 {
        self.root.version
    }

    /// When it expires, Unix seconds.
    pub fn expires_unix(&self) -> u64 {
        self.root.expires_unix
    }

    /// The keys that may sign releases under this root.
    pub fn release_keys(&self) -> &[PublicKey] {
        &self.root.release_keys
    }

    /// How many release keys must sign a manifest.
    pub fn release_threshold(&self) -> usize {
        self.root.release_threshold
    }

    /// The keys that must sign the next root (with its own).
    pub fn root_keys(&self) -> &[PublicKey] {
        &self.root.root_keys
    }

    /// How many root keys must sign the next root.
    pub fn root_threshold(&self) -> usize {
        self.root.root_threshold
    }

    /// The signed root, verbatim (to store, or to relay to agents).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedRoot")
            .field("version", &self.root.version)
            .field("expires_unix", &self.root.expires_unix)
            .field("root_keys", &self.root.root_keys)
            .field("root_threshold", &self.root.root_threshold)
            .field("release_keys", &self.root.release_keys)
            .field("release_threshold", &self.root.release_threshold)
            .finish_non_exhaustive()
    }
}

impl Root {
    /// Parses and checks a root payload.
    pub(crate) fn parse(payload: &[u8], what: &str) -> Result<Root, VerifyError> {
        let malformed = |reason: String| VerifyError::Malformed {
            what: what.to_owned(),
            reason,
        };
        let raw: RootPayload = serde_json::from_slice(payload)
            .map_err(|err| malformed(format!("not a root payload: {err}")))?;
        Root::from_raw(&raw).map_err(malformed)
    }

    /// Checks the written form: version at least 1, 1–16 distinct keys per role, thresholds
    /// between 1 and the number of keys.
    pub(crate) fn from_raw(raw: &RootPayload) -> Result<Root, String> {
        if raw.version == 0 || raw.version == u64::MAX {
            return Err(format!(
                "version {} is out of range (1 or more)",
                raw.version
            ));
        }
        if raw.expires_unix == 0 {
            return Err("expires_unix is 0: every root expires".to_owned());
        }
        let root_keys = role_keys("root_keys", &raw.root_keys)?;
        let release_keys = role_keys("release_keys", &raw.release_keys)?;
        let root_threshold = threshold("root_threshold", raw.root_threshold, root_keys.len())?;
        let release_threshold = threshold(
            "release_threshold",
            raw.release_threshold,
            release_keys.len(),
        )?;
        Ok(Root {
            version: raw.version,
            expires_unix: raw.expires_unix,
            root_keys,
            root_threshold,
            release_keys,
            release_threshold,
        })
    }
}

fn role_keys(field: &str, keys: &[String]) -> Result<Vec<PublicKey>, String> {
    if keys.is_empty() || keys.len() > MAX_KEYS_PER_ROLE {
        return Err(format!(
            "{field} lists {} keys; 1 to {MAX_KEYS_PER_ROLE} are allowed",
            keys.len()
        ));
    }
    let mut parsed: Vec<PublicKey> = Vec::with_capacity(keys.len());
    for text in keys {
        let key = PublicKey::parse(text).map_err(|err| format!("{field}: {err}"))?;
        // Distinct names and distinct keys, so a threshold counts distinct keys.
        if parsed
            .iter()
            .any(|other| other.name() == key.name() || other.bytes() == key.bytes())
        {
            return Err(format!(
                "{field} lists key `{}` (or its public key) twice",
                key.name()
            ));
        }
        parsed.push(key);
    }
    Ok(parsed)
}

fn threshold(field: &str, value: u32, n_keys: usize) -> Result<usize, String> {
    let value = value as usize;
    if value == 0 || value > n_keys {
        return Err(format!(
            "{field} is {value}; it must be between 1 and the {n_keys} keys listed"
        ));
    }
    Ok(value)
}

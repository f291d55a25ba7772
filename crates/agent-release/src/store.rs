//! The appliance's store of agent releases: a directory, no SQL.
//!
//! ```text
//! <dir>/roots/<version>.json                         every root the store relays to agents
//! <dir>/releases/<platform>/<version>/manifest.json  the vendor-signed manifest, verbatim
//! <dir>/releases/<platform>/<version>/<file_name>    the binary (size and SHA-256 checked)
//! <dir>/rollout.json                                 which releases exist and their rollout
//! <dir>/.lock                                        held while changing the store
//! ```
//!
//! A release exists once `rollout.json` names it (written last, through `durable`), so a crash
//! half-way through `add` leaves files nobody offers, replaced by the next `add`. Every manifest
//! is verified against the current root when added and again when the store is opened or its
//! roots change: one signed by a rotated-out release key is listed with the reason and never
//! offered. Offers are served from memory: `offer_for` does no IO.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::VerifyError;
use crate::fsx::{self, BinaryMismatch, CopyError, IoError};
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_ROOT_CHAIN};
use crate::manifest::hex;
use crate::root::TrustedRoot;
use crate::version::{Platform, Version};

/// The prefix of every `download_path` the store hands out.
pub const DOWNLOAD_PREFIX: &str = "/agent-releases/";

/// The release store on one directory (see the module docs for the layout).
#[derive(Debug)]
pub struct ReleaseStore {
    dir: PathBuf,
    configured: TrustedRoot,
    current: TrustedRoot,
    roots: Vec<Vec<u8>>,
    releases: Vec<Release>,
}

/// What the gateway sends an agent: the fields of `UpdateOffer`, borrowed from the store.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// The release's platform (the agent's).
    pub platform: Platform,
    /// The release's version.
    pub version: Version,
    /// The signed manifest, verbatim.
    pub manifest: &'a [u8],
    /// The roots to relay, oldest first (the agent skips those it already trusts).
    pub roots: &'a [Vec<u8>],
    /// Where the gateway serves the binary (resolve it with [`ReleaseStore::binary_for_download`]).
    pub download_path: &'a str,
    /// The binary's size in bytes.
    pub size: u64,
}

/// One stored release, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// Its platform.
    pub platform: Platform,
    /// Its version.
    pub version: Version,
    /// The binary's file name.
    pub file_name: String,
    /// The binary's size.
    pub size: u64,
    /// The binary's SHA-256, lowercase hex.
    pub sha256: String,
    /// The share of agents offered it, 0–100.
    pub rollout_percent: u8,
    /// When it was added, Unix seconds.
    pub added_unix: u64,
    /// Why it is not offered, if it is not (e.g. its key was rotated out).
    pub problem: Option<String>,
}

/// Why the store refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A manifest or root did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The binary does not match the manifest.
    #[error(transparent)]
    Mismatch(#[from] BinaryMismatch),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A release not newer than the newest stored one for its platform (a downgrade or a replay).
    #[error(
        "release {platform} {offered} is not newer than {newest}, already in the store; downgrades and replays are refused"
    )]
    NotNewer {
        /// Its platform.
        platform: Platform,
        /// The version offered.
        offered: Version,
        /// The newest stored version for the platform.
        newest: Version,
    },
    /// No such release.
    #[error("no release {platform} {version} in the store")]
    UnknownRelease {
        /// The platform asked for.
        platform: Platform,
        /// The version asked for.
        version: Version,
    },
    /// A rollout share above 100.
    #[error("rollout percentage {0} is out of range (0 to 100)")]
    Percent(u8),
    /// A root older than the store's chain that does not lead to it.
    #[error("root {version} does not lead to the store's root chain: {reason}")]
    OlderRoot {
        /// Its version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// A file of the store is damaged.
    #[error("{} is damaged: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Release {
    platform: Platform,
    version: Version,
    file_name: String,
    size: u64,
    sha256: [u8; 32],
    manifest: Vec<u8>,
    rollout_percent: u8,
    added_unix: u64,
    download_path: String,
    problem: Option<String>,
}

/// `rollout.json`: every release by `platform/version`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutFile {
    releases: BTreeMap<String, RolloutEntry>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutEntry {
    percent: u8,
    added_unix: u64,
}

impl ReleaseStore {
    /// Opens (creating) the store in `dir` with `configured_root`, the agent root the appliance
    /// is configured with (the vendor's); manifests are judged at `now_unix`.
    pub fn open(
        dir: &Path,
        configured_root: TrustedRoot,
        now_unix: u64,
    ) -> Result<ReleaseStore, StoreError> {
        fsx::create_dirs(&dir.join("roots"))?;
        fsx::create_dirs(&dir.join("releases"))?;
        let mut store = ReleaseStore {
            dir: dir.to_path_buf(),
            current: configured_root.clone(),
            configured: configured_root,
            roots: Vec::new(),
            releases: Vec::new(),
        };
        store.reload(now_unix)?;
        Ok(store)
    }

    /// Re-reads the directory (after another process changed it).
    pub fn reload(&mut self, now_unix: u64) -> Result<(), StoreError> {
        let stored = self.read_roots()?;
        // The configured root, the chain above it, and relayed roots below it.
        let chain = self.configured.walk_chain(&stored)?;
        let current = chain.last().unwrap_or(&self.configured).clone();
        let mut roots: Vec<Vec<u8>> = stored
            .iter()
            .filter(|bytes| {
                TrustedRoot::pin(bytes)
                    .map(|root| root.version() < self.configured.version())
                    .unwrap_or(false)
            })
            .cloned()
            .collect();
        roots.sort_by_key(|bytes| {
            TrustedRoot::pin(bytes)
                .map(|root| root.version())
                .unwrap_or(0)
        });
        roots.push(self.configured.bytes().to_vec());
        roots.extend(chain.iter().map(|root| root.bytes().to_vec()));
        let keep_from = roots.len().saturating_sub(MAX_ROOT_CHAIN);
        self.roots = roots.split_off(keep_from);
        self.current = current;
        self.releases = self.read_releases(now_unix)?;
        Ok(())
    }

    /// Adds roots the vendor published: newer ones must walk from the current root; older ones
    /// (for agents built with an older root) must lead to the store's chain. Returns the current
    /// root's version.
    pub fn add_roots<B: AsRef<[u8]>>(
        &mut self,
        roots: &[B],
        now_unix: u64,
    ) -> Result<u64, StoreError> {
        let _lock = self.lock()?;
        self.reload(now_unix)?;
        let lowest = self
            .roots
            .first()
            .and_then(|bytes| TrustedRoot::pin(bytes).ok())
            .map_or(self.configured.version(), |root| root.version());
        let mut older: Vec<TrustedRoot> = Vec::new();
        for bytes in roots {
            if let Ok(root) = TrustedRoot::pin(bytes.as_ref())
                && root.version() < lowest
            {
                older.push(root);
            }
        }
        older.sort_by_key(TrustedRoot::version);
        if let Some(first) = older.first() {
            let mut rest: Vec<&[u8]> = older[1..].iter().map(TrustedRoot::bytes).collect();
            rest.extend(self.roots.iter().map(Vec::as_slice));
            let reached = first.walk(&rest).map_err(|err| StoreError::OlderRoot {
                version: first.version(),
                reason: err.to_string(),
            })?;
            if reached.version() != self.current.version()
                || reached.bytes() != self.current.bytes()
            {
                return Err(StoreError::OlderRoot {
                    version: first.version(),
                    reason: format!(
                        "its chain ends at root {}, not at the store's root {}",
                        reached.version(),
                        self.current.version()
                    ),
                });
            }
        }
        let newer = self.current.walk_chain(roots)?;
        for root in older.iter().chain(newer.iter()) {
            let path = self
                .dir
                .join("roots")
                .join(format!("{}.json", root.version()));
            fsx::write(&path, root.bytes(), 0o644)?;
        }
        self.reload(now_unix)?;
        Ok(self.current.version())
    }

    /// Adds a release: verifies `manifest` against the current root at `now_unix`, refuses a
    /// version not above the newest stored for its platform, copies the binary at `binary` in
    /// (checking its size and SHA-256 on the bytes kept) and offers it to `rollout_percent` % of
    /// agents.
    pub fn add(
        &mut self,
        manifest: &[u8],
        binary: &Path,
        rollout_percent: u8,
        now_unix: u64,
    ) -> Result<ReleaseInfo, StoreError> {
        if rollout_percent > 100 {
            return Err(StoreError::Percent(rollout_percent));
        }
        let _lock = self.lock()?;
        self.reload(now_unix)?;
        let release = self.current.verify_manifest(manifest, now_unix)?;
        let platform = release.platform();
        if let Some(newest) = self
            .releases
            .iter()
            .filter(|stored| stored.platform == platform)
            .map(|stored| stored.version)
            .max()
            && newest >= release.version()
        {
            return Err(StoreError::NotNewer {
                platform,
                offered: release.version(),
                newest,
            });
        }
        let dir = self.release_dir(platform, release.version());
        fsx::create_dirs(&dir)?;
        let binary_dest = dir.join(release.file_name());
        fsx::copy_verified(
            binary,
            &binary_dest,
            0o644,
            release.size(),
            release.sha256(),
        )
        .map_err(|err| match err {
            CopyError::Io(err) => StoreError::Io(err),
            CopyError::Mismatch(err) => StoreError::Mismatch(err),
        })?;
        fsx::write(&dir.join("manifest.json"), manifest, 0o644)?;
        let mut rollout = self.read_rollout()?;
        rollout.releases.insert(
            key(platform, release.version()),
            RolloutEntry {
                percent: rollout_percent,
                added_unix: now_unix,
            },
        );
        self.write_rollout(&rollout)?;
        self.reload(now_unix)?;
        self.info(platform, release.version())
            .ok_or(StoreError::UnknownRelease {
                platform,
                version: release.version(),
            })
    }

    /// Changes the share of agents offered a release (0 pauses it).
    pub fn set_rollout(
        &mut self,
        platform: Platform,
        version: Version,
        percent: u8,
        now_unix: u64,
    ) -> Result<(), StoreError> {
        if percent > 100 {
            return Err(StoreError::Percent(percent));
        }
        let _lock = self.lock()?;
        self.reload(now_unix)?;
        let mut rollout = self.read_rollout()?;
        let entry = rollout
            .releases
            .get_mut(&key(platform, version))
            .ok_or(StoreError::UnknownRelease { platform, version })?;
        entry.percent = percent;
        self.write_rollout(&rollout)?;
        self.reload(now_unix)
    }

    /// Every release, by platform then version.
    pub fn list(&self) -> Vec<ReleaseInfo> {
        self.releases.iter().map(Release::info).collect()
    }

    /// The release to offer an agent that runs `running` on `platform`: the newest release above
    /// `running` whose rollout includes this agent (see [`rollout_bucket`]), if any.
    pub fn offer_for(
        &self,
        agent_id: &str,
        platform: Platform,
        running: Version,
    ) -> Option<Offer<'_>> {
        self.releases
            .iter()
            .rev()
            .filter(|release| {
                release.platform == platform
                    && release.version > running
                    && release.problem.is_none()
            })
            .find(|release| rollout_bucket(agent_id, release.version) < release.rollout_percent)
            .map(|release| Offer {
                platform,
                version: release.version,
                manifest: &release.manifest,
                roots: &self.roots,
                download_path: &release.download_path,
                size: release.size,
            })
    }

    /// The file behind a `download_path` this store hands out, or `None` for any other path
    /// (and for a release no longer offered because it does not verify under the current root).
    pub fn binary_for_download(&self, download_path: &str) -> Option<PathBuf> {
        self.releases
            .iter()
            .find(|release| release.problem.is_none() && release.download_path == download_path)
            .map(|release| {
                self.release_dir(release.platform, release.version)
                    .join(&release.file_name)
            })
    }

    /// The roots relayed to agents, oldest first (at most `MAX_ROOT_CHAIN`).
    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// The newest root the store trusts.
    pub fn current_root(&self) -> &TrustedRoot {
        &self.current
    }

    fn info(&self, platform: Platform, version: Version) -> Option<ReleaseInfo> {
        self.releases
            .iter()
            .find(|release| release.platform == platform && release.version == version)
            .map(Release::info)
    }

    fn release_dir(&self, platform: Platform, version: Version) -> PathBuf {
        self.dir
            .join("releases")
            .join(platform.as_str())
            .join(version.to_string())
    }

    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(fsx::step("opening", &path))?;
        file.lock().map_err(fsx::step("locking", &path))?;
        Ok(file)
    }

    fn read_roots(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let dir = self.dir.join("roots");
        let mut roots = Vec::new();
        for entry in fs::read_dir(&dir).map_err(fsx::step("listing", &dir))? {
            let entry = entry.map_err(fsx::step("listing", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let path = entry.path();
            if let Some(bytes) = fsx::read_small(&path, MAX_DOCUMENT_BYTES as u64)? {
                roots.push(bytes);
            }
        }
        Ok(roots)
    }

    fn read_rollout(&self) -> Result<RolloutFile, StoreError> {
        let path = self.dir.join("rollout.json");
        match fsx::read_small(&path, 16 * 1024 * 1024)? {
            None => Ok(RolloutFile::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| StoreError::Damaged {
                path,
                reason: err.to_string(),
            }),
        }
    }

    fn write_rollout(&self, rollout: &RolloutFile) -> Result<(), StoreError> {
        // Serialising maps of strings and numbers cannot fail.
        let mut bytes = serde_json::to_vec_pretty(rollout).unwrap_or_default();
        bytes.push(b'\n');
        fsx::write(&self.dir.join("rollout.json"), &bytes, 0o644)?;
        Ok(())
    }

    fn read_releases(&self, now_unix: u64) -> Result<Vec<Release>, StoreError> {
        let rollout = self.read_rollout()?;
        let rollout_path = self.dir.join("rollout.json");
        let mut releases = Vec::with_capacity(rollout.releases.len());
        for (name, entry) in &rollout.releases {
            let damaged = |reason: String| StoreError::Damaged {
                path: rollout_path.clone(),
                reason,
            };
            let (platform, version) = name
                .split_once('/')
                .and_then(|(platform, version)| {
                    Some((platform.parse().ok()?, version.parse().ok()?))
                })
                .ok_or_else(|| damaged(format!("`{name}` is not PLATFORM/VERSION")))?;
            let manifest_path = self.release_dir(platform, version).join("manifest.json");
            let manifest = fsx::read_small(&manifest_path, MAX_DOCUMENT_BYTES as u64)?
                .ok_or_else(|| damaged(format!("{} is missing", manifest_path.display())))?;
            let mut release = Release {
                platform,
                version,
                file_name: String::new(),
                size: 0,
                sha256: [0; 32],
                manifest,
                rollout_percent: entry.percent.min(100),
                added_unix: entry.added_unix,
                download_path: String::new(),
                problem: None,
            };
            match self.current.verify_manifest(&release.manifest, now_unix) {
                Ok(verified)
                    if verified.platform() == platform && verified.version() == version =>
                {
                    release.file_name = verified.file_name().to_owned();
                    release.size = verified.size();
                    release.sha256 = *verified.sha256();
                    release.download_path = format!(
                        "{DOWNLOAD_PREFIX}{platform}/{version}/{}",
                        verified.file_name()
                    );
                }
                Ok(_) => {
                    release.problem =
                        Some("its manifest names another platform or version".to_owned());
                }
                Err(err) => release.problem = Some(err.to_string()),
            }
            releases.push(release);
        }
        releases.sort_by_key(|release| (release.platform, release.version));
        Ok(releases)
    }
}

impl Release {
    fn info(&self) -> ReleaseInfo {
        ReleaseInfo {
            platform: self.platform,
            version: self.version,
            file_name: self.file_name.clone(),
            size: self.size,
            sha256: hex(&self.sha256),
            rollout_percent: self.rollout_percent,
            added_unix: self.added_unix,
            problem: self.problem.clone(),
        }
    }
}

/// An agent's place in a release's rollout, 0–99: the first eight bytes of
/// SHA-256(`osiris-agent-rollout/v1\0` ‖ agent id ‖ `\0` ‖ version), big-endian, modulo 100.
/// The agent is offered the release when this is below the rollout percentage, so raising the
/// percentage only adds agents, and each release draws its own cohort.
pub fn rollout_bucket(agent_id: &str, version: Version) -> u8 {
    let mut hasher = Sha256::new();
    hasher.update(b"osiris-agent-rollout/v1\0");
    hasher.update(agent_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(version.to_string().as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // The remainder is below 100, so it fits.
    (u64::from_be_bytes(first) % 100) as u8
}

fn key(platform: Platform, version: Version) -> String {
    format!("{platform}/{version}")
}

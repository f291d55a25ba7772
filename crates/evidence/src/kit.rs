//! The auditor kit: exporting a self-contained, signed directory of the log and verifying one offline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use evidence_schema::BUNDLE_SCHEMA_V1;
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::jcs;
use crate::keys::{ApplianceKey, VerifierKey};
use crate::merkle::{self, MerkleTree};
use crate::note;

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
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The output directory exists and is not empty.
    #[error("{0} already exists and is not empty: choose a new directory for the kit")]
    OutputExists(PathBuf),
    /// The source of bundle lines failed.
    #[error("reading bundles: {0}")]
    Source(String),
    /// A bundle line contains a newline, so it is not a JCS line.
    #[error(
        "bundle {0} contains a raw newline: the evidence store is damaged, run `osiris evidence verify`"
    )]
    LineHasNewline(u64),
    /// A supplied checkpoint does not verify under the key.
    #[error("checkpoint {index} does not verify: {source}")]
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
}

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// When set, `appliance.pub` must equal this key and everything is verified under it.
    pub pinned_key: Option<VerifierKey>,
    /// Bitcoin block headers by height, to check Bitcoin attestations offline.
    pub block_headers: BTreeMap<u64, ots::bitcoin::BlockHeader>,
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
}

/// Most problems listed individually in a [`VerifyReport`].
pub const MAX_PROBLEMS: usize = 100;

const BUNDLES: &str = "bundles.jsonl";
const MANIFEST: &str = "MANIFEST";
const PUBKEY: &str = "appliance.pub";
const README: &str = "README.md";
const KIT_HEADER: &str = "osiris-kit/v1";

/// Writes an auditor kit to `out` atomically (a temporary sibling directory renamed into place).
pub fn export(out: &Path, src: KitSource<'_>) -> Result<KitSummary, KitError> {
    if let Ok(mut entries) = fs::read_dir(out) {
        if entries.next().is_some() {
            return Err(KitError::OutputExists(out.to_owned()));
        }
    } else if out.exists() {
        return Err(KitError::OutputExists(out.to_owned()));
    }
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix[..]);
    let file_name = out
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kit".to_owned());
    let temp = out.with_file_name(format!("{file_name}.tmp-{}", hex::encode(suffix)));
    let result = write_kit(&temp, src).and_then(|summary| {
        fs::rename(&temp, out).map_err(io_error("renaming kit into place", out))?;
        if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(summary)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result
}

/// Verifies the kit in `dir` against everything docs/EVIDENCE-FORMAT.md lists; never stops at the first problem.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> VerifyReport {
    Verifier {
        dir,
        opts,
        report: VerifyReport::default(),
        dropped: 0,
    }
    .run()
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KitError {
    let path = path.to_owned();
    move |source| KitError::Io {
        action,
        path,
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), KitError> {
    fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// Writes `bytes` to `dir/relative`, fsyncs it and records it for the MANIFEST.
fn write_file(
    dir: &Path,
    relative: &str,
    bytes: &[u8],
    manifest: &mut BTreeMap<String, ([u8; 32], u64)>,
) -> Result<(), KitError> {
    let path = dir.join(relative);
    let mut file = fs::File::create(&path).map_err(io_error("creating", &path))?;
    file.write_all(bytes).map_err(io_error("writing", &path))?;
    file.sync_all().map_err(io_error("syncing", &path))?;
    manifest.insert(
        relative.to_owned(),
        (Sha256::digest(bytes).into(), bytes.len() as u64),
    );
    Ok(())
}

fn checkpoint_path(size: u64) -> String {
    format!("checkpoints/{size:012}.txt")
}

fn proof_path(old: u64, new: u64) -> String {
    format!("proofs/consistency-{old:012}-{new:012}.txt")
}

fn write_kit(dir: &Path, src: KitSource<'_>) -> Result<KitSummary, KitError> {
    let KitSource {
        key,
        lines,
        checkpoints,
        ots,
    } = src;
    for sub in ["", "checkpoints", "proofs"] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(io_error("creating directory", &path))?;
    }
    let mut manifest = BTreeMap::new();

    // Stream the bundles: only leaf hashes stay in memory.
    let bundles_path = dir.join(BUNDLES);
    let file = fs::File::create(&bundles_path).map_err(io_error("creating", &bundles_path))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut size_bytes = 0u64;
    let mut tree = MerkleTree::new();
    for line in lines {
        let line = line?;
        if line.contains(&b'\n') {
            return Err(KitError::LineHasNewline(tree.len()));
        }
        tree.push(merkle::leaf_hash(&line));
        writer
            .write_all(&line)
            .map_err(io_error("writing", &bundles_path))?;
        writer
            .write_all(b"\n")
            .map_err(io_error("writing", &bundles_path))?;
        hasher.update(&line);
        hasher.update(b"\n");
        size_bytes += line.len() as u64 + 1;
    }
    let file = writer.into_inner().map_err(|error| KitError::Io {
        action: "writing",
        path: bundles_path.clone(),
        source: error.into_error(),
    })?;
    file.sync_all()
        .map_err(io_error("syncing", &bundles_path))?;
    manifest.insert(BUNDLES.to_owned(), (hasher.finalize().into(), size_bytes));

    // Checkpoints: verify each against the key and the bundles; sign a final one if needed.
    let verifier = key.verifier();
    let mut by_size: BTreeMap<u64, (Checkpoint, String)> = BTreeMap::new();
    for (index, text) in checkpoints.into_iter().enumerate() {
        let checkpoint = Checkpoint::parse_and_verify(&text, &verifier)
            .map_err(|source| KitError::Checkpoint { index, source })?;
        match tree.root_at(checkpoint.size) {
            None => {
                return Err(KitError::CheckpointMismatch {
                    size: checkpoint.size,
                    reason: "larger than the log",
                });
            }
            Some(root) if root != checkpoint.root => {
                return Err(KitError::CheckpointMismatch {
                    size: checkpoint.size,
                    reason: "root differs",
                });
            }
            Some(_) => {}
        }
        by_size.entry(checkpoint.size).or_insert((checkpoint, text));
    }
    let signed_final_checkpoint = !by_size.contains_key(&tree.len());
    if signed_final_checkpoint {
        let checkpoint = Checkpoint {
            origin: key.origin().to_owned(),
            size: tree.len(),
            root: tree.root(),
        };
        let text = checkpoint.sign(key);
        by_size.insert(tree.len(), (checkpoint, text));
    }
    for (size, (_, text)) in &by_size {
        write_file(dir, &checkpoint_path(*size), text.as_bytes(), &mut manifest)?;
    }
    let sizes: Vec<u64> = by_size.keys().copied().collect();
    for pair in sizes.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        if old == 0 {
            continue;
        }
        let proof = tree.consistency_proof(old, new).unwrap_or_default();
        let text: String = proof
            .iter()
            .map(|hash| format!("{}\n", BASE64.encode(hash)))
            .collect();
        write_file(dir, &proof_path(old, new), text.as_bytes(), &mut manifest)?;
    }
    for (size, bytes) in ots {
        if !by_size.contains_key(&size) {
            return Err(KitError::OrphanOts(size));
        }
        write_file(
            dir,
            &format!("{}.ots", checkpoint_path(size)),
            &bytes,
            &mut manifest,
        )?;
    }
    write_file(
        dir,
        PUBKEY,
        format!("{verifier}\n").as_bytes(),
        &mut manifest,
    )?;

    let mut body = format!("{KIT_HEADER}\n{}\n", key.origin());
    for (path, (hash, size)) in &manifest {
        body.push_str(&format!("{} {size} {path}\n", hex::encode(hash)));
    }
    let mut unlisted = BTreeMap::new();
    write_file(
        dir,
        MANIFEST,
        note::sign(&body, key).as_bytes(),
        &mut unlisted,
    )?;
    write_file(
        dir,
        README,
        readme(key, tree.len(), sizes.len()).as_bytes(),
        &mut unlisted,
    )?;
    for sub in ["checkpoints", "proofs", ""] {
        sync_dir(&dir.join(sub))?;
    }
    Ok(KitSummary {
        bundles: tree.len(),
        checkpoints: sizes.len() as u64,
        root: tree.root(),
        signed_final_checkpoint,
    })
}

fn readme(key: &ApplianceKey, bundles: u64, checkpoints: usize) -> String {
    format!(
        "# OsirisCare evidence kit

This directory is a self-contained, signed copy of the compliance evidence log of appliance `{origin}`.
It holds {bundles} evidence bundles and {checkpoints} signed checkpoints.
Nothing in it requires trusting OsirisCare: every check below uses public algorithms and standard tools.
The format is described in full in docs/EVIDENCE-FORMAT.md of the OsirisCare source.

## Verify with the OsirisCare tool

    osiris evidence verify DIR

It prints every problem it finds and exits non-zero if there is any.
Compare the key it reports with the appliance key you recorded on site (`{verifier}`).

## Verify by hand

1. `appliance.pub` is the appliance's Ed25519 verifier key in the C2SP signed-note format (https://c2sp.org/signed-note).
2. `MANIFEST` is a signed note by that key listing the SHA-256 and size of every other file; check it with `sha256sum` and any signed-note verifier.
3. Each line of `bundles.jsonl` is one bundle in RFC 8785 canonical JSON.
   Its `sig` is an Ed25519 signature over the same object without `sig`; its `prev` is the SHA-256 of the previous line; its `seq` is its 0-based line index.
4. `checkpoints/<size>.txt` are signed checkpoints (https://c2sp.org/tlog-checkpoint): the RFC 9162 Merkle root of the first `<size>` bundles (leaf = SHA-256(0x00 ‖ line)).
5. `proofs/consistency-<old>-<new>.txt` are RFC 9162 consistency proofs between consecutive checkpoints, one base64 hash per line.
6. `checkpoints/<size>.txt.ots` are OpenTimestamps proofs of the checkpoint files; check them with the standard client:

       ots verify checkpoints/000000000042.txt.ots

   A Bitcoin attestation proves the checkpoint, and therefore every bundle it covers, existed at that block's time.

## Files

| path | content |
|---|---|
| README.md | this file (not signed) |
| MANIFEST | signed list of every other file |
| appliance.pub | appliance verifier key |
| bundles.jsonl | all evidence bundles, one per line |
| checkpoints/ | signed checkpoints and their OpenTimestamps proofs |
| proofs/ | consistency proofs between checkpoints |
",
        origin = key.origin(),
        verifier = key.verifier(),
    )
}

/// Lines per chunk handed to the worker threads.
const CHUNK_LINES: usize = 8192;

struct Verifier<'a> {
    dir: &'a Path,
    opts: &'a VerifyOptions,
    report: VerifyReport,
    dropped: u64,
}

/// What one worker found about one bundle line.
struct LineCheck {
    line_hash: [u8; 32],
    leaf_hash: [u8; 32],
    prev: Option<[u8; 32]>,
    problems: Vec<String>,
}

impl Verifier<'_> {
    fn problem(&mut self, path: &str, line: Option<u64>, message: impl Into<String>) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(Problem {
                path: path.to_owned(),
                line,
                message: message.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    fn run(mut self) -> VerifyReport {
        let key = self.load_key();
        self.report.key = key.clone();
        let manifest = key.as_ref().and_then(|key| self.load_manifest(key));
        let files = self.list_files();
        let mut computed = BTreeMap::new();
        let tree = self.check_bundles(key.as_ref(), files.contains(BUNDLES), &mut computed);
        self.report.root = Some(tree.root());
        self.check_checkpoints(key.as_ref(), &tree, &files);
        if let Some(manifest) = manifest {
            self.check_manifest_listing(&manifest, &files, &computed);
        }
        if self.dropped > 0 {
            let dropped = self.dropped;
            self.report.problems.push(Problem {
                path: String::new(),
                line: None,
                message: format!(
                    "and {dropped} more problems (only the first {MAX_PROBLEMS} are listed)"
                ),
            });
        }
        self.report
    }

    fn read(&mut self, relative: &str) -> Option<Vec<u8>> {
        match fs::read(self.dir.join(relative)) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.problem(
                    relative,
                    None,
                    "missing: a required file was deleted from the kit",
                );
                None
            }
            Err(error) => {
                self.problem(relative, None, format!("cannot be read: {error}"));
                None
            }
        }
    }

    fn load_key(&mut self) -> Option<VerifierKey> {
        let file_key = self.read(PUBKEY).and_then(|bytes| {
            let parsed = std::str::from_utf8(&bytes)
                .ok()
                .filter(|text| text.ends_with('\n') && text.matches('\n').count() == 1)
                .map(|text| text.parse::<VerifierKey>());
            match parsed {
                Some(Ok(key)) => Some(key),
                Some(Err(error)) => {
                    self.problem(
                        PUBKEY,
                        None,
                        format!("not a valid verifier key ({error}): the file was altered"),
                    );
                    None
                }
                None => {
                    self.problem(
                        PUBKEY,
                        None,
                        "not a single newline-terminated verifier key line: the file was altered",
                    );
                    None
                }
            }
        });
        if let Some(key) = &file_key {
            let expected = format!("osiris-appliance/{}", key.derived_appliance_id());
            if key.name() != expected {
                self.problem(
                    PUBKEY,
                    None,
                    format!(
                        "key name {} is not {expected}, the name derived from the key itself",
                        key.name()
                    ),
                );
            }
        }
        match (&self.opts.pinned_key, file_key) {
            (Some(pinned), Some(file_key)) => {
                if *pinned != file_key {
                    self.problem(
                        PUBKEY,
                        None,
                        format!("does not match the pinned key {pinned} (found {file_key}): this kit was signed by another appliance or its key was replaced"),
                    );
                }
                Some(pinned.clone())
            }
            (Some(pinned), None) => Some(pinned.clone()),
            (None, file_key) => file_key,
        }
    }

    fn load_manifest(&mut self, key: &VerifierKey) -> Option<BTreeMap<String, ([u8; 32], u64)>> {
        let bytes = self.read(MANIFEST)?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            self.problem(MANIFEST, None, "not UTF-8 text: the file was altered");
            return None;
        };
        let body = match note::open(text, key) {
            Ok(body) => body,
            Err(error) => {
                self.problem(
                    MANIFEST,
                    None,
                    format!("{error} (checked against appliance.pub)"),
                );
                return None;
            }
        };
        let mut lines = body.lines();
        if lines.next() != Some(KIT_HEADER) {
            self.problem(
                MANIFEST,
                Some(1),
                format!("first line is not {KIT_HEADER}: unknown kit format"),
            );
        }
        if lines.next() != Some(key.name()) {
            self.problem(
                MANIFEST,
                Some(2),
                format!(
                    "second line is not the origin {}: the MANIFEST belongs to another log",
                    key.name()
                ),
            );
        }
        let mut entries = BTreeMap::new();
        let mut last_path: Option<String> = None;
        for (line_idx, line) in (3u64..).zip(lines) {
            let mut fields = line.splitn(3, ' ');
            let (Some(hash), Some(size), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                self.problem(
                    MANIFEST,
                    Some(line_idx),
                    "expected `<sha256 hex> <size> <path>`",
                );
                continue;
            };
            let mut digest = [0u8; 32];
            let hash_ok = hash.len() == 64
                && !hash.bytes().any(|b| b.is_ascii_uppercase())
                && hex::decode_to_slice(hash, &mut digest).is_ok();
            let size = size.parse::<u64>().ok().filter(|_| hash_ok);
            let safe = !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..");
            match size {
                Some(size) if safe && path != MANIFEST && path != README => {
                    if last_path
                        .as_deref()
                        .is_some_and(|last| last.as_bytes() >= path.as_bytes())
                    {
                        self.problem(
                            MANIFEST,
                            Some(line_idx),
                            format!("{path} is out of byte order or listed twice"),
                        );
                    }
                    last_path = Some(path.to_owned());
                    entries.insert(path.to_owned(), (digest, size));
                }
                _ => self.problem(
                    MANIFEST,
                    Some(line_idx),
                    format!("malformed entry for {path:?}"),
                ),
            }
        }
        Some(entries)
    }

    fn list_files(&mut self) -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        let mut pending = vec![String::new()];
        while let Some(relative) = pending.pop() {
            let path = if relative.is_empty() {
                self.dir.to_owned()
            } else {
                self.dir.join(&relative)
            };
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(error) => {
                    let shown = if relative.is_empty() {
                        ".".to_owned()
                    } else {
                        relative.clone()
                    };
                    self.problem(&shown, None, format!("cannot list directory: {error}"));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = if relative.is_empty() {
                    name
                } else {
                    format!("{relative}/{name}")
                };
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => pending.push(child),
                    Ok(kind) if kind.is_file() => {
                        files.insert(child);
                    }
                    _ => self.problem(
                        &child,
                        None,
                        "not a regular file (symbolic link or special file): remove it",
                    ),
                }
            }
        }
        files
    }

    fn check_manifest_listing(
        &mut self,
        manifest: &BTreeMap<String, ([u8; 32], u64)>,
        files: &BTreeSet<String>,
        computed: &BTreeMap<String, ([u8; 32], u64)>,
    ) {
        for path in files {
            if path == MANIFEST || path == README {
                continue;
            }
            let Some((expected_hash, expected_size)) = manifest.get(path) else {
                self.problem(
                    path,
                    None,
                    "not listed in MANIFEST: a file was added to the kit after it was signed",
                );
                continue;
            };
            let actual = match computed.get(path) {
                Some(actual) => Some(*actual),
                None => fs::read(self.dir.join(path))
                    .ok()
                    .map(|bytes| (Sha256::digest(&bytes).into(), bytes.len() as u64)),
            };
            match actual {
                Some((hash, size)) if hash == *expected_hash && size == *expected_size => {}
                Some((_, size)) => self.problem(
                    path,
                    None,
                    format!("SHA-256 or size ({size} bytes, MANIFEST says {expected_size}) does not match MANIFEST: the file was altered"),
                ),
                None => self.problem(path, None, "cannot be read to compare with MANIFEST"),
            }
        }
        for path in manifest.keys() {
            if !files.contains(path) {
                self.problem(
                    path,
                    None,
                    "listed in MANIFEST but missing: a file was deleted from the kit",
                );
            }
        }
    }

    fn check_bundles(
        &mut self,
        key: Option<&VerifierKey>,
        present: bool,
        computed: &mut BTreeMap<String, ([u8; 32], u64)>,
    ) -> MerkleTree {
        let mut tree = MerkleTree::new();
        if !present {
            self.problem(
                BUNDLES,
                None,
                "missing: the bundles were deleted from the kit",
            );
            return tree;
        }
        let path = self.dir.join(BUNDLES);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(error) => {
                self.problem(BUNDLES, None, format!("cannot be read: {error}"));
                return tree;
            }
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut file_hasher = Sha256::new();
        let mut file_size = 0u64;
        let mut prev_line_hash = [0u8; 32];
        let strict_key = key.map(|key| *key.ed25519()).filter(|key| !key.is_weak());
        let expected_fields = key.map(|key| (key.derived_appliance_id(), key.key_id_hex()));
        loop {
            let mut chunk: Vec<Vec<u8>> = Vec::with_capacity(CHUNK_LINES);
            let mut truncated = false;
            while chunk.len() < CHUNK_LINES {
                let mut line = Vec::with_capacity(1024);
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) => {
                        self.problem(BUNDLES, None, format!("read error: {error}"));
                        break;
                    }
                }
                file_hasher.update(&line);
                file_size += line.len() as u64;
                if line.last() == Some(&b'\n') {
                    line.pop();
                } else {
                    truncated = true;
                }
                chunk.push(line);
            }
            if chunk.is_empty() {
                break;
            }
            let first_seq = tree.len();
            let checks = check_chunk(
                &chunk,
                first_seq,
                strict_key.as_ref(),
                expected_fields.as_ref(),
            );
            for (seq, check) in (first_seq..).zip(checks) {
                let line_number = seq + 1;
                for message in check.problems {
                    self.problem(BUNDLES, Some(line_number), message);
                }
                if let Some(prev) = check.prev
                    && prev != prev_line_hash
                {
                    let message = if seq == 0 {
                        "prev is not 64 zeros although this is the first bundle (bundles before it were removed)".to_owned()
                    } else {
                        format!(
                            "prev hash does not match line {seq} (a bundle was removed, inserted or reordered)"
                        )
                    };
                    self.problem(BUNDLES, Some(line_number), message);
                }
                prev_line_hash = check.line_hash;
                tree.push(check.leaf_hash);
            }
            if truncated {
                self.problem(
                    BUNDLES,
                    Some(tree.len()),
                    "truncated: last line has no newline (the file was cut short)",
                );
            }
        }
        if key.is_some() && strict_key.is_none() {
            self.problem(
                PUBKEY,
                None,
                "the key has small order, so no bundle signature can be trusted",
            );
        }
        self.report.bundles = tree.len();
        computed.insert(
            BUNDLES.to_owned(),
            (file_hasher.finalize().into(), file_size),
        );
        tree
    }

    fn check_checkpoints(
        &mut self,
        key: Option<&VerifierKey>,
        tree: &MerkleTree,
        files: &BTreeSet<String>,
    ) {
        let mut sizes = BTreeMap::new();
        let mut roots: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
        for path in files.iter().filter(|path| path.starts_with("checkpoints/")) {
            let name = &path["checkpoints/".len()..];
            let base = name
                .strip_suffix(".txt.ots")
                .or_else(|| name.strip_suffix(".txt"));
            let size = base
                .filter(|base| base.len() == 12 && base.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|base| base.parse::<u64>().ok());
            match size {
                Some(size) if name.ends_with(".txt") => {
                    sizes.insert(size, path.clone());
                }
                Some(_) => {}
                None => self.problem(path, None, "unexpected file name in checkpoints/ (expected <12-digit size>.txt or .txt.ots)"),
            }
        }
        for (&size, path) in &sizes {
            let Some(bytes) = self.read(path) else {
                continue;
            };
            let Some(key) = key else { continue };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                self.problem(path, None, "not UTF-8 text: the file was altered");
                continue;
            };
            let checkpoint = match Checkpoint::parse_and_verify(text, key) {
                Ok(checkpoint) => checkpoint,
                Err(error) => {
                    self.problem(
                        path,
                        None,
                        format!("{error} (checked against appliance.pub)"),
                    );
                    continue;
                }
            };
            if checkpoint.size != size {
                self.problem(path, None, format!("file name says size {size} but the checkpoint says {}: the file was renamed", checkpoint.size));
                continue;
            }
            match tree.root_at(size) {
                None => self.problem(
                    path,
                    None,
                    format!("claims {size} bundles but bundles.jsonl has only {}: bundles were removed, or the checkpoint belongs to a longer log", tree.len()),
                ),
                Some(root) if root != checkpoint.root => {
                    self.problem(path, None, format!("root does not match bundles 1..{size}: this checkpoint forks the log"));
                }
                Some(_) => {
                    self.report.checkpoints += 1;
                }
            }
            roots.insert(size, checkpoint.root);
        }
        match sizes.keys().next_back() {
            None => self.problem("checkpoints", None, "no checkpoint: the bundles are not covered by any signed tree head"),
            Some(&newest) if newest < tree.len() => self.problem(
                BUNDLES,
                Some(newest + 1),
                format!("bundles {}..{} are not covered by any checkpoint (appended after the newest checkpoint)", newest + 1, tree.len()),
            ),
            Some(_) => {}
        }
        self.check_proofs(&sizes, &roots, files);
        self.check_ots(&sizes, files);
    }

    fn check_proofs(
        &mut self,
        sizes: &BTreeMap<u64, String>,
        roots: &BTreeMap<u64, [u8; 32]>,
        files: &BTreeSet<String>,
    ) {
        let ordered: Vec<u64> = sizes.keys().copied().collect();
        let mut expected = BTreeSet::new();
        for pair in ordered.windows(2) {
            let (old, new) = (pair[0], pair[1]);
            if old == 0 {
                continue;
            }
            let path = proof_path(old, new);
            expected.insert(path.clone());
            if !files.contains(&path) {
                self.problem(
                    &path,
                    None,
                    format!("missing: no consistency proof between checkpoints {old} and {new}"),
                );
                continue;
            }
            let Some(bytes) = self.read(&path) else {
                continue;
            };
            let proof: Option<Vec<[u8; 32]>> = std::str::from_utf8(&bytes).ok().and_then(|text| {
                text.lines()
                    .map(|line| {
                        BASE64
                            .decode(line)
                            .ok()
                            .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
                    })
                    .collect()
            });
            let Some(proof) = proof.filter(|_| bytes.is_empty() || bytes.ends_with(b"\n")) else {
                self.problem(
                    &path,
                    None,
                    "malformed: expected one base64 SHA-256 hash per line",
                );
                continue;
            };
            if let (Some(old_root), Some(new_root)) = (roots.get(&old), roots.get(&new))
                && !merkle::verify_consistency(old, new, old_root, new_root, &proof)
            {
                self.problem(
                    &path,
                    None,
                    format!("does not prove checkpoint {old} is a prefix of checkpoint {new}: the log was rewritten between them, or the proof was altered"),
                );
            }
        }
        for path in files.iter().filter(|path| path.starts_with("proofs/")) {
            if !expected.contains(path) {
                self.problem(
                    path,
                    None,
                    "unexpected file in proofs/ (no pair of consecutive checkpoints matches it)",
                );
            }
        }
    }

    fn check_ots(&mut self, sizes: &BTreeMap<u64, String>, files: &BTreeSet<String>) {
        for (&size, checkpoint_path) in sizes {
            let ots_path = format!("{checkpoint_path}.ots");
            let status = if files.contains(&ots_path) {
                self.check_one_ots(checkpoint_path, &ots_path)
            } else {
                OtsStatus::None
            };
            self.report.ots.push(CheckpointOts { size, status });
        }
        for path in files.iter().filter(|path| path.ends_with(".txt.ots")) {
            let checkpoint = &path[..path.len() - 4];
            if !files.contains(checkpoint) {
                self.problem(
                    path,
                    None,
                    format!("timestamps {checkpoint}, which is not in the kit"),
                );
            }
        }
    }

    fn check_one_ots(&mut self, checkpoint_path: &str, ots_path: &str) -> OtsStatus {
        let (Some(checkpoint_bytes), Some(ots_bytes)) =
            (self.read(checkpoint_path), self.read(ots_path))
        else {
            return OtsStatus::Invalid;
        };
        let detached = match ots::DetachedTimestamp::from_bytes(&ots_bytes) {
            Ok(detached) => detached,
            Err(error) => {
                self.problem(
                    ots_path,
                    None,
                    format!("not a valid OpenTimestamps proof: {error}"),
                );
                return OtsStatus::Invalid;
            }
        };
        let digest: [u8; 32] = Sha256::digest(&checkpoint_bytes).into();
        if detached.file_hash_op != ots::HashOp::Sha256 || detached.digest() != digest.as_slice() {
            self.problem(
                ots_path,
                None,
                format!("does not timestamp {checkpoint_path}: its SHA-256 digest differs"),
            );
            return OtsStatus::Invalid;
        }
        let mut calendars = Vec::new();
        let mut best: Option<OtsStatus> = None;
        for (msg, attestation) in detached.timestamp.all_attestations() {
            match attestation {
                ots::Attestation::Pending { uri } => calendars.push(uri),
                ots::Attestation::Bitcoin { height } => {
                    let status = match self.opts.block_headers.get(&height) {
                        None => OtsStatus::Bitcoin {
                            height,
                            verified_time: None,
                            header_missing: true,
                        },
                        Some(header) => match ots::bitcoin::verify_attestation(&msg, header) {
                            Ok(time) => OtsStatus::Bitcoin {
                                height,
                                verified_time: Some(time),
                                header_missing: false,
                            },
                            Err(error) => {
                                self.problem(ots_path, None, format!("Bitcoin attestation at height {height} does not match the supplied block header: {error}"));
                                OtsStatus::Bitcoin {
                                    height,
                                    verified_time: None,
                                    header_missing: false,
                                }
                            }
                        },
                    };
                    let verified = matches!(
                        status,
                        OtsStatus::Bitcoin {
                            verified_time: Some(_),
                            ..
                        }
                    );
                    if best.is_none() || verified {
                        best = Some(status);
                    }
                }
                _ => {}
            }
        }
        best.unwrap_or(OtsStatus::Pending { calendars })
    }
}

/// Checks a chunk of lines on two threads; results are in line order.
fn check_chunk(
    chunk: &[Vec<u8>],
    first_seq: u64,
    key: Option<&VerifyingKey>,
    expected_fields: Option<&(String, String)>,
) -> Vec<LineCheck> {
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, 8);
    let per_thread = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per_thread)
            .enumerate()
            .map(|(part_idx, part)| {
                let part_first = first_seq + (part_idx * per_thread) as u64;
                scope.spawn(move || check_part(part, part_first, key, expected_fields))
            })
            .collect();
        let mut res = Vec::with_capacity(chunk.len());
        for (part_idx, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(part) => res.extend(part),
                Err(_) => {
                    // A worker panicked (a bug); report its lines as unchecked rather than aborting.
                    let part_len = chunk
                        .chunks(per_thread)
                        .nth(part_idx)
                        .map_or(0, <[Vec<u8>]>::len);
                    res.extend((0..part_len).map(|_| LineCheck {
                        line_hash: [0; 32],
                        leaf_hash: [0; 32],
                        prev: None,
                        problems: vec!["internal error while checking this line".to_owned()],
                    }));
                }
            }
        }
        res
    })
}

/// Checks consecutive lines: structure, canonical form, fields; then their signatures in one batch.
fn check_part(
    lines: &[Vec<u8>],
    first_seq: u64,
    key: Option<&VerifyingKey>,
    expected_fields: Option<&(String, String)>,
) -> Vec<LineCheck> {
    let mut checks = Vec::with_capacity(lines.len());
    let mut to_verify: Vec<(usize, Vec<u8>, Signature)> = Vec::with_capacity(lines.len());
    for (line_idx, line) in lines.iter().enumerate() {
        let seq = first_seq + line_idx as u64;
        let mut check = LineCheck {
            line_hash: Sha256::digest(line).into(),
            leaf_hash: merkle::leaf_hash(line),
            prev: None,
            problems: Vec::new(),
        };
        if let Some((unsigned, signature)) = check_fields(line, seq, expected_fields, &mut check)
            && key.is_some()
        {
            to_verify.push((line_idx, unsigned, signature));
        }
        checks.push(check);
    }
    let Some(key) = key else { return checks };
    let messages: Vec<&[u8]> = to_verify
        .iter()
        .map(|(_, unsigned, _)| unsigned.as_slice())
        .collect();
    let signatures: Vec<Signature> = to_verify
        .iter()
        .map(|(_, _, signature)| *signature)
        .collect();
    let keys = vec![*key; to_verify.len()];
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
        for (line_idx, unsigned, signature) in &to_verify {
            if key.verify_strict(unsigned, signature).is_err() {
                checks[*line_idx]
                    .problems
                    .push("signature does not verify under appliance.pub (bundle altered, or signed by another key)".to_owned());
            }
        }
    }
    checks
}

/// Checks one line's JSON structure and fields; returns the signed message and signature when they are well-formed.
fn check_fields(
    line: &[u8],
    seq: u64,
    expected_fields: Option<&(String, String)>,
    check: &mut LineCheck,
) -> Option<(Vec<u8>, Signature)> {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            check.problems.push(format!(
                "not valid JSON ({error}): the line was altered or cut"
            ));
            return None;
        }
    };
    let Some(map) = value.as_object() else {
        check.problems.push("not a JSON object".to_owned());
        return None;
    };
    let mut full = Vec::with_capacity(line.len());
    let mut unsigned = Vec::with_capacity(line.len());
    full.push(b'{');
    unsigned.push(b'{');
    for (member_idx, (name, member)) in jcs::sorted_members(map).into_iter().enumerate() {
        let mut encoded = Vec::new();
        if member_idx > 0 {
            encoded.push(b',');
        }
        jcs::write_string(name, &mut encoded);
        encoded.push(b':');
        if let Err(error) = jcs::write_value(member, &mut encoded) {
            check
                .problems
                .push(format!("member {name} has no canonical form: {error}"));
            return None;
        }
        full.extend_from_slice(&encoded);
        if name != "sig" {
            if unsigned.len() == 1 && encoded.first() == Some(&b',') {
                unsigned.extend_from_slice(&encoded[1..]);
            } else {
                unsigned.extend_from_slice(&encoded);
            }
        }
    }
    full.push(b'}');
    unsigned.push(b'}');
    if full != line {
        check.problems.push(
            "not in canonical JCS form: bytes outside the signed content were changed".to_owned(),
        );
    }
    const MEMBERS: [&str; 11] = [
        "appliance",
        "body",
        "catalog",
        "key",
        "kind",
        "prev",
        "schema",
        "seq",
        "sig",
        "site",
        "time",
    ];
    if let Some(extra) = map.keys().find(|name| !MEMBERS.contains(&name.as_str())) {
        check
            .problems
            .push(format!("unexpected member {extra:?} (not a v1 bundle)"));
    }
    let text = |name: &str| map.get(name).and_then(serde_json::Value::as_str);
    if text("schema") != Some(BUNDLE_SCHEMA_V1) {
        check
            .problems
            .push(format!("schema is not {BUNDLE_SCHEMA_V1}"));
    }
    match map.get("seq").and_then(serde_json::Value::as_u64) {
        Some(found) if found == seq => {}
        found => check.problems.push(format!(
            "seq is {}, expected {seq} (a bundle was removed, inserted or reordered)",
            found.map_or_else(|| "missing".to_owned(), |found| found.to_string())
        )),
    }
    if let Some((appliance, key_id)) = expected_fields {
        if text("appliance") != Some(appliance.as_str()) {
            check.problems.push(format!("appliance is not {appliance}, the id of appliance.pub (bundle from another appliance)"));
        }
        if text("key") != Some(key_id.as_str()) {
            check.problems.push(format!(
                "key is not {key_id}, the key id of appliance.pub (bundle signed by another key)"
            ));
        }
    }
    for name in ["site", "kind", "catalog"] {
        if text(name).is_none() {
            check
                .problems
                .push(format!("{name} is missing or not a string"));
        }
    }
    if !text("time").is_some_and(is_bundle_time) {
        check.problems.push(
            "time is not an RFC 3339 UTC time with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)"
                .to_owned(),
        );
    }
    if !map.get("body").is_some_and(serde_json::Value::is_object) {
        check
            .problems
            .push("body is missing or not an object".to_owned());
    }
    let mut prev = [0u8; 32];
    match text("prev") {
        Some(hex_text)
            if hex_text.len() == 64
                && !hex_text.bytes().any(|b| b.is_ascii_uppercase())
                && hex::decode_to_slice(hex_text, &mut prev).is_ok() =>
        {
            check.prev = Some(prev);
        }
        _ => check
            .problems
            .push("prev is not 64 lowercase hex digits".to_owned()),
    }
    let signature = text("sig")
        .and_then(|sig| BASE64.decode(sig).ok())
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok());
    let Some(signature) = signature else {
        check
            .problems
            .push("sig is not a base64 Ed25519 signature".to_owned());
        return None;
    };
    if !r_is_canonical_and_not_small_order(&signature) {
        check.problems.push(
            "signature has a non-canonical or small-order R (rejected by strict verification)"
                .to_owned(),
        );
        return None;
    }
    Some((unsigned, Signature::from_bytes(&signature)))
}

/// Batch verification is not "strict", so R is checked here as `verify_strict` would reject it:
/// its y coordinate must be canonical (y < 2^255 - 19) and it must not be one of the 8 small-order points.
/// Comparing encodings with the sign bit masked covers both signs of every torsion point without decoding R.
/// Non-canonical S (S ≥ L) is rejected by the batch verifier itself; the key is checked with `is_weak` once.
fn r_is_canonical_and_not_small_order(signature: &[u8; 64]) -> bool {
    static SMALL_ORDER: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let small_order = SMALL_ORDER.get_or_init(|| {
        curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|point| {
                let mut bytes = point.compress().to_bytes();
                bytes[31] &= 0x7f;
                bytes
            })
            .collect()
    });
    let mut y = [0u8; 32];
    y.copy_from_slice(&signature[..32]);
    y[31] &= 0x7f;
    // y >= p exactly when the top byte is 0x7f, bytes 1..31 are 0xff and the low byte is at least 0xed.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|byte| *byte == 0xff) && y[0] >= 0xed;
    !non_canonical && !small_order.contains(&y)
}

fn is_bundle_time(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(idx, byte)| match idx {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'.',
            23 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

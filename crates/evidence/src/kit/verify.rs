//! Offline verification of a kit: the key, the signed MANIFEST, every bundle line (and what endpoint agents reported), checkpoints, consistency proofs and OpenTimestamps proofs.
//!
//! Every problem is reported with its file and line; verification never stops at the first one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::keys::VerifierKey;
use crate::kit::agent::AgentLedger;
use crate::kit::line::check_chunk;
use crate::kit::{
    BUNDLES, CheckpointOts, KIT_HEADER, MANIFEST, MAX_PROBLEMS, OtsStatus, PUBKEY, Problem, README,
    VerifyOptions, VerifyReport, proof_path,
};
use crate::merkle::{self, MerkleTree};
use crate::note;

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

/// Lines per chunk handed to the worker threads.
const CHUNK_LINES: usize = 8192;

struct Verifier<'a> {
    dir: &'a Path,
    opts: &'a VerifyOptions,
    report: VerifyReport,
    dropped: u64,
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
        // The agent checks see the agent bundles in log order and need an agent's enrollment
        // before its results. That holds because a kit is the whole log from bundle 0: line 1
        // must have seq 0 and a zero prev, and every line seq = its index and the previous
        // line's hash (all checked below), so a kit cut at the front or with bundles removed is
        // reported as such, whatever the agent checks then add.
        let mut agents = AgentLedger::default();
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
            // (line, message), reported in line order once the chunk's agent signatures are checked.
            let mut chunk_problems: Vec<(u64, String)> = Vec::new();
            for (seq, check) in (first_seq..).zip(checks) {
                let line_number = seq + 1;
                chunk_problems.extend(
                    check
                        .problems
                        .into_iter()
                        .map(|message| (line_number, message)),
                );
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
                    chunk_problems.push((line_number, message));
                }
                if let Some(item) = check.agent {
                    agents.observe(line_number, item, &mut chunk_problems);
                }
                prev_line_hash = check.line_hash;
                tree.push(check.leaf_hash);
            }
            chunk_problems.extend(agents.verify_signatures());
            // A stable sort: each line's problems keep the order they were found in.
            chunk_problems.sort_by_key(|(line_number, _)| *line_number);
            for (line_number, message) in chunk_problems {
                self.problem(BUNDLES, Some(line_number), message);
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
        self.report.agents = agents.finish();
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
                .or_else(|| name.strip_suffix(".txt.cosig"))
                .or_else(|| name.strip_suffix(".txt"));
            let size = base
                .filter(|base| base.len() == 12 && base.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|base| base.parse::<u64>().ok());
            match size {
                Some(size) if name.ends_with(".txt") => {
                    sizes.insert(size, path.clone());
                }
                Some(_) => {}
                None => self.problem(path, None, "unexpected file name in checkpoints/ (expected <12-digit size>.txt, .txt.ots or .txt.cosig)"),
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
        self.check_cosignatures(&sizes, files);
    }

    /// Cosignature files: each beside its checkpoint; with a witness key, every line by that
    /// witness verifies over its checkpoint, and at least one checkpoint is witnessed.
    fn check_cosignatures(&mut self, sizes: &BTreeMap<u64, String>, files: &BTreeSet<String>) {
        for path in files.iter().filter(|path| path.ends_with(".txt.cosig")) {
            let checkpoint_path = &path[..path.len() - ".cosig".len()];
            if !files.contains(checkpoint_path) {
                self.problem(
                    path,
                    None,
                    format!("cosigns {checkpoint_path}, which is not in the kit"),
                );
                continue;
            }
            self.report.cosigned_files += 1;
            let Some(witness) = self.opts.witness.clone() else {
                continue;
            };
            let size = sizes
                .iter()
                .find(|(_, p)| p.as_str() == checkpoint_path)
                .map(|(size, _)| *size);
            let (Some(size), Some(checkpoint), Some(lines)) =
                (size, self.read(checkpoint_path), self.read(path))
            else {
                continue;
            };
            let note = [checkpoint, lines].concat();
            let Ok(note) = String::from_utf8(note) else {
                self.problem(path, None, "not UTF-8 text: the file was altered");
                continue;
            };
            match witness.verify(&note) {
                Ok(cosigned) => self.report.witnessed.push((size, cosigned.time)),
                Err(crate::cosignature::CosignatureError::Missing { .. }) => {}
                Err(err) => self.problem(path, None, err.to_string()),
            }
        }
        if let Some(witness) = &self.opts.witness
            && self.report.witnessed.is_empty()
        {
            let name = witness.name().to_owned();
            self.problem(
                "checkpoints",
                None,
                format!("no checkpoint carries a valid cosignature by witness {name}: Central Command never witnessed this log (or the witness key is not the partner's)"),
            );
        }
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

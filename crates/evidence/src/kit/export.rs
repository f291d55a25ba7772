//! Writing a kit: stream the bundles, check and complete the checkpoints, add proofs, key, MANIFEST and README, then publish the directory whole.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::keys::ApplianceKey;
use crate::kit::readme::readme;
use crate::kit::{
    AUDITOR_DIR, AuditorFiles, BUNDLES, KIT_HEADER, KitError, KitSource, KitSummary, MANIFEST,
    MANIFEST_HTML, PUBKEY, README, checkpoint_path, manifest_html, proof_path,
};
use crate::merkle::{self, MerkleTree};
use crate::note;

/// Writes an auditor kit to `out` atomically: into a temporary sibling directory, every file and
/// directory synced, then renamed into place (`durable::publish_dir`).
pub fn export(out: &Path, src: KitSource<'_>) -> Result<KitSummary, KitError> {
    if let Ok(mut entries) = fs::read_dir(out) {
        if entries.next().is_some() {
            return Err(KitError::OutputExists(out.to_owned()));
        }
    } else if out.exists() {
        return Err(KitError::OutputExists(out.to_owned()));
    }
    let temp = durable::temp_sibling(out)?;
    let result = write_kit(&temp, src).and_then(|summary| {
        durable::publish_dir(&temp, out)?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result
}

/// SHA-256 and size of each file, by kit-relative path, for the MANIFEST.
type Manifest = BTreeMap<String, ([u8; 32], u64)>;

/// The checkpoints a kit carries, by size, with their signed note texts.
type CheckpointsBySize = BTreeMap<u64, (Checkpoint, String)>;

fn write_kit(dir: &Path, src: KitSource<'_>) -> Result<KitSummary, KitError> {
    let KitSource {
        key,
        lines,
        checkpoints,
        ots,
        cosignatures,
        auditor,
    } = src;
    for sub in ["", "checkpoints", "proofs"] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(io_error("creating directory", &path))?;
    }
    let mut manifest = Manifest::new();
    let tree = write_bundles(dir, lines, &mut manifest)?;
    let (by_size, signed_final_checkpoint) = complete_checkpoints(key, checkpoints, &tree)?;
    for (size, (_, text)) in &by_size {
        write_file(dir, &checkpoint_path(*size), text.as_bytes(), &mut manifest)?;
    }
    let sizes: Vec<u64> = by_size.keys().copied().collect();
    write_proofs(dir, &tree, &sizes, &mut manifest)?;
    let mut cosigned: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (size, line) in cosignatures {
        if !by_size.contains_key(&size) {
            return Err(KitError::OrphanCosignature(size));
        }
        let line = if line.ends_with('\n') {
            line
        } else {
            format!("{line}\n")
        };
        cosigned.entry(size).or_default().push(line);
    }
    for (size, mut lines) in cosigned {
        lines.sort();
        lines.dedup();
        write_file(
            dir,
            &format!("{}.cosig", checkpoint_path(size)),
            lines.concat().as_bytes(),
            &mut manifest,
        )?;
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
        format!("{}\n", key.verifier()).as_bytes(),
        &mut manifest,
    )?;
    if let Some(auditor) = auditor {
        write_auditor_files(dir, key, auditor, &mut manifest)?;
    }
    write_manifest_and_readme(dir, key, &manifest, tree.len(), sizes.len())?;
    if dir.join(AUDITOR_DIR).exists() {
        durable::sync_dir(&dir.join(AUDITOR_DIR))?;
    }
    for sub in ["checkpoints", "proofs", ""] {
        durable::sync_dir(&dir.join(sub))?;
    }
    Ok(KitSummary {
        bundles: tree.len(),
        checkpoints: sizes.len() as u64,
        root: tree.root(),
        signed_final_checkpoint,
    })
}

/// Streams the bundle lines into `bundles.jsonl` (synced); only leaf hashes stay in memory.
fn write_bundles(
    dir: &Path,
    lines: Box<dyn Iterator<Item = Result<Vec<u8>, KitError>> + '_>,
    manifest: &mut Manifest,
) -> Result<MerkleTree, KitError> {
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
    Ok(tree)
}

/// Verifies each supplied checkpoint against the key and the bundles, and signs a final one when
/// none covers every bundle; returns them by size and whether a final one was signed.
fn complete_checkpoints(
    key: &ApplianceKey,
    checkpoints: Vec<String>,
    tree: &MerkleTree,
) -> Result<(CheckpointsBySize, bool), KitError> {
    let verifier = key.verifier();
    let mut by_size = CheckpointsBySize::new();
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
    Ok((by_size, signed_final_checkpoint))
}

/// Writes a consistency proof between each pair of consecutive checkpoint sizes (none from size 0).
fn write_proofs(
    dir: &Path,
    tree: &MerkleTree,
    sizes: &[u64],
    manifest: &mut Manifest,
) -> Result<(), KitError> {
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
        write_file(dir, &proof_path(old, new), text.as_bytes(), manifest)?;
    }
    Ok(())
}

/// Writes the signed MANIFEST over every file written so far, and the (unsigned) README.
fn write_manifest_and_readme(
    dir: &Path,
    key: &ApplianceKey,
    manifest: &Manifest,
    bundles: u64,
    checkpoints: usize,
) -> Result<(), KitError> {
    let mut body = format!("{KIT_HEADER}\n{}\n", key.origin());
    for (path, (hash, size)) in manifest {
        body.push_str(&format!("{} {size} {path}\n", hex::encode(hash)));
    }
    let mut unlisted = Manifest::new();
    write_file(
        dir,
        MANIFEST,
        note::sign(&body, key).as_bytes(),
        &mut unlisted,
    )?;
    write_file(
        dir,
        README,
        readme(key, bundles, checkpoints).as_bytes(),
        &mut unlisted,
    )
}

/// Writes the auditor's files, then the HTML manifest of every file written so far.
fn write_auditor_files(
    dir: &Path,
    key: &ApplianceKey,
    auditor: AuditorFiles,
    manifest: &mut Manifest,
) -> Result<(), KitError> {
    let path = dir.join(AUDITOR_DIR);
    fs::create_dir_all(&path).map_err(io_error("creating directory", &path))?;
    let mut described = Vec::new();
    for (name, bytes, what) in auditor.files {
        let safe = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !safe || name == "manifest.html" {
            return Err(KitError::AuditorFileName(name));
        }
        let relative = format!("{AUDITOR_DIR}/{name}");
        write_file(dir, &relative, &bytes, manifest)?;
        described.push((relative, what));
    }
    let html = manifest_html::render(
        &auditor.title,
        key.origin(),
        manifest,
        &described,
        &auditor.html_section,
    );
    write_file(dir, MANIFEST_HTML, html.as_bytes(), manifest)
}

/// Writes `bytes` to `dir/relative`, fsyncs it and records it for the MANIFEST.
fn write_file(
    dir: &Path,
    relative: &str,
    bytes: &[u8],
    manifest: &mut Manifest,
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

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KitError {
    let path = path.to_owned();
    move |source| KitError::Io {
        action,
        path,
        source,
    }
}

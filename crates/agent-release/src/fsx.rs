//! File operations at the edge, shared by the release store and the agent's swap: durable
//! writes through `durable` on Unix (on Windows the same steps, less the directory sync Windows
//! does not offer), and copying a release binary while checking its size and SHA-256, so the
//! bytes kept are exactly the bytes checked.

use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::manifest::hex;

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct IoError {
    action: String,
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// A binary that does not match its manifest.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} does not match its manifest: {size} bytes with SHA-256 {sha256}, the manifest says {expected_size} bytes with SHA-256 {expected_sha256}",
    path.display()
)]
pub struct BinaryMismatch {
    path: PathBuf,
    size: u64,
    sha256: String,
    expected_size: u64,
    expected_sha256: String,
}

/// Why a verified copy failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    Io(IoError),
    Mismatch(BinaryMismatch),
}

impl IoError {
    pub(crate) fn new(action: impl Into<String>, path: &Path, source: io::Error) -> IoError {
        IoError {
            action: action.into(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// The operating system's error kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The path the failing step worked on.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A closure that turns an `io::Error` into an [`IoError`] for `action` on `path`.
pub(crate) fn step(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IoError + use<> {
    let path = path.to_path_buf();
    move |source| IoError {
        action: action.to_owned(),
        path,
        source,
    }
}

/// Replaces `path` with `bytes`, durably, with permission bits `mode` (Unix).
pub(crate) fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IoError> {
    write_with(path, mode, |file| file.write_all(bytes))
}

/// Copies `src` to `dest` (replacing it durably, permission bits `mode`), checking that what
/// was copied is exactly `size` bytes with SHA-256 `sha256`; on a mismatch `dest` is untouched.
pub(crate) fn copy_verified(
    src: &Path,
    dest: &Path,
    mode: u32,
    size: u64,
    sha256: &[u8; 32],
) -> Result<(), CopyError> {
    let source = File::open(src)
        .map_err(step("opening", src))
        .map_err(CopyError::Io)?;
    let mut mismatch = None;
    let res = write_with(dest, mode, |file| {
        // Read at most one byte more than expected, so a huge file cannot fill the disk.
        let mut reader = source.take(size.saturating_add(1));
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            copied += n as u64;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if copied != size || &digest != sha256 {
            mismatch = Some(BinaryMismatch {
                path: src.to_path_buf(),
                size: copied,
                sha256: if copied > size {
                    "(not computed: the file is longer)".to_owned()
                } else {
                    hex(&digest)
                },
                expected_size: size,
                expected_sha256: hex(sha256),
            });
            return Err(io::Error::other("the binary does not match its manifest"));
        }
        Ok(())
    });
    match (res, mismatch) {
        (_, Some(mismatch)) => Err(CopyError::Mismatch(mismatch)),
        (Err(err), None) => Err(CopyError::Io(err)),
        (Ok(()), None) => Ok(()),
    }
}

/// Removes `path` durably; `Ok(false)` if it did not exist.
pub(crate) fn remove(path: &Path) -> Result<bool, IoError> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(IoError::new("removing", path, err)),
    }
}

/// Renames `from` to `to` (replacing `to` atomically where the platform allows) and syncs the
/// directory.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), IoError> {
    fs::rename(from, to)
        .map_err(|err| IoError::new(format!("renaming {} to", from.display()), to, err))?;
    sync_parent(to)
}

/// Reads a small file whole, refusing one larger than `limit`; `Ok(None)` if it does not exist.
pub(crate) fn read_small(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, IoError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(IoError::new("opening", path, err)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(step("reading", path))?;
    if bytes.len() as u64 > limit {
        return Err(IoError::new(
            "reading",
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the file is larger than {limit} bytes"),
            ),
        ));
    }
    Ok(Some(bytes))
}

/// Syncs the directory holding `path`.
#[cfg(unix)]
pub(crate) fn sync_parent(path: &Path) -> Result<(), IoError> {
    durable::sync_parent(path).map_err(from_durable)
}

/// Windows has no directory sync: NTFS journals the rename itself.
#[cfg(windows)]
pub(crate) fn sync_parent(_path: &Path) -> Result<(), IoError> {
    Ok(())
}

/// Creates `dir` and its parents, syncing each parent it created into.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), IoError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(IoError::new("creating directory", dir, err)),
    }
}

#[cfg(unix)]
fn write_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), IoError> {
    durable::write_with(path, mode, fill).map_err(from_durable)
}

#[cfg(windows)]
fn write_with(
    path: &Path,
    _mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), IoError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let res = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(step("creating", &tmp))?;
        fill(&mut file).map_err(step("writing", &tmp))?;
        file.sync_all().map_err(step("syncing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(step("replacing", path))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(unix)]
fn from_durable(err: durable::Error) -> IoError {
    // The durable error reads "{action} {path}"; keep the parts apart as this type does.
    let text = err.to_string();
    let path = err.path().to_path_buf();
    let action = text
        .strip_suffix(&format!(" {}", path.display()))
        .unwrap_or(&text)
        .to_owned();
    let source = io::Error::new(err.kind(), err.io_error().to_string());
    IoError {
        action,
        path,
        source,
    }
}

//! Durable replacement of files and directories: the one place the appliance writes state that must survive a power cut.
//!
//! Every write goes to a new temporary sibling (created with `O_EXCL`, so a planted file or symlink is never followed),
//! is synced, renamed over the destination, and the parent directory is synced, so after a crash the destination holds
//! either the old or the new contents, never a mixture.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A step of a durable write that failed, with the path it failed on.
///
/// The message names the step and the path; the operating system's reason is the [`std::error::Error::source`],
/// so `{err:#}` in a chain prints each part once.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct Error {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl Error {
    /// The operating system's error kind (for hints such as "the disk is full").
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The path the failing step worked on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The operating system's error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

/// Replaces `path` with `bytes`, durably; the file gets permission bits `mode` (for example `0o600`).
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    write_with(path, mode, |file| file.write_all(bytes))
}

/// Replaces `path` with what `fill` writes into the (buffer-free) temporary file, durably.
///
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), Error> {
    let tmp = temp_sibling(path)?;
    let res = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(step("creating", &tmp))?;
        // The umask may have narrowed the mode; the caller's choice wins.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(step("setting permissions of", &tmp))?;
        fill(&mut file).map_err(step("writing", &tmp))?;
        file.sync_all().map_err(step("syncing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(step("replacing", path))?;
        sync_parent(path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// A fresh name beside `path` for a temporary file or directory: hidden, unique in this process and across processes.
pub fn temp_sibling(path: &Path) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| Error {
        action: "naming a temporary file for",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let unique = format!(
        ".{}.tmp-{}-{}-{nanos:x}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Ok(path.with_file_name(unique))
}

/// Moves a fully written (and synced) directory `temp` to `dest` and syncs the parent, so it appears whole or not at all.
///
/// `dest` must not exist, or be an empty directory (which `rename(2)` replaces).
pub fn publish_dir(temp: &Path, dest: &Path) -> Result<(), Error> {
    fs::rename(temp, dest).map_err(step("moving into place", dest))?;
    sync_parent(dest)
}

/// Syncs directory `dir` itself, so entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(step("syncing directory", dir))
}

/// Syncs the directory that holds `path` (the current directory for a bare file name).
pub fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

fn step(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error {
        action,
        path,
        source,
    }
}

//! Durable replacement of files and directories: the one place the appliance (and the endpoint
//! agent) writes state that must survive a power cut.
//!
//! Every write goes to a new temporary sibling (created exclusively, so a planted file or
//! symlink is never followed), is synced, renamed over the destination, and the parent directory
//! is synced, so after a crash the destination holds either the old or the new contents, never a
//! mixture.
//!
//! ## Unix and Windows
//! The API is the same on both; what the operating system offers differs:
//!
//! | step | Unix | Windows |
//! |---|---|---|
//! | create the temporary sibling | `O_CREAT \| O_EXCL` with `mode`, then `fchmod(mode)` (the umask may have narrowed it) | `CREATE_NEW`; `mode` is not used: the file inherits the directory's ACL |
//! | sync it | `fsync` | `FlushFileBuffers` |
//! | replace the destination | `rename(2)` | `std::fs::rename` (`FileRenameInfoEx` with POSIX semantics, or `MoveFileExW(MOVEFILE_REPLACE_EXISTING)`), retried briefly while another process (a virus scanner, an indexer) holds the destination without sharing deletion |
//! | sync the directory | `fsync` of the directory | nothing: Windows has no directory sync a program can ask for (a directory opens only with backup semantics, and `FlushFileBuffers` is defined for files and volumes) |
//!
//! So on Windows a write is atomic (old or new contents, never a mixture: the data is flushed
//! before the rename, and NTFS journals the rename) but the rename itself becomes durable when
//! NTFS next commits its log, normally within seconds: a power cut right after [`write`]
//! returns may bring back the old contents. Whoever needs more on Windows keeps its own log
//! (the agent's offline queue is SQLite with `synchronous=FULL`).
//!
//! What protects a file on Windows is its directory's ACL, which the caller sets (the agent
//! restricts its state directory to SYSTEM and Administrators when it creates it).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
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

/// Replaces `path` with `bytes`, durably; on Unix the file gets permission bits `mode` (for
/// example `0o600`); on Windows `mode` is not used and the file inherits its directory's ACL.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    write_with(path, mode, |file| file.write_all(bytes))
}

/// Replaces `path` with what `fill` writes into the (buffer-free) temporary file, durably
/// (`mode` as for [`write`]).
///
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), Error> {
    let tmp = temp_sibling(path)?;
    let res = (|| {
        let mut file = create_new(&tmp, mode)?;
        fill(&mut file).map_err(step("writing", &tmp))?;
        file.sync_all().map_err(step("syncing", &tmp))?;
        drop(file);
        replace(&tmp, path)?;
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
/// `dest` must not exist; on Unix it may also be an empty directory (which `rename(2)` replaces).
pub fn publish_dir(temp: &Path, dest: &Path) -> Result<(), Error> {
    fs::rename(temp, dest).map_err(step("moving into place", dest))?;
    sync_parent(dest)
}

/// Syncs directory `dir` itself, so entries created, renamed or removed in it are durable.
///
/// On Windows this does nothing and succeeds: there is no directory sync to ask for (see the
/// crate documentation).
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(step("syncing directory", dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Syncs the directory that holds `path` (the current directory for a bare file name); on
/// Windows nothing, as [`sync_dir`].
pub fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates `tmp`, which must not exist, for writing; on Unix with permission bits `mode`.
fn create_new(tmp: &Path, mode: u32) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(mode);
    let file = options.open(tmp).map_err(step("creating", tmp))?;
    #[cfg(unix)]
    {
        // The umask may have narrowed the mode; the caller's choice wins.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(step("setting permissions of", tmp))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(file)
}

/// Renames `tmp` over `path`. On Windows a rename fails while another process holds `path`
/// open without sharing deletion (virus scanners and indexers do, briefly), so it is tried
/// again for up to about a second before the error stands.
fn replace(tmp: &Path, path: &Path) -> Result<(), Error> {
    #[cfg(windows)]
    {
        // ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
        const BUSY: [i32; 3] = [5, 32, 33];
        let mut delay = std::time::Duration::from_millis(10);
        for _ in 0..7 {
            match fs::rename(tmp, path) {
                Err(err) if err.raw_os_error().is_some_and(|code| BUSY.contains(&code)) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                res => return res.map_err(step("replacing", path)),
            }
        }
    }
    fs::rename(tmp, path).map_err(step("replacing", path))
}

fn step(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error {
        action,
        path,
        source,
    }
}

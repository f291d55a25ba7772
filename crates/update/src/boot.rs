//! Boot entries with automatic boot assessment: the [`BootLoader`] seam and its systemd-boot
//! implementation over an EFI system partition: Boot Loader Specification type #1 entries
//! (`loader/entries/*.conf`) and, with Secure Boot, type #2 entries (signed unified kernel images,
//! `EFI/Linux/osiris_<version>.efi`), whose file names carry `+LEFT[-DONE]` try counters.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use update_manifest::Version;

/// The systemd-boot loader-interface vendor GUID of `LoaderEntrySelected`.
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// Entry ids written by the updater (and the installer) start with this.
pub const ENTRY_PREFIX: &str = "osiris-";

/// Type #2 (UKI) entry files written by the updater start with this: `osiris_<version>.efi`.
pub const UKI_PREFIX: &str = "osiris_";

/// A boot entry as the boot loader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// Entry id: for type #1 the file name without counter and `.conf` (`osiris-1.2.0`); for
    /// type #2 the file name without counter (`osiris_1.2.0.efi`), as `LoaderEntrySelected`
    /// names it.
    pub id: String,
    /// Release version of the system it boots.
    pub version: String,
    /// The system's top-level store path (from `init=` in the options).
    pub system: String,
    /// Try counter; `None` once the entry is blessed (known good) or for entries without one.
    pub counter: Option<Counter>,
}

/// A boot-counting counter: `+LEFT-DONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Boot attempts left before the entry is bad.
    pub tries_left: u32,
    /// Boot attempts made so far.
    pub tries_done: u32,
}

/// What to install as a new entry: read from a system closure directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySpec {
    /// Entry id, e.g. `osiris-1.2.0`.
    pub id: String,
    /// Release version.
    pub version: String,
    /// The system's top-level store path (used for `init=`).
    pub system: String,
    /// Where the system's files can be read (the store path itself on the appliance).
    pub system_dir: PathBuf,
    /// With Secure Boot: stage this signed UKI as a type #2 entry instead of a type #1 entry.
    pub uki: Option<UkiSource>,
}

/// A signed UKI to stage: where its verified store copy is read and the SHA-256 the signed
/// manifest names for it (checked again before anything is written to the ESP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiSource {
    /// The UKI file in the store (never followed if it is a symlink).
    pub file: PathBuf,
    /// Lowercase hex SHA-256 from the manifest.
    pub sha256: String,
}

/// The boot loader seam: the updater only needs these operations.
pub trait BootLoader {
    /// Every entry, sorted the way the boot loader sorts them (best first, bad entries last).
    fn entries(&self) -> Result<Vec<BootEntry>, BootError>;
    /// Installs a new entry with `tries` boot attempts, making it the preferred entry.
    fn install(&mut self, spec: &EntrySpec, tries: u32) -> Result<BootEntry, BootError>;
    /// The entry the running system was booted from, if the firmware says.
    fn booted(&self) -> Result<Option<String>, BootError>;
    /// Marks an entry good: drops its counter so it is never assessed again.
    fn bless(&mut self, id: &str) -> Result<(), BootError>;
    /// Marks an entry bad (`+0`): the boot loader will prefer every other entry.
    fn mark_bad(&mut self, id: &str) -> Result<(), BootError>;
    /// The entry the boot loader will pick next.
    fn next_boot(&self) -> Result<Option<BootEntry>, BootError>;
}

/// systemd-boot over an ESP directory, reading `LoaderEntrySelected` from an efivars directory.
#[derive(Debug, Clone)]
pub struct SystemdBoot {
    esp: PathBuf,
    efivars: PathBuf,
}

/// A boot-entry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// Reading or writing the ESP failed.
    #[error("{action} {path} (is the EFI system partition mounted read-write?)")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// Replacing a file on the ESP durably failed (the step, the path and the reason are the source).
    #[error("the EFI system partition could not be updated; is it mounted read-write?")]
    Write(#[from] durable::Error),
    /// The system closure lacks a file an entry needs.
    #[error("system {system} has no `{file}`; it is not a bootable NixOS system")]
    NotBootable {
        /// The system directory.
        system: String,
        /// `kernel`, `initrd` or `kernel-params`.
        file: &'static str,
    },
    /// No entry with this id exists.
    #[error(
        "boot entry `{0}` does not exist in the ESP; run `osiris update status` to see the entries"
    )]
    NoSuchEntry(String),
    /// The UKI's bytes do not hash to what the signed manifest names.
    #[error(
        "kernel image {file} has SHA-256 {actual}, but the signed manifest names {expected}; it was altered or is not this release's image, and nothing was written to the ESP"
    )]
    UkiHash {
        /// The UKI file read.
        file: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The UKI source or a directory on the ESP is a symlink or not a regular file/directory.
    #[error(
        "{path} is a symlink or not a regular {what}; refusing to stage a kernel image through it (nothing was written)"
    )]
    NotRegular {
        /// The offending path.
        path: PathBuf,
        /// `file` or `directory`.
        what: &'static str,
    },
    /// The UKI's target directory resolves outside the ESP.
    #[error(
        "{dir} resolves outside the EFI system partition {esp}; refusing to stage a kernel image there (nothing was written)"
    )]
    OutsideEsp {
        /// `EFI/Linux` on the ESP.
        dir: PathBuf,
        /// The ESP mount point.
        esp: PathBuf,
    },
    /// A UKI older than an entry the boot loader still considers good.
    #[error(
        "kernel image {offered} is older than boot entry `{newer}` ({newer_version}); versions never go backwards, nothing was written"
    )]
    Backwards {
        /// The offered version.
        offered: String,
        /// The newer entry's id.
        newer: String,
        /// Its version.
        newer_version: String,
    },
    /// An entry id would escape the entries directory or is otherwise unusable.
    #[error("boot entry id `{0}` is invalid: use letters, digits, `.`, `_` and `-`")]
    BadId(String),
}

impl BootEntry {
    /// True when the boot loader has given up on this entry (`+0`).
    pub fn is_bad(&self) -> bool {
        self.counter.is_some_and(|counter| counter.tries_left == 0)
    }
}

impl EntrySpec {
    /// The entry for release `version` of `system`, readable at `system_dir`.
    pub fn new(version: &str, system: &str, system_dir: &Path) -> EntrySpec {
        EntrySpec {
            id: format!("{ENTRY_PREFIX}{version}"),
            version: version.to_owned(),
            system: system.to_owned(),
            system_dir: system_dir.to_path_buf(),
            uki: None,
        }
    }

    /// The same release staged as a type #2 entry from the signed UKI `file` (hash `sha256`).
    pub fn with_uki(mut self, file: &Path, sha256: &str) -> EntrySpec {
        self.id = format!("{UKI_PREFIX}{}.efi", self.version);
        self.uki = Some(UkiSource {
            file: file.to_path_buf(),
            sha256: sha256.to_owned(),
        });
        self
    }
}

impl SystemdBoot {
    /// systemd-boot on the ESP mounted at `esp` (e.g. `/boot`); `efivars` is normally
    /// `/sys/firmware/efi/efivars`.
    pub fn new(esp: &Path, efivars: &Path) -> SystemdBoot {
        SystemdBoot {
            esp: esp.to_path_buf(),
            efivars: efivars.to_path_buf(),
        }
    }

    /// What systemd-boot itself does at power-on: pick the next entry, count the attempt
    /// (`+LEFT-DONE` → `+(LEFT-1)-(DONE+1)`) and publish the choice in `LoaderEntrySelected`.
    /// Used by tests and by the VM test to emulate the firmware; the appliance never calls it.
    pub fn emulate_firmware_boot(&mut self) -> Result<Option<String>, BootError> {
        let Some(entry) = self.next_boot()? else {
            return Ok(None);
        };
        if let Some(counter) = entry.counter.filter(|counter| counter.tries_left > 0) {
            self.rename(
                &entry,
                Some(Counter {
                    tries_left: counter.tries_left - 1,
                    tries_done: counter.tries_done + 1,
                }),
            )?;
        }
        let var = self.efivar_path();
        let mut bytes = vec![7, 0, 0, 0];
        let selected = if is_uki_id(&entry.id) {
            format!("{}\0", entry.id)
        } else {
            format!("{}.conf\0", entry.id)
        };
        for unit in selected.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        fs::create_dir_all(&self.efivars).map_err(io_error("creating", &self.efivars))?;
        fs::write(&var, bytes).map_err(io_error("writing", &var))?;
        Ok(Some(entry.id))
    }

    fn entries_dir(&self) -> PathBuf {
        self.esp.join("loader").join("entries")
    }

    fn uki_dir(&self) -> PathBuf {
        self.esp.join("EFI").join("Linux")
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        if is_uki_id(id) {
            self.uki_dir()
        } else {
            self.entries_dir()
        }
    }

    fn efivar_path(&self) -> PathBuf {
        self.efivars
            .join(format!("LoaderEntrySelected-{LOADER_GUID}"))
    }

    fn find(&self, id: &str) -> Result<BootEntry, BootError> {
        self.entries()?
            .into_iter()
            .find(|entry| entry.id == id)
            .ok_or_else(|| BootError::NoSuchEntry(id.to_owned()))
    }

    fn file_name(id: &str, counter: Option<Counter>) -> String {
        let (base, ext) = match id.strip_suffix(".efi") {
            Some(base) => (base, "efi"),
            None => (id, "conf"),
        };
        match counter {
            None => format!("{base}.{ext}"),
            Some(Counter {
                tries_left,
                tries_done: 0,
            }) => format!("{base}+{tries_left}.{ext}"),
            Some(Counter {
                tries_left,
                tries_done,
            }) => format!("{base}+{tries_left}-{tries_done}.{ext}"),
        }
    }

    /// Stages a signed UKI as a type #2 entry. Every check comes before the first write: the
    /// version, the source (a regular file, not a symlink, with the manifest's SHA-256), the
    /// target directory (inside the ESP, no symlinks), and no good entry newer than it.
    fn install_uki(
        &mut self,
        spec: &EntrySpec,
        uki: &UkiSource,
        tries: u32,
    ) -> Result<BootEntry, BootError> {
        let offered: Version = spec
            .version
            .parse()
            .map_err(|_| BootError::BadId(spec.id.clone()))?;
        if spec.id != format!("{UKI_PREFIX}{offered}.efi") {
            return Err(BootError::BadId(spec.id.clone()));
        }
        let not_regular = |path: &Path, what| BootError::NotRegular {
            path: path.to_path_buf(),
            what,
        };
        let meta = fs::symlink_metadata(&uki.file).map_err(io_error("reading", &uki.file))?;
        if !meta.file_type().is_file() {
            return Err(not_regular(&uki.file, "file"));
        }
        let bytes = fs::read(&uki.file).map_err(io_error("reading", &uki.file))?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != uki.sha256 {
            return Err(BootError::UkiHash {
                file: uki.file.clone(),
                expected: uki.sha256.clone(),
                actual,
            });
        }
        // `EFI` and `EFI/Linux` may not exist yet; those that do must be real directories, and
        // the target must resolve inside the ESP.
        let dir = self.uki_dir();
        for path in [self.esp.join("EFI"), dir.clone()] {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_dir() => {}
                Ok(_) => return Err(not_regular(&path, "directory")),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_error("reading", &path)(err)),
            }
        }
        if dir.exists() {
            let esp = fs::canonicalize(&self.esp).map_err(io_error("reading", &self.esp))?;
            let real = fs::canonicalize(&dir).map_err(io_error("reading", &dir))?;
            if real != esp.join("EFI").join("Linux") {
                return Err(BootError::OutsideEsp {
                    dir,
                    esp: self.esp.clone(),
                });
            }
        }
        let entries = self.entries()?;
        if let Some(newer) = entries.iter().find(|entry| {
            !entry.is_bad()
                && entry
                    .version
                    .parse::<Version>()
                    .is_ok_and(|version| version > offered)
        }) {
            return Err(BootError::Backwards {
                offered: spec.version.clone(),
                newer: newer.id.clone(),
                newer_version: newer.version.clone(),
            });
        }
        // Garbage collection before the write (an ESP holds few UKIs): keep the running entry
        // (the rollback target); drop every other UKI of ours, this release's old copy included.
        // Type #1 entries are left alone (they are small and the installer may have written them).
        // Without `LoaderEntrySelected`, the entry the loader would pick now is the target.
        let keep = match self.booted()? {
            Some(booted) => Some(booted),
            None => entries
                .iter()
                .find(|entry| !entry.is_bad() && entry.id != spec.id)
                .map(|entry| entry.id.clone()),
        };
        for old in entries.iter().filter(|entry| {
            is_uki_id(&entry.id)
                && entry.id.starts_with(UKI_PREFIX)
                && Some(&entry.id) != keep.as_ref()
        }) {
            let path = dir.join(Self::file_name(&old.id, old.counter));
            fs::remove_file(&path).map_err(io_error("removing", &path))?;
        }
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let counter = Some(Counter {
            tries_left: tries,
            tries_done: 0,
        });
        write_synced(&dir.join(Self::file_name(&spec.id, counter)), &bytes)?;
        write_loader_conf(&self.esp)?;
        self.find(&spec.id)
    }

    fn rename(&self, entry: &BootEntry, counter: Option<Counter>) -> Result<(), BootError> {
        let dir = self.dir_of(&entry.id);
        let from = dir.join(Self::file_name(&entry.id, entry.counter));
        let to = dir.join(Self::file_name(&entry.id, counter));
        fs::rename(&from, &to).map_err(io_error("renaming", &from))?;
        Ok(durable::sync_dir(&dir)?)
    }
}

impl BootLoader for SystemdBoot {
    fn entries(&self) -> Result<Vec<BootEntry>, BootError> {
        let dir = self.entries_dir();
        let read = match fs::read_dir(&dir) {
            Ok(read) => Some(read),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(io_error("reading", &dir)(err)),
        };
        let mut entries = Vec::new();
        for item in read.into_iter().flatten() {
            let item = item.map_err(io_error("reading", &dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some((id, counter)) = parse_file_name(&name) else {
                continue;
            };
            if is_uki_id(&id) {
                continue;
            }
            let path = item.path();
            let text = fs::read_to_string(&path).map_err(io_error("reading", &path))?;
            let field = |key: &str| {
                text.lines()
                    .filter_map(|line| line.trim().split_once(char::is_whitespace))
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.trim().to_owned())
            };
            let system = field("options")
                .and_then(|options| {
                    options
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("init="))
                        .map(|init| init.trim_end_matches("/init").to_owned())
                })
                .unwrap_or_default();
            entries.push(BootEntry {
                id,
                version: field("version").unwrap_or_default(),
                system,
                counter,
            });
        }
        let uki_dir = self.uki_dir();
        match fs::read_dir(&uki_dir) {
            Ok(read) => {
                for item in read {
                    let item = item.map_err(io_error("reading", &uki_dir))?;
                    let name = item.file_name().to_string_lossy().into_owned();
                    let Some((id, counter)) = parse_file_name(&name) else {
                        continue;
                    };
                    let Some(version) = id
                        .strip_prefix(UKI_PREFIX)
                        .and_then(|rest| rest.strip_suffix(".efi"))
                    else {
                        continue;
                    };
                    entries.push(BootEntry {
                        version: version.to_owned(),
                        id,
                        // Built into the signed image; the updater does not read PE sections.
                        system: String::new(),
                        counter,
                    });
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error("reading", &uki_dir)(err)),
        }
        entries.sort_by(compare_entries);
        Ok(entries)
    }

    fn install(&mut self, spec: &EntrySpec, tries: u32) -> Result<BootEntry, BootError> {
        if let Some(uki) = &spec.uki {
            return self.install_uki(spec, uki, tries);
        }
        if spec.id.is_empty()
            || spec.id.starts_with('.')
            || !spec
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err(BootError::BadId(spec.id.clone()));
        }
        let read = |file: &'static str| -> Result<Vec<u8>, BootError> {
            fs::read(spec.system_dir.join(file)).map_err(|_| BootError::NotBootable {
                system: spec.system.clone(),
                file,
            })
        };
        let kernel = read("kernel")?;
        let initrd = read("initrd")?;
        let params = String::from_utf8_lossy(&read("kernel-params")?)
            .trim()
            .to_owned();
        let image_dir = self.esp.join("EFI").join("osiris");
        fs::create_dir_all(&image_dir).map_err(io_error("creating", &image_dir))?;
        let linux_name = format!("{}-linux.efi", spec.id);
        let initrd_name = format!("{}-initrd.efi", spec.id);
        write_synced(&image_dir.join(&linux_name), &kernel)?;
        write_synced(&image_dir.join(&initrd_name), &initrd)?;
        let dir = self.entries_dir();
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        // A re-staged release replaces its old entry, whatever its counter.
        if let Ok(old) = self.find(&spec.id) {
            let old_path = dir.join(Self::file_name(&old.id, old.counter));
            fs::remove_file(&old_path).map_err(io_error("removing", &old_path))?;
        }
        let counter = Some(Counter {
            tries_left: tries,
            tries_done: 0,
        });
        let text = format!(
            "title OsirisCare {version}\nversion {version}\nsort-key osiris\nlinux /EFI/osiris/{linux_name}\ninitrd /EFI/osiris/{initrd_name}\noptions init={system}/init {params}\n",
            version = spec.version,
            system = spec.system,
        );
        write_synced(
            &dir.join(Self::file_name(&spec.id, counter)),
            text.as_bytes(),
        )?;
        write_loader_conf(&self.esp)?;
        self.find(&spec.id)
    }

    fn booted(&self) -> Result<Option<String>, BootError> {
        let var = self.efivar_path();
        let bytes = match fs::read(&var) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error("reading", &var)(err)),
        };
        let units: Vec<u16> = bytes
            .get(4..)
            .unwrap_or_default()
            .as_chunks::<2>()
            .0
            .iter()
            .map(|pair| u16::from_le_bytes(*pair))
            .take_while(|unit| *unit != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        let id = parse_file_name(&name).map_or(name.clone(), |(id, _)| id);
        Ok(Some(id))
    }

    fn bless(&mut self, id: &str) -> Result<(), BootError> {
        let entry = self.find(id)?;
        if entry.counter.is_some() {
            self.rename(&entry, None)?;
        }
        Ok(())
    }

    fn mark_bad(&mut self, id: &str) -> Result<(), BootError> {
        let entry = self.find(id)?;
        let done = entry.counter.map_or(0, |c| c.tries_left + c.tries_done);
        self.rename(
            &entry,
            Some(Counter {
                tries_left: 0,
                tries_done: done.max(1),
            }),
        )
    }

    fn next_boot(&self) -> Result<Option<BootEntry>, BootError> {
        Ok(self.entries()?.into_iter().next())
    }
}

/// `osiris-1.2.0+2-1.conf` → (`osiris-1.2.0`, counter 2 left, 1 done);
/// `osiris_1.2.0+0-3.efi` → (`osiris_1.2.0.efi`, counter 0 left, 3 done).
fn parse_file_name(name: &str) -> Option<(String, Option<Counter>)> {
    let (stem, suffix) = match name.strip_suffix(".conf") {
        Some(stem) => (stem, ""),
        None => (name.strip_suffix(".efi")?, ".efi"),
    };
    if name.starts_with('.') {
        return None;
    }
    if let Some((id, counter)) = stem.rsplit_once('+') {
        let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
        if let (Ok(tries_left), Ok(tries_done)) = (left.parse(), done.parse()) {
            return Some((
                format!("{id}{suffix}"),
                Some(Counter {
                    tries_left,
                    tries_done,
                }),
            ));
        }
    }
    Some((format!("{stem}{suffix}"), None))
}

/// Type #2 entry ids keep their `.efi`; type #1 ids have no extension.
fn is_uki_id(id: &str) -> bool {
    id.ends_with(".efi")
}

fn write_loader_conf(esp: &Path) -> Result<(), BootError> {
    let dir = esp.join("loader");
    fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
    write_synced(
        &dir.join("loader.conf"),
        // No `default` line: systemd-boot then boots the first entry in its order, which puts
        // entries with tries left before bad ones and newer versions first. A `default`
        // pattern could still select a known-bad entry and defeat the rollback.
        b"timeout 0\nconsole-mode keep\neditor no\n",
    )
}

/// systemd-boot's order for entries sharing one sort-key (every entry here has `sort-key osiris`):
/// bad entries last, then newest version first, then id.
fn compare_entries(a: &BootEntry, b: &BootEntry) -> Ordering {
    a.is_bad()
        .cmp(&b.is_bad())
        .then_with(
            || match (a.version.parse::<Version>(), b.version.parse::<Version>()) {
                (Ok(va), Ok(vb)) => vb.cmp(&va),
                _ => b.version.cmp(&a.version),
            },
        )
        .then_with(|| b.id.cmp(&a.id))
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BootError {
    let path = path.to_path_buf();
    move |source| BootError::Io {
        action,
        path,
        source,
    }
}

/// Replaces `path` durably, so a power cut leaves the old or the new file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BootError> {
    Ok(durable::write(path, bytes, 0o644)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_like_systemd_boot() {
        let c = |tries_left, tries_done| {
            Some(Counter {
                tries_left,
                tries_done,
            })
        };
        assert_eq!(
            parse_file_name("osiris-1.2.0+3.conf"),
            Some(("osiris-1.2.0".to_owned(), c(3, 0)))
        );
        assert_eq!(
            parse_file_name("osiris-1.2.0+0-3.conf"),
            Some(("osiris-1.2.0".to_owned(), c(0, 3)))
        );
        assert_eq!(
            parse_file_name("osiris-1.2.0.conf"),
            Some(("osiris-1.2.0".to_owned(), None))
        );
        assert_eq!(parse_file_name("loader.txt"), None);
        assert_eq!(
            SystemdBoot::file_name("osiris-1.2.0", c(2, 1)),
            "osiris-1.2.0+2-1.conf"
        );
    }
}

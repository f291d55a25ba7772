//! Boot entries with automatic boot assessment: the [`BootLoader`] seam and its systemd-boot
//! implementation over an EFI system partition (Boot Loader Specification type #1 entries whose
//! file names carry `+LEFT[-DONE]` try counters).

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use update_manifest::Version;

/// The systemd-boot loader-interface vendor GUID of `LoaderEntrySelected`.
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// Entry ids written by the updater (and the installer) start with this.
pub const ENTRY_PREFIX: &str = "osiris-";

/// A boot entry as the boot loader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// Entry id: the file name without counter and `.conf`, e.g. `osiris-1.2.0`.
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
        }
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
        for unit in format!("{}.conf\0", entry.id).encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        fs::create_dir_all(&self.efivars).map_err(io_error("creating", &self.efivars))?;
        fs::write(&var, bytes).map_err(io_error("writing", &var))?;
        Ok(Some(entry.id))
    }

    fn entries_dir(&self) -> PathBuf {
        self.esp.join("loader").join("entries")
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
        match counter {
            None => format!("{id}.conf"),
            Some(Counter {
                tries_left,
                tries_done: 0,
            }) => format!("{id}+{tries_left}.conf"),
            Some(Counter {
                tries_left,
                tries_done,
            }) => format!("{id}+{tries_left}-{tries_done}.conf"),
        }
    }

    fn rename(&self, entry: &BootEntry, counter: Option<Counter>) -> Result<(), BootError> {
        let dir = self.entries_dir();
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
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_error("reading", &dir)(err)),
        };
        let mut entries = Vec::new();
        for item in read {
            let item = item.map_err(io_error("reading", &dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some((id, counter)) = parse_file_name(&name) else {
                continue;
            };
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
        entries.sort_by(compare_entries);
        Ok(entries)
    }

    fn install(&mut self, spec: &EntrySpec, tries: u32) -> Result<BootEntry, BootError> {
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
        let loader_conf = self.esp.join("loader").join("loader.conf");
        write_synced(
            &loader_conf,
            // No `default` line: systemd-boot then boots the first entry in its order, which puts
            // entries with tries left before bad ones and newer versions first. A `default`
            // pattern could still select a known-bad entry and defeat the rollback.
            b"timeout 0\nconsole-mode keep\neditor no\n",
        )?;
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

/// `osiris-1.2.0+2-1.conf` → (`osiris-1.2.0`, counter 2 left, 1 done).
fn parse_file_name(name: &str) -> Option<(String, Option<Counter>)> {
    let stem = name.strip_suffix(".conf")?;
    if let Some((id, counter)) = stem.rsplit_once('+') {
        let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
        if let (Ok(tries_left), Ok(tries_done)) = (left.parse(), done.parse()) {
            return Some((
                id.to_owned(),
                Some(Counter {
                    tries_left,
                    tries_done,
                }),
            ));
        }
    }
    Some((stem.to_owned(), None))
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

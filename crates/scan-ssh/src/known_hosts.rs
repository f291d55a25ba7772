//! Pinned SSH host keys: the `known_hosts` file, trust on first contact, enforced afterwards.
//!
//! One line per pin: `<name> <address>:<port> <key type> <base64 key>` (IPv6 addresses in
//! brackets). Lines starting with `#` and blank lines are ignored. The file is replaced
//! durably (`durable::write`: temporary sibling, fsync, rename, fsync the directory) with mode 0600.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// The pinned host keys of all SSH targets, shared by their transports.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

/// A host key as the server presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    key_type: String,
    blob: Vec<u8>,
}

/// Why the `known_hosts` file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KnownHostsError {
    /// The file exists but cannot be read.
    #[error("cannot read {path} (check that the data directory is readable)")]
    Read { path: String, source: io::Error },
    /// A line does not have the expected shape.
    #[error(
        "{path} line {line}: {reason}; expected `<name> <address>:<port> <key type> <base64 key>`, fix or delete the line"
    )]
    Malformed {
        path: String,
        line: usize,
        reason: String,
    },
    /// The new pin could not be saved.
    #[error("cannot write {path} (check that the data directory is writable)")]
    Write {
        path: String,
        source: durable::Error,
    },
}

impl KnownHosts {
    /// Loads the pins from `path`; a missing file means no pins yet (it is created on the first pin).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KnownHostsError> {
        let path = path.into();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(KnownHostsError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut entries = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = Entry::parse(line).map_err(|reason| KnownHostsError::Malformed {
                path: path.display().to_string(),
                line: idx + 1,
                reason,
            })?;
            entries.push(entry);
        }
        Ok(Self {
            path,
            entries: Mutex::new(entries),
        })
    }

    /// Where the pins are stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key pinned for the target called `name`, if any.
    pub fn pinned(&self, name: &str) -> Option<HostKey> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.key.clone())
    }

    /// Whether any key is pinned for this target (by name, or by address and port).
    pub(crate) fn is_pinned(&self, name: &str, endpoint: &str) -> bool {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .any(|e| e.name == name || e.endpoint == endpoint)
    }

    /// Compares `presented` with the pins for this target (by name or by address and port)
    /// and pins it when there is none yet. Check and pin happen under one lock.
    pub(crate) fn check_or_pin(
        &self,
        name: &str,
        endpoint: &str,
        presented: &HostKey,
    ) -> Result<Verdict, KnownHostsError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut matched = false;
        for entry in entries
            .iter()
            .filter(|e| e.name == name || e.endpoint == endpoint)
        {
            if entry.key != *presented {
                return Ok(Verdict::Changed {
                    pinned: entry.key.clone(),
                });
            }
            matched = true;
        }
        if matched {
            return Ok(Verdict::Known);
        }
        entries.push(Entry {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            key: presented.clone(),
        });
        if let Err(err) = self.save(&entries) {
            entries.pop();
            return Err(err);
        }
        Ok(Verdict::Pinned)
    }

    fn save(&self, entries: &[Entry]) -> Result<(), KnownHostsError> {
        let mut text = String::from(
            "# Pinned SSH host keys (osiris). Remove a line to re-pin after checking the new key.\n",
        );
        for entry in entries {
            text.push_str(&entry.line());
            text.push('\n');
        }
        durable::write(&self.path, text.as_bytes(), 0o600).map_err(|source| {
            KnownHostsError::Write {
                path: self.path.display().to_string(),
                source,
            }
        })
    }
}

impl HostKey {
    /// A key from the SSH wire encoding (`blob`), whose first field names the key type.
    pub fn from_blob(blob: &[u8]) -> Option<Self> {
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        let key_type = std::str::from_utf8(blob.get(4..4 + len)?).ok()?;
        if key_type.is_empty() || !key_type.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(Self {
            key_type: key_type.to_owned(),
            blob: blob.to_vec(),
        })
    }

    /// The key type, e.g. `ssh-ed25519`.
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The OpenSSH fingerprint, `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }
}

/// The outcome of [`KnownHosts::check_or_pin`].
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The presented key matches the pin.
    Known,
    /// First contact: the key is now pinned.
    Pinned,
    /// A different key is pinned.
    Changed { pinned: HostKey },
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    endpoint: String,
    key: HostKey,
}

impl Entry {
    fn parse(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, endpoint, key_type, key] = fields[..] else {
            return Err(format!("expected 4 fields, found {}", fields.len()));
        };
        if endpoint
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(format!("{endpoint:?} is not <address>:<port>"));
        }
        let blob = STANDARD
            .decode(key)
            .map_err(|err| format!("key is not base64: {err}"))?;
        let key = HostKey::from_blob(&blob).ok_or("key is not an SSH public key blob")?;
        if key.key_type != key_type {
            return Err(format!(
                "key type {key_type} does not match the key ({})",
                key.key_type
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            key,
        })
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.name,
            self.endpoint,
            self.key.key_type,
            STANDARD.encode(&self.key.blob)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key(key_type: &str, body: &[u8]) -> HostKey {
        let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(key_type.as_bytes());
        blob.extend_from_slice(body);
        HostKey::from_blob(&blob).expect("valid blob")
    }

    #[test]
    fn pins_on_first_contact_then_enforces_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let hosts = KnownHosts::open(&path).expect("open missing file");
        let first = key("ssh-ed25519", b"one");
        let other = key("ssh-ed25519", b"two");
        assert!(matches!(
            hosts.check_or_pin("db", "10.0.0.5:22", &first),
            Ok(Verdict::Pinned)
        ));
        assert!(matches!(
            hosts.check_or_pin("db", "10.0.0.5:22", &first),
            Ok(Verdict::Known)
        ));
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let reopened = KnownHosts::open(&path).expect("reopen");
        assert_eq!(reopened.pinned("db"), Some(first.clone()));
        // Same name at a new address, or a new name at the same address: still the old pin.
        for (name, endpoint) in [("db", "10.0.0.6:22"), ("db2", "10.0.0.5:22")] {
            match reopened.check_or_pin(name, endpoint, &other) {
                Ok(Verdict::Changed { pinned }) => assert_eq!(pinned, first),
                res => panic!("expected Changed for {name} {endpoint}, got {res:?}"),
            }
        }
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("db 10.0.0.5:22 ssh-ed25519 "), "{text}");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        fs::write(&path, "# comment\n\ndb 10.0.0.5 ssh-ed25519 AAAA\n").expect("write");
        let err = KnownHosts::open(&path).expect_err("malformed");
        let message = err.to_string();
        assert!(message.contains("line 3"), "{message}");
    }
}

//! The state directory: what enrollment leaves on disk and `run` and `status` read. Every file
//! is written whole through `durable` (a crash leaves the old or the new contents); on Unix
//! 0600 in a 0700 directory, on Windows in a directory owned by Administrators whose protected
//! ACL lets only SYSTEM and Administrators in (`agent_windows::acl`), which every file inside
//! inherits.
//!
//! | file | contents | written by |
//! |---|---|---|
//! | `state.json` | the agent's ID, the gateway's address, the CA pin, when it enrolled; its presence means "enrolled" | `enroll` (last) |
//! | `tls.key` | the TLS private key (ECDSA P-256, PKCS#8 PEM) | `enroll` |
//! | `device.key` | the Ed25519 device key's seed as the platform keeps it at rest | `enroll` |
//! | `client.pem` | the client certificate chain, leaf first (PEM) | `enroll`, a renewal |
//! | `agent-ca.pem` | the appliance's agent CA (PEM): the only root the agent trusts | `enroll` |
//! | `config.json` | the `AgentConfig` in force | `enroll`, a new configuration |
//! | `queue.sqlite` | the offline queue (`agent-queue`; with `-wal` while open) | `run` |
//! | `status.json` | the running agent's connection and queue state | `run`, each heartbeat |

use std::io;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use agent_proto::v1::{AgentConfig, CheckSchedule, QueueLimits};
use base64::Engine;
use ed25519_dalek::SigningKey;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use crate::platform::{Platform, PlatformError};

/// The identity file; its presence means the agent is enrolled.
pub const STATE_FILE: &str = "state.json";
/// The TLS private key.
pub const TLS_KEY_FILE: &str = "tls.key";
/// The device key's seed, as the platform protects it.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// The client certificate chain.
pub const CERTIFICATE_FILE: &str = "client.pem";
/// The agent CA.
pub const CA_FILE: &str = "agent-ca.pem";
/// The configuration in force.
pub const CONFIG_FILE: &str = "config.json";
/// The offline queue.
pub const QUEUE_FILE: &str = "queue.sqlite";
/// The running agent's status.
pub const STATUS_FILE: &str = "status.json";

/// The state file's format version.
const FORMAT: u32 = 1;

/// The agent's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// Who the agent is and where it reports (`state.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The agent's ID on its appliance.
    pub agent_id: String,
    /// The gateway's address, `HOST:PORT`.
    pub gateway: String,
    /// The CA pin it enrolled with.
    pub ca_pin: String,
    /// When it enrolled, milliseconds since 1970 UTC.
    pub enrolled_at_unix_ms: i64,
}

/// Everything an enrolled agent holds.
pub struct Enrollment {
    /// Who it is.
    pub identity: Identity,
    /// The TLS private key, PKCS#8 PEM.
    pub tls_key_pem: zeroize::Zeroizing<String>,
    /// The device key.
    pub device_key: SigningKey,
    /// The client certificate chain, leaf first, DER.
    pub certificate_chain: Vec<Vec<u8>>,
    /// The agent CA, DER.
    pub agent_ca: Vec<u8>,
    /// The configuration in force.
    pub config: AgentConfig,
}

/// The state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// There is no `state.json`.
    #[error(
        "this machine is not enrolled ({} has no {STATE_FILE}): run `osiris-agent enroll` first",
        dir.display()
    )]
    NotEnrolled {
        /// The state directory.
        dir: PathBuf,
    },
    /// A file could not be read.
    #[error("reading {}{}", path.display(), root_hint(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("writing the agent's state")]
    Write(#[source] durable::Error),
    /// The directory could not be created.
    #[error("creating {}{}", path.display(), root_hint(source))]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file holds something else than the agent wrote.
    #[error("{} is damaged: {problem}; enroll this machine again", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The device key could not be sealed or opened.
    #[error("the device key in {}", path.display())]
    DeviceKey {
        /// The key file.
        path: PathBuf,
        /// What the platform said.
        #[source]
        source: PlatformError,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    format: u32,
    agent_id: String,
    gateway: String,
    ca_pin: String,
    enrolled_at_unix_ms: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    revision: u64,
    checks: Vec<ScheduleFile>,
    heartbeat_interval_seconds: u32,
    full_report_interval_seconds: u32,
    queue: QueueFile,
    protocol_version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    check_id: String,
    interval_seconds: u32,
    jitter_seconds: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFile {
    max_items: u64,
    max_bytes: u64,
    max_age_seconds: u32,
}

impl StateDir {
    /// The state directory at `path` (nothing is read yet).
    #[must_use]
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of one of its files.
    #[must_use]
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether an enrollment is stored here.
    #[must_use]
    pub fn is_enrolled(&self) -> bool {
        self.file(STATE_FILE).exists()
    }

    /// Creates the directory if it is missing and closes it to everyone but the agent's
    /// account: on Unix mode 0700; on Windows owner Administrators and a protected ACL for
    /// SYSTEM and Administrators only (also when it existed before).
    ///
    /// # Errors
    /// When it cannot be created or its mode or ACL cannot be set.
    pub fn create(&self) -> Result<(), StateError> {
        let error = |source| StateError::CreateDir {
            path: self.path.clone(),
            source,
        };
        #[cfg(unix)]
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.path)
                .map_err(error)?;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700))
                .map_err(error)
        }
        #[cfg(windows)]
        {
            std::fs::create_dir_all(&self.path).map_err(error)?;
            agent_windows::acl::restrict_state_dir(&self.path)
                .map_err(|err| error(io::Error::other(err)))
        }
    }

    /// The identity, if enrolled.
    ///
    /// # Errors
    /// When `state.json` exists but cannot be read or understood.
    pub fn read_identity(&self) -> Result<Option<Identity>, StateError> {
        let path = self.file(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let file: IdentityFile = serde_json::from_str(&text).map_err(|err| corrupt(&path, err))?;
        if file.format != FORMAT {
            return Err(corrupt(
                &path,
                format!(
                    "format {} is not the format {FORMAT} this agent writes",
                    file.format
                ),
            ));
        }
        Ok(Some(Identity {
            agent_id: file.agent_id,
            gateway: file.gateway,
            ca_pin: file.ca_pin,
            enrolled_at_unix_ms: file.enrolled_at_unix_ms,
        }))
    }

    /// Everything stored by enrollment (and since updated).
    ///
    /// # Errors
    /// [`StateError::NotEnrolled`] without `state.json`; otherwise a file that cannot be read or
    /// understood.
    pub fn load(&self, platform: &dyn Platform) -> Result<Enrollment, StateError> {
        let identity = self
            .read_identity()?
            .ok_or_else(|| StateError::NotEnrolled {
                dir: self.path.clone(),
            })?;
        let tls_key_pem = zeroize::Zeroizing::new(self.read_text(TLS_KEY_FILE)?);
        let device_path = self.file(DEVICE_KEY_FILE);
        let sealed = std::fs::read(&device_path).map_err(|source| StateError::Read {
            path: device_path.clone(),
            source,
        })?;
        let seed = platform
            .open_device_key(&sealed)
            .map_err(|source| StateError::DeviceKey {
                path: device_path,
                source,
            })?;
        let device_key = SigningKey::from_bytes(&seed);
        let certificate_chain = self.read_certificates(CERTIFICATE_FILE)?;
        let mut cas = self.read_certificates(CA_FILE)?;
        if cas.len() != 1 {
            return Err(corrupt(
                &self.file(CA_FILE),
                format!("it holds {} certificates; the agent CA is one", cas.len()),
            ));
        }
        let agent_ca = cas.remove(0);
        Ok(Enrollment {
            identity,
            tls_key_pem,
            device_key,
            certificate_chain,
            agent_ca,
            config: self.read_config()?,
        })
    }

    /// Writes a new enrollment: keys, certificates and configuration first, `state.json` last,
    /// so an interrupted enrollment is no enrollment. Creates the directory.
    ///
    /// # Errors
    /// When a file cannot be written or the platform cannot seal the device key.
    pub fn save_enrollment(
        &self,
        platform: &dyn Platform,
        enrollment: &Enrollment,
    ) -> Result<(), StateError> {
        self.create()?;
        self.write(TLS_KEY_FILE, enrollment.tls_key_pem.as_bytes())?;
        let seed = zeroize::Zeroizing::new(enrollment.device_key.to_bytes());
        let sealed = platform
            .seal_device_key(&seed)
            .map_err(|source| StateError::DeviceKey {
                path: self.file(DEVICE_KEY_FILE),
                source,
            })?;
        self.write(DEVICE_KEY_FILE, &sealed)?;
        self.save_certificate_chain(&enrollment.certificate_chain)?;
        self.write(CA_FILE, pem("CERTIFICATE", &enrollment.agent_ca).as_bytes())?;
        self.save_config(&enrollment.config)?;
        let identity = &enrollment.identity;
        let file = IdentityFile {
            format: FORMAT,
            agent_id: identity.agent_id.clone(),
            gateway: identity.gateway.clone(),
            ca_pin: identity.ca_pin.clone(),
            enrolled_at_unix_ms: identity.enrolled_at_unix_ms,
        };
        self.write(STATE_FILE, &json_bytes(&file))
    }

    /// Replaces the client certificate chain (after a renewal).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_certificate_chain(&self, chain: &[Vec<u8>]) -> Result<(), StateError> {
        let text: String = chain.iter().map(|der| pem("CERTIFICATE", der)).collect();
        self.write(CERTIFICATE_FILE, text.as_bytes())
    }

    /// Replaces the configuration in force.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_config(&self, config: &AgentConfig) -> Result<(), StateError> {
        let queue = config.queue.unwrap_or_default();
        let file = ConfigFile {
            revision: config.revision,
            checks: config
                .checks
                .iter()
                .map(|check| ScheduleFile {
                    check_id: check.check_id.clone(),
                    interval_seconds: check.interval_seconds,
                    jitter_seconds: check.jitter_seconds,
                })
                .collect(),
            heartbeat_interval_seconds: config.heartbeat_interval_seconds,
            full_report_interval_seconds: config.full_report_interval_seconds,
            queue: QueueFile {
                max_items: queue.max_items,
                max_bytes: queue.max_bytes,
                max_age_seconds: queue.max_age_seconds,
            },
            protocol_version: config.protocol_version,
        };
        self.write(CONFIG_FILE, &json_bytes(&file))
    }

    /// The configuration in force.
    ///
    /// # Errors
    /// When `config.json` cannot be read or understood.
    pub fn read_config(&self) -> Result<AgentConfig, StateError> {
        let path = self.file(CONFIG_FILE);
        let text = self.read_text(CONFIG_FILE)?;
        let file: ConfigFile = serde_json::from_str(&text).map_err(|err| corrupt(&path, err))?;
        Ok(AgentConfig {
            revision: file.revision,
            checks: file
                .checks
                .into_iter()
                .map(|check| CheckSchedule {
                    check_id: check.check_id,
                    interval_seconds: check.interval_seconds,
                    jitter_seconds: check.jitter_seconds,
                })
                .collect(),
            heartbeat_interval_seconds: file.heartbeat_interval_seconds,
            full_report_interval_seconds: file.full_report_interval_seconds,
            queue: Some(QueueLimits {
                max_items: file.queue.max_items,
                max_bytes: file.queue.max_bytes,
                max_age_seconds: file.queue.max_age_seconds,
            }),
            protocol_version: file.protocol_version,
        })
    }

    /// Writes `bytes` to the file `name`, 0600, durably.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        durable::write(&self.file(name), bytes, 0o600).map_err(StateError::Write)
    }

    fn read_text(&self, name: &str) -> Result<String, StateError> {
        let path = self.file(name);
        std::fs::read_to_string(&path).map_err(|source| StateError::Read { path, source })
    }

    fn read_certificates(&self, name: &str) -> Result<Vec<Vec<u8>>, StateError> {
        let path = self.file(name);
        let text = self.read_text(name)?;
        let certificates = CertificateDer::pem_slice_iter(text.as_bytes())
            .map(|cert| cert.map(|cert| cert.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| corrupt(&path, format!("{err:?}")))?;
        if certificates.is_empty() {
            return Err(corrupt(&path, "it holds no certificate"));
        }
        Ok(certificates)
    }
}

/// DER as PEM with the given label.
#[must_use]
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn corrupt(path: &Path, problem: impl ToString) -> StateError {
    StateError::Corrupt {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn root_hint(err: &io::Error) -> &'static str {
    if err.kind() != io::ErrorKind::PermissionDenied {
        ""
    } else if cfg!(windows) {
        " (the agent's state belongs to SYSTEM and Administrators: run as an administrator)"
    } else {
        " (the agent's state belongs to root: run as root)"
    }
}

//! Transport for Linux and Unix targets reached over SSH (libssh2 through the `ssh2` crate).
//!
//! Owns the target description, input validation before any socket is opened, host key
//! pinning (see [`KnownHosts`]) and running scripts as `sh -s` over one SSH connection per
//! session. The API is blocking; async callers run it on a blocking pool.

mod connection;
mod known_hosts;
mod pool;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use transport::{Session, Transport, TransportError};
use zeroize::Zeroizing;

pub use crate::known_hosts::{HostKey, KnownHosts, KnownHostsError};
pub use crate::pool::SessionPool;

/// One SSH target as the configuration describes it.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The target's name in the configuration; also the key of its pinned host key.
    pub name: String,
    /// An IP address or a DNS host name.
    pub address: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    /// Run scripts through `sudo -n` (the user needs password-less sudo).
    pub become_root: bool,
    /// Bound on TCP connect, handshake and authentication.
    pub connect_timeout: Duration,
    /// The host key fingerprint (`SHA256:…`) the administrator pinned in the configuration: any
    /// other key is refused before logging in. Without it, keys are pinned on first contact,
    /// except that a password is never sent to a server whose key is not pinned yet.
    pub host_key: Option<String>,
}

/// How to log in.
#[derive(Clone)]
#[non_exhaustive]
pub enum SshAuth {
    /// A private key file (ed25519 or RSA, without passphrase).
    Key { private_key: PathBuf },
    /// A password, read by the caller from a 0600 credential file. Never printed.
    Password { password: Zeroizing<String> },
    /// A private key held in memory (from the credential vault), in OpenSSH or PEM text form,
    /// without passphrase. Never printed, never written to disk.
    KeyData {
        name: String,
        private_key: Zeroizing<String>,
    },
}

/// Runs scripts on one target over SSH.
pub struct SshTransport {
    shared: Arc<connection::Shared>,
}

impl SshTransport {
    /// Checks the target (name, address and user) without touching the network.
    ///
    /// Returns [`TransportError::Connect`] naming the bad field when the address is neither an
    /// IP address nor a DNS host name, the user is not a plain Unix user name, or the name
    /// cannot be stored in `known_hosts`.
    pub fn new(target: SshTarget, known_hosts: Arc<KnownHosts>) -> Result<Self, TransportError> {
        validate::target(&target)?;
        Ok(Self {
            shared: Arc::new(connection::Shared::new(target, known_hosts, None)),
        })
    }

    /// [`SshTransport::new`], its connections kept warm in `pool` between sessions: a session
    /// takes an idle connection to the same target (same user, credentials and host key pin)
    /// when there is one, and gives its own back when it ends healthy. A kept connection that
    /// the server closed meanwhile is replaced by a new one before anything runs.
    pub fn pooled(
        target: SshTarget,
        known_hosts: Arc<KnownHosts>,
        pool: Arc<SessionPool>,
    ) -> Result<Self, TransportError> {
        validate::target(&target)?;
        Ok(Self {
            shared: Arc::new(connection::Shared::new(target, known_hosts, Some(pool))),
        })
    }
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshAuth::Key { private_key } => f
                .debug_struct("Key")
                .field("private_key", private_key)
                .finish(),
            SshAuth::Password { .. } => f
                .debug_struct("Password")
                .field("password", &"<redacted>")
                .finish(),
            SshAuth::KeyData { name, .. } => f
                .debug_struct("KeyData")
                .field("name", name)
                .field("private_key", &"<redacted>")
                .finish(),
        }
    }
}

impl fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshTransport")
            .field("target", &self.shared.target)
            .finish()
    }
}

impl Transport for SshTransport {
    fn describe(&self) -> String {
        self.shared.describe()
    }

    fn open(&self) -> Result<Box<dyn Session>, TransportError> {
        Ok(Box::new(connection::SshSession::open(Arc::clone(
            &self.shared,
        ))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_the_password() {
        let auth = SshAuth::Password {
            password: "hunter2-secret".to_owned().into(),
        };
        let target = SshTarget {
            name: "db".to_owned(),
            address: "10.0.0.5".to_owned(),
            port: 22,
            user: "root".to_owned(),
            auth,
            become_root: false,
            connect_timeout: Duration::from_secs(5),
            host_key: None,
        };
        let shown = format!("{target:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

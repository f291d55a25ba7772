//! Warm SSH connections kept between scans (`osirisd` keeps one pool), so a cycle does not pay
//! key exchange and login on every target: a session returns its healthy connection here when
//! it ends, and the next session to the same target, as the same user with the same
//! credentials and host key pin, takes it instead of connecting. Bounded in number and age.

use std::time::Duration;

use crate::connection::Connection;
use crate::{SshAuth, SshTarget};

/// Idle SSH connections, at most `max_idle`, none older than `max_age` since last used.
pub struct SessionPool(transport::pool::IdlePool<Connection>);

impl SessionPool {
    /// A pool of at most `max_idle` connections, each kept at most `max_age` unused.
    pub fn new(max_idle: usize, max_age: Duration) -> SessionPool {
        SessionPool(transport::pool::IdlePool::new(max_idle, max_age))
    }

    /// How many connections wait now.
    pub fn idle(&self) -> usize {
        self.0.idle()
    }

    /// Everything that decides where and as whom a connection is logged in.
    pub(crate) fn key(&self, target: &SshTarget) -> u64 {
        let auth: (u8, Option<&std::path::Path>, Option<&str>, &str) = match &target.auth {
            SshAuth::Key { private_key } => (0, Some(private_key), None, ""),
            SshAuth::Password { password } => (1, None, None, password.as_str()),
            SshAuth::KeyData { name, private_key } => (2, None, Some(name), private_key.as_str()),
        };
        self.0.key(&(
            &target.name,
            &target.address,
            target.port,
            &target.user,
            target.become_root,
            &target.host_key,
            auth,
        ))
    }

    /// The most recently used idle connection for `key`, if one is young enough.
    pub(crate) fn take(&self, key: u64) -> Option<Connection> {
        self.0.take(key)
    }

    /// Keeps `connection` for the next session with `key`; the oldest goes when full.
    pub(crate) fn put(&self, key: u64, connection: Connection) {
        self.0.put(key, connection);
    }
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

//! Warm SSH connections kept between scans (`osirisd` keeps one pool), so a cycle does not pay
//! key exchange and login on every target: a session returns its healthy connection here when
//! it ends, and the next session to the same target, as the same user with the same
//! credentials and host key pin, takes it instead of connecting. Bounded in number and age.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::{SshAuth, SshTarget};

/// Idle SSH connections, at most `max_idle`, none older than `max_age` since last used.
pub struct SessionPool {
    idle: Mutex<Vec<Idle>>,
    /// Per pool, so the keys (digests that cover credentials) mean nothing outside it.
    hasher: RandomState,
    max_idle: usize,
    max_age: Duration,
}

struct Idle {
    key: u64,
    connection: Connection,
    since: Instant,
}

impl SessionPool {
    /// A pool of at most `max_idle` connections, each kept at most `max_age` unused.
    pub fn new(max_idle: usize, max_age: Duration) -> SessionPool {
        SessionPool {
            idle: Mutex::new(Vec::new()),
            hasher: RandomState::new(),
            max_idle,
            max_age,
        }
    }

    /// How many connections wait now.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Everything that decides where and as whom a connection is logged in.
    pub(crate) fn key(&self, target: &SshTarget) -> u64 {
        let mut h = self.hasher.build_hasher();
        (
            &target.name,
            &target.address,
            target.port,
            &target.user,
            target.become_root,
            &target.host_key,
        )
            .hash(&mut h);
        match &target.auth {
            SshAuth::Key { private_key } => (0u8, private_key).hash(&mut h),
            SshAuth::Password { password } => (1u8, password.as_str()).hash(&mut h),
            SshAuth::KeyData { name, private_key } => {
                (2u8, name, private_key.as_str()).hash(&mut h);
            }
        }
        h.finish()
    }

    /// The most recently used idle connection for `key`, if one is young enough.
    pub(crate) fn take(&self, key: u64) -> Option<Connection> {
        let mut idle = self.idle.lock().ok()?;
        let max_age = self.max_age;
        idle.retain(|entry| entry.since.elapsed() < max_age);
        let at = idle.iter().rposition(|entry| entry.key == key)?;
        Some(idle.remove(at).connection)
    }

    /// Keeps `connection` for the next session with `key`; the oldest goes when full.
    pub(crate) fn put(&self, key: u64, connection: Connection) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let max_age = self.max_age;
        idle.retain(|entry| entry.since.elapsed() < max_age);
        if self.max_idle == 0 {
            return;
        }
        while idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push(Idle {
            key,
            connection,
            since: Instant::now(),
        });
    }
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("idle", &self.idle())
            .field("max_idle", &self.max_idle)
            .field("max_age", &self.max_age)
            .finish()
    }
}

//! Warm WinRS shells kept between scans (`osirisd` keeps one pool), so a cycle does not pay the
//! login and the Create/Delete Shell exchange on every Windows host: a session hands its healthy
//! shell back here when it ends, and the next session to the same host, as the same account with
//! the same credentials and trust, takes it instead of opening one. Bounded in number and age; a
//! kept shell the host dropped meanwhile (its `IdleTimeout`, a reboot) is replaced before the
//! first script runs, and that script runs once.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Auth, ShellWorker, Tls, WinRmTarget};

/// Idle WinRS shells, at most `max_idle`, none unused longer than `max_age`.
pub struct ShellPool {
    idle: Mutex<Vec<Idle>>,
    /// Per pool, so the keys (digests that cover credentials) mean nothing outside it.
    hasher: RandomState,
    max_idle: usize,
    max_age: Duration,
}

struct Idle {
    key: u64,
    shell: ShellWorker,
    since: Instant,
}

impl ShellPool {
    /// A pool of at most `max_idle` shells, each kept at most `max_age` unused (keep it under
    /// the hosts' WinRS `IdleTimeout`, two hours by default, or the host drops it first).
    pub fn new(max_idle: usize, max_age: Duration) -> ShellPool {
        ShellPool {
            idle: Mutex::new(Vec::new()),
            hasher: RandomState::new(),
            max_idle,
            max_age,
        }
    }

    /// How many shells wait now.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// Everything that decides where, how and as whom a shell is logged in.
    pub(crate) fn key(&self, target: &WinRmTarget) -> u64 {
        let mut h = self.hasher.build_hasher();
        (
            &target.name,
            &target.address,
            target.port,
            target.https,
            &target.user,
            target.password.as_str(),
            &target.server_name,
        )
            .hash(&mut h);
        match target.auth {
            Auth::Ntlm => 0u8,
            Auth::Basic => 1,
            Auth::Kerberos => 2,
        }
        .hash(&mut h);
        match &target.tls {
            Tls::SystemRoots => 0u8.hash(&mut h),
            Tls::CaFile(path) => (1u8, path).hash(&mut h),
            Tls::PinSha256(pin) => (2u8, pin).hash(&mut h),
        }
        h.finish()
    }

    /// The most recently used idle shell for `key`, if one is young enough.
    pub(crate) fn take(&self, key: u64) -> Option<ShellWorker> {
        let (found, expired) = {
            let mut idle = self.idle.lock().ok()?;
            let expired = self.expire(&mut idle);
            let found = idle
                .iter()
                .rposition(|entry| entry.key == key)
                .map(|at| idle.remove(at).shell);
            (found, expired)
        };
        // Closing a shell waits for the host (bounded): never while holding the lock.
        drop(expired);
        found
    }

    /// Keeps `shell` for the next session with `key`; the oldest goes when full.
    pub(crate) fn put(&self, key: u64, shell: ShellWorker) {
        let mut closing = Vec::new();
        if let Ok(mut idle) = self.idle.lock() {
            closing = self.expire(&mut idle);
            if self.max_idle == 0 {
                closing.push(shell);
            } else {
                while idle.len() >= self.max_idle {
                    closing.push(idle.remove(0).shell);
                }
                idle.push(Idle {
                    key,
                    shell,
                    since: Instant::now(),
                });
            }
        } else {
            closing.push(shell);
        }
        drop(closing);
    }

    fn expire(&self, idle: &mut Vec<Idle>) -> Vec<ShellWorker> {
        let mut expired = Vec::new();
        let mut at = 0;
        while at < idle.len() {
            if idle[at].since.elapsed() >= self.max_age {
                expired.push(idle.remove(at).shell);
            } else {
                at += 1;
            }
        }
        expired
    }
}

impl std::fmt::Debug for ShellPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellPool")
            .field("idle", &self.idle())
            .field("max_idle", &self.max_idle)
            .field("max_age", &self.max_age)
            .finish()
    }
}

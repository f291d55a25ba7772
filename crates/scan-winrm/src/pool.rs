//! Warm WinRS shells kept between scans (`osirisd` keeps one pool), so a cycle does not pay the
//! login and the Create/Delete Shell exchange on every Windows host: a session hands its healthy
//! shell back here when it ends, and the next session to the same host, as the same account with
//! the same credentials and trust, takes it instead of opening one. Bounded in number and age; a
//! kept shell the host dropped meanwhile (its `IdleTimeout`, a reboot) is replaced before the
//! first script runs, and that script runs once.

use std::time::Duration;

use crate::{Auth, ShellWorker, Tls, WinRmTarget};

/// Idle WinRS shells, at most `max_idle`, none unused longer than `max_age`.
pub struct ShellPool(transport::pool::IdlePool<ShellWorker>);

impl ShellPool {
    /// A pool of at most `max_idle` shells, each kept at most `max_age` unused (keep it under
    /// the hosts' WinRS `IdleTimeout`, two hours by default, or the host drops it first).
    pub fn new(max_idle: usize, max_age: Duration) -> ShellPool {
        ShellPool(transport::pool::IdlePool::new(max_idle, max_age))
    }

    /// How many shells wait now.
    pub fn idle(&self) -> usize {
        self.0.idle()
    }

    /// Everything that decides where, how and as whom a shell is logged in.
    pub(crate) fn key(&self, target: &WinRmTarget) -> u64 {
        let auth = match target.auth {
            Auth::Ntlm => 0u8,
            Auth::Basic => 1,
            Auth::Kerberos => 2,
        };
        let trust = match &target.tls {
            Tls::SystemRoots => (0u8, None, None),
            Tls::CaFile(path) => (1, Some(path), None),
            Tls::PinSha256(pin) => (2, None, Some(pin)),
        };
        self.0.key(&(
            &target.name,
            &target.address,
            target.port,
            target.https,
            &target.user,
            target.password.as_str(),
            &target.server_name,
            auth,
            trust,
        ))
    }

    /// The most recently used idle shell for `key`, if one is young enough.
    pub(crate) fn take(&self, key: u64) -> Option<ShellWorker> {
        self.0.take(key)
    }

    /// Keeps `shell` for the next session with `key`; the oldest goes when full.
    pub(crate) fn put(&self, key: u64, shell: ShellWorker) {
        self.0.put(key, shell);
    }
}

impl std::fmt::Debug for ShellPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

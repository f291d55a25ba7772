//! Idle sessions kept between uses, for transports whose login is worth keeping (SSH
//! connections, WinRS shells): bounded in number and idle age, looked up by a key the transport
//! derives from everything that decides where and as whom the session is logged in. What is
//! evicted is dropped outside the lock, since closing a session may wait for its host.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `max_idle` idle items, none unused longer than `max_age`.
pub struct IdlePool<T> {
    idle: Mutex<Vec<Idle<T>>>,
    /// Per pool, so the keys (digests that may cover credentials) mean nothing outside it.
    hasher: RandomState,
    max_idle: usize,
    max_age: Duration,
}

struct Idle<T> {
    key: u64,
    item: T,
    since: Instant,
}

impl<T> IdlePool<T> {
    /// A pool of at most `max_idle` items, each kept at most `max_age` unused.
    pub fn new(max_idle: usize, max_age: Duration) -> IdlePool<T> {
        IdlePool {
            idle: Mutex::new(Vec::new()),
            hasher: RandomState::new(),
            max_idle,
            max_age,
        }
    }

    /// How many items wait now.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// The key of whatever `identity` hashes (this pool's own keyed hash).
    pub fn key(&self, identity: &impl Hash) -> u64 {
        self.hasher.hash_one(identity)
    }

    /// The most recently kept item for `key`, if one is young enough.
    pub fn take(&self, key: u64) -> Option<T> {
        let (found, expired) = {
            let mut idle = self.idle.lock().ok()?;
            let expired = self.expire(&mut idle);
            let found = idle
                .iter()
                .rposition(|entry| entry.key == key)
                .map(|at| idle.remove(at).item);
            (found, expired)
        };
        drop(expired);
        found
    }

    /// Keeps `item` for the next use with `key`; the oldest goes when full.
    pub fn put(&self, key: u64, item: T) {
        let mut closing = Vec::new();
        if let Ok(mut idle) = self.idle.lock() {
            closing = self.expire(&mut idle);
            if self.max_idle == 0 {
                closing.push(item);
            } else {
                while idle.len() >= self.max_idle {
                    closing.push(idle.remove(0).item);
                }
                idle.push(Idle {
                    key,
                    item,
                    since: Instant::now(),
                });
            }
        } else {
            closing.push(item);
        }
        drop(closing);
    }

    fn expire(&self, idle: &mut Vec<Idle<T>>) -> Vec<T> {
        let mut expired = Vec::new();
        let mut at = 0;
        while at < idle.len() {
            if idle[at].since.elapsed() >= self.max_age {
                expired.push(idle.remove(at).item);
            } else {
                at += 1;
            }
        }
        expired
    }
}

impl<T> std::fmt::Debug for IdlePool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdlePool")
            .field("idle", &self.idle())
            .field("max_idle", &self.max_idle)
            .field("max_age", &self.max_age)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_found_by_key_bounded_in_number_and_age() {
        let pool = IdlePool::new(2, Duration::from_secs(600));
        let (a, b, c) = (pool.key(&"a"), pool.key(&"b"), pool.key(&"c"));
        assert_ne!(a, b);
        pool.put(a, "a1");
        pool.put(b, "b1");
        pool.put(a, "a2");
        assert_eq!(pool.idle(), 2, "the oldest went when full");
        assert_eq!(pool.take(a), Some("a2"));
        assert_eq!(pool.take(a), None, "a1 was evicted");
        assert_eq!(pool.take(c), None);
        assert_eq!(pool.take(b), Some("b1"));

        let aged = IdlePool::new(8, Duration::ZERO);
        aged.put(a, "old");
        assert_eq!(aged.take(a), None, "nothing is kept past its age");
        let none = IdlePool::new(0, Duration::from_secs(600));
        none.put(a, "x");
        assert_eq!(none.idle(), 0);
    }
}

//! Enrollment rate limits (pure; time is an argument): a token bucket per source address and one
//! for the whole gateway, and a stricter budget of failed tokens per address, so 10,000 bogus
//! attempts cost the gateway almost nothing and store nothing.

use std::collections::HashMap;
use std::net::IpAddr;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnrollLimits {
    /// Attempts per minute per source address, with bursts up to `burst`.
    pub per_address_per_minute: f64,
    /// Attempts per minute for the whole gateway.
    pub total_per_minute: f64,
    /// How many attempts a bucket holds (a site's agents rolled out at once).
    pub burst: f64,
    /// Refused tokens per address before that address is refused for `lockout_secs`.
    pub failures_before_lockout: u32,
    /// How long a locked-out address waits.
    pub lockout_secs: f64,
}

impl EnrollLimits {
    /// The gateway's defaults: 120 attempts per minute per address with bursts of 200 (a roll-out
    /// to a site's machines behind one NAT), 1,200 per minute in all, 20 refused tokens then 15
    /// minutes of silence.
    pub const STANDARD: Self = Self {
        per_address_per_minute: 120.0,
        total_per_minute: 1_200.0,
        burst: 200.0,
        failures_before_lockout: 20,
        lockout_secs: 900.0,
    };
}

/// Why an attempt is refused before anything is looked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refused {
    /// Too many attempts from this address; retry after the seconds given.
    Address(f64),
    /// Too many attempts in all.
    Total(f64),
    /// Too many refused tokens from this address.
    LockedOut(f64),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: f64,
}

impl Bucket {
    fn take(&mut self, now: f64, per_minute: f64, burst: f64) -> Result<(), f64> {
        let rate = per_minute / 60.0;
        self.tokens = (self.tokens + (now - self.at).max(0.0) * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / rate)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    bucket: Bucket,
    failures: u32,
    locked_until: f64,
}

/// Addresses remembered at most; beyond it the least recently seen are forgotten.
const MAX_SOURCES: usize = 10_000;

/// The limiter's state.
#[derive(Debug)]
pub struct EnrollLimiter {
    limits: EnrollLimits,
    total: Bucket,
    sources: HashMap<IpAddr, Source>,
}

impl EnrollLimiter {
    #[must_use]
    pub fn new(limits: EnrollLimits) -> Self {
        Self {
            limits,
            total: Bucket {
                tokens: limits.burst,
                at: 0.0,
            },
            sources: HashMap::new(),
        }
    }

    /// Admits or refuses an attempt from `address` at `now` (seconds on a monotonic clock).
    ///
    /// # Errors
    /// Why it is refused, with the seconds until a retry can succeed.
    pub fn admit(&mut self, address: IpAddr, now: f64) -> Result<(), Refused> {
        let limits = self.limits;
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&address) {
            self.forget_oldest();
        }
        let source = self.sources.entry(address).or_insert(Source {
            bucket: Bucket {
                tokens: limits.burst,
                at: now,
            },
            failures: 0,
            locked_until: 0.0,
        });
        if source.locked_until > now {
            return Err(Refused::LockedOut(source.locked_until - now));
        }
        source
            .bucket
            .take(now, limits.per_address_per_minute, limits.burst)
            .map_err(Refused::Address)?;
        self.total
            .take(now, limits.total_per_minute, limits.burst)
            .map_err(Refused::Total)
    }

    /// Counts a refused token from `address`; enough of them lock the address out.
    pub fn failed(&mut self, address: IpAddr, now: f64) {
        if let Some(source) = self.sources.get_mut(&address) {
            source.failures += 1;
            if source.failures >= self.limits.failures_before_lockout {
                source.failures = 0;
                source.locked_until = now + self.limits.lockout_secs;
            }
        }
    }

    fn forget_oldest(&mut self) {
        let mut by_age: Vec<(f64, IpAddr)> = self
            .sources
            .iter()
            .map(|(address, source)| (source.bucket.at.max(source.locked_until), *address))
            .collect();
        by_age.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, address) in by_age.into_iter().take(MAX_SOURCES / 10) {
            self.sources.remove(&address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies_per_address() {
        let mut limiter = EnrollLimiter::new(EnrollLimits::STANDARD);
        for i in 0..200 {
            assert_eq!(
                limiter.admit(ip(1), 0.0),
                Ok(()),
                "attempt {i} of the burst"
            );
        }
        assert!(
            matches!(limiter.admit(ip(1), 0.0), Err(Refused::Address(wait)) if (wait - 0.5).abs() < 1e-9)
        );
        assert_eq!(
            limiter.admit(ip(1), 0.5),
            Ok(()),
            "two per second come back"
        );
        assert_eq!(
            limiter.admit(ip(2), 0.5),
            Ok(()),
            "another address has its own bucket"
        );
    }

    #[test]
    fn the_whole_gateway_has_a_ceiling_across_addresses() {
        let mut limiter = EnrollLimiter::new(EnrollLimits::STANDARD);
        let mut admitted = 0;
        for n in 0..=255u8 {
            for _ in 0..5 {
                if limiter.admit(ip(n), 1.0).is_ok() {
                    admitted += 1;
                }
            }
        }
        assert_eq!(
            admitted, 200,
            "the gateway's own burst, whatever the addresses"
        );
    }

    #[test]
    fn refused_tokens_lock_an_address_out() {
        let mut limiter = EnrollLimiter::new(EnrollLimits::STANDARD);
        for _ in 0..20 {
            limiter.admit(ip(3), 10.0).unwrap();
            limiter.failed(ip(3), 10.0);
        }
        assert!(
            matches!(limiter.admit(ip(3), 11.0), Err(Refused::LockedOut(wait)) if (wait - 899.0).abs() < 1e-9)
        );
        assert_eq!(limiter.admit(ip(4), 11.0), Ok(()));
        assert_eq!(limiter.admit(ip(3), 911.0), Ok(()), "after the lockout");
    }

    #[test]
    fn memory_is_bounded_by_forgetting_old_addresses() {
        let mut limiter = EnrollLimiter::new(EnrollLimits {
            total_per_minute: 1e12,
            burst: 1e9,
            ..EnrollLimits::STANDARD
        });
        for n in 0..30_000u32 {
            let _ = limiter.admit(IpAddr::from(n.to_be_bytes()), f64::from(n));
        }
        assert!(limiter.sources.len() <= MAX_SOURCES);
    }
}

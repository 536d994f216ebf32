//! Guessing throttle (RFC 4226 §7.3): after `max_failures` consecutive failures the user
//! is locked out, for a delay that doubles with each lockout in a row.

use serde::Deserialize;

/// Lockout limits (config keys `lockout_*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Consecutive failures that trigger a lockout.
    pub max_failures: u32,
    /// Seconds of the first lockout.
    pub base_delay: i64,
    /// Longest lockout, in seconds.
    pub max_delay: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            base_delay: 30,
            max_delay: 3600,
        }
    }
}

/// A user's durable failure counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Consecutive failures since the last success or lockout.
    pub failures: u32,
    /// Lockouts in a row (reset by a success); sets the next delay.
    pub lockouts: u32,
    /// Unix time until which verification is refused.
    pub locked_until: i64,
}

impl Throttle {
    /// Seconds left of a lockout, if one is in force at `now`.
    pub fn locked_for(&self, now: i64) -> Option<i64> {
        (self.locked_until > now).then_some(self.locked_until - now)
    }
}

impl LockoutPolicy {
    /// Length of the `nth` lockout in a row (1-based).
    pub fn delay(&self, nth: u32) -> i64 {
        let doublings = nth.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1i64 << doublings)
            .min(self.max_delay)
    }

    /// The counters after one more failure at `now`.
    pub fn after_failure(&self, before: Throttle, now: i64) -> Throttle {
        let failures = before.failures + 1;
        if failures >= self.max_failures {
            let lockouts = before.lockouts + 1;
            Throttle {
                failures: 0,
                lockouts,
                locked_until: now + self.delay(lockouts),
            }
        } else {
            Throttle { failures, ..before }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_failure_locks_and_delays_grow() {
        let p = LockoutPolicy::default();
        let mut t = Throttle::default();
        for i in 1..5 {
            t = p.after_failure(t, 1000);
            assert_eq!(t.failures, i);
            assert_eq!(t.locked_for(1000), None);
        }
        t = p.after_failure(t, 1000);
        assert_eq!(t.locked_for(1000), Some(30));
        assert_eq!(t.failures, 0);
        for _ in 0..5 {
            t = p.after_failure(t, 2000);
        }
        assert_eq!(t.locked_for(2000), Some(60));
        assert_eq!(p.delay(40), 3600);
    }
}

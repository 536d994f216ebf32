//! Guessing throttle (RFC 4226 §7.3): after `max_failures` consecutive failures the user
//! is locked out, for a delay that doubles with each lockout in a row.
//!
//! Failures are counted per user *and source*: a remote host, or the terminal of a local
//! login. Someone who only knows a user name can lock that user out from their own
//! address, never at the console or in local sudo. All remote sources together also
//! count against a per-user ceiling (`user_ceiling`), so that guessing from many
//! addresses stays bounded; that ceiling locks remote logins only.

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
    /// Failures from all remote hosts together that lock the user's remote logins.
    pub user_ceiling: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            base_delay: 30,
            max_delay: 3600,
            user_ceiling: 20,
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

/// One counter an attempt is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Key of the counter: `rhost:HOST`, `remote` (every remote host), `tty:TTY`, `local`.
    pub key: String,
    /// Failures in a row that lock this counter.
    pub max_failures: u32,
}

/// Host names that mean "this machine": sudo sets PAM_RHOST to the local host name.
fn is_local_host(rhost: &str, hostname: &str) -> bool {
    matches!(
        rhost,
        "localhost" | "127.0.0.1" | "::1" | "localhost.localdomain"
    ) || rhost.eq_ignore_ascii_case(hostname)
        || rhost
            .split('.')
            .next()
            .is_some_and(|short| short.eq_ignore_ascii_case(hostname))
}

impl LockoutPolicy {
    /// The counters an attempt from `rhost`/`tty` is charged to and checked against.
    pub fn sources(&self, rhost: &str, tty: &str, hostname: &str) -> Vec<Source> {
        let source = |key: String, max_failures| Source { key, max_failures };
        if !rhost.is_empty() && !is_local_host(rhost, hostname) {
            vec![
                source(format!("rhost:{rhost}"), self.max_failures),
                source("remote".into(), self.user_ceiling),
            ]
        } else if !tty.is_empty() {
            // Local counters name the host: in a fleet, one console's failures must not
            // lock the user at every other host's console.
            vec![source(format!("tty:{hostname}:{tty}"), self.max_failures)]
        } else {
            vec![source(format!("local:{hostname}"), self.max_failures)]
        }
    }

    /// Length of the `nth` lockout in a row (1-based).
    pub fn delay(&self, nth: u32) -> i64 {
        let doublings = nth.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1i64 << doublings)
            .min(self.max_delay)
    }

    /// The counters after one more failure at `now`, for a counter that locks after
    /// `max_failures`.
    pub fn after_failure(&self, before: Throttle, max_failures: u32, now: i64) -> Throttle {
        let failures = before.failures + 1;
        if failures >= max_failures {
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
            t = p.after_failure(t, 5, 1000);
            assert_eq!(t.failures, i);
            assert_eq!(t.locked_for(1000), None);
        }
        t = p.after_failure(t, 5, 1000);
        assert_eq!(t.locked_for(1000), Some(30));
        assert_eq!(t.failures, 0);
        for _ in 0..5 {
            t = p.after_failure(t, 5, 2000);
        }
        assert_eq!(t.locked_for(2000), Some(60));
        assert_eq!(p.delay(40), 3600);
    }

    #[test]
    fn sources_keep_remote_guessing_away_from_local_logins() {
        let p = LockoutPolicy::default();
        let remote = p.sources("203.0.113.9", "ssh", "web1");
        assert_eq!(remote[0].key, "rhost:203.0.113.9");
        assert_eq!(remote[1].key, "remote");
        assert_eq!(remote[1].max_failures, 20);
        // sudo passes the local host name as PAM_RHOST: that is a local login.
        assert_eq!(
            p.sources("web1", "/dev/pts/3", "web1")[0].key,
            "tty:web1:/dev/pts/3"
        );
        assert_eq!(
            p.sources("web1.example.org", "/dev/pts/3", "web1")[0].key,
            "tty:web1:/dev/pts/3"
        );
        assert_eq!(p.sources("", "", "web1")[0].key, "local:web1");
    }
}

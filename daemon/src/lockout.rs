//! Guessing throttle (RFC 4226 §7.3).
//!
//! Every attempt is charged to two counters, and refused while either is locked:
//!
//! - **Its source**: a remote host, the terminal of a local login, or a non-root caller's
//!   own D-Bus session. After `max_failures` failures in a row the source is locked, for a
//!   delay that doubles with each lockout in a row up to `max_delay`; a success clears it.
//!   Someone guessing from one place locks only that place.
//! - **A per-user ceiling** over many sources: `ceiling:remote` for every remote host,
//!   `ceiling:local` for every terminal and D-Bus caller of every host (fleet-wide, so that
//!   neither terminals nor hosts multiply guesses). A ceiling allows its count of failures
//!   at once, then regains one every `ceiling_period / count` seconds (a generic cell rate
//!   algorithm: the stored `locked_until` is when the next failure is allowed). A success
//!   does not refill it: the user's own logins must not hand an attacker new guesses.
//!
//! The two ceilings are apart so that a remote attacker never locks the console: remote
//! failures are never charged to `ceiling:local`. With the defaults (8 each per day, a TOTP
//! window of 1 step, so 3 of 10^6 codes match) an attacker who has the password gets at
//! most 8 + 8 = 16 failures at once and 16 more per 24 hours: at most 32 guesses in any
//! 24 hours, a chance of at most 32 × 3 / 10^6 < 1 in 10^4 per day.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Lockout limits (config keys `lockout.*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Consecutive failures from one source that lock that source.
    pub max_failures: u32,
    /// Seconds of the first lockout.
    pub base_delay: i64,
    /// Longest lockout, in seconds.
    pub max_delay: i64,
    /// Failures from all remote hosts together that the user's remote logins allow per
    /// `ceiling_period`.
    pub user_ceiling: u32,
    /// Failures from all local sources together (every terminal and D-Bus caller of every
    /// host) that the user's local logins allow per `ceiling_period`.
    pub local_ceiling: u32,
    /// Seconds over which a ceiling regains its failures.
    pub ceiling_period: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            base_delay: 30,
            max_delay: 3600,
            user_ceiling: 8,
            local_ceiling: 8,
            ceiling_period: 86_400,
        }
    }
}

/// A user's durable failure counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Consecutive failures since the last success or lockout (for a ceiling: the failures
    /// it had not yet regained when last charged).
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

/// How a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Failures in a row lock it, each lockout in a row longer; a success clears it.
    InARow,
    /// `max_failures` per `period` seconds, regained steadily; a success leaves it.
    Ceiling {
        /// Seconds in which all `max_failures` are regained.
        period: i64,
    },
}

/// One counter an attempt is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Key of the counter: `rhost:HOST`, `tty:HOST:TTY`, `local:HOST`, `uid:HOST:UID`,
    /// `ceiling:remote`, `ceiling:local`. At most [`MAX_SOURCE_KEY`] bytes.
    pub key: String,
    /// Failures that lock this counter (in a row, or per period for a ceiling).
    pub max_failures: u32,
    /// How it counts.
    pub rule: Rule,
}

impl Source {
    /// A counter of failures in a row.
    pub fn in_a_row(key: String, max_failures: u32) -> Source {
        Source {
            key,
            max_failures,
            rule: Rule::InARow,
        }
    }

    /// A ceiling of `max_failures` per `period` seconds.
    pub fn ceiling(key: &str, max_failures: u32, period: i64) -> Source {
        Source {
            key: key.into(),
            max_failures,
            rule: Rule::Ceiling { period },
        }
    }

    /// Whether a success from this source clears the counter.
    pub fn clears_on_success(&self) -> bool {
        self.rule == Rule::InARow
    }
}

/// Longest stored source key: `tty:` and two parts of at most [`MAX_KEY_PART`] bytes.
pub const MAX_SOURCE_KEY: usize = 4 + 2 * MAX_KEY_PART + 1;

/// Longest part of a source key kept as it is; a longer one (a made-up terminal name, a
/// long host name) is stored as a digest, so that no caller can make keys, index entries
/// or audit details grow.
const MAX_KEY_PART: usize = 48;

/// `part`, or `#` and 128 bits of its SHA-256 in hex when it is longer than
/// [`MAX_KEY_PART`] bytes.
fn bounded(part: &str) -> String {
    if part.len() <= MAX_KEY_PART {
        return part.to_string();
    }
    let digest = Sha256::digest(part.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("#{hex}")
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

/// SQL `LIKE` pattern of the ceilings' keys: their failures are the sources' failures
/// again, so the summary of a user's failures leaves them out.
pub const CEILINGS_LIKE: &str = "ceiling:%";
/// Key of the ceiling over every remote host.
pub const REMOTE_CEILING: &str = "ceiling:remote";
/// Key of the ceiling over every local terminal and D-Bus caller, of every host.
pub const LOCAL_CEILING: &str = "ceiling:local";

impl LockoutPolicy {
    /// The counters an attempt from `rhost`/`tty` (root's PAM context) is charged to and
    /// checked against: its source and a ceiling.
    pub fn sources(&self, rhost: &str, tty: &str, hostname: &str) -> Vec<Source> {
        let host = bounded(hostname);
        if !rhost.is_empty() && !is_local_host(rhost, hostname) {
            return vec![
                Source::in_a_row(format!("rhost:{}", bounded(rhost)), self.max_failures),
                self.remote_ceiling(),
            ];
        }
        // Local counters name the host: in a fleet, one console's failures must not lock
        // the user at every other host's console (the ceiling still counts them all).
        let source = if tty.is_empty() {
            format!("local:{host}")
        } else {
            format!("tty:{host}:{}", bounded(tty))
        };
        vec![
            Source::in_a_row(source, self.max_failures),
            self.local_ceiling(),
        ]
    }

    /// The counters of a non-root caller verifying its own account over D-Bus (whatever
    /// context it sends): one per uid and host, and the local ceiling.
    pub fn self_service_sources(&self, uid: u32, hostname: &str) -> Vec<Source> {
        vec![
            Source::in_a_row(
                format!("uid:{}:{uid}", bounded(hostname)),
                self.max_failures,
            ),
            self.local_ceiling(),
        ]
    }

    fn remote_ceiling(&self) -> Source {
        Source::ceiling(REMOTE_CEILING, self.user_ceiling, self.ceiling_period)
    }

    fn local_ceiling(&self) -> Source {
        Source::ceiling(LOCAL_CEILING, self.local_ceiling, self.ceiling_period)
    }

    /// Length of the `nth` lockout in a row (1-based).
    pub fn delay(&self, nth: u32) -> i64 {
        let doublings = nth.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1i64 << doublings)
            .min(self.max_delay)
    }

    /// Seconds after its last failure when an unlocked counter is forgotten: by then a
    /// ceiling has regained everything, and a counter's next lockout would be short again
    /// only after twice the longest delay without failures.
    pub fn idle_lifetime(&self) -> i64 {
        self.ceiling_period.max(self.max_delay.saturating_mul(2))
    }

    /// The counter of `source` after one more failure at `now`.
    pub fn after_failure(&self, before: Throttle, source: &Source, now: i64) -> Throttle {
        match source.rule {
            Rule::InARow => self.after_failure_in_a_row(before, source.max_failures, now),
            Rule::Ceiling { period } => ceiling_after_failure(before, source, period, now),
        }
    }

    fn after_failure_in_a_row(&self, before: Throttle, max_failures: u32, now: i64) -> Throttle {
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

/// A ceiling after one more failure (GCRA): each failure adds `interval` to a theoretical
/// time that runs ahead of `now` by at most `max_failures` intervals; the ceiling is locked
/// while that lead exceeds `max_failures - 1` intervals. `locked_until` stores the time
/// that lead falls back to `max_failures - 1` intervals; `failures` the failures not yet
/// regained (never 0 once charged, which tells a stored ceiling from none).
fn ceiling_after_failure(before: Throttle, source: &Source, period: i64, now: i64) -> Throttle {
    let limit = i64::from(source.max_failures.max(1));
    let interval = (period / limit).max(1);
    let tolerance = (limit - 1) * interval;
    let theoretical = if before.failures == 0 {
        now
    } else {
        (before.locked_until + tolerance).clamp(now, now + tolerance)
    } + interval;
    let locked_until = theoretical - tolerance;
    let newly_locked = locked_until > now && before.locked_until <= now;
    Throttle {
        failures: ((theoretical - now + interval - 1) / interval) as u32,
        lockouts: before.lockouts + u32::from(newly_locked),
        locked_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_failure_locks_and_delays_grow() {
        let p = LockoutPolicy::default();
        let tty = Source::in_a_row("tty:h:t".into(), 5);
        let mut t = Throttle::default();
        for i in 1..5 {
            t = p.after_failure(t, &tty, 1000);
            assert_eq!(t.failures, i);
            assert_eq!(t.locked_for(1000), None);
        }
        t = p.after_failure(t, &tty, 1000);
        assert_eq!(t.locked_for(1000), Some(30));
        assert_eq!(t.failures, 0);
        for _ in 0..5 {
            t = p.after_failure(t, &tty, 2000);
        }
        assert_eq!(t.locked_for(2000), Some(60));
        assert_eq!(p.delay(40), 3600);
    }

    #[test]
    fn sources_keep_remote_guessing_away_from_local_logins() {
        let p = LockoutPolicy::default();
        let remote = p.sources("203.0.113.9", "ssh", "web1");
        assert_eq!(remote[0].key, "rhost:203.0.113.9");
        assert_eq!(remote[1].key, REMOTE_CEILING);
        assert_eq!(remote[1].max_failures, 8);
        // sudo passes the local host name as PAM_RHOST: that is a local login.
        for rhost in ["web1", "web1.example.org", ""] {
            let local = p.sources(rhost, "/dev/pts/3", "web1");
            assert_eq!(local[0].key, "tty:web1:/dev/pts/3");
            assert_eq!(local[1].key, LOCAL_CEILING);
        }
        assert_eq!(p.sources("", "", "web1")[0].key, "local:web1");
        // No remote source is charged to the local ceiling, nor a local one to the remote.
        assert!(!remote.iter().any(|s| s.key == LOCAL_CEILING));
        let prefix = CEILINGS_LIKE.trim_end_matches('%');
        assert!(LOCAL_CEILING.starts_with(prefix) && REMOTE_CEILING.starts_with(prefix));
        let own = p.self_service_sources(1000, "web1");
        assert_eq!(own[0].key, "uid:web1:1000");
        assert_eq!(own[0].rule, Rule::InARow);
        assert_eq!(own[1].key, LOCAL_CEILING);
    }

    #[test]
    fn long_source_values_are_stored_as_digests() {
        let p = LockoutPolicy::default();
        let long_host = "h".repeat(253);
        let huge = "x".repeat(1 << 20);
        for (rhost, tty) in [(huge.as_str(), "ssh"), ("", huge.as_str())] {
            for s in p.sources(rhost, tty, &long_host) {
                assert!(s.key.len() <= MAX_SOURCE_KEY, "{} bytes", s.key.len());
            }
        }
        let a = p.sources("", &"a".repeat(49), "web1");
        let b = p.sources("", &"a".repeat(50), "web1");
        assert_ne!(a[0].key, b[0].key, "distinct values keep distinct counters");
        assert!(a[0].key.starts_with("tty:web1:#"), "{}", a[0].key);
        // Short values stay readable.
        assert_eq!(bounded(&"a".repeat(48)), "a".repeat(48));
    }

    /// Failures charged to a ceiling from any number of sources, as fast as it refuses
    /// them: never more than `max_failures` at once plus one per regained interval.
    fn ceiling_failures_over(p: &LockoutPolicy, seconds: i64, start: i64) -> u32 {
        let ceiling = p.local_ceiling();
        let mut t = Throttle::default();
        let mut counted = 0;
        for now in start..=start + seconds {
            while t.locked_for(now).is_none() {
                t = p.after_failure(t, &ceiling, now);
                counted += 1;
            }
        }
        counted
    }

    #[test]
    fn ceiling_bounds_guesses_per_day() {
        let p = LockoutPolicy::default();
        // 8 at once, then one every 3 hours.
        let ceiling = p.local_ceiling();
        let mut t = Throttle::default();
        for i in 1..=8 {
            assert_eq!(t.locked_for(5000), None, "failure {i} allowed");
            t = p.after_failure(t, &ceiling, 5000);
            assert_eq!(t.failures, i);
        }
        assert_eq!(t.locked_for(5000), Some(10_800));
        assert_eq!(t.lockouts, 1);
        assert_eq!(t.locked_for(5000 + 10_800), None);
        // In any day: 8 + 8; in a week: 8 + 7 × 8.
        let day = ceiling_failures_over(&p, 86_400, 1_700_000_000);
        assert_eq!(day, 16);
        assert_eq!(ceiling_failures_over(&p, 7 * 86_400, 1_700_000_000), 64);
        // Both ceilings at their worst, each guess matching 3 codes of 10^6.
        let worst = f64::from(2 * day) * 3.0 / 1e6;
        assert!(worst < 1e-4, "{worst}");
    }

    #[test]
    fn a_ceiling_forgets_nothing_on_success_and_refills_over_its_period() {
        let p = LockoutPolicy::default();
        let own = p.self_service_sources(1000, "h");
        assert!(own[0].clears_on_success());
        assert!(!own[1].clears_on_success());
        // 4 failures, then a day of nothing: all regained, the next 8 allowed at once.
        let ceiling = p.local_ceiling();
        let mut t = Throttle::default();
        for _ in 0..4 {
            t = p.after_failure(t, &ceiling, 100);
        }
        assert_eq!(t.failures, 4);
        let day_later = 100 + 86_400;
        for _ in 0..7 {
            t = p.after_failure(t, &ceiling, day_later);
            assert_eq!(t.locked_for(day_later), None);
        }
        t = p.after_failure(t, &ceiling, day_later);
        assert_eq!(t.failures, 8);
        assert_eq!(t.locked_for(day_later), Some(10_800));
        // Failures counted while locked (unknown-user guesses are not checked first)
        // never push the lock beyond one interval.
        for _ in 0..100 {
            t = p.after_failure(t, &ceiling, day_later);
        }
        assert_eq!(t.locked_for(day_later), Some(10_800));
        assert!(p.idle_lifetime() >= p.ceiling_period);
    }
}

//! The daemon's policy, read from `/etc/twofold/twofoldd.toml` (`--config PATH`).

use std::path::Path;

use serde::Deserialize;

use crate::lockout::LockoutPolicy;

/// Everything the administrator can tune; every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// TOTP steps accepted on either side of the current one (clock drift).
    pub totp_window: u64,
    /// Seconds a started enrollment waits for its confirmation.
    pub enroll_pending_seconds: i64,
    /// Guessing throttle.
    pub lockout: LockoutPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            totp_window: 1,
            enroll_pending_seconds: 600,
            lockout: LockoutPolicy::default(),
        }
    }
}

impl Policy {
    /// Reads and validates a config file; the error names the file, key and line.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            format!("{line}{}", e.message())
        })?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), String> {
        if self.totp_window > 10 {
            return Err("totp_window: at most 10 steps (5 minutes) either side".into());
        }
        if !(60..=86_400).contains(&self.enroll_pending_seconds) {
            return Err("enroll_pending_seconds: between 60 and 86400".into());
        }
        let l = &self.lockout;
        if !(1..=100).contains(&l.max_failures) {
            return Err("lockout.max_failures: between 1 and 100".into());
        }
        if l.base_delay < 1 || l.max_delay < l.base_delay {
            return Err(
                "lockout.base_delay must be >= 1 and lockout.max_delay >= base_delay".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Policy::parse("").unwrap(), Policy::default());
        let p = Policy::parse("totp_window = 2\n[lockout]\nmax_failures = 3\n").unwrap();
        assert_eq!(p.totp_window, 2);
        assert_eq!(p.lockout.max_failures, 3);
        assert_eq!(p.lockout.base_delay, 30);
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = Policy::parse("totp_window = 1\nbogus = 3\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
        let e = Policy::parse("totp_window = \"x\"\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Policy::parse("totp_window = 99\n").unwrap_err();
        assert!(e.contains("totp_window"), "{e}");
    }
}

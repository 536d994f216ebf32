//! `twofold status`.

use std::io::Write;

use serde::Serialize;
use twofold_contract::UserStatus;

use crate::bus::Daemon;
use crate::error::Failure;
use crate::format::{human_duration, human_time, optional_iso8601};
use crate::output::{suggest, write_out};

/// At or below this many backup codes left, `status` warns.
pub const FEW_BACKUP_CODES: u32 = 3;

/// `status --json`: times are ISO 8601 UTC strings, `null` when unset.
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    pub user: &'a str,
    pub enrolled: bool,
    pub enrolled_since: Option<String>,
    pub backup_codes_left: u32,
    pub failures: u32,
    pub locked_until: Option<String>,
    pub pending_enrollment: bool,
}

impl<'a> From<&'a UserStatus> for StatusJson<'a> {
    fn from(s: &'a UserStatus) -> Self {
        StatusJson {
            user: &s.user,
            enrolled: s.enrolled,
            enrolled_since: if s.enrolled {
                optional_iso8601(s.enrolled_since)
            } else {
                None
            },
            backup_codes_left: s.backup_codes_left,
            failures: s.failures,
            locked_until: optional_iso8601(s.locked_until),
            pending_enrollment: s.pending_enrollment,
        }
    }
}

/// The status for people. `user` is the `--user` argument (for suggested commands).
pub fn human(s: &UserStatus, user: Option<&str>, now: i64) -> String {
    let mut lines = vec![format!("User:               {}", s.user)];
    if s.enrolled {
        let since = if s.enrolled_since > 0 {
            format!(" since {}", human_time(s.enrolled_since))
        } else {
            String::new()
        };
        lines.push(format!("Two-factor auth:    on{since}"));
        lines.push(format!("Backup codes left:  {}", s.backup_codes_left));
    } else {
        lines.push(format!(
            "Two-factor auth:    off (set it up with `{}`)",
            suggest("enroll", user)
        ));
    }
    if s.locked_until > now {
        lines.push(format!(
            "Lockout:            locked until {} (in {}) after {} failed attempts",
            human_time(s.locked_until),
            human_duration(s.locked_until - now),
            s.failures
        ));
    } else {
        lines.push("Lockout:            not locked".to_owned());
        lines.push(format!("Failed attempts:    {}", s.failures));
    }
    if s.pending_enrollment {
        lines.push(format!(
            "Pending enrollment: yes (finish it with `{}`)",
            suggest("enroll --confirm CODE", user)
        ));
    } else {
        lines.push("Pending enrollment: no".to_owned());
    }
    if s.enrolled && s.backup_codes_left <= FEW_BACKUP_CODES {
        let few = match s.backup_codes_left {
            0 => "No backup codes are left".to_owned(),
            1 => "Only 1 backup code is left".to_owned(),
            n => format!("Only {n} backup codes are left"),
        };
        lines.push(String::new());
        lines.push(format!(
            "Warning: {few}. Run `{}` to get a new set.",
            suggest("backup-codes regenerate", user)
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Runs `twofold status`.
pub async fn run(daemon: &Daemon<'_>, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let status = daemon.run(daemon.proxy().status(daemon.user_arg())).await?;
    let text = if json {
        let mut t = serde_json::to_string(&StatusJson::from(&status))
            .map_err(|e| Failure::new(format!("Could not write JSON: {e}")))?;
        t.push('\n');
        t
    } else {
        human(&status, daemon.context().user, crate::format::now())
    };
    write_out(out, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> UserStatus {
        UserStatus {
            user: "alice".into(),
            enrolled: true,
            enrolled_since: 1_735_787_045,
            backup_codes_left: 7,
            failures: 1,
            locked_until: 0,
            pending_enrollment: false,
        }
    }

    #[test]
    fn json_shape() {
        let s = status();
        let v = serde_json::to_value(StatusJson::from(&s)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "user": "alice",
                "enrolled": true,
                "enrolled_since": "2025-01-02T03:04:05Z",
                "backup_codes_left": 7,
                "failures": 1,
                "locked_until": null,
                "pending_enrollment": false,
            })
        );
        let off = UserStatus {
            enrolled: false,
            enrolled_since: 0,
            backup_codes_left: 0,
            locked_until: 1_735_787_045,
            pending_enrollment: true,
            ..s
        };
        let v = serde_json::to_value(StatusJson::from(&off)).unwrap();
        assert_eq!(v["enrolled"], false);
        assert_eq!(v["enrolled_since"], serde_json::Value::Null);
        assert_eq!(v["locked_until"], "2025-01-02T03:04:05Z");
        assert_eq!(v["pending_enrollment"], true);
    }

    #[test]
    fn human_enrolled() {
        let text = human(&status(), None, 1_800_000_000);
        assert!(text.contains("on since 2025-01-02 03:04 UTC"), "{text}");
        assert!(text.contains("Backup codes left:  7"), "{text}");
        assert!(text.contains("not locked"), "{text}");
        assert!(!text.contains("Warning"), "{text}");
    }

    #[test]
    fn human_warns_on_few_backup_codes() {
        let s = UserStatus {
            backup_codes_left: 3,
            ..status()
        };
        let text = human(&s, Some("bob"), 0);
        assert!(
            text.contains("Run `twofold backup-codes regenerate --user bob`"),
            "{text}"
        );
        let s = UserStatus {
            backup_codes_left: 4,
            ..status()
        };
        assert!(!human(&s, None, 0).contains("Warning"));
    }

    #[test]
    fn human_locked_and_pending() {
        let now = 1_735_787_045;
        let s = UserStatus {
            enrolled: false,
            locked_until: now + 300,
            failures: 5,
            pending_enrollment: true,
            ..status()
        };
        let text = human(&s, None, now);
        assert!(
            text.contains("off (set it up with `twofold enroll`)"),
            "{text}"
        );
        assert!(text.contains("in 5 minutes"), "{text}");
        assert!(text.contains("after 5 failed attempts"), "{text}");
        assert!(text.contains("`twofold enroll --confirm CODE`"), "{text}");
        assert!(!text.contains("Warning"), "{text}");
        // A lockout in the past is over.
        assert!(human(&s, None, now + 301).contains("not locked"));
    }
}

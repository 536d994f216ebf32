//! `twofold status`.

use serde::Serialize;
use twofold_contract::{method, DeviceInfo, UserStatus, BACKUP_CODES_LOW};

use crate::bus::Daemon;
use crate::commands::backup_codes::low_warning;
use crate::commands::cx::Cx;
use crate::commands::devices::{devices_table, DeviceJson};
use crate::error::Failure;
use crate::text::{non_empty, one_line, suggest};
use crate::time::{human_duration, human_time, now, optional_iso8601};

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
    /// 3 or fewer backup codes left (only when enrolled).
    pub backup_codes_low: bool,
    /// The last successful verification: ISO 8601, `null` when never.
    pub last_used: Option<String>,
    /// `totp`, `hotp` or `backup_code`; `null` when never.
    pub last_method: Option<&'a str>,
    /// PAM service (`sshd`, `sudo`, ...); `null` when unknown.
    pub last_service: Option<&'a str>,
    /// Remote host; `null` when local or unknown.
    pub last_rhost: Option<&'a str>,
    /// The device whose code passed; `null` for a backup code, or when unknown.
    pub last_device: Option<&'a str>,
    /// Device clock minus server clock, in 30-second steps, of recent logins, newest first.
    pub recent_step_offsets: &'a [i32],
    /// Policy requires two-factor authentication for this user.
    pub required: bool,
    /// Until when a required user may still log in without enrolling (ISO 8601); `null`.
    pub enroll_deadline: Option<String>,
    /// The user's devices (as `devices --json` lists them).
    pub devices: Vec<DeviceJson<'a>>,
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
            backup_codes_low: s.enrolled && s.backup_codes_left <= BACKUP_CODES_LOW,
            last_used: optional_iso8601(s.last_used),
            last_method: non_empty(&s.last_method),
            last_service: non_empty(&s.last_service),
            last_rhost: non_empty(&s.last_rhost),
            last_device: None,
            recent_step_offsets: &s.recent_step_offsets,
            required: s.required,
            enroll_deadline: optional_iso8601(s.enroll_deadline),
            devices: Vec::new(),
        }
    }
}

/// The device whose code passed the last successful use: the one last used then (a
/// code's bookkeeping stamps the user and the device alike); None for a backup code, or
/// when two devices were used within that second.
pub fn last_device<'d>(s: &UserStatus, devices: &'d [DeviceInfo]) -> Option<&'d str> {
    if s.last_used == 0 || ![method::TOTP, method::HOTP].contains(&s.last_method.as_str()) {
        return None;
    }
    match devices
        .iter()
        .filter(|d| d.last_used == s.last_used)
        .collect::<Vec<_>>()[..]
    {
        [device] => Some(device.name.as_str()),
        _ => None,
    }
}

/// "with a code from the app, for sshd from 192.0.2.7": how, where and from where the
/// last successful use passed.
pub fn last_use_details(s: &UserStatus) -> String {
    let how = match s.last_method.as_str() {
        method::TOTP => "with a code from the app".to_owned(),
        method::HOTP => "with a code from a token".to_owned(),
        method::BACKUP_CODE => "with a backup code".to_owned(),
        "" => String::new(),
        other => format!("with {}", one_line(other)),
    };
    let service = if s.last_service.is_empty() {
        String::new()
    } else {
        format!("for {}", one_line(&s.last_service))
    };
    let from = if s.last_rhost.is_empty() {
        "on this machine".to_owned()
    } else {
        format!("from {}", one_line(&s.last_rhost))
    };
    [how, service, from]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status for people. `user` is the `--user` argument (for suggested commands);
/// `devices` name the device of the last use.
pub fn human(s: &UserStatus, devices: &[DeviceInfo], user: Option<&str>, now: i64) -> String {
    let mut lines = vec![format!("User:               {}", s.user)];
    if s.enrolled {
        let since = if s.enrolled_since > 0 {
            format!(" since {}", human_time(s.enrolled_since))
        } else {
            String::new()
        };
        lines.push(format!("Two-factor auth:    on{since}"));
        lines.push(format!("Backup codes left:  {}", s.backup_codes_left));
        if s.last_used > 0 {
            let device = last_device(s, devices)
                .map(|name| format!(" (device {})", one_line(name)))
                .unwrap_or_default();
            lines.push(format!(
                "Last used:          {} ({} ago), {}{device}",
                human_time(s.last_used),
                human_duration(now - s.last_used),
                last_use_details(s)
            ));
        } else {
            lines.push("Last used:          never".to_owned());
        }
    } else {
        lines.push(format!(
            "Two-factor auth:    off (set it up with `{}`)",
            suggest("enroll", user)
        ));
        if s.required {
            let deadline = if s.enroll_deadline > now {
                format!(
                    "; enroll by {} (in {}; until then logins work without a code)",
                    human_time(s.enroll_deadline),
                    human_duration(s.enroll_deadline - now)
                )
            } else if s.enroll_deadline > 0 {
                format!(
                    "; the deadline to enroll passed {}: logins without a code are refused",
                    human_time(s.enroll_deadline)
                )
            } else {
                String::new()
            };
            lines.push(format!("Required by policy: yes{deadline}"));
        }
    }
    if s.enrolled && s.required {
        lines.push("Required by policy: yes".to_owned());
    }
    if s.locked_until > now {
        // The counter that locked starts again from 0: the count says nothing here.
        lines.push(format!(
            "Lockout:            locked until {} (in {}) after too many failed attempts",
            human_time(s.locked_until),
            human_duration(s.locked_until - now),
        ));
    } else {
        lines.push("Lockout:            not locked".to_owned());
        lines.push(format!("Failed attempts:    {}", s.failures));
    }
    if s.pending_enrollment {
        lines.push(format!(
            "Pending enrollment: yes (finish it with `{}` and the code on standard input)",
            suggest("enroll --confirm -", user)
        ));
    } else {
        lines.push("Pending enrollment: no".to_owned());
    }
    if s.enrolled {
        if let Some(warning) = low_warning(s.backup_codes_left, user) {
            lines.push(String::new());
            lines.push(format!("Warning: {warning}"));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Runs `twofold status`.
pub async fn run(cx: &mut Cx<'_>) -> Result<(), Failure> {
    let (status, devices) = status_and_devices(cx.daemon).await?;
    let json = StatusJson {
        devices: devices.iter().map(DeviceJson::from).collect(),
        last_device: last_device(&status, &devices),
        ..StatusJson::from(&status)
    };
    let user = cx.daemon.context().user;
    cx.out.answer(&json, || {
        let mut text = human(&status, &devices, user, now());
        if !devices.is_empty() {
            text.push_str("\nDevices:\n");
            for line in devices_table(&devices).lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    })
}

/// The status of the user the command is about, and their devices (none when not
/// enrolled).
async fn status_and_devices(daemon: &Daemon<'_>) -> Result<(UserStatus, Vec<DeviceInfo>), Failure> {
    let status = daemon.run(daemon.proxy().status(daemon.user_arg())).await?;
    let devices = if status.enrolled {
        daemon
            .run(daemon.proxy().list_devices(daemon.user_arg()))
            .await?
    } else {
        Vec::new()
    };
    Ok((status, devices))
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
            last_used: 1_735_790_645,
            last_method: "totp".into(),
            last_service: "sshd".into(),
            last_rhost: "192.0.2.7".into(),
            recent_step_offsets: vec![-1, 0],
            required: false,
            enroll_deadline: 0,
            proof_required: true,
        }
    }

    #[test]
    fn the_last_use_names_its_device() {
        let s = status();
        let device = |name: &str, last_used| DeviceInfo {
            name: name.into(),
            last_used,
            ..DeviceInfo::default()
        };
        let devices = [
            device("default", 1_735_787_045),
            device("spare", s.last_used),
        ];
        assert_eq!(last_device(&s, &devices), Some("spare"));
        let same_second = [device("default", s.last_used), device("spare", s.last_used)];
        assert_eq!(last_device(&s, &same_second), None);
        let text = human(&s, &devices, None, s.last_used + 60);
        assert!(
            text.contains("for sshd, from 192.0.2.7 (device spare)"),
            "{text}"
        );
        let backup = UserStatus {
            last_method: method::BACKUP_CODE.into(),
            ..status()
        };
        assert_eq!(last_device(&backup, &devices), None);
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
                "backup_codes_low": false,
                "last_used": "2025-01-02T04:04:05Z",
                "last_method": "totp",
                "last_service": "sshd",
                "last_rhost": "192.0.2.7",
                "last_device": null,
                "recent_step_offsets": [-1, 0],
                "required": false,
                "enroll_deadline": null,
                "devices": [],
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
        let never = UserStatus {
            last_used: 0,
            last_method: String::new(),
            last_service: String::new(),
            last_rhost: String::new(),
            recent_step_offsets: vec![],
            ..status()
        };
        let v = serde_json::to_value(StatusJson::from(&never)).unwrap();
        assert_eq!(v["last_used"], serde_json::Value::Null);
        assert_eq!(v["last_method"], serde_json::Value::Null);
        assert_eq!(v["last_rhost"], serde_json::Value::Null);
        assert_eq!(v["recent_step_offsets"], serde_json::json!([]));
    }

    #[test]
    fn last_use_in_words() {
        let text = human(&status(), &[], None, 1_735_790_645 + 7200);
        assert!(
            text.contains(
                "Last used:          2025-01-02 04:04 UTC (2 hours ago), with a code from the \
                 app, for sshd, from 192.0.2.7"
            ),
            "{text}"
        );
        let local = UserStatus {
            last_method: "backup_code".into(),
            last_service: "sudo".into(),
            last_rhost: String::new(),
            ..status()
        };
        assert_eq!(
            last_use_details(&local),
            "with a backup code, for sudo, on this machine"
        );
        let never = UserStatus {
            last_used: 0,
            ..status()
        };
        assert!(human(&never, &[], None, 0).contains("Last used:          never"));
    }

    #[test]
    fn human_enrolled() {
        let text = human(&status(), &[], None, 1_800_000_000);
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
        let text = human(&s, &[], Some("bob"), 0);
        assert!(
            text.contains("Run `twofold backup-codes regenerate --user bob`"),
            "{text}"
        );
        let s = UserStatus {
            backup_codes_left: 4,
            ..status()
        };
        assert!(!human(&s, &[], None, 0).contains("Warning"));
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
        let text = human(&s, &[], None, now);
        assert!(
            text.contains("off (set it up with `twofold enroll`)"),
            "{text}"
        );
        assert!(text.contains("in 5 minutes"), "{text}");
        assert!(text.contains("after too many failed attempts"), "{text}");
        assert!(!text.contains("after 0"), "{text}");
        assert!(text.contains("`twofold enroll --confirm -`"), "{text}");
        assert!(!text.contains("Warning"), "{text}");
        assert!(!text.contains("Required"), "{text}");
        let required = UserStatus {
            required: true,
            enroll_deadline: now + 3 * 86_400,
            ..s.clone()
        };
        assert!(
            human(&required, &[], None, now).contains(
                "Required by policy: yes; enroll by 2025-01-05 03:04 UTC (in 3 days; until \
                 then logins work without a code)"
            ),
            "{}",
            human(&required, &[], None, now)
        );
        let overdue = human(&required, &[], None, now + 4 * 86_400);
        assert!(
            overdue.contains("the deadline to enroll passed 2025-01-05 03:04 UTC"),
            "{overdue}"
        );
        let enrolled = UserStatus {
            required: true,
            ..status()
        };
        assert!(human(&enrolled, &[], None, now).contains("Required by policy: yes\n"));
        // A lockout in the past is over.
        assert!(human(&s, &[], None, now + 301).contains("not locked"));
    }
}

//! `twofold admin`: users, reset, unlock, log (import is `commands::import`) — for root or holders of the polkit
//! permission `org.twofold.administer` (the daemon decides; this only asks and words
//! the answers).

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use twofold_contract::{AdminUser, AuditEntry, TwofoldError};

use crate::bus::Daemon;
use crate::commands::cx::Cx;
use crate::error::Failure;
use crate::options::AdminAction;
use crate::text::{cell, non_empty, one_line, table_of};
use crate::time::{
    human_time, human_time_or_never, human_time_seconds, in_hours, iso8601, now, optional_iso8601,
};

/// The one-line answer to a caller who is not an administrator.
pub const NOT_ADMIN: &str = "This needs an administrator: run it as root, or ask for the \
                             org.twofold.administer permission.";

/// Runs the action.
pub async fn run(cx: &mut Cx<'_>, action: &AdminAction) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let proxy = daemon.proxy();
    match action {
        AdminAction::Users => {
            let users = admin_call(daemon, proxy.admin_users()).await?;
            let rows = users.iter().map(AdminUserJson::from);
            cx.out.list(rows, || users_table(&users, now()))
        }
        AdminAction::Reset {
            user,
            reason,
            bypass_hours,
        } => {
            let issued = now();
            let code = match daemon
                .call(proxy.admin_reset(user, reason, *bypass_hours))
                .await?
            {
                Ok(code) => code,
                Err(TwofoldError::NotEnrolled(_)) => {
                    return Err(Failure::new(format!(
                        "User {user} has no two-factor authentication to remove; nothing was \
                         changed. To let them log in once anyway, add --bypass-code HOURS."
                    )))
                }
                Err(e) => return Err(admin_failure(daemon, &e)),
            };
            let reset = Reset {
                user,
                bypass_code: (!code.is_empty()).then_some(code.as_str()),
                expires: (!code.is_empty()).then(|| issued + i64::from(*bypass_hours) * 3600),
            };
            cx.out
                .answer(&ResetJson::from(&reset), || reset_text(&reset, issued))
        }
        AdminAction::Unlock { user } => {
            admin_call(daemon, proxy.admin_unlock(user)).await?;
            cx.out.answer(&json!({ "user": user, "unlocked": true }), || {
                format!("Unlocked user {user}: the failed attempts from every source are cleared.\n")
            })
        }
        AdminAction::ImportGoogleAuthenticator(_)
        | AdminAction::ImportOath(_)
        | AdminAction::Tokens(_) => {
            unreachable!("commands::run runs it")
        }
        AdminAction::Log { user, since, limit } => {
            let who = user.as_deref().unwrap_or("");
            let entries = admin_call(daemon, proxy.audit_log(who, *since, *limit)).await?;
            let names = Names::default();
            let rows = entries.iter().map(|e| AuditJson::new(e, &names));
            cx.out.list(rows, || log_table(&entries, *limit, &names))
        }
    }
}

/// An admin call: a refusal says what permission is missing.
pub async fn admin_call<T>(
    daemon: &Daemon<'_>,
    call: impl std::future::Future<Output = Result<T, TwofoldError>>,
) -> Result<T, Failure> {
    daemon
        .call(call)
        .await?
        .map_err(|e| admin_failure(daemon, &e))
}

/// A daemon's refusal of an admin call, worded: a missing permission says which.
pub fn admin_failure(daemon: &Daemon<'_>, e: &TwofoldError) -> Failure {
    match e {
        TwofoldError::PermissionDenied(_) => Failure::coded("permission_denied", NOT_ADMIN),
        other => daemon.context().failure(other),
    }
}

// ---- admin users ----

/// One row of `admin users --json`: times as ISO 8601 UTC, `null` when unset.
#[derive(Debug, Serialize)]
pub struct AdminUserJson<'a> {
    pub user: &'a str,
    pub enrolled: bool,
    pub required: bool,
    pub enroll_deadline: Option<String>,
    pub last_used: Option<String>,
    pub backup_codes_left: u32,
    pub locked_until: Option<String>,
    pub live_sessions: u32,
}

impl<'a> From<&'a AdminUser> for AdminUserJson<'a> {
    fn from(u: &'a AdminUser) -> Self {
        AdminUserJson {
            user: &u.user,
            enrolled: u.enrolled,
            required: u.required,
            enroll_deadline: optional_iso8601(u.enroll_deadline),
            last_used: optional_iso8601(u.last_used),
            backup_codes_left: u.backup_codes_left,
            locked_until: optional_iso8601(u.locked_until),
            live_sessions: u.live_sessions,
        }
    }
}

/// "no", "yes", "yes; enroll by 2026-12-04 10:00 UTC", "yes; deadline passed".
fn required_cell(u: &AdminUser, now: i64) -> String {
    match (u.required, u.enrolled, u.enroll_deadline) {
        (false, ..) => "no".to_owned(),
        (true, true, _) | (true, false, 0) => "yes".to_owned(),
        (true, false, d) if d > now => format!("yes; enroll by {}", human_time(d)),
        (true, false, d) => format!("yes; deadline passed {}", human_time(d)),
    }
}

/// The `admin users` table.
pub fn users_table(users: &[AdminUser], now: i64) -> String {
    let none = "No users yet: nobody has enrolled, and no required group has members.\n";
    let header = [
        "USER",
        "ENROLLED",
        "REQUIRED",
        "LAST USE",
        "BACKUP CODES",
        "LOCKED UNTIL",
        "SESSIONS",
    ];
    table_of(users, none, &header, |u| {
        [
            cell(&u.user),
            if u.enrolled { "yes" } else { "no" }.to_owned(),
            required_cell(u, now),
            human_time_or_never(u.last_used),
            if u.enrolled {
                u.backup_codes_left.to_string()
            } else {
                "-".to_owned()
            },
            if u.locked_until > now {
                human_time(u.locked_until)
            } else {
                "-".to_owned()
            },
            u.live_sessions.to_string(),
        ]
    })
}

// ---- admin reset ----

/// What `admin reset` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset<'a> {
    pub user: &'a str,
    pub bypass_code: Option<&'a str>,
    /// Unix time the bypass code stops working.
    pub expires: Option<i64>,
}

/// `admin reset --json`.
#[derive(Debug, Serialize)]
pub struct ResetJson<'a> {
    pub user: &'a str,
    pub bypass_code: Option<&'a str>,
    pub expires: Option<String>,
}

impl<'a> From<&Reset<'a>> for ResetJson<'a> {
    fn from(r: &Reset<'a>) -> Self {
        ResetJson {
            user: r.user,
            bypass_code: r.bypass_code,
            expires: r.expires.map(iso8601),
        }
    }
}

/// The `admin reset` report for people.
pub fn reset_text(r: &Reset<'_>, now: i64) -> String {
    let user = r.user;
    let mut text = format!(
        "Two-factor authentication of user {user} is removed (the reason is in the audit \
         trail). They set it up again with `twofold enroll`.\n"
    );
    if let (Some(code), Some(expires)) = (r.bypass_code, r.expires) {
        text.push_str(&format!(
            "\nOne-time bypass code for {user}:\n\n    {code}\n\n\
             It lets {user} log in once, until {} (in {}), instead of a code from the app. \
             It is shown only this once.\n\
             Hand it over only after verifying the person's identity (in person, or by calling \
             back a number on file), and ask them to run `twofold enroll` right after logging in.\n",
            human_time(expires),
            in_hours(expires - now)
        ));
    }
    text
}

// ---- admin log ----

/// Uid to user name through NSS, asked once per uid (by the JSON rows or the table).
#[derive(Debug, Default)]
struct Names(RefCell<HashMap<i64, Option<String>>>);

impl Names {
    fn get(&self, uid: i64) -> Option<String> {
        if uid < 0 {
            return None;
        }
        let mut known = self.0.borrow_mut();
        known.entry(uid).or_insert_with(|| user_name(uid)).clone()
    }
}

/// The name of `uid` from the password database (files, LDAP, SSSD, ...).
fn user_name(uid: i64) -> Option<String> {
    let uid = u32::try_from(uid).ok()?;
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// One entry of `admin log --json`: `null` for what is unknown or empty.
#[derive(Debug, Serialize)]
pub struct AuditJson<'a> {
    pub at: String,
    pub actor_uid: Option<i64>,
    pub actor: Option<String>,
    pub user: &'a str,
    pub event: &'a str,
    pub service: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub rhost: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// Host whose daemon recorded it (fleets share one trail).
    pub host: Option<&'a str>,
}

impl<'a> AuditJson<'a> {
    fn new(e: &'a AuditEntry, names: &Names) -> Self {
        AuditJson {
            at: iso8601(e.at),
            actor_uid: (e.actor_uid >= 0).then_some(e.actor_uid),
            actor: names.get(e.actor_uid),
            user: &e.user,
            event: &e.event,
            service: non_empty(&e.service),
            tty: non_empty(&e.tty),
            rhost: non_empty(&e.rhost),
            detail: non_empty(&e.detail),
            host: non_empty(&e.host),
        }
    }
}

/// "root", "uid 1234" (no name), "-" (unknown).
fn actor_cell(uid: i64, names: &Names) -> String {
    match names.get(uid) {
        Some(name) => one_line(&name),
        None if uid >= 0 => format!("uid {uid}"),
        None => "-".to_owned(),
    }
}

/// "203.0.113.7 (pts/1)", "/dev/tty1", "-".
fn place_cell(e: &AuditEntry) -> String {
    match (e.rhost.is_empty(), e.tty.is_empty()) {
        (true, true) => "-".to_owned(),
        (true, false) => one_line(&e.tty),
        (false, true) => one_line(&e.rhost),
        (false, false) => format!("{} ({})", one_line(&e.rhost), one_line(&e.tty)),
    }
}

fn log_table(entries: &[AuditEntry], limit: u32, names: &Names) -> String {
    let header = [
        "WHEN",
        "ACTOR",
        "USER",
        "EVENT",
        "SERVICE",
        "TTY/RHOST",
        "HOST",
        "DETAIL",
    ];
    let mut text = table_of(entries, "No audit entries match.\n", &header, |e| {
        [
            human_time_seconds(e.at),
            actor_cell(e.actor_uid, names),
            cell(&e.user),
            cell(&e.event),
            cell(&e.service),
            place_cell(e),
            cell(&e.host),
            cell(&e.detail),
        ]
    });
    if !entries.is_empty() && entries.len() >= limit as usize {
        text.push_str(&format!(
            "(the newest {limit} entries; --limit N or --since T shows others)\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000; // 2027-01-15 08:00:00 UTC

    fn user(name: &str) -> AdminUser {
        AdminUser {
            user: name.into(),
            enrolled: true,
            required: false,
            enroll_deadline: 0,
            last_used: 1_735_787_045,
            backup_codes_left: 9,
            locked_until: 0,
            live_sessions: 2,
        }
    }

    /// Asserts that each numbered line of `text` holds its part.
    fn assert_lines_hold(text: &str, parts: &[(usize, &str)]) {
        let lines: Vec<&str> = text.lines().collect();
        for &(i, part) in parts {
            assert!(lines[i].contains(part), "line {i} lacks {part:?}: {text}");
        }
    }

    #[test]
    fn users_table_and_json() {
        let users = vec![
            user("alice"),
            AdminUser {
                enrolled: false,
                required: true,
                enroll_deadline: NOW + 86_400,
                last_used: 0,
                backup_codes_left: 0,
                locked_until: NOW + 300,
                live_sessions: 0,
                ..user("bob")
            },
            AdminUser {
                enrolled: false,
                required: true,
                enroll_deadline: NOW - 86_400,
                ..user("carol")
            },
        ];
        let text = users_table(&users, NOW);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("USER   ENROLLED  REQUIRED"), "{text}");
        assert!(lines[1].ends_with('2'), "{text}");
        assert_lines_hold(
            &text,
            &[
                (1, "2025-01-02 03:04 UTC"),
                (2, "yes; enroll by 2027-01-16 08:00 UTC"),
                (2, "never"),
                (2, "2027-01-15 08:05 UTC"),
                (3, "yes; deadline passed"),
            ],
        );
        // Columns line up.
        let col = lines[0].find("LAST USE").unwrap();
        assert!(lines.iter().all(|l| l.len() > col), "{text}");

        let v = serde_json::to_value(AdminUserJson::from(&users[1])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "user": "bob",
                "enrolled": false,
                "required": true,
                "enroll_deadline": iso8601(NOW + 86_400),
                "last_used": null,
                "backup_codes_left": 0,
                "locked_until": iso8601(NOW + 300),
                "live_sessions": 0,
            })
        );
        assert!(users_table(&[], NOW).starts_with("No users"));
    }

    #[test]
    fn reset_report() {
        let plain = Reset {
            user: "alice",
            bypass_code: None,
            expires: None,
        };
        let text = reset_text(&plain, NOW);
        assert!(text.contains("user alice is removed"), "{text}");
        assert!(!text.contains("bypass"), "{text}");
        let v = serde_json::to_value(ResetJson::from(&plain)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user": "alice", "bypass_code": null, "expires": null})
        );
        let with_code = Reset {
            bypass_code: Some("abcd-efgh-jkmn"),
            expires: Some(NOW + 24 * 3600),
            ..plain
        };
        let text = reset_text(&with_code, NOW);
        assert!(text.contains("\n    abcd-efgh-jkmn\n"), "{text}");
        assert!(
            text.contains("until 2027-01-16 08:00 UTC (in 24 hours)"),
            "{text}"
        );
        assert!(text.contains("verifying the person's identity"), "{text}");
        assert_eq!(in_hours(3600), "1 hour");
        assert_eq!(in_hours(720 * 3600), "720 hours");
        assert_eq!(in_hours(600), "10 minutes");
        let v = serde_json::to_value(ResetJson::from(&with_code)).unwrap();
        assert_eq!(v["bypass_code"], "abcd-efgh-jkmn");
        assert_eq!(v["expires"], "2027-01-16T08:00:00Z");
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            at: 1_735_787_045,
            actor_uid: 0,
            actor_pid: 42,
            user: "alice".into(),
            event: "verify_failed".into(),
            service: "sshd".into(),
            tty: "ssh".into(),
            rhost: "203.0.113.7".into(),
            detail: "wrong code".into(),
            host: "web1".into(),
        }
    }

    #[test]
    fn log_table_and_json() {
        let entries = vec![
            entry(),
            AuditEntry {
                actor_uid: -1,
                service: String::new(),
                tty: "/dev/tty1".into(),
                rhost: String::new(),
                detail: "a\nb".into(),
                event: "unlock".into(),
                ..entry()
            },
            AuditEntry {
                actor_uid: 4_000_000_000,
                tty: String::new(),
                rhost: String::new(),
                ..entry()
            },
        ];
        let names = Names::default();
        let text = log_table(&entries, 100, &names);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("WHEN"), "{text}");
        assert!(
            lines[1].starts_with("2025-01-02 03:04:05 UTC  root"),
            "{text}"
        );
        assert!(lines[2].ends_with("a b"), "{text}");
        assert_lines_hold(
            &text,
            &[
                (1, "203.0.113.7 (ssh)"),
                (2, "/dev/tty1"),
                (3, "uid 4000000000"),
            ],
        );
        assert!(!text.contains("--limit"), "{text}");
        assert!(log_table(&entries, 3, &names).contains("the newest 3 entries"));
        assert_eq!(log_table(&[], 100, &names), "No audit entries match.\n");

        let v = serde_json::to_value(AuditJson::new(&entries[0], &names)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "at": "2025-01-02T03:04:05Z",
                "actor_uid": 0,
                "actor": "root",
                "user": "alice",
                "event": "verify_failed",
                "service": "sshd",
                "tty": "ssh",
                "rhost": "203.0.113.7",
                "detail": "wrong code",
                "host": "web1",
            })
        );
        let v = serde_json::to_value(AuditJson::new(&entries[1], &names)).unwrap();
        assert_eq!(v["actor_uid"], serde_json::Value::Null);
        assert_eq!(v["actor"], serde_json::Value::Null);
        assert_eq!(v["service"], serde_json::Value::Null);
    }

    #[test]
    fn refusals_name_the_permission() {
        assert!(!NOT_ADMIN.contains('\n'));
        assert!(NOT_ADMIN.contains("org.twofold.administer"));
    }
}

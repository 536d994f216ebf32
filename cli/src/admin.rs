//! `twofold admin`: users, reset, unlock, log — for root or holders of the polkit
//! permission `org.twofold.administer` (the daemon decides; this only asks and words
//! the answers).

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use twofold_contract::limits::{self, MAX_AUDIT_LIMIT, MAX_BYPASS_HOURS};
use twofold_contract::{AdminUser, AuditEntry, TwofoldError};

use crate::bus::Daemon;
use crate::cli::{AdminArgs, AdminCommand, AdminLogArgs, AdminResetArgs};
use crate::error::Failure;
use crate::format::{human_duration, human_time, iso8601, now, optional_iso8601};
use crate::options::{one_line, Action, UsageError};
use crate::output::write_out;

/// Audit entries shown when `--limit` is not given.
pub const DEFAULT_LOG_LIMIT: u32 = 100;

/// The one-line answer to a caller who is not an administrator.
pub const NOT_ADMIN: &str = "This needs an administrator: run it as root, or ask for the \
                             org.twofold.administer permission.";

/// What `twofold admin` does, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    Users,
    Reset {
        user: String,
        reason: String,
        /// 0: no bypass code.
        bypass_hours: u32,
    },
    Unlock {
        user: String,
    },
    Log {
        /// `None`: everyone.
        user: Option<String>,
        /// Unix time; 0 = from the start.
        since: i64,
        limit: u32,
    },
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// Checks the parsed `twofold admin` arguments.
pub fn validate(args: AdminArgs) -> Result<Action, UsageError> {
    validate_at(args, now())
}

fn validate_at(args: AdminArgs, now: i64) -> Result<Action, UsageError> {
    let action = match args.command {
        AdminCommand::Users => AdminAction::Users,
        AdminCommand::Reset(AdminResetArgs {
            user,
            reason,
            bypass_code,
        }) => AdminAction::Reset {
            user: validate_name("USER", &user)?,
            reason: validate_reason(&reason)?,
            bypass_hours: match bypass_code {
                None => 0,
                Some(h) => parse_hours(&h)?,
            },
        },
        AdminCommand::Unlock { user } => AdminAction::Unlock {
            user: validate_name("USER", &user)?,
        },
        AdminCommand::Log(AdminLogArgs { user, since, limit }) => AdminAction::Log {
            user: user.map(|u| validate_name("--user", &u)).transpose()?,
            since: match since {
                None => 0,
                Some(t) => parse_since(&t, now).map_err(|e| UsageError(format!("--since: {e}")))?,
            },
            limit: match limit {
                None => DEFAULT_LOG_LIMIT,
                Some(n) => parse_limit(&n)?,
            },
        },
    };
    let user = match &action {
        AdminAction::Reset { user, .. } | AdminAction::Unlock { user } => Some(user.clone()),
        AdminAction::Log { user, .. } => user.clone(),
        AdminAction::Users => None,
    };
    Ok(Action::Admin { user, action })
}

fn validate_name(what: &str, user: &str) -> Result<String, UsageError> {
    if user.is_empty() {
        return usage(format!("{what} needs a user name"));
    }
    limits::user_name(user).map_err(|e| UsageError(format!("{what}: {e}")))?;
    Ok(user.to_owned())
}

fn validate_reason(reason: &str) -> Result<String, UsageError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return usage(
            "--reason needs a text: why, and who checked the user's identity \
             (it goes into the audit trail)",
        );
    }
    limits::reason(reason).map_err(|e| UsageError(format!("--reason: {e}")))?;
    Ok(reason.to_owned())
}

fn parse_hours(text: &str) -> Result<u32, UsageError> {
    let t = text.trim();
    let t = t.strip_suffix('h').unwrap_or(t);
    match t.parse::<u32>() {
        Ok(h) if (1..=MAX_BYPASS_HOURS).contains(&h) => Ok(h),
        _ => usage(format!(
            "--bypass-code: \"{}\" is not a number of hours from 1 to {MAX_BYPASS_HOURS} \
             (how long the one-time code stays valid)",
            one_line(text)
        )),
    }
}

fn parse_limit(text: &str) -> Result<u32, UsageError> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => Ok(n),
        _ => usage(format!(
            "--limit: \"{}\" is not a number of entries from 1 to {MAX_AUDIT_LIMIT}",
            one_line(text)
        )),
    }
}

/// `--since`: a date (`2026-11-27`, midnight UTC), a date and time (`2026-11-27T14:00`,
/// `2026-11-27 14:00:30`, UTC unless it ends in `Z` or an offset such as `+01:00`), or a
/// time ago (`30m`, `2h`, `3d`, `1w`, `1h30m`). Returns Unix time.
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "\"{}\" is not a time; examples: 2026-11-27, 2026-11-27T14:00, 2h, 3d",
            one_line(text)
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if t.as_bytes().get(4) == Some(&b'-') {
        return parse_date_time(t).ok_or_else(bad);
    }
    let ago = parse_ago(t).ok_or_else(bad)?;
    Ok(now.saturating_sub(ago))
}

/// `2h`, `3d`, `1h30m`: seconds. A bare number is refused (seconds? days?).
fn parse_ago(t: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in t.to_ascii_lowercase().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let n: i64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    // Digits after the last unit, or no unit at all.
    if !number.is_empty() || t.is_empty() {
        return None;
    }
    // Nothing older than 1000 years.
    (total <= 1000 * 366 * 86_400).then_some(total)
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS][Z|±HH[:]MM]]` to Unix time: with an offset (or `Z`) as
/// written, without one in UTC; the date must exist (no 2025-02-30).
fn parse_date_time(t: &str) -> Option<i64> {
    if let Ok(at) = t.parse::<jiff::Timestamp>() {
        return Some(at.as_second());
    }
    let civil = t.parse::<jiff::civil::DateTime>().ok()?;
    let at = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(at.timestamp().as_second())
}

/// Runs the action.
pub async fn run(
    daemon: &Daemon<'_>,
    action: &AdminAction,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let proxy = daemon.proxy();
    let text = match action {
        AdminAction::Users => {
            let users = admin_call(daemon, proxy.admin_users()).await?;
            if json {
                let rows: Vec<AdminUserJson<'_>> = users.iter().map(AdminUserJson::from).collect();
                to_json(&rows)?
            } else {
                users_table(&users, now())
            }
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
            if json {
                to_json(&ResetJson::from(&reset))?
            } else {
                reset_text(&reset, issued)
            }
        }
        AdminAction::Unlock { user } => {
            admin_call(daemon, proxy.admin_unlock(user)).await?;
            if json {
                to_json(&serde_json::json!({ "user": user, "unlocked": true }))?
            } else {
                format!(
                    "Unlocked user {user}: the failed attempts from every source are cleared.\n"
                )
            }
        }
        AdminAction::Log { user, since, limit } => {
            let who = user.as_deref().unwrap_or("");
            let entries = admin_call(daemon, proxy.audit_log(who, *since, *limit)).await?;
            let mut names = Names::default();
            if json {
                let rows: Vec<AuditJson<'_>> = entries
                    .iter()
                    .map(|e| AuditJson::new(e, &mut names))
                    .collect();
                to_json(&rows)?
            } else {
                log_table(&entries, *limit, &mut names)
            }
        }
    };
    write_out(out, &text)
}

/// An admin call: a refusal says what permission is missing.
async fn admin_call<T>(
    daemon: &Daemon<'_>,
    call: impl std::future::Future<Output = Result<T, TwofoldError>>,
) -> Result<T, Failure> {
    daemon
        .call(call)
        .await?
        .map_err(|e| admin_failure(daemon, &e))
}

fn admin_failure(daemon: &Daemon<'_>, e: &TwofoldError) -> Failure {
    match e {
        TwofoldError::PermissionDenied(_) => Failure::coded("permission_denied", NOT_ADMIN),
        other => daemon.context().failure(other),
    }
}

fn to_json(value: &impl Serialize) -> Result<String, Failure> {
    serde_json::to_string(value)
        .map(|s| s + "\n")
        .map_err(|e| Failure::new(format!("Could not write JSON: {e}")))
}

/// Text from the daemon, for a table cell: one line, "-" when empty.
fn cell(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        one_line(s)
    }
}

/// Columns separated by two spaces; the last one is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            let pad = w.saturating_sub(c.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
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
    if users.is_empty() {
        return "No users yet: nobody has enrolled, and no required group has members.\n"
            .to_owned();
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                cell(&u.user),
                if u.enrolled { "yes" } else { "no" }.to_owned(),
                required_cell(u, now),
                if u.last_used > 0 {
                    human_time(u.last_used)
                } else {
                    "never".to_owned()
                },
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
        .collect();
    table(
        &[
            "USER",
            "ENROLLED",
            "REQUIRED",
            "LAST USE",
            "BACKUP CODES",
            "LOCKED UNTIL",
            "SESSIONS",
        ],
        &rows,
    )
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

/// "1 hour", "24 hours": the validity as the administrator gave it.
fn in_hours(secs: i64) -> String {
    if secs < 3600 {
        return human_duration(secs);
    }
    match (secs + 1800) / 3600 {
        1 => "1 hour".to_owned(),
        n => format!("{n} hours"),
    }
}

// ---- admin log ----

/// Uid to user name through NSS, asked once per uid.
#[derive(Debug, Default)]
struct Names(HashMap<i64, Option<String>>);

impl Names {
    fn get(&mut self, uid: i64) -> Option<String> {
        if uid < 0 {
            return None;
        }
        self.0.entry(uid).or_insert_with(|| user_name(uid)).clone()
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

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl<'a> AuditJson<'a> {
    fn new(e: &'a AuditEntry, names: &mut Names) -> Self {
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

/// `2025-01-02 03:04:05 UTC`: an audit trail wants the seconds.
fn log_time(unix: i64) -> String {
    iso8601(unix).replacen('T', " ", 1).replace('Z', " UTC")
}

/// "root", "uid 1234" (no name), "-" (unknown).
fn actor_cell(uid: i64, names: &mut Names) -> String {
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

fn log_table(entries: &[AuditEntry], limit: u32, names: &mut Names) -> String {
    if entries.is_empty() {
        return "No audit entries match.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                log_time(e.at),
                actor_cell(e.actor_uid, names),
                cell(&e.user),
                cell(&e.event),
                cell(&e.service),
                place_cell(e),
                cell(&e.host),
                cell(&e.detail),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "WHEN",
            "ACTOR",
            "USER",
            "EVENT",
            "SERVICE",
            "TTY/RHOST",
            "HOST",
            "DETAIL",
        ],
        &rows,
    );
    if entries.len() >= limit as usize {
        text.push_str(&format!(
            "(the newest {limit} entries; --limit N or --since T shows others)\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    const NOW: i64 = 1_800_000_000; // 2027-01-15 08:00:00 UTC

    fn parse(args: &[&str]) -> Result<AdminAction, UsageError> {
        let mut argv = vec!["twofold", "admin"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("clap accepts");
        match cli.command {
            crate::cli::Commands::Admin(a) => match validate_at(a, NOW)? {
                Action::Admin { action, .. } => Ok(action),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&["users"]).unwrap(), AdminAction::Users);
        assert_eq!(
            parse(&["reset", "alice", "--reason", " lost phone "]).unwrap(),
            AdminAction::Reset {
                user: "alice".into(),
                reason: "lost phone".into(),
                bypass_hours: 0
            }
        );
        assert_eq!(
            parse(&["reset", "alice", "--reason", "x", "--bypass-code", "24"]).unwrap(),
            AdminAction::Reset {
                user: "alice".into(),
                reason: "x".into(),
                bypass_hours: 24
            }
        );
        assert_eq!(
            parse(&["unlock", "bob"]).unwrap(),
            AdminAction::Unlock { user: "bob".into() }
        );
        assert_eq!(
            parse(&["log"]).unwrap(),
            AdminAction::Log {
                user: None,
                since: 0,
                limit: DEFAULT_LOG_LIMIT
            }
        );
        assert_eq!(
            parse(&["log", "--user", "bob", "--since", "2h", "--limit", "5"]).unwrap(),
            AdminAction::Log {
                user: Some("bob".into()),
                since: NOW - 7200,
                limit: 5
            }
        );
    }

    #[test]
    fn bad_arguments_are_one_line_usage_errors() {
        for args in [
            &["reset", "alice", "--reason", "  "][..],
            &["reset", "alice", "--reason", "a\nb"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "0"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "721"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "two"],
            &["reset", "a\u{1b}b", "--reason", "x"],
            &["unlock", ""],
            &["log", "--since", "yesterday"],
            &["log", "--since", "5"],
            &["log", "--limit", "0"],
            &["log", "--user", ""],
        ] {
            let e = parse(args).unwrap_err();
            assert!(!e.0.contains('\n'), "{args:?}: {e}");
        }
        let long = "x".repeat(limits::MAX_REASON_LEN + 1);
        assert!(parse(&["reset", "alice", "--reason", &long]).is_err());
        // USER and --reason are required by clap itself.
        assert!(Cli::try_parse_from(["twofold", "admin", "reset", "alice"]).is_err());
        assert!(Cli::try_parse_from(["twofold", "admin", "unlock"]).is_err());
        assert!(Cli::try_parse_from(["twofold", "admin"]).is_err());
    }

    #[test]
    fn since_accepts_dates_times_and_durations() {
        assert_eq!(parse_since("2025-01-02", NOW), Ok(1_735_776_000));
        assert_eq!(parse_since("2025-01-02T03:04:05", NOW), Ok(1_735_787_045));
        assert_eq!(parse_since("2025-01-02 03:04:05Z", NOW), Ok(1_735_787_045));
        assert_eq!(parse_since("2025-01-02T03:04", NOW), Ok(1_735_787_040));
        assert_eq!(
            parse_since("2025-01-02T04:04:05+01:00", NOW),
            Ok(1_735_787_045)
        );
        assert_eq!(
            parse_since("2025-01-02T02:04:05-0100", NOW),
            Ok(1_735_787_045)
        );
        assert_eq!(parse_since("2000-02-29", NOW), Ok(951_782_400));
        // The hour alone is a time too (RFC 9557, as jiff reads it).
        assert_eq!(parse_since("2025-01-02T10", NOW), Ok(1_735_812_000));
        assert_eq!(parse_since("1970-01-01", NOW), Ok(0));
        assert_eq!(parse_since("2h", NOW), Ok(NOW - 7200));
        assert_eq!(parse_since("3d", NOW), Ok(NOW - 3 * 86_400));
        assert_eq!(parse_since("1h30m", NOW), Ok(NOW - 5400));
        assert_eq!(parse_since(" 1W ", NOW), Ok(NOW - 7 * 86_400));
        for bad in [
            "",
            "2h5",
            "h",
            "2025-02-30",
            "2001-02-29",
            "2025-13-01",
            "2025-1-2",
            "2025-01-02T24:00",
            "2025-01-02T10:00+1",
            "2025-01-02X",
            "99999999999999999999d",
            "-2h",
        ] {
            assert!(parse_since(bad, NOW).is_err(), "accepted {bad:?}");
        }
    }

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
        assert!(lines[1].contains("2025-01-02 03:04 UTC"), "{text}");
        assert!(lines[1].ends_with('2'), "{text}");
        assert!(
            lines[2].contains("yes; enroll by 2027-01-16 08:00 UTC"),
            "{text}"
        );
        assert!(lines[2].contains("never"), "{text}");
        assert!(lines[2].contains("2027-01-15 08:05 UTC"), "{text}");
        assert!(lines[3].contains("yes; deadline passed"), "{text}");
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
        let mut names = Names::default();
        let text = log_table(&entries, 100, &mut names);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("WHEN"), "{text}");
        assert!(
            lines[1].starts_with("2025-01-02 03:04:05 UTC  root"),
            "{text}"
        );
        assert!(lines[1].contains("203.0.113.7 (ssh)"), "{text}");
        assert!(lines[2].contains("/dev/tty1"), "{text}");
        assert!(lines[2].ends_with("a b"), "{text}");
        assert!(lines[3].contains("uid 4000000000"), "{text}");
        assert!(!text.contains("--limit"), "{text}");
        assert!(log_table(&entries, 3, &mut names).contains("the newest 3 entries"));
        assert_eq!(log_table(&[], 100, &mut names), "No audit entries match.\n");

        let v = serde_json::to_value(AuditJson::new(&entries[0], &mut names)).unwrap();
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
        let v = serde_json::to_value(AuditJson::new(&entries[1], &mut names)).unwrap();
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

//! `twofold sessions`: list, revoke, timeout, forget.

use serde::Serialize;
use serde_json::json;
use twofold_contract::limits::SESSION_TIMEOUT_WARNING;
use twofold_contract::{auth_method, method, SessionInfo, SessionList, TwofoldError};

use crate::commands::cx::Cx;
use crate::error::Failure;
use crate::options::SessionsAction;
use crate::pam_config::grace_configured;
use crate::text::table;
use crate::time::{human_duration, human_time, iso8601, now, optional_iso8601};

/// Runs the action.
pub async fn run(cx: &mut Cx<'_>, action: &SessionsAction) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let user = daemon.user_arg();
    let proxy = daemon.proxy();
    match action {
        SessionsAction::List { all, pam_dir } => {
            let list = daemon.run(proxy.list_sessions(user, *all)).await?;
            let rows = list.sessions.iter().map(SessionJson::from);
            cx.out.list(rows, || {
                let grace = grace_configured(pam_dir);
                human(&list, *all, grace, now())
            })
        }
        SessionsAction::Revoke { id } => {
            match daemon.call(proxy.revoke_session(id)).await? {
                Ok(()) => {}
                Err(TwofoldError::PermissionDenied(m) | TwofoldError::InvalidArgument(m)) => {
                    return Err(Failure::new(m))
                }
                Err(e) => return Err(daemon.context().failure(&e)),
            }
            cx.out.answer(&json!({ "revoked": [id] }), || {
                format!("Session {id} ended.\n")
            })
        }
        SessionsAction::RevokeOthers => {
            let ended = daemon.run(proxy.revoke_other_sessions(user)).await?;
            cx.out.answer(&json!({ "revoked": ended }), || {
                if ended.is_empty() {
                    "No other session to end.\n".to_string()
                } else {
                    format!(
                        "Ended {} session{}: {}\n",
                        ended.len(),
                        if ended.len() == 1 { "" } else { "s" },
                        ended.join(", ")
                    )
                }
            })
        }
        SessionsAction::Timeout { seconds } => {
            daemon
                .run(proxy.set_session_timeout(user, *seconds))
                .await?;
            if cx.out.json {
                return cx.out.write_json(&json!({ "timeout": seconds }));
            }
            let text = if *seconds == 0 {
                "No session timeout of your own any more (the administrator's default still applies).\n"
                    .to_string()
            } else {
                // What the daemon will do now: the limit that applies, and the sessions
                // already past it.
                let list = daemon.run(proxy.list_sessions(user, false)).await?;
                let at = now();
                let applies = match list.default_timeout {
                    0 => *seconds,
                    d => (*seconds).min(d),
                };
                let older = list
                    .sessions
                    .iter()
                    .filter(|s| s.ended == 0 && at - s.started >= applies as i64)
                    .count();
                timeout_text(
                    &daemon.context().who(),
                    *seconds,
                    list.default_timeout,
                    older,
                )
            };
            cx.out.say(&text)
        }
        SessionsAction::Forget => {
            let n = daemon.run(proxy.forget_remembered(user)).await?;
            cx.out.answer(&json!({ "forgotten": n }), || {
                format!(
                    "Forgot {n} remembered login{}: the next login asks for a code again.\n",
                    if n == 1 { "" } else { "s" }
                )
            })
        }
    }
}

/// What `sessions timeout` promises: exactly what the daemon's reaper does with a
/// timeout of `seconds` (the user's) under the administrator's `default` (0: none), and
/// `older` live sessions already past it.
fn timeout_text(who: &str, seconds: u64, default: u64, older: usize) -> String {
    let applies = if default > 0 {
        seconds.min(default)
    } else {
        seconds
    };
    let mut text = format!(
        "twofoldd ends the login sessions of {who} {} after they start.",
        human_duration(applies as i64)
    );
    if applies < seconds {
        text.push_str(&format!(
            " The administrator's limit, {}, is shorter and applies.",
            human_duration(default as i64)
        ));
    }
    if applies as i64 > SESSION_TIMEOUT_WARNING {
        text.push_str(&format!(
            " {} before, it writes a warning on the session's terminal, where the session \
             has one.",
            human_duration(SESSION_TIMEOUT_WARNING)
        ));
    } else {
        text.push_str(&format!(
            " The timeout is shorter than {}: the warning on the session's terminal, where \
             the session has one, comes as soon as twofoldd sees the session.",
            human_duration(SESSION_TIMEOUT_WARNING)
        ));
    }
    match older {
        0 => {}
        1 => {
            text.push_str(" 1 session is already older: it ends within seconds, without a warning.")
        }
        n => text.push_str(&format!(
            " {n} sessions are already older: they end within seconds, without a warning."
        )),
    }
    text.push('\n');
    text
}

/// One session in `sessions --json`: times as ISO 8601 UTC (plus `started_unix`).
#[derive(Debug, Serialize)]
pub struct SessionJson<'a> {
    pub id: &'a str,
    pub user: &'a str,
    pub service: &'a str,
    pub tty: &'a str,
    pub rhost: &'a str,
    pub rhost_name: &'a str,
    pub location: &'a str,
    pub country_code: &'a str,
    pub ruser: &'a str,
    pub host: &'a str,
    pub started: String,
    pub started_unix: i64,
    pub idle_seconds: Option<i64>,
    pub current: bool,
    pub leader_pid: u32,
    pub logind_session: &'a str,
    pub auth_method: &'a str,
    pub auth_at: Option<String>,
    pub expires: Option<String>,
    pub ended: Option<String>,
    pub end_reason: &'a str,
}

impl<'a> From<&'a SessionInfo> for SessionJson<'a> {
    fn from(s: &'a SessionInfo) -> Self {
        SessionJson {
            id: &s.id,
            user: &s.user,
            service: &s.service,
            tty: &s.tty,
            rhost: &s.rhost,
            rhost_name: &s.rhost_name,
            location: &s.location,
            country_code: &s.country_code,
            ruser: &s.ruser,
            host: &s.host,
            started: iso8601(s.started),
            started_unix: s.started,
            idle_seconds: (s.idle >= 0).then_some(s.idle),
            current: s.current,
            leader_pid: s.leader_pid,
            logind_session: &s.logind_session,
            auth_method: &s.auth_method,
            auth_at: optional_iso8601(s.auth_at),
            expires: optional_iso8601(s.expires),
            ended: optional_iso8601(s.ended),
            end_reason: &s.end_reason,
        }
    }
}

/// Text a person sees for a daemon-given string: one line, no control characters.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(120)
        .collect()
}

fn how(method_name: &str) -> &str {
    match method_name {
        method::TOTP | method::HOTP => "code",
        method::BACKUP_CODE => "backup code",
        method::BYPASS => "admin bypass code",
        auth_method::GRACE => "remembered",
        auth_method::NOT_ENROLLED => "not enrolled",
        auth_method::NONE | "" => "-",
        other => other,
    }
}

fn from(s: &SessionInfo) -> String {
    if s.rhost.is_empty() {
        return if s.location.is_empty() {
            "local".into()
        } else {
            clean(&s.location)
        };
    }
    let mut details = Vec::new();
    if !s.rhost_name.is_empty() {
        details.push(clean(&s.rhost_name));
    }
    if !s.location.is_empty() {
        details.push(clean(&s.location));
    }
    if details.is_empty() {
        clean(&s.rhost)
    } else {
        format!("{} ({})", clean(&s.rhost), details.join(", "))
    }
}

/// The table for people. The remembered logins are listed only when `grace` (a module's
/// `grace=` window is configured): without one they skip nothing.
pub fn human(list: &SessionList, all: bool, grace: bool, now: i64) -> String {
    let mut out = String::new();
    let live: Vec<&SessionInfo> = list.sessions.iter().filter(|s| s.ended == 0).collect();
    if live.is_empty() {
        out.push_str("No live login sessions.\n");
    } else {
        let rows: Vec<[String; 8]> = live
            .iter()
            .map(|s| {
                [
                    format!("{}{}", if s.current { "* " } else { "  " }, s.id),
                    clean(&s.service),
                    if s.tty.is_empty() {
                        "-".into()
                    } else {
                        clean(&s.tty)
                    },
                    from(s),
                    format!(
                        "{} ({} ago)",
                        human_time(s.started),
                        human_duration(now - s.started)
                    ),
                    if s.idle >= 0 {
                        human_duration(s.idle)
                    } else {
                        "-".into()
                    },
                    how(&s.auth_method).to_string(),
                    if s.expires > 0 {
                        format!("in {}", human_duration(s.expires - now))
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        let header = [
            "  ID", "SERVICE", "TTY", "FROM", "STARTED", "IDLE", "2FA", "ENDS",
        ];
        out.push_str(&table(&header, &rows));
        if live.iter().any(|s| s.current) {
            out.push_str("(* = the session you are in)\n");
        }
    }
    if all {
        let ended: Vec<&SessionInfo> = list.sessions.iter().filter(|s| s.ended != 0).collect();
        if !ended.is_empty() {
            out.push_str("\nEnded (last 7 days):\n");
            for s in ended {
                out.push_str(&format!(
                    "  {}  {}  from {}  {} - {}: {}\n",
                    s.id,
                    clean(&s.service),
                    from(s),
                    human_time(s.started),
                    human_time(s.ended),
                    clean(&s.end_reason)
                ));
            }
        }
    }
    if grace && !list.remembered.is_empty() {
        out.push_str("\nRemembered logins (a module's grace= window may skip the code):\n");
        for r in &list.remembered {
            let place = match (r.tty.is_empty() || r.tty == "ssh", r.rhost.is_empty()) {
                (false, _) => format!("on {}", clean(&r.tty)),
                (true, false) => format!("from {}", clean(&r.rhost)),
                (true, true) => "locally".into(),
            };
            out.push_str(&format!(
                "  {} {place}, {} ago, by {}\n",
                clean(&r.service),
                human_duration(now - r.at),
                how(&r.method)
            ));
        }
        out.push_str("  (`twofold sessions forget` clears them)\n");
    }
    let timeout = match (list.timeout, list.default_timeout) {
        (0, 0) => "none".to_string(),
        (0, d) => format!("{} (administrator's default)", human_duration(d as i64)),
        (t, 0) => format!("{} (yours)", human_duration(t as i64)),
        (t, d) => format!(
            "{} (yours; the administrator's is {})",
            human_duration(t.min(d) as i64),
            human_duration(d as i64)
        ),
    };
    out.push_str(&format!("\nSession timeout: {timeout}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_contract::RememberedLogin;

    #[test]
    fn table_marks_the_current_session_and_shows_where_from() {
        let list = SessionList {
            sessions: vec![
                SessionInfo {
                    id: "0a1b2c3d".into(),
                    user: "alice".into(),
                    service: "sshd".into(),
                    tty: "ssh".into(),
                    rhost: "192.0.2.1".into(),
                    rhost_name: "box.example".into(),
                    location: "Paris, France".into(),
                    started: 1_000,
                    idle: -1,
                    current: true,
                    auth_method: "totp".into(),
                    ..Default::default()
                },
                SessionInfo {
                    id: "99999999".into(),
                    service: "login".into(),
                    tty: "tty1".into(),
                    location: "local".into(),
                    started: 500,
                    ended: 900,
                    end_reason: "leader gone".into(),
                    ..Default::default()
                },
            ],
            remembered: vec![RememberedLogin {
                service: "sudo".into(),
                tty: "/dev/pts/2".into(),
                at: 1_900,
                method: "totp".into(),
                ..Default::default()
            }],
            timeout: 3600,
            default_timeout: 0,
        };
        let text = human(&list, true, true, 2_000);
        assert!(text.contains("* 0a1b2c3d"), "{text}");
        assert!(
            text.contains("192.0.2.1 (box.example, Paris, France)"),
            "{text}"
        );
        assert!(text.contains("leader gone"), "{text}");
        assert!(text.contains("Remembered"), "{text}");
        assert!(text.contains("sudo on /dev/pts/2"), "{text}");
        assert!(text.contains("60 minutes (yours)"), "{text}");
        let hidden = human(&list, false, true, 2_000);
        assert!(!hidden.contains("99999999"), "{hidden}");
        let no_grace = human(&list, true, false, 2_000);
        assert!(!no_grace.contains("Remembered"), "{no_grace}");
    }

    #[test]
    fn the_timeout_promises_what_the_daemon_does() {
        let long = timeout_text("your account", 8 * 3600, 0, 0);
        assert_eq!(
            long,
            "twofoldd ends the login sessions of your account 8 hours after they start. 60 seconds before, \
             it writes a warning on the session's terminal, where the session has one.\n"
        );
        let short = timeout_text("your account", 20, 0, 0);
        assert!(!short.contains("minute before"), "{short}");
        assert!(
            short.contains("as soon as twofoldd sees the session"),
            "{short}"
        );
        let capped = timeout_text("user alice", 8 * 3600, 3600, 2);
        assert!(
            capped.contains("of user alice 60 minutes after"),
            "{capped}"
        );
        assert!(
            capped.contains("administrator's limit, 60 minutes, is shorter"),
            "{capped}"
        );
        assert!(
            capped.contains(
                "2 sessions are already older: they end within seconds, without a warning."
            ),
            "{capped}"
        );
    }

    #[test]
    fn json_has_the_keys_scripts_rely_on() {
        let s = SessionInfo {
            id: "0a1b2c3d".into(),
            started: 86_400,
            idle: 5,
            ..Default::default()
        };
        let v = serde_json::to_value(SessionJson::from(&s)).unwrap();
        for key in ["id", "user", "service", "tty", "rhost", "started"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["started"], "1970-01-02T00:00:00Z");
        assert_eq!(v["idle_seconds"], 5);
    }
}

//! Policy and administration against the real daemon: required groups with an enrollment
//! grace, the admin methods behind root or polkit (a python-dbusmock polkitd on the
//! private bus), bypass codes, the audit trail, config errors and SIGHUP, and lockouts
//! keyed by source.

use std::time::Duration;

use twofold_tests::flows::{admin_reset, assert_table_header, login_ends, required_policy};
use twofold_tests::root_only;
use twofold_tests::{
    json, one_line_failure, pam, stdout, totp, wrong_code, Enrolled, Login, PolkitMock, TestEnv,
    NOBODY,
};

/// What libpam reports when the only module returned PAM_IGNORE (no module decided).
const STACK_UNDECIDED: i32 = pam::PERM_DENIED;

/// `bin` is in the required group `bin`; `daemon` is in no required group.
const REQUIRED: &str = "bin";
const FREE: &str = "daemon";

fn config(grace_days: u32) -> String {
    required_policy(REQUIRED, grace_days, "the help desk (ext. 4242)")
}

#[test]
fn policy_matrix() {
    root_only!();
    for grace in [7u32, 0] {
        let env = TestEnv::with_config(&config(grace));
        let within = grace > 0;
        for nullok in [false, true] {
            let args = if nullok { "nullok" } else { "" };
            // Required, not enrolled.
            let out = env.pam(&Login::new(REQUIRED, "123456").args(args));
            assert_eq!(out.prompts(), 0, "{out:?}");
            if within {
                assert_eq!(
                    out.result, STACK_UNDECIDED,
                    "grace={grace} nullok={nullok}: {out:?}"
                );
                assert!(out.texts().contains("twofold enroll"), "{out:?}");
                assert!(
                    out.texts().contains("UTC"),
                    "the deadline is named: {out:?}"
                );
            } else {
                assert_eq!(
                    out.result,
                    pam::AUTH_ERR,
                    "grace={grace} nullok={nullok}: {out:?}"
                );
                assert!(out.texts().contains("help desk (ext. 4242)"), "{out:?}");
            }
            // Not required, not enrolled: nullok decides.
            let out = env.pam(&Login::new(FREE, "123456").args(args));
            let expected = if nullok {
                STACK_UNDECIDED
            } else {
                pam::AUTH_ERR
            };
            assert_eq!(out.result, expected, "free user, nullok={nullok}: {out:?}");
        }
        // Enrolled, required or not: the code decides, grace or not.
        for user in [REQUIRED, FREE] {
            let enrolled = env.enroll(user);
            let out = env.pam(&Login::new(user, &totp(&enrolled.secret, 0)).args("nullok"));
            assert_eq!(out.result, pam::SUCCESS, "{user} grace={grace}: {out:?}");
            let out = env.pam(&Login::new(user, "000000"));
            assert_eq!(out.result, pam::AUTH_ERR, "{user}: {out:?}");
        }
        let status = env.cli(&["status", "--json", "--user", FREE], None, "");
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["enrolled"], true, "{status}");
    }
    // Status shows the deadline of a required user.
    let env = TestEnv::with_config(&config(7));
    let st = env.with_proxy(|p| Box::pin(async move { p.status(REQUIRED).await.unwrap() }));
    assert!(st.required);
    let week = 7 * 86_400;
    let left = st.enroll_deadline - twofold_tests::unix_now() as i64;
    assert!((week - 60..=week).contains(&left), "deadline in {left} s");
}

#[test]
fn admin_methods_need_root_or_polkit() {
    root_only!();
    let env = TestEnv::new();
    env.enroll(FREE);
    // nobody, without polkit on the bus: refused.
    let (ok, out) = env.dbus_send_as(NOBODY, "AdminUsers", &[]);
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    let (ok, out) = env.dbus_send_as(NOBODY, "Status", &["string:daemon"]);
    assert!(!ok && out.contains("PermissionDenied"), "{out}");

    // polkit says no: refused.
    let polkit = PolkitMock::start(&env);
    let (ok, out) = env.dbus_send_as(NOBODY, "AdminUsers", &[]);
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    let (ok, out) = env.dbus_send_as(NOBODY, "AdminUnlock", &["string:daemon"]);
    assert!(!ok && out.contains("PermissionDenied"), "{out}");

    // polkit says yes for org.twofold.administer: allowed, and audited with the actor.
    polkit.allow(&["org.twofold.administer"]);
    let (ok, out) = env.dbus_send_as(NOBODY, "AdminUsers", &[]);
    assert!(ok && out.contains("\"daemon\""), "{out}");
    let (ok, out) = env.dbus_send_as(NOBODY, "AdminUnlock", &["string:daemon"]);
    assert!(ok, "{out}");
    let (ok, out) = env.dbus_send_as(NOBODY, "Status", &["string:daemon"]);
    assert!(ok, "{out}");
    // Checking codes is never delegated, not even to a polkit administrator.
    let (ok, out) = env.dbus_send_as(
        NOBODY,
        "Verify",
        &["string:daemon", "string:123456", "dict:string:string:"],
    );
    assert!(!ok && out.contains("PermissionDenied"), "{out}");
    let log =
        env.with_proxy(|p| Box::pin(async move { p.audit_log("daemon", 0, 50).await.unwrap() }));
    let unlock = log
        .iter()
        .find(|e| e.event == "unlock")
        .expect("unlock audited");
    assert_eq!(unlock.actor_uid, i64::from(NOBODY));
}

#[test]
fn reset_with_a_bypass_code_lets_the_user_in_once() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(FREE);
    let code = env.with_proxy(|p| {
        Box::pin(async move {
            p.admin_reset(FREE, "lost phone and codes; ID checked by J. Doe", 1)
                .await
                .unwrap()
        })
    });
    assert_eq!(code.len(), 12, "{code}");
    // The old secret no longer works; the bypass code works once.
    let out = env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    assert_ne!(out.result, pam::SUCCESS, "{out:?}");
    let out = env.pam(&Login::new(FREE, &code));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert!(out.texts().contains("twofold enroll"), "{out:?}");
    let out = env.pam(&Login::new(FREE, &code));
    assert_ne!(
        out.result,
        pam::SUCCESS,
        "a bypass code works once: {out:?}"
    );
    // The user enrolls again.
    let again = env.enroll(FREE);
    login_ends(
        &env,
        &Login::new(FREE, &totp(&again.secret, 0)),
        pam::SUCCESS,
        "enrolled again",
    );
}

#[test]
fn every_action_is_audited_with_its_actor() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(FREE);
    env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    env.pam(&Login::new(FREE, "000000"));
    env.pam(&Login::new(FREE, &enrolled.backup_codes[0]));
    for _ in 0..5 {
        env.pam(&Login::new(FREE, "000001"));
    }
    env.cli(&["backup-codes", "regenerate", "--user", FREE], None, "");
    env.with_proxy(|p| Box::pin(async move { p.admin_unlock(FREE).await.unwrap() }));
    env.with_proxy(|p| {
        Box::pin(async move { p.admin_reset(FREE, "left the company", 0).await.unwrap() })
    });
    let log = env.with_proxy(|p| Box::pin(async move { p.audit_log(FREE, 0, 500).await.unwrap() }));
    let events: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
    for expected in [
        "enroll_begin",
        "enroll_confirm",
        "verify_ok",
        "verify_failed",
        "backup_code_used",
        "lockout",
        "backup_codes_regenerated",
        "unlock",
        "reset",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    assert!(
        log.iter().all(|e| e.actor_uid == 0 && e.user == FREE),
        "{log:?}"
    );
    let ok = log.iter().find(|e| e.event == "verify_ok").unwrap();
    assert_eq!(ok.service, "twofold-test");
    assert!(log.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    let reset = log.iter().find(|e| e.event == "reset").unwrap();
    assert!(reset.detail.contains("left the company"));
    // Everyone's trail, and a filter by time.
    let all = env.with_proxy(|p| Box::pin(async move { p.audit_log("", 0, 500).await.unwrap() }));
    assert_eq!(all.len(), log.len());
    let future = twofold_tests::unix_now() as i64 + 3600;
    let none =
        env.with_proxy(|p| Box::pin(async move { p.audit_log("", future, 500).await.unwrap() }));
    assert!(none.is_empty());
}

#[test]
fn config_errors_name_key_and_line_and_sighup_keeps_a_good_config() {
    root_only!();
    let mut env = TestEnv::with_config(&config(0));
    // A bad file at start: the daemon refuses and says where.
    let good = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, "totp_window = 1\nlockout_max = 3\n").unwrap();
    env.stop_daemon();
    let mut child = env.spawn_daemon();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let log = env.log_text();
    assert!(
        log.contains("line 2") && log.contains("lockout_max"),
        "{log}"
    );

    std::fs::write(&env.config, &good).unwrap();
    env.start_daemon();
    let out = env.pam(&Login::new(REQUIRED, "123456").args("nullok"));
    assert_eq!(out.result, pam::AUTH_ERR, "required after grace: {out:?}");

    // A broken file on SIGHUP: the old policy stays, and the log says why.
    std::fs::write(&env.config, "require_groups = [\n").unwrap();
    env.signal_daemon(libc::SIGHUP);
    env.wait_for_log("keeping the previous configuration");
    let out = env.pam(&Login::new(REQUIRED, "123456").args("nullok"));
    assert_eq!(
        out.result,
        pam::AUTH_ERR,
        "old policy still in force: {out:?}"
    );

    // A good file on SIGHUP: the new policy applies without a restart.
    std::fs::write(&env.config, "totp_window = 1\n").unwrap();
    env.signal_daemon(libc::SIGHUP);
    env.wait_for_log("configuration reloaded");
    let out = env.pam(&Login::new(REQUIRED, "123456").args("nullok"));
    assert_eq!(out.result, STACK_UNDECIDED, "no longer required: {out:?}");
}

#[test]
fn remote_failures_do_not_lock_the_local_console() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(FREE);
    let from = |rhost: Option<&str>, tty: &str, code: &str| Login {
        rhost: rhost.map(str::to_string),
        tty: Some(tty.to_string()),
        ..Login::new(FREE, code)
    };
    for _ in 0..5 {
        env.pam(&from(Some("203.0.113.66"), "ssh", "000000"));
    }
    let out = env.pam(&from(
        Some("203.0.113.66"),
        "ssh",
        &totp(&enrolled.secret, 0),
    ));
    assert_eq!(
        out.result,
        pam::MAXTRIES,
        "the guessing host is locked: {out:?}"
    );
    let out = env.pam(&from(None, "/dev/tty1", &totp(&enrolled.secret, 0)));
    assert_eq!(out.result, pam::SUCCESS, "the console is not: {out:?}");
    let out = env.pam(&from(
        Some("198.51.100.2"),
        "ssh",
        &totp(&enrolled.secret, 1),
    ));
    assert_eq!(out.result, pam::SUCCESS, "nor another host: {out:?}");
}

// ---- The `twofold admin` commands, end to end through the CLI. ----

fn row<'a>(list: &'a serde_json::Value, user: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user)
        .unwrap_or_else(|| panic!("{user} not in {list}"))
}

/// Enrolls `user` and locks it out with five wrong codes in a row.
fn enrolled_and_locked_out(env: &TestEnv, user: &str) -> Enrolled {
    let enrolled = env.enroll(user);
    let wrong = wrong_code(&enrolled.secret);
    for _ in 0..5 {
        env.pam(&Login::new(user, &wrong));
    }
    enrolled
}

#[test]
fn cli_admin_users_lists_enrolled_and_required_users() {
    root_only!();
    let env = TestEnv::with_config(&config(7));
    let enrolled = env.enroll(FREE);
    let out = env.pam(&Login::new(FREE, &enrolled.backup_codes[0]));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    // The daemon sees the required user at a login: its grace starts.
    env.pam(&Login::new(REQUIRED, "123456"));

    let list = json(&env.cli(&["admin", "users", "--json"], None, ""));
    let free = row(&list, FREE);
    assert_eq!(free["enrolled"], true, "{free}");
    assert_eq!(free["required"], false, "{free}");
    assert_eq!(free["backup_codes_left"], 9, "{free}");
    assert!(free["last_used"].as_str().unwrap().ends_with('Z'), "{free}");
    assert_eq!(free["locked_until"], serde_json::Value::Null, "{free}");
    assert_eq!(free["enroll_deadline"], serde_json::Value::Null, "{free}");
    assert!(free["live_sessions"].is_u64(), "{free}");
    let required = row(&list, REQUIRED);
    assert_eq!(required["enrolled"], false, "{required}");
    assert_eq!(required["required"], true, "{required}");
    assert!(required["enroll_deadline"].is_string(), "{required}");
    assert_eq!(required["last_used"], serde_json::Value::Null, "{required}");

    let out = env.cli(&["admin", "users"], None, "");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert_table_header(
        &text,
        "USER ENROLLED REQUIRED LAST USE BACKUP CODES LOCKED UNTIL SESSIONS",
    );
    let free_line = text.lines().find(|l| l.starts_with(FREE)).expect(&text);
    let cells: Vec<&str> = free_line.split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[1].trim(), "yes", "{free_line}");
    assert_eq!(cells[2].trim(), "no", "{free_line}");
    assert!(cells[3].contains("UTC"), "{free_line}");
    assert_eq!(cells[4].trim(), "9", "{free_line}");
    let bin_line = text.lines().find(|l| l.starts_with(REQUIRED)).expect(&text);
    assert!(bin_line.contains("yes; enroll by "), "{text}");

    // `twofold status` shows the deadline too.
    let out = env.cli(&["status", "--user", REQUIRED], None, "");
    assert!(
        stdout(&out).contains("Required by policy: yes; enroll by "),
        "{out:?}"
    );
}

#[test]
fn cli_admin_reset_with_a_bypass_code_logs_in_once() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(FREE);
    let before = twofold_tests::unix_now();
    let reset = admin_reset(FREE, "lost phone and codes; ID checked by J. Doe", "2");
    let reset = json(&env.cli(&[&reset[..], &["--json"]].concat(), None, ""));
    assert_eq!(reset["user"], FREE, "{reset}");
    let code = reset["bypass_code"].as_str().expect("a code").to_string();
    let expires = reset["expires"].as_str().expect("an expiry");
    let (earliest, latest) = (iso(before + 2 * 3600), iso(before + 2 * 3600 + 120));
    assert!(
        earliest.as_str() <= expires && expires <= latest.as_str(),
        "{expires} not in 2 hours"
    );
    let out = env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    assert_ne!(out.result, pam::SUCCESS, "the old secret is gone: {out:?}");
    let out = env.pam(&Login::new(FREE, &code));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    let out = env.pam(&Login::new(FREE, &code));
    assert_ne!(out.result, pam::SUCCESS, "once only: {out:?}");

    // Nothing left to reset: one line, and nothing changes.
    let out = env.cli(&["admin", "reset", FREE, "--reason", "again"], None, "");
    let err = one_line_failure(&out);
    assert!(
        err.contains("no two-factor authentication to remove"),
        "{err}"
    );

    // For people: the code once, when it expires, and the identity advice.
    let again = env.enroll(REQUIRED);
    let reset = admin_reset(REQUIRED, "new phone lost in transit", "1");
    let out = env.cli(&reset, None, "");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("user {REQUIRED} is removed")),
        "{text}"
    );
    assert!(text.contains("(in 1 hour)"), "{text}");
    assert!(text.contains("verifying the person's identity"), "{text}");
    let code = text
        .lines()
        .find_map(|l| l.strip_prefix("    "))
        .expect(&text)
        .trim()
        .to_string();
    let out = env.pam(&Login::new(REQUIRED, &totp(&again.secret, 0)));
    assert_ne!(out.result, pam::SUCCESS, "{out:?}");
    let out = env.pam(&Login::new(REQUIRED, &code));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
}

/// `unix` as `2025-01-02T03:04:05Z`, by date(1).
fn iso(unix: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn cli_admin_unlock_clears_a_lockout() {
    root_only!();
    let env = TestEnv::new();
    let enrolled = enrolled_and_locked_out(&env, FREE);
    let out = env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    assert_eq!(out.result, pam::MAXTRIES, "locked: {out:?}");
    let list = json(&env.cli(&["admin", "users", "--json"], None, ""));
    assert!(row(&list, FREE)["locked_until"].is_string(), "{list}");

    let out = env.cli(&["admin", "unlock", FREE], None, "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains(&format!("Unlocked user {FREE}")),
        "{out:?}"
    );
    let out = env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    assert_eq!(out.result, pam::SUCCESS, "unlocked: {out:?}");
    let list = json(&env.cli(&["admin", "users", "--json"], None, ""));
    assert_eq!(row(&list, FREE)["locked_until"], serde_json::Value::Null);

    let out = env.cli(&["admin", "unlock", "no-such-user-x"], None, "");
    let err = one_line_failure(&out);
    assert!(err.contains("no user \"no-such-user-x\""), "{err}");
}

#[test]
fn cli_admin_log_shows_actor_and_filters() {
    root_only!();
    let env = TestEnv::new();
    let other = env.enroll(REQUIRED);
    env.pam(&Login::new(REQUIRED, &totp(&other.secret, 0)));
    // A boundary between the two users' events, to the second.
    std::thread::sleep(Duration::from_millis(1100));
    let boundary = twofold_tests::unix_now();
    std::thread::sleep(Duration::from_millis(1100));
    let enrolled = env.enroll(FREE);
    let good = totp(&enrolled.secret, 0);
    env.pam(&Login {
        rhost: Some("203.0.113.9".into()),
        tty: Some("ssh".into()),
        ..Login::new(FREE, &wrong_code(&enrolled.secret))
    });
    env.pam(&Login::new(FREE, &good));
    env.cli(&["admin", "unlock", FREE], None, "");

    let log = json(&env.cli(&["admin", "log", "--json"], None, ""));
    let entries = log.as_array().unwrap();
    let events: Vec<&str> = entries
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in [
        "enroll_begin",
        "enroll_confirm",
        "verify_ok",
        "verify_failed",
        "unlock",
    ] {
        assert!(events.contains(&expected), "{expected} missing: {events:?}");
    }
    assert!(entries.iter().any(|e| e["user"] == REQUIRED), "{log}");
    for e in entries {
        assert_eq!(e["actor_uid"], 0, "{e}");
        assert_eq!(e["actor"], "root", "{e}");
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
        for key in ["service", "tty", "rhost", "detail"] {
            assert!(e.get(key).is_some(), "{key} in {e}");
        }
    }
    let failed = entries
        .iter()
        .find(|e| e["event"] == "verify_failed")
        .unwrap();
    assert_eq!(failed["rhost"], "203.0.113.9", "{failed}");
    assert_eq!(failed["service"], "twofold-test", "{failed}");

    // --user
    let mine = json(&env.cli(&["admin", "log", "--user", FREE, "--json"], None, ""));
    let mine = mine.as_array().unwrap();
    assert!(
        !mine.is_empty() && mine.iter().all(|e| e["user"] == FREE),
        "{mine:?}"
    );
    // --since: a date-time, a date, a duration.
    let since = iso(boundary);
    let recent = json(&env.cli(&["admin", "log", "--since", &since, "--json"], None, ""));
    let recent = recent.as_array().unwrap();
    assert!(!recent.is_empty(), "{since}");
    assert!(
        recent.iter().all(|e| e["user"] == FREE),
        "since {since}: {recent:?}"
    );
    assert!(recent
        .iter()
        .all(|e| e["at"].as_str().unwrap() >= since.as_str()));
    let today = &since[..10];
    let all = json(&env.cli(&["admin", "log", "--since", "1h", "--json"], None, ""));
    assert_eq!(all.as_array().unwrap().len(), entries.len());
    let future = json(&env.cli(
        &["admin", "log", "--since", "2099-01-01", "--json"],
        None,
        "",
    ));
    assert_eq!(future, serde_json::json!([]));
    let out = env.cli(&["admin", "log", "--since", today], None, "");
    assert!(out.status.success(), "{out:?}");
    // --limit
    let two = json(&env.cli(&["admin", "log", "--limit", "2", "--json"], None, ""));
    assert_eq!(two.as_array().unwrap().len(), 2);

    // The table for people.
    let out = env.cli(&["admin", "log", "--user", FREE], None, "");
    let text = stdout(&out);
    assert_table_header(&text, "WHEN ACTOR USER EVENT SERVICE TTY/RHOST HOST DETAIL");
    let line = text
        .lines()
        .find(|l| l.contains("verify_failed"))
        .expect(&text);
    assert!(line.contains(" UTC  root"), "{line}");
    assert!(line.contains("203.0.113.9 (ssh)"), "{line}");

    // A --since that is not a time: a usage error, one line.
    let out = env.cli(&["admin", "log", "--since", "last tuesday"], None, "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    one_line_failure(&out);
}

#[test]
fn cli_admin_needs_root_or_polkit() {
    root_only!();
    let env = TestEnv::new();
    let enrolled = enrolled_and_locked_out(&env, FREE);
    let reset = admin_reset(FREE, "test", "1");
    let commands: [&[&str]; 5] = [
        &["admin", "users"],
        &["admin", "users", "--json"],
        &["admin", "unlock", FREE],
        &["admin", "log", "--since", "1d"],
        &reset,
    ];
    let refusal = "twofold: This needs an administrator: run it as root, or ask for the \
                   org.twofold.administer permission.\n";
    for args in commands {
        let out = env.cli(args, Some(NOBODY), "");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(one_line_failure(&out), refusal, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    // polkit on the bus, saying no.
    let polkit = PolkitMock::start(&env);
    let out = env.cli(&["admin", "users"], Some(NOBODY), "");
    assert_eq!(one_line_failure(&out), refusal);
    // Nothing happened to the user.
    let list = json(&env.cli(&["admin", "users", "--json"], None, ""));
    assert_eq!(row(&list, FREE)["enrolled"], true);
    assert!(row(&list, FREE)["locked_until"].is_string(), "{list}");

    // polkit says yes to org.twofold.administer.
    polkit.allow(&["org.twofold.administer"]);
    let list = json(&env.cli(&["admin", "users", "--json"], Some(NOBODY), ""));
    assert_eq!(row(&list, FREE)["enrolled"], true, "{list}");
    let out = env.cli(&["admin", "users"], Some(NOBODY), "");
    assert!(
        out.status.success() && stdout(&out).contains(FREE),
        "{out:?}"
    );
    let out = env.cli(&["admin", "unlock", FREE], Some(NOBODY), "");
    assert!(out.status.success(), "{out:?}");
    let out = env.pam(&Login::new(FREE, &totp(&enrolled.secret, 0)));
    assert_eq!(
        out.result,
        pam::SUCCESS,
        "unlocked by a polkit admin: {out:?}"
    );
    let log = json(&env.cli(
        &["admin", "log", "--user", FREE, "--json"],
        Some(NOBODY),
        "",
    ));
    let unlock = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "unlock")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(unlock["actor_uid"], u64::from(NOBODY), "{unlock}");
    assert_eq!(unlock["actor"], "nobody", "{unlock}");
    let reset = json(&env.cli(&[&reset[..], &["--json"]].concat(), Some(NOBODY), ""));
    assert!(reset["bypass_code"].is_string(), "{reset}");
}

/// `twofoldd --check-config`, as `sshd -t`: exit 1 naming file, line and key for a typo'd
/// key and a wrong type; an unknown group is a warning (exit 0).
#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(twofold_tests::built("twofoldd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said, path.display().to_string())
    };
    let (code, said, path) = check(
        "typo.toml",
        "enroll_grace = 3\n[lockout]\nmax_failurs = 5\n",
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("{path}: line 3:")) && said.contains("max_failurs"),
        "{said}"
    );
    let (code, said, path) = check("type.toml", "[lockout]\nmax_failures = \"five\"\n");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{path}: line 2: lockout.max_failures: invalid type"
        )),
        "{said}"
    );
    let (code, said, path) = check("group.toml", "require_groups = [\"no-such-group-xyz\"]\n");
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("warning") && said.contains("no-such-group-xyz"),
        "{said}"
    );
    assert!(said.contains(&format!("{path}: OK")), "{said}");
}

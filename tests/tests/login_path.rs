//! The login path end to end: libpam → pam_twofold.so → private dbus-daemon → twofoldd →
//! SQLite, with codes from oathtool. Every test starts its own bus and daemon.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use twofold_tests::flows::{login_ends, unavailable_at_once};
use twofold_tests::root_only;
use twofold_tests::{
    pam, pamdriver_with_mounts, private_shadow, totp, wait_for_fresh_step, wrong_code, Login,
    PamOutcome, TestEnv, NOBODY,
};

const USER: &str = "daemon";

fn no_thread_left(outcome: &twofold_tests::PamOutcome) {
    assert_eq!(
        outcome.threads_after, outcome.threads_before,
        "pam_twofold.so left a thread running: {outcome:?}"
    );
}

#[test]
fn right_code_passes_once_and_wrong_code_fails() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let code = totp(&enrolled.secret, 0);

    let ok = env.pam(&Login::new(USER, &code));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert_eq!(ok.prompts(), 1);
    assert_eq!(ok.messages[0].text, "Verification code: ");
    no_thread_left(&ok);

    let replay = env.pam(&Login::new(USER, &code));
    assert_eq!(
        replay.result,
        pam::AUTH_ERR,
        "a code must be accepted once: {replay:?}"
    );

    let wrong = wrong_code(&enrolled.secret);
    let bad = env.pam(&Login::new(USER, &wrong));
    assert_eq!(bad.result, pam::AUTH_ERR, "{bad:?}");
    no_thread_left(&bad);

    // The next step's code is fresh, so it still works (window ±1).
    let next = Login::new(USER, &totp(&enrolled.secret, 1));
    login_ends(&env, &next, pam::SUCCESS, "the next step's code");
}

#[test]
fn module_arguments_daemon_uid_and_prompt_are_obeyed() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    // (the module's arguments, the result, the prompt shown): a daemon of another owner
    // is not asked (the code stays unused); a custom prompt is shown.
    for (args, expected, prompt) in [
        ("daemon_uid=4242", pam::AUTHINFO_UNAVAIL, None),
        ("prompt=Code:", pam::SUCCESS, Some("Code:")),
    ] {
        let login = Login::new(USER, &totp(&enrolled.secret, 0)).args(args);
        let out = login_ends(&env, &login, expected, args);
        if let Some(prompt) = prompt {
            assert_eq!(out.messages[0].text, prompt);
        }
    }
}

#[test]
fn five_wrong_codes_lock_and_the_lock_survives_a_restart() {
    root_only!();
    let mut env = TestEnv::new();
    let enrolled = env.enroll(USER);
    let good = totp(&enrolled.secret, 0);
    let wrong = wrong_code(&enrolled.secret);
    for attempt in 1..=4 {
        let out = env.pam(&Login::new(USER, &wrong));
        assert_eq!(out.result, pam::AUTH_ERR, "attempt {attempt}: {out:?}");
    }
    let fifth = env.pam(&Login::new(USER, &wrong));
    assert_eq!(
        fifth.result,
        pam::MAXTRIES,
        "the fifth failure locks: {fifth:?}"
    );
    assert!(
        fifth.texts().contains("Too many failed attempts"),
        "{fifth:?}"
    );

    let locked = env.pam(&Login::new(USER, &good));
    assert_eq!(
        locked.result,
        pam::MAXTRIES,
        "even the right code is refused: {locked:?}"
    );
    assert_eq!(locked.prompts(), 0, "a locked user is not asked for a code");

    env.stop_daemon();
    env.start_daemon();
    let after_restart = env.pam(&Login::new(USER, &good));
    assert_eq!(
        after_restart.result,
        pam::MAXTRIES,
        "lock must be durable: {after_restart:?}"
    );

    let status = env.cli(&["status", "--json", "--user", USER], None, "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(!status["locked_until"].is_null(), "{status}");
}

#[test]
fn backup_code_works_once_and_the_count_drops() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    assert_eq!(enrolled.backup_codes.len(), 10);
    let code = &enrolled.backup_codes[3];

    let ok = env.pam(&Login::new(USER, code));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert!(ok.texts().contains("9 backup codes left"), "{ok:?}");

    let again = env.pam(&Login::new(USER, code));
    assert_eq!(
        again.result,
        pam::AUTH_ERR,
        "a backup code works once: {again:?}"
    );

    // Typed in another form (upper case, spaces instead of dashes): still accepted once.
    let other = enrolled.backup_codes[4].to_uppercase().replace('-', " ");
    let ok = env.pam(&Login::new(USER, &other));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");

    let status = env.cli(&["status", "--json", "--user", USER], None, "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["backup_codes_left"], 8, "{status}");
}

#[test]
fn low_backup_codes_warn() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    for code in &enrolled.backup_codes[..7] {
        assert_eq!(env.pam(&Login::new(USER, code)).result, pam::SUCCESS);
    }
    let out = env.pam(&Login::new(USER, &enrolled.backup_codes[7]));
    assert_eq!(out.result, pam::SUCCESS);
    assert!(out.texts().contains("2 backup codes left"), "{out:?}");
    assert!(
        out.texts().contains("twofold backup-codes regenerate"),
        "{out:?}"
    );
}

#[test]
fn not_enrolled_with_and_without_nullok() {
    root_only!();
    let env = TestEnv::new();
    let without = env.pam(&Login::new("bin", "123456"));
    assert_eq!(without.result, pam::AUTH_ERR, "{without:?}");
    assert_eq!(without.prompts(), 0);
    // With nullok the module steps aside (PAM_IGNORE); the stack then has no verdict,
    // which libpam reports as a failure of its own, not as AUTH_ERR.
    let with = env.pam(&Login::new("bin", "123456").args("nullok"));
    assert_ne!(with.result, pam::AUTH_ERR, "{with:?}");
    assert_ne!(with.result, pam::SUCCESS, "{with:?}");
    assert_eq!(with.prompts(), 0);
    no_thread_left(&with);
}

#[test]
fn daemon_absent_is_reported_at_once() {
    root_only!();
    let mut env = TestEnv::new();
    env.stop_daemon();
    let login = Login::new(USER, "123456").args("timeout=5");
    let out = unavailable_at_once(&env, &login, Duration::from_secs(2));
    no_thread_left(&out);

    // No bus at all: the same.
    let gone = Login {
        bus_arg: Some(format!(
            "bus=unix:path={}/no-such-socket",
            env.dir.path().display()
        )),
        ..Login::new(USER, "123456")
    };
    let out = env.pam(&gone);
    assert_eq!(out.result, pam::AUTHINFO_UNAVAIL, "{out:?}");
}

#[test]
fn frozen_daemon_fails_within_the_timeout() {
    root_only!();
    let env = TestEnv::new();
    // A stopped process is continued by any SIGCONT, not only ours (CI once saw the
    // daemon answer at once in this test): a run where it was running again by the end
    // of the login says nothing about a frozen daemon and is done again.
    for attempt in 1..=3 {
        let frozen = env.with_daemon_frozen(|| {
            let started = Instant::now();
            let out = env.pam(&Login::new(USER, "123456").args("timeout=2"));
            (out, started.elapsed())
        });
        let Some((out, took)) = frozen else {
            eprintln!("attempt {attempt}: twofoldd was continued by someone else; again");
            continue;
        };
        assert_eq!(out.result, pam::AUTHINFO_UNAVAIL, "{out:?}");
        assert!(
            took >= Duration::from_millis(1800),
            "gave up too early: {took:?}"
        );
        assert!(
            took < Duration::from_secs(4),
            "exceeded timeout=2: {took:?}"
        );
        no_thread_left(&out);
        return;
    }
    panic!("twofoldd could not be kept stopped for one login in three attempts");
}

#[test]
fn failmode_safe_lets_the_stack_continue() {
    root_only!();
    let mut env = TestEnv::new();
    env.stop_daemon();
    let secure = env.pam(&Login::new(USER, "123456"));
    assert_eq!(secure.result, pam::AUTHINFO_UNAVAIL);
    let safe = env.pam(&Login::new(USER, "123456").args("failmode=safe"));
    assert_ne!(safe.result, pam::AUTHINFO_UNAVAIL, "{safe:?}");
    assert_ne!(
        safe.result,
        pam::SUCCESS,
        "failmode=safe ignores, never grants: {safe:?}"
    );
}

#[test]
fn non_root_caller_cannot_verify_or_enroll_another_user() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);

    // Through the module, running as nobody (as a screen locker would).
    let mut login = Login::new(USER, &totp(&enrolled.secret, 0));
    login.as_uid = Some(NOBODY);
    let out = env.pam(&login);
    assert_ne!(out.result, pam::SUCCESS, "{out:?}");
    assert!(env.log_text().contains("denied"), "{}", env.log_text());

    // Through the CLI.
    for args in [
        vec!["enroll", "--begin", "--user", USER],
        vec!["enroll", "--confirm", "-", "--user", USER],
        vec!["status", "--user", USER],
    ] {
        // A code on standard input, so that `--confirm -` reaches the daemon.
        let out = env.cli(&args, Some(NOBODY), "123456\n");
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
    }
    // The code is still unused: root's login with it succeeds.
    let out = env.pam(&Login::new(USER, &totp(&enrolled.secret, 0)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");

    // nobody may enroll itself.
    let out = env.cli(&["enroll", "--begin", "--json"], Some(NOBODY), "");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn hostile_bus_address_in_the_environment_is_ignored() {
    root_only!();
    let (env, real) = TestEnv::with_enrolled(USER);
    let (hostile, fake) = TestEnv::with_enrolled(USER);
    let hostile_env = vec![
        (
            "DBUS_SYSTEM_BUS_ADDRESS".to_string(),
            hostile.address.clone(),
        ),
        (
            "DBUS_SESSION_BUS_ADDRESS".to_string(),
            hostile.address.clone(),
        ),
        ("TWOFOLD_BUS_ADDRESS".to_string(), hostile.address.clone()),
    ];
    // A login whose environment names the hostile bus everywhere.
    let in_hostile_env = |code: &str| Login {
        env: hostile_env.clone(),
        ..Login::new(USER, code)
    };
    let with_fake_code = in_hostile_env(&totp(&fake.secret, 0));
    login_ends(
        &env,
        &with_fake_code,
        pam::AUTH_ERR,
        "the hostile daemon was asked",
    );

    // Without bus= the module uses the system bus socket, never the environment.
    let no_bus_arg = Login {
        bus_arg: Some(String::new()),
        ..in_hostile_env(&totp(&fake.secret, 1))
    };
    let out = env.pam(&no_bus_arg);
    assert_ne!(
        out.result,
        pam::SUCCESS,
        "the environment chose the bus: {out:?}"
    );
    assert!(
        !hostile.log_text().contains("verified"),
        "the hostile daemon verified something:\n{}",
        hostile.log_text()
    );

    let with_real_code = in_hostile_env(&totp(&real.secret, 0));
    login_ends(
        &env,
        &with_real_code,
        pam::SUCCESS,
        "the real daemon's code",
    );
}

#[test]
fn fifty_parallel_verifications_of_one_code_give_one_success() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let code = enrolled.code_lasting(10);
    let results: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| env.pam(&Login::new(USER, &code)).result))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let successes = results.iter().filter(|&&r| r == pam::SUCCESS).count();
    assert_eq!(successes, 1, "results: {results:?}");
    assert!(results
        .iter()
        .all(|&r| r == pam::SUCCESS || r == pam::AUTH_ERR || r == pam::MAXTRIES));
}

#[test]
fn state_files_are_private_and_hold_no_plain_secret() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let code = totp(&enrolled.secret, 0);
    assert_eq!(env.pam(&Login::new(USER, &code)).result, pam::SUCCESS);
    assert_eq!(
        env.pam(&Login::new(USER, &enrolled.backup_codes[0])).result,
        pam::SUCCESS
    );

    for path in [&env.db, &env.key] {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
        assert_eq!(meta.uid(), 0, "{}", path.display());
    }
    let raw_secret = data_encoding_decode(&enrolled.secret);
    let mut stored = std::fs::read(&env.db).unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", env.db.display()));
    stored.extend(std::fs::read(wal).unwrap_or_default());
    assert!(
        !contains(&stored, enrolled.secret.as_bytes()),
        "base32 secret in the database"
    );
    assert!(
        !contains(&stored, &raw_secret),
        "raw secret in the database"
    );
    for code in &enrolled.backup_codes {
        assert!(
            !contains(&stored, code.as_bytes()),
            "backup code in the database"
        );
        assert!(
            !contains(&stored, code.replace('-', "").as_bytes()),
            "backup code in the database"
        );
    }
    let log = env.log_text();
    assert!(
        log.contains("verified by totp"),
        "the log is being written: {log}"
    );
    assert!(!log.contains(&enrolled.secret), "secret in the log");
    assert!(!log.contains(&code), "code in the log");
    for backup in &enrolled.backup_codes {
        assert!(!log.contains(backup.as_str()), "backup code in the log");
    }
}

#[test]
fn bad_input_is_refused_counted_and_survived() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let long = "9".repeat(300);
    for bad in [
        "",
        "12345",
        "abcdef",
        "12 34 56 78",
        long.as_str(),
        "\u{1b}[31m;DROP TABLE users",
    ] {
        let out = env.pam(&Login::new(USER, bad));
        assert!(
            out.result == pam::AUTH_ERR || out.result == pam::MAXTRIES,
            "{bad:?}: {out:?}"
        );
        no_thread_left(&out);
    }
    // Six bad attempts: the user is locked now, so the bad input counted.
    let status = env.cli(&["status", "--json", "--user", USER], None, "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(!status["locked_until"].is_null(), "{status}");
    assert!(
        !env.log_text().contains("DROP TABLE"),
        "typed input reached the log"
    );

    // Unknown and malformed user names: a clear refusal, no panic.
    let unknown = env.pam(&Login::new("no-such-user-xyz", "123456"));
    assert_eq!(unknown.result, pam::USER_UNKNOWN, "{unknown:?}");
    let non_utf8 = Login {
        user_hex: Some("ff fe 61".replace(' ', "")),
        ..Login::new("", "123456")
    };
    let out = env.pam(&non_utf8);
    assert_eq!(out.result, pam::USER_UNKNOWN, "{out:?}");
    let long_name = env.pam(&Login::new(&"u".repeat(300), "123456"));
    assert_eq!(long_name.result, pam::USER_UNKNOWN, "{long_name:?}");
    // Control characters (a newline, an escape, DEL): no account has them, whoever the
    // name would otherwise match.
    for hex in ["6461656d6f6e0a", "1b5b324a6461656d6f6e", "6461657f6d6f6e"] {
        let control = Login {
            user_hex: Some(hex.into()),
            ..Login::new("", "123456")
        };
        let out = env.pam(&control);
        assert_eq!(out.result, pam::USER_UNKNOWN, "{hex}: {out:?}");
    }
    // The daemon is still there and well.
    drop(enrolled);
    assert!(env.name_has_owner());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn data_encoding_decode(base32: &str) -> Vec<u8> {
    // A small RFC 4648 base32 decoder, independent of the daemon's.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in base32.bytes() {
        let v = alphabet.iter().position(|&a| a == c).expect("base32") as u64;
        bits = (bits << 5) | v;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out
}

#[test]
fn guessing_user_names_is_throttled_per_source() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let from = |user: &str, code: &str| Login {
        rhost: Some("203.0.113.99".into()),
        ..Login::new(user, code)
    };
    let mut results = Vec::new();
    for i in 0..6 {
        results.push(
            env.pam(&from(&format!("no-such-user-{i}"), "123456"))
                .result,
        );
    }
    assert_eq!(&results[..4], [pam::USER_UNKNOWN; 4], "{results:?}");
    assert_eq!(
        &results[4..],
        [pam::MAXTRIES; 2],
        "the fifth unknown name locks the source: {results:?}"
    );
    // Real users are not affected, from that host or elsewhere.
    let out = env.pam(&from(USER, &totp(&enrolled.secret, 0)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    let log = env.with_proxy(|p| Box::pin(async move { p.audit_log("", 0, 100).await.unwrap() }));
    assert!(
        log.iter()
            .any(|e| e.event == "unknown_user" && e.detail.contains("no-such-user-0")),
        "{log:?}"
    );
    let users = env.with_proxy(|p| Box::pin(async move { p.admin_users().await.unwrap() }));
    assert!(users.iter().all(|u| !u.user.is_empty()), "{users:?}");
}

// ------------------------------------------------------------------ forward_pass

/// One login through the stack the README recommends for `forward_pass`:
///
/// ```text
/// auth requisite pam_twofold.so bus=… forward_pass [args]
/// auth required  pam_unix.so use_first_pass
/// ```
///
/// with `answer` typed at the only prompt, and `shadow` as /etc/shadow.
fn forward_pass_login(
    env: &TestEnv,
    shadow: &Path,
    user: &str,
    answer: &str,
    args: &str,
) -> PamOutcome {
    let login = Login::new(user, answer).args(&format!("forward_pass {args}"));
    through_stack(env, shadow, &login, &[answer], |twofold_line| {
        let twofold_line = twofold_line
            .strip_prefix("auth required ")
            .expect("the harness writes one auth line");
        format!("auth requisite {twofold_line}auth required pam_unix.so use_first_pass\n")
    })
}

/// `login` through the harness's PAM service rewritten by `stack` (given the harness's
/// pam_twofold.so line), typing `answers`, with `shadow` as /etc/shadow.
fn through_stack(
    env: &TestEnv,
    shadow: &Path,
    login: &Login,
    answers: &[&str],
    stack: impl FnOnce(&str) -> String,
) -> PamOutcome {
    let confdir = env.pam_confdir(login);
    let service = confdir.join("twofold-test");
    let twofold_line = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, stack(&twofold_line)).unwrap();
    pamdriver_with_mounts(
        &[(shadow, Path::new("/etc/shadow"))],
        &confdir,
        "twofold-test",
        &login.user,
        answers,
    )
}

/// One login through a stack that runs pam_twofold.so after pam_unix whether the
/// password was right or not (`required`, not `requisite`), typing `password`, then
/// `code` if asked.
fn after_the_password(
    env: &TestEnv,
    shadow: &Path,
    user: &str,
    password: &str,
    code: &str,
) -> PamOutcome {
    let login = Login::new(user, code);
    through_stack(env, shadow, &login, &[password, code], |twofold_line| {
        format!("auth required pam_unix.so\n{twofold_line}")
    })
}

/// What the module said, with numbers (seconds left) blanked.
fn said(out: &PamOutcome) -> String {
    out.texts()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

#[test]
fn refusals_say_why_and_the_same_after_a_right_or_wrong_password() {
    root_only!();
    let mut env = TestEnv::new();
    let enrolled = env.enroll(USER);
    let shadow = private_shadow(env.dir.path(), &[(USER, "right-pass"), ("bin", "bin-pass")]);

    // Not enrolled, no nullok: why, and what to do.
    let right = after_the_password(&env, &shadow, "bin", "bin-pass", "");
    let wrong = after_the_password(&env, &shadow, "bin", "wrong-pass", "");
    assert_eq!(right.result, pam::AUTH_ERR, "{right:?}");
    assert_eq!(wrong.result, pam::AUTH_ERR, "{wrong:?}");
    let text = right.texts();
    assert!(
        text.contains("not set up for this account")
            && text.contains("twofold enroll")
            && text.contains("administrator"),
        "{right:?}"
    );
    assert_eq!(said(&right), said(&wrong), "the password shows through");

    // Locked out: how long.
    let good = totp(&enrolled.secret, 0);
    let wrong = wrong_code(&enrolled.secret);
    for _ in 0..5 {
        env.pam(&Login::new(USER, &wrong));
    }
    let right = after_the_password(&env, &shadow, USER, "right-pass", &good);
    let wrong = after_the_password(&env, &shadow, USER, "wrong-pass", &good);
    assert_eq!(right.result, pam::MAXTRIES, "{right:?}");
    assert!(
        said(&right).contains("Try again in ## seconds."),
        "{right:?}"
    );
    assert_eq!(said(&right), said(&wrong), "the password shows through");

    // The daemon is down (failmode=secure): unavailable, ask the administrator.
    env.stop_daemon();
    let right = after_the_password(&env, &shadow, USER, "right-pass", &good);
    let wrong = after_the_password(&env, &shadow, USER, "wrong-pass", &good);
    assert_eq!(right.result, pam::AUTHINFO_UNAVAIL, "{right:?}");
    assert!(
        right.texts().contains("unavailable")
            && right.texts().contains("Contact your administrator"),
        "{right:?}"
    );
    assert_eq!(said(&right), said(&wrong), "the password shows through");
}

#[test]
fn forward_pass_one_prompt_for_password_and_code() {
    root_only!();
    const PASSWORD: &str = "c0rrect horse";
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let shadow = private_shadow(env.dir.path(), &[(USER, PASSWORD), ("bin", "bin-pass")]);
    wait_for_fresh_step(15);
    let verified = || env.log_text().matches("verified by totp").count();
    let login = |answer: &str| forward_pass_login(&env, &shadow, USER, answer, "");
    let code = totp(&enrolled.secret, 0);

    // Password and code in one answer: pam_unix gets the password (use_first_pass).
    let ok = login(&format!("{PASSWORD}{code}"));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert_eq!(ok.prompts(), 1, "one prompt only: {ok:?}");
    assert_eq!(ok.messages[0].text, "Password & verification code: ");
    no_thread_left(&ok);
    assert_eq!(verified(), 1);

    // The code is single-use.
    let replay = login(&format!("{PASSWORD}{code}"));
    assert_eq!(
        replay.result,
        pam::AUTH_ERR,
        "a code works once: {replay:?}"
    );

    // Right password, wrong code: refused, and nothing says which part was wrong.
    let wrong = wrong_code(&enrolled.secret);
    let bad_code = login(&format!("{PASSWORD}{wrong}"));
    assert_eq!(bad_code.result, pam::AUTH_ERR, "{bad_code:?}");
    assert_eq!(bad_code.texts(), "", "{bad_code:?}");

    // Wrong password, right (fresh) code: the code passes, pam_unix refuses.
    let next = totp(&enrolled.secret, 1);
    let bad_password = login(&format!("not the password{next}"));
    assert_eq!(bad_password.result, pam::AUTH_ERR, "{bad_password:?}");
    assert_eq!(bad_password.texts(), "", "{bad_password:?}");
    assert_eq!(verified(), 2, "the code was accepted: pam_unix refused");
    let after = login(&format!("{PASSWORD}{next}"));
    assert_eq!(after.result, pam::AUTH_ERR, "that code is spent: {after:?}");

    // A backup code after a space.
    let ok = login(&format!("{PASSWORD} {}", enrolled.backup_codes[0]));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert!(ok.texts().contains("9 backup codes left"), "{ok:?}");

    // A user who is not enrolled, with nullok: the whole answer is the password.
    let bin = |answer: &str| forward_pass_login(&env, &shadow, "bin", answer, "nullok");
    let ok = bin("bin-pass");
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");
    assert_eq!(ok.prompts(), 1, "{ok:?}");
    let with_digits = bin(&format!("bin-pass{}", totp(&enrolled.secret, 0)));
    assert_eq!(with_digits.result, pam::AUTH_ERR, "{with_digits:?}");
    // Without nullok: refused before any prompt, as without forward_pass.
    let refused = forward_pass_login(&env, &shadow, "bin", "bin-pass", "");
    assert_eq!(refused.result, pam::AUTH_ERR, "{refused:?}");
    assert_eq!(refused.prompts(), 0, "{refused:?}");

    // Neither the password nor a code reaches the daemon's log.
    let log = env.log_text();
    assert!(
        !log.contains(PASSWORD) && !log.contains("bin-pass"),
        "{log}"
    );
    assert!(!log.contains(&code) && !log.contains(&next), "{log}");
}

//! Switching from pam_oath: `twofold admin import oath USERSFILE` reads pam_oath's
//! usersfile as root, and the daemon enrolls each time-based user (`HOTP/T30`) with its
//! hex secret. Then the real PAM stack accepts the next code oathtool computes from that
//! hex secret, and refuses the code pam_oath recorded as its last, even one of a step
//! still ahead. Counter-based (`HOTP`) and 60-second (`HOTP/T60`) tokens keep their
//! counters and steps; 7-digit tokens are listed as not imported, enrolled users are left
//! alone, and a file that is not root's 0600 is refused.

use std::process::Output;

use twofold_tests::flows::{
    assert_audited, cli_showing_none_of, logins_end, oathtool, owned_file, totp_with,
    RFC4226_SEED_HEX,
};
use twofold_tests::root_only;
use twofold_tests::{pam, wait_for_fresh_step, TestEnv};

/// A time-based user whose last code pam_oath took is of the current step.
const USER: &str = "daemon";
/// A time-based user whose last code pam_oath took is of the step ahead (a phone whose
/// clock runs fast).
const AHEAD: &str = "bin";
/// A user enrolled in twofold already.
const ENROLLED: &str = "sys";
/// A user whose token twofold cannot take (7 digits).
const COUNTER: &str = "games";
/// RFC 6238's SHA-1 secret, in hex as pam_oath keeps it.
const HEX: &str = RFC4226_SEED_HEX;
/// Other 160-bit secrets.
const HEX_AHEAD: &str = "00112233445566778899aabbccddeeff00112233";
const HEX_ENROLLED: &str = "ffeeddccbbaa99887766554433221100ffeeddcc";

/// The TOTP code of hex `secret` at the current step plus `offset` steps, by oathtool.
fn totp_hex(secret: &str, offset: i64) -> String {
    totp_with(&["--totp"], 30, secret, offset)
}

/// `twofold admin import oath ARGS` as root; stdout and stderr checked for secrets.
fn import(env: &TestEnv, args: &[&str]) -> (Output, String, String) {
    let secrets = [HEX, HEX_AHEAD, HEX_ENROLLED];
    cli_showing_none_of(env, &secrets, &["admin", "import", "oath"], args, "")
}

#[test]
fn time_based_users_are_imported_with_their_last_code_used_and_others_listed() {
    root_only!();
    let env = TestEnv::new();
    env.enroll(ENROLLED);
    // Room for the whole test in one step, so that "the step ahead" stays ahead.
    wait_for_fresh_step(20);
    let last_code = totp_hex(HEX, 0);
    let ahead_code = totp_hex(HEX_AHEAD, 1);
    let text = format!(
        "# pam_oath users\n\
         HOTP/T30\t{USER}\t-\t{HEX}\t3\t{last_code}\t2026-11-30T10:00:00L\n\
         HOTP/T30/6 {AHEAD} - {HEX_AHEAD} 7 {ahead_code} 2026-11-30T10:00:30L\n\
         HOTP/T30 {ENROLLED} - {HEX_ENROLLED}\n\
         HOTP/T30/7 {COUNTER} - {HEX} 12\n"
    );
    let path = owned_file(&env, "users.oath", &text, "root", 0o600);
    let file = path.to_str().unwrap();

    let (out, stdout, stderr) = import(&env, &["--dry-run", file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "daemon: would be imported (dry run); TOTP, SHA1, 6 digits, 30 s",
            "bin: would be imported (dry run); TOTP, SHA1, 6 digits, 30 s",
            "sys: already enrolled in twofold; left alone",
            "games: refused: line 5: 7-digit codes are not supported: twofoldd takes 6 or 8 \
             digits",
        ],
        "{stdout}"
    );
    assert!(
        stderr.contains("1 of 4 users were not imported"),
        "{stderr}"
    );
    assert!(
        !env.is_enrolled(USER) && !env.is_enrolled(AHEAD),
        "a dry run changes nothing"
    );

    let (out, stdout, _) = import(&env, &["--json", file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["user"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (USER, "imported"),
            (AHEAD, "imported"),
            (ENROLLED, "already_enrolled"),
            (COUNTER, "refused")
        ]
    );
    // The shape of `import google-authenticator --json`.
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "backup_codes",
            "detail",
            "file",
            "notes",
            "oath",
            "outcome",
            "removed",
            "user"
        ]
    );
    assert_eq!(rows[0]["file"], file);

    // The next code from the same hex secret logs in; the code pam_oath took last is
    // refused, here and for the user whose last code is of the step still ahead.
    // The enrolled user keeps their own secret.
    logins_end(
        &env,
        &[
            (USER, &last_code, pam::AUTH_ERR, "pam_oath's last code"),
            (
                AHEAD,
                &ahead_code,
                pam::AUTH_ERR,
                "pam_oath's last code, of the step ahead, is not accepted again",
            ),
            (USER, &totp_hex(HEX, 1), pam::SUCCESS, "the next code"),
            (
                ENROLLED,
                &totp_hex(HEX_ENROLLED, 1),
                pam::AUTH_ERR,
                "own secret",
            ),
        ],
    );
    // The counter user stays out.
    assert!(!env.is_enrolled(COUNTER));
    assert_audited(&env, USER, "imported from pam_oath");
}

#[test]
fn a_usersfile_that_is_not_roots_0600_is_refused_with_one_line() {
    root_only!();
    let env = TestEnv::new();
    let text = format!("HOTP/T30 {USER} - {HEX}\n");
    let open = owned_file(&env, "open.oath", &text, "root", 0o644);
    let good = owned_file(&env, "good.oath", &text, "root", 0o600);
    let link = env.dir.path().join("link.oath");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let users = owned_file(&env, "users.oath", &text, USER, 0o600);
    for (path, why) in [
        (&open, "the file is open to group or others (mode 0644)"),
        (&link, "the file is a symbolic link"),
        (&users, "the file belongs to uid 1, not to root"),
    ] {
        let (out, stdout, stderr) = import(&env, &[path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(stdout, "", "{out:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("twofold: {}: {why}", path.display())),
            "{stderr}"
        );
    }
    assert!(!env.is_enrolled(USER));
}

#[test]
fn malformed_lines_are_named_by_number_without_their_secret() {
    root_only!();
    let env = TestEnv::new();
    let text = format!(
        "# pam_oath users\n\n\
         HOTP/T30 {USER} - {HEX}zz\n\
         HOTP/T30 {HEX} - 00\n\
         HOTP/T30 {ENROLLED} - {HEX_ENROLLED}\n"
    );
    let path = owned_file(&env, "users.oath", &text, "root", 0o600);
    let file = path.to_str().unwrap();
    let (out, stdout, _) = import(&env, &[file, USER, AHEAD]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("{file}: refused: line 4: malformed: the user field is not a user name"),
            "daemon: refused: line 3: malformed: the secret is not hexadecimal".to_string(),
            format!("bin: refused: no line for bin in {file}"),
        ],
        "{stdout}"
    );
    // Only the users named: sys, in the file, is not imported.
    assert!(!env.is_enrolled(USER) && !env.is_enrolled(ENROLLED));
}

/// The HOTP code of hex `secret` at counter value `counter`, `digits` long, by oathtool.
fn hotp_hex(secret: &str, counter: u64, digits: u32) -> String {
    let (digits, counter) = (digits.to_string(), counter.to_string());
    oathtool(&["--hotp", "-d", &digits, "-c", &counter, secret])
}

#[test]
fn counter_tokens_and_60_second_tokens_keep_their_counters_and_steps() {
    root_only!();
    let env = TestEnv::new();
    // pam_oath writes, after a login, the counter of the code it accepted and that code:
    // bin's next code is the one of counter 10.
    let last = hotp_hex(HEX_AHEAD, 9, 8);
    let text = format!(
        "HOTP {USER} - {HEX} 5\n\
         HOTP/E/8 {AHEAD} - {HEX_AHEAD} 9 {last} 2026-11-30T10:00:00L\n\
         HOTP/T60 {ENROLLED} - {HEX_ENROLLED}\n"
    );
    let path = owned_file(&env, "users.oath", &text, "root", 0o600);
    let file = path.to_str().unwrap();
    let (out, stdout, _) = import(&env, &["--dry-run", file]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "daemon: would be imported (dry run); HOTP, SHA1, 6 digits, next counter 5",
            "bin: would be imported (dry run); HOTP, SHA1, 8 digits, next counter 9",
            "sys: would be imported (dry run); TOTP, SHA1, 6 digits, 60 s",
        ],
        "{stdout}"
    );
    let (out, stdout, _) = import(&env, &[file]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("daemon: imported; HOTP, SHA1, 6 digits, next counter 5\n"),
        "{stdout}"
    );

    // HOTP: a code below the counter is refused, the counter's passes once.
    // pam_oath's last code (8 digits) is not accepted again; the next one is.
    // HOTP/T60: oathtool's 60-second code of the next step passes (the steps up to the
    // import count as used).
    let code = hotp_hex(HEX, 5, 6);
    logins_end(
        &env,
        &[
            (
                USER,
                &hotp_hex(HEX, 4, 6),
                pam::AUTH_ERR,
                "below the counter",
            ),
            (USER, &code, pam::SUCCESS, "the counter's code"),
            (USER, &code, pam::AUTH_ERR, "once"),
            (AHEAD, &last, pam::AUTH_ERR, "pam_oath's last code"),
            (
                AHEAD,
                &hotp_hex(HEX_AHEAD, 10, 8),
                pam::SUCCESS,
                "the next one",
            ),
            (
                ENROLLED,
                &totp_with(&["--totp"], 60, HEX_ENROLLED, 1),
                pam::SUCCESS,
                "the next 60-second step",
            ),
        ],
    );
}

//! Steps that the tests of imports, hardware tokens, enrollment parameters, logins and
//! policy share: oathtool's codes for any token parameters, files of the test owned by a
//! user, a daemon with a user enrolled, a CLI command whose output must show no secret,
//! logins that must end one way, and what the admin commands take and show (the audit
//! trail, a required-groups config, `admin reset`'s arguments, a table's header).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::{pam, stderr, stdout, uid_of, unix_now, Login, PamOutcome, TestEnv};

/// RFC 4226's (and RFC 6238's SHA-1) seed "12345678901234567890", in hex as oathtool
/// and pam_oath take it.
pub const RFC4226_SEED_HEX: &str = "3132333435363738393031323334353637383930";

/// oathtool's code for `args`: its options, then the secret.
pub fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool must be installed (tests/run.sh installs it)");
    assert!(out.status.success(), "oathtool {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// oathtool's TOTP code of `secret` with `options` (`--totp=HASH`, `-d DIGITS`, `-b` for
/// a base32 secret), at the step `offset` steps of `period` seconds from now.
pub fn totp_with(options: &[&str], period: u32, secret: &str, offset: i64) -> String {
    let at = format!("@{}", unix_now() as i64 + offset * i64::from(period));
    let period = period.to_string();
    let mut args = vec!["-s", period.as_str(), "--now", at.as_str()];
    args.extend_from_slice(options);
    args.push(secret);
    oathtool(&args)
}

/// A file `name` in the test's directory holding `text`, owned by `owner` (user and the
/// group of the same number) with mode `mode`.
pub fn owned_file(env: &TestEnv, name: &str, text: &str, owner: &str, mode: u32) -> PathBuf {
    let path = env.dir.path().join(name);
    write_owned(&path, text, owner, mode);
    path
}

/// Writes `text` to `path`, owned by `owner` (user and the group of the same number),
/// mode `mode`.
pub fn write_owned(path: &Path, text: &str, owner: &str, mode: u32) {
    fs::write(path, text).unwrap();
    let id = uid_of(owner).expect("system user");
    std::os::unix::fs::chown(path, Some(id), Some(id)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `twofold COMMAND ARGS` as root with `stdin`: the output and its standard output and
/// error as text, neither of which may show any of `secrets`.
pub fn cli_showing_none_of(
    env: &TestEnv,
    secrets: &[&str],
    command: &[&str],
    args: &[&str],
    stdin: &str,
) -> (Output, String, String) {
    let argv = [command, args].concat();
    let out = env.cli(&argv, None, stdin);
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    for secret in secrets {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret is printed: {out:?}"
        );
    }
    (out, stdout, stderr)
}

/// Runs `login` through the real PAM stack: its outcome, whose result must be
/// `expected` (`why` and the daemon's log are shown when it is not).
pub fn login_ends(env: &TestEnv, login: &Login, expected: i32, why: &str) -> PamOutcome {
    let out = env.pam(login);
    assert_eq!(out.result, expected, "{why}: {out:?}\n{}", env.log_text());
    out
}

/// Runs `login`, which must end in `pam::AUTHINFO_UNAVAIL` (the daemon cannot be asked)
/// within `within` and without a prompt: its outcome.
pub fn unavailable_at_once(env: &TestEnv, login: &Login, within: Duration) -> PamOutcome {
    let started = Instant::now();
    let out = env.pam(login);
    let took = started.elapsed();
    assert_eq!(out.result, pam::AUTHINFO_UNAVAIL, "{out:?}");
    assert!(took < within, "took {took:?}");
    assert_eq!(out.prompts(), 0, "{out:?}");
    out
}

/// Each `(user, code, expected, why)` in turn: `user` logs in with `code` through the
/// real PAM stack, and the result must be `expected` (see [`login_ends`]).
pub fn logins_end(env: &TestEnv, logins: &[(&str, &str, i32, &str)]) {
    for &(user, code, expected, why) in logins {
        login_ends(env, &Login::new(user, code), expected, why);
    }
}

/// Asserts that `user`'s audit trail (`twofold admin log --user USER --json`) holds
/// `words`.
pub fn assert_audited(env: &TestEnv, user: &str, words: &str) {
    let log = env.cli(&["admin", "log", "--user", user, "--json"], None, "");
    assert!(stdout(&log).contains(words), "no {words:?} in {log:?}");
}

/// A config that requires 2FA of the members of `group`, with `grace_days` days to
/// enroll and `contact` named in the messages.
pub fn required_policy(group: &str, grace_days: u32, contact: &str) -> String {
    format!(
        "require_groups = [\"{group}\"]\nenroll_grace = {grace_days}\n\
         admin_contact = \"{contact}\"\n"
    )
}

/// Asserts that the first line of `table` (a CLI table) names `columns`, in order and
/// nothing else; `columns` is written as the header reads, single-spaced.
pub fn assert_table_header(table: &str, columns: &str) {
    let header = table.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>().join(" "),
        columns,
        "{table}"
    );
}

/// The arguments of `twofold admin reset USER --reason REASON --bypass-code HOURS`.
pub fn admin_reset<'a>(user: &'a str, reason: &'a str, hours: &'a str) -> [&'a str; 7] {
    [
        "admin",
        "reset",
        user,
        "--reason",
        reason,
        "--bypass-code",
        hours,
    ]
}

//! Switching from google-authenticator-libpam: `twofold admin import google-authenticator`
//! reads a user's file (through `--file USER=PATH`, or from the home directory with a
//! test directory mounted over it in a private mount namespace, so that no real home
//! directory is touched), and the daemon enrolls the user with its secret and scratch
//! codes. Then
//! the real PAM stack accepts codes from oathtool for that secret, and each scratch code
//! once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use twofold_tests::flows::{assert_audited, logins_end, oathtool, owned_file, write_owned};
use twofold_tests::root_only;
use twofold_tests::{
    built, pam, totp, unix_now, wait_for_fresh_step, with_private_mounts, Login, TestEnv,
};

const USER: &str = "daemon";
const OTHER: &str = "bin";
const THIRD: &str = "sys";
/// 128 bits, as google-authenticator writes them (26 base32 symbols).
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY";
const SCRATCH_CODES: [&str; 2] = ["12345678", "87654321"];

/// A google-authenticator file of `user` in the test's directory, mode `mode`.
fn ga_file(env: &TestEnv, name: &str, user: &str, text: &str, mode: u32) -> PathBuf {
    owned_file(env, name, text, user, mode)
}

fn totp_file() -> String {
    format!(
        "{SECRET}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n{}\n",
        SCRATCH_CODES.join("\n")
    )
}

/// google-authenticator files of [`totp_file`], one for each `(name, user, mode)`.
fn totp_files<const N: usize>(env: &TestEnv, files: [(&str, &str, u32); N]) -> [PathBuf; N] {
    files.map(|(name, user, mode)| ga_file(env, name, user, &totp_file(), mode))
}

fn import(env: &TestEnv, args: &[&str]) -> (Output, String) {
    let mut argv = vec!["admin", "import", "google-authenticator"];
    argv.extend_from_slice(args);
    let out = env.cli(&argv, None, "");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn file_arg(user: &str, path: &Path) -> String {
    format!("{user}={}", path.display())
}

#[test]
fn an_imported_file_keeps_its_secret_and_each_scratch_code_works_once() {
    root_only!();
    let env = TestEnv::new();
    let path = ga_file(&env, "ga-daemon", USER, &totp_file(), 0o400);
    let file = file_arg(USER, &path);

    let (out, stdout) = import(&env, &["--dry-run", "--file", &file]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("daemon: would be imported with 2 backup codes (dry run)"),
        "{stdout}"
    );
    assert!(!env.is_enrolled(USER), "a dry run changes nothing");

    let (out, stdout) = import(&env, &["--file", &file]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("daemon: imported with 2 backup codes"),
        "{stdout}"
    );
    for option in ["RATE_LIMIT 3 30", "WINDOW_SIZE 17"] {
        assert!(
            stdout.contains(&format!(
                "{option}: not carried over: twofold's policy applies"
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("DISALLOW_REUSE: twofold never accepts a code twice"),
        "{stdout}"
    );
    assert!(path.exists(), "the file is kept without --remove-files");

    // The steps up to the import count as used (google-authenticator may have just
    // taken a code of them): the previous step's code is refused, the next one's passes.
    logins_end(
        &env,
        &[
            (
                USER,
                &totp(SECRET, -1),
                pam::AUTH_ERR,
                "the previous step's code",
            ),
            (USER, &totp(SECRET, 1), pam::SUCCESS, "the next step's code"),
        ],
    );
    for scratch in SCRATCH_CODES {
        logins_end(
            &env,
            &[
                (USER, scratch, pam::SUCCESS, "a scratch code"),
                (USER, scratch, pam::AUTH_ERR, "a scratch code works once"),
            ],
        );
    }

    // A second import leaves the user alone (the secret stays the first one).
    let other = ga_file(
        &env,
        "ga-daemon-2",
        USER,
        "JBSWY3DPEHPK3PXPJBSWY3DPEA\n\" TOTP_AUTH\n",
        0o600,
    );
    let (out, stdout) = import(&env, &["--json", "--file", &file_arg(USER, &other)]);
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["outcome"], "already_enrolled", "{stdout}");
    // So does one whose file twofold could not take.
    let hotp = ga_file(
        &env,
        "ga-daemon-hotp",
        USER,
        &format!("{SECRET}\n\" HOTP_COUNTER 1\n"),
        0o600,
    );
    let (out, stdout) = import(&env, &["--file", &file_arg(USER, &hotp)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout, "daemon: already enrolled in twofold; left alone\n",
        "{out:?}"
    );
    // The second file's secret was not taken: its code is refused.
    let other_code = env.pam(&Login::new(USER, &totp("JBSWY3DPEHPK3PXPJBSWY3DPEA", 1)));
    assert_eq!(other_code.result, pam::AUTH_ERR, "{other_code:?}");

    assert_audited(&env, USER, "imported from google-authenticator");
}

#[test]
fn files_google_authenticator_would_refuse_or_twofold_cannot_take_are_refused() {
    root_only!();
    let env = TestEnv::new();
    let [open, target] = totp_files(
        &env,
        [("ga-open", USER, 0o640), ("ga-target", OTHER, 0o600)],
    );
    let link = env.dir.path().join("ga-link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let odd_step = ga_file(
        &env,
        "ga-step",
        THIRD,
        &format!("{SECRET}\n\" STEP_SIZE 45\n\" TOTP_AUTH\n12345678\n"),
        0o600,
    );
    let args = |dry: bool| {
        let mut args = vec![
            "--file".to_string(),
            file_arg(USER, &open),
            "--file".to_string(),
            file_arg(OTHER, &link),
            "--file".to_string(),
            file_arg(THIRD, &odd_step),
        ];
        if dry {
            args.push("--dry-run".into());
        }
        args
    };
    for dry in [true, false] {
        let argv = args(dry);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (out, stdout) = import(&env, &argv);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        let refusals = [
            ("daemon", "mode 0640"),
            ("bin", "symbolic link"),
            ("sys", "STEP_SIZE 45"),
        ];
        for (line, (user, why)) in lines.iter().zip(refusals) {
            assert!(
                line.starts_with(&format!("{user}: refused:")) && line.contains(why),
                "{stdout}"
            );
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("3 of 3 users were not imported"),
            "{out:?}"
        );
    }
    for user in [USER, OTHER, THIRD] {
        assert!(!env.is_enrolled(user), "{user}");
    }
}

#[test]
fn remove_files_removes_each_file_only_after_its_import() {
    root_only!();
    let env = TestEnv::new();
    let [good, open] = totp_files(&env, [("ga-good", USER, 0o600), ("ga-open", OTHER, 0o644)]);
    let (out, stdout) = import(
        &env,
        &[
            "--remove-files",
            "--file",
            &file_arg(USER, &good),
            "--file",
            &file_arg(OTHER, &open),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout.contains(&format!("{} removed", good.display())),
        "{stdout}"
    );
    assert!(!good.exists());
    assert!(open.exists(), "a refused file stays");
    assert!(env.is_enrolled(USER));
    assert!(!env.is_enrolled(OTHER));
}

/// The home directory of `user` in the user database.
fn home_of(user: &str) -> PathBuf {
    let out = std::process::Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let entry = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(entry.trim().split(':').nth(5).expect("a passwd entry"))
}

#[test]
fn all_finds_the_file_in_the_home_directory_of_the_user_database() {
    root_only!();
    let env = TestEnv::new();
    let home = home_of(USER);
    let test_home = env.dir.path().join("home");
    fs::create_dir(&test_home).unwrap();
    let path = test_home.join(".google_authenticator");
    write_owned(&path, &totp_file(), USER, 0o600);
    // The CLI, with the test's directory mounted over the user's home directory.
    let run = |extra: &str| {
        let mut args = vec![
            "--bus",
            env.address.as_str(),
            "admin",
            "import",
            "google-authenticator",
            "--all",
        ];
        args.push(extra);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let out = with_private_mounts(&[(&test_home, &home)], &built("twofold"), &args)
            .output()
            .expect("unshare (util-linux)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, stdout)
    };
    let (out, stdout) = run("--dry-run");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("daemon: would be imported with 2 backup codes")),
        "{stdout}"
    );
    assert!(!env.is_enrolled(USER));
    let (out, stdout) = run("--remove-files");
    assert!(out.status.success(), "{out:?}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("daemon: "))
        .unwrap_or_default();
    assert!(
        line.starts_with("daemon: imported with 2 backup codes"),
        "{stdout}"
    );
    assert!(
        line.ends_with(&format!("{}/.google_authenticator removed", home.display())),
        "{stdout}"
    );
    assert!(!path.exists(), "--remove-files removed the imported file");
    let login = env.pam(&Login::new(USER, &totp(SECRET, 1)));
    assert_eq!(login.result, pam::SUCCESS, "{login:?}");
}

/// The HOTP code of base32 `secret` at counter value `counter`, by oathtool.
fn hotp(secret: &str, counter: u64) -> String {
    oathtool(&["--hotp", "-b", "-c", &counter.to_string(), secret])
}

#[test]
fn a_counter_based_file_keeps_its_counter() {
    root_only!();
    let env = TestEnv::new();
    // google-authenticator checks counters from HOTP_COUNTER on: 4 is used, 5 is next.
    let text = format!("{SECRET}\n\" HOTP_COUNTER 5\n\" WINDOW_SIZE 3\n12345678\n");
    let path = ga_file(&env, "ga-hotp", USER, &text, 0o600);
    let (out, stdout) = import(&env, &["--dry-run", "--file", &file_arg(USER, &path)]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with(
            "daemon: would be imported with 1 backup codes (dry run); HOTP, SHA1, 6 digits, \
             next counter 5; WINDOW_SIZE 3: not carried over"
        ),
        "{stdout}"
    );
    let (out, _) = import(&env, &["--file", &file_arg(USER, &path)]);
    assert!(out.status.success(), "{out:?}");
    let code = hotp(SECRET, 5);
    logins_end(
        &env,
        &[
            (USER, &hotp(SECRET, 4), pam::AUTH_ERR, "below the counter"),
            (USER, &code, pam::SUCCESS, "the counter's code"),
            (USER, &code, pam::AUTH_ERR, "once"),
            (USER, "12345678", pam::SUCCESS, "a scratch code"),
        ],
    );
    let devices = env.cli(&["devices", "--user", USER], None, "");
    let listed = String::from_utf8_lossy(&devices.stdout);
    assert!(listed.contains("hotp token"), "{devices:?}");
}

#[test]
fn steps_disallowed_for_reuse_stay_used() {
    root_only!();
    let env = TestEnv::new();
    // Room for the test in one step, so that "the step ahead" stays ahead.
    wait_for_fresh_step(20);
    let now = unix_now() / 30;
    // google-authenticator took the code of the step ahead (a phone whose clock runs
    // fast) and lists it; a user whose file lists nothing may use it.
    let listed = format!(
        "{SECRET}\n\" DISALLOW_REUSE {} {}\n\" TOTP_AUTH\n",
        now,
        now + 1
    );
    let path = ga_file(&env, "ga-listed", USER, &listed, 0o600);
    let unlisted = ga_file(&env, "ga-unlisted", OTHER, &totp_file(), 0o600);
    let (out, stdout) = import(
        &env,
        &[
            "--file",
            &file_arg(USER, &path),
            "--file",
            &file_arg(OTHER, &unlisted),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!(
            "daemon: imported; TOTP, SHA1, 6 digits, 30 s, steps up to {} used; \
             DISALLOW_REUSE: carried over",
            now + 1
        )),
        "{stdout}"
    );
    let ahead = totp(SECRET, 1);
    logins_end(
        &env,
        &[
            (USER, &ahead, pam::AUTH_ERR, "the step ahead is listed"),
            (OTHER, &ahead, pam::SUCCESS, "nothing is listed"),
        ],
    );
}

//! Self-service through the real `twofold` CLI and `twofoldd` (issue 3): enrollment on a
//! pseudo-terminal with the QR code decoded by zbarimg from the PNG and from a rendering
//! of the terminal, backup codes, regeneration, re-enrollment, disabling with the
//! account password, `doctor`, and the expiry of a pending enrollment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use twofold_tests::root_only;
use twofold_tests::{
    backup_codes_of, json, one_line_failure, pam, render_terminal, stderr, stdout, totp,
    wait_for_fresh_step, write_ppm, wrong_code, zbar_decode, Login, Pty, TestEnv, Theme, NOBODY,
};

const USER: &str = "daemon";
const PASSWORD: &str = "correct horse battery staple";
const PROMPT_WAIT: Duration = Duration::from_secs(20);

/// A failure: exit status 1 and one line on standard error containing `words`.
fn assert_one_line_failure(out: &Output, words: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = one_line_failure(out);
    assert!(err.contains(words), "{words:?} in {err}");
}

/// Text without ANSI escape sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for p in chars.by_ref() {
                if p.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn uri_in(text: &str) -> String {
    plain(text)
        .split_whitespace()
        .find(|w| w.starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("no URI in {text}"))
        .to_owned()
}

fn secret_of(uri: &str) -> String {
    uri.split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap()
        .to_owned()
}

/// The backup codes printed after "Backup codes": words like `k7qm-x2fp-9d`.
fn backup_codes_in(text: &str) -> Vec<String> {
    let text = plain(text);
    let after = text.split("Backup codes").nth(1).unwrap_or("");
    after
        .split_whitespace()
        .filter(|w| w.len() >= 10 && w.matches('-').count() >= 1 && !w.contains('`'))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .collect()
}

fn status_json(env: &TestEnv, user: &str) -> serde_json::Value {
    json(&env.cli(&["status", "--json", "--user", user], None, ""))
}

#[test]
fn the_terminal_qr_code_decodes_on_dark_and_light_themes_or_says_to_use_qr_png() {
    root_only!();
    let env = TestEnv::new();
    // (environment, whether colours are expected)
    let modes: [(&[&str], bool); 6] = [
        (&["TERM=xterm-256color"], true),
        (&["TERM=xterm", "COLORTERM=truecolor"], true),
        (&["TERM=xterm"], true),
        (&["TERM=linux"], true),
        (&["TERM=xterm-256color", "NO_COLOR=1"], false),
        (&["TERM=dumb"], false),
    ];
    for (vars, coloured) in modes {
        // Through env(1): Pty::spawn sets TERM and clears NO_COLOR for the program it runs.
        let mut cmd = std::process::Command::new("env");
        cmd.args(vars)
            .arg(twofold_tests::built("twofold"))
            .arg("--bus")
            .arg(&env.address)
            .args(["enroll", "--user", USER]);
        let mut pty = Pty::spawn(cmd, None);
        let intro = pty.expect("Enter the 6-digit code from your app: ", PROMPT_WAIT);
        drop(pty);
        let uri = uri_in(&intro);
        assert_eq!(intro.contains("\u{1b}["), coloured, "{vars:?}: {intro:?}");
        let says_qr_png = plain(&intro).contains("--qr-png");
        for theme in [Theme::dark(), Theme::light()] {
            let picture = env
                .dir
                .path()
                .join(format!("qr-{}-{}.ppm", vars.join("-"), theme.name));
            write_ppm(&picture, &render_terminal(&intro, &theme), 4);
            let decoded = zbar_decode(&picture).as_deref() == Some(uri.as_str());
            assert!(
                decoded || says_qr_png,
                "{vars:?} on a {} theme: unreadable ({}) and no word of --qr-png:\n{}",
                theme.name,
                picture.display(),
                plain(&intro)
            );
            if coloured {
                assert!(decoded, "{vars:?} on a {} theme", theme.name);
            }
        }
        // The hint only where it is needed.
        assert_eq!(says_qr_png, !coloured, "{vars:?}: {}", plain(&intro));
    }
}

#[test]
fn terminal_enrollment_shows_a_readable_qr_code_and_turns_on_2fa() {
    root_only!();
    let env = TestEnv::new();
    let png = env.dir.path().join("qr.png");
    let svg = env.dir.path().join("qr.svg");
    wait_for_fresh_step(12);
    let mut pty = Pty::spawn(
        env.cli_command(&[
            "enroll",
            "--user",
            USER,
            "--issuer",
            "Test Corp",
            "--qr-png",
            png.to_str().unwrap(),
            "--qr-svg",
            svg.to_str().unwrap(),
        ]),
        None,
    );
    let intro = pty.expect("Enter the 6-digit code from your app: ", PROMPT_WAIT);
    let uri = uri_in(&intro);
    let secret = secret_of(&uri);
    assert!(
        uri.starts_with("otpauth://totp/Test%20Corp:daemon?") || uri.contains("Test"),
        "{uri}"
    );

    // The secret is shown in groups of four for typing.
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert!(
        plain(&intro).contains(&format!("Secret: {}", grouped.join(" "))),
        "{intro}"
    );
    // The terminal got explicit colours: black on white from the 256-colour cube.
    assert!(intro.contains("\u{1b}[38;5;16;48;5;231m"), "{intro:?}");

    // A real decoder reads the PNG file, and the terminal as a dark and a light theme
    // show it.
    assert_eq!(zbar_decode(&png).as_deref(), Some(uri.as_str()), "PNG");
    for theme in [Theme::dark(), Theme::light()] {
        let picture = env.dir.path().join(format!("terminal-{}.ppm", theme.name));
        write_ppm(&picture, &render_terminal(&intro, &theme), 4);
        assert_eq!(
            zbar_decode(&picture).as_deref(),
            Some(uri.as_str()),
            "terminal QR on a {} theme ({})",
            theme.name,
            picture.display()
        );
    }
    let svg_text = fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<?xml") && svg_text.contains("<svg"));
    for file in [&png, &svg] {
        let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} holds the secret", file.display());
    }

    // A wrong code first: explained, asked again.
    let good = totp(&secret, 0);
    pty.send_line(&wrong_code(&secret));
    pty.expect("did not match", PROMPT_WAIT);
    pty.answer("Enter the 6-digit code from your app: ", &good, PROMPT_WAIT);
    let (status, transcript) = pty.wait(PROMPT_WAIT);
    assert!(status.success(), "{transcript}");
    assert!(
        transcript.contains("password manager or a safe"),
        "{transcript}"
    );
    let codes = backup_codes_in(&transcript);
    assert_eq!(codes.len(), 10, "ten backup codes: {codes:?}");

    // Codes from oathtool log in through PAM.
    let out = env.pam(&Login::new(USER, &totp(&secret, 1)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    let s = status_json(&env, USER);
    assert_eq!(s["enrolled"], true);
    assert_eq!(s["backup_codes_left"], 10);
    assert_eq!(s["last_method"], "totp", "{s}");
    assert_eq!(s["last_service"], "twofold-test", "{s}");
    assert_eq!(s["last_rhost"], serde_json::Value::Null, "{s}");
    assert!(s["last_used"].is_string(), "{s}");
    assert_eq!(s["recent_step_offsets"][0], 1, "{s}");
    let human = stdout(&env.cli(&["status", "--user", USER], None, ""));
    assert!(
        human.contains("with a code from the app, for twofold-test, on this machine"),
        "{human}"
    );
}

#[test]
fn each_backup_code_works_once_whatever_its_formatting() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let codes = &enrolled.backup_codes;
    assert_eq!(codes.len(), 10);
    let typed = [
        codes[0].clone(),
        codes[1].to_uppercase(),
        codes[2].replace('-', ""),
        format!("  {}  ", codes[3].replace('-', " ")),
    ];
    for (i, t) in typed.iter().enumerate() {
        let out = env.pam(&Login::new(USER, t));
        assert_eq!(out.result, pam::SUCCESS, "{t:?}: {out:?}");
        let again = env.pam(&Login::new(USER, &codes[i]));
        assert_eq!(again.result, pam::AUTH_ERR, "reused {t:?}: {again:?}");
    }
    let count = json(&env.cli(
        &["backup-codes", "count", "--json", "--user", USER],
        None,
        "",
    ));
    assert_eq!(count["backup_codes_left"], 6);
    assert_eq!(count["low"], false);

    for c in &codes[4..7] {
        assert_eq!(env.pam(&Login::new(USER, c)).result, pam::SUCCESS);
    }
    let out = env.cli(&["backup-codes", "count", "--user", USER], None, "");
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("Warning: Only 3 backup codes are left"),
        "{}",
        stdout(&out)
    );
    let s = status_json(&env, USER);
    assert_eq!(s["backup_codes_low"], true);
    assert_eq!(s["last_method"], "backup_code");
    assert!(stdout(&env.cli(&["status", "--user", USER], None, "")).contains("Warning"));

    // Regenerate (root needs no proof): the old set dies at once, the new one works.
    let fresh = json(&env.cli(
        &["backup-codes", "regenerate", "--json", "--user", USER],
        None,
        "",
    ));
    let fresh = backup_codes_of(&fresh);
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        env.pam(&Login::new(USER, &codes[7])).result,
        pam::AUTH_ERR,
        "an old code still works after regenerate"
    );
    assert_eq!(env.pam(&Login::new(USER, &fresh[0])).result, pam::SUCCESS);
    let count = json(&env.cli(&["backup-codes", "--json", "--user", USER], None, ""));
    assert_eq!(count["backup_codes_left"], 9);
}

#[test]
fn a_user_regenerates_reenrolls_and_disables_with_password_and_code() {
    root_only!();
    let env = TestEnv::with_password("", PASSWORD);
    let me = Some(NOBODY);
    let old = env.enroll("nobody");
    let s = json(&env.cli(&["status", "--json"], me, ""));
    assert_eq!(s["user"], "nobody");
    assert_eq!(s["enrolled"], true);

    // Regenerate needs a right code.
    let out = env.cli(
        &["backup-codes", "regenerate", "--code", "-"],
        me,
        "000000\n",
    );
    assert_one_line_failure(&out, "did not match");
    let out = env.cli(
        &["backup-codes", "regenerate", "--json", "--code", "-"],
        me,
        &format!("{}\n", old.backup_codes[0].to_uppercase()),
    );
    let second = backup_codes_of(&json(&out));
    assert_eq!(second.len(), 10);
    assert_eq!(
        env.pam(&Login::new("nobody", &old.backup_codes[1])).result,
        pam::AUTH_ERR,
        "regenerate kills the old set"
    );
    // Asked for on standard input, a wrong code first.
    let out = env.cli(
        &["backup-codes", "regenerate"],
        me,
        &format!("wrong-code\n{}\n", second[0]),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("did not match"), "{}", stdout(&out));
    let third = backup_codes_in(&stdout(&out));
    assert_eq!(third.len(), 10, "{}", stdout(&out));

    // Re-enrolling needs a proof: a script is told how to give it.
    let out = env.cli(&["enroll", "--begin", "--json"], me, "");
    assert_one_line_failure(&out, "--proof");

    // Interactively (a new phone): the old device's code is asked for first, the old
    // secret works until the new one is confirmed, then only the new one does.
    wait_for_fresh_step(20);
    let mut pty = Pty::spawn(env.cli_command(&["enroll"]), me);
    let old_device = "Enter a current code or a backup code from your old device: ";
    pty.answer(old_device, "000000", PROMPT_WAIT);
    pty.expect("did not match", PROMPT_WAIT);
    pty.answer("from your old device: ", &third[0], PROMPT_WAIT);
    let intro = pty.expect("Enter the 6-digit code from your app: ", PROMPT_WAIT);
    let new_secret = secret_of(&uri_in(&intro));
    assert_ne!(new_secret, old.secret);
    let out = env.pam(&Login::new("nobody", &totp(&old.secret, 0)));
    assert_eq!(
        out.result,
        pam::SUCCESS,
        "the old phone works until: {out:?}"
    );
    pty.send_line(&totp(&new_secret, 0));
    let (status, transcript) = pty.wait(PROMPT_WAIT);
    assert!(status.success(), "{transcript}");
    let codes = backup_codes_in(&transcript);
    assert_eq!(codes.len(), 10, "{transcript}");
    let out = env.pam(&Login::new("nobody", &totp(&old.secret, 1)));
    assert_eq!(out.result, pam::AUTH_ERR, "the old phone is gone: {out:?}");
    let out = env.pam(&Login::new("nobody", &totp(&new_secret, 1)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");

    // Disable: a wrong password, then a wrong code, are refused; nothing changes.
    let out = env.cli(
        &["disable", "--password-stdin", "--code", "-", "--yes"],
        me,
        &format!("not the password\n{}\n", codes[0]),
    );
    assert_one_line_failure(&out, "not the password");
    let out = env.cli(
        &["disable", "--password-stdin", "--code", "-", "--yes"],
        me,
        &format!("{PASSWORD}\n000000\n"),
    );
    assert_one_line_failure(&out, "did not match");
    let out = env.cli(
        &["disable", "--password-stdin", "--code", "-"],
        me,
        &format!("no\n{PASSWORD}\n{}\n", codes[1]),
    );
    assert_one_line_failure(&out, "Not confirmed");
    assert_eq!(
        json(&env.cli(&["status", "--json"], me, ""))["enrolled"],
        true
    );

    // On a terminal: a wrong code is said right after it is typed, and no confirmation
    // is asked after it (the confirmation comes first).
    // (The wrong codes above count: start again from no failures.)
    let out = env.cli(&["admin", "unlock", "nobody"], None, "");
    assert!(out.status.success(), "{out:?}");
    let (status, transcript) = disable_on_a_terminal(&env, me, "000000");
    assert_eq!(status.code(), Some(1), "{transcript}");
    let after_code = transcript
        .split("Enter a current code or a backup code: ")
        .nth(1)
        .unwrap();
    assert!(after_code.contains("did not match"), "{transcript}");
    assert!(!after_code.contains("Type 'disable'"), "{transcript}");

    // With both right: the password is not echoed, and it is off.
    let (status, transcript) = disable_on_a_terminal(&env, me, &codes[2]);
    assert!(status.success(), "{transcript}");
    assert!(!transcript.contains(PASSWORD), "echoed: {transcript}");
    assert!(transcript.contains("now off"), "{transcript}");
    let s = json(&env.cli(&["status", "--json"], me, ""));
    assert_eq!(s["enrolled"], false, "{s}");
    assert_eq!(s["backup_codes_left"], 0, "{s}");
    let out = env.pam(&Login::new("nobody", &codes[3]));
    assert_ne!(out.result, pam::SUCCESS, "{out:?}");

    // Now there is nothing to disable or count: one clear line each.
    let out = env.cli(&["disable", "--yes"], me, "");
    assert_one_line_failure(&out, "nothing to turn off");
    let out = env.cli(&["backup-codes", "count"], me, "");
    assert_one_line_failure(&out, "twofold enroll");
}

/// `twofold disable` on a terminal as `uid`: confirmed, the account password, then
/// `code`; its exit status and transcript.
fn disable_on_a_terminal(
    env: &TestEnv,
    uid: Option<u32>,
    code: &str,
) -> (std::process::ExitStatus, String) {
    let mut pty = Pty::spawn(env.cli_command(&["disable"]), uid);
    let confirm = "Type 'disable' to turn off two-factor authentication: ";
    pty.answer(confirm, "disable", PROMPT_WAIT);
    pty.answer("Password of your account: ", PASSWORD, PROMPT_WAIT);
    pty.answer("Enter a current code or a backup code: ", code, PROMPT_WAIT);
    pty.wait(PROMPT_WAIT)
}

#[test]
fn root_disables_another_user_without_password_or_code() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let out = env.cli(&["disable", "--user", USER, "--json"], None, "disable\n");
    let v = json(&out);
    assert_eq!(v["enrolled"], false);
    assert_eq!(status_json(&env, USER)["enrolled"], false);
    assert_ne!(
        env.pam(&Login::new(USER, &enrolled.backup_codes[0])).result,
        pam::SUCCESS
    );
}

/// A PAM directory and an sshd configuration as a careful administrator leaves them.
fn good_fixtures(env: &TestEnv) -> (String, String) {
    let pam_dir = env.dir.path().join("etc-pam.d");
    fs::create_dir_all(&pam_dir).unwrap();
    fs::write(
        pam_dir.join("common-auth"),
        "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
         auth required pam_permit.so\n",
    )
    .unwrap();
    fs::write(
        pam_dir.join("sshd"),
        "@include common-auth\nauth required pam_twofold.so nullok\n",
    )
    .unwrap();
    fs::write(
        pam_dir.join("sudo"),
        "#%PAM-1.0\n@include common-auth\n-auth required /lib/security/pam_twofold.so nullok\n",
    )
    .unwrap();
    let ssh = env.dir.path().join("etc-ssh");
    fs::create_dir_all(ssh.join("sshd_config.d")).unwrap();
    fs::write(
        ssh.join("sshd_config.d/50-twofold.conf"),
        "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
    )
    .unwrap();
    fs::write(
        ssh.join("sshd_config"),
        "Include sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n",
    )
    .unwrap();
    (
        pam_dir.display().to_string(),
        ssh.join("sshd_config").display().to_string(),
    )
}

fn doctor(env: &TestEnv, user: &str, pam_dir: &str, sshd: &str, json: bool) -> Output {
    let config = env.dir.path().join("doctor-twofoldd.toml");
    let config = config.to_str().unwrap();
    let mut args = vec![
        "doctor",
        "--user",
        user,
        "--pam-dir",
        pam_dir,
        "--sshd-config",
        sshd,
        "--assume-ntp-synced",
        "yes",
        "--daemon-config",
        config,
    ];
    if json {
        args.push("--json");
    }
    env.cli(&args, None, "")
}

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == id)
        .unwrap_or_else(|| panic!("no {id} check in {report}"))
}

/// Checks that `report`'s check `id` came out `status`, its message saying `says`.
fn assert_check_says(report: &serde_json::Value, id: &str, status: &str, says: &str) {
    let check = check(report, id);
    assert_eq!(check["status"], status, "{report}");
    let message = check["message"].as_str().unwrap();
    assert!(message.contains(says), "{report}");
}

#[test]
fn doctor_checks_daemon_pam_and_sshd() {
    root_only!();
    let mut env = TestEnv::new();
    let (pam_dir, sshd) = good_fixtures(&env);
    // A user who has not enrolled: nothing wrong with the account either.
    let out = doctor(&env, "bin", &pam_dir, &sshd, false);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("Everything looks right."), "{text}");
    assert!(text.starts_with("ok    daemon        twofoldd "), "{text}");
    let report: serde_json::Value =
        serde_json::from_slice(&doctor(&env, "bin", &pam_dir, &sshd, true).stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(check(&report, "daemon")["version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert_eq!(check(&report, "pam-sshd")["status"], "ok");
    assert_eq!(check(&report, "pam-sudo")["nullok"], true, "{report}");
    assert_eq!(check(&report, "sshd")["kbd_interactive"], true, "{report}");
    assert_eq!(check(&report, "server-clock")["synchronized"], true);

    // Without nullok, sshd asks everyone for a code: a user who has not enrolled is
    // warned that they cannot log in there.
    fs::write(
        std::path::Path::new(&pam_dir).join("sshd"),
        "@include common-auth\nauth required pam_twofold.so\n",
    )
    .unwrap();
    let out = doctor(&env, "bin", &pam_dir, &sshd, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_check_says(&report, "account", "warn", "user bin cannot log in there");

    // sudo without the module, sshd as Debian ships it, an unsynchronized clock.
    fs::write(
        std::path::Path::new(&pam_dir).join("sudo"),
        "@include common-auth\n",
    )
    .unwrap();
    fs::write(
        &sshd,
        "KbdInteractiveAuthentication no\nUsePAM yes\nInclude sshd_config.d/*.conf\n",
    )
    .unwrap();
    let out = env.cli(
        &[
            "doctor",
            "--json",
            "--user",
            "bin",
            "--pam-dir",
            &pam_dir,
            "--sshd-config",
            &sshd,
            "--assume-ntp-synced",
            "no",
        ],
        None,
        "",
    );
    // A failed check: exit status 2.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(check(&report, "pam-sudo")["status"], "warn", "{report}");
    assert_check_says(&report, "sshd", "fail", "KbdInteractiveAuthentication yes");
    assert_eq!(check(&report, "server-clock")["status"], "fail");

    // twofoldd's configuration, checked by twofoldd itself: a wrong type fails, naming
    // file, line and key; an unknown group warns.
    let config = env.dir.path().join("doctor-twofoldd.toml");
    fs::write(&config, "[lockout]\nmax_failures = \"five\"\n").unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&doctor(&env, "bin", &pam_dir, &sshd, true).stdout).unwrap();
    let says = "line 2: lockout.max_failures: invalid type";
    assert_check_says(&report, "config", "fail", says);
    fs::write(&config, "require_groups = [\"no-such-group-xyz\"]\n").unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&doctor(&env, "bin", &pam_dir, &sshd, true).stdout).unwrap();
    assert_eq!(check(&report, "config")["status"], "warn", "{report}");
    fs::remove_file(&config).unwrap();

    // Warnings only (sudo without the module again): exit status 1.
    let (_, good_sshd) = good_fixtures(&env);
    fs::write(
        std::path::Path::new(&pam_dir).join("sudo"),
        "@include common-auth\n",
    )
    .unwrap();
    let out = doctor(&env, "bin", &pam_dir, &good_sshd, false);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("warn  PAM sudo"), "{}", stdout(&out));

    // No daemon: said in one line of the report, the other checks still run.
    env.stop_daemon();
    let out = doctor(&env, "bin", &pam_dir, &sshd, false);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("fail  daemon") && l.contains("not reachable")),
        "{text}"
    );
    assert!(text.contains("PAM sshd"), "{text}");
}

#[test]
fn doctor_sees_a_phone_one_step_behind() {
    root_only!();
    let env = TestEnv::new();
    let (pam_dir, sshd) = good_fixtures(&env);
    wait_for_fresh_step(8);
    let begin = json(&env.cli(&["enroll", "--begin", "--json", "--user", USER], None, ""));
    let secret = begin["secret"].as_str().unwrap().to_owned();
    let out = env.cli(
        &["enroll", "--confirm", "-", "--user", USER],
        None,
        &format!("{}\n", totp(&secret, -1)),
    );
    assert!(out.status.success(), "{out:?}");
    // The next step, with the code of the step before it: a phone 30 s behind.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(30.0 - now % 30.0 + 0.3));
    let out = env.pam(&Login::new(USER, &totp(&secret, -1)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert_eq!(status_json(&env, USER)["recent_step_offsets"][0], -1);

    let out = doctor(&env, USER, &pam_dir, &sshd, true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a skew is worth a look: {out:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let phone = check(&report, "phone-clock");
    assert_eq!(phone["status"], "warn", "{report}");
    assert_eq!(phone["skew_steps"], -1, "{report}");
    assert_eq!(phone["skew_seconds"], -30, "{report}");
    let text = stdout(&doctor(&env, USER, &pam_dir, &sshd, false));
    assert!(
        text.contains(
            "warn  phone clock   your phone's clock seems about 30 s behind; set it to \
             automatic time"
        ),
        "{text}"
    );
}

#[test]
fn a_pending_enrollment_expires() {
    root_only!();
    // 60 s is the shortest the daemon allows.
    let env = TestEnv::with_config("enroll_pending_seconds = 60\n");
    let begin = json(&env.cli(&["enroll", "--begin", "--json", "--user", USER], None, ""));
    let secret = begin["secret"].as_str().unwrap().to_owned();
    assert!(begin["expires"].is_string(), "{begin}");
    assert_eq!(status_json(&env, USER)["pending_enrollment"], true);
    std::thread::sleep(Duration::from_secs(62));
    let out = env.cli(
        &["enroll", "--confirm", "-", "--user", USER],
        None,
        &format!("{}\n", totp(&secret, 0)),
    );
    assert_one_line_failure(&out, "expired");
    let s = status_json(&env, USER);
    assert_eq!(s["enrolled"], false, "{s}");
    assert_eq!(s["pending_enrollment"], false, "{s}");
}

#[test]
fn help_reads_well_and_usage_errors_exit_2() {
    root_only!();
    let env = TestEnv::new();
    let out = env.cli(&["--help"], None, "");
    assert!(out.status.success());
    let help = stdout(&out);
    for command in ["enroll", "status", "backup-codes", "disable", "doctor"] {
        assert!(help.contains(&format!("  {command} ")), "{command}: {help}");
    }
    for sub in [
        &["enroll", "--help"][..],
        &["backup-codes", "regenerate", "--help"],
        &["disable", "--help"],
        &["doctor", "--help"],
    ] {
        let out = env.cli(sub, None, "");
        assert!(out.status.success(), "{sub:?}");
        let text = stdout(&out);
        assert!(
            !text.contains("pam-dir") && !text.contains("assume-ntp"),
            "{text}"
        );
    }
    let out = env.cli(&["enroll", "--confirm", "-", "--qr-png", "x.png"], None, "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = env.cli(&["backup-codes", "regenerate", "--code", " "], None, "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
}

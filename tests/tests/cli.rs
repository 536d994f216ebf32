//! The `twofold` CLI against the real twofoldd on a private bus.

use twofold_tests::root_only;
use twofold_tests::{
    one_line_failure, pam, stderr, stdout, totp, wait_for_fresh_step, wrong_code, Login, TestEnv,
    NOBODY,
};

const USER: &str = "daemon";

/// Pulls the base32 secret from the `otpauth://` URI in the human enrollment output.
fn secret_from(text: &str) -> String {
    let uri = text
        .split_whitespace()
        .find(|w| w.starts_with("otpauth://"))
        .expect("the URI is printed");
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    secret.to_string()
}

#[test]
fn interactive_enrollment_with_a_wrong_code_first() {
    root_only!();
    let env = TestEnv::new();
    wait_for_fresh_step(10);
    // The secret is only known once printed: read it from the CLI's output, then answer
    // the prompt with a wrong code first and the right one second.
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(twofold_tests::built("twofold"))
        .args([
            "--bus",
            &env.address,
            "enroll",
            "--user",
            USER,
            "--issuer",
            "Test",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("otpauth://") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "no URI in: {seen}"
        );
        seen.push_str(&line);
    }
    let secret = secret_from(&seen);
    assert!(
        seen.contains('▀') || seen.contains('▄') || seen.contains('█'),
        "QR blocks: {seen}"
    );
    let good = totp(&secret, 0);
    let wrong = wrong_code(&secret);
    writeln!(stdin, "{wrong}").unwrap();
    writeln!(stdin, "{good}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let all = format!("{rest}{err}");
    assert!(status.success(), "{seen}{all}");
    assert!(
        all.contains("did not match"),
        "the wrong code is explained: {all}"
    );
    assert!(
        all.contains("2 tries left."),
        "the tries left are said: {all}"
    );
    let codes: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| w.len() == 12 && w.matches('-').count() == 2)
        .collect();
    assert_eq!(codes.len(), 10, "ten backup codes printed: {rest}");

    // The enrollment is live: the next step's code logs in, and a backup code does.
    let out = env.pam(&Login::new(USER, &totp(&secret, 1)));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    let out = env.pam(&Login::new(USER, codes[0]));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
}

#[test]
fn interactive_enrollment_gives_up_after_three_tries() {
    root_only!();
    let env = TestEnv::new();
    let out = env.cli(
        &["enroll", "--user", USER],
        None,
        "000000\n000001\n000002\n",
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("2 tries left.") && said.contains("1 try left."),
        "{said}"
    );
    let status = env.cli(&["status", "--json", "--user", USER], None, "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["enrolled"], false, "{status}");
}

#[test]
fn begin_confirm_and_status_json() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    assert!(
        enrolled.uri.starts_with("otpauth://totp/"),
        "{}",
        enrolled.uri
    );
    assert!(enrolled
        .uri
        .contains(&format!("secret={}", enrolled.secret)));
    assert!(enrolled.uri.contains("issuer="));
    let out = env.cli(&["status", "--json", "--user", USER], None, "");
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["backup_codes_left"], 10);
    let human = env.cli(&["status", "--user", USER], None, "");
    assert!(stdout(&human).contains("10"), "{}", stdout(&human));

    // A wrong confirmation code is one clear line and a failure.
    let out = env.cli(&["enroll", "--begin", "--user", "bin"], None, "");
    assert!(out.status.success());
    let out = env.cli(
        &["enroll", "--confirm", "-", "--user", "bin"],
        None,
        "000000\n",
    );
    one_line_failure(&out);
}

#[test]
fn errors_are_one_friendly_line() {
    root_only!();
    let mut env = TestEnv::new();
    let out = env.cli(&["status", "--user", "no-such-user-xyz"], None, "");
    one_line_failure(&out);

    let out = env.cli(&["status", "--user", USER], Some(NOBODY), "");
    one_line_failure(&out);

    env.stop_daemon();
    let out = env.cli(&["status"], None, "");
    let err = one_line_failure(&out);
    assert!(err.contains("not reachable"), "{err}");

    let out = env.cli(&["enroll", "--begin", "--confirm", "-"], None, "");
    assert_eq!(out.status.code(), Some(2), "usage error: {out:?}");
}

#[test]
fn errors_under_json_are_one_object_with_error_and_code() {
    root_only!();
    let mut env = TestEnv::new();
    let object = |out: &std::process::Output| -> serde_json::Value {
        let err = stderr(out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        serde_json::from_str(err.trim()).unwrap_or_else(|e| panic!("{e}: {err}"))
    };
    let out = env.cli(&["status", "--json", "--user", USER], Some(NOBODY), "");
    assert_eq!(out.status.code(), Some(1));
    let e = object(&out);
    assert_eq!(e["code"], "permission_denied", "{e}");
    assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert!(out.stdout.is_empty(), "nothing on stdout");

    let out = env.cli(&["status", "--json", "--user", ""], None, "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(object(&out)["code"], "usage");

    env.stop_daemon();
    let out = env.cli(&["status", "--json"], None, "");
    assert_eq!(out.status.code(), Some(1));
    let e = object(&out);
    assert_eq!(e["code"], "unavailable", "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("not reachable"),
        "{e}"
    );
}

#[test]
fn an_issuer_longer_than_the_daemon_takes_is_refused_by_the_cli() {
    root_only!();
    let mut env = TestEnv::new();
    let longest = "x".repeat(twofold_contract::limits::MAX_ISSUER_LEN);
    let too_long = format!("{longest}y");
    // The CLI refuses it itself (a usage error, exit 2), without the daemon.
    env.stop_daemon();
    let out = env.cli(&["enroll", "--begin", "--issuer", &too_long], None, "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = one_line_failure(&out);
    assert!(
        err.starts_with("twofold: --issuer: ") && err.contains("64"),
        "{err}"
    );
    // The longest one is the daemon's to take.
    env.start_daemon();
    let out = env.cli(
        &[
            "enroll", "--begin", "--json", "--issuer", &longest, "--user", USER,
        ],
        None,
        "",
    );
    assert!(out.status.success(), "{out:?}");
}

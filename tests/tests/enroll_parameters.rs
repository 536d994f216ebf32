//! Enrollment with other parameters than an app's (`--algorithm`, `--digits`,
//! `--period`): the CLI warns that some apps ignore them, the otpauth URI (read back from
//! the QR code by zbarimg) carries them, the confirmation and the real PAM stack take
//! oathtool's codes made with them, once each; parameters outside the supported set get a
//! one-line error.

use twofold_tests::flows::{login_ends, logins_end, totp_with};
use twofold_tests::root_only;
use twofold_tests::{json, pam, zbar_decode, Login, TestEnv};

const USER: &str = "daemon";

/// The parameters the test enrolls with: SHA-256, 8 digits, 60-second steps.
const PARAMETERS: [&str; 6] = ["--algorithm", "sha256", "--digits", "8", "--period", "60"];

/// oathtool's SHA-256, 8-digit, 60-second code of base32 `secret`, `offset` steps from
/// now.
fn code(secret: &str, offset: i64) -> String {
    totp_with(&["--totp=sha256", "-d", "8", "-b"], 60, secret, offset)
}

#[test]
fn sha256_8_digits_60_seconds_from_enrollment_to_login() {
    root_only!();
    let env = TestEnv::new();
    let png = env.dir.path().join("qr.png");
    let png_arg = png.to_str().unwrap();
    let begin = ["enroll", "--begin", "--json", "--user", USER];
    let args = [&begin[..], &PARAMETERS, &["--qr-png", png_arg]].concat();
    let out = env.cli(&args, None, "");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("Google Authenticator") && stderr.contains("ignore"),
        "{stderr}"
    );
    let begin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = begin["secret"].as_str().unwrap();
    let uri = begin["uri"].as_str().unwrap();
    assert!(
        uri.contains("&algorithm=SHA256&digits=8&period=60"),
        "{uri}"
    );
    assert_eq!(
        zbar_decode(&png).as_deref(),
        Some(uri),
        "the QR code is the URI"
    );

    // A 6-digit code is not this device's; the previous step's 8-digit code confirms.
    let confirm = |code: &str| {
        env.cli(
            &["enroll", "--confirm", "-", "--user", USER],
            None,
            &format!("{code}\n"),
        )
    };
    let six = confirm("123456");
    assert!(!six.status.success(), "{six:?}");
    assert!(
        String::from_utf8_lossy(&six.stderr).contains("8-digit"),
        "{six:?}"
    );
    let out = confirm(&code(secret, -1));
    assert!(out.status.success(), "{out:?}");

    let fresh = code(secret, 0);
    logins_end(
        &env,
        &[
            (USER, &fresh, pam::SUCCESS, "the current step's code"),
            (USER, &fresh, pam::AUTH_ERR, "a code works once"),
        ],
    );
    second_device_status_and_doctor(&env);
}

/// A second device, SHA-512 with an app's digits and steps, added to USER; then each
/// device is listed with its parameters, the last login names its device, and doctor
/// judges each device's clock.
fn second_device_status_and_doctor(env: &TestEnv) {
    // `devices add spare --user USER` and the step's options.
    let add = ["devices", "add", "spare", "--user", USER];
    let begin = json(&env.cli(
        &[&add[..], &["--begin", "--json", "--algorithm", "SHA512"]].concat(),
        None,
        "",
    ));
    let spare = begin["secret"].as_str().unwrap().to_string();
    let sha512 = |offset: i64| totp_with(&["--totp=sha512", "-b"], 30, &spare, offset);
    let out = env.cli(
        &[&add[..], &["--confirm", "-"]].concat(),
        None,
        &format!("{}\n", sha512(-1)),
    );
    assert!(out.status.success(), "{out:?}");
    // Devices are told apart by the second of their last use.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let with_spare = Login::new(USER, &sha512(0));
    login_ends(env, &with_spare, pam::SUCCESS, "the spare's code");

    let out = env.cli(&["devices", "--user", USER], None, "");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("totp app (TOTP, SHA256, 8 digits, 60 s)")
            && listed.contains("totp app (TOTP, SHA512, 6 digits, 30 s)"),
        "{out:?}"
    );
    let out = env.cli(&["status", "--user", USER, "--json"], None, "");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["last_device"], "spare", "{status}");
    assert_eq!(status["devices"][0]["digits"], 8, "{status}");
    let out = env.cli(&["status", "--user", USER], None, "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(device spare)"),
        "{out:?}"
    );

    let none = env.dir.path().join("none");
    let none = none.to_str().unwrap();
    let args = [
        "doctor",
        "--json",
        "--user",
        USER,
        "--assume-ntp-synced",
        "yes",
        "--pam-dir",
        none,
        "--sshd-config",
        none,
        "--daemon-config",
        none,
    ];
    let out = env.cli(&args, None, "");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let clock = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "phone-clock")
        .unwrap_or_else(|| panic!("no phone-clock check: {report}"));
    let message = clock["message"].as_str().unwrap();
    assert!(
        message.starts_with("device default: your phone's clock agrees")
            && message.contains("; device spare: your phone's clock agrees"),
        "{clock}"
    );
    assert_eq!(
        clock["devices"][1]["samples"],
        serde_json::json!([0]),
        "{clock}"
    );
}

#[test]
fn an_app_enrollment_is_not_warned_and_odd_parameters_get_one_line() {
    root_only!();
    let env = TestEnv::new();
    let out = env.cli(&["enroll", "--begin", "--user", USER], None, "");
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("&algorithm=SHA1&digits=6&period=30"),
        "{out:?}"
    );
    for (flag, value, why) in [
        ("--digits", "7", "6 or 8 digits, not 7"),
        ("--period", "45", "30 or 60 seconds, not 45"),
        ("--period", "0", "counts time"),
        ("--algorithm", "MD5", "SHA1, SHA256, SHA512"),
    ] {
        let out = env.cli(&["enroll", "--user", "bin", flag, value], None, "");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(why),
            "{flag} {value}: {stderr}"
        );
    }
    assert!(!env.is_enrolled("bin"));
}

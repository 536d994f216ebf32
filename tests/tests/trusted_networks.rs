//! Trusted networks (`trusted_networks`, `[[trusted_networks_for]]`) end to end: libpam →
//! pam_twofold.so → private dbus-daemon → twofoldd, through a stack whose next line is
//! `auth required pam_permit.so` (a stand-in for the password step). Only documentation
//! and loopback addresses, as PAM_RHOST strings: nothing is contacted.

use twofold_contract::AuditEntry;
use twofold_tests::root_only;
use twofold_tests::{built, pam, totp, wrong_code, Enrolled, Login, PamOutcome, TestEnv};

/// Enrolled, and in no group below. `bin` is the only member of group `bin`.
const USER: &str = "daemon";
const BIN: &str = "bin";

/// Loopback is trusted too: "localhost" and a local login (no rhost) must still be asked.
const CONFIG: &str =
    "trusted_networks = [\"192.0.2.0/24\", \"2001:db8:1::/48\", \"127.0.0.0/8\"]\n\
                      [[trusted_networks_for]]\n\
                      group = \"bin\"\n\
                      networks = [\"198.51.100.0/24\"]\n";

/// What the daemon tells a login that it spares the code.
const SPARED: &str = "No verification code is needed from this network.";

/// A login by `user` from `rhost` (None: a local login) typing `code` if asked, through
/// `pam_twofold.so` then `pam_permit.so`.
fn login(env: &TestEnv, user: &str, rhost: Option<&str>, code: &str) -> PamOutcome {
    env.pam(&Login {
        rhost: rhost.map(Into::into),
        stack_after: "auth required pam_permit.so\n".into(),
        ..Login::new(user, code)
    })
}

/// An environment with CONFIG's trusted networks, `user` enrolled there, and a wrong code
/// of theirs.
fn trusting(user: &str) -> (TestEnv, Enrolled, String) {
    let env = TestEnv::with_config(CONFIG);
    let enrolled = env.enroll(user);
    let wrong = wrong_code(&enrolled.secret);
    (env, enrolled, wrong)
}

/// USER, from an untrusted host, is asked for the code once, and the right one passes.
fn assert_asked_and_passed_from_elsewhere(env: &TestEnv, enrolled: &Enrolled) {
    let out = login(env, USER, Some("203.0.113.7"), &totp(&enrolled.secret, 0));
    assert_eq!((out.result, out.prompts()), (pam::SUCCESS, 1), "{out:?}");
}

fn skips(env: &TestEnv, user: &'static str) -> Vec<AuditEntry> {
    let log = env.with_proxy(|p| Box::pin(async move { p.audit_log(user, 0, 500).await.unwrap() }));
    log.into_iter()
        .filter(|e| e.event == "trusted_network")
        .collect()
}

#[test]
fn a_trusted_rhost_is_not_asked_and_the_skip_is_audited() {
    root_only!();
    let (env, enrolled, wrong) = trusting(USER);
    for rhost in [
        "192.0.2.10",
        "::ffff:192.0.2.11",
        "2001:db8:1:ff::5",
        "127.0.0.2",
    ] {
        // Had the module asked, the wrong code would have failed the login.
        let out = login(&env, USER, Some(rhost), &wrong);
        assert_eq!(
            out.result,
            pam::SUCCESS,
            "{rhost}: {out:?}\n{}",
            env.log_text()
        );
        assert_eq!(out.prompts(), 0, "{rhost}: no code asked: {out:?}");
        assert!(out.texts().contains(SPARED), "{rhost}: {out:?}");
    }
    let skips = skips(&env, USER);
    let rhosts: Vec<&str> = skips.iter().map(|e| e.rhost.as_str()).collect();
    assert_eq!(
        rhosts,
        [
            "127.0.0.2",
            "2001:db8:1:ff::5",
            "::ffff:192.0.2.11",
            "192.0.2.10"
        ],
        "{skips:?}"
    );
    let last = &skips[3];
    assert_eq!(
        (last.user.as_str(), last.service.as_str()),
        (USER, "twofold-test")
    );
    assert_eq!(last.actor_uid, 0);
    assert_eq!(last.detail, "no code asked: in 192.0.2.0/24");
    assert_eq!(skips[1].detail, "no code asked: in 2001:db8:1::/48");
    let log = env.log_text();
    assert!(
        log.contains(
            "no code asked, trusted network: user=daemon service=twofold-test rhost=192.0.2.10"
        ),
        "{log}"
    );
    // Still enrolled, and the code still works from elsewhere.
    assert_asked_and_passed_from_elsewhere(&env, &enrolled);
}

#[test]
fn an_untrusted_an_empty_and_a_host_name_rhost_are_asked() {
    root_only!();
    let (env, enrolled, wrong) = trusting(USER);
    for rhost in [
        None,
        Some(""),
        Some("203.0.113.7"),
        Some("2001:db8:2::1"),
        Some("trusted.example.org"),
        // A host name, though it names a trusted address.
        Some("localhost"),
        // Inside group bin's network, but USER is not in group bin.
        Some("198.51.100.7"),
    ] {
        let out = login(&env, USER, rhost, &wrong);
        assert_eq!(
            (out.result, out.prompts()),
            (pam::AUTH_ERR, 1),
            "{rhost:?}: asked, and the wrong code refused: {out:?}"
        );
        assert!(!out.texts().contains(SPARED), "{rhost:?}: {out:?}");
    }
    assert_eq!(skips(&env, USER), []);
    // The right code from an untrusted host passes as always.
    assert_asked_and_passed_from_elsewhere(&env, &enrolled);
}

#[test]
fn a_groups_network_spares_only_its_members() {
    root_only!();
    let (env, _, wrong) = trusting(BIN);
    let out = login(&env, BIN, Some("198.51.100.7"), &wrong);
    assert_eq!((out.result, out.prompts()), (pam::SUCCESS, 0), "{out:?}");
    let skips = skips(&env, BIN);
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert_eq!(
        skips[0].detail,
        "no code asked: in 198.51.100.0/24 (for group bin)"
    );
}

#[test]
fn sighup_turns_trusted_networks_on_and_a_bad_network_keeps_the_old_policy() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let wrong = wrong_code(&enrolled.secret);
    let out = login(&env, USER, Some("192.0.2.10"), &wrong);
    assert_eq!(
        (out.result, out.prompts()),
        (pam::AUTH_ERR, 1),
        "off by default: {out:?}"
    );

    std::fs::write(&env.config, CONFIG).unwrap();
    env.signal_daemon(libc::SIGHUP);
    env.wait_for_log("configuration reloaded");
    let out = login(&env, USER, Some("192.0.2.10"), &wrong);
    assert_eq!((out.result, out.prompts()), (pam::SUCCESS, 0), "{out:?}");

    // Host bits set on line 2: refused, naming the line and the key; the old policy stays.
    std::fs::write(
        &env.config,
        "trusted_networks = [\n  \"192.0.2.1/24\",\n]\n",
    )
    .unwrap();
    env.signal_daemon(libc::SIGHUP);
    env.wait_for_log("keeping the previous configuration");
    let log = env.log_text();
    assert!(
        log.contains("line 2: trusted_networks[0]: \"192.0.2.1/24\" has host bits set"),
        "{log}"
    );
    let out = login(&env, USER, Some("192.0.2.10"), &wrong);
    assert_eq!((out.result, out.prompts()), (pam::SUCCESS, 0), "{out:?}");
}

/// `twofoldd --check-config` names the key and line of a bad network and prints the
/// networks it would trust; `twofold doctor` shows them in one line, or "off".
#[test]
fn check_config_and_doctor_show_the_policy() {
    root_only!();
    let env = TestEnv::new();
    let dir = env.dir.path();
    let check = |text: &str| {
        let path = dir.join("check.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(built("twofoldd"))
            .args(["--check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), said)
    };
    let (code, said) = check(
        "[[trusted_networks_for]]\ngroup = \"bin\"\nnetworks = [\"127.0.0.0/7\", \"fd00::/8\"]\n",
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("line 3: trusted_networks_for[0].networks[0]: \"127.0.0.0/7\" has host bits set: the network is \"126.0.0.0/7\""),
        "{said}"
    );
    let (code, said) = check(CONFIG);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(
            "trusted networks: 192.0.2.0/24, 2001:db8:1::/48, 127.0.0.0/8; \
             for group bin: 198.51.100.0/24\n"
        ),
        "{said}"
    );

    let doctor = |config: &std::path::Path| {
        let pam_dir = dir.join("no-pam.d");
        let out = env.cli(
            &[
                "doctor",
                "--json",
                "--assume-ntp-synced",
                "yes",
                "--pam-dir",
                pam_dir.to_str().unwrap(),
                "--sshd-config",
                dir.join("no-sshd_config").to_str().unwrap(),
                "--daemon-config",
                config.to_str().unwrap(),
            ],
            None,
            "",
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "trusted-networks")
            .unwrap_or_else(|| panic!("no trusted-networks check: {report}"))
            .clone()
    };
    let on = dir.join("on.toml");
    std::fs::write(&on, CONFIG).unwrap();
    let c = doctor(&on);
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(
        c["message"],
        "192.0.2.0/24, 2001:db8:1::/48, 127.0.0.0/8; for group bin: 198.51.100.0/24 \
         (logins from there are not asked for a code)",
        "{c}"
    );
    let off = dir.join("off.toml");
    std::fs::write(&off, "totp_window = 1\n").unwrap();
    assert_eq!(doctor(&off)["message"], "off");
    assert_eq!(doctor(&dir.join("absent.toml"))["message"], "off");
    // In the report for people: one line.
    let out = env.cli(
        &[
            "doctor",
            "--assume-ntp-synced",
            "yes",
            "--daemon-config",
            on.to_str().unwrap(),
        ],
        None,
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("trusted nets"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with("ok    trusted nets  192.0.2.0/24, "),
        "{text}"
    );
}

//! Hostile conditions met by the clients (`twofold` and pam_twofold.so), end to end on a
//! private bus with the real daemon and real libpam: codes put in argv (which every
//! local user reads with `ps`), and a store that fails under `failmode=safe`.
//!
//! Every test needs root (private buses, tmpfs mounts, other uids).

use std::fs;
use std::process::Command;

use twofold_tests::root_only;
use twofold_tests::{
    built, json, one_line_failure, pam, totp, wait_for_fresh_step, wrong_code, Login, PamOutcome,
    TestEnv,
};

/// The user that the tests enroll (uid 1 on Debian).
const USER: &str = "daemon";

fn status_json(env: &TestEnv) -> serde_json::Value {
    json(&env.cli(&["status", "--json", "--user", USER], None, ""))
}

#[test]
fn codes_on_the_command_line_are_refused_before_anything_is_sent() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let backup = enrolled.backup_codes[0].as_str();
    let code = totp(&enrolled.secret, 0);
    // As root, each of these would act at once if the code were taken from argv.
    for args in [
        &[
            "backup-codes",
            "regenerate",
            "--user",
            USER,
            "--code",
            backup,
        ][..],
        &["disable", "--user", USER, "--yes", "--code", backup],
        &["enroll", "--user", USER, "--begin", "--proof", backup],
        &["enroll", "--user", USER, "--proof", &code],
        &["enroll", "--user", USER, "--confirm", &code],
    ] {
        let out = env.cli(args, None, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = one_line_failure(&out);
        let flag = args[args.len() - 2];
        assert!(
            err.contains(&format!("`{flag} -`")) && err.contains("standard input"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(backup) && !err.contains(&code), "{err}");
    }

    // Nothing reached the daemon: still enrolled, every backup code still there, and
    // the first one still opens a login.
    let s = status_json(&env);
    assert_eq!(s["enrolled"], true, "{s}");
    assert_eq!(s["backup_codes_left"], 10, "{s}");
    assert_eq!(s["pending_enrollment"], false, "{s}");
    let out = env.pam(&Login::new(USER, backup));
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");

    // The same code on standard input (`-`) is taken.
    let out = env.cli(
        &[
            "backup-codes",
            "regenerate",
            "--user",
            USER,
            "--code",
            "-",
            "--json",
        ],
        None,
        &format!("{}\n", enrolled.backup_codes[1]),
    );
    assert!(out.status.success(), "{out:?}");
    let fresh: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fresh["backup_codes"].as_array().unwrap().len(), 10);
}

/// One login through a stack where the module stepping aside lets the login in:
///
/// ```text
/// auth required pam_twofold.so bus=… ARGS
/// auth required pam_permit.so
/// ```
///
/// `PAM_IGNORE` from pam_twofold leaves the decision to pam_permit, which grants it.
fn login_then_permit(env: &TestEnv, login: &Login) -> PamOutcome {
    let confdir = env.pam_confdir(login);
    let service = confdir.join("twofold-test");
    let mut stack = fs::read_to_string(&service).unwrap();
    stack.push_str("auth required pam_permit.so\n");
    fs::write(&service, stack).unwrap();
    let out = Command::new(built("pamdriver"))
        .arg("--confdir")
        .arg(&confdir)
        .args(["--service", "twofold-test", "--user", &login.user])
        .args(login.responses.iter().flat_map(|r| ["--response", r]))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("pamdriver");
    assert!(out.status.success(), "pamdriver crashed: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("pamdriver output {out:?}: {e}"))
}

#[test]
fn a_full_store_fails_closed_under_failmode_safe() {
    root_only!();
    let (mut env, enrolled) = TestEnv::with_enrolled(USER);
    let safe = |code: &str| Login::new(USER, code).args("failmode=safe");

    // The stack is one where stepping aside lets anyone in: with the daemon gone,
    // failmode=safe does exactly that (as documented).
    env.stop_daemon();
    let gone = login_then_permit(&env, &safe("000000"));
    assert_eq!(
        gone.result,
        pam::SUCCESS,
        "failmode=safe, no daemon: {gone:?}"
    );

    let (state, mounted) = env.state_on_a_small_tmpfs();
    let filler = twofold_tests::fill(&state);
    wait_for_fresh_step(5);
    let wrong = wrong_code(&enrolled.secret);
    let full = login_then_permit(&env, &safe(&wrong));
    let log = env.log_text();
    assert_ne!(
        full.result,
        pam::SUCCESS,
        "a wrong code got in on a full disk with failmode=safe: {full:?}\n{log}"
    );
    assert_eq!(full.result, pam::AUTHINFO_UNAVAIL, "{full:?}\n{log}");
    // The user is told it is the service, not their code, and whom to ask.
    assert!(
        full.texts()
            .contains("reported an error. Contact your administrator."),
        "{full:?}"
    );
    assert!(
        log.contains("full"),
        "the daemon's log must say the disk is full:\n{log}"
    );

    // Space returns: the wrong code is refused, the right one passes.
    fs::remove_file(&filler).unwrap();
    let refused = login_then_permit(&env, &safe(&wrong));
    assert_eq!(refused.result, pam::AUTH_ERR, "{refused:?}");
    let ok = login_then_permit(&env, &safe(&totp(&enrolled.secret, 0)));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    env.stop_daemon();
    drop(mounted);
}

//! Hostile guessing and storage growth: a user who has the victim's password and holds
//! a thousand terminals, or guesses from a thousand addresses, gets no more guesses than
//! the per-user ceilings; made-up context values do not make stored keys grow; a state
//! directory others may write into is refused, sticky or not.
//!
//! Every test is bounded in time and needs root (private buses, real libpam).

use std::collections::HashMap;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use twofold_tests::client::{connect, runtime};
use twofold_tests::contract::{context, limits, TwofoldError};
use twofold_tests::root_only;
use twofold_tests::uid_of;
use twofold_tests::{pam, totp, unix_now, Enrolled, Login, TestEnv};
use twofoldd::lockout::{LockoutPolicy, MAX_SOURCE_KEY};

/// The user that the tests enroll (uid 1 on Debian).
const USER: &str = "daemon";

/// Guesses that the default policy allows from all local sources together.
fn local_ceiling() -> usize {
    LockoutPolicy::default().local_ceiling as usize
}

/// Guesses that the default policy allows from all remote sources together.
fn remote_ceiling() -> usize {
    LockoutPolicy::default().user_ceiling as usize
}

/// A pseudo-terminal pair's master side, kept open, and the name of its slave.
struct Pty {
    _master: OwnedFd,
    name: String,
}

/// Opens `n` pseudo-terminals, as an attacker holding many terminals does.
fn open_ptys(n: usize) -> Vec<Pty> {
    (0..n)
        .map(|i| {
            // SAFETY: posix_openpt returns a new descriptor or -1; nothing else is touched.
            let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
            assert!(fd >= 0, "pty {i}: {}", std::io::Error::last_os_error());
            // SAFETY: fd is a descriptor we own and close exactly once, through OwnedFd.
            let master = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut buf = [0 as libc::c_char; 64];
            // SAFETY: fd is an open pty master; ptsname_r writes at most buf.len() bytes,
            // NUL included, into buf.
            let ok = unsafe {
                libc::grantpt(fd) == 0
                    && libc::unlockpt(fd) == 0
                    && libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()) == 0
            };
            assert!(ok, "pty {i}: {}", std::io::Error::last_os_error());
            // SAFETY: ptsname_r succeeded, so buf holds a NUL-terminated name.
            let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            Pty {
                _master: master,
                name,
            }
        })
        .collect()
}

/// A six-digit code that is none of the codes valid around now (the step may change
/// while a test runs: the valid codes are looked up again for each new step).
struct WrongCodes {
    secret: String,
    step: u64,
    valid: Vec<String>,
}

impl WrongCodes {
    fn new(secret: &str) -> WrongCodes {
        WrongCodes {
            secret: secret.into(),
            step: u64::MAX,
            valid: Vec::new(),
        }
    }

    fn next(&mut self, n: usize) -> String {
        let step = unix_now() / 30;
        if step != self.step {
            self.step = step;
            self.valid = (-2..=2).map(|o| totp(&self.secret, o)).collect();
        }
        (n..)
            .map(|k| format!("{:06}", (k * 7919) % 1_000_000))
            .find(|c| !self.valid.contains(c))
            .unwrap()
    }
}

/// Verify calls as root with `contexts` (what the PAM module of a root login sends), one
/// wrong code each; returns the answers by error name.
fn guess_over_dbus(
    env: &TestEnv,
    wrong: &mut WrongCodes,
    contexts: Vec<HashMap<String, String>>,
) -> HashMap<String, usize> {
    runtime().block_on(async {
        let (_conn, proxy) = connect(&env.address).await;
        let mut answers = HashMap::new();
        for (i, ctx) in contexts.into_iter().enumerate() {
            let code = wrong.next(i);
            let name = match proxy.verify(USER, &code, ctx).await {
                Ok(v) => panic!("a wrong code was accepted: {v:?}"),
                Err(TwofoldError::InvalidCode(_)) => "InvalidCode",
                Err(TwofoldError::Locked(_)) => "Locked",
                Err(e) => panic!("unexpected answer: {e:?}"),
            };
            *answers.entry(name.to_string()).or_insert(0) += 1;
        }
        answers
    })
}

/// Wrong codes the daemon checked for `USER` (each one a guess, whatever it answered).
fn guesses_checked(env: &TestEnv) -> usize {
    let log =
        env.with_proxy(|p| Box::pin(async move { p.audit_log(USER, 0, 100_000).await.unwrap() }));
    log.iter().filter(|e| e.event == "verify_failed").count()
}

/// A test environment with USER enrolled, and wrong codes of theirs to guess with.
fn guessing_env() -> (TestEnv, Enrolled, WrongCodes) {
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let wrong = WrongCodes::new(&enrolled.secret);
    (env, enrolled, wrong)
}

/// Checks that the daemon checked no more than `ceiling` guesses (made from `from`);
/// gives how many it checked.
fn assert_guesses_within(env: &TestEnv, ceiling: usize, from: &str) -> usize {
    let checked = guesses_checked(env);
    assert!(
        checked <= ceiling,
        "{checked} guesses checked from {from}; the ceiling is {ceiling}"
    );
    checked
}

fn tty_context(tty: &str) -> HashMap<String, String> {
    HashMap::from([
        (context::SERVICE.to_string(), "sudo".to_string()),
        (context::TTY.to_string(), tty.to_string()),
    ])
}

#[test]
fn a_thousand_terminals_get_no_more_guesses_than_the_local_ceiling() {
    root_only!();
    let started = Instant::now();
    let (env, enrolled, mut wrong) = guessing_env();
    let ptys = open_ptys(1000);

    // The first terminals through the real PAM stack, as sudo on each would.
    let through_pam = 12;
    for pty in &ptys[..through_pam] {
        let out = env.pam(&Login {
            tty: Some(pty.name.clone()),
            ..Login::new(USER, &wrong.next(0))
        });
        assert!(
            out.result == pam::AUTH_ERR || out.result == pam::MAXTRIES,
            "{}: {out:?}",
            pty.name
        );
    }
    // The rest with what the module sends for them, over D-Bus as root.
    let contexts = ptys[through_pam..]
        .iter()
        .map(|pty| tty_context(&pty.name))
        .collect();
    let answers = guess_over_dbus(&env, &mut wrong, contexts);
    eprintln!("answers over D-Bus: {answers:?}");

    let ceiling = local_ceiling();
    let checked = assert_guesses_within(&env, ceiling, &format!("{} terminals", ptys.len()));
    assert_eq!(checked, ceiling, "the ceiling is reached, not undercut");

    // The right code from yet another terminal is refused too: the user is locked.
    let fresh = open_ptys(1).pop().unwrap();
    let out = env.pam(&Login {
        tty: Some(fresh.name.clone()),
        ..Login::new(USER, &totp(&enrolled.secret, 0))
    });
    assert_eq!(out.result, pam::MAXTRIES, "locally locked: {out:?}");
    // Remote logins have their own ceiling: local guessing does not lock them.
    let out = env.pam(&Login {
        tty: Some("ssh".into()),
        rhost: Some("127.0.0.2".into()),
        ..Login::new(USER, &totp(&enrolled.secret, 0))
    });
    assert_eq!(out.result, pam::SUCCESS, "remote login still open: {out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_thousand_remote_addresses_are_capped_and_never_lock_the_console() {
    root_only!();
    let (env, enrolled, mut wrong) = guessing_env();
    // Loopback addresses other than 127.0.0.1: each one a remote host to the daemon.
    let contexts = (0..1000)
        .map(|i| {
            HashMap::from([
                (context::SERVICE.to_string(), "sshd".to_string()),
                (context::TTY.to_string(), "ssh".to_string()),
                (
                    context::RHOST.to_string(),
                    format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250),
                ),
            ])
        })
        .collect();
    let answers = guess_over_dbus(&env, &mut wrong, contexts);
    eprintln!("answers: {answers:?}");
    assert_guesses_within(&env, remote_ceiling(), "1,000 addresses");
    // A remote login with the right code is locked now; the console is not.
    let out = env.pam(&Login {
        tty: Some("ssh".into()),
        rhost: Some("127.0.9.9".into()),
        ..Login::new(USER, &totp(&enrolled.secret, 0))
    });
    assert_eq!(out.result, pam::MAXTRIES, "remote logins locked: {out:?}");
    let out = env.pam(&Login {
        tty: Some("/dev/tty1".into()),
        ..Login::new(USER, &totp(&enrolled.secret, 0))
    });
    assert_eq!(
        out.result,
        pam::SUCCESS,
        "the console stays usable: {out:?}"
    );
}

/// The reported attack: a user verifies their own account over D-Bus, making up a new
/// terminal for each guess.
#[test]
fn a_user_making_up_terminals_over_dbus_gets_no_more_guesses_than_the_ceiling() {
    root_only!();
    let (env, _, mut wrong) = guessing_env();
    let uid = uid_of(USER).expect("the test user");
    for i in 0..60 {
        let (_, said) = env.dbus_send_as(
            uid,
            "Verify",
            &[
                &format!("string:{USER}"),
                &format!("string:{}", wrong.next(i)),
                &format!("dict:string:string:service,sudo,tty,fake{i}"),
            ],
        );
        assert!(
            said.contains("InvalidCode") || said.contains("Locked"),
            "guess {i}: {said}"
        );
    }
    assert_guesses_within(&env, local_ceiling(), "60 made-up terminals");
}

#[test]
fn long_context_values_do_not_make_stored_keys_grow() {
    root_only!();
    let (env, _, mut wrong) = guessing_env();
    // As long as the door lets through.
    let long = |c: char| c.to_string().repeat(limits::MAX_CONTEXT_VALUE_LEN);
    let contexts = vec![
        tty_context(&long('t')),
        HashMap::from([
            (context::SERVICE.to_string(), "sshd".to_string()),
            (context::RHOST.to_string(), long('r')),
        ]),
    ];
    let answers = guess_over_dbus(&env, &mut wrong, contexts);
    assert_eq!(answers.get("InvalidCode"), Some(&2), "{answers:?}");
    let out = Command::new("sqlite3")
        .arg(&env.db)
        .arg("SELECT count(*), max(length(source)) FROM throttle;")
        .output()
        .expect("the sqlite3 CLI must be installed");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (rows, longest) = text.split_once('|').unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(rows, "4", "two sources and two ceilings: {text}");
    let longest: usize = longest.parse().unwrap();
    assert!(
        longest <= MAX_SOURCE_KEY,
        "a stored source key of {longest} bytes"
    );
}

#[test]
fn a_sticky_world_writable_state_directory_stops_the_start() {
    root_only!();
    let mut env = TestEnv::new();
    env.stop_daemon();
    let state = env.db.parent().unwrap().to_path_buf();
    for mode in [0o1777, 0o1733] {
        fs::set_permissions(&state, fs::Permissions::from_mode(mode)).unwrap();
        let said = env.expect_refusal(&format!("mode {mode:04o}"));
        assert!(
            said.contains(&state.display().to_string()) && said.contains(&format!("{mode:04o}")),
            "state dir {mode:04o}: {said}"
        );
    }
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    env.start_daemon();
}

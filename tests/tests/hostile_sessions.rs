//! Hostile sessions: an ordinary user (`daemon`, uid 1) with the daemon's D-Bus interface
//! tries to make twofoldd signal root's processes, to have logind end a session it
//! names, and to carry a grace window from one login session into another.
//!
//! Every test starts its own bus and daemon, needs root, and never touches the host's
//! /etc/pam.d (a private mount namespace binds the test's own over it).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use twofold_tests::root_only;
use twofold_tests::wait_for;
use twofold_tests::{built, opened_session, signal, Login, PamOutcome, TestEnv};

/// The ordinary user of the attacks (uid 1 on Debian).
const USER: &str = "daemon";
const USER_UID: u32 = 1;

/// Start time of a live (not zombie) process, from /proc/PID/stat.
fn started(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    (fields.first() != Some(&"Z")).then(|| fields.get(19)?.parse().ok())?
}

/// The session `pam_twofold.so` line for this environment.
fn session_line(env: &TestEnv) -> String {
    format!(
        "session optional {} bus={} daemon_uid=0 timeout=3\n",
        built("libpam_twofold.so").display(),
        env.address
    )
}

/// The live sessions of `user`, as root lists them.
fn live_sessions(env: &TestEnv, user: &str) -> Vec<Value> {
    let out = env.cli(&["sessions", "--user", user, "--json"], None, "");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn all_sessions(env: &TestEnv, user: &str) -> Vec<Value> {
    let out = env.cli(&["sessions", "--all", "--user", user, "--json"], None, "");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn one_live_session(env: &TestEnv, user: &str) -> Value {
    wait_for(Duration::from_secs(10), || {
        live_sessions(env, user).into_iter().next()
    })
    .unwrap_or_else(|| panic!("no session of {user}; daemon log:\n{}", env.log_text()))
}

/// `twofold sessions revoke ID` as the user.
fn revoke_as_user(env: &TestEnv, id: &str) -> Output {
    env.cli(&["sessions", "revoke", id], Some(USER_UID), "")
}

/// Reads `NAME PID` lines from a script until every name in `names` was seen.
fn read_pids(out: &mut BufReader<ChildStdout>, names: &[&str]) -> Vec<u32> {
    let mut found = vec![0; names.len()];
    while found.contains(&0) {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "script ended early");
        let mut words = line.split_whitespace();
        if let (Some(name), Some(pid)) = (words.next(), words.next()) {
            if let Some(i) = names.iter().position(|n| *n == name) {
                found[i] = pid.parse().unwrap();
            }
        }
    }
    found
}

/// The repro: a root job's process group holds a root `sleep` and
/// `runuser -u daemon -- sleep`; runuser (root) opens the user's session and is its
/// recorded leader. The user revokes the session: the user's sleep and its runuser end,
/// the root script and the root sleep live on.
#[test]
fn revoking_ones_session_spares_the_root_job_that_shares_its_group() {
    root_only!();
    let env = TestEnv::new();
    let runuser = format!(
        "auth sufficient pam_rootok.so\naccount required pam_permit.so\n{}\
         session required pam_permit.so\n",
        session_line(&env)
    );
    let pamd = env.new_pam_dir(&[
        ("runuser", &runuser),
        (
            "other",
            "auth required pam_deny.so\naccount required pam_deny.so\n",
        ),
    ]);
    let script = format!(
        "mount --bind {} /etc/pam.d || exit 1\n\
         sleep 900 & echo ROOT_SLEEP $!\n\
         runuser -u {USER} -- sleep 900 & echo RUNUSER $!\n\
         echo SCRIPT $$\nwait\n",
        pamd.display()
    );
    // The root job leads its own process group, as a shell script started from cron or
    // a service does; runuser runs in that group.
    let mut job = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(job.stdout.take().unwrap());
    let pids = read_pids(&mut out, &["ROOT_SLEEP", "RUNUSER", "SCRIPT"]);
    let (root_sleep, runuser, script_pid) = (pids[0], pids[1], pids[2]);
    let group = job.id() as i32;
    let session = one_live_session(&env, USER);
    assert_eq!(
        session["leader_pid"].as_u64(),
        Some(u64::from(runuser)),
        "{session}"
    );
    // The user's own sleep: runuser's child.
    let user_sleep = wait_for(Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{runuser}/task/{runuser}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse::<u32>()
            .ok()
    })
    .expect("runuser's child");
    let (root_sleep_start, script_start, user_sleep_start) = (
        started(root_sleep).unwrap(),
        started(script_pid).unwrap(),
        started(user_sleep).unwrap(),
    );

    let out = revoke_as_user(&env, session["id"].as_str().unwrap());
    let user_sleep_gone = wait_for(Duration::from_secs(5), || {
        (started(user_sleep) != Some(user_sleep_start)).then_some(())
    })
    .is_some();
    // A signal sent to the group would have reached the root processes by now.
    std::thread::sleep(Duration::from_millis(500));
    let root_sleep_lives = started(root_sleep) == Some(root_sleep_start);
    let script_lives = started(script_pid) == Some(script_start);
    let log = env.log_text();
    signal(-group, libc::SIGKILL);
    let _ = job.wait();
    assert!(out.status.success(), "revoke: {out:?}\n{log}");
    assert!(
        root_sleep_lives,
        "the root sleep in the group was killed\n{log}"
    );
    assert!(script_lives, "the root script was killed\n{log}");
    assert!(user_sleep_gone, "the user's own process survived\n{log}");
    let ended = all_sessions(&env, USER);
    assert!(
        ended[0]["end_reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("revoked by uid {USER_UID}")),
        "{ended:?}"
    );
}

/// The user sets `XDG_SESSION_ID` to root's logind session (as `pam_env user_readenv=1`
/// lets them, from ~/.pam_environment), then revokes their own session: twofoldd never
/// records that id, and never asks logind to terminate it.
#[test]
fn a_forged_xdg_session_id_is_ignored() {
    root_only!();
    let env = TestEnv::new();
    let (mut mock, dbus_send) = twofold_tests::mock_logind_session(&env, "c42", 0, "root");
    let stack = session_line(&env) + "session required pam_permit.so\n";
    let mut leader = opened_session(&mut env.session_driver(
        &stack,
        USER,
        &["--tty", "tty5", "--env", "XDG_SESSION_ID=c42"],
    ));
    let session = one_live_session(&env, USER);
    let recorded = session["logind_session"].clone();
    let out = revoke_as_user(&env, session["id"].as_str().unwrap());
    let calls = dbus_send(&["org.freedesktop.DBus.Mock.GetCalls"]);
    let calls = String::from_utf8_lossy(&calls.stdout).into_owned();
    let leader_ended = wait_for(Duration::from_secs(10), || leader.try_wait().ok().flatten());
    let _ = leader.kill();
    let _ = leader.wait();
    let _ = mock.kill();
    let _ = mock.wait();
    assert_eq!(
        recorded, "",
        "the PAM environment's id was recorded: {session}"
    );
    assert!(out.status.success(), "revoke: {out:?}\n{}", env.log_text());
    assert!(
        !calls.contains("TerminateSession"),
        "logind was asked to terminate: {calls}"
    );
    assert!(leader_ended.is_some(), "the user's session did not end");
}

/// pamdriver runs in their own login sessions (`setsid`), as tty-less sudo does:
/// PAM_RHOST is this host's name, there is no PAM_TTY.
fn tty_less_logins(env: &TestEnv, confdir: &Path, codes: &[&str]) -> Vec<PamOutcome> {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let driver = built("pamdriver");
    let runs: Vec<String> = codes
        .iter()
        .map(|code| {
            format!(
                "{} --confdir {} --service twofold-test --user {USER} --rhost {host} \
                 --response {code}",
                driver.display(),
                confdir.display()
            )
        })
        .collect();
    let out = Command::new("setsid")
        .args(["-w", "sh", "-c", &runs.join("; ")])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", env.log_text());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// One tty-less login with a code opens the grace window in its own login session only:
/// a tty-less login in another session (same user, service and host name as rhost) is
/// asked for a code.
#[test]
fn tty_less_grace_does_not_cross_login_sessions() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let confdir = env.pam_confdir(&Login::new(USER, "").args("daemon_uid=0 grace=300"));
    let code = enrolled.code_lasting(10);
    // Session one: a code, then (same session) no code needed.
    let one = tty_less_logins(&env, &confdir, &[&code, "000000"]);
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(one[0].result, twofold_tests::pam::SUCCESS, "{one:?}");
    assert_eq!(one[0].prompts(), 1, "{one:?}");
    assert_eq!(
        (one[1].result, one[1].prompts()),
        (twofold_tests::pam::SUCCESS, 0),
        "the same login session is within grace: {one:?}\n{}",
        env.log_text()
    );
    // Session two: asked, and a wrong code fails.
    let two = tty_less_logins(&env, &confdir, &["000000"]);
    assert_eq!(two[0].prompts(), 1, "grace crossed sessions: {two:?}");
    assert_ne!(
        two[0].result,
        twofold_tests::pam::SUCCESS,
        "grace crossed sessions: {two:?}\n{}",
        env.log_text()
    );
}

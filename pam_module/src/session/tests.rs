//! The session hooks and the grace question against a scripted daemon.

use std::time::Instant;

use pam::constants::PamResultCode;
use twofold_contract::{context, ErrorKind};

use super::*;
use crate::client::CallError;
use crate::mock::{MockConnector, MockLog};

/// How the scripted daemon answers the session calls and the grace question.
#[derive(Clone)]
enum Reply {
    Ok,
    Unavailable,
    Denied,
}

impl Reply {
    fn answer<T>(&self, ok: T) -> Result<T, CallError> {
        match self {
            Reply::Ok => Ok(ok),
            Reply::Unavailable => Err(CallError::Unavailable(
                "no answer within the timeout".into(),
            )),
            Reply::Denied => Err(CallError::daemon(ErrorKind::PermissionDenied, "root only")),
        }
    }
}

/// Connections that fail with `connect`'s error, or answer every call with `reply`
/// (`CheckGrace`: with `grace`).
fn connector(connect: Result<(), String>, reply: Reply, grace: bool) -> MockConnector {
    MockConnector {
        connect,
        open: Some(reply.answer("0badc0de".into())),
        close: Some(reply.answer(())),
        grace: Some(reply.answer(grace)),
        ..MockConnector::new()
    }
}

fn ctx() -> SessionContext {
    SessionContext {
        login: LoginContext::from_items(Some(b"sshd"), Some(b"ssh"), Some(b"192.0.2.1"), None),
        pid: 4242,
    }
}

/// Runs `hook` for `user` with the default options against `k`: the result and the log.
fn run(hook: Hook, user: &[u8], k: &mut MockConnector) -> (PamResultCode, MockLog) {
    let mut log = MockLog::default();
    let rc = session(hook, &Options::default(), user, &ctx(), k, &mut log);
    (rc, log)
}

#[test]
fn open_registers_with_items_and_pid() {
    let mut k = connector(Ok(()), Reply::Ok, false);
    let (rc, log) = run(Hook::Open, b"alice", &mut k);
    assert_eq!(rc, PamResultCode::PAM_SUCCESS);
    let r = k.record.borrow();
    assert_eq!(r.opened.len(), 1);
    let (user, info) = &r.opened[0];
    assert_eq!(user, "alice");
    assert_eq!(info[context::SERVICE], "sshd");
    assert_eq!(info[context::TTY], "ssh");
    assert_eq!(info[context::RHOST], "192.0.2.1");
    assert_eq!(info[context::PID], "4242");
    assert!(!info.contains_key(context::LOGIND_SESSION));
    assert!(!info.contains_key(context::RUSER));
    assert!(
        r.dropped,
        "the connection must be gone when the hook returns"
    );
    assert!(r.connect_budget.unwrap() <= Options::default().timeout);
    assert!(log.lines.iter().any(|(_, l)| l.contains("0badc0de")));
}

#[test]
fn close_reports_to_the_daemon() {
    let mut k = connector(Ok(()), Reply::Ok, false);
    let (rc, _) = run(Hook::Close, b"alice", &mut k);
    assert_eq!(rc, PamResultCode::PAM_SUCCESS);
    assert_eq!(k.record.borrow().closed.len(), 1);
}

#[test]
fn never_breaks_a_login() {
    for (connect, reply) in [
        (Err("cannot connect".to_string()), Reply::Ok),
        (Ok(()), Reply::Unavailable),
        (Ok(()), Reply::Denied),
    ] {
        for hook in [Hook::Open, Hook::Close] {
            let mut k = connector(connect.clone(), reply.clone(), false);
            let (rc, log) = run(hook, b"alice", &mut k);
            assert_eq!(rc, PamResultCode::PAM_IGNORE);
            assert!(!log.lines.is_empty(), "a failure is logged");
        }
    }
    // A bad user name never reaches the daemon.
    let mut k = connector(Ok(()), Reply::Ok, false);
    let (rc, _) = run(Hook::Open, b"", &mut k);
    assert_eq!(rc, PamResultCode::PAM_IGNORE);
    assert_eq!(k.record.borrow().connects, 0);
}

#[test]
fn no_logind_id_is_sent() {
    // The daemon asks logind; the PAM environment (XDG_SESSION_ID) is the user's to set.
    assert!(!ctx().to_map().contains_key(context::LOGIND_SESSION));
}

#[test]
fn grace_answers_and_failures_mean_ask_for_a_code() {
    let opts = Options {
        grace: 300,
        ..Options::default()
    };
    let deadline = Instant::now() + opts.timeout;
    let login = ctx().login;
    for (reply, grace, expect) in [
        (Reply::Ok, true, true),
        (Reply::Ok, false, false),
        (Reply::Unavailable, true, false),
        (Reply::Denied, true, false),
    ] {
        let mut k = connector(Ok(()), reply, grace);
        let mut d = k.connect(&opts, deadline).unwrap();
        let mut log = MockLog::default();
        assert_eq!(
            remembered(&opts, "alice", &login, &mut d, deadline, &mut log),
            expect
        );
        assert_eq!(k.record.borrow().graces, vec![("alice".to_string(), 300)]);
    }
}

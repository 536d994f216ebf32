//! The session hooks and the grace question against a scripted daemon.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pam::constants::PamResultCode;
use twofold_contract::{context, ErrorKind, LoginState, Verified};

use super::*;
use crate::client::CallError;

#[derive(Default)]
struct Record {
    connects: usize,
    budget: Option<Duration>,
    opened: Vec<(String, HashMap<String, String>)>,
    closed: Vec<(String, HashMap<String, String>)>,
    graces: Vec<(String, u32)>,
    dropped: bool,
}

#[derive(Clone)]
enum Reply {
    Ok,
    Unavailable,
    Denied,
}

struct MockConnector {
    connect: Result<(), String>,
    reply: Reply,
    grace: bool,
    record: Rc<RefCell<Record>>,
}

struct MockDaemon {
    reply: Reply,
    grace: bool,
    record: Rc<RefCell<Record>>,
}

impl Connector for MockConnector {
    type Daemon = MockDaemon;
    fn connect(&mut self, _opts: &Options, deadline: Instant) -> Result<MockDaemon, String> {
        let mut r = self.record.borrow_mut();
        r.connects += 1;
        r.budget = Some(deadline.saturating_duration_since(Instant::now()));
        self.connect.clone()?;
        Ok(MockDaemon {
            reply: self.reply.clone(),
            grace: self.grace,
            record: self.record.clone(),
        })
    }
}

impl MockDaemon {
    fn answer<T>(&self, ok: T) -> Result<T, CallError> {
        match self.reply {
            Reply::Ok => Ok(ok),
            Reply::Unavailable => Err(CallError::Unavailable(
                "no answer within the timeout".into(),
            )),
            Reply::Denied => Err(CallError::daemon(ErrorKind::PermissionDenied, "root only")),
        }
    }
}

impl Daemon for MockDaemon {
    fn begin_login(
        &mut self,
        _user: &str,
        _context: HashMap<String, String>,
        _deadline: Instant,
    ) -> Result<LoginState, CallError> {
        unreachable!("no login questions in session hooks")
    }
    fn verify(
        &mut self,
        _user: &str,
        _code: &str,
        _context: HashMap<String, String>,
        _deadline: Instant,
    ) -> Result<Verified, CallError> {
        unreachable!("no codes in session hooks")
    }
    fn open_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        _deadline: Instant,
    ) -> Result<String, CallError> {
        self.record.borrow_mut().opened.push((user.into(), info));
        self.answer("0badc0de".into())
    }
    fn close_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        _deadline: Instant,
    ) -> Result<(), CallError> {
        self.record.borrow_mut().closed.push((user.into(), info));
        self.answer(())
    }
    fn check_grace(
        &mut self,
        user: &str,
        _context: HashMap<String, String>,
        seconds: u32,
        _deadline: Instant,
    ) -> Result<bool, CallError> {
        self.record.borrow_mut().graces.push((user.into(), seconds));
        self.answer(self.grace)
    }
}

impl Drop for MockDaemon {
    fn drop(&mut self) {
        self.record.borrow_mut().dropped = true;
    }
}

#[derive(Default)]
struct MockLog(Vec<(Level, String)>);

impl Logger for MockLog {
    fn log(&mut self, level: Level, msg: &str) {
        self.0.push((level, msg.to_owned()));
    }
}

fn connector(connect: Result<(), String>, reply: Reply) -> MockConnector {
    MockConnector {
        connect,
        reply,
        grace: false,
        record: Rc::default(),
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
    let mut k = connector(Ok(()), Reply::Ok);
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
    assert!(r.budget.unwrap() <= Options::default().timeout);
    assert!(log.0.iter().any(|(_, l)| l.contains("0badc0de")));
}

#[test]
fn close_reports_to_the_daemon() {
    let mut k = connector(Ok(()), Reply::Ok);
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
            let mut k = connector(connect.clone(), reply.clone());
            let (rc, log) = run(hook, b"alice", &mut k);
            assert_eq!(rc, PamResultCode::PAM_IGNORE);
            assert!(!log.0.is_empty(), "a failure is logged");
        }
    }
    // A bad user name never reaches the daemon.
    let mut k = connector(Ok(()), Reply::Ok);
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
        let mut k = MockConnector {
            grace,
            ..connector(Ok(()), reply)
        };
        let mut d = k.connect(&opts, deadline).unwrap();
        let mut log = MockLog::default();
        assert_eq!(
            remembered(&opts, "alice", &login, &mut d, deadline, &mut log),
            expect
        );
        assert_eq!(k.record.borrow().graces, vec![("alice".to_string(), 300)]);
    }
}

//! The scripted daemon and log of the unit tests (the login flow's and the session
//! hooks'): each connection answers what the test scripted and records what it was asked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use twofold_contract::{LoginState, Verified};

use crate::client::{CallError, Connector, Daemon, Level, Logger, Request};
use crate::options::Options;

/// What the daemon connections were asked, and how they were used.
#[derive(Default)]
pub struct Record {
    pub connects: usize,
    /// The time left to the deadline at the last connect.
    pub connect_budget: Option<Duration>,
    /// The user of each `BeginLogin`.
    pub statuses: Vec<String>,
    /// Each `Verify`: user, code, context.
    pub verifies: Vec<(String, String, HashMap<String, String>)>,
    /// The time left to the deadline at the last `Verify`.
    pub verify_budget: Option<Duration>,
    /// Each `OpenSession`: user, info.
    pub opened: Vec<(String, HashMap<String, String>)>,
    /// Each `CloseSession`: user, info.
    pub closed: Vec<(String, HashMap<String, String>)>,
    /// Each `CheckGrace`: user, seconds.
    pub graces: Vec<(String, u32)>,
    /// A connection was dropped.
    pub dropped: bool,
    /// Daemon connections open now.
    pub open: usize,
    /// How many were open at each prompt.
    pub open_at_prompts: Vec<usize>,
}

/// Scripted connections: the first gets the answers of phase 1 and of the session hooks
/// (`BeginLogin`, `CheckGrace`, `OpenSession`, `CloseSession`), the next the `Verify`
/// answer (the login flow closes the first before it prompts). A call whose answer is
/// not scripted panics, except `CheckGrace`, which then says it is not supported.
pub struct MockConnector {
    pub connect: Result<(), String>,
    /// The outcome of the connections after the first (None: as `connect`).
    pub reconnect: Option<Result<(), String>>,
    /// The connections are the fallback from a socket served by another uid.
    pub impostor: Option<String>,
    pub status: Option<Result<LoginState, CallError>>,
    pub verify: Option<Result<Verified, CallError>>,
    pub grace: Option<Result<bool, CallError>>,
    pub open: Option<Result<String, CallError>>,
    pub close: Option<Result<(), CallError>>,
    pub record: Rc<RefCell<Record>>,
}

impl MockConnector {
    /// Connections that succeed and answer nothing yet.
    pub fn new() -> Self {
        MockConnector {
            connect: Ok(()),
            reconnect: None,
            impostor: None,
            status: None,
            verify: None,
            grace: None,
            open: None,
            close: None,
            record: Rc::default(),
        }
    }
}

/// One connection of a [`MockConnector`].
pub struct MockDaemon {
    status: Option<Result<LoginState, CallError>>,
    verify: Option<Result<Verified, CallError>>,
    grace: Option<Result<bool, CallError>>,
    open: Option<Result<String, CallError>>,
    close: Option<Result<(), CallError>>,
    impostor: Option<String>,
    record: Rc<RefCell<Record>>,
}

impl Connector for MockConnector {
    type Daemon = MockDaemon;
    fn connect(&mut self, _opts: &Options, deadline: Instant) -> Result<MockDaemon, String> {
        let mut r = self.record.borrow_mut();
        r.connects += 1;
        r.connect_budget = Some(deadline.saturating_duration_since(Instant::now()));
        let first = r.connects == 1;
        match (first, &self.reconnect) {
            (false, Some(outcome)) => outcome.clone()?,
            _ => self.connect.clone()?,
        }
        r.open += 1;
        let mut daemon = MockDaemon {
            status: None,
            verify: None,
            grace: None,
            open: None,
            close: None,
            impostor: self.impostor.clone(),
            record: self.record.clone(),
        };
        if first {
            daemon.status = self.status.take();
            daemon.grace = self.grace.take();
            daemon.open = self.open.take();
            daemon.close = self.close.take();
        } else {
            daemon.verify = self.verify.take();
        }
        Ok(daemon)
    }
}

impl Daemon for MockDaemon {
    fn impostor(&self) -> Option<String> {
        self.impostor.clone()
    }
    fn begin_login(&mut self, req: Request<'_>) -> Result<LoginState, CallError> {
        self.record.borrow_mut().statuses.push(req.user.to_owned());
        self.status.take().expect("unexpected BeginLogin call")
    }
    fn verify(&mut self, req: Request<'_>, code: &str) -> Result<Verified, CallError> {
        let mut r = self.record.borrow_mut();
        let entry = (req.user.to_owned(), code.to_owned(), req.context);
        r.verifies.push(entry);
        r.verify_budget = Some(req.deadline.saturating_duration_since(Instant::now()));
        self.verify.take().expect("unexpected Verify call")
    }
    fn open_session(&mut self, req: Request<'_>) -> Result<String, CallError> {
        let entry = (req.user.to_owned(), req.context);
        self.record.borrow_mut().opened.push(entry);
        self.open.take().expect("unexpected OpenSession call")
    }
    fn close_session(&mut self, req: Request<'_>) -> Result<(), CallError> {
        let entry = (req.user.to_owned(), req.context);
        self.record.borrow_mut().closed.push(entry);
        self.close.take().expect("unexpected CloseSession call")
    }
    fn check_grace(&mut self, req: Request<'_>, seconds: u32) -> Result<bool, CallError> {
        let entry = (req.user.to_owned(), seconds);
        self.record.borrow_mut().graces.push(entry);
        self.grace
            .take()
            .unwrap_or_else(|| Err(CallError::Unavailable("CheckGrace is not supported".into())))
    }
}

impl Drop for MockDaemon {
    fn drop(&mut self) {
        let mut record = self.record.borrow_mut();
        record.dropped = true;
        record.open -= 1;
    }
}

/// The log lines, in order.
#[derive(Debug, Default)]
pub struct MockLog {
    pub lines: Vec<(Level, String)>,
}

impl Logger for MockLog {
    fn log(&mut self, level: Level, msg: &str) {
        self.lines.push((level, msg.to_owned()));
    }
}

impl MockLog {
    /// A line of `level` contains `needle`.
    pub fn has(&self, level: Level, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }
}

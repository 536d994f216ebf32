//! The module's side of the daemon: the connection ([`Connector`], [`Daemon`]), what a
//! failed call is ([`CallError`]), the login's PAM items ([`LoginContext`]), the check of
//! the user name ([`check_user`]) and the log sink ([`Logger`]). The login flow (`auth`)
//! and the session hooks (`session`) build on it, the bus client (`bus`) implements it,
//! and it imports none of them.

use std::collections::HashMap;
use std::time::Instant;

use twofold_contract::{context, limits, ErrorKind, LoginState, Verified};

use crate::options::Options;
use crate::text::lossy_truncated;

/// Longest PAM item (service, tty, rhost, ruser) passed on to the daemon, in bytes.
pub const MAX_ITEM_LEN: usize = 256;
/// Syslog severity of a log line (the facility is always `LOG_AUTHPRIV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `LOG_ERR`: the daemon is unavailable, or the module is misconfigured.
    Err,
    /// `LOG_WARNING`: bad module arguments, refused requests.
    Warning,
    /// `LOG_NOTICE`: authentication outcomes.
    Notice,
    /// `LOG_INFO`.
    Info,
    /// `LOG_DEBUG`: step-by-step lines, only with the `debug` option.
    Debug,
}

/// Where log lines go (`pam_syslog` in the real module).
pub trait Logger {
    /// Writes one line. `msg` never contains a code or anything else the user typed.
    fn log(&mut self, level: Level, msg: &str);
}

/// A failed daemon call.
#[derive(Debug)]
pub enum CallError {
    /// The daemon could not be asked or did not answer in time; the reason is for the log.
    Unavailable(String),
    /// The daemon answered with one of its errors (kind and message).
    Daemon(ErrorKind, String),
    /// Something answered in a way the daemon never should (an unknown error, a reply
    /// of the wrong shape); the reason is for the log.
    Unexpected(String),
}

impl CallError {
    /// A daemon error of `kind` saying `message`.
    pub fn daemon(kind: ErrorKind, message: &str) -> CallError {
        CallError::Daemon(kind, message.to_owned())
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unavailable(reason) | CallError::Unexpected(reason) => f.write_str(reason),
            CallError::Daemon(kind, message) => write!(f, "{}: {message}", kind.name()),
        }
    }
}

/// What every daemon call carries: the user it is about, the login's dictionary (the PAM
/// items of [`LoginContext::to_map`], with the pid for the session calls) and the time by
/// which it must have returned.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The checked user name ([`check_user`]).
    pub user: &'a str,
    /// The `context` (or `info`) dictionary.
    pub context: HashMap<String, String>,
    /// The call fails as "unavailable" when no answer came by then.
    pub deadline: Instant,
}

impl<'a> Request<'a> {
    /// A request about `user` with `context`, due by `deadline`.
    pub fn new(user: &'a str, context: HashMap<String, String>, deadline: Instant) -> Self {
        Request {
            user,
            context,
            deadline,
        }
    }
}

/// A connection to a verified `twofoldd`. Each call must return by its request's deadline.
pub trait Daemon {
    /// Set when the connection is the fallback because something else than the daemon
    /// (another uid) listened on the direct socket: why, for the log.
    fn impostor(&self) -> Option<String> {
        None
    }
    /// `BeginLogin(user, context)`.
    fn begin_login(&mut self, req: Request<'_>) -> Result<LoginState, CallError>;
    /// `Verify(user, code, context)`.
    fn verify(&mut self, req: Request<'_>, code: &str) -> Result<Verified, CallError>;
    /// `OpenSession(user, info)`: the session id.
    fn open_session(&mut self, req: Request<'_>) -> Result<String, CallError>;
    /// `CloseSession(user, info)`.
    fn close_session(&mut self, req: Request<'_>) -> Result<(), CallError>;
    /// `CheckGrace(user, context, seconds)`.
    fn check_grace(&mut self, req: Request<'_>, seconds: u32) -> Result<bool, CallError>;
}

/// Opens a [`Daemon`] connection to the owner of the bus name, by `deadline`.
pub trait Connector {
    /// The connection type.
    type Daemon: Daemon;
    /// Connects to `opts.bus` and finds the owner of [`twofold_contract::BUS_NAME`]. Its
    /// uid may be checked alongside the first call; no call's answer is returned unless
    /// that check passed. The error is a reason for the log (the module treats it as
    /// "unavailable").
    fn connect(&mut self, opts: &Options, deadline: Instant) -> Result<Self::Daemon, String>;
}

/// The PAM items describing the login, passed to `Verify` for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginContext {
    /// `PAM_SERVICE`.
    pub service: Option<String>,
    /// `PAM_TTY`.
    pub tty: Option<String>,
    /// `PAM_RHOST`.
    pub rhost: Option<String>,
    /// `PAM_RUSER`.
    pub ruser: Option<String>,
}

impl LoginContext {
    /// Builds the context from raw item bytes: lossy UTF-8, each cut to
    /// [`MAX_ITEM_LEN`] bytes.
    pub fn from_items(
        service: Option<&[u8]>,
        tty: Option<&[u8]>,
        rhost: Option<&[u8]>,
        ruser: Option<&[u8]>,
    ) -> Self {
        let conv = |b: Option<&[u8]>| b.map(|b| lossy_truncated(b, MAX_ITEM_LEN));
        LoginContext {
            service: conv(service),
            tty: conv(tty),
            rhost: conv(rhost),
            ruser: conv(ruser),
        }
    }

    /// The `Verify` context dictionary: only the items that are set.
    pub fn to_map(&self) -> HashMap<String, String> {
        [
            (context::SERVICE, &self.service),
            (context::TTY, &self.tty),
            (context::RHOST, &self.rhost),
            (context::RUSER, &self.ruser),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
        .collect()
    }
}

/// Checks the user name from `PAM_USER`: UTF-8, then the contract's rule for every
/// program ([`limits::user_name`]: 1 to [`limits::MAX_USER_LEN`] bytes, no control
/// characters). A name that fails names no account.
pub fn check_user(raw: &[u8]) -> Result<&str, &'static str> {
    if raw.len() > limits::MAX_USER_LEN {
        // Refused before decoding: the length alone decides.
        return Err("not a user name: too long");
    }
    let name = std::str::from_utf8(raw).map_err(|_| "not a user name: not UTF-8")?;
    limits::user_name(name).map_err(|_| "not a user name: empty or with control characters")?;
    Ok(name)
}

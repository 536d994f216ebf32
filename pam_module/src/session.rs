//! The session hooks (`session optional pam_twofold.so`) and the grace-window question,
//! free of libpam: generic over the daemon connection and the log ([`crate::client`]).
//!
//! A session hook never breaks a login: whatever goes wrong (daemon absent, slow, wrong
//! owner, refusal), it logs and returns `PAM_IGNORE`, within `timeout=`.

use std::collections::HashMap;
use std::time::Instant;

use pam::constants::PamResultCode;
use twofold_contract::context;

use crate::client::{check_user, Connector, Daemon, Level, Logger, LoginContext, Request};
use crate::options::Options;
use crate::text::{safe_bytes, safe_str};

/// What the session hooks tell the daemon besides the PAM items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    /// `PAM_SERVICE`, `PAM_TTY`, `PAM_RHOST`, `PAM_RUSER`. (No logind session id: the
    /// daemon asks logind, as the PAM environment is the user's to set.)
    pub login: LoginContext,
    /// `getpid()` of the application (the daemon trusts the bus's pid over it).
    pub pid: u32,
}

impl SessionContext {
    /// The `OpenSession` dictionary.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = self.login.to_map();
        map.insert(context::PID.to_owned(), self.pid.to_string());
        map
    }
}

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `pam_sm_open_session`.
    Open,
    /// `pam_sm_close_session`.
    Close,
}

/// Runs a session hook: registers (`Open`) or closes (`Close`) the session with the
/// daemon. `PAM_SUCCESS` when the daemon took it, `PAM_IGNORE` otherwise; bounded by
/// `opts.timeout` as a whole, and the connection is gone when this returns.
pub fn session<K, L>(
    hook: Hook,
    opts: &Options,
    user: &[u8],
    ctx: &SessionContext,
    connector: &mut K,
    log: &mut L,
) -> PamResultCode
where
    K: Connector,
    L: Logger,
{
    let what = match hook {
        Hook::Open => "open",
        Hook::Close => "close",
    };
    let user = match check_user(user) {
        Ok(u) => u,
        Err(why) => {
            let line = format!(
                "session {what}: ignoring user \"{}\": {why}",
                safe_bytes(user, 32)
            );
            log.log(Level::Warning, &line);
            return PamResultCode::PAM_IGNORE;
        }
    };
    let deadline = Instant::now() + opts.timeout;
    let mut daemon = match connector.connect(opts, deadline) {
        Ok(d) => d,
        Err(reason) => {
            log_failure(log, Level::Err, user, &reason, |user, reason| {
                format!(
                    "session {what} for \"{user}\" not recorded: twofoldd unavailable: {reason}"
                )
            });
            return PamResultCode::PAM_IGNORE;
        }
    };
    let req = Request::new(user, ctx.to_map(), deadline);
    let result = match hook {
        Hook::Open => daemon.open_session(req),
        Hook::Close => daemon.close_session(req).map(|()| String::new()),
    };
    drop(daemon);
    match result {
        Ok(id) => {
            if opts.debug || hook == Hook::Open {
                let line = match hook {
                    Hook::Open => format!(
                        "session {} opened for \"{}\"",
                        safe_str(&id, 64),
                        safe_str(user, 32)
                    ),
                    Hook::Close => format!("session closed for \"{}\"", safe_str(user, 32)),
                };
                log.log(Level::Info, &line);
            }
            PamResultCode::PAM_SUCCESS
        }
        Err(e) => {
            log_failure(log, Level::Warning, user, &e.to_string(), |user, reason| {
                format!("session {what} for \"{user}\" not recorded: {reason}")
            });
            PamResultCode::PAM_IGNORE
        }
    }
}

/// The grace window: true when the daemon says `user` passed for this service on this
/// terminal or from this remote host within `opts.grace` seconds. Any failure is
/// "no" (the code is asked for as usual).
pub fn remembered<D, L>(
    opts: &Options,
    user: &str,
    ctx: &LoginContext,
    daemon: &mut D,
    deadline: Instant,
    log: &mut L,
) -> bool
where
    D: Daemon,
    L: Logger + ?Sized,
{
    let req = Request::new(user, ctx.to_map(), deadline);
    match daemon.check_grace(req, opts.grace) {
        Ok(yes) => yes,
        Err(e) => {
            log_failure(log, Level::Warning, user, &e.to_string(), |user, reason| {
                format!("grace window not checked for \"{user}\": {reason}; asking for a code")
            });
            false
        }
    }
}

/// Logs at `level` why a call about `user` failed: `say` words the line from the user's
/// name and the reason, both escaped and cut to a bound.
fn log_failure<L: Logger + ?Sized>(
    log: &mut L,
    level: Level,
    user: &str,
    reason: &str,
    say: impl FnOnce(String, String) -> String,
) {
    let line = say(safe_str(user, 32), safe_str(reason, 256));
    log.log(level, &line);
}

#[cfg(test)]
mod tests;

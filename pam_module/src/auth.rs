//! The PAM authentication logic, free of libpam and of the bus.
//!
//! [`authenticate`] is generic over the few things it talks to (the conversation, the
//! daemon, the log), so it is unit-tested with scripted mocks; `lib.rs` plugs in the
//! real ones (pam-bindings' conversation, the bus connector, `pam_syslog`).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pam::constants::PamResultCode;
use twofold_contract::{method, ErrorKind, LoginState, Verified, MAX_CODE_LEN};
use zeroize::Zeroizing;

use crate::client::{
    check_user, CallError, Connector, Daemon, Level, Logger, LoginContext, Request,
};
use crate::options::{FailMode, Options};
use crate::text::{safe_bytes, safe_str, truncate_ceil};

/// Characters of a user name shown in log lines.
const LOG_USER_CHARS: usize = 32;
/// Characters of other untrusted text (service, rhost, reasons) shown in log lines.
const LOG_TEXT_CHARS: usize = 128;
/// Characters of a daemon message shown to the user.
const MAX_MESSAGE_CHARS: usize = 256;

// Why a login is refused for something else than a wrong code (PAM_ERROR_MSG). None says
// whether the password was right: in a stack that runs the module after a wrong password
// too, the same words come either way.
/// The user has not enrolled and the module has no `nullok`.
pub const NOT_ENROLLED_TEXT: &str = "Two-factor authentication is required for this login, \
     and it is not set up for this account. Set it up with `twofold enroll` from a login \
     that does not ask for it, or ask your administrator.";
/// The daemon cannot be asked (`failmode=secure`).
pub const UNAVAILABLE_TEXT: &str = "Two-factor authentication is unavailable: its service \
     (twofoldd) does not answer. Contact your administrator.";
/// The daemon answered that it failed (its store), or answered nonsense.
pub const SERVICE_FAILED_TEXT: &str = "Two-factor authentication is unavailable: its \
     service (twofoldd) reported an error. Contact your administrator.";

/// The conversation failed (the application's conversation function returned an error
/// or no answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvError;

/// The PAM conversation with the user.
pub trait Conversation {
    /// Asks with echo off (`PAM_PROMPT_ECHO_OFF`); the answer is decoded lossily.
    fn prompt_hidden(&mut self, msg: &str) -> Result<Zeroizing<String>, ConvError>;
    /// Shows a `PAM_TEXT_INFO` message; failures are ignored.
    fn info(&mut self, msg: &str);
    /// Shows a `PAM_ERROR_MSG` message; failures are ignored.
    fn error(&mut self, msg: &str);
    /// Asks with echo off and returns the answer's bytes exactly as typed (no lossy
    /// decoding: with `forward_pass` the answer holds the account password).
    fn prompt_hidden_raw(&mut self, msg: &str) -> Result<Zeroizing<Vec<u8>>, ConvError> {
        self.prompt_hidden(msg)
            .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
    }
}

/// `pam_set_item(PAM_AUTHTOK)` failed (libpam's result code, for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthTokError(pub i32);

/// Hands the password on to the next module of the stack (`forward_pass`).
pub trait AuthTok {
    /// Sets `PAM_AUTHTOK` (libpam keeps its own copy).
    fn set_authtok(&mut self, authtok: &[u8]) -> Result<(), AuthTokError>;
}

/// Prompt used with `forward_pass` when 2FA is skipped within the grace window: only the
/// account password is needed then.
pub const GRACE_PASSWORD_PROMPT: &str = "Password: ";

/// What a `forward_pass` answer ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailingCode {
    /// Six ASCII digits, right after the password (no separator), as in
    /// google-authenticator-libpam.
    Totp,
    /// A backup (or administrator's bypass) code in its printed form `xxxx-xxxx-xx`,
    /// separated from the password by one space.
    Backup,
}

/// Length of a TOTP code.
const TOTP_LEN: usize = 6;
/// Length of a backup code in its printed form (`xxxx-xxxx-xx`).
const BACKUP_PRINTED_LEN: usize = 12;

/// Splits a `forward_pass` answer into (password, code). The TOTP rule is tried first:
/// the last six bytes are ASCII digits. Then the backup-code rule: the answer ends with a
/// space and a code in its printed form (four, dash, four, dash, two ASCII letters or
/// digits). None when neither rule matches: the answer holds no code. The password part
/// is kept byte for byte (nothing is trimmed) and may be empty.
pub fn split_answer(answer: &[u8]) -> Option<(&[u8], &[u8], TrailingCode)> {
    let n = answer.len();
    if n >= TOTP_LEN && answer[n - TOTP_LEN..].iter().all(u8::is_ascii_digit) {
        let (password, code) = answer.split_at(n - TOTP_LEN);
        return Some((password, code, TrailingCode::Totp));
    }
    if n > BACKUP_PRINTED_LEN && answer[n - BACKUP_PRINTED_LEN - 1] == b' ' {
        let code = &answer[n - BACKUP_PRINTED_LEN..];
        let printed = code.iter().enumerate().all(|(i, b)| match i {
            4 | 9 => *b == b'-',
            _ => b.is_ascii_alphanumeric(),
        });
        if printed {
            return Some((
                &answer[..n - BACKUP_PRINTED_LEN - 1],
                code,
                TrailingCode::Backup,
            ));
        }
    }
    None
}

/// Which part of a `forward_pass` answer is the password when no code is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordIs {
    /// The user is known to have no code to type (not enrolled, or within the grace
    /// window with its own prompt): the whole answer.
    Whole,
    /// The user may have typed a code (the daemon could not say, or changed its answer
    /// after the prompt): the answer without a trailing code, if it has one.
    WithoutTrailingCode,
}

/// Text shown to the user from the daemon: control characters replaced, length bounded.
fn printable(s: &str, fallback: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return fallback.to_owned();
    }
    s.chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How a daemon error is handled.
enum Answer {
    /// The daemon could not be asked (absent, slow, the transport failed): `failmode`
    /// decides.
    Unavailable(String),
    /// The daemon answered that it is broken (its store failed: a full disk, a database
    /// down) or answered something it never should: fails closed whatever `failmode`
    /// says, or a broken store would be a way in.
    Broken(String),
    NotEnrolled,
    UnknownUser,
    Locked(String),
    Refused(String),
}

fn classify(e: CallError) -> Answer {
    match e {
        CallError::Unavailable(reason) => Answer::Unavailable(reason),
        CallError::Unexpected(reason) => Answer::Broken(reason),
        CallError::Daemon(kind, m) => match kind {
            ErrorKind::Internal => {
                Answer::Broken(format!("twofoldd could not complete the request: {m}"))
            }
            ErrorKind::NotEnrolled => Answer::NotEnrolled,
            ErrorKind::UnknownUser => Answer::UnknownUser,
            ErrorKind::Locked => Answer::Locked(m),
            ErrorKind::InvalidCode => Answer::Refused("invalid code".to_owned()),
            ErrorKind::PermissionDenied => {
                Answer::Refused(format!("permission denied by twofoldd: {m}"))
            }
            ErrorKind::InvalidArgument => Answer::Refused(format!("invalid argument: {m}")),
            ErrorKind::AlreadyEnrolled
            | ErrorKind::NoPendingEnrollment
            | ErrorKind::InvalidPassword
            | ErrorKind::RateLimited => Answer::Broken(format!(
                "unexpected reply from twofoldd: {}: {m}",
                kind.name()
            )),
        },
    }
}

/// The logger plus the `debug` switch and the safe names of the login for log lines.
struct Log<'a, L: Logger> {
    inner: &'a mut L,
    debug: bool,
    who: String,
}

impl<L: Logger> Log<'_, L> {
    fn debug(&mut self, msg: &str) {
        if self.debug {
            self.inner.log(Level::Debug, msg);
        }
    }
    fn outcome(&mut self, level: Level, what: &str) {
        let line = format!("{what} for {}", self.who);
        self.inner.log(level, &line);
    }
    /// `WHAT for WHO: DETAIL`, the shape of every trouble line.
    fn trouble(&mut self, level: Level, what: &str, detail: std::fmt::Arguments<'_>) {
        let line = format!("{what} for {}: {detail}", self.who);
        self.inner.log(level, &line);
    }
}

/// Runs the whole `pam_sm_authenticate` flow for `user` (the raw `PAM_USER` bytes):
/// status (bounded by `opts.timeout`), prompt (unbounded: the user is typing), verify
/// (bounded again). No daemon connection is held while the user types (a waiting prompt
/// must not hold one of root's bus connections, or one of the daemon's direct ones):
/// the first is closed before the prompt, and `Verify` goes on a new one.
pub fn authenticate<C, K, L>(
    opts: &Options,
    user: &[u8],
    ctx: &LoginContext,
    conv: &mut C,
    connector: &mut K,
    log: &mut L,
) -> PamResultCode
where
    C: Conversation + AuthTok,
    K: Connector,
    L: Logger,
{
    let user = match check_user(user) {
        Ok(u) => u,
        Err(why) => {
            let line = format!(
                "refusing user \"{}\": {why}",
                safe_bytes(user, LOG_USER_CHARS)
            );
            log.log(Level::Warning, &line);
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let show = |v: &Option<String>| {
        v.as_deref()
            .map_or("-".to_owned(), |v| safe_str(v, LOG_TEXT_CHARS))
    };
    let who = format!(
        "user \"{}\" (service {}, rhost {})",
        safe_str(user, LOG_USER_CHARS),
        show(&ctx.service),
        show(&ctx.rhost)
    );
    let mut log = Log {
        inner: log,
        debug: opts.debug,
        who,
    };

    // Phase 1: connect, check the owner, ask for the status; bounded as a whole.
    log.debug(&format!(
        "phase 1: connecting to {}{} (timeout {:?}, daemon uid {})",
        opts.socket
            .as_deref()
            .map_or(String::new(), |socket| format!(
                "{}, else ",
                safe_str(socket, LOG_TEXT_CHARS)
            )),
        safe_str(&opts.bus, LOG_TEXT_CHARS),
        opts.timeout,
        opts.daemon_uid
    ));
    let deadline = Instant::now() + opts.timeout;
    let mut daemon = match connector.connect(opts, deadline) {
        Ok(d) => d,
        Err(reason) => {
            let rc = unavailable(opts, conv, &mut log, &reason);
            return forward_if_aside(opts, conv, &mut log, rc, PasswordIs::WithoutTrailingCode);
        }
    };
    if let Some(why) = daemon.impostor() {
        log.trouble(
            Level::Warning,
            "twofoldd's socket refused",
            format_args!("{}; using the bus", safe_str(&why, LOG_TEXT_CHARS * 2)),
        );
    }
    log.debug("phase 1: connected, asking about this login");
    let answer = daemon.begin_login(Request::new(user, ctx.to_map(), deadline));
    let mut daemon = match before_the_prompt(opts, conv, &mut log, daemon, answer) {
        Ok(daemon) => daemon,
        Err(rc) => return rc,
    };

    // The grace window (`grace=`): a recent pass for this service on this terminal or
    // from this remote host spares the code. Still within phase 1's bound.
    if opts.grace > 0
        && crate::session::remembered(opts, user, ctx, &mut daemon, deadline, &mut *log.inner)
    {
        log.outcome(
            Level::Notice,
            "2FA passed within the grace window (no code asked)",
        );
        if opts.forward_pass {
            drop(daemon);
            return forward_password(
                conv,
                &mut log,
                GRACE_PASSWORD_PROMPT,
                PasswordIs::Whole,
                PamResultCode::PAM_SUCCESS,
            );
        }
        return PamResultCode::PAM_SUCCESS;
    }

    drop(daemon);
    if opts.forward_pass {
        return forward_pass(opts, user, ctx, conv, connector, &mut log);
    }

    // Phase 2: ask for the code. Not bounded: the user is typing.
    log.debug("phase 2: prompting for the code");
    let code = match conv.prompt_hidden(&opts.prompt) {
        Ok(typed) => Zeroizing::new(truncate_ceil(typed.trim(), MAX_CODE_LEN + 1).to_owned()),
        Err(ConvError) => {
            log.outcome(Level::Notice, "conversation failed");
            return PamResultCode::PAM_CONV_ERR;
        }
    };

    // Phase 3: verify, on a new connection; bounded again. Whatever was typed is sent,
    // even nothing, so the daemon counts every attempt.
    log.debug("phase 3: verifying the code");
    let result = verify_anew(opts, user, &code, ctx, connector);
    drop(code);
    match result {
        Ok(v) => accepted(conv, &mut log, &v),
        Err(e) => refused(opts, conv, &mut log, classify(e)),
    }
}

/// What phase 1's answer means: `Ok` gives the connection back when a code is to be
/// asked; otherwise the login ends here with the result (the connection closed first,
/// so that none is held while the user reads what is said).
fn before_the_prompt<C, D, L>(
    opts: &Options,
    conv: &mut C,
    log: &mut Log<'_, L>,
    daemon: D,
    answer: Result<LoginState, CallError>,
) -> Result<D, PamResultCode>
where
    C: Conversation + AuthTok,
    L: Logger,
{
    let state = match answer {
        Ok(state) => state,
        Err(e) => {
            drop(daemon);
            let answer = classify(e);
            // Stepping aside because the daemon could not say (failmode=safe): the user
            // may be enrolled and type a code. Otherwise (not enrolled, unknown with
            // nullok) there is no code to type.
            let password_is = match answer {
                Answer::Unavailable(_) => PasswordIs::WithoutTrailingCode,
                _ => PasswordIs::Whole,
            };
            let rc = refused(opts, conv, log, answer);
            return Err(forward_if_aside(opts, conv, log, rc, password_is));
        }
    };
    log.debug(&format!(
        "phase 1: enrolled={} locked_for={} required={} deadline={} bypass={}",
        state.enrolled,
        state.locked_for,
        state.required,
        state.enroll_deadline,
        state.bypass_pending
    ));
    if !state.enrolled && !state.bypass_pending {
        drop(daemon);
        let rc = if state.required {
            required_but_not_enrolled(conv, log, &state)
        } else {
            not_enrolled(opts, conv, log, false)
        };
        return Err(forward_if_aside(opts, conv, log, rc, PasswordIs::Whole));
    }
    if state.locked_for > 0 {
        drop(daemon);
        let secs = state.locked_for;
        conv.error(&format!(
            "Too many failed attempts. Try again in {secs} seconds."
        ));
        log.outcome(Level::Notice, &format!("locked out ({secs} s left)"));
        return Err(PamResultCode::PAM_MAXTRIES);
    }
    Ok(daemon)
}

/// `forward_pass`, phases 2 and 3: one hidden answer, `password` then `code`. The code is
/// verified exactly like a typed one; the password goes on as `PAM_AUTHTOK` when the code
/// was accepted, or when the module steps aside (`PAM_IGNORE`), never when it failed.
/// Neither the answer nor its parts are logged or sent anywhere but there: the daemon
/// gets the code only (an empty one when the answer ends with none, so that the attempt
/// still counts).
fn forward_pass<C, K, L>(
    opts: &Options,
    user: &str,
    ctx: &LoginContext,
    conv: &mut C,
    connector: &mut K,
    log: &mut Log<'_, L>,
) -> PamResultCode
where
    C: Conversation + AuthTok,
    K: Connector,
    L: Logger,
{
    // Phase 2: not bounded, the user is typing.
    log.debug("phase 2: prompting for the password and the code (forward_pass)");
    let answer = match conv.prompt_hidden_raw(&opts.prompt) {
        Ok(answer) => answer,
        Err(ConvError) => {
            log.outcome(Level::Notice, "conversation failed");
            return PamResultCode::PAM_CONV_ERR;
        }
    };
    let split = split_answer(&answer);
    let code = match split {
        Some((_, code, kind)) => {
            log.debug(match kind {
                TrailingCode::Totp => "phase 2: the answer ends with a TOTP code",
                TrailingCode::Backup => "phase 2: the answer ends with a backup code",
            });
            // ASCII by construction.
            std::str::from_utf8(code).unwrap_or_default()
        }
        None => {
            log.debug("phase 2: the answer ends with no code; sending an empty one");
            ""
        }
    };

    // Phase 3: bounded again.
    log.debug("phase 3: verifying the code");
    let result = verify_anew(opts, user, code, ctx, connector);
    let password = split.map_or(&answer[..], |(password, _, _)| password);
    match result {
        Ok(_) if split.is_none() => {
            // The daemon never accepts an empty code; if it did, nothing was proved.
            log.outcome(Level::Err, "2FA refused: the daemon accepted an empty code");
            PamResultCode::PAM_AUTH_ERR
        }
        Ok(v) => match hand_on(conv, log, password, PamResultCode::PAM_SUCCESS) {
            PamResultCode::PAM_SUCCESS => accepted(conv, log, &v),
            failed => failed,
        },
        Err(e) => match refused(opts, conv, log, classify(e)) {
            // Stepping aside after the prompt (failmode=safe, or the user's 2FA was
            // reset meanwhile, with nullok): the code, if any, is not the password.
            PamResultCode::PAM_IGNORE => hand_on(conv, log, password, PamResultCode::PAM_IGNORE),
            rc => rc,
        },
    }
}

/// Phase 3: connects again (the first connection was closed before the prompt) and
/// verifies `code`, all within one `opts.timeout`; the connection is closed on return.
fn verify_anew<K: Connector>(
    opts: &Options,
    user: &str,
    code: &str,
    ctx: &LoginContext,
    connector: &mut K,
) -> Result<Verified, CallError> {
    let deadline = Instant::now() + opts.timeout;
    let mut daemon = connector
        .connect(opts, deadline)
        .map_err(CallError::Unavailable)?;
    daemon.verify(Request::new(user, ctx.to_map(), deadline), code)
}

/// With `forward_pass`, a module that steps aside before its prompt (`PAM_IGNORE`) still
/// asks, so that the next module (`use_first_pass`) gets the password; any other result
/// is returned as it is, without a prompt, exactly as without `forward_pass`.
fn forward_if_aside<C, L>(
    opts: &Options,
    conv: &mut C,
    log: &mut Log<'_, L>,
    rc: PamResultCode,
    password_is: PasswordIs,
) -> PamResultCode
where
    C: Conversation + AuthTok,
    L: Logger,
{
    if !opts.forward_pass || rc != PamResultCode::PAM_IGNORE {
        return rc;
    }
    forward_password(conv, log, &opts.prompt, password_is, rc)
}

/// Asks with `prompt`, hands the password part of the answer on as `PAM_AUTHTOK` and
/// returns `rc`; no code is checked.
fn forward_password<C, L>(
    conv: &mut C,
    log: &mut Log<'_, L>,
    prompt: &str,
    password_is: PasswordIs,
    rc: PamResultCode,
) -> PamResultCode
where
    C: Conversation + AuthTok,
    L: Logger,
{
    log.debug("forward_pass: asking for the password to hand on (no code is checked)");
    let answer = match conv.prompt_hidden_raw(prompt) {
        Ok(answer) => answer,
        Err(ConvError) => {
            log.outcome(Level::Notice, "conversation failed");
            return PamResultCode::PAM_CONV_ERR;
        }
    };
    let password = match password_is {
        PasswordIs::Whole => &answer[..],
        PasswordIs::WithoutTrailingCode => {
            split_answer(&answer).map_or(&answer[..], |(password, _, _)| password)
        }
    };
    hand_on(conv, log, password, rc)
}

/// Sets `PAM_AUTHTOK` to `password`: `rc` on success, `PAM_SYSTEM_ERR` when libpam
/// refused (the next module would find no password).
fn hand_on<C: AuthTok, L: Logger>(
    conv: &mut C,
    log: &mut Log<'_, L>,
    password: &[u8],
    rc: PamResultCode,
) -> PamResultCode {
    match conv.set_authtok(password) {
        Ok(()) => {
            log.debug("forward_pass: the password was handed on as PAM_AUTHTOK");
            rc
        }
        Err(AuthTokError(code)) => {
            log.trouble(
                Level::Err,
                "cannot hand the password on",
                format_args!("pam_set_item(PAM_AUTHTOK) returned {code}"),
            );
            PamResultCode::PAM_SYSTEM_ERR
        }
    }
}

/// A code the daemon accepted: what to tell the user and the log.
fn accepted<C: Conversation, L: Logger>(
    conv: &mut C,
    log: &mut Log<'_, L>,
    v: &Verified,
) -> PamResultCode {
    log.debug(&format!(
        "phase 3: accepted, method {}, step offset {}",
        safe_str(&v.method, LOG_TEXT_CHARS),
        v.step_offset
    ));
    if v.method == method::BACKUP_CODE {
        let n = v.backup_codes_left;
        let codes = if n == 1 { "code" } else { "codes" };
        conv.info(&format!("Backup code accepted. {n} backup {codes} left."));
        if n <= twofold_contract::BACKUP_CODES_LOW {
            conv.error(
                "Warning: few backup codes left. \
                 Run `twofold backup-codes regenerate` to get new codes.",
            );
        }
        log.outcome(
            Level::Notice,
            &format!("2FA succeeded with a backup code ({n} left)"),
        );
    } else if v.method == method::BYPASS {
        conv.info(
            "One-time code accepted. Set up two-factor authentication again now: \
             run `twofold enroll`.",
        );
        log.outcome(
            Level::Notice,
            "2FA passed with an administrator's bypass code",
        );
    } else {
        log.outcome(Level::Notice, "2FA succeeded");
    }
    PamResultCode::PAM_SUCCESS
}

/// The daemon answered that it is broken: `PAM_AUTHINFO_UNAVAIL`, also with
/// `failmode=safe` (which is for a daemon that cannot be asked, not for a failing store).
fn broken<C: Conversation, L: Logger>(
    conv: &mut C,
    log: &mut Log<'_, L>,
    reason: &str,
) -> PamResultCode {
    conv.error(SERVICE_FAILED_TEXT);
    log.trouble(
        Level::Err,
        "twofoldd failed",
        format_args!(
            "{}; failing closed whatever failmode says",
            safe_str(reason, LOG_TEXT_CHARS * 2)
        ),
    );
    PamResultCode::PAM_AUTHINFO_UNAVAIL
}

fn unavailable<C: Conversation, L: Logger>(
    opts: &Options,
    conv: &mut C,
    log: &mut Log<'_, L>,
    reason: &str,
) -> PamResultCode {
    let (code, verdict) = match opts.failmode {
        FailMode::Secure => {
            conv.error(UNAVAILABLE_TEXT);
            (PamResultCode::PAM_AUTHINFO_UNAVAIL, "failing closed")
        }
        FailMode::Safe => (
            PamResultCode::PAM_IGNORE,
            "failmode=safe: ignoring this module",
        ),
    };
    log.trouble(
        Level::Err,
        "twofoldd unavailable",
        format_args!("{}; {verdict}", safe_str(reason, LOG_TEXT_CHARS * 2)),
    );
    code
}

/// A `require_groups` member who has not enrolled: within the grace period the module
/// steps aside (the rest of the stack decides) and says until when; after it, refused.
/// Never PAM_SUCCESS: the module only grants what a code proved.
fn required_but_not_enrolled<C: Conversation, L: Logger>(
    conv: &mut C,
    log: &mut Log<'_, L>,
    state: &LoginState,
) -> PamResultCode {
    let within = state.enroll_deadline > now_unix();
    if within {
        conv.info(&printable(
            &state.message,
            "Two-factor authentication will soon be required: run `twofold enroll`.",
        ));
        log.outcome(
            Level::Notice,
            &format!(
                "required but not enrolled; grace until {}",
                state.enroll_deadline
            ),
        );
        PamResultCode::PAM_IGNORE
    } else {
        conv.error(&printable(
            &state.message,
            "Two-factor authentication is required for your account. Ask your administrator.",
        ));
        log.outcome(
            Level::Notice,
            "2FA refused: required, enrollment deadline passed",
        );
        PamResultCode::PAM_AUTH_ERR
    }
}

fn not_enrolled<C: Conversation, L: Logger>(
    opts: &Options,
    conv: &mut C,
    log: &mut Log<'_, L>,
    unknown: bool,
) -> PamResultCode {
    let what = if unknown {
        "unknown to twofoldd"
    } else {
        "not enrolled"
    };
    if opts.nullok {
        log.outcome(
            Level::Info,
            &format!("{what}, nullok: ignoring this module"),
        );
        PamResultCode::PAM_IGNORE
    } else {
        // The same words for an unknown user: nothing tells the two apart.
        conv.error(NOT_ENROLLED_TEXT);
        log.outcome(Level::Notice, &format!("2FA failed: {what}"));
        if unknown {
            PamResultCode::PAM_USER_UNKNOWN
        } else {
            PamResultCode::PAM_AUTH_ERR
        }
    }
}

fn refused<C: Conversation, L: Logger>(
    opts: &Options,
    conv: &mut C,
    log: &mut Log<'_, L>,
    answer: Answer,
) -> PamResultCode {
    match answer {
        Answer::Unavailable(reason) => unavailable(opts, conv, log, &reason),
        Answer::Broken(reason) => broken(conv, log, &reason),
        Answer::NotEnrolled => not_enrolled(opts, conv, log, false),
        Answer::UnknownUser => not_enrolled(opts, conv, log, true),
        Answer::Locked(m) => {
            conv.error(&printable(&m, "Too many failed attempts. Try again later."));
            log.outcome(Level::Notice, "2FA refused: locked out");
            PamResultCode::PAM_MAXTRIES
        }
        Answer::Refused(why) => {
            // twofoldd logs every failed attempt once, with its source (the line fail2ban
            // reads); the module's own line would be a second record of it: debug only.
            let line = format!(
                "2FA failed: {} for {}",
                safe_str(&why, LOG_TEXT_CHARS * 2),
                log.who
            );
            log.debug(&line);
            PamResultCode::PAM_AUTH_ERR
        }
    }
}

#[cfg(test)]
mod tests;

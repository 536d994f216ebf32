//! The D-Bus contract between `twofoldd` and its clients (`pam_twofold.so`, `twofold`).
//!
//! Everything that crosses the bus is named here, once: the bus name, the object path,
//! the interface, the closed set of errors and the shapes of the replies. This crate is
//! deliberately small: the PAM module links it, so it must never pull in storage or
//! hashing code.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

/// Well-known bus name owned by `twofoldd`.
pub const BUS_NAME: &str = "org.twofold.Twofold1";
/// Object path of the single service object.
pub const OBJECT_PATH: &str = "/org/twofold/Twofold1";
/// Interface name of the service object.
pub const INTERFACE: &str = "org.twofold.Twofold1";
/// The system bus socket, spelled out so that no client has to read it from the environment.
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";
/// `twofoldd`'s root-only socket, where the PAM module speaks D-Bus peer to peer (no bus
/// daemon in between); the module falls back to the bus when it is absent.
pub const DIRECT_SOCKET: &str = "/run/twofold/twofoldd.socket";
/// Prefix of every error name `twofoldd` returns.
pub const ERROR_PREFIX: &str = "org.twofold.Error";

pub mod limits;
pub use limits::{MAX_CODE_LEN, MAX_USER_LEN};

/// When this many backup codes or fewer remain, users are told to regenerate them.
pub const BACKUP_CODES_LOW: u32 = 3;

/// Keys of the context dictionary passed to `Verify`.
pub mod context {
    /// PAM service name (`sshd`, `sudo`, …).
    pub const SERVICE: &str = "service";
    /// Terminal of the login (`PAM_TTY`).
    pub const TTY: &str = "tty";
    /// Remote host (`PAM_RHOST`).
    pub const RHOST: &str = "rhost";
    /// Remote user (`PAM_RUSER`).
    pub const RUSER: &str = "ruser";
    /// `OpenSession`: the pid of the process that opened the session, as the module sees
    /// it (`getpid()`); the daemon trusts the caller's D-Bus pid credential over it.
    pub const PID: &str = "pid";
    /// `OpenSession`: accepted from older modules and ignored: the daemon asks logind
    /// (the PAM environment's `XDG_SESSION_ID` is the user's to set).
    pub const LOGIND_SESSION: &str = "logind_session";

    /// Every key a context may carry.
    pub const KEYS: &[&str] = &[SERVICE, TTY, RHOST, RUSER, PID, LOGIND_SESSION];
}

/// Every error `twofoldd` can answer with: one namespace, a closed set.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.twofold.Error")]
pub enum TwofoldError {
    /// Transport-level failure (never sent by the daemon; raised locally by zbus).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not act on that user.
    PermissionDenied(String),
    /// The user has not enrolled in two-factor authentication.
    NotEnrolled(String),
    /// The code did not match (wrong, expired or already used).
    InvalidCode(String),
    /// Too many failures: the user is locked out for a while.
    Locked(String),
    /// A malformed argument (over-long code, invalid user name, …).
    InvalidArgument(String),
    /// This uid sent more requests than its share; try again in a moment.
    RateLimited(String),
    /// No such user on this system.
    UnknownUser(String),
    /// The user is enrolled already; re-enrolling needs proof or an administrator.
    AlreadyEnrolled(String),
    /// `EnrollConfirm` without a pending (unexpired) `EnrollBegin`.
    NoPendingEnrollment(String),
    /// The account password did not match (`Disable`).
    InvalidPassword(String),
    /// The daemon could not complete the request (storage failure, …); fail closed.
    Internal(String),
}

impl From<limits::Invalid> for TwofoldError {
    fn from(e: limits::Invalid) -> Self {
        TwofoldError::InvalidArgument(e.0)
    }
}

impl TwofoldError {
    /// The message text carried by the error, for showing to a person.
    pub fn message(&self) -> String {
        match self {
            TwofoldError::ZBus(e) => e.to_string(),
            TwofoldError::PermissionDenied(m)
            | TwofoldError::NotEnrolled(m)
            | TwofoldError::InvalidCode(m)
            | TwofoldError::Locked(m)
            | TwofoldError::InvalidArgument(m)
            | TwofoldError::RateLimited(m)
            | TwofoldError::UnknownUser(m)
            | TwofoldError::AlreadyEnrolled(m)
            | TwofoldError::NoPendingEnrollment(m)
            | TwofoldError::InvalidPassword(m)
            | TwofoldError::Internal(m) => m.clone(),
        }
    }
}

/// Which factor a successful `Verify` accepted.
pub mod method {
    /// A TOTP code from an authenticator app.
    pub const TOTP: &str = "totp";
    /// A single-use backup code.
    pub const BACKUP_CODE: &str = "backup_code";
    /// An administrator's one-time bypass code (after `twofold admin reset`).
    pub const BYPASS: &str = "bypass";
}

/// Reply of a successful `Verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Verified {
    /// [`method::TOTP`] or [`method::BACKUP_CODE`].
    pub method: String,
    /// Unused backup codes left after this verification.
    pub backup_codes_left: u32,
    /// Matched TOTP step minus the server's current step (device clock skew); 0 for backup codes.
    pub step_offset: i32,
}

/// Reply of `Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct UserStatus {
    /// The user the status is about (resolved from the caller when asked for "").
    pub user: String,
    /// Two-factor authentication is active.
    pub enrolled: bool,
    /// Unix time of the (last) enrollment confirmation; 0 when not enrolled.
    pub enrolled_since: i64,
    /// Unused backup codes.
    pub backup_codes_left: u32,
    /// Consecutive failures since the last success or lockout.
    pub failures: u32,
    /// Unix time until which verification is refused; 0 when not locked.
    pub locked_until: i64,
    /// An `EnrollBegin` is waiting for its confirmation.
    pub pending_enrollment: bool,
    /// Unix time of the last successful verification; 0 when never.
    pub last_used: i64,
    /// How that verification passed ([`method::TOTP`], [`method::BACKUP_CODE`]); "" when never.
    pub last_method: String,
    /// PAM service of the last successful verification ("" when unknown).
    pub last_service: String,
    /// Remote host of the last successful verification ("" when local or unknown).
    pub last_rhost: String,
    /// Step offsets (device clock minus server clock, in 30 s steps) of the latest TOTP
    /// verifications, newest first: `twofold doctor` reads the device's clock skew here.
    pub recent_step_offsets: Vec<i32>,
    /// Policy requires two-factor authentication for this user.
    pub required: bool,
    /// Enrollment deadline of a required, unenrolled user (0 when none).
    pub enroll_deadline: i64,
    /// This caller must prove a current code or backup code to re-enroll, regenerate
    /// backup codes or disable (false for root and administrators): the daemon decides,
    /// clients only ask.
    pub proof_required: bool,
}

/// Reply of `BeginLogin`: what the PAM module needs to know before it prompts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct LoginState {
    /// Two-factor authentication is active for the user.
    pub enrolled: bool,
    /// Seconds left of a lockout for this user from this source; 0 when not locked.
    pub locked_for: i64,
    /// Policy requires two-factor authentication for this user (a `require_groups` member).
    pub required: bool,
    /// Unix time until which a required but unenrolled user may still log in without a
    /// code; 0 when no grace applies.
    pub enroll_deadline: i64,
    /// An administrator issued a one-time bypass code that the user may type instead.
    pub bypass_pending: bool,
    /// Text for the user from the policy (deadline and how to enroll, or whom to ask); "".
    pub message: String,
}

/// One row of `AdminUsers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AdminUser {
    /// User name.
    pub user: String,
    /// Two-factor authentication is active.
    pub enrolled: bool,
    /// Policy requires it (member of a `require_groups` group).
    pub required: bool,
    /// Enrollment deadline of a required, unenrolled user (0 when none).
    pub enroll_deadline: i64,
    /// Unix time of the last successful verification (0 when never).
    pub last_used: i64,
    /// Unused backup codes.
    pub backup_codes_left: u32,
    /// Latest end of a lockout in force for any source (0 when none).
    pub locked_until: i64,
    /// Live login sessions known to the daemon.
    pub live_sessions: u32,
}

/// One entry of the audit trail (`AuditLog`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AuditEntry {
    /// Unix time.
    pub at: i64,
    /// Uid of the D-Bus caller that acted (-1 when unknown).
    pub actor_uid: i64,
    /// Pid of that caller (-1 when unknown).
    pub actor_pid: i64,
    /// The user acted upon.
    pub user: String,
    /// What happened: `enroll_begin`, `enroll_confirm`, `verify_ok`, `verify_failed`,
    /// `backup_code_used`, `backup_codes_regenerated`, `disabled`, `lockout`, `unlock`,
    /// `reset`, `bypass_used`, session events, …
    pub event: String,
    /// PAM service, when the event comes from a login.
    pub service: String,
    /// Terminal, when known.
    pub tty: String,
    /// Remote host, when known.
    pub rhost: String,
    /// Free-form detail (a reset's reason, a failure's cause; never a secret).
    pub detail: String,
    /// Host whose daemon recorded the event (fleet mode: many hosts share one trail);
    /// "" for entries written before hosts were recorded.
    pub host: String,
}

/// How a login passed the second factor (`SessionInfo::auth_method`), besides the
/// [`method`] names of `Verify`.
pub mod auth_method {
    /// Skipped within the grace window (`grace=` on the module's auth line).
    pub const GRACE: &str = "grace";
    /// The user has not enrolled (the module let them through with `nullok`).
    pub const NOT_ENROLLED: &str = "not_enrolled";
    /// No second-factor check was seen for this login.
    pub const NONE: &str = "none";
}

/// One login session (`ListSessions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SessionInfo {
    /// Session id, as `twofold sessions revoke` takes it.
    pub id: String,
    /// The session's user (`PAM_USER`).
    pub user: String,
    /// PAM service: `sshd`, `sudo`, `su`, `login`, …
    pub service: String,
    /// Terminal (`PAM_TTY`), "" when none.
    pub tty: String,
    /// Remote host (`PAM_RHOST`), "" for local logins.
    pub rhost: String,
    /// Remote user (`PAM_RUSER`; for sudo and su the invoking user).
    pub ruser: String,
    /// Reverse-DNS name of the remote host, "" when unknown.
    pub rhost_name: String,
    /// Where the login came from: "local", "City, Country" from GeoIP, or "".
    pub location: String,
    /// ISO country code from GeoIP, "" when unknown.
    pub country_code: String,
    /// Host the session runs on.
    pub host: String,
    /// Pid of the session leader.
    pub leader_pid: u32,
    /// logind session id, "" when none.
    pub logind_session: String,
    /// How the second factor was passed: [`method`] names or [`auth_method`] names.
    pub auth_method: String,
    /// Unix time of that second-factor check, 0 when unknown.
    pub auth_at: i64,
    /// Unix time the session opened.
    pub started: i64,
    /// Seconds since the terminal was last used; -1 when unknown.
    pub idle: i64,
    /// The caller runs inside this session.
    pub current: bool,
    /// Unix time the session ended; 0 while live.
    pub ended: i64,
    /// Why it ended ("closed", "revoked by uid 1000", "leader gone", "timeout", …).
    pub end_reason: String,
    /// Unix time the daemon will end it (session timeout), 0 when none.
    pub expires: i64,
}

/// A remembered second-factor pass (the grace window).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct RememberedLogin {
    /// The user who passed.
    pub user: String,
    /// PAM service.
    pub service: String,
    /// Terminal, "" when none.
    pub tty: String,
    /// Remote host, "" when local.
    pub rhost: String,
    /// Unix time of the pass.
    pub at: i64,
    /// [`method`] name of the code used.
    pub method: String,
}

/// Reply of `ListSessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SessionList {
    /// Sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// Remembered passes that a `grace=` window may still honour, newest first.
    pub remembered: Vec<RememberedLogin>,
    /// The user's own session timeout in seconds, 0 when none.
    pub timeout: u64,
    /// The administrator's `session_timeout` in seconds, 0 when none.
    pub default_timeout: u64,
}

/// Reply of `EnrollBegin`: shown once, to the user who enrolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Enrollment {
    /// Base32 secret (RFC 4648, no padding).
    pub secret: String,
    /// `otpauth://totp/...` URI for the QR code.
    pub uri: String,
    /// Unix time after which the pending enrollment is discarded.
    pub expires: i64,
}

/// Client-side proxy of the `org.twofold.Twofold1` interface.
///
/// An empty `user` argument means "the caller": the daemon resolves it from the caller's
/// D-Bus credentials.
#[zbus::proxy(
    interface = "org.twofold.Twofold1",
    default_service = "org.twofold.Twofold1",
    default_path = "/org/twofold/Twofold1",
    gen_blocking = false
)]
pub trait Twofold {
    /// Enrollment state, backup codes left and lockout state of `user`.
    fn status(&self, user: &str) -> Result<UserStatus, TwofoldError>;

    /// Checks a TOTP code or backup code for `user`; `context` carries the keys of
    /// [`context`] for the audit trail.
    fn verify(
        &self,
        user: &str,
        code: &str,
        context: HashMap<String, String>,
    ) -> Result<Verified, TwofoldError>;

    /// Starts an enrollment: a new secret, pending until confirmed. Re-enrolling an
    /// enrolled user (a new phone) needs `proof`, a current code or backup code, unless
    /// the caller is root; the old secret keeps working until the new one is confirmed.
    fn enroll_begin(
        &self,
        user: &str,
        issuer: &str,
        proof: &str,
    ) -> Result<Enrollment, TwofoldError>;

    /// Confirms a pending enrollment with a current code; returns the new backup codes.
    fn enroll_confirm(&self, user: &str, code: &str) -> Result<Vec<String>, TwofoldError>;

    /// Replaces the backup codes with a new set (the old set dies at once). Needs
    /// `proof`, a current code or backup code, unless the caller is root.
    fn regenerate_backup_codes(&self, user: &str, proof: &str)
        -> Result<Vec<String>, TwofoldError>;

    /// Removes everything of the user's two-factor authentication (the audit trail
    /// stays). Needs the account `password` and `proof` (a current code or backup code),
    /// unless the caller is root.
    fn disable(&self, user: &str, password: &str, proof: &str) -> Result<(), TwofoldError>;

    /// The PAM module's first question: enrollment, lockout for the login's source
    /// (`context` as in `Verify`) and policy, before any prompt.
    fn begin_login(
        &self,
        user: &str,
        context: HashMap<String, String>,
    ) -> Result<LoginState, TwofoldError>;

    /// Every user the daemon knows or the policy requires (administrators only).
    fn admin_users(&self) -> Result<Vec<AdminUser>, TwofoldError>;

    /// Removes `user`'s two-factor authentication so that they enroll again, recording
    /// `reason`. With `bypass_hours` > 0 also returns a one-time code (shown once) that
    /// lets the user log in once within that time; otherwise returns "".
    fn admin_reset(
        &self,
        user: &str,
        reason: &str,
        bypass_hours: u32,
    ) -> Result<String, TwofoldError>;

    /// Clears `user`'s lockouts from every source.
    fn admin_unlock(&self, user: &str) -> Result<(), TwofoldError>;

    /// The audit trail, newest first: of `user` ("" = everyone), since Unix time
    /// `since`, at most `limit` entries (administrators only).
    fn audit_log(
        &self,
        user: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, TwofoldError>;

    /// Registers a login session that the caller (root: the PAM module inside sshd,
    /// sudo, login) has just opened; the caller's D-Bus pid is the session leader.
    /// `info` carries the keys of [`context`]. Returns the session id.
    fn open_session(
        &self,
        user: &str,
        info: HashMap<String, String>,
    ) -> Result<String, TwofoldError>;

    /// Records the end of the session that the caller opened (root only).
    fn close_session(&self, user: &str, info: HashMap<String, String>) -> Result<(), TwofoldError>;

    /// The grace window (`grace=SECONDS` on the module's auth line; root only): true
    /// when `user` passed two-factor authentication for the same service on the same
    /// terminal, or from the same remote host, within `seconds`. A true answer is
    /// recorded as a login by grace.
    fn check_grace(
        &self,
        user: &str,
        context: HashMap<String, String>,
        seconds: u32,
    ) -> Result<bool, TwofoldError>;

    /// The live login sessions of `user` ("" = the caller), the remembered grace entries
    /// and the session timeout; with `include_ended`, recently ended sessions too.
    fn list_sessions(&self, user: &str, include_ended: bool) -> Result<SessionList, TwofoldError>;

    /// Ends session `id` (logind `TerminateSession`, else SIGHUP, SIGTERM, SIGKILL to the
    /// processes it owns). Only its owner or an administrator may.
    fn revoke_session(&self, id: &str) -> Result<(), TwofoldError>;

    /// Ends every live session of `user` ("" = the caller) except the caller's own;
    /// returns the ids ended.
    fn revoke_other_sessions(&self, user: &str) -> Result<Vec<String>, TwofoldError>;

    /// The user's session timeout in seconds (0 = none of their own; the
    /// administrator's `session_timeout` still applies).
    fn set_session_timeout(&self, user: &str, seconds: u64) -> Result<(), TwofoldError>;

    /// Clears the user's remembered grace entries; returns how many there were.
    fn forget_remembered(&self, user: &str) -> Result<u32, TwofoldError>;

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

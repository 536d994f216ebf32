//! The D-Bus contract between `twofoldd` and its clients (`pam_twofold.so`, `twofold`).
//!
//! Everything that crosses the bus is named here, once: the bus name, the object path,
//! the interface, the closed set of errors and the shapes of the replies. This crate is
//! deliberately small: the PAM module links it, so it must never pull in storage or
//! hashing code.

use serde::{Deserialize, Serialize};
use zbus::Type;

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
pub mod tokens;
pub mod wire;
pub use limits::{MAX_CODE_LEN, MAX_USER_LEN};
pub use tokens::{TokenInfo, TokenSeed, TokensImported};

/// When this many backup codes or fewer remain, users are told to regenerate them.
pub const BACKUP_CODES_LOW: u32 = 3;

/// How the line of `twofoldd --check-config` that names the trusted networks (or says
/// "off") starts; `twofold doctor` shows it.
pub const CHECK_CONFIG_TRUSTED_NETWORKS: &str = "trusted networks: ";

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

/// Every error `twofoldd` can answer with: one namespace ([`ERROR_PREFIX`]), a closed
/// set. The error names on the wire are `ERROR_PREFIX.` + [`ErrorKind::name`]; with the
/// `zbus` feature, [`TwofoldError`] carries them with their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller may not act on that user.
    PermissionDenied,
    /// The user has not enrolled in two-factor authentication.
    NotEnrolled,
    /// The code did not match (wrong, expired or already used).
    InvalidCode,
    /// Too many failures: the user is locked out for a while.
    Locked,
    /// A malformed argument (over-long code, invalid user name, …).
    InvalidArgument,
    /// This uid sent more requests than its share; try again in a moment.
    RateLimited,
    /// No such user on this system.
    UnknownUser,
    /// The user is enrolled already; re-enrolling needs proof or an administrator.
    AlreadyEnrolled,
    /// `EnrollConfirm` without a pending (unexpired) `EnrollBegin`.
    NoPendingEnrollment,
    /// The account password did not match (`Disable`).
    InvalidPassword,
    /// The daemon could not complete the request (storage failure, …); fail closed.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::PermissionDenied,
        ErrorKind::NotEnrolled,
        ErrorKind::InvalidCode,
        ErrorKind::Locked,
        ErrorKind::InvalidArgument,
        ErrorKind::RateLimited,
        ErrorKind::UnknownUser,
        ErrorKind::AlreadyEnrolled,
        ErrorKind::NoPendingEnrollment,
        ErrorKind::InvalidPassword,
        ErrorKind::Internal,
    ];

    /// The last component of the error name.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "PermissionDenied",
            ErrorKind::NotEnrolled => "NotEnrolled",
            ErrorKind::InvalidCode => "InvalidCode",
            ErrorKind::Locked => "Locked",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::RateLimited => "RateLimited",
            ErrorKind::UnknownUser => "UnknownUser",
            ErrorKind::AlreadyEnrolled => "AlreadyEnrolled",
            ErrorKind::NoPendingEnrollment => "NoPendingEnrollment",
            ErrorKind::InvalidPassword => "InvalidPassword",
            ErrorKind::Internal => "Internal",
        }
    }

    /// The kind of a full error name (`org.twofold.Error.Locked`); None for any name
    /// outside the set.
    pub fn from_error_name(name: &str) -> Option<ErrorKind> {
        let short = name.strip_prefix(ERROR_PREFIX)?.strip_prefix('.')?;
        ErrorKind::ALL.into_iter().find(|k| k.name() == short)
    }
}

#[cfg(feature = "zbus")]
mod proxy;
#[cfg(feature = "zbus")]
pub use proxy::{TwofoldError, TwofoldProxy};

/// Which factor a successful `Verify` accepted.
pub mod method {
    /// A TOTP code from an authenticator app or a TOTP token.
    pub const TOTP: &str = "totp";
    /// An HOTP (counter) code from a hardware token.
    pub const HOTP: &str = "hotp";
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
    /// `reset`, `bypass_used`, `trusted_network` (no code asked), session events, …
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

/// How a device makes its codes (RFC 4226 HOTP, RFC 6238 TOTP); checked by
/// [`limits::oath_params`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct OathParams {
    /// One of [`limits::OATH_ALGORITHMS`].
    pub algorithm: String,
    /// One of [`limits::OATH_DIGITS`].
    pub digits: u32,
    /// Seconds per step (one of [`limits::TOTP_PERIODS`]); 0 for an HOTP counter.
    pub period: u32,
    /// HOTP: the next counter value the device will show. TOTP: unused (0).
    pub counter: u64,
}

impl OathParams {
    /// What every authenticator app does: SHA1, 6 digits, 30-second steps.
    pub fn app() -> OathParams {
        OathParams {
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            counter: 0,
        }
    }
}

/// One of a user's devices (authenticators), as `ListDevices` answers; never its secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct DeviceInfo {
    /// The user's name for it.
    pub name: String,
    /// What it is ([`limits::DEVICE_KIND_TOTP_APP`], …).
    pub kind: String,
    /// Unix time it was added.
    pub added: i64,
    /// Unix time a code of it last passed; 0 when never.
    pub last_used: i64,
    /// How it makes its codes: one of [`limits::OATH_ALGORITHMS`], digits and seconds
    /// per step (0: an HOTP counter), as in [`OathParams`].
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    /// Step offsets (its clock minus the server's, in its steps) of its latest accepted
    /// codes, newest first; none for a counter.
    pub recent_step_offsets: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_error_name() {
        for kind in ErrorKind::ALL {
            let name = format!("{ERROR_PREFIX}.{}", kind.name());
            assert_eq!(ErrorKind::from_error_name(&name), Some(kind));
        }
        assert_eq!(ErrorKind::from_error_name("org.twofold.Error.Nope"), None);
        assert_eq!(ErrorKind::from_error_name("org.twofold.ErrorLocked"), None);
        assert_eq!(
            ErrorKind::from_error_name("org.freedesktop.DBus.Error.Failed"),
            None
        );
    }
}

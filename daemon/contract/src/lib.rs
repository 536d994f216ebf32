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
/// Prefix of every error name `twofoldd` returns.
pub const ERROR_PREFIX: &str = "org.twofold.Error";

/// Longest code (TOTP or backup code, with any formatting) the daemon looks at.
pub const MAX_CODE_LEN: usize = 256;
/// When this many backup codes or fewer remain, users are told to regenerate them.
pub const BACKUP_CODES_LOW: u32 = 3;

/// Longest user name accepted (Linux `LOGIN_NAME_MAX`).
pub const MAX_USER_LEN: usize = 256;

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
            | TwofoldError::UnknownUser(m)
            | TwofoldError::AlreadyEnrolled(m)
            | TwofoldError::NoPendingEnrollment(m)
            | TwofoldError::InvalidPassword(m)
            | TwofoldError::Internal(m) => m.clone(),
        }
    }

    /// True for failures of the transport or the daemon itself, where a client cannot
    /// tell whether the user would have passed: the PAM module fails closed on these.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TwofoldError::ZBus(_) | TwofoldError::Internal(_))
    }
}

/// Which factor a successful `Verify` accepted.
pub mod method {
    /// A TOTP code from an authenticator app.
    pub const TOTP: &str = "totp";
    /// A single-use backup code.
    pub const BACKUP_CODE: &str = "backup_code";
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

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

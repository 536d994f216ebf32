//! The zbus side of the contract (feature `zbus`): the error type that `twofoldd` answers
//! with and the CLI decodes, and the client proxy.

use std::collections::HashMap;

use crate::{
    AdminUser, AuditEntry, DeviceInfo, Enrollment, ErrorKind, LoginState, OathParams, SessionList,
    TokenInfo, TokenSeed, TokensImported, UserStatus, Verified,
};

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

impl From<crate::limits::Invalid> for TwofoldError {
    fn from(e: crate::limits::Invalid) -> Self {
        TwofoldError::InvalidArgument(e.0)
    }
}

impl TwofoldError {
    /// Its kind; None for [`TwofoldError::ZBus`] (not an answer of the daemon's).
    pub fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            TwofoldError::ZBus(_) => return None,
            TwofoldError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            TwofoldError::NotEnrolled(_) => ErrorKind::NotEnrolled,
            TwofoldError::InvalidCode(_) => ErrorKind::InvalidCode,
            TwofoldError::Locked(_) => ErrorKind::Locked,
            TwofoldError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            TwofoldError::RateLimited(_) => ErrorKind::RateLimited,
            TwofoldError::UnknownUser(_) => ErrorKind::UnknownUser,
            TwofoldError::AlreadyEnrolled(_) => ErrorKind::AlreadyEnrolled,
            TwofoldError::NoPendingEnrollment(_) => ErrorKind::NoPendingEnrollment,
            TwofoldError::InvalidPassword(_) => ErrorKind::InvalidPassword,
            TwofoldError::Internal(_) => ErrorKind::Internal,
        })
    }

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

/// Client-side proxy of the `org.twofold.Twofold1` interface.
///
/// An empty `user` argument means "the caller": the daemon resolves it from the caller's
/// D-Bus credentials.
#[zbus::proxy(
    interface = "org.twofold.Twofold1",
    default_service = "org.twofold.Twofold1",
    default_path = "/org/twofold/Twofold1"
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
    /// `oath` is how the app makes its codes ([`OathParams::app`] unless the user asked
    /// otherwise; time-based, `counter` 0).
    fn enroll_begin(
        &self,
        user: &str,
        issuer: &str,
        proof: &str,
        oath: &OathParams,
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

    /// Enrolls `user` with a TOTP `secret` (base32) they already use with another PAM
    /// module, and `backup_codes` (that module's unused scratch codes) as their backup
    /// codes; `source` names the module (one of [`crate::limits::IMPORT_SOURCES`]) for
    /// the audit trail. `last_used_code` ("" = none known) is the last code that module
    /// accepted: if it is of a step still ahead, that step counts as used too. `oath` is
    /// how the device makes its codes; its `counter` is, for HOTP, the next counter value,
    /// for TOTP the first step (in its own steps) not yet used (0 = unknown). A user
    /// enrolled in twofold already is left alone (`AlreadyEnrolled`). Administrators
    /// only.
    fn admin_import(
        &self,
        user: &str,
        secret: &str,
        backup_codes: &[&str],
        source: &str,
        last_used_code: &str,
        oath: &OathParams,
    ) -> Result<(), TwofoldError>;

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

    /// The devices of `user` ("" = the caller), oldest first.
    fn list_devices(&self, user: &str) -> Result<Vec<DeviceInfo>, TwofoldError>;

    /// Starts adding device `name` to enrolled `user` ("" = the caller): like
    /// `EnrollBegin`, and `proof` is a current code of one of their devices or a backup
    /// code (unless root or an administrator asks; without one, `AlreadyEnrolled` says
    /// it is needed, as `EnrollBegin` does). `oath` as in `EnrollBegin`. Confirmed by
    /// `AddDeviceConfirm`.
    fn add_device_begin(
        &self,
        user: &str,
        name: &str,
        issuer: &str,
        proof: &str,
        oath: &OathParams,
    ) -> Result<Enrollment, TwofoldError>;

    /// Adds the pending secret as device `name`, proven by its first `code`.
    fn add_device_confirm(&self, user: &str, name: &str, code: &str) -> Result<(), TwofoldError>;

    /// Removes device `name` of `user` ("" = the caller); `proof` is a current code of
    /// another of their devices or a backup code (unless root or an administrator
    /// asks). The last device is not removed: that is `Disable`.
    fn remove_device(&self, user: &str, name: &str, proof: &str) -> Result<(), TwofoldError>;

    // ---- hardware OATH tokens (administrators only)

    /// Adds hardware tokens from a vendor's seed file, unassigned; serials known already
    /// are left alone and listed.
    fn admin_import_tokens(&self, tokens: &[TokenSeed]) -> Result<TokensImported, TwofoldError>;

    /// Every imported token and whose device it is.
    fn admin_tokens(&self) -> Result<Vec<TokenInfo>, TwofoldError>;

    /// Makes token `serial` a device of `user` (named by the serial; a user not enrolled
    /// yet is enrolled with it), starting at the token's counter.
    fn admin_assign_token(&self, serial: &str, user: &str) -> Result<(), TwofoldError>;

    /// Removes the device that token `serial` is (its counter stays with the token);
    /// returns the user it was assigned to. Not a user's last device.
    fn admin_unassign_token(&self, serial: &str) -> Result<String, TwofoldError>;

    /// Resynchronises HOTP token `serial` from two consecutive codes it shows (RFC 4226
    /// §7.4); returns the counter value the next code will have.
    fn admin_resync_token(
        &self,
        serial: &str,
        first: &str,
        second: &str,
    ) -> Result<u64, TwofoldError>;

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

#[cfg(test)]
mod tests {
    use zbus::DBusError;

    use super::*;

    /// The derive names each variant; the module decodes by [`ErrorKind`]: both agree.
    #[test]
    fn the_zbus_error_names_are_the_kinds_names() {
        for kind in ErrorKind::ALL {
            let name = format!("{}.{}", crate::ERROR_PREFIX, kind.name());
            let e = TwofoldError::from(zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name.clone()).unwrap(),
                Some("m".into()),
                zbus::message::Message::method_call("/", "M")
                    .build(&())
                    .unwrap(),
            ));
            assert_eq!(e.kind(), Some(kind), "{name}");
            assert_eq!(e.name().as_str(), name);
        }
    }
}

//! Durable state behind one interface, so that the embedded SQLite store and a fleet's
//! shared store serve the same service logic.
//!
//! Every method that decides a login is a single atomic step of the store (a conditional
//! update inside one transaction), never a read followed by a write in the caller: that is
//! what keeps a code single-use when many verifications race, on one host or many.

pub mod sqlite;

use crate::lockout::{LockoutPolicy, Throttle};

/// A storage failure: the request fails closed.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An enrolled user's TOTP state.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The TOTP secret, sealed with the host key (see `secrets::Keys::seal`).
    pub secret_sealed: Vec<u8>,
    /// Unix time of the enrollment confirmation.
    pub enrolled_at: i64,
    /// Latest accepted time step (the replay watermark).
    pub last_step: Option<u64>,
    /// Unix time of the last successful verification.
    pub last_used_at: Option<i64>,
    /// How it passed (`totp`, `backup_code`).
    pub last_method: String,
    /// PAM service of the last successful verification.
    pub last_service: String,
    /// Remote host of the last successful verification.
    pub last_rhost: String,
}

/// An enrollment waiting for its first code.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The new secret, sealed.
    pub secret_sealed: Vec<u8>,
    /// Unix time after which it is void.
    pub expires_at: i64,
}

/// One line of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// Unix time.
    pub at: i64,
    /// Uid of the D-Bus caller that acted.
    pub actor_uid: Option<u32>,
    /// Pid of that caller.
    pub actor_pid: Option<u32>,
    /// The user acted upon.
    pub user: String,
    /// What happened (`verify_ok`, `verify_failed`, `backup_code_used`, `lockout`, …).
    pub event: &'static str,
    /// PAM service, when the event comes from a login.
    pub service: String,
    /// Terminal, when known.
    pub tty: String,
    /// Remote host, when known.
    pub rhost: String,
    /// Free-form detail (never a secret or a typed code).
    pub detail: String,
    /// Matched TOTP step minus the server's step, for accepted TOTP codes.
    pub step_offset: Option<i32>,
}

/// A new backup code as stored: lookup tag and Argon2id hash.
#[derive(Debug, Clone)]
pub struct StoredBackupCode {
    /// Keyed tag of the normalized code.
    pub tag: Vec<u8>,
    /// Argon2id PHC string.
    pub hash: String,
}

/// The daemon's durable state.
pub trait Store: Send + Sync {
    /// The user's TOTP state, if enrolled.
    fn user(&self, user: &str) -> StoreResult<Option<UserRecord>>;
    /// The user's failure counters (zero when none were recorded).
    fn throttle(&self, user: &str) -> StoreResult<Throttle>;
    /// Unused backup codes of the user.
    fn backup_codes_left(&self, user: &str) -> StoreResult<u32>;
    /// The user's pending enrollment, if one exists and has not expired at `now`.
    fn pending(&self, user: &str, now: i64) -> StoreResult<Option<Pending>>;

    /// Moves the user's replay watermark to `step` if it is still below it, clears the
    /// failure counters and appends `audit`, atomically. False when another
    /// verification got there first (the code was used).
    fn accept_totp_step(&self, user: &str, step: u64, audit: &AuditEvent) -> StoreResult<bool>;
    /// Step offsets of the user's latest accepted TOTP codes, newest first.
    fn recent_step_offsets(&self, user: &str, limit: u32) -> StoreResult<Vec<i32>>;
    /// Unused backup codes of the user with this lookup tag: `(id, hash)`.
    fn backup_code_candidates(&self, user: &str, tag: &[u8]) -> StoreResult<Vec<(i64, String)>>;
    /// Marks backup code `id` used if it still is unused, clears the failure counters and
    /// appends `audit`, atomically. `Some(codes left)` on success, `None` when it was
    /// used already.
    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        audit: &AuditEvent,
    ) -> StoreResult<Option<u32>>;
    /// Replaces all of an enrolled user's backup codes with `codes` and appends `audit`,
    /// atomically. False when the user is not enrolled.
    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Removes everything of the user's two-factor authentication (secret, backup codes,
    /// pending enrollment, counters) and appends `audit`, atomically. False when the user
    /// was not enrolled. The audit trail stays.
    fn remove_user(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool>;
    /// Counts one failure under `policy` and appends `audit` (plus a `lockout` entry when
    /// this failure starts one), atomically; returns the new counters.
    fn record_failure(
        &self,
        user: &str,
        policy: &LockoutPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<Throttle>;

    /// Stores (or replaces) the user's pending enrollment.
    fn begin_enrollment(
        &self,
        user: &str,
        pending: &Pending,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Makes the pending enrollment whose sealed secret is `secret_sealed` the user's
    /// secret, with `step` as its first used step and `codes` as the new backup codes,
    /// atomically. False when that pending enrollment is gone (replaced or expired).
    fn confirm_enrollment(
        &self,
        user: &str,
        secret_sealed: &[u8],
        step: u64,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
}

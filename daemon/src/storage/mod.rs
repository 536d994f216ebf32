//! Durable state behind one interface, so that the embedded SQLite store and a fleet's
//! shared store serve the same service logic.
//!
//! Every method that decides a login is a single atomic step of the store (a conditional
//! update inside one transaction), never a read followed by a write in the caller: that is
//! what keeps a code single-use when many verifications race, on one host or many.

/// The storage suite both stores pass: tests only (`test-support` for the end-to-end
/// tests, which run it on a real PostgreSQL).
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod pg_settings;
#[cfg(feature = "postgres")]
pub mod postgres;
pub(crate) mod schema;
pub(crate) mod sql;
pub mod sqlite;
pub mod tokens;

use crate::lockout::{LockoutPolicy, Source, Throttle};
use crate::otp::Oath;
use twofold_contract::AuditEntry;

pub use tokens::TokenStore;

/// A storage failure: the request fails closed.
#[derive(Debug)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time; a later request may
    /// pass (the daemon starts anyway and fails closed meanwhile).
    Unavailable(String),
    /// The database is not one this daemon may use (a newer schema, another fleet's key
    /// file): the daemon does not start.
    Misconfigured(String),
    /// Anything else (I/O, a full disk, a constraint): the message says what.
    Failed(String),
}

impl StoreError {
    /// What went wrong, for the log.
    pub fn message(&self) -> &str {
        match self {
            StoreError::Unavailable(m) | StoreError::Misconfigured(m) | StoreError::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Misconfigured(m) => write!(f, "misconfigured: {m}"),
            other => f.write_str(other.message()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An enrolled user (their secrets are their [`Device`]s).
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Unix time of the enrollment confirmation.
    pub enrolled_at: i64,
    /// Unix time of the last successful verification.
    pub last_used_at: Option<i64>,
    /// How it passed (`totp`, `backup_code`).
    pub last_method: String,
    /// PAM service of the last successful verification.
    pub last_service: String,
    /// Remote host of the last successful verification.
    pub last_rhost: String,
}

/// One of an enrolled user's authenticators, with its own secret and replay watermark.
#[derive(Debug, Clone)]
pub struct Device {
    /// The user's name for it (see `limits::device_name`).
    pub name: String,
    /// What it is (`limits::DEVICE_KIND_TOTP_APP`, …).
    pub kind: String,
    /// Its OATH secret, sealed with the host key (see `secrets::Keys::seal`).
    pub secret_sealed: Vec<u8>,
    /// How it makes its codes.
    pub oath: Oath,
    /// Unix time it was added.
    pub added_at: i64,
    /// Latest time step (TOTP, in the device's own steps) or counter value (HOTP)
    /// accepted from it: its replay watermark.
    pub last_step: Option<u64>,
    /// Unix time a code of it last passed.
    pub last_used_at: Option<i64>,
}

/// What [`Store::add_device`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAdded {
    Added,
    /// The pending enrollment is gone (replaced or expired).
    NoPending,
    /// The user is not enrolled (a first device is an enrollment).
    NotEnrolled,
    /// The user has a device of that name.
    NameTaken,
    /// The user has the most devices allowed.
    Full,
}

/// What [`Store::remove_device`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRemoved {
    Removed,
    /// The user has no device of that name.
    Unknown,
    /// It is the user's last device: that is disabling 2FA, not removing a device.
    Last,
}

impl Pending {
    /// An app's pending enrollment of this sealed secret (tests of the stores).
    #[cfg(any(test, feature = "test-support"))]
    pub fn sealed(secret_sealed: Vec<u8>) -> Pending {
        Pending {
            secret_sealed,
            expires_at: 0,
            oath: Oath::APP,
        }
    }

    /// The kind of device it becomes: an app, or (counter-based, imported from pam_oath)
    /// an HOTP token.
    pub fn kind(&self) -> &'static str {
        if self.oath.is_counter() {
            twofold_contract::limits::DEVICE_KIND_HOTP_TOKEN
        } else {
            twofold_contract::limits::DEVICE_KIND_TOTP_APP
        }
    }
}

/// The step offset of an accepted TOTP code (device clock minus server clock, in the
/// device's steps) and the device it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOffset {
    pub device: Option<String>,
    pub offset: i32,
}

/// A code accepted from a device: where its replay watermark moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// A TOTP step of the device (in its own steps), which ends in the 30-second step
    /// `clock_step` of the clock (what the replay fence counts in, see `Oath::clock_step`).
    Step { step: u64, clock_step: u64 },
    /// An HOTP counter value: made durable before it is answered (the replay fence
    /// counts time, not counters).
    Counter(u64),
}

impl Acceptance {
    /// A step of a device with 30-second steps (an app's).
    pub fn totp(step: u64) -> Acceptance {
        Acceptance::Step {
            step,
            clock_step: step,
        }
    }

    /// The device's new watermark.
    pub fn watermark(self) -> u64 {
        match self {
            Acceptance::Step { step, .. } => step,
            Acceptance::Counter(counter) => counter,
        }
    }
}

/// An enrollment waiting for its first code.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The new secret, sealed.
    pub secret_sealed: Vec<u8>,
    /// How the new device makes its codes.
    pub oath: Oath,
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
    /// Host whose daemon records the event ("" when unknown).
    pub host: String,
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
pub trait Store: Send + Sync + SessionStore + TokenStore {
    /// Other hosts write to this store too (fleet mode): a row naming this host may have
    /// been written by another.
    fn shared(&self) -> bool {
        false
    }
    /// The user's enrollment, if enrolled.
    fn user(&self, user: &str) -> StoreResult<Option<UserRecord>>;
    /// The user's devices, oldest first (none when not enrolled).
    fn devices(&self, user: &str) -> StoreResult<Vec<Device>>;
    /// The strictest of the user's counters for `sources` (zero when none were recorded).
    fn throttle(&self, user: &str, sources: &[Source]) -> StoreResult<Throttle>;
    /// All of the user's counters together: failures summed (the sources', not again
    /// the ceilings'), the latest lockout end.
    fn throttle_summary(&self, user: &str) -> StoreResult<Throttle>;
    /// Clears every lockout counter of the user (`admin unlock`) and appends `audit`.
    fn clear_lockouts(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool>;
    /// When the daemon first saw the user (recorded now if never): starts the
    /// enrollment grace of required users.
    fn first_seen(&self, user: &str, now: i64) -> StoreResult<i64>;
    /// Stores (replacing any) an administrator's one-time bypass code hash.
    fn set_bypass(
        &self,
        user: &str,
        hash: &str,
        expires_at: i64,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// The hash of the user's unexpired bypass code, if any.
    fn bypass(&self, user: &str, now: i64) -> StoreResult<Option<String>>;
    /// Uses up the bypass code with `hash` if still there and unexpired at `audit.at`,
    /// clears `sources` and appends `audit`, atomically.
    fn consume_bypass(
        &self,
        user: &str,
        hash: &str,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Every user the store holds anything about.
    fn known_users(&self) -> StoreResult<Vec<String>>;
    /// Appends `audit` alone (an event that changes no other state).
    fn append_audit(&self, audit: &AuditEvent) -> StoreResult<()>;
    /// The audit trail, newest first.
    fn audit_log(&self, user: Option<&str>, since: i64, limit: u32)
        -> StoreResult<Vec<AuditEntry>>;
    /// Unused backup codes of the user.
    fn backup_codes_left(&self, user: &str) -> StoreResult<u32>;
    /// The user's pending enrollment, if one exists and has not expired at `now`.
    fn pending(&self, user: &str, now: i64) -> StoreResult<Option<Pending>>;

    /// Moves the replay watermark of the user's `device` to the step or counter value of
    /// `acceptance` if it is still below it, clears the failure counters of `sources` and
    /// appends `audit`, atomically (an HOTP acceptance moves the counter of the hardware
    /// token the device is, if one, in the same transaction). False when another
    /// verification got there first (the code was used) or the device is gone.
    ///
    /// A TOTP acceptance is the one write that may be answered before it is durable
    /// (SQLite: synced right after). A store that does so keeps a replay fence (see
    /// [`Store::begin_run`]) that covers every step whose acceptance a power loss may
    /// have undone.
    fn accept_code(
        &self,
        user: &str,
        device: &str,
        acceptance: Acceptance,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Starts a run of the daemon on the kernel boot `boot_id`, before it serves. After an
    /// unclean stop on another boot (a power loss), raises the replay fence over every
    /// step whose acceptance may have been lost, durably; returns the fence so imposed.
    fn begin_run(&self, boot_id: &str) -> StoreResult<Option<u64>>;
    /// TOTP steps at or below this are refused for every user (see [`Store::begin_run`]);
    /// None when no fence is in force.
    fn replay_fence(&self) -> Option<u64>;
    /// An orderly stop: everything is made durable and recorded as such (no fence at the
    /// next start); every write after it is durable before it is answered.
    fn end_run(&self) -> StoreResult<()>;
    /// Step offsets of the user's latest accepted TOTP codes, newest first, each with the
    /// device its audit entry names (None for entries from before devices had names).
    fn recent_step_offsets(&self, user: &str, limit: u32) -> StoreResult<Vec<StepOffset>>;
    /// Unused backup codes of the user with this lookup tag: `(id, hash)`.
    fn backup_code_candidates(&self, user: &str, tag: &[u8]) -> StoreResult<Vec<(i64, String)>>;
    /// Marks backup code `id` used if it still is unused, clears the failure counters of
    /// `sources` and appends `audit`, atomically. `Some(codes left)` on success, `None`
    /// when it was used already.
    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        sources: &[Source],
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
    /// Counts one failure against each of `sources` under `policy` and appends `audit`
    /// (plus a `lockout` entry when this failure starts one), atomically; returns the
    /// strictest of the new counters.
    fn record_failure(
        &self,
        user: &str,
        sources: &[Source],
        policy: &LockoutPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<Throttle>;

    /// Forgets the throttle counters not locked at `now` that counted no failure since
    /// `idle_before`; returns how many.
    fn purge_throttle(&self, now: i64, idle_before: i64) -> StoreResult<u64>;
    /// Deletes the audit entries older than `before`, then the oldest beyond the newest
    /// `max_rows`, a batch per transaction (logins wait for one batch at most); returns
    /// how many.
    fn purge_audit(&self, before: i64, max_rows: u64) -> StoreResult<u64>;

    /// Stores (or replaces) the user's pending enrollment.
    fn begin_enrollment(
        &self,
        user: &str,
        pending: &Pending,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Makes the `pending` enrollment (matched by its sealed secret) the user's only
    /// device ([`limits::FIRST_DEVICE`](twofold_contract::limits::FIRST_DEVICE),
    /// replacing any others), with `step` as its watermark (None: nothing used) and `codes` as
    /// the new backup codes, atomically. False when that pending enrollment is gone (replaced or
    /// expired).
    fn confirm_enrollment(
        &self,
        user: &str,
        pending: &Pending,
        step: Option<u64>,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Makes the `pending` enrollment (matched by its sealed secret) a further device of
    /// the enrolled user, named `device`, with `step` as its watermark, unless the
    /// user has `max_devices` already; appends `audit` when added, atomically.
    fn add_device(
        &self,
        user: &str,
        device: &str,
        pending: &Pending,
        step: Option<u64>,
        max_devices: u32,
        audit: &AuditEvent,
    ) -> StoreResult<DeviceAdded>;
    /// Removes the user's `device` (its secret goes with it) unless it is their last, and
    /// appends `audit` when removed, atomically.
    fn remove_device(
        &self,
        user: &str,
        device: &str,
        audit: &AuditEvent,
    ) -> StoreResult<DeviceRemoved>;
}

/// Rows deleted per transaction by the purges.
pub(crate) const PURGE_BATCH: i64 = 5_000;

/// What [`purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Idle throttle counters.
    pub throttle: u64,
    /// Audit entries past `audit_retention_days` or `audit_max_rows`.
    pub audit: u64,
}

/// Deletes what `policy` no longer keeps: throttle counters idle for
/// [`LockoutPolicy::idle_lifetime`] and not locked, audit entries older than
/// `audit_retention_days` or beyond the newest `audit_max_rows`. The daemon calls it
/// periodically (hourly), so that no caller can make the database grow without bound.
pub fn purge_expired(
    store: &dyn Store,
    policy: &crate::policy::Policy,
    now: i64,
) -> StoreResult<Purged> {
    let throttle = store.purge_throttle(now, now - policy.lockout.idle_lifetime())?;
    let audit = store.purge_audit(
        now - i64::from(policy.audit_retention_days) * 86_400,
        policy.audit_max_rows,
    )?;
    Ok(Purged { throttle, audit })
}

// ------------------------------------------------------------------ login sessions

/// A login session as stored (see `crate::sessions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRecord {
    /// Short random id that users type.
    pub id: String,
    /// `PAM_USER`.
    pub user: String,
    /// `PAM_SERVICE`.
    pub service: String,
    /// `PAM_TTY`, "" when none.
    pub tty: String,
    /// `PAM_RHOST`, "" when none.
    pub rhost: String,
    /// `PAM_RUSER`, "" when none.
    pub ruser: String,
    /// Host the session runs on (fleets share one store).
    pub host: String,
    /// Kernel boot id when it opened: another boot id means the host rebooted since.
    pub boot_id: String,
    /// The session leader (the caller of `pam_open_session`).
    pub leader_pid: u32,
    /// Its start time in clock ticks since boot (tells it from a later reuse of the pid).
    pub leader_start: u64,
    /// logind session id, "" when none.
    pub logind_session: String,
    /// How the second factor was passed (`totp`, `backup_code`, `grace`, …).
    pub auth_method: String,
    /// When, 0 when unknown.
    pub auth_at: i64,
    /// Unix time it opened.
    pub started: i64,
    /// Unix time it ended, None while live.
    pub ended: Option<i64>,
    /// Why it ended.
    pub end_reason: String,
    /// Reverse-DNS name of `rhost`.
    pub rhost_name: String,
    /// "City, Country", "local" or "".
    pub location: String,
    /// ISO country code, "" when unknown.
    pub country_code: String,
    /// The timeout warning was written.
    pub warned: bool,
    /// Another host's daemon asked for this session to be ended, for this reason ("" when
    /// not): the daemon of `host` ends it (see `sessions::revoke::reaper`).
    pub revoke_requested: String,
}

/// A passed second factor, kept for the grace window and to tell how a session passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthPass {
    /// The user who passed.
    pub user: String,
    /// PAM service.
    pub service: String,
    /// `PAM_TTY`, "" when none.
    pub tty: String,
    /// `PAM_RHOST`, "" when none.
    pub rhost: String,
    /// Unix time.
    pub at: i64,
    /// `totp`, `backup_code`, `bypass` or `grace`.
    pub method: String,
    /// The D-Bus caller (the process running the PAM stack).
    pub caller_pid: u32,
    /// Its parent (sshd authenticates in a child of the process that opens the session).
    pub caller_ppid: u32,
    /// Session id (`getsid`) of the caller: with the tty, names one terminal login.
    pub tty_sid: u32,
    /// Start time of that session's leader (0 when unknown).
    pub tty_sid_start: u64,
    /// Host.
    pub host: String,
    /// Kernel boot id.
    pub boot_id: String,
}

/// Durable state of login sessions; every [`Store`] has it.
pub trait SessionStore: Send + Sync {
    /// Adds a session and appends `audit`, atomically; false when the id is taken.
    fn insert_session(&self, session: &SessionRecord, audit: &AuditEvent) -> StoreResult<bool>;
    /// The session with this id, live or ended.
    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// The user's live sessions, plus those that ended at or after `ended_since`;
    /// newest first.
    fn user_sessions(
        &self,
        user: &str,
        ended_since: Option<i64>,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Every live session on `host`.
    fn host_live_sessions(&self, host: &str) -> StoreResult<Vec<SessionRecord>>;
    /// Number of live sessions of the user (all hosts).
    fn live_session_count(&self, user: &str) -> StoreResult<u32>;
    /// Asks the daemon of the session's host to end it (fleet mode: revoked from another
    /// host) with `reason`, and appends `audit`, atomically; false when the session is not
    /// live (or does not exist).
    fn request_revoke(&self, id: &str, reason: &str, audit: &AuditEvent) -> StoreResult<bool>;
    /// Ends a live session with `reason` and appends `audit`, atomically; false when it
    /// had ended already (or does not exist).
    fn end_session(&self, id: &str, at: i64, reason: &str, audit: &AuditEvent)
        -> StoreResult<bool>;
    /// Stores where the session came from.
    fn set_session_place(
        &self,
        id: &str,
        rhost_name: &str,
        location: &str,
        country_code: &str,
    ) -> StoreResult<()>;
    /// Notes that the timeout warning was written.
    fn mark_session_warned(&self, id: &str) -> StoreResult<()>;
    /// Remembers a passed second factor.
    fn record_auth_pass(&self, pass: &AuthPass) -> StoreResult<()>;
    /// The user's passes at or after `since`, newest first.
    fn auth_passes(&self, user: &str, since: i64) -> StoreResult<Vec<AuthPass>>;
    /// Forgets all of the user's passes and appends `audit`; returns how many there were.
    fn forget_auth_passes(&self, user: &str, audit: &AuditEvent) -> StoreResult<u32>;
    /// Drops passes older than `passes_before` and ended sessions older than
    /// `ended_before`.
    fn purge_sessions(&self, passes_before: i64, ended_before: i64) -> StoreResult<()>;
    /// The user's own session timeout in seconds, if set.
    fn session_timeout(&self, user: &str) -> StoreResult<Option<u64>>;
    /// Every user's own session timeout.
    fn session_timeouts(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Sets (Some) or clears (None) the user's session timeout and appends `audit`.
    fn set_session_timeout(
        &self,
        user: &str,
        seconds: Option<u64>,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn purge_expired_follows_the_policy() {
        let store = sqlite::SqliteStore::in_memory();
        let policy = Policy::parse("audit_retention_days = 2\n").unwrap();
        let day = 86_400;
        let now = 100 * day;
        let sources = policy.lockout.sources("", "/dev/pts/1", "host");
        let event = |at: i64| AuditEvent {
            at,
            user: "alice".into(),
            event: "verify_failed",
            ..Default::default()
        };
        // Three days ago (past retention, counters idle), and an hour ago.
        store
            .record_failure("alice", &sources, &policy.lockout, &event(now - 3 * day))
            .unwrap();
        store
            .record_failure("bob", &sources, &policy.lockout, &event(now - 3600))
            .unwrap();
        let purged = purge_expired(&store, &policy, now).unwrap();
        assert_eq!(
            purged,
            Purged {
                throttle: 2,
                audit: 1
            }
        );
        assert_eq!(
            store.throttle_summary("alice").unwrap(),
            Throttle::default()
        );
        assert_eq!(store.throttle_summary("bob").unwrap().failures, 1);
        assert_eq!(store.audit_log(None, 0, 10).unwrap().len(), 1);
        assert_eq!(
            purge_expired(&store, &policy, now).unwrap(),
            Purged::default()
        );
    }
}

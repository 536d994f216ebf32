//! Hardware OATH tokens in the store: imported from a vendor's seed file, unassigned,
//! then each made a device of one user (the device row names the token: a token is
//! assigned iff a device names it). An HOTP token's counter lives in its row and moves
//! with every code accepted from its device, so that it outlives the device (removed,
//! reset, re-enrolled) and a code once used never passes again.

use super::{AuditEvent, StoreResult};
use crate::otp::Oath;
use twofold_contract::limits::{DEVICE_KIND_HOTP_TOKEN, DEVICE_KIND_TOTP_TOKEN};

/// A token to import.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub serial: String,
    /// Its seed, sealed for the token (`Keys::seal_token`).
    pub secret_sealed: Vec<u8>,
    pub oath: Oath,
    /// HOTP: the next counter value the token will show; TOTP: 0.
    pub counter: u64,
    /// "" when unknown.
    pub manufacturer: String,
    /// "" when unknown.
    pub model: String,
}

/// A token as stored.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub serial: String,
    pub kind: String,
    /// Sealed for the token (`Keys::seal_token`).
    pub secret_sealed: Vec<u8>,
    pub oath: Oath,
    /// HOTP: the next counter value expected; TOTP: 0.
    pub counter: u64,
    pub manufacturer: String,
    pub model: String,
    pub imported_at: i64,
    /// The user whose device it is.
    pub assigned_to: Option<String>,
    /// When a code of that device last passed.
    pub last_used_at: Option<i64>,
}

/// The kind of device a token with these parameters is.
pub fn token_kind(oath: &Oath) -> &'static str {
    if oath.is_counter() {
        DEVICE_KIND_HOTP_TOKEN
    } else {
        DEVICE_KIND_TOTP_TOKEN
    }
}

/// What [`TokenStore::import_tokens`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenImport {
    /// `imported` added; the serials of `skipped` were known already and left alone.
    Done { imported: u32, skipped: Vec<String> },
    /// Nothing added: the new ones would pass the most tokens kept; `room` more fit.
    Full { room: u64 },
}

/// What [`TokenStore::assign_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAssigned {
    Assigned,
    UnknownToken,
    /// It is a device of this user already.
    AssignedTo(String),
    /// The user has a device named like the serial.
    NameTaken,
    /// The user has the most devices allowed.
    Full,
}

/// What [`TokenStore::unassign_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUnassigned {
    /// The device of this user is gone.
    Unassigned(String),
    UnknownToken,
    NotAssigned,
    /// It is this user's last device: that is a reset, not an unassignment.
    Last(String),
}

/// What [`TokenStore::resync_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenResynced {
    Resynced,
    UnknownToken,
    /// A code of a later counter value passed meanwhile.
    Overtaken,
}

/// Hardware tokens; every [`Store`](super::Store) has them. Each method is one
/// transaction and appends its audit entry in it.
pub trait TokenStore: Send + Sync {
    /// Adds `tokens` (serials known already are left alone and listed) unless the store
    /// would then hold more than `max_tokens`; appends `audit`, its detail saying what was
    /// imported.
    fn import_tokens(
        &self,
        tokens: &[NewToken],
        max_tokens: u64,
        audit: &AuditEvent,
    ) -> StoreResult<TokenImport>;
    /// Every token, by serial.
    fn tokens(&self) -> StoreResult<Vec<StoredToken>>;
    /// The token `serial`.
    fn token(&self, serial: &str) -> StoreResult<Option<StoredToken>>;
    /// Makes token `serial` a device of `user` named by the serial, with its seed
    /// `secret_sealed` (sealed for the user), unless it is assigned or the user has
    /// `max_devices`; a user not enrolled is enrolled with it. Its replay watermark
    /// starts at the token's counter (HOTP) or at the step of `audit.at` (TOTP: codes
    /// shown before the assignment do not pass).
    fn assign_token(
        &self,
        serial: &str,
        user: &str,
        secret_sealed: &[u8],
        max_devices: u32,
        audit: &AuditEvent,
    ) -> StoreResult<TokenAssigned>;
    /// Removes the device that token `serial` is, unless it is its user's last; the
    /// audit entry names that user.
    fn unassign_token(&self, serial: &str, audit: &AuditEvent) -> StoreResult<TokenUnassigned>;
    /// Moves HOTP token `serial`'s counter (and its device's watermark) on to
    /// `watermark` + 1, if still below; the audit entry names its user, if any.
    fn resync_token(
        &self,
        serial: &str,
        watermark: u64,
        audit: &AuditEvent,
    ) -> StoreResult<TokenResynced>;
}

//! Hardware OATH tokens (key fobs whose seeds come from the vendor in a PSKC file): the
//! shapes of `AdminImportTokens` and `AdminTokens`.

use serde::{Deserialize, Serialize};
use zbus::Type;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::OathParams;

/// One token to import (`AdminImportTokens`): its serial, who made it, how it makes its
/// codes and its seed. The seed is wiped when the value is dropped and never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Type, Zeroize, ZeroizeOnDrop)]
pub struct TokenSeed {
    /// The serial printed on the token (valid as a device name: the token becomes a
    /// device named so; see [`crate::limits::token_serial`]).
    #[zeroize(skip)]
    pub serial: String,
    /// "" when unknown.
    #[zeroize(skip)]
    pub manufacturer: String,
    /// "" when unknown.
    #[zeroize(skip)]
    pub model: String,
    /// Algorithm, digits, period (0: HOTP) and, for HOTP, the next counter value.
    #[zeroize(skip)]
    pub oath: OathParams,
    /// The seed, base32 (RFC 4648, no padding).
    pub secret: String,
}

/// Everything but the seed.
impl std::fmt::Debug for TokenSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSeed")
            .field("serial", &self.serial)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("oath", &self.oath)
            .field("secret", &"(hidden)")
            .finish()
    }
}

/// Reply of `AdminImportTokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct TokensImported {
    /// Tokens added.
    pub imported: u32,
    /// Serials known already: left alone (their seeds and counters unchanged).
    pub skipped: Vec<String>,
}

/// One row of `AdminTokens`; never a seed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct TokenInfo {
    pub serial: String,
    /// [`crate::limits::DEVICE_KIND_HOTP_TOKEN`] or [`crate::limits::DEVICE_KIND_TOTP_TOKEN`].
    pub kind: String,
    /// "" when unknown.
    pub manufacturer: String,
    /// "" when unknown.
    pub model: String,
    pub algorithm: String,
    pub digits: u32,
    /// Seconds per step; 0 for HOTP.
    pub period: u32,
    /// HOTP: the next counter value expected from the token; TOTP: 0.
    pub counter: u64,
    /// The user whose device it is; "" when unassigned.
    pub assigned_to: String,
    /// Unix time of the import.
    pub imported_at: i64,
    /// Unix time a code of it last passed since its assignment; 0 when never.
    pub last_used: i64,
}

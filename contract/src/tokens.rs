//! Hardware OATH tokens (key fobs whose seeds come from the vendor in a PSKC file): the
//! shapes of `AdminImportTokens` and `AdminTokens`.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use zbus::{Signature, Type};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::OathParams;

/// One token to import (`AdminImportTokens`): its serial, who made it, how it makes its
/// codes and its seed. The seed is wiped when the value is dropped and never printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, Zeroize, ZeroizeOnDrop)]
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
    pub secret: Hidden<String>,
}

/// A seed: itself on the wire and to the code that uses it (through `Deref`), but
/// `"(hidden)"` to `Debug`, so that a struct holding one can derive `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hidden<T>(pub T);

impl<T> fmt::Debug for Hidden<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt("(hidden)", f)
    }
}

impl<T> Deref for Hidden<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Hidden<T> {
    fn from(seed: T) -> Self {
        Hidden(seed)
    }
}

impl From<&str> for Hidden<String> {
    fn from(seed: &str) -> Self {
        Hidden(seed.to_owned())
    }
}

impl<T: Type> Type for Hidden<T> {
    const SIGNATURE: &'static Signature = T::SIGNATURE;
}

impl<T: Zeroize> Zeroize for Hidden<T> {
    fn zeroize(&mut self) {
        self.0.zeroize();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> TokenSeed {
        TokenSeed {
            serial: "987654321".into(),
            manufacturer: "Manufacturer".into(),
            model: String::new(),
            oath: OathParams::app(),
            secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        }
    }

    #[test]
    fn debug_output_hides_the_seed() {
        let shown = format!("{:?}", seed());
        assert!(
            shown.starts_with("TokenSeed { serial: \"987654321\""),
            "{shown}"
        );
        assert!(shown.ends_with("secret: \"(hidden)\" }"), "{shown}");
        assert!(!shown.contains("GEZDGNBV"), "{shown}");
    }

    #[test]
    fn a_hidden_seed_is_the_seed_on_the_wire() {
        let seed = seed();
        let plain = (
            seed.serial.as_str(),
            seed.manufacturer.as_str(),
            seed.model.as_str(),
            &seed.oath,
            seed.secret.as_str(),
        );
        assert_eq!(
            TokenSeed::SIGNATURE,
            <(String, String, String, OathParams, String)>::SIGNATURE
        );
        let ctx = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        assert_eq!(
            &*zbus::wire::to_bytes(ctx, &seed).unwrap(),
            &*zbus::wire::to_bytes(ctx, &plain).unwrap()
        );
    }
}

//! Hardware OATH tokens (administrators only): imported from a vendor's seed file,
//! listed, assigned to a user (the token becomes one of their devices, named by its
//! serial), unassigned, and HOTP tokens resynchronised from two consecutive codes.
//! The seed is sealed for the token while it is unassigned, and a copy sealed for the
//! user is the device's.

use twofold_contract::{limits, TokenInfo, TokenSeed, TokensImported, TwofoldError};
use zeroize::Zeroizing;

use super::{internal, Service};
use crate::authz::Grant;
use crate::logging::safe;
use crate::otp::{self, Oath};
use crate::storage::tokens::{
    NewToken, StoredToken, TokenAssigned, TokenImport, TokenResynced, TokenUnassigned,
};

fn invalid(message: String) -> TwofoldError {
    TwofoldError::InvalidArgument(message)
}

fn unknown_token(serial: &str) -> TwofoldError {
    invalid(format!(
        "No token with serial {serial} was imported; `twofold admin tokens` lists them."
    ))
}

impl Service {
    /// `AdminImportTokens`: every seed checked first (one bad token refuses the call,
    /// naming it), then all added at once; known serials are left alone and listed.
    pub fn admin_import_tokens(
        &self,
        grant: &Grant,
        seeds: &[TokenSeed],
    ) -> Result<TokensImported, TwofoldError> {
        if seeds.is_empty() {
            return Err(invalid("No tokens to import.".into()));
        }
        if seeds.len() > limits::MAX_TOKENS_PER_IMPORT {
            return Err(invalid(format!(
                "At most {} tokens are imported at once; split the file.",
                limits::MAX_TOKENS_PER_IMPORT
            )));
        }
        let mut tokens: Vec<NewToken> = Vec::with_capacity(seeds.len());
        for seed in seeds {
            let token = self.new_token(seed)?;
            if tokens.iter().any(|t| t.serial == token.serial) {
                return Err(invalid(format!(
                    "Token {} is listed twice; nothing was imported.",
                    token.serial
                )));
            }
            tokens.push(token);
        }
        let event = self.event(grant, "tokens_imported");
        match self
            .store
            .import_tokens(&tokens, limits::MAX_TOKENS, &event)
            .map_err(internal)?
        {
            TokenImport::Done { imported, skipped } => {
                log::info!(
                    "uid {} imported {imported} hardware tokens ({} known already)",
                    grant.caller().uid,
                    skipped.len()
                );
                Ok(TokensImported { imported, skipped })
            }
            TokenImport::Full { room } => Err(invalid(format!(
                "twofoldd keeps at most {} tokens and has room for {room} more; nothing was \
                 imported.",
                limits::MAX_TOKENS
            ))),
        }
    }

    /// One seed, checked and sealed for its token.
    fn new_token(&self, seed: &TokenSeed) -> Result<NewToken, TwofoldError> {
        limits::token_serial(&seed.serial)?;
        let serial = &seed.serial;
        let refused = |why: &dyn std::fmt::Display| invalid(format!("Token {serial}: {why}."));
        limits::token_label("manufacturer", &seed.manufacturer).map_err(|e| refused(&e))?;
        limits::token_label("model", &seed.model).map_err(|e| refused(&e))?;
        let oath = Oath::imported(&seed.oath).map_err(|e| refused(&e))?;
        limits::imported_secret(&seed.secret).map_err(|e| refused(&e))?;
        let secret = otp::from_base32(&seed.secret)
            .ok_or_else(|| refused(&"the seed is not valid base32"))?;
        if secret.len() < otp::MIN_SECRET_LEN {
            return Err(refused(&format_args!(
                "the seed has fewer than {} bits (RFC 4226)",
                otp::MIN_SECRET_LEN * 8
            )));
        }
        let counter = if oath.is_counter() {
            seed.oath.counter
        } else {
            0
        };
        Ok(NewToken {
            serial: serial.clone(),
            secret_sealed: self.keys.seal_token(serial, &secret),
            oath,
            counter,
            manufacturer: seed.manufacturer.clone(),
            model: seed.model.clone(),
        })
    }

    /// `AdminTokens`: every token, whose device it is, never a seed.
    pub fn admin_tokens(&self, _grant: &Grant) -> Result<Vec<TokenInfo>, TwofoldError> {
        let tokens = self.store.tokens().map_err(internal)?;
        Ok(tokens
            .into_iter()
            .map(|t| TokenInfo {
                algorithm: t.oath.hash.name().into(),
                digits: t.oath.digits,
                period: t.oath.period() as u32,
                serial: t.serial,
                kind: t.kind,
                manufacturer: t.manufacturer,
                model: t.model,
                counter: t.counter,
                assigned_to: t.assigned_to.unwrap_or_default(),
                imported_at: t.imported_at,
                last_used: t.last_used_at.unwrap_or(0),
            })
            .collect())
    }

    /// The token `serial` and its seed.
    fn token_and_seed(
        &self,
        serial: &str,
    ) -> Result<(StoredToken, Zeroizing<Vec<u8>>), TwofoldError> {
        limits::token_serial(serial)?;
        let token = self
            .store
            .token(serial)
            .map_err(internal)?
            .ok_or_else(|| unknown_token(serial))?;
        let seed = self
            .keys
            .open_token(serial, &token.secret_sealed)
            .map_err(|e| {
                log::error!("cannot open the seed of token {serial}: {e}");
                TwofoldError::Internal("twofoldd cannot read this token's seed; see its log".into())
            })?;
        Ok((token, seed))
    }

    /// `AdminAssignToken`: token `serial` becomes a device of the grant's user, named by
    /// the serial (a user not enrolled is enrolled with it).
    pub fn admin_assign_token(&self, grant: &Grant, serial: &str) -> Result<(), TwofoldError> {
        let user = grant.user();
        let (token, seed) = self.token_and_seed(serial)?;
        if let Some(holder) = token.assigned_to {
            return Err(assigned_to(serial, &holder));
        }
        let mut event = self.event(grant, "token_assigned");
        event.detail = format!("device: {serial} ({})", token.kind);
        let sealed = self.keys.seal(user, &seed);
        drop(seed);
        match self
            .store
            .assign_token(serial, user, &sealed, limits::MAX_DEVICES, &event)
            .map_err(internal)?
        {
            TokenAssigned::Assigned => {
                log::info!(
                    "uid {} assigned token {serial} to {}",
                    grant.caller().uid,
                    safe(user)
                );
                Ok(())
            }
            TokenAssigned::UnknownToken => Err(unknown_token(serial)),
            TokenAssigned::AssignedTo(holder) => Err(assigned_to(serial, &holder)),
            TokenAssigned::NameTaken => Err(invalid(format!(
                "{user} has a device named {serial} already; remove it first \
                 (`twofold devices remove {serial} --user {user}`)."
            ))),
            TokenAssigned::Full => Err(invalid(format!(
                "{user} has {} devices, the most allowed; remove one first.",
                limits::MAX_DEVICES
            ))),
        }
    }

    /// `AdminUnassignToken`: the device that token `serial` is goes (its counter stays
    /// with the token); the user it was assigned to.
    pub fn admin_unassign_token(
        &self,
        grant: &Grant,
        serial: &str,
    ) -> Result<String, TwofoldError> {
        limits::token_serial(serial)?;
        let mut event = self.event(grant, "token_unassigned");
        event.detail = format!("device: {serial}");
        match self
            .store
            .unassign_token(serial, &event)
            .map_err(internal)?
        {
            TokenUnassigned::Unassigned(user) => {
                log::info!(
                    "uid {} unassigned token {serial} from {}",
                    grant.caller().uid,
                    safe(&user)
                );
                Ok(user)
            }
            TokenUnassigned::UnknownToken => Err(unknown_token(serial)),
            TokenUnassigned::NotAssigned => Err(invalid(format!(
                "Token {serial} is not assigned to anyone."
            ))),
            TokenUnassigned::Last(user) => Err(invalid(format!(
                "Token {serial} is the only device of {user}: unassigning it would turn their \
                 two-factor authentication off. To do that, run `twofold admin reset {user}`."
            ))),
        }
    }

    /// `AdminResyncToken`: an HOTP token pressed far ahead is found again from two
    /// consecutive codes (RFC 4226 §7.4), searched among the next
    /// [`limits::HOTP_RESYNC_SPAN`] counter values; the counter value of its next code.
    pub fn admin_resync_token(
        &self,
        grant: &Grant,
        serial: &str,
        first: &str,
        second: &str,
    ) -> Result<u64, TwofoldError> {
        limits::bounded("the first code", first, limits::MAX_CODE_LEN)?;
        limits::bounded("the second code", second, limits::MAX_CODE_LEN)?;
        let (token, seed) = self.token_and_seed(serial)?;
        let oath = token.oath;
        if !oath.is_counter() {
            return Err(invalid(format!(
                "Token {serial} is a TOTP token: it follows the clock; there is nothing to \
                 resync."
            )));
        }
        let (first, second) = (first.trim(), second.trim());
        if !oath.fits(first) || !oath.fits(second) {
            return Err(invalid(format!(
                "The codes of token {serial} have {} digits.",
                oath.digits
            )));
        }
        let used_up_to = token.counter.checked_sub(1);
        let found = oath.resync(&seed, first, second, used_up_to, limits::HOTP_RESYNC_SPAN);
        drop(seed);
        let user = token.assigned_to.unwrap_or_default();
        let Some(watermark) = found else {
            let mut event = self.event(grant, "token_resync_failed");
            event.user = user;
            event.detail = format!("device: {serial}");
            self.store.append_audit(&event).map_err(internal)?;
            return Err(TwofoldError::InvalidCode(format!(
                "These are not two consecutive codes of token {serial} within the next {} \
                 presses; press its button twice more and give the two new codes.",
                limits::HOTP_RESYNC_SPAN
            )));
        };
        let mut event = self.event(grant, "token_resynced");
        event.detail = format!(
            "device: {serial}, counter {} -> {}",
            token.counter,
            watermark + 1
        );
        match self
            .store
            .resync_token(serial, watermark, &event)
            .map_err(internal)?
        {
            TokenResynced::Resynced => {
                log::info!(
                    "uid {} resynchronised token {serial}: next counter {}",
                    grant.caller().uid,
                    watermark + 1
                );
                Ok(watermark + 1)
            }
            TokenResynced::UnknownToken => Err(unknown_token(serial)),
            TokenResynced::Overtaken => Err(invalid(format!(
                "A later code of token {serial} passed meanwhile: it is in step already."
            ))),
        }
    }
}

fn assigned_to(serial: &str, holder: &str) -> TwofoldError {
    invalid(format!(
        "Token {serial} is assigned to {holder}; unassign it first \
         (`twofold admin tokens unassign {serial}`)."
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use twofold_contract::{limits, method, OathParams, TokenSeed, TwofoldError};

    use super::super::tests::service;
    use super::super::Service;
    use crate::authz::Grant;
    use crate::otp::{self, Oath};

    /// RFC 4226's seed, base32.
    const RFC4226: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn seed(serial: &str, algorithm: &str, digits: u32, period: u32, secret: &str) -> TokenSeed {
        TokenSeed {
            serial: serial.into(),
            manufacturer: "Vendor".into(),
            model: String::new(),
            oath: OathParams {
                algorithm: algorithm.into(),
                digits,
                period,
                counter: 0,
            },
            secret: secret.into(),
        }
    }

    fn everyone() -> Grant {
        Grant::in_process_root("")
    }

    fn refusal(svc: &Service, seeds: &[TokenSeed]) -> String {
        match svc.admin_import_tokens(&everyone(), seeds) {
            Err(TwofoldError::InvalidArgument(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn imports_are_checked_whole_at_the_door() {
        let svc = service();
        let good = seed("T1", "SHA1", 6, 0, RFC4226);
        assert_eq!(refusal(&svc, &[]), "No tokens to import.");
        let too_many = vec![good.clone(); limits::MAX_TOKENS_PER_IMPORT + 1];
        assert!(refusal(&svc, &too_many).contains("split the file"));
        for (bad, says) in [
            (seed("a b", "SHA1", 6, 0, RFC4226), "a token serial is"),
            (
                seed("T2", "MD5", 6, 0, RFC4226),
                "Token T2: unsupported OATH algorithm",
            ),
            (
                seed("T2", "SHA1", 7, 0, RFC4226),
                "Token T2: codes have 6 or 8 digits",
            ),
            (
                seed("T2", "SHA1", 6, 45, RFC4226),
                "Token T2: TOTP steps are 30 or 60",
            ),
            (
                seed("T2", "SHA1", 6, 0, "GEZDGNBVGY3TQOJ1"),
                "Token T2: an imported secret",
            ),
            (
                seed("T2", "SHA1", 6, 0, "GEZDGNBVGY3TQOJQGE"),
                "Token T2: the seed has fewer",
            ),
        ] {
            let said = refusal(&svc, &[good.clone(), bad]);
            assert!(said.starts_with(says), "{said}");
        }
        let said = refusal(&svc, &[good.clone(), good.clone()]);
        assert_eq!(said, "Token T1 is listed twice; nothing was imported.");
        assert!(svc.admin_tokens(&everyone()).unwrap().is_empty(), "nothing");
        let done = svc.admin_import_tokens(&everyone(), &[good]).unwrap();
        assert_eq!((done.imported, done.skipped.len()), (1, 0));
    }

    #[test]
    fn an_assigned_tokens_codes_pass_and_resync_finds_it_again() {
        let svc = service();
        let hotp = seed("FOB", "SHA1", 6, 0, RFC4226);
        let clock = seed("CLOCK", "SHA512", 8, 60, RFC4226);
        svc.admin_import_tokens(&everyone(), &[hotp, clock])
            .unwrap();
        let info = svc.admin_tokens(&everyone()).unwrap();
        assert_eq!(
            info.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>(),
            [
                limits::DEVICE_KIND_TOTP_TOKEN,
                limits::DEVICE_KIND_HOTP_TOKEN
            ]
        );
        let alice = Grant::in_process_root("alice");
        svc.admin_assign_token(&alice, "FOB").unwrap();
        let again = svc.admin_assign_token(&Grant::in_process_root("bob"), "FOB");
        assert!(
            matches!(&again, Err(TwofoldError::InvalidArgument(m)) if m.contains("assigned to alice")),
            "{again:?}"
        );
        let secret = otp::from_base32(RFC4226).unwrap();
        let hotp = Oath::new("SHA1", 6, 0).unwrap();
        let code = |n: u64| hotp.code(&secret, n).unwrap().to_string();
        let ctx = HashMap::new();
        let verified = svc.verify(&alice, &code(0), &ctx).unwrap();
        assert_eq!(verified.method, method::HOTP);
        assert!(svc.verify(&alice, &code(0), &ctx).is_err(), "used");
        // TOTP tokens have nothing to resync; an HOTP token is found 50 ahead.
        let totp = svc.admin_resync_token(&everyone(), "CLOCK", "12345678", "12345678");
        assert!(
            matches!(&totp, Err(TwofoldError::InvalidArgument(m)) if m.contains("follows the clock")),
            "{totp:?}"
        );
        let short = svc.admin_resync_token(&everyone(), "FOB", "1234", "5678");
        assert!(matches!(short, Err(TwofoldError::InvalidArgument(_))));
        let wrong = svc.admin_resync_token(&everyone(), "FOB", &code(51), &code(50));
        assert!(
            matches!(wrong, Err(TwofoldError::InvalidCode(_))),
            "{wrong:?}"
        );
        let next = svc
            .admin_resync_token(&everyone(), "FOB", &code(50), &code(51))
            .unwrap();
        assert_eq!(next, 52);
        assert!(svc.verify(&alice, &code(51), &ctx).is_err());
        assert!(svc.verify(&alice, &code(52), &ctx).is_ok());
        // Alice's only device: a reset, not an unassignment.
        let last = svc.admin_unassign_token(&everyone(), "FOB");
        assert!(
            matches!(&last, Err(TwofoldError::InvalidArgument(m)) if m.contains("twofold admin reset alice")),
            "{last:?}"
        );
    }
}

//! One-time passwords: TOTP (RFC 6238) and HOTP (RFC 4226). Authenticator apps use
//! TOTP with SHA-1, 6 digits and 30-second steps ([`Oath::APP`]); hardware tokens may
//! use SHA-256/SHA-512, 8 digits, 60-second steps, or a counter instead of the clock.

use totp_rs::{Algorithm, Builder};
use twofold_contract::limits::{self, Invalid};
use twofold_contract::OathParams;
use zeroize::Zeroizing;

/// Length of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Seconds per step of the clock that the replay fence counts in (and apps use).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code of an app.
pub const DIGITS: usize = 6;

/// The HMAC hash of a device's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    /// As stored, sent and written in otpauth URIs (`SHA1`, …).
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA1",
            Hash::Sha256 => "SHA256",
            Hash::Sha512 => "SHA512",
        }
    }

    fn parse(name: &str) -> Option<Hash> {
        [Hash::Sha1, Hash::Sha256, Hash::Sha512]
            .into_iter()
            .find(|h| h.name() == name)
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Hash::Sha1 => Algorithm::SHA1,
            Hash::Sha256 => Algorithm::SHA256,
            Hash::Sha512 => Algorithm::SHA512,
        }
    }
}

/// What moves a device's codes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moving {
    /// The clock, in steps of this many seconds (TOTP).
    Time { period: u64 },
    /// A counter that the device's button moves (HOTP).
    Counter,
}

/// How a device makes its codes. A device's watermark (`last_step`) is in its own units:
/// its time steps, or its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oath {
    pub hash: Hash,
    pub digits: u32,
    pub moving: Moving,
}

impl Oath {
    /// What every authenticator app does.
    pub const APP: Oath = Oath {
        hash: Hash::Sha1,
        digits: DIGITS as u32,
        moving: Moving::Time {
            period: STEP_SECONDS,
        },
    };

    /// From its stored or sent form (`period` 0: a counter); checked by
    /// [`limits::oath_params`].
    pub fn new(algorithm: &str, digits: u32, period: u64) -> Result<Oath, Invalid> {
        limits::oath_params(algorithm, digits, period)?;
        let hash = Hash::parse(algorithm).ok_or_else(|| Invalid(algorithm.into()))?;
        let moving = match period {
            0 => Moving::Counter,
            period => Moving::Time { period },
        };
        Ok(Oath {
            hash,
            digits,
            moving,
        })
    }

    /// From the contract's form.
    pub fn from_params(params: &OathParams) -> Result<Oath, Invalid> {
        Oath::new(&params.algorithm, params.digits, u64::from(params.period))
    }

    /// The parameters of an enrollment or an added device: an app's kind of
    /// parameters ([`limits::enrollment_oath`]).
    pub fn enrolled(params: &OathParams) -> Result<Oath, Invalid> {
        limits::enrollment_oath(params)?;
        Oath::from_params(params)
    }

    /// The parameters of an imported device or token ([`limits::imported_oath`]).
    pub fn imported(params: &OathParams) -> Result<Oath, Invalid> {
        limits::imported_oath(params)?;
        Oath::from_params(params)
    }

    /// Seconds per step; 0 for a counter (as stored).
    pub fn period(&self) -> u64 {
        match self.moving {
            Moving::Time { period } => period,
            Moving::Counter => 0,
        }
    }

    /// Counter-based (HOTP).
    pub fn is_counter(&self) -> bool {
        self.moving == Moving::Counter
    }

    /// True when `code` has the shape of this device's codes.
    pub fn fits(&self, code: &str) -> bool {
        code.len() == self.digits as usize && code.bytes().all(|b| b.is_ascii_digit())
    }

    /// The device's step at `unix_time` (TOTP); None for a counter.
    pub fn step_at(&self, unix_time: u64) -> Option<u64> {
        match self.moving {
            Moving::Time { period } => Some(unix_time / period),
            Moving::Counter => None,
        }
    }

    /// The 30-second step of the clock in which the device's `step` ends: what the
    /// replay fence and the durable reservation count in (TOTP only).
    pub fn clock_step(&self, step: u64) -> u64 {
        match self.moving {
            Moving::Time { period } => ((step + 1) * period - 1) / STEP_SECONDS,
            Moving::Counter => step,
        }
    }

    /// The device's highest step that the replay fence `fence` (30-second steps, see
    /// `Store::replay_fence`) covers: every step beginning at or before the fence's end.
    pub fn fenced_up_to(&self, fence: u64) -> Option<u64> {
        match self.moving {
            Moving::Time { period } => Some(((fence + 1) * STEP_SECONDS - 1) / period),
            Moving::Counter => None,
        }
    }

    fn generator(&self, secret: &[u8]) -> Option<totp_rs::Totp> {
        Builder::new()
            .with_algorithm(self.hash.algorithm())
            .with_digits(self.digits as u8)
            .with_skew(0)
            // A counter is a clock of one-second steps.
            .with_step_duration(self.period().max(1))
            .with_secret(secret)
            .build()
            .ok()
    }

    /// The code of `step` (TOTP) or counter value (HOTP); None when the secret is
    /// unusable (shorter than 128 bits).
    pub fn code(&self, secret: &[u8], step: u64) -> Option<Zeroizing<String>> {
        let generator = self.generator(secret)?;
        Some(Zeroizing::new(
            generator.generate(step * self.period().max(1)).to_string(),
        ))
    }

    /// Finds the step (TOTP: within `window` steps of the clock at `now`) or counter
    /// value (HOTP: among the `window` after the last one used) whose code is `code` and
    /// that is later than `used_up_to`: a step or counter value, once accepted, never is
    /// again (RFC 6238 §5.2, RFC 4226 §7.2). Every candidate is computed and compared in
    /// constant time (totp-rs compares with `constant_time_eq`), matched or not, so
    /// timing says nothing about which.
    pub fn matching(
        &self,
        secret: &[u8],
        code: &str,
        now: u64,
        window: u64,
        used_up_to: Option<u64>,
    ) -> Option<u64> {
        let generator = self.generator(secret)?;
        let (first, last) = match self.moving {
            Moving::Time { period } => {
                let now_step = now / period;
                (now_step.saturating_sub(window), now_step + window)
            }
            Moving::Counter => {
                let next = used_up_to.map_or(0, |used| used + 1);
                (next, next + window.max(1) - 1)
            }
        };
        let unit = self.period().max(1);
        let mut found = None;
        for step in first..=last {
            let fresh = used_up_to.is_none_or(|used| step > used);
            if generator.check(code, step * unit).is_some() && fresh && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// HOTP resynchronisation (RFC 4226 §7.4): the counter value of `second` when
    /// `first` and `second` are the codes of two consecutive counter values among the
    /// `span` after `used_up_to`.
    pub fn resync(
        &self,
        secret: &[u8],
        first: &str,
        second: &str,
        used_up_to: Option<u64>,
        span: u64,
    ) -> Option<u64> {
        let generator = self.generator(secret)?;
        let next = used_up_to.map_or(0, |used| used + 1);
        let mut found = None;
        let mut previous_matched = false;
        for counter in next..next + span + 1 {
            let matched = generator.check(second, counter).is_some();
            if matched && previous_matched && found.is_none() {
                found = Some(counter);
            }
            previous_matched = generator.check(first, counter).is_some();
        }
        found
    }

    /// The contract's form.
    pub fn params(&self, counter: u64) -> OathParams {
        OathParams {
            algorithm: self.hash.name().into(),
            digits: self.digits,
            period: self.period() as u32,
            counter,
        }
    }
}

/// A fresh random secret.
pub fn new_secret() -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
    crate::secrets::os_random(&mut secret);
    secret
}

/// Base32 (RFC 4648, no padding), as authenticator apps take it.
pub fn to_base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret))
}

/// Bytes of the shortest secret accepted (128 bits, RFC 4226 §4 R6; totp-rs refuses
/// shorter ones).
pub const MIN_SECRET_LEN: usize = 16;

/// The secret that `text` (base32, either case, without padding) encodes; None when it
/// is not base32. Unused low bits of the last symbol are ignored, as other TOTP
/// implementations do (google-authenticator's own decoder among them).
pub fn from_base32(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut spec = data_encoding::BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    let lenient = spec.encoding().ok()?;
    let upper = Zeroizing::new(text.to_ascii_uppercase());
    lenient.decode(upper.as_bytes()).ok().map(Zeroizing::new)
}

/// The 30-second step that `unix_time` falls in (an app's step; the fence's unit).
pub fn step_at(unix_time: u64) -> u64 {
    unix_time / STEP_SECONDS
}

/// True when `code` has the shape of a code of some device: 6 or 8 ASCII digits.
pub fn looks_like_otp(code: &str) -> bool {
    limits::OATH_DIGITS.contains(&(code.len() as u32)) && code.bytes().all(|b| b.is_ascii_digit())
}

/// True when `code` looks like an app's code (exactly six ASCII digits).
pub fn looks_like_totp(code: &str) -> bool {
    Oath::APP.fits(code)
}

/// An app's step within `window` steps of `now_step` whose code is `code` (see
/// [`Oath::matching`]).
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now_step: u64,
    window: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    Oath::APP.matching(
        secret,
        code,
        now_step * STEP_SECONDS,
        window,
        last_used_step,
    )
}

/// The `otpauth://` URI that authenticator apps scan. It names the algorithm, digits and
/// period: an app's defaults unless the administrator asked for others (which some
/// apps ignore, and then show wrong codes: the CLI warns).
pub fn otpauth_uri(issuer: &str, user: &str, secret_base32: &str, oath: &Oath) -> String {
    let label = format!("{}:{}", encode(issuer), encode(user));
    format!(
        "otpauth://totp/{label}?secret={secret_base32}&issuer={}&algorithm={}&digits={}&period={}",
        encode(issuer),
        oath.hash.name(),
        oath.digits,
        oath.period()
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B, SHA1 secret "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        // T = 59 s -> 94287082 (8 digits); the 6-digit code is its last six digits.
        assert_eq!(
            matching_step(RFC_SECRET, "287082", step_at(59), 0, None),
            Some(1)
        );
        // T = 1111111109 -> 07081804
        let step = step_at(1_111_111_109);
        assert_eq!(
            matching_step(RFC_SECRET, "081804", step, 0, None),
            Some(step)
        );
        assert_eq!(matching_step(RFC_SECRET, "081805", step, 1, None), None);
    }

    #[test]
    fn window_and_replay() {
        let step = step_at(1_111_111_109);
        // The code of `step` is accepted one step later with window 1, not with window 0.
        assert_eq!(
            matching_step(RFC_SECRET, "081804", step + 1, 1, None),
            Some(step)
        );
        assert_eq!(matching_step(RFC_SECRET, "081804", step + 1, 0, None), None);
        // Once `step` was used, neither it nor an earlier step is accepted again.
        assert_eq!(
            matching_step(RFC_SECRET, "081804", step, 1, Some(step)),
            None
        );
        assert_eq!(
            matching_step(RFC_SECRET, "081804", step, 1, Some(step + 1)),
            None
        );
        assert_eq!(
            matching_step(RFC_SECRET, "081804", step, 1, Some(step - 1)),
            Some(step)
        );
    }

    /// RFC 4226 Appendix D: HOTP values of counters 0 to 9 (SHA-1, 6 digits).
    const RFC4226_CODES: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    fn hotp() -> Oath {
        Oath::new("SHA1", 6, 0).unwrap()
    }

    #[test]
    fn rfc4226_vectors() {
        for (counter, code) in RFC4226_CODES.iter().enumerate() {
            assert_eq!(*hotp().code(RFC_SECRET, counter as u64).unwrap(), *code);
        }
        // Counter 0 is expected first; each value passes once, in order.
        let mut used = None;
        for (counter, code) in RFC4226_CODES.iter().enumerate() {
            let found = hotp().matching(RFC_SECRET, code, 0, 3, used);
            assert_eq!(found, Some(counter as u64));
            assert_eq!(
                hotp().matching(RFC_SECRET, code, 0, 3, found),
                None,
                "replay"
            );
            used = found;
        }
    }

    #[test]
    fn hotp_looks_ahead_a_window_and_never_back() {
        // Counter 5 is within a window of 10 after counter 0 was used, not of 3.
        assert_eq!(
            hotp().matching(RFC_SECRET, RFC4226_CODES[5], 0, 10, Some(0)),
            Some(5)
        );
        assert_eq!(
            hotp().matching(RFC_SECRET, RFC4226_CODES[5], 0, 3, Some(0)),
            None
        );
        // A code below the counter is refused.
        assert_eq!(
            hotp().matching(RFC_SECRET, RFC4226_CODES[2], 0, 10, Some(4)),
            None
        );
    }

    #[test]
    fn hotp_resync_needs_two_consecutive_codes() {
        let (first, second) = (RFC4226_CODES[7], RFC4226_CODES[8]);
        assert_eq!(
            hotp().resync(RFC_SECRET, first, second, Some(0), 100),
            Some(8)
        );
        // Not consecutive, or out of order: nothing.
        assert_eq!(
            hotp().resync(RFC_SECRET, RFC4226_CODES[6], second, Some(0), 100),
            None
        );
        assert_eq!(hotp().resync(RFC_SECRET, second, first, Some(0), 100), None);
        // At or below the counter: nothing.
        assert_eq!(hotp().resync(RFC_SECRET, first, second, Some(8), 100), None);
        // Beyond the span: nothing.
        assert_eq!(hotp().resync(RFC_SECRET, first, second, None, 5), None);
    }

    /// RFC 6238 Appendix B: 8-digit codes of SHA-1, SHA-256 and SHA-512 (each hash's own
    /// seed) at the Appendix's times.
    #[test]
    fn rfc6238_vectors_of_every_hash() {
        let sha1: &[u8] = b"12345678901234567890";
        let sha256: &[u8] = b"12345678901234567890123456789012";
        let sha512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
        let table: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1_111_111_109, ["07081804", "68084774", "25091201"]),
            (1_111_111_111, ["14050471", "67062674", "99943326"]),
            (1_234_567_890, ["89005924", "91819424", "93441116"]),
            (2_000_000_000, ["69279037", "90698825", "38618901"]),
            (20_000_000_000, ["65353130", "77737706", "47863826"]),
        ];
        for (time, codes) in table {
            for ((name, seed), code) in [("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)]
                .into_iter()
                .zip(codes)
            {
                let oath = Oath::new(name, 8, 30).unwrap();
                let step = oath.step_at(time).unwrap();
                assert_eq!(*oath.code(seed, step).unwrap(), code, "{name} at {time}");
                assert_eq!(oath.matching(seed, code, time, 0, None), Some(step));
                assert_eq!(oath.matching(seed, code, time, 0, Some(step)), None);
            }
        }
    }

    #[test]
    fn sixty_second_steps_count_in_their_own_units_and_meet_the_fence() {
        let oath = Oath::new("SHA1", 6, 60).unwrap();
        let step = oath.step_at(1_111_111_109).unwrap();
        let code = oath.code(RFC_SECRET, step).unwrap();
        assert_eq!(
            oath.matching(RFC_SECRET, &code, 1_111_111_109, 0, None),
            Some(step)
        );
        // Its step ends in the second of the two 30-second steps it spans.
        assert_eq!(oath.clock_step(step), 2 * step + 1);
        // A fence over either 30-second half covers the step; one just before it does not.
        assert_eq!(oath.fenced_up_to(2 * step), Some(step));
        assert_eq!(oath.fenced_up_to(2 * step + 1), Some(step));
        assert_eq!(oath.fenced_up_to(2 * step - 1), Some(step - 1));
        assert_eq!(Oath::APP.fenced_up_to(77), Some(77));
        assert_eq!(Oath::APP.clock_step(77), 77);
        assert_eq!(hotp().fenced_up_to(77), None);
    }

    #[test]
    fn parameters_outside_the_supported_set_are_refused() {
        assert!(Oath::new("MD5", 6, 30).is_err());
        assert!(Oath::new("SHA1", 7, 30).is_err());
        assert!(Oath::new("SHA1", 6, 45).is_err());
        assert_eq!(Oath::new("SHA1", 6, 30).unwrap(), Oath::APP);
        let params = Oath::new("SHA512", 8, 60).unwrap().params(0);
        assert_eq!(Oath::from_params(&params).unwrap().params(0), params);
    }

    #[test]
    fn uri_is_what_apps_expect() {
        let uri = otpauth_uri("My Host", "al ice", "JBSWY3DPEHPK3PXP", &Oath::APP);
        assert_eq!(
            uri,
            "otpauth://totp/My%20Host:al%20ice?secret=JBSWY3DPEHPK3PXP&issuer=My%20Host&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn shapes() {
        assert!(looks_like_totp("012345"));
        assert!(!looks_like_totp("01234"));
        assert!(!looks_like_totp("01234a"));
        assert!(!looks_like_totp("０１２３４５"));
        assert!(looks_like_otp("01234567"));
        assert!(!looks_like_otp("0123456"));
        assert_eq!(to_base32(&new_secret()).len(), 32);
        let secret = new_secret();
        assert_eq!(*from_base32(&to_base32(&secret)).unwrap(), *secret);
        assert_eq!(
            *from_base32(&to_base32(&secret).to_ascii_lowercase()).unwrap(),
            *secret
        );
        // 26 symbols carry 130 bits: the last two are ignored.
        assert_eq!(from_base32(&"A".repeat(26)).unwrap().len(), 16);
        assert_eq!(from_base32("AAAAAAAAAAAAAAAAAAAAAAAAAB").unwrap().len(), 16);
        assert!(from_base32("not base32!").is_none());
    }
}

//! TOTP (RFC 6238): SHA1, 6 digits, 30-second steps, as every authenticator app expects.

use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

/// Length of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;

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

/// The time step that `unix_time` falls in.
pub fn step_at(unix_time: u64) -> u64 {
    unix_time / STEP_SECONDS
}

/// True when `code` looks like a TOTP code (exactly six ASCII digits).
pub fn looks_like_totp(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// Finds the step within `window` steps of `now_step` whose code is `code` and that is
/// later than `last_used_step` (a step, once accepted, never is again: RFC 6238 §5.2).
/// The comparison is constant-time (totp-rs compares tokens with `constant_time_eq`).
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now_step: u64,
    window: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(0)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .build()
        .ok()?;
    let first = now_step.saturating_sub(window);
    let mut found = None;
    // Every candidate is computed, matched or not, so timing says nothing about which.
    for step in first..=now_step + window {
        let fresh = last_used_step.is_none_or(|last| step > last);
        if totp.check(code, step * STEP_SECONDS).is_some() && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI that authenticator apps scan.
pub fn otpauth_uri(issuer: &str, user: &str, secret_base32: &str) -> String {
    let label = format!("{}:{}", encode(issuer), encode(user));
    format!(
        "otpauth://totp/{label}?secret={secret_base32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        encode(issuer)
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

    #[test]
    fn uri_is_what_apps_expect() {
        let uri = otpauth_uri("My Host", "al ice", "JBSWY3DPEHPK3PXP");
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

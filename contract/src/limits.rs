//! Every bound that two programs share, and the validators that apply them, once.
//!
//! The daemon checks every value a caller sends against these at its door; the CLI and
//! the PAM module check the same values before sending, so that a person gets the same
//! one-line answer wherever the check happens.

use std::collections::HashMap;
use std::fmt;

use crate::context;

/// Longest code (TOTP or backup code, with any formatting) the daemon looks at.
pub const MAX_CODE_LEN: usize = 256;
/// Longest user name accepted (Linux `LOGIN_NAME_MAX`).
pub const MAX_USER_LEN: usize = 256;
/// Longest value of a login context entry (service, tty, rhost, ruser, pid).
pub const MAX_CONTEXT_VALUE_LEN: usize = 256;
/// Most entries a login context may carry (the keys of [`context`] are fewer).
pub const MAX_CONTEXT_ENTRIES: usize = 8;
/// Longest issuer name shown in authenticator apps (`otpauth://` URI).
pub const MAX_ISSUER_LEN: usize = 64;
/// Longest reason of an administrator's reset (it goes into the audit trail).
pub const MAX_REASON_LEN: usize = 500;
/// Longest validity of an administrator's one-time bypass code, in hours (30 days).
pub const MAX_BYPASS_HOURS: u32 = 720;
/// Most audit entries one `AuditLog` call returns.
pub const MAX_AUDIT_LIMIT: u32 = 100_000;
/// Longest session timeout a user may set, in seconds (366 days).
pub const MAX_SESSION_TIMEOUT: u64 = 366 * 86_400;
/// How long before a session timeout twofoldd writes its warning on the session's
/// terminal, in seconds (the CLI says so when a timeout is set).
pub const SESSION_TIMEOUT_WARNING: i64 = 60;
/// Longest session id (ids are ASCII letters and digits).
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Longest account password `Disable` passes on to PAM.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Fewest and most base32 characters of an imported secret (80 to 640 bits; the
/// padding `=` and spaces are not counted).
pub const MIN_IMPORTED_SECRET_LEN: usize = 16;
/// See [`MIN_IMPORTED_SECRET_LEN`].
pub const MAX_IMPORTED_SECRET_LEN: usize = 128;
/// Most backup codes one import may bring (google-authenticator writes at most 10).
pub const MAX_IMPORTED_BACKUP_CODES: usize = 10;
/// Longest imported backup code.
pub const MAX_IMPORTED_BACKUP_CODE_LEN: usize = 20;
/// Largest pam_oath usersfile imported, in bytes (some 10,000 users' lines).
pub const MAX_OATH_USERSFILE_LEN: u64 = 1 << 20;
/// Largest PSKC file (RFC 6030: a token vendor's seeds) imported, in bytes: some
/// thousand encrypted keys, or several thousand plain ones.
pub const MAX_PSKC_FILE_LEN: u64 = 1 << 20;
/// Where an imported secret may come from (named in the audit trail).
pub const IMPORT_SOURCES: &[&str] = &["google-authenticator", "pam_oath"];
/// Longest device name (bytes; names are ASCII).
pub const MAX_DEVICE_NAME_LEN: usize = 32;
/// Most devices (authenticators) one user may have.
pub const MAX_DEVICES: u32 = 8;
/// The name of the device an enrollment makes (and that a user enrolled before devices
/// existed has).
pub const FIRST_DEVICE: &str = "default";
/// The kind of a device that is a TOTP app.
pub const DEVICE_KIND_TOTP_APP: &str = "totp app";
/// The kind of a device that is a hardware TOTP token.
pub const DEVICE_KIND_TOTP_TOKEN: &str = "totp token";
/// The kind of a device that is a hardware HOTP (counter) token.
pub const DEVICE_KIND_HOTP_TOKEN: &str = "hotp token";
/// HMAC hashes of OATH codes (RFC 6238 §1.2), as otpauth URIs and PSKC name them.
pub const OATH_ALGORITHMS: &[&str] = &["SHA1", "SHA256", "SHA512"];
/// Digits per OATH code.
pub const OATH_DIGITS: &[u32] = &[6, 8];
/// Seconds per TOTP step (0 in an [`crate::OathParams`]: an HOTP counter).
pub const TOTP_PERIODS: &[u64] = &[30, 60];
/// Counter values an HOTP code is looked for after the last one used (a button pressed
/// this many times without a login still works). Each is a code an attacker's guess may
/// hit, so it is small (privacyIDEA's default); a token pressed further ahead is
/// resynchronised by an administrator.
pub const HOTP_LOOK_AHEAD: u64 = 10;
/// Counter values searched by a resynchronisation from two consecutive codes.
pub const HOTP_RESYNC_SPAN: u64 = 10_000;

// ---- hardware OATH tokens

/// Most hardware tokens the daemon keeps (imported, assigned or not).
pub const MAX_TOKENS: u64 = 100_000;
/// Most tokens one `AdminImportTokens` call brings (a PSKC file holds at most as many).
pub const MAX_TOKENS_PER_IMPORT: usize = 10_000;
/// Longest manufacturer or model name of a token (shown in listings).
pub const MAX_TOKEN_LABEL_LEN: usize = 64;

/// A value refused at the door; the text is one line for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// A user name: 1 to [`MAX_USER_LEN`] bytes, no control characters.
pub fn user_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_USER_LEN || has_control(name) {
        return Err(Invalid(format!(
            "a user name has 1 to {MAX_USER_LEN} characters and no control characters"
        )));
    }
    Ok(())
}

/// A login context: at most [`MAX_CONTEXT_ENTRIES`] entries, keys among [`context`],
/// values of at most [`MAX_CONTEXT_VALUE_LEN`] bytes without control characters.
pub fn login_context(ctx: &HashMap<String, String>) -> Result<(), Invalid> {
    if ctx.len() > MAX_CONTEXT_ENTRIES {
        return Err(Invalid(format!(
            "a login context has at most {MAX_CONTEXT_ENTRIES} entries"
        )));
    }
    for (key, value) in ctx {
        if !context::KEYS.contains(&key.as_str()) {
            return Err(Invalid(
                "a login context key is not one twofoldd knows".into(),
            ));
        }
        if value.len() > MAX_CONTEXT_VALUE_LEN || has_control(value) {
            return Err(Invalid(format!(
                "login context {key}: at most {MAX_CONTEXT_VALUE_LEN} bytes, no control characters"
            )));
        }
    }
    Ok(())
}

/// An issuer name: at most [`MAX_ISSUER_LEN`] characters, no ':' (it separates issuer
/// and account in the URI label) and no control characters.
pub fn issuer(text: &str) -> Result<(), Invalid> {
    if text.chars().count() > MAX_ISSUER_LEN || text.contains(':') || has_control(text) {
        return Err(Invalid(format!(
            "the issuer must be at most {MAX_ISSUER_LEN} characters, without ':' or control characters"
        )));
    }
    Ok(())
}

/// A reset's reason: one non-empty line of at most [`MAX_REASON_LEN`] bytes.
pub fn reason(text: &str) -> Result<(), Invalid> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_REASON_LEN || has_control(text) {
        return Err(Invalid(format!(
            "give a reason: one line, at most {MAX_REASON_LEN} bytes (it goes into the audit trail)"
        )));
    }
    Ok(())
}

/// A session id: 1 to [`MAX_SESSION_ID_LEN`] ASCII letters and digits.
pub fn session_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty()
        || id.len() > MAX_SESSION_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(Invalid(format!(
            "a session id is 1 to {MAX_SESSION_ID_LEN} letters and digits"
        )));
    }
    Ok(())
}

/// A device name: 1 to [`MAX_DEVICE_NAME_LEN`] ASCII letters, digits, '-', '_' and '.',
/// starting with a letter or digit (it is shown in listings and the audit trail, and
/// typed on command lines).
pub fn device_name(name: &str) -> Result<(), Invalid> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if name.is_empty()
        || name.len() > MAX_DEVICE_NAME_LEN
        || !name.bytes().all(allowed)
        || !name.as_bytes()[0].is_ascii_alphanumeric()
    {
        return Err(Invalid(format!(
            "a device name is 1 to {MAX_DEVICE_NAME_LEN} letters, digits, '-', '_' or '.', \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

/// How a device makes its codes: an algorithm of [`OATH_ALGORITHMS`], digits of
/// [`OATH_DIGITS`], a period of [`TOTP_PERIODS`] or 0 (a counter).
pub fn oath_params(algorithm: &str, digits: u32, period: u64) -> Result<(), Invalid> {
    if !OATH_ALGORITHMS.contains(&algorithm) {
        return Err(Invalid(format!(
            "unsupported OATH algorithm {:?} (one of SHA1, SHA256, SHA512)",
            algorithm.escape_debug().to_string()
        )));
    }
    if !OATH_DIGITS.contains(&digits) {
        return Err(Invalid(format!("codes have 6 or 8 digits, not {digits}")));
    }
    if period != 0 && !TOTP_PERIODS.contains(&period) {
        return Err(Invalid(format!(
            "TOTP steps are 30 or 60 seconds, not {period}"
        )));
    }
    Ok(())
}

/// A token's serial: the name of the device it becomes, so a valid [`device_name`].
pub fn token_serial(serial: &str) -> Result<(), Invalid> {
    device_name(serial).map_err(|_| {
        Invalid(format!(
            "a token serial is 1 to {MAX_DEVICE_NAME_LEN} letters, digits, '-', '_' or '.', \
             starting with a letter or digit (the token becomes a device named so)"
        ))
    })
}

/// A token's manufacturer or model: at most [`MAX_TOKEN_LABEL_LEN`] bytes, one line.
pub fn token_label(what: &str, text: &str) -> Result<(), Invalid> {
    if text.len() > MAX_TOKEN_LABEL_LEN || has_control(text) {
        return Err(Invalid(format!(
            "a token's {what} is at most {MAX_TOKEN_LABEL_LEN} bytes, without control characters"
        )));
    }
    Ok(())
}

/// The parameters of an enrollment or added device (an app, which counts time): as
/// [`oath_params`], with a period (counters are hardware tokens', imported) and no
/// counter.
pub fn enrollment_oath(oath: &crate::OathParams) -> Result<(), Invalid> {
    oath_params(&oath.algorithm, oath.digits, u64::from(oath.period))?;
    if oath.period == 0 {
        return Err(Invalid(
            "an authenticator app counts time: the period is 30 or 60 seconds, not 0".into(),
        ));
    }
    if oath.counter != 0 {
        return Err(Invalid("an enrollment starts without a counter (0)".into()));
    }
    Ok(())
}

/// Largest counter value (HOTP) or step (TOTP) an import may carry: far beyond any
/// token's life, and within what the database stores.
pub const MAX_OATH_COUNTER: u64 = 1 << 48;

/// The parameters of an imported device: as [`oath_params`], with a counter of at most
/// [`MAX_OATH_COUNTER`].
pub fn imported_oath(oath: &crate::OathParams) -> Result<(), Invalid> {
    oath_params(&oath.algorithm, oath.digits, u64::from(oath.period))?;
    if oath.counter > MAX_OATH_COUNTER {
        return Err(Invalid(format!(
            "the counter {} is too large (at most {MAX_OATH_COUNTER})",
            oath.counter
        )));
    }
    Ok(())
}

/// Anything else a caller sends as free text (a code, a password): bounded length.
pub fn bounded(what: &str, text: &str, max: usize) -> Result<(), Invalid> {
    if text.len() > max {
        return Err(Invalid(format!("{what} is too long (at most {max} bytes)")));
    }
    Ok(())
}

/// An imported TOTP secret: [`MIN_IMPORTED_SECRET_LEN`] to [`MAX_IMPORTED_SECRET_LEN`]
/// characters of the RFC 4648 base32 alphabet (either case), without padding.
pub fn imported_secret(secret: &str) -> Result<(), Invalid> {
    let base32 = secret
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    if !base32 || !(MIN_IMPORTED_SECRET_LEN..=MAX_IMPORTED_SECRET_LEN).contains(&secret.len()) {
        return Err(Invalid(format!(
            "an imported secret is {MIN_IMPORTED_SECRET_LEN} to {MAX_IMPORTED_SECRET_LEN} \
             base32 characters (A-Z, 2-7)"
        )));
    }
    Ok(())
}

/// Imported backup codes: at most [`MAX_IMPORTED_BACKUP_CODES`], each 1 to
/// [`MAX_IMPORTED_BACKUP_CODE_LEN`] bytes without control characters (their form is
/// the daemon's to judge).
pub fn imported_backup_codes<S: AsRef<str>>(codes: &[S]) -> Result<(), Invalid> {
    let bad = |c: &S| {
        let c = c.as_ref();
        c.is_empty() || c.len() > MAX_IMPORTED_BACKUP_CODE_LEN || has_control(c)
    };
    if codes.len() > MAX_IMPORTED_BACKUP_CODES || codes.iter().any(bad) {
        return Err(Invalid(format!(
            "at most {MAX_IMPORTED_BACKUP_CODES} imported backup codes, each 1 to \
             {MAX_IMPORTED_BACKUP_CODE_LEN} characters"
        )));
    }
    Ok(())
}

/// Where an import comes from: one of [`IMPORT_SOURCES`].
pub fn import_source(source: &str) -> Result<(), Invalid> {
    if !IMPORT_SOURCES.contains(&source) {
        return Err(Invalid(format!(
            "twofoldd imports from {} only",
            IMPORT_SOURCES.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts what `valid` makes of each case: (input, accepted).
    fn accepts<T, E>(valid: impl Fn(&str) -> Result<T, E>, cases: &[(&str, bool)]) {
        for (input, accepted) in cases {
            assert_eq!(valid(input).is_ok(), *accepted, "{input:?}");
        }
    }

    #[test]
    fn user_names() {
        accepts(
            user_name,
            &[
                ("alice", true),
                ("", false),
                ("al\nice", false),
                (&"a".repeat(MAX_USER_LEN + 1), false),
                (&"a".repeat(MAX_USER_LEN), true),
            ],
        );
    }

    #[test]
    fn contexts() {
        let ok = HashMap::from([
            (context::SERVICE.to_string(), "sshd".to_string()),
            (context::RHOST.to_string(), "203.0.113.9".to_string()),
        ]);
        assert!(login_context(&ok).is_ok());
        let long = HashMap::from([(context::RHOST.to_string(), "x".repeat(1 << 20))]);
        assert!(login_context(&long).is_err());
        let edge = HashMap::from([(
            context::RHOST.to_string(),
            "x".repeat(MAX_CONTEXT_VALUE_LEN),
        )]);
        assert!(login_context(&edge).is_ok());
        let control = HashMap::from([(context::TTY.to_string(), "pts/1\u{1b}[2J".to_string())]);
        assert!(login_context(&control).is_err());
        let unknown = HashMap::from([("evil".to_string(), String::new())]);
        assert!(login_context(&unknown).is_err());
    }

    #[test]
    fn issuers_reasons_and_ids() {
        accepts(
            issuer,
            &[
                (&"é".repeat(MAX_ISSUER_LEN), true),
                (&"x".repeat(MAX_ISSUER_LEN + 1), false),
                ("a:b", false),
            ],
        );
        accepts(
            reason,
            &[("  ", false), ("lost phone", true), ("two\nlines", false)],
        );
        accepts(session_id, &[("ab12", true), ("../x", false)]);
        assert!(bounded("the code", &"1".repeat(MAX_CODE_LEN + 1), MAX_CODE_LEN).is_err());
    }

    #[test]
    fn device_names() {
        accepts(
            device_name,
            &[
                (FIRST_DEVICE, true),
                ("phone-2_old.x", true),
                (&"a".repeat(MAX_DEVICE_NAME_LEN), true),
                (&"a".repeat(MAX_DEVICE_NAME_LEN + 1), false),
                ("", false),
                ("-rf", false),
                ("my phone", false),
                ("t\u{e9}l\u{e9}phone", false),
                ("a\nb", false),
            ],
        );
    }

    #[test]
    fn token_serials_and_labels() {
        accepts(
            token_serial,
            &[
                ("987654321", true),
                ("SN-0001_a.b", true),
                ("", false),
                ("has space", false),
                (&"1".repeat(MAX_DEVICE_NAME_LEN + 1), false),
            ],
        );
        accepts(
            |label| token_label("model", label),
            &[
                ("", true),
                (&"m".repeat(MAX_TOKEN_LABEL_LEN), true),
                (&"m".repeat(MAX_TOKEN_LABEL_LEN + 1), false),
                ("a\u{1b}[2J", false),
            ],
        );
    }

    #[test]
    fn imports() {
        accepts(
            imported_secret,
            &[
                ("JBSWY3DPEHPK3PXP", true),
                ("jbswy3dpehpk3pxp", true),
                ("JBSWY3DPEHPK3PX", false),
                ("JBSWY3DPEHPK3PX1", false),
                ("JBSWY3DPEHPK3PX=", false),
                (&"A".repeat(MAX_IMPORTED_SECRET_LEN), true),
                (&"A".repeat(MAX_IMPORTED_SECRET_LEN + 1), false),
            ],
        );
        assert!(imported_backup_codes(&["12345678"; MAX_IMPORTED_BACKUP_CODES]).is_ok());
        assert!(imported_backup_codes(&["12345678"; MAX_IMPORTED_BACKUP_CODES + 1]).is_err());
        assert!(imported_backup_codes(&[""]).is_err());
        assert!(imported_backup_codes(&["1".repeat(MAX_IMPORTED_BACKUP_CODE_LEN + 1)]).is_err());
        accepts(
            import_source,
            &[
                ("google-authenticator", true),
                ("pam_oath", true),
                ("pam_krb5", false),
            ],
        );
    }
}

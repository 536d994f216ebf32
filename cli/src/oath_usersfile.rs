//! pam_oath's usersfile (liboath's UsersFile format), read as root and parsed into what
//! twofold can take.
//!
//! One token per line, fields separated by white space:
//! `TYPE USER PIN SECRET [COUNTER [LASTOTP [TIME]]]`. TYPE is `HOTP`, `HOTP/E`,
//! `HOTP/E/{6,7,8}` (counter-based) or `HOTP/T30`, `HOTP/T60`, `HOTP/T{30,60}/{6,7,8}`
//! (time-based, with that step in seconds); PIN is `-` (none), `+` (checked by another
//! module) or a password of pam_oath's own; SECRET is hexadecimal; after a login
//! pam_oath writes the counter, the code it accepted and the local time. Lines starting
//! with `#` are comments.
//!
//! No message here ever holds a field of a line: a line with a field out of place could
//! put a secret or a PIN where a name was expected.

use twofold_contract::{limits, OathParams};
use zeroize::Zeroizing;

use crate::secret_file::{Owner, Rules};

/// How the usersfile must be: root's, 0600 or stricter, at most
/// [`limits::MAX_OATH_USERSFILE_LEN`] bytes.
pub const RULES: Rules = Rules {
    owner: Owner::Root,
    max_len: limits::MAX_OATH_USERSFILE_LEN,
    mode_rule: "a usersfile must be root's with mode 0600 or stricter",
};

/// Bytes of the shortest secret twofoldd accepts (128 bits, RFC 4226 §4 R6).
const MIN_SECRET_BYTES: usize = 16;
/// Fields of the longest line: TYPE USER PIN SECRET COUNTER LASTOTP TIME.
const MAX_FIELDS: usize = 7;
/// The user field is taken for a secret out of place from this many hex digits on.
const SECRET_LIKE_HEX_DIGITS: usize = 20;

/// One line of the file that is not a comment.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its line number, from 1.
    pub line: usize,
    /// None when the line names no user that can be shown.
    pub user: Option<String>,
    /// The token, or why it is not imported (one line, starting with "line N: ").
    pub token: Result<Token, String>,
}

/// A token twofold can take.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    /// Base32, upper case, without padding.
    pub secret: Zeroizing<String>,
    /// The last code pam_oath accepted (so that it is not accepted again), if any.
    pub last_code: Option<String>,
    /// How its codes are made; HOTP: `counter` is the line's (see [`token`]).
    pub oath: OathParams,
    /// What twofold does differently, one line each.
    pub notes: Vec<String>,
}

/// The token types of liboath: the step (None for a counter-based one) and the digits.
fn token_type(text: &str) -> Option<(Option<u32>, u32)> {
    let (step, digits) = match text {
        "HOTP" | "HOTP/E" | "HOTP/E/6" => (None, 6),
        "HOTP/E/7" => (None, 7),
        "HOTP/E/8" => (None, 8),
        _ => {
            let rest = text.strip_prefix("HOTP/T")?;
            let (step, digits) = rest.split_once('/').unwrap_or((rest, "6"));
            let step = match step {
                "30" => 30,
                "60" => 60,
                _ => return None,
            };
            let digits = match digits {
                "6" => 6,
                "7" => 7,
                "8" => 8,
                _ => return None,
            };
            (Some(step), digits)
        }
    };
    Some((step, digits))
}

/// Parses the file's text: one entry per line that is neither blank nor a comment.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(i, line)| entry(i + 1, line))
        .collect()
}

fn entry(number: usize, line: &str) -> Entry {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = |why: &str| format!("line {number}: {why}");
    let unnamed = |why: &str| Entry {
        line: number,
        user: None,
        token: Err(at(why)),
    };
    let Some(kind) = token_type(fields[0]) else {
        return unnamed("not a pam_oath token line (the type is not HOTP, HOTP/E… or HOTP/T…)");
    };
    if fields.len() < 4 {
        return unnamed("malformed: fewer than the 4 fields TYPE USER PIN SECRET");
    }
    let user = fields[1];
    let hex_digits = user.bytes().filter(u8::is_ascii_hexdigit).count();
    if limits::user_name(user).is_err()
        || (hex_digits == user.len() && hex_digits >= SECRET_LIKE_HEX_DIGITS)
    {
        return unnamed("malformed: the user field is not a user name");
    }
    Entry {
        line: number,
        user: Some(user.to_owned()),
        token: token(kind, &fields).map_err(|why| at(&why)),
    }
}

/// The token of a line with a known type and a user: malformed fields first, then what
/// twofold cannot take.
fn token(kind: (Option<u32>, u32), fields: &[&str]) -> Result<Token, String> {
    let malformed = |why: &str| Err(format!("malformed: {why}"));
    if fields.len() > MAX_FIELDS {
        return malformed("more than the 7 fields TYPE USER PIN SECRET COUNTER LASTOTP TIME");
    }
    let Some(secret) = from_hex(fields[3]) else {
        return malformed("the secret is not hexadecimal");
    };
    if fields
        .get(4)
        .is_some_and(|counter| counter.parse::<u64>().is_err())
    {
        return malformed("the counter is not a number");
    }
    let last_code = fields.get(5).copied();
    if last_code.is_some_and(|code| code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit())) {
        return malformed("the last code is not digits");
    }
    if fields.get(6).is_some_and(|time| !is_time(time)) {
        return malformed("the time is not YYYY-MM-DDTHH:MM:SSL");
    }
    let mut notes = Vec::new();
    match fields[2] {
        "-" => {}
        "+" => notes.push(
            "PIN +: pam_oath left the password to another module; so does twofold".to_owned(),
        ),
        _ => {
            return Err(
                "a PIN is set (a password of pam_oath's own): twofold has none; the \
                        user enrolls anew with `twofold enroll`, or keeps pam_oath"
                    .into(),
            )
        }
    }
    let (step, digits) = kind;
    if !limits::OATH_DIGITS.contains(&digits) {
        return Err(format!(
            "{digits}-digit codes are not supported: twofoldd takes 6 or 8 digits"
        ));
    }
    // liboath writes, after a login, the counter of the code it accepted (HOTP) and that
    // code: the code is passed on, and the daemon moves past it.
    let counter = match step {
        None => fields.get(4).and_then(|c| c.parse().ok()).unwrap_or(0),
        Some(_) => 0,
    };
    let oath = OathParams {
        period: step.unwrap_or(0),
        digits,
        counter,
        ..OathParams::app()
    };
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret has {} bits, fewer than the 128 twofold accepts: the user enrolls \
             anew with `twofold enroll`",
            secret.len() * 8
        ));
    }
    let secret = to_base32(&secret);
    if limits::imported_secret(&secret).is_err() {
        return Err(format!(
            "the secret is longer than the {} bits twofold accepts",
            limits::MAX_IMPORTED_SECRET_LEN * 5
        ));
    }
    Ok(Token {
        secret,
        // A code of another length was not one of this token's.
        last_code: last_code
            .filter(|code| code.len() == digits as usize)
            .map(str::to_owned),
        oath,
        notes,
    })
}

/// The bytes of hexadecimal `text` (either case, even length).
fn from_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.as_bytes().chunks(2) {
        let digit = |b: u8| (b as char).to_digit(16);
        bytes.push((digit(pair[0])? * 16 + digit(pair[1])?) as u8);
    }
    Some(bytes)
}

/// RFC 4648 base32, without padding.
fn to_base32(bytes: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut text = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        text.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    text
}

/// liboath's time stamp: `%Y-%m-%dT%H:%M:%SL` (local time).
fn is_time(text: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:ddL";
    text.len() == shape.len()
        && text.bytes().zip(shape).all(|(b, &s)| match s {
            b'd' => b.is_ascii_digit(),
            _ => b == s,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 secret ("12345678901234567890"), in hex and base32.
    const HEX: &str = "3132333435363738393031323334353637383930";
    const BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn only(text: &str) -> Entry {
        let mut entries = parse(text);
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.remove(0)
    }

    fn refusal(text: &str) -> String {
        let entry = only(text);
        let why = entry.token.unwrap_err();
        assert!(!why.contains(HEX) && !why.contains("s3cret"), "{why}");
        why
    }

    #[test]
    fn totp_lines_with_30_second_steps_and_6_digits_are_taken() {
        let text = format!(
            "# pam_oath users\n\nHOTP/T30 alice - {HEX}\n\
             HOTP/T30/6\tbob\t-\t{}\t12\t755224\t2026-11-30T10:00:00L\n\
             HOTP/T30 carol + {HEX} 0 12345678\n",
            HEX.to_lowercase()
        );
        let entries = parse(&text);
        assert_eq!(entries.len(), 3);
        let alice = &entries[0];
        assert_eq!((alice.line, alice.user.as_deref()), (3, Some("alice")));
        let token = alice.token.as_ref().unwrap();
        assert_eq!(token.secret.as_str(), BASE32);
        assert_eq!(token.last_code, None);
        let bob = entries[1].token.as_ref().unwrap();
        assert_eq!(bob.secret.as_str(), BASE32);
        assert_eq!(bob.last_code.as_deref(), Some("755224"));
        let carol = entries[2].token.as_ref().unwrap();
        assert_eq!(carol.last_code, None, "an 8-digit code is not this token's");
        assert!(carol.notes[0].starts_with("PIN +"), "{:?}", carol.notes);
    }

    #[test]
    fn base32_is_rfc_4648() {
        assert_eq!(to_base32(b"").as_str(), "");
        assert_eq!(to_base32(b"f").as_str(), "MY");
        assert_eq!(to_base32(b"foobar").as_str(), "MZXW6YTBOI");
        assert_eq!(from_hex("0aFf").unwrap().as_slice(), [10, 255]);
        assert!(from_hex("abc").is_none() && from_hex("zz").is_none());
    }

    #[test]
    fn counter_tokens_60_second_steps_and_8_digits_are_taken() {
        let text = format!(
            "HOTP alice - {HEX} 5\nHOTP/E/8 bob - {HEX} 9 12345678 2026-11-30T10:00:00L\n\
             HOTP/T60/8 carol - {HEX} 3 123456\nHOTP/T60 dave - {HEX}\n"
        );
        let tokens: Vec<Token> = parse(&text).into_iter().map(|e| e.token.unwrap()).collect();
        let params = |t: &Token| (t.oath.period, t.oath.digits, t.oath.counter);
        assert_eq!(params(&tokens[0]), (0, 6, 5));
        assert_eq!(tokens[0].last_code, None);
        assert_eq!(params(&tokens[1]), (0, 8, 9));
        assert_eq!(tokens[1].last_code.as_deref(), Some("12345678"));
        // A time-based line's counter means nothing; a 6-digit code is not an 8-digit
        // token's.
        assert_eq!(params(&tokens[2]), (60, 8, 0));
        assert_eq!(tokens[2].last_code, None);
        assert_eq!(params(&tokens[3]), (60, 6, 0));
        assert!(tokens.iter().all(|t| t.oath.algorithm == "SHA1"));
    }

    #[test]
    fn what_twofold_cannot_take_is_refused_with_one_line_each() {
        let why = |kind: &str| refusal(&format!("{kind} alice - {HEX}"));
        for kind in ["HOTP/E/7", "HOTP/T30/7", "HOTP/T60/7"] {
            assert!(why(kind).starts_with("line 1: 7-digit codes are not supported"));
        }
        assert!(why("HOTP/T90").contains("not a pam_oath token line"));
        assert!(refusal(&format!("HOTP/T30 alice s3cret {HEX}")).contains("a PIN is set"));
        assert!(refusal("HOTP/T30 alice - 3132333435363738").contains("64 bits"));
        assert!(refusal(&format!("HOTP/T30 alice - {}", "ab".repeat(81))).contains("longer"));
    }

    #[test]
    fn malformed_lines_name_their_line_and_never_a_field() {
        let why = |line: &str| refusal(&format!("# comment\n{line}\n"));
        assert!(why(&format!("HOTP/T30 alice - {HEX}x")).starts_with("line 2: malformed"));
        assert!(why("HOTP/T30 alice - s3cret").contains("not hexadecimal"));
        assert!(why(&format!("HOTP/T30 alice - {HEX} x")).contains("counter"));
        assert!(why(&format!("HOTP/T30 alice - {HEX} 1 12a")).contains("last code"));
        assert!(why(&format!("HOTP/T30 alice - {HEX} 1 123456 yesterday")).contains("time"));
        assert!(why(&format!(
            "HOTP/T30 alice - {HEX} 1 123456 2026-11-30T10:00:00L x"
        ))
        .contains("more than"));
        // Lines whose user cannot be told: no user is named, so no field is shown.
        for line in [
            format!("HOTP/T30 {HEX} - 00"),
            format!("HOTP/T30 alice {HEX}"),
            format!("{HEX} alice - {HEX}"),
        ] {
            let entry = only(&line);
            assert_eq!(entry.user, None, "{line}");
            let why = entry.token.unwrap_err();
            assert!(why.starts_with("line 1: ") && !why.contains(HEX), "{why}");
        }
    }
}

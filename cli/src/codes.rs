//! Codes as people type them: a current code from the app, or a backup code.

use twofold_contract::MAX_CODE_LEN;
use zeroize::Zeroizing;

/// A current code or a backup code as typed: surrounding spaces dropped, otherwise as
/// given (the daemon ignores dashes, spaces and case in backup codes).
pub fn normalize_proof(input: &str) -> Result<Zeroizing<String>, String> {
    let code = input.trim();
    if code.is_empty() {
        return Err("enter a current code from your app or one of your backup codes".into());
    }
    if code.len() > MAX_CODE_LEN {
        return Err("that is too long for a code or a backup code".into());
    }
    if code.chars().any(char::is_control) {
        return Err("a code cannot contain control characters".into());
    }
    Ok(Zeroizing::new(code.to_owned()))
}

/// Digits of a TOTP code as typed: spaces are dropped (`123 456`). `digits` is the
/// expected length when known (from the URI), else 6 to 8 digits are accepted.
pub fn normalize_code(input: &str, digits: Option<usize>) -> Result<Zeroizing<String>, String> {
    let expected = match digits {
        Some(n) => format!("{n}-digit"),
        None => "6-digit".to_owned(),
    };
    if input.len() > MAX_CODE_LEN {
        return Err(format!("that is too long for a {expected} code"));
    }
    let code: Zeroizing<String> =
        Zeroizing::new(input.chars().filter(|c| !c.is_whitespace()).collect());
    if code.is_empty() {
        return Err(format!("enter the {expected} code shown by your app"));
    }
    if !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "a code has digits only; enter the {expected} code shown by your app"
        ));
    }
    let ok = match digits {
        Some(n) => code.len() == n,
        None => (6..=8).contains(&code.len()),
    };
    if !ok {
        return Err(format!(
            "that has {} digits; enter the {expected} code shown by your app",
            code.len()
        ));
    }
    Ok(code)
}

/// The number of digits an `otpauth://` URI asks for (`digits=`), 6 when absent or odd.
pub fn uri_digits(uri: &str) -> usize {
    let Some((_, query)) = uri.split_once('?') else {
        return 6;
    };
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("digits"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .filter(|n| (6..=8).contains(n))
        .unwrap_or(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_length_follows_the_uri() {
        assert_eq!(
            normalize_code("123 456", Some(6)).unwrap().as_str(),
            "123456"
        );
        assert!(normalize_code("1234567", Some(6)).is_err());
        assert!(normalize_code("12345678", Some(8)).is_ok());
        assert!(normalize_code(&"1".repeat(MAX_CODE_LEN + 1), None).is_err());
    }

    #[test]
    fn digits_from_uri() {
        assert_eq!(uri_digits("otpauth://totp/x?secret=A&issuer=h"), 6);
        assert_eq!(uri_digits("otpauth://totp/x?secret=A&digits=8"), 8);
        assert_eq!(uri_digits("otpauth://totp/x?digits=12"), 6);
        assert_eq!(uri_digits("otpauth://totp/x"), 6);
    }
}

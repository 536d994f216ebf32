//! Text shown to people: grouped secrets, dates, durations.

use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

/// The secret in groups of four, `ABCD EFGH IJ`, for typing it into an app by hand.
pub fn group_secret(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() + secret.len() / 4));
    for (i, c) in secret.chars().filter(|c| !c.is_whitespace()).enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
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

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `unix` in UTC as `format` (strftime); the far past and future, which no real
/// timestamp reaches, are clamped to jiff's range.
fn utc(unix: i64, format: &str) -> String {
    let t = jiff::Timestamp::from_second(unix).unwrap_or(if unix < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    t.strftime(format).to_string()
}

/// ISO 8601 in UTC: `2025-01-02T03:04:05Z`.
pub fn iso8601(unix: i64) -> String {
    utc(unix, "%Y-%m-%dT%H:%M:%SZ")
}

/// For people: `2025-01-02 03:04 UTC`.
pub fn human_time(unix: i64) -> String {
    utc(unix, "%Y-%m-%d %H:%M UTC")
}

/// `None` for the "not set" value 0, else ISO 8601.
pub fn optional_iso8601(unix: i64) -> Option<String> {
    (unix != 0).then(|| iso8601(unix))
}

/// A rough duration: `40 seconds`, `5 minutes`, `2 hours`, `3 days`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = if secs < 90 {
        (secs, "second")
    } else if secs < 90 * 60 {
        ((secs + 30) / 60, "minute")
    } else if secs < 36 * 3600 {
        ((secs + 1800) / 3600, "hour")
    } else {
        ((secs + 43_200) / 86_400, "day")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_in_groups_of_four() {
        assert_eq!(group_secret("").as_str(), "");
        assert_eq!(group_secret("ABC").as_str(), "ABC");
        assert_eq!(group_secret("ABCD").as_str(), "ABCD");
        assert_eq!(group_secret("ABCDE").as_str(), "ABCD E");
        assert_eq!(
            group_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").as_str(),
            "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"
        );
        assert_eq!(group_secret("AB CD EF").as_str(), "ABCD EF");
    }

    #[test]
    fn digits_from_uri() {
        assert_eq!(uri_digits("otpauth://totp/x?secret=A&issuer=h"), 6);
        assert_eq!(uri_digits("otpauth://totp/x?secret=A&digits=8"), 8);
        assert_eq!(uri_digits("otpauth://totp/x?digits=12"), 6);
        assert_eq!(uri_digits("otpauth://totp/x"), 6);
    }

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_735_787_045), "2025-01-02T03:04:05Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(human_time(1_735_787_045), "2025-01-02 03:04 UTC");
        assert_eq!(optional_iso8601(0), None);
        // Nonsense from the wire must not panic.
        let _ = iso8601(i64::MAX);
        let _ = iso8601(i64::MIN);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(-5), "0 seconds");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }
}

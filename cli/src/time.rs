//! Dates, times and durations, in UTC, by jiff (no calendar arithmetic of our own).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::text::one_line;

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

/// For people, "never" for the "not yet" value 0: when a device was last used.
pub fn human_time_or_never(unix: i64) -> String {
    if unix > 0 {
        human_time(unix)
    } else {
        "never".to_owned()
    }
}

/// For people, to the second (an audit trail): `2025-01-02 03:04:05 UTC`.
pub fn human_time_seconds(unix: i64) -> String {
    utc(unix, "%Y-%m-%d %H:%M:%S UTC")
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

/// "1 hour", "24 hours": a validity as an administrator gave it, in whole hours (under
/// an hour, as [`human_duration`]).
pub fn in_hours(secs: i64) -> String {
    if secs < 3600 {
        return human_duration(secs);
    }
    match (secs + 1800) / 3600 {
        1 => "1 hour".to_owned(),
        n => format!("{n} hours"),
    }
}

/// A duration written as numbers with units, `1h30m`, `2d`, `45s`, `1w` (any case):
/// the sum in seconds, and the digits after the last unit (`Some(30)` for `1h30`).
/// `None` when a character is neither a digit nor a unit, a unit has no number, or the
/// sum does not fit.
pub fn sum_of_units(text: &str) -> Option<(u64, Option<u64>)> {
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    let rest = if number.is_empty() {
        None
    } else {
        Some(number.parse().ok()?)
    };
    Some((total, rest))
}

/// `--since`: a date (`2026-11-27`, midnight UTC), a date and time (`2026-11-27T14:00`,
/// `2026-11-27 14:00:30`, UTC unless it ends in `Z` or an offset such as `+01:00`), or a
/// time ago (`30m`, `2h`, `3d`, `1w`, `1h30m`). Returns Unix time.
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "\"{}\" is not a time; examples: 2026-11-27, 2026-11-27T14:00, 2h, 3d",
            one_line(text)
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if t.as_bytes().get(4) == Some(&b'-') {
        return parse_date_time(t).ok_or_else(bad);
    }
    let ago = parse_ago(t).ok_or_else(bad)?;
    Ok(now.saturating_sub(ago))
}

/// `2h`, `3d`, `1h30m`: seconds. A bare number is refused (seconds? days?).
fn parse_ago(t: &str) -> Option<i64> {
    match sum_of_units(t)? {
        (total, None) => {
            // Nothing older than 1000 years.
            let total = i64::try_from(total).ok()?;
            (total <= 1000 * 366 * 86_400).then_some(total)
        }
        (_, Some(_)) => None,
    }
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS][Z|±HH[:]MM]]` to Unix time: with an offset (or `Z`) as
/// written, without one in UTC; the date must exist (no 2025-02-30).
fn parse_date_time(t: &str) -> Option<i64> {
    if let Ok(at) = t.parse::<jiff::Timestamp>() {
        return Some(at.as_second());
    }
    let civil = t.parse::<jiff::civil::DateTime>().ok()?;
    let at = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(at.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000; // 2027-01-15 08:00:00 UTC

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_735_787_045), "2025-01-02T03:04:05Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(human_time(1_735_787_045), "2025-01-02 03:04 UTC");
        assert_eq!(human_time_or_never(1_735_787_045), "2025-01-02 03:04 UTC");
        assert_eq!(human_time_or_never(0), "never");
        assert_eq!(human_time_seconds(1_735_787_045), "2025-01-02 03:04:05 UTC");
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
        assert_eq!(in_hours(3600), "1 hour");
        assert_eq!(in_hours(720 * 3600), "720 hours");
        assert_eq!(in_hours(600), "10 minutes");
    }

    #[test]
    fn units_add_up() {
        assert_eq!(sum_of_units("1h30m"), Some((5400, None)));
        assert_eq!(sum_of_units("1H30"), Some((3600, Some(30))));
        assert_eq!(sum_of_units("90"), Some((0, Some(90))));
        assert_eq!(sum_of_units(""), Some((0, None)));
        for bad in ["h", "5x", "-5m", "1.5h", "99999999999999999999d"] {
            assert_eq!(sum_of_units(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_accepts_dates_times_and_durations() {
        assert_eq!(parse_since("2025-01-02", NOW), Ok(1_735_776_000));
        assert_eq!(parse_since("2025-01-02T03:04:05", NOW), Ok(1_735_787_045));
        assert_eq!(parse_since("2025-01-02 03:04:05Z", NOW), Ok(1_735_787_045));
        assert_eq!(parse_since("2025-01-02T03:04", NOW), Ok(1_735_787_040));
        assert_eq!(
            parse_since("2025-01-02T04:04:05+01:00", NOW),
            Ok(1_735_787_045)
        );
        assert_eq!(
            parse_since("2025-01-02T02:04:05-0100", NOW),
            Ok(1_735_787_045)
        );
        assert_eq!(parse_since("2000-02-29", NOW), Ok(951_782_400));
        // The hour alone is a time too (RFC 9557, as jiff reads it).
        assert_eq!(parse_since("2025-01-02T10", NOW), Ok(1_735_812_000));
        assert_eq!(parse_since("1970-01-01", NOW), Ok(0));
        assert_eq!(parse_since("2h", NOW), Ok(NOW - 7200));
        assert_eq!(parse_since("3d", NOW), Ok(NOW - 3 * 86_400));
        assert_eq!(parse_since("1h30m", NOW), Ok(NOW - 5400));
        assert_eq!(parse_since(" 1W ", NOW), Ok(NOW - 7 * 86_400));
        for bad in [
            "",
            "2h5",
            "h",
            "2025-02-30",
            "2001-02-29",
            "2025-13-01",
            "2025-1-2",
            "2025-01-02T24:00",
            "2025-01-02T10:00+1",
            "2025-01-02X",
            "99999999999999999999d",
            "-2h",
            "1001000d",
        ] {
            assert!(parse_since(bad, NOW).is_err(), "accepted {bad:?}");
        }
    }
}

//! Small string helpers: log-safe forms of untrusted text and byte-bounded truncation.

/// Log-safe form of untrusted text: control characters, quotes and backslashes escaped
/// (`escape_debug`), cut after `max_chars` characters of the escaped form (with `…`).
pub fn safe_str(s: &str, max_chars: usize) -> String {
    cut(s.escape_debug(), max_chars)
}

/// Log-safe form of untrusted bytes (not necessarily UTF-8): valid UTF-8 is shown as
/// with [`safe_str`], anything else byte by byte with `\xNN` escapes.
pub fn safe_bytes(b: &[u8], max_chars: usize) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => safe_str(s, max_chars),
        Err(_) => cut(b.escape_ascii().map(char::from), max_chars),
    }
}

fn cut(chars: impl Iterator<Item = char>, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in chars.enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a character
/// boundary.
pub fn truncate_floor(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The shortest prefix of `s` that is at least `min_bytes` long (or all of `s`) and ends
/// on a character boundary: cutting an over-long code there keeps it over-long.
pub fn truncate_ceil(s: &str, min_bytes: usize) -> &str {
    if s.len() <= min_bytes {
        return s;
    }
    let mut end = min_bytes;
    while !s.is_char_boundary(end) {
        end += 1;
    }
    &s[..end]
}

/// Lossy UTF-8 form of a PAM item, truncated to `max_bytes`.
pub fn lossy_truncated(b: &[u8], max_bytes: usize) -> String {
    let s = String::from_utf8_lossy(b);
    truncate_floor(&s, max_bytes).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_forms() {
        assert_eq!(safe_str("alice", 32), "alice");
        assert_eq!(safe_str("a\nb\x1b", 32), "a\\nb\\u{1b}");
        assert_eq!(
            safe_str(&"x".repeat(40), 32),
            format!("{}…", "x".repeat(32))
        );
        assert_eq!(safe_str("é", 32), "é");
        assert_eq!(safe_bytes(b"bob", 32), "bob");
        assert_eq!(safe_bytes(b"b\xffo", 32), "b\\xffo");
        assert_eq!(safe_bytes(&[0xff; 20], 8), "\\xff\\xff…");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_floor("abc", 5), "abc");
        assert_eq!(truncate_floor("abcdef", 3), "abc");
        assert_eq!(truncate_floor("aé", 2), "a");
        assert_eq!(truncate_ceil("abc", 5), "abc");
        assert_eq!(truncate_ceil("abcdef", 3), "abc");
        assert_eq!(truncate_ceil("aéb", 2), "aé");
        assert_eq!(lossy_truncated(b"tty\xff1", 256), "tty\u{fffd}1");
        assert_eq!(lossy_truncated(&[b'h'; 300], 256).len(), 256);
    }
}

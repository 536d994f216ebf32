//! Text for people: messages on one line, suggested commands, tables, grouped secrets.

use twofold_contract::OathParams;
use zeroize::Zeroizing;

/// `text` on one line, without control characters, at most 300 characters: for messages
/// that carry text from elsewhere (the daemon, the bus, the command line).
pub fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    for (i, c) in text.trim().chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// True when a device makes its codes as every app does (SHA1, 6 digits, 30 s).
pub fn is_app(oath: &OathParams) -> bool {
    let app = OathParams::app();
    (&oath.algorithm, oath.digits, oath.period) == (&app.algorithm, app.digits, app.period)
}

/// How a device makes its codes, for people: `TOTP, SHA256, 8 digits, 60 s`, `HOTP,
/// SHA1, 6 digits`.
pub fn oath_summary(oath: &OathParams) -> String {
    match oath.period {
        0 => format!("HOTP, {}, {} digits", oath.algorithm, oath.digits),
        period => format!(
            "TOTP, {}, {} digits, {period} s",
            oath.algorithm, oath.digits
        ),
    }
}

/// `text` with its first letter upper case: a reason worded to follow a colon, as a
/// sentence of its own.
pub fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `twofold <command>`, with `--user USER` when acting on another user.
pub fn suggest(command: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("twofold {command} --user {u}"),
        None => format!("twofold {command}"),
    }
}

/// `None` for the empty string ("not set" on the wire), for JSON's `null`.
pub fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Text from the daemon, for a table cell: one line, "-" when empty.
pub fn cell(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        one_line(s)
    }
}

/// Columns separated by two spaces; the last one is not padded.
pub fn table<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            let pad = w.saturating_sub(c.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.as_ref().iter().map(String::as_str));
    }
    out
}

/// `items` as a [`table`] under `header`, a row each made by `row`; `none` when there
/// are no items.
pub fn table_of<T, R: AsRef<[String]>>(
    items: &[T],
    none: &str,
    header: &[&str],
    row: impl FnMut(&T) -> R,
) -> String {
    if items.is_empty() {
        return none.to_owned();
    }
    table(header, &items.iter().map(row).collect::<Vec<R>>())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_strips_controls() {
        assert_eq!(one_line(" a\nb\u{1b}c "), "a b c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn first_letter_upper_case() {
        assert_eq!(capitalize_first("that code"), "That code");
        assert_eq!(capitalize_first("ärger"), "Ärger");
        assert_eq!(capitalize_first(""), "");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("enroll", None), "twofold enroll");
        assert_eq!(suggest("enroll", Some("bob")), "twofold enroll --user bob");
    }

    #[test]
    fn tables_line_up_without_trailing_spaces() {
        let rows = vec![
            vec!["alice".to_owned(), "yes".to_owned(), "x".to_owned()],
            vec!["bob".to_owned(), "no".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["USER", "ENROLLED", "NOTE"], &rows),
            "USER   ENROLLED  NOTE\nalice  yes       x\nbob    no\n"
        );
        let of = |names: &[&str]| table_of(names, "None.\n", &["NAME"], |n| [n.to_string()]);
        assert_eq!(of(&["alice", "bob"]), "NAME\nalice\nbob\n");
        assert_eq!(of(&[]), "None.\n");
    }

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
}

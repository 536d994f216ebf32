//! All JSON the program writes: every command's `--json` output pretty-printed, and a
//! failure under `--json` as one line on standard error.

use std::io::Write;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::Failure;
use crate::output::write_out;

/// Writes `value` as JSON. The text is wiped after writing: some values hold a secret
/// (`enroll --begin`) or backup codes.
pub fn write_json(out: &mut (impl Write + ?Sized), value: &impl Serialize) -> Result<(), Failure> {
    let mut text = Zeroizing::new(
        serde_json::to_string_pretty(value)
            .map_err(|e| Failure::new(format!("Could not write JSON: {e}")))?,
    );
    text.push('\n');
    write_out(out, &text)
}

/// Writes `rows` as a JSON array.
pub fn write_json_list<J: Serialize>(
    out: &mut (impl Write + ?Sized),
    rows: impl IntoIterator<Item = J>,
) -> Result<(), Failure> {
    write_json(out, &rows.into_iter().collect::<Vec<J>>())
}

/// A failure under `--json`: `{"error": …, "code": …}` on one line, for standard error,
/// where scripts read one line per failure.
pub fn failure_line(failure: &Failure) -> String {
    serde_json::json!({ "error": failure.message(), "code": failure.code() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_printed_with_a_final_newline() {
        let mut out = Vec::new();
        write_json(
            &mut out,
            &serde_json::json!({ "user": "alice", "low": true }),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"low\": true,\n  \"user\": \"alice\"\n}\n"
        );
    }

    #[test]
    fn a_failure_is_one_line() {
        let line = failure_line(&Failure::coded("usage", "bad\nflag"));
        assert_eq!(line, "{\"code\":\"usage\",\"error\":\"bad flag\"}");
    }
}

//! The one JSON writer of every `--json` output: pretty-printed, then a newline.

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
}

//! A failed command: its one-line message and its kind.

use std::fmt;

use crate::text::one_line;

/// A failure of a command: shown as `twofold: <message>`, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    code: &'static str,
}

impl Failure {
    /// A failure of no particular kind (code `failed`).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure::coded("failed", message)
    }

    /// A failure whose kind scripts can test (`code` under `--json`).
    pub fn coded(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            message: one_line(&message.into()),
            code,
        }
    }

    /// The same message as another kind.
    pub fn with_code(self, code: &'static str) -> Failure {
        Failure { code, ..self }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Its kind: `usage`, `unavailable`, `permission_denied`, `not_enrolled`, … (the
    /// daemon's error names in snake case), or `failed`.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let m = Failure::new("a\nb\r\nc");
        assert!(!m.message().contains(['\n', '\r']));
        assert_eq!(m.code(), "failed");
    }
}

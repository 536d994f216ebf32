//! Writing to standard output, and commands suggested to the user.

use std::io::{self, Write};

use crate::error::Failure;

/// Writes `text` and flushes; a closed or full output is a [`Failure`], not a panic.
pub fn write_out(out: &mut (impl Write + ?Sized), text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| write_failure(&e))
}

fn write_failure(e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::new("Standard output was closed before everything was written.")
    } else {
        Failure::new(format!("Could not write to standard output: {e}"))
    }
}

/// `twofold <command>`, with `--user USER` when acting on another user.
pub fn suggest(command: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("twofold {command} --user {u}"),
        None => format!("twofold {command}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("enroll", None), "twofold enroll");
        assert_eq!(suggest("enroll", Some("bob")), "twofold enroll --user bob");
    }
}

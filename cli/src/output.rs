//! What a command gives back: the text it writes, and how it came out.

use std::io::{self, Write};

use crate::error::Failure;

/// How a command that ran came out (`twofold doctor` tells three apart: exit status 0,
/// 1 for a warning, 2 for a failed check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Warned,
    Failed,
}

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

//! What every command runs with: the daemon, standard input, and standard output with
//! `--json`, which [`Out`] alone turns into JSON for scripts or text for people.

use std::io::{self, BufRead, Write};

use serde::Serialize;

use crate::bus::Daemon;
use crate::error::Failure;
use crate::json::{write_json, write_json_list};
use crate::output::write_out;

/// A command's context.
pub struct Cx<'a> {
    pub daemon: &'a Daemon<'a>,
    /// Standard input: codes, passwords and confirmations.
    pub input: &'a mut dyn BufRead,
    pub out: Out<'a>,
}

impl Cx<'_> {
    /// Standard input, and where to ask for it (see [`Out::prompts`]).
    pub fn input_and_prompts(&mut self) -> (&mut dyn BufRead, &mut dyn Write) {
        (&mut *self.input, self.out.prompts())
    }
}

/// Standard output, as `--json` asks: one JSON value for scripts, or text for people.
pub struct Out<'a> {
    /// `--json`.
    pub json: bool,
    to: &'a mut dyn Write,
    /// Where prompts go under `--json`.
    stderr: io::Stderr,
}

impl<'a> Out<'a> {
    pub fn new(json: bool, to: &'a mut dyn Write) -> Out<'a> {
        Out {
            json,
            to,
            stderr: io::stderr(),
        }
    }

    /// The answer: `value` as JSON for scripts, else `text()` for people.
    pub fn answer<T: AsRef<str>>(
        &mut self,
        value: &impl Serialize,
        text: impl FnOnce() -> T,
    ) -> Result<(), Failure> {
        if self.json {
            return write_json(self.to, value);
        }
        write_out(self.to, text().as_ref())
    }

    /// A list: its `rows` as one JSON array for scripts, else `text()` (a table) for
    /// people.
    pub fn list<J: Serialize>(
        &mut self,
        rows: impl IntoIterator<Item = J>,
        text: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        if self.json {
            return write_json_list(self.to, rows);
        }
        write_out(self.to, &text())
    }

    /// `value` as JSON (for an answer whose text for people takes more than a closure).
    pub fn write_json(&mut self, value: &impl Serialize) -> Result<(), Failure> {
        write_json(self.to, value)
    }

    /// Text for people.
    pub fn say(&mut self, text: &str) -> Result<(), Failure> {
        write_out(self.to, text)
    }

    /// Where to ask for input: standard output, or standard error with `--json`
    /// (standard output is then for the JSON alone).
    pub fn prompts(&mut self) -> &mut dyn Write {
        if self.json {
            &mut self.stderr
        } else {
            &mut *self.to
        }
    }
}

//! `twofold`: the command-line client of `twofoldd`, as a library so that man pages and
//! shell completions can be generated from [`cli::command`].
//!
//! Flow: clap definitions ([`cli`]) → validated [`options::Options`] → one command
//! (`commands::{enroll, status, backup_codes, disable, doctor, sessions, admin, import}`: run and
//! render) talking to the daemon through `bus::Daemon`. Every failure ends as one line
//! `twofold: <message>` on standard error.
//!
//! Imports go one way, down this list; a module imports only modules below it (checked
//! by `tests/tests/layers.rs`):
//!
//! | layer | modules |
//! |-------|---------|
//! | program | `lib` (this file: exit status and the failure line) |
//! | commands | `commands` and its children (a command may use another's renderer) |
//! | talking to people and the daemon | `bus`, `prompt` |
//! | words for daemon errors | `context` |
//! | validated options | `options` (`admin`, `sessions`, `usage`) |
//! | clap definitions | `cli` |
//! | leaf helpers | `json`, `output`, `error`, `text`, `time`, `codes`, `qr`, `pam_config`, `secret_file`, `google_authenticator`, `oath_usersfile`, `pskc` |

mod bus;
pub mod cli;
mod codes;
mod commands;
mod context;
mod error;
mod google_authenticator;
mod json;
mod oath_usersfile;
mod options;
mod output;
mod pam_config;
mod prompt;
pub mod pskc;
mod qr;
mod secret_file;
mod text;
mod time;

use std::process::ExitCode;

use crate::error::Failure;
use crate::options::Options;
use crate::output::Verdict;
use crate::text::one_line;

/// Exit status of a failed command.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (as clap's own).
const EXIT_USAGE: u8 = 2;

/// The whole program: parses the command line, runs the command, returns the exit status.
pub fn main() -> ExitCode {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "twofold: internal error ({}); please report it",
            one_line(&what)
        );
    }));
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        // Help and version go to standard output, as clap prints them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", cli::without_global_flags(&e.render().to_string()));
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let json = cli.json;
    let options = match Options::from_cli(cli) {
        Ok(o) => o,
        Err(e) => return fail(&Failure::coded("usage", e.to_string()), EXIT_USAGE, json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let f = Failure::new(format!("Could not start: {e}"));
            return fail(&f, EXIT_FAILURE, json);
        }
    };
    match runtime.block_on(commands::run(&options)) {
        Ok(Verdict::Done) => ExitCode::SUCCESS,
        // The output said what is wrong (doctor).
        Ok(Verdict::Warned) => ExitCode::from(EXIT_FAILURE),
        Ok(Verdict::Failed) => ExitCode::from(EXIT_USAGE),
        Err(f) => fail(&f, EXIT_FAILURE, json),
    }
}

/// Says what failed on standard error: one line, or with `--json` one object with
/// `error` (the line) and `code` (its kind, for scripts).
fn fail(failure: &Failure, status: u8, json: bool) -> ExitCode {
    if json {
        eprintln!("{}", json::failure_line(failure));
    } else {
        eprintln!("twofold: {}", one_line(failure.message()));
    }
    ExitCode::from(status)
}

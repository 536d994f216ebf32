//! `twofold`: the command-line client of `twofoldd`, as a library so that man pages and
//! shell completions can be generated from [`cli::command`].
//!
//! Flow: clap definition ([`cli`]) → validated [`options::Options`] → one action
//! ([`enroll`], [`status`]) talking to the daemon through [`bus::Daemon`]. Every failure
//! ends as one line `twofold: <message>` on standard error.

mod bus;
pub mod cli;
mod enroll;
mod error;
mod format;
mod options;
mod output;
mod qr;
mod status;

use std::io;
use std::process::ExitCode;

use crate::bus::Daemon;
use crate::error::{Context, Failure};
use crate::options::{Action, Options};

/// Exit status of a failed command.
const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage error (as clap's own).
const EXIT_USAGE: u8 = 2;

/// The whole program: parses the command line, runs the command, returns the exit status.
pub fn main() -> ExitCode {
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let options = match Options::from_cli(cli) {
        Ok(o) => o,
        Err(e) => return fail(&e.to_string(), EXIT_USAGE),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("Could not start: {e}"), EXIT_FAILURE),
    };
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f.message(), EXIT_FAILURE),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("twofold: {}", options::one_line(message));
    ExitCode::from(code)
}

async fn run(options: &Options) -> Result<(), Failure> {
    let ctx = Context {
        bus: &options.bus,
        user: options.user(),
    };
    let daemon = Daemon::connect(ctx).await?;
    let mut out = io::stdout().lock();
    match &options.action {
        Action::Enroll { issuer, mode, .. } => {
            let mut input = io::stdin().lock();
            enroll::run(&daemon, issuer, mode, options.json, &mut out, &mut input).await
        }
        Action::Status { .. } => status::run(&daemon, options.json, &mut out).await,
    }
}

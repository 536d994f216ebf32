//! `twofold`: the command-line client of `twofoldd`, as a library so that man pages and
//! shell completions can be generated from [`cli::command`].
//!
//! Flow: clap definition ([`cli`]) → validated [`options::Options`] → one action
//! (`enroll`, `status`, `backup_codes`, `disable`, `doctor`, `sessions`, `admin`) talking
//! to the daemon through `bus::Daemon`. Every failure ends as one line `twofold: <message>` on
//! standard error.

mod admin;
mod backup_codes;
mod bus;
pub mod cli;
mod disable;
mod doctor;
mod enroll;
mod error;
mod format;
mod options;
mod output;
mod prompt;
mod qr;
mod sessions;
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
            options::one_line(&what)
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
    match runtime.block_on(run(&options)) {
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
        let object = serde_json::json!({ "error": failure.message(), "code": failure.code() });
        eprintln!("{object}");
    } else {
        eprintln!("twofold: {}", options::one_line(failure.message()));
    }
    ExitCode::from(status)
}

/// How a command that ran came out (`twofold doctor` tells three apart: exit status 0,
/// 1 for a warning, 2 for a failed check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Warned,
    Failed,
}

/// Runs the action.
async fn run(options: &Options) -> Result<Verdict, Failure> {
    let ctx = Context {
        bus: &options.bus,
        user: options.user(),
    };
    let json = options.json;
    let mut out = io::stdout().lock();
    if let Action::Doctor { doctor, .. } = &options.action {
        return doctor::run(ctx, doctor, json, &mut out).await;
    }
    let daemon = Daemon::connect(ctx).await?;
    let mut input = io::stdin().lock();
    match &options.action {
        Action::Enroll {
            issuer,
            mode,
            proof_stdin,
            qr,
            ..
        } => {
            let req = enroll::Request {
                issuer,
                mode,
                proof_stdin: *proof_stdin,
                qr,
                json,
            };
            enroll::run(&daemon, &req, &mut out, &mut input).await?
        }
        Action::Status { .. } => status::run(&daemon, json, &mut out).await?,
        Action::Sessions { action, .. } => sessions::run(&daemon, action, json, &mut out).await?,
        Action::Admin { action, .. } => admin::run(&daemon, action, json, &mut out).await?,
        Action::BackupCodesCount { .. } => backup_codes::count(&daemon, json, &mut out).await?,
        Action::BackupCodesRegenerate { code_stdin, .. } => {
            backup_codes::regenerate(&daemon, *code_stdin, json, &mut out, &mut input).await?
        }
        Action::Disable {
            yes,
            password_stdin,
            code_stdin,
            ..
        } => {
            let req = disable::Request {
                yes: *yes,
                password_stdin: *password_stdin,
                code_stdin: *code_stdin,
                json,
            };
            let mut ask = prompt::terminal_password;
            disable::run(&daemon, &req, &mut out, &mut input, &mut ask).await?
        }
        Action::Doctor { .. } => unreachable!("handled above"),
    }
    Ok(Verdict::Done)
}

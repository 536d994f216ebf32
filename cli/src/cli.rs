//! The command-line surface of `twofold`: flags and subcommands only, no behaviour.
//!
//! Kept apart from the rest so that man pages and shell completions can be generated
//! from [`command`] alone. What the flags mean together is checked in `options.rs`.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Environment variable that sets the bus address when `--bus` is not given.
pub const BUS_ENV: &str = "TWOFOLD_BUS_ADDRESS";

/// Two-factor authentication for Linux logins.
#[derive(Debug, Parser)]
#[command(
    name = "twofold",
    version,
    about = "Two-factor authentication for Linux logins",
    long_about = "Two-factor authentication for Linux logins: TOTP codes from an \
                  authenticator app plus single-use backup codes, checked by the twofoldd \
                  daemon for SSH, sudo, su and console logins.",
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// D-Bus address of the bus where twofoldd runs (default: the system bus)
    #[arg(long, global = true, value_name = "ADDRESS", env = BUS_ENV)]
    pub bus: Option<String>,

    /// Print machine-readable JSON on standard output
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Set up two-factor authentication with an authenticator app
    #[command(
        long_about = "Set up two-factor authentication with an authenticator app.\n\n\
        Without options: shows a QR code, the secret and its otpauth:// URI, asks for the \
        current code from the app, and only then turns two-factor authentication on and \
        prints 10 single-use backup codes.\n\n\
        For scripts: `--begin` prints the secret and URI, then `--confirm CODE` turns it \
        on and prints the backup codes."
    )]
    Enroll(EnrollArgs),

    /// Show whether two-factor authentication is on, backup codes left and lockout state
    Status(StatusArgs),
}

/// The user a command acts on.
#[derive(Debug, Clone, Default, Args)]
pub struct UserArg {
    /// Act on USER instead of yourself (needs root or the administer permission)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// `twofold enroll`.
#[derive(Debug, Clone, Default, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub user: UserArg,

    /// Name shown in the authenticator app (default: this host's name)
    #[arg(long, value_name = "NAME", conflicts_with = "confirm")]
    pub issuer: Option<String>,

    /// Only start: print the secret and URI, then exit (finish with --confirm)
    #[arg(long, conflicts_with = "confirm")]
    pub begin: bool,

    /// Finish an enrollment started with --begin, using the current code from the app
    #[arg(long, value_name = "CODE")]
    pub confirm: Option<String>,
}

/// `twofold status`.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub user: UserArg,
}

/// The clap command, for man pages and shell completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses `args` (the program name first). An empty `TWOFOLD_BUS_ADDRESS` counts as
/// unset, as usual for environment variables; an empty `--bus ""` stays an error.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    let from_env = matches.value_source("bus") == Some(clap::parser::ValueSource::EnvVariable);
    let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
    if from_env && cli.bus.as_deref().is_some_and(|b| b.trim().is_empty()) {
        cli.bus = None;
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn begin_and_confirm_conflict() {
        let err = Cli::try_parse_from(["twofold", "enroll", "--begin", "--confirm", "123456"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn issuer_and_confirm_conflict() {
        let err = Cli::try_parse_from(["twofold", "enroll", "--issuer", "x", "--confirm", "1"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "twofold",
            "status",
            "--json",
            "--bus",
            "unix:path=/tmp/x",
            "--user",
            "alice",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.bus.as_deref(), Some("unix:path=/tmp/x"));
        match cli.command {
            Commands::Status(s) => assert_eq!(s.user.user.as_deref(), Some("alice")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_command_is_required() {
        assert!(Cli::try_parse_from(["twofold"]).is_err());
    }
}

//! twofoldd's command line, kept apart so that twofoldd(8) is generated from it.

use std::path::PathBuf;

use clap::Parser;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/twofold";
pub const DEFAULT_KEY: &str = "/etc/twofold/secret.key";
pub const DEFAULT_CONFIG: &str = "/etc/twofold/twofoldd.toml";

/// twofold's privileged daemon: owns TOTP secrets, backup codes, lockout counters and
/// the audit trail, and answers pam_twofold.so and the twofold CLI over D-Bus.
#[derive(Debug, Parser)]
#[command(name = "twofoldd", version, about)]
pub struct Args {
    /// D-Bus address to serve on (default: the system bus).
    #[arg(long, value_name = "ADDRESS")]
    pub bus: Option<String>,
    /// SQLite database (default: $STATE_DIRECTORY/twofold.db, else /var/lib/twofold/twofold.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// At-rest encryption key, created 0600 on first start.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_KEY)]
    pub key: PathBuf,
    /// Configuration file (a missing default file means built-in defaults).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Copy log lines to standard error as well as syslog.
    #[arg(long)]
    pub log_stderr: bool,
    /// Log more detail (never secrets or codes).
    #[arg(long)]
    pub debug: bool,
    /// PAM configuration directory for the account-password check (tests only; the
    /// default is the system's, with the `twofold-password` service).
    #[arg(long, value_name = "DIR", hide = true)]
    pub pam_confdir: Option<PathBuf>,
}

impl Args {
    /// The clap command, for man pages.
    pub fn command() -> clap::Command {
        <Args as clap::CommandFactory>::command()
    }
}

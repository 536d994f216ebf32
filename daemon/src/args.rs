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
    /// The root-only socket where the PAM module speaks D-Bus peer to peer; its directory
    /// is created 0755 if missing. Under systemd socket activation (twofoldd.socket),
    /// the socket passed in is served instead.
    #[arg(long, value_name = "PATH", default_value = twofold_contract::DIRECT_SOCKET)]
    pub socket: PathBuf,
    /// SQLite database (default: $STATE_DIRECTORY/twofold.db, else /var/lib/twofold/twofold.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// At-rest encryption key, created 0600 on first start (in a fleet: the same file on
    /// every host).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_KEY, global = true)]
    pub key: PathBuf,
    /// Configuration file (a missing default file means built-in defaults).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Copy log lines to standard error as well as syslog.
    #[arg(long)]
    pub log_stderr: bool,
    /// Log more detail (never secrets or codes).
    #[arg(long)]
    pub debug: bool,
    /// Check the configuration file (--config, else the default) and exit: 0 when it is
    /// valid, 1 with every error naming the file, line and key; warnings (unknown groups,
    /// missing files) are printed but do not fail it.
    #[arg(long)]
    pub check_config: bool,
    /// PAM configuration directory for the account-password check (tests only; the
    /// default is the system's, with the `twofold-password` service).
    #[arg(long, value_name = "DIR", hide = true)]
    pub pam_confdir: Option<PathBuf>,
    /// File holding the kernel's boot id (tests only: a new boot id simulates a reboot;
    /// default /proc/sys/kernel/random/boot_id).
    #[arg(long, value_name = "PATH", hide = true)]
    pub boot_id_file: Option<PathBuf>,
    /// Seconds to add to the system clock (tests only: a clock that is off).
    #[arg(long, value_name = "SECONDS", hide = true, default_value_t = 0,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-86_400..=86_400))]
    pub clock_skew_seconds: i64,
    /// Something else than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `twofoldd` subcommands; without one, it serves.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy this host's SQLite state into a fleet's PostgreSQL database
    ///
    /// In one transaction (all or nothing): users, sealed secrets, replay watermarks,
    /// backup codes (used ones stay used), lockout counters, bypass codes, sessions and
    /// the audit trail. Stop twofoldd first, and use the key file that every host of the
    /// fleet shares (--key). A user the fleet has already enrolled keeps the fleet's
    /// enrollment; a source is migrated once.
    Migrate(MigrateArgs),
}

/// `twofoldd migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy.
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The fleet's database, without a password in it.
    #[arg(long, value_name = "postgres://USER@HOST:PORT/DBNAME")]
    pub to: String,
    /// File holding the database password (default: the config's storage_password_file).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// TLS: disable, require, verify-ca or verify-full (default: the config's
    /// storage_sslmode, else verify-full).
    #[arg(long, value_name = "MODE")]
    pub sslmode: Option<String>,
    /// CA certificate(s) of the database server, PEM (default: the config's
    /// storage_sslrootcert, else the system's).
    #[arg(long, value_name = "PATH")]
    pub sslrootcert: Option<PathBuf>,
    /// This host's name, for the audit entries and sessions copied (default: the config's
    /// hostname, else the system's).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

impl Args {
    /// The clap command, for man pages.
    pub fn command() -> clap::Command {
        <Args as clap::CommandFactory>::command()
    }
}

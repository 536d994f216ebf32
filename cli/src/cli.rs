//! The command-line surface of `twofold`: flags and subcommands only, no behaviour.
//!
//! Kept apart from the rest so that man pages and shell completions can be generated
//! from [`command`] alone. What the flags mean together is checked in `options.rs`.

use std::path::PathBuf;

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
    after_long_help = "Getting started: `twofold enroll` sets up your authenticator app; \
        `twofold status` shows where you stand; `twofold doctor` checks the set-up.\n\
        Each command has its own help: `twofold help enroll`.",
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// D-Bus address of the bus where twofoldd runs (default: the system bus)
    #[arg(
        long,
        global = true,
        value_name = "ADDRESS",
        env = BUS_ENV,
        hide_env_values = true
    )]
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
        long_about = "Set up two-factor authentication with an authenticator app (Google \
        Authenticator, Authy, Microsoft Authenticator, ...).\n\n\
        Without options: shows a QR code, the secret and its otpauth:// URI, asks for the \
        current code from the app (three tries), and only then turns two-factor \
        authentication on and prints 10 single-use backup codes, once.\n\n\
        Moving to a new phone: run it again. It asks for a current code or a backup code \
        from the old device (or reads it from standard input with --proof -); the old \
        phone keeps working until the new one is confirmed.\n\n\
        For scripts: `--begin` prints the secret and URI, then `--confirm -` reads the \
        code from standard input, turns it on and prints the backup codes. A started \
        enrollment expires after 10 minutes (the daemon's enroll_pending_seconds).\n\n\
        Codes are never taken from the command line, where other users can read them \
        (ps): a flag that takes a code accepts only `-`, standard input.",
        after_help = "Examples:\n  \
        twofold enroll\n  \
        twofold enroll --qr-png qr.png --issuer \"Example Corp\"\n  \
        twofold enroll --begin --json && echo \"$CODE\" | twofold enroll --confirm - --json"
    )]
    Enroll(EnrollArgs),

    /// Show whether two-factor authentication is on, backup codes left, last use and lockout
    #[command(
        long_about = "Show whether two-factor authentication is on and since when, \
        how many backup codes are left, the last successful use (when, how, for which \
        service, from where), failed attempts and lockout, and any pending enrollment."
    )]
    Status(StatusArgs),

    /// List, add or remove your devices (authenticator apps); a code of any of them works
    #[command(
        long_about = "List, add or remove your devices: the authenticator apps (a phone, a \
        spare phone, a tablet) whose codes twofold accepts, each with its own secret. A code \
        from any of them works at a login, and each code works once on the device that \
        made it.\n\n\
        Without a subcommand: list them, with name, kind, when added and last used (with \
        --json: a list of objects with the keys name, kind, added, last_used, in ISO 8601 \
        UTC, null when never used). `twofold enroll` makes the first one, named default.\n\n\
        `add NAME` sets up another one like `twofold enroll` does (QR code, then its first \
        code; --begin and --confirm - for scripts), after a current code from a device you \
        have or a backup code. `remove NAME` needs a current code from another device or a \
        backup code; the last device is not removed: that is `twofold disable`. Names are 1 \
        to 32 letters, digits, '-', '_' or '.'; at most 8 devices.",
        after_help = "Examples:\n  \
        twofold devices\n  \
        twofold devices add spare-phone\n  \
        twofold devices remove old-phone\n  \
        echo \"$CODE\" | twofold devices remove old-phone --code -\n  \
        sudo twofold devices --user alice --json"
    )]
    Devices(DevicesArgs),

    /// Count or renew your single-use backup codes
    #[command(
        name = "backup-codes",
        long_about = "Count or renew your single-use backup codes. Without a subcommand: \
        count. Each backup code works once in place of a code from the app; when 3 or fewer \
        are left, get a new set with `twofold backup-codes regenerate`."
    )]
    BackupCodes(BackupCodesArgs),

    /// Turn two-factor authentication off (needs your password and a code)
    #[command(
        long_about = "Turn two-factor authentication off: removes the secret and the \
        backup codes (the audit log keeps a record). Asks for a typed confirmation, then \
        your account password and a current code or a backup code, which are checked at \
        once. Root and administrators need no password or code (the daemon says who \
        does).\n\n\
        With --password-stdin and --code -, the password is the first line of standard \
        input and the code the second (after the confirmation's line, without --yes).",
        after_help = "Examples:\n  \
        twofold disable\n  \
        printf '%s\\n%s\\n' \"$PASSWORD\" \"$CODE\" | twofold disable --password-stdin --code - --yes\n  \
        sudo twofold disable --user alice --yes"
    )]
    Disable(DisableArgs),

    /// Check the set-up: daemon, server clock, PAM and sshd, your phone's clock
    #[command(
        long_about = "Check the set-up, one line per check (ok, warn or fail): the \
        daemon answers, and its version; the server clock is synchronized (NTP); \
        /etc/pam.d/sshd and /etc/pam.d/sudo use pam_twofold.so; sshd allows \
        keyboard-interactive authentication; your account's state; and your phone's clock, \
        judged from the codes of your recent logins.\n\n\
        Exit status: 0 when every check is ok, 1 when the worst is a warning, 2 when a \
        check failed."
    )]
    Doctor(DoctorArgs),

    /// See your login sessions (where from, since when) and end them
    #[command(
        long_about = "See your live login sessions (SSH, sudo, su, console, ...): id, \
        service, terminal, remote host with its name and location where known, when it \
        started, idle time and how it passed two-factor authentication; `*` marks the \
        session you are in. Where a module's grace= window is configured (a pam_twofold.so \
        auth line with grace= in /etc/pam.d), also lists the \"remembered\" logins that it \
        honours.\n\n\
        `revoke ID` ends a session (through logind when it has a logind session, else by \
        signals to its leading process); `revoke --others` ends all but the current one. \
        `timeout DURATION` has the daemon end your sessions older than DURATION (`off` to \
        go back to the administrator's default). `forget` clears the remembered logins, \
        so the next sudo asks for a code again.",
        after_help = "Examples:\n  \
        twofold sessions\n  \
        twofold sessions --all --json\n  \
        twofold sessions revoke 1f2e3d4c\n  \
        twofold sessions revoke --others\n  \
        twofold sessions timeout 8h\n  \
        twofold sessions forget"
    )]
    Sessions(SessionsArgs),

    /// Administer users: list, reset, unlock, import them; hardware tokens; the audit trail
    #[command(
        long_about = "Administer two-factor authentication for other users: list every \
        user the daemon knows or the policy requires, remove the two-factor authentication \
        of someone who lost both phone and backup codes (optionally with a one-time bypass \
        code so that they can log in once to enroll again), release a lockout, import the \
        users of another two-factor PAM module, import and assign hardware OATH tokens, \
        and read the audit trail of who did what, to whom, from where and when.\n\n\
        Needs root, or the polkit permission org.twofold.administer. Check the person's \
        identity before a reset: the command cannot.",
        after_help = "Examples:\n  \
        sudo twofold admin users\n  \
        sudo twofold admin reset alice --reason \"lost phone; ID checked by J. Doe\" --bypass-code 24\n  \
        sudo twofold admin unlock alice\n  \
        sudo twofold admin import google-authenticator --all --dry-run\n  \
        sudo twofold admin tokens assign 987654321 alice\n  \
        sudo twofold admin log --user alice --since 3d\n  \
        sudo twofold admin log --since 2026-11-27 --json"
    )]
    Admin(AdminArgs),
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

    #[command(flatten)]
    pub setup: SetupArgs,
}

/// How a new secret is set up in an app: `twofold enroll`, `twofold devices add`.
#[derive(Debug, Clone, Default, Args)]
pub struct SetupArgs {
    /// Name shown in the authenticator app (default: this host's name)
    #[arg(long, value_name = "NAME", conflicts_with = "confirm")]
    pub issuer: Option<String>,

    /// Re-enrolling (new phone) or adding a device: `-` reads a current code of a device
    /// you have, or a backup code, from standard input (without it, it is asked for)
    #[arg(long, value_name = "-", conflicts_with = "confirm")]
    pub proof: Option<String>,

    /// Also write the QR code as a PNG image to FILE (it holds the secret: delete it after)
    #[arg(long, value_name = "FILE", conflicts_with = "confirm")]
    pub qr_png: Option<PathBuf>,

    /// Also write the QR code as an SVG image to FILE (it holds the secret: delete it after)
    #[arg(long, value_name = "FILE", conflicts_with = "confirm")]
    pub qr_svg: Option<PathBuf>,

    /// HMAC of the codes: SHA1 (what every app does, the default), SHA256 or SHA512;
    /// some apps ignore it and then show wrong codes
    #[arg(long, value_name = "ALG", conflicts_with = "confirm")]
    pub algorithm: Option<String>,

    /// Digits per code: 6 (the default) or 8; some apps ignore it
    #[arg(long, value_name = "N", conflicts_with = "confirm")]
    pub digits: Option<u32>,

    /// Seconds per code: 30 (the default) or 60; some apps ignore it
    #[arg(long, value_name = "SECONDS", conflicts_with = "confirm")]
    pub period: Option<u32>,

    /// Only start: print the secret and URI, then exit (finish with --confirm -)
    #[arg(long, conflicts_with = "confirm")]
    pub begin: bool,

    /// Finish an enrollment started with --begin: `-` reads the current code from the app
    /// from standard input
    #[arg(long, value_name = "-")]
    pub confirm: Option<String>,
}

/// `twofold devices`.
#[derive(Debug, Clone, Default, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevicesArgs {
    /// Act on USER's devices (needs root or the administer permission)
    #[arg(long, value_name = "USER", global = true)]
    pub user: Option<String>,

    #[command(subcommand)]
    pub command: Option<DevicesCommand>,
}

/// The subcommands of `twofold devices`.
#[derive(Debug, Clone, Subcommand)]
pub enum DevicesCommand {
    /// List the devices (the default)
    List,
    /// Add a device: its QR code, then its first code (needs a code of a device you have)
    Add(DeviceAddArgs),
    /// Remove a device (needs a code of another device, or a backup code)
    Remove(DeviceRemoveArgs),
}

/// `twofold devices add`.
#[derive(Debug, Clone, Args)]
pub struct DeviceAddArgs {
    /// The new device's name (e.g. spare-phone)
    #[arg(value_name = "NAME")]
    pub name: String,

    #[command(flatten)]
    pub setup: SetupArgs,
}

/// `twofold devices remove`.
#[derive(Debug, Clone, Args)]
pub struct DeviceRemoveArgs {
    /// The device to remove (`twofold devices` lists them)
    #[arg(value_name = "NAME")]
    pub name: String,

    /// `-` reads a current code of another device, or a backup code, from standard input
    /// (without it, it is asked for when needed)
    #[arg(long, value_name = "-")]
    pub code: Option<String>,
}

/// `twofold status`.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub user: UserArg,
}

/// `twofold backup-codes [count|regenerate]`.
#[derive(Debug, Clone, Default, Args)]
pub struct BackupCodesArgs {
    #[command(subcommand)]
    pub command: Option<BackupCodesCommand>,

    #[command(flatten)]
    pub user: UserArg,
}

/// The subcommands of `twofold backup-codes`.
#[derive(Debug, Clone, Subcommand)]
pub enum BackupCodesCommand {
    /// Show how many backup codes are left (warns when 3 or fewer)
    Count(StatusArgs),

    /// Replace all backup codes with a new set of 10 (the old ones stop working at once)
    #[command(
        long_about = "Replace all backup codes with a new set of 10 and print it, \
        once. The old codes stop working at once. Asks for a current code from the app or \
        a backup code (or reads it from standard input with --code -) when the daemon \
        says one is needed: root and administrators need none."
    )]
    Regenerate(RegenerateArgs),
}

/// `twofold backup-codes regenerate`.
#[derive(Debug, Clone, Default, Args)]
pub struct RegenerateArgs {
    #[command(flatten)]
    pub user: UserArg,

    /// `-` reads a current code from the app, or a backup code, from standard input
    /// (without it, it is asked for when needed)
    #[arg(long, value_name = "-")]
    pub code: Option<String>,
}

/// `twofold disable`.
#[derive(Debug, Clone, Default, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub user: UserArg,

    /// Do not ask for the typed confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Read the account password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,

    /// `-` reads a current code from the app, or a backup code, from standard input
    /// (after the password with --password-stdin; without it, it is asked for when needed)
    #[arg(long, value_name = "-")]
    pub code: Option<String>,
}

/// `twofold doctor`.
#[derive(Debug, Clone, Default, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub user: UserArg,

    /// PAM configuration directory to check (tests; default /etc/pam.d)
    #[arg(long, value_name = "DIR", hide = true)]
    pub pam_dir: Option<PathBuf>,

    /// sshd configuration file to check instead of asking `sshd -T` (tests; default
    /// /etc/ssh/sshd_config)
    #[arg(long, value_name = "FILE", hide = true)]
    pub sshd_config: Option<PathBuf>,

    /// Take the server clock's NTP state as given instead of asking the system (tests)
    #[arg(long, value_name = "yes|no", hide = true)]
    pub assume_ntp_synced: Option<YesNo>,

    /// twofoldd's configuration file to check (tests; default /etc/twofold/twofoldd.toml)
    #[arg(long, value_name = "FILE", hide = true)]
    pub daemon_config: Option<PathBuf>,
}

/// A yes/no value of a hidden test option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

/// `twofold sessions`.
#[derive(Debug, Clone, Default, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SessionsArgs {
    /// Act on USER's sessions (needs root or the administer permission)
    #[arg(long, value_name = "USER", global = true)]
    pub user: Option<String>,

    /// Also list sessions that ended in the last 7 days, with why
    #[arg(long)]
    pub all: bool,

    /// PAM configuration directory where a `grace=` window is looked for (tests; default
    /// /etc/pam.d)
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    pub pam_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<SessionsCommand>,
}

/// The subcommands of `twofold sessions`.
#[derive(Debug, Clone, Subcommand)]
pub enum SessionsCommand {
    /// List the sessions (the default)
    List {
        /// Also list sessions that ended in the last 7 days, with why
        #[arg(long)]
        all: bool,
    },
    /// End a session, or all but the current one with --others
    Revoke {
        /// The session id (from `twofold sessions`)
        #[arg(value_name = "ID", required_unless_present = "others")]
        id: Option<String>,
        /// End every session but the one you are in
        #[arg(long, conflicts_with = "id")]
        others: bool,
    },
    /// End sessions older than DURATION (30m, 8h, 1d, 1h30m), or `off`
    Timeout {
        /// DURATION or off
        #[arg(value_name = "DURATION|off")]
        duration: String,
    },
    /// Forget the remembered logins (the grace window starts afresh)
    Forget,
}

/// `twofold admin`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The subcommands of `twofold admin`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// List users: enrolled, required (and by when), last use, backup codes, lockout, sessions
    #[command(
        long_about = "List every user the daemon knows (enrolled now or before) and every \
        listed member of a required group: enrolled or not, required by policy and the \
        enrollment deadline, last successful use, backup codes left, locked until, and live \
        login sessions. With --json: a list of objects with the keys user, enrolled, \
        required, enroll_deadline, last_used, backup_codes_left, locked_until, \
        live_sessions (times in ISO 8601 UTC, null when unset)."
    )]
    Users,

    /// Remove a user's two-factor authentication so they enroll again (lost phone and codes)
    #[command(
        long_about = "Remove USER's two-factor authentication (secret and backup codes) so \
        that they enroll again; the reason goes into the audit trail. For someone who lost \
        both phone and backup codes, after their identity was checked by a person.\n\n\
        With --bypass-code HOURS also prints a one-time code, once, that lets USER log in \
        once within HOURS, in place of a code from the app, to run `twofold enroll`. With \
        --json: {\"user\", \"bypass_code\" (null without --bypass-code), \"expires\"}."
    )]
    Reset(AdminResetArgs),

    /// Release a user's lockout after too many wrong codes (from every source)
    Unlock {
        /// The user to unlock
        #[arg(value_name = "USER")]
        user: String,
    },

    /// Enroll users with the secrets they already use with another PAM module
    #[command(
        long_about = "Enroll users with the secrets and scratch codes they already use with \
        another two-factor PAM module, so that their phones keep working when the PAM line \
        is switched to pam_twofold.so. Users enrolled in twofold already are left alone and \
        listed. Needs root (to read the users' files) and the administer permission."
    )]
    Import(ImportArgs),

    /// Read the audit trail, newest first: who did what, to whom, from where, when
    #[command(
        long_about = "Read the audit trail, newest first: enrollments, codes accepted and \
        refused, backup codes used and regenerated, disable, lockouts, unlocks, resets, \
        bypass codes, sessions. Each entry names when (UTC), the acting user (the D-Bus \
        caller; root for logins through the PAM module), the user acted on, the event, the \
        PAM service, the terminal or remote host, and a detail.\n\n\
        With --json: a list of objects with the keys at, actor_uid, actor, user, event, \
        service, tty, rhost, detail (null when unknown or empty)."
    )]
    Log(AdminLogArgs),

    /// Hardware OATH tokens: import a vendor's PSKC file, list, assign, unassign, resync
    #[command(
        long_about = "Hardware OATH tokens (key fobs showing HOTP or TOTP codes) whose \
        seeds come from the vendor in a PSKC file (RFC 6030). Without a subcommand: lists \
        every imported token, its kind, algorithm, digits, step or next counter value, whom \
        it is assigned to and when it was last used. With --json: a list of objects with \
        the keys serial, kind, manufacturer, model, algorithm, digits, period (null for \
        HOTP), counter (null for TOTP), assigned_to (null when unassigned), imported_at, \
        last_used.\n\n\
        An assigned token is one of the user's devices, named by its serial (`twofold \
        devices --user USER` lists it); a user not enrolled yet is enrolled with it. An \
        HOTP token's counter stays with the token when its device goes, so that a code \
        once used never passes again.",
        after_help = "Examples:\n  \
        sudo twofold admin tokens import tokens.pskc --key-file vendor.key --dry-run\n  \
        sudo twofold admin tokens import tokens.pskc --key-file vendor.key\n  \
        sudo twofold admin tokens\n  \
        sudo twofold admin tokens assign 987654321 alice\n  \
        sudo twofold admin tokens resync 987654321\n  \
        sudo twofold admin tokens unassign 987654321"
    )]
    Tokens(TokensArgs),
}

/// `twofold admin reset`.
#[derive(Debug, Clone, Args)]
pub struct AdminResetArgs {
    /// The user whose two-factor authentication is removed
    #[arg(value_name = "USER")]
    pub user: String,

    /// Why, and who checked the user's identity (kept in the audit trail)
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,

    /// Also print a one-time code that lets USER log in once within HOURS (1 to 720)
    #[arg(long, value_name = "HOURS")]
    pub bypass_code: Option<String>,
}

/// `twofold admin import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub command: ImportCommand,
}

/// What `twofold admin import` reads.
#[derive(Debug, Clone, Subcommand)]
pub enum ImportCommand {
    /// Import google-authenticator-libpam's ~/.google_authenticator files
    #[command(
        name = "google-authenticator",
        long_about = "Import google-authenticator-libpam's files: each user's \
        ~/.google_authenticator (the home directory from the user database), or the file \
        given with --file. The file must be a regular file (not a symbolic link) owned by \
        the user (or, for --file, root) and readable by its owner only, as \
        pam_google_authenticator.so requires. The secret becomes the user's twofold secret, so the entry in their \
        authenticator app keeps working, and the unused 8-digit scratch codes become their \
        backup codes (stored hashed), each usable once.\n\n\
        Time-based (TOTP) files with 30-second steps are imported. Counter-based (HOTP) \
        files and other step sizes are refused: twofoldd does not support them yet. \
        WINDOW_SIZE, RATE_LIMIT and DISALLOW_REUSE are reported: twofold's policy applies \
        instead (codes are never accepted twice, one step of clock drift either way, and \
        the lockout of twofoldd.toml).\n\n\
        Prints one line per user: imported, already enrolled (left alone), or refused and \
        why. The files are kept (to roll back, put the PAM line back) unless \
        --remove-files is given; a file is removed only after its import succeeded. With \
        --json: a list of objects with the keys user, file, outcome (imported, \
        would_import, already_enrolled, refused, failed), detail, backup_codes, notes, \
        removed. The exit status is 1 when a user was refused or failed.",
        after_help = "Examples:\n  \
        sudo twofold admin import google-authenticator --all --dry-run\n  \
        sudo twofold admin import google-authenticator alice bob\n  \
        sudo twofold admin import google-authenticator --file carol=/srv/ga/carol\n  \
        sudo twofold admin import google-authenticator --all --remove-files"
    )]
    GoogleAuthenticator(GoogleAuthenticatorArgs),

    /// Import pam_oath's usersfile (/etc/users.oath)
    #[command(
        long_about = "Import pam_oath's usersfile (liboath's UsersFile format, usually \
        /etc/users.oath): its users, or the users named. The file must be a regular file \
        (not a symbolic link) owned by root with mode 0600 or stricter. The hex secret of \
        each time-based line with 30-second steps and 6 digits (HOTP/T30, HOTP/T30/6) \
        becomes the user's twofold secret, so their token or app keeps working; the steps \
        up to the import, and the step of the last code pam_oath accepted, count as used, \
        so that no code already used can be used again.\n\n\
        Every other line is not imported, with a one-line reason: counter-based HOTP \
        tokens, 60-second steps, 7 or 8 digits (twofoldd does not support them yet), a \
        PIN of pam_oath's own (a PIN of + is left to another module, as before), several \
        lines for one user, malformed lines (named by their line number; no field of a \
        line is ever printed).\n\n\
        Prints one line per user: imported, already enrolled (left alone), or refused and \
        why. The file is never changed (to roll back, put the PAM line back). With --json: \
        the list of objects of `import google-authenticator` (user, file, outcome, detail, \
        backup_codes, notes, removed). The exit status is 1 when a user was refused or \
        failed.",
        after_help = "Examples:\n  \
        sudo twofold admin import oath /etc/users.oath --dry-run\n  \
        sudo twofold admin import oath /etc/users.oath\n  \
        sudo twofold admin import oath /etc/users.oath alice bob"
    )]
    Oath(OathArgs),
}

/// `twofold admin import oath`.
#[derive(Debug, Clone, Default, Args)]
pub struct OathArgs {
    /// pam_oath's usersfile
    #[arg(value_name = "USERSFILE")]
    pub usersfile: PathBuf,

    /// Import only these users of the file
    #[arg(value_name = "USER")]
    pub users: Vec<String>,

    /// Change nothing: print what would happen to each user
    #[arg(long)]
    pub dry_run: bool,
}

/// `twofold admin import google-authenticator`.
#[derive(Debug, Clone, Default, Args)]
pub struct GoogleAuthenticatorArgs {
    /// The users whose ~/.google_authenticator is imported
    #[arg(value_name = "USER")]
    pub users: Vec<String>,

    /// Every user of the user database who has a ~/.google_authenticator
    #[arg(long, conflicts_with_all = ["users", "file"])]
    pub all: bool,

    /// Import USER's file from PATH instead of their home directory (repeatable)
    #[arg(long, value_name = "USER=PATH")]
    pub file: Vec<String>,

    /// Remove each file once its import succeeded
    #[arg(long, conflicts_with = "dry_run")]
    pub remove_files: bool,

    /// Change nothing: print what would happen to each user
    #[arg(long)]
    pub dry_run: bool,
}

/// `twofold admin log`.
#[derive(Debug, Clone, Default, Args)]
pub struct AdminLogArgs {
    /// Only entries about USER
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Only entries since T: a date (2026-11-27), a date and time (2026-11-27T14:00; UTC
    /// unless it ends in Z or an offset like +01:00) or a time ago (30m, 2h, 3d, 1w)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,

    /// At most N entries, the newest (default 100)
    #[arg(long, value_name = "N")]
    pub limit: Option<String>,
}

/// `twofold admin tokens`.
#[derive(Debug, Clone, Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    pub command: Option<TokensCommand>,
}

/// The subcommands of `twofold admin tokens` (none: list).
#[derive(Debug, Clone, Subcommand)]
pub enum TokensCommand {
    /// List the imported tokens (the same as no subcommand)
    List,

    /// Import the tokens of a vendor's PSKC file (RFC 6030), unassigned
    #[command(
        long_about = "Import the tokens of a vendor's PSKC seed file (RFC 6030): plain, or \
        encrypted with a pre-shared AES key (--key-file) or a password (--password-file; \
        asked for on the terminal when the file needs one and neither is given). The file \
        must be a regular file, not a symbolic link. A file that twofold cannot take whole \
        (a wrong key, an unsupported algorithm) is refused with one line and nothing is \
        imported. Tokens whose serial is known already are left alone and listed.\n\n\
        With --json: {\"imported\": [serials], \"skipped\": [serials]} (with --dry-run: \
        \"would_import\" in place of \"imported\")."
    )]
    Import(TokensImportArgs),

    /// Make a token a device of USER (enrolling USER if needed)
    Assign {
        /// The token's serial
        #[arg(value_name = "SERIAL")]
        serial: String,
        /// The user who gets it
        #[arg(value_name = "USER")]
        user: String,
    },

    /// Take a token back: its device goes, its counter stays with the token
    Unassign {
        /// The token's serial
        #[arg(value_name = "SERIAL")]
        serial: String,
    },

    /// Find an HOTP token's counter again from two consecutive codes
    #[command(
        long_about = "Resynchronise an HOTP token whose button was pressed many times \
        without a login (RFC 4226 section 7.4): give two consecutive codes it shows, \
        within the next 10,000 presses. Asked for on standard input (one per line) unless \
        given as arguments. TOTP tokens follow the clock and have nothing to resync."
    )]
    Resync {
        /// The token's serial
        #[arg(value_name = "SERIAL")]
        serial: String,
        /// A code the token shows, then the next one (asked for when not given)
        #[arg(value_name = "CODE", num_args = 2)]
        codes: Vec<String>,
    },
}

/// `twofold admin tokens import`.
#[derive(Debug, Clone, Default, Args)]
pub struct TokensImportArgs {
    /// The vendor's PSKC file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// File holding the pre-shared AES key, in hex, that the seeds are encrypted with
    #[arg(long, value_name = "FILE", conflicts_with = "password_file")]
    pub key_file: Option<PathBuf>,

    /// File whose first line is the password the seeds' key is derived from
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Change nothing: print what would be imported
    #[arg(long)]
    pub dry_run: bool,
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

/// A clap error's text with `--bus <ADDRESS>` and `--json` taken out of its `Usage:`
/// line: clap lists there every flag that was given (also through TWOFOLD_BUS_ADDRESS),
/// which reads as if they were required.
pub fn without_global_flags(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.starts_with("Usage: ") {
                line.replace(" --bus <ADDRESS>", "").replace(" --json", "")
            } else {
                line.to_owned()
            }
        })
        .collect()
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
        let err =
            Cli::try_parse_from(["twofold", "enroll", "--begin", "--confirm", "-"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn issuer_and_confirm_conflict() {
        let err = Cli::try_parse_from(["twofold", "enroll", "--issuer", "x", "--confirm", "-"])
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

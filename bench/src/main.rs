//! twofold-bench: pam_twofold.so + twofoldd against pam_google_authenticator.so and
//! pam_oath.so, side by side in one run, and the targets of issues 7 and 12 as PASS or
//! MISS.
//!
//! `sudo bench/run.sh [--users N] [--steps S] [--fleet-users N] [--big-users M]`: see
//! README "Benchmarks". Every timed login is `pam_start_confdir` + `pam_authenticate` +
//! `pam_end`, with a fresh valid code (one login per user per 30-second step: all three
//! modules refuse a reused code); pam_twofold runs on its default path (the daemon's
//! direct socket, then the bus), and on the bus alone for the bus-fallback line. The
//! side-by-side logins run in this process; module load samples and throughput clients
//! run in fresh processes: the bench binary re-executed with a hidden argument.
//!
//! | module | what |
//! |--------|------|
//! | `phases` | the phases in the order they run (see src/phases/mod.rs) and their figures |
//! | `report` | the header, the targets judged on the figures, the closing lines |
//! | `env` | the private mount namespace, /dev/log, the bus and twofoldd ([`env::World`]) |
//! | `logins` | latency samples, a module's users and replay bookkeeping, the step clock |
//! | `client` | the daemon's D-Bus API: Peer, enrollment in parallel |
//! | `pam`, `p2p`, `totp`, `seed` | PAM logins, a hand-written peer-to-peer Ping, codes, the big run's seeding |

mod client;
mod env;
mod logins;
mod p2p;
mod pam;
mod phases;
mod report;
mod seed;
mod totp;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use crate::env::World;
use crate::phases::{load, throughput};

/// Benchmark of pam_twofold.so + twofoldd against pam_google_authenticator and pam_oath
/// (needs root: a mount namespace, a root-owned daemon).
#[derive(Parser)]
#[command(
    name = "twofold-bench",
    after_help = "--big-users M: after the side-by-side run, stops twofoldd, seeds users up \
    to M straight into its database with its own store code (one shared set of 10 \
    backup-code hashes), restarts it, and measures the --small users' login p50, the \
    daemon's RSS and the PAM throughput with M users enrolled. The transactions are \
    committed on a copy in a private tmpfs that then replaces the daemon's database; \
    --seed-in-place commits them on the state disk."
)]
pub struct Args {
    /// Users of the side-by-side run.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub users: usize,
    /// Users of the small run (at most --users).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub small: usize,
    /// Users of the fleet-mode run (at most --users; 0: skip it).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub fleet_users: usize,
    /// Steps of 30 s each run logs its users in.
    #[arg(long, value_name = "S", default_value_t = 3)]
    pub steps: usize,
    /// Users enrolled for the big run (<= --users: skip it).
    #[arg(long, value_name = "M", default_value_t = 100_000)]
    pub big_users: usize,
    /// Commit the big run's seeding on the state disk, not on a tmpfs copy.
    #[arg(long)]
    pub seed_in_place: bool,
    /// Concurrent client processes of the throughput phase.
    #[arg(long, value_name = "C", default_value_t = 32)]
    pub clients: usize,
    /// Where twofoldd and libpam_twofold.so are (made absolute: module paths go into PAM
    /// service files).
    #[arg(long, value_name = "DIR", default_value_os_t = program_dir(), value_parser = absolute)]
    pub bin_dir: PathBuf,
    /// Keep the state directory (logs, databases) after the run.
    #[arg(long)]
    pub keep: bool,
    /// Profile twofoldd with perf during the pam_twofold throughput run.
    #[arg(long)]
    pub perf: bool,
    /// No private /dev/log: the host's /dev as it is.
    #[arg(long)]
    pub no_syslog: bool,
    /// An environment variable for twofoldd (repeatable).
    #[arg(long, value_name = "K=V", value_parser = key_value)]
    pub daemon_env: Vec<(String, String)>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or("KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

/// This program's directory.
fn program_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().unwrap().to_path_buf()
}

fn absolute(text: &str) -> Result<PathBuf, String> {
    Path::new(text)
        .canonicalize()
        .map_err(|e| format!("{text}: {e}"))
}

impl Args {
    /// Parsed, the user counts checked against each other.
    fn parse_checked() -> Args {
        let args = Args::parse();
        assert!(args.small <= args.users, "--small must be <= --users");
        assert!(
            args.fleet_users <= args.users,
            "--fleet-users must be <= --users"
        );
        args
    }
}

fn main() {
    // The bench re-executes itself for what must run in a fresh process.
    let raw: Vec<String> = std::env::args().collect();
    match raw.get(1).map(String::as_str) {
        Some(load::SAMPLE_ARG) => load::sample_and_exit(&raw[2]),
        Some(throughput::WORKER_ARG) => throughput::worker_and_exit(&raw[2..]),
        _ => {}
    }
    let args = Args::parse_checked();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("twofold-bench needs root (a mount namespace, a root-owned daemon)");
        std::process::exit(2);
    }
    // On a real disk (/var/tmp), so that fsync costs what it costs.
    let tmp = tempfile::Builder::new()
        .prefix("twofold-bench")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().to_path_buf();
    // Accounts for every user of every phase; the seeded ones after the measured ones,
    // so that NSS lookups of the measured users scan the same lines whatever M is.
    // (+2: the not-enrolled user of the Status-only logins, and the activation user.)
    let total_users = args.users.max(args.big_users) + 2;
    let syslog_lines = enter_world(&args, &dir, total_users);
    let started = Instant::now();
    report::header(&args, &dir);
    let mut world =
        World::start(&dir, &args.daemon_env, &args.bin_dir).unwrap_or_else(|e| panic!("{e}"));
    let figures = phases::run(&args, &dir, &mut world, total_users);
    report::targets(&args, &figures);
    report::footer(syslog_lines.as_ref(), started, &dir);
    drop(world);
    if args.keep {
        let _ = tmp.keep();
    }
}

/// Enters the private mount namespace (bench accounts in passwd) and serves /dev/log
/// unless `--no-syslog`; returns the syslog line counter. Exits on failure.
fn enter_world(args: &Args, dir: &Path, accounts: usize) -> Option<Arc<AtomicU64>> {
    env::enter_namespace(dir, accounts, !args.no_syslog).unwrap_or_else(|e| {
        eprintln!("twofold-bench: {e}");
        std::process::exit(2)
    });
    // A syslog socket, as on any real host (journald): without one, glibc's syslog()
    // falls back to /dev/console for modules that open the log with LOG_CONS
    // (pam_google_authenticator does, and from then on every module's lines in the
    // process go there), at milliseconds per line. --no-syslog measures that case.
    let syslog_lines = if args.no_syslog {
        None
    } else {
        Some(env::syslog_sink().unwrap_or_else(|e| {
            eprintln!("twofold-bench: {e}");
            std::process::exit(2)
        }))
    };
    if let Err(e) = totp::self_check() {
        eprintln!("twofold-bench: {e}");
        std::process::exit(2);
    }
    syslog_lines
}

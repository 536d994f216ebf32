//! Throughput: full PAM logins through pam_twofold and through pam_google_authenticator,
//! and bare Pings on the direct socket, each by `--clients` worker processes at once
//! (clients.rs); then twofoldd's memory after the burst. Processes, not threads: every
//! sudo or sshd-session is its own process, and pam_google_authenticator's file locking
//! differs between threads and processes.

mod clients;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use clients::{run, Job};
pub use clients::{worker_and_exit, Rate, WORKER_ARG};

use super::{big::Big, rss, Ctx, Kib};
use crate::env::{self, user_name, World};
use crate::logins::wait_next_step;
use crate::{pam, totp};

/// Seconds of each throughput run.
const THROUGHPUT_SECONDS: u64 = 10;
/// Users given to the throughput runs, at most (two logins each: the codes of two
/// steps); enough for 10 s at 10,000 logins/s.
const THROUGHPUT_USERS: usize = 50_000;

/// The phase's figures.
pub struct Results {
    pub twofold: Rate,
    pub twofold_users: usize,
    pub ga: Option<Rate>,
    pub ga_users: usize,
    pub ping_fresh: Rate,
    pub ping_persistent: Rate,
}

/// What the Ping baseline is, printed with the figures and quoted by the README.
pub const PING_DEFINITION: &str = "Ping baseline: each client process connects to twofoldd's \
direct socket, authenticates (AUTH EXTERNAL), sends one org.freedesktop.DBus.Peer.Ping, \
reads the reply and closes, in a loop (a PAM login opens a fresh connection in a fresh \
process, so this is the transport's floor for one call); the PASS compares against it. \
For information: Pings on one connection per client kept open.";

/// Writes a google-authenticator secret file for each of `n` users (the first `n` bench
/// accounts; settings as in the side-by-side run) and the service `bench-ga-tp`.
fn google_authenticator_users(
    dir: &Path,
    pamdir: &Path,
    so: &Path,
    n: usize,
) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::fs::OpenOptionsExt;
    let gadir = dir.join("ga-throughput");
    std::fs::create_dir_all(&gadir).expect("ga dir");
    let users: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| (user_name(i), totp::random_secret()))
        .collect();
    for (user, secret) in &users {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(gadir.join(user))
            .expect("ga secret file");
        write!(
            f,
            "{}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
            data_encoding::BASE32_NOPAD.encode(secret)
        )
        .expect("ga secret file");
    }
    pam::Service::new(
        pamdir,
        "bench-ga-tp",
        &format!(
            "auth required {} secret={}/${{USER}} user=root",
            so.display(),
            gadir.display()
        ),
    );
    users
}

/// The users pam_twofold's throughput clients log in: the seeded users of the big run
/// (not the last: the backup-code phase uses its code), else the side-by-side ones.
pub fn twofold_pool(
    big: Option<&Big>,
    side_by_side: &[(String, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    match big {
        Some(b) => b.seeded[..b.seeded.len() - 1]
            .iter()
            .take(THROUGHPUT_USERS)
            .cloned()
            .collect(),
        None => side_by_side.to_vec(),
    }
}

/// Runs the four throughput measurements, `--clients` processes each: full PAM logins
/// through pam_twofold (service `bench-twofold`, on `pool`), through
/// pam_google_authenticator (on as many accounts, up to `accounts`), and Pings on the
/// direct socket; then reads twofoldd's memory right after and 12 s later, and reports
/// where twofoldd spent the pam_twofold run if `--perf` recorded it.
pub fn phase(
    ctx: &Ctx,
    world: &World,
    pool: &[(String, Vec<u8>)],
    accounts: usize,
) -> (Results, Kib, Kib) {
    let (args, dir) = (ctx.args, &ctx.dir);
    // 32 PAM clients through pam_twofold, through pam_google_authenticator, and bare
    // Pings on the direct socket.
    println!(
        "\n== throughput, {} concurrent client processes",
        args.clients
    );
    let pamdir = &ctx.pamdir;
    let window = Duration::from_secs(THROUGHPUT_SECONDS);
    let ga_users = ctx.ga_so.as_deref().map_or(Vec::new(), |so| {
        let n = accounts.min(THROUGHPUT_USERS);
        google_authenticator_users(dir, pamdir, so, n)
    });
    // Codes of this step and the next: fresh for every user of both modules.
    wait_next_step(0.3);
    let step = totp::step_now();
    let perf = args.perf.then(|| start_perf(dir, world)).flatten();
    let pam_job = |service, users| Job::Pam {
        confdir: pamdir,
        service,
        step,
        users,
    };
    let twofold = run(&pam_job("bench-twofold", pool), args.clients, window, dir);
    if let Some(p) = &perf {
        // SAFETY: kill has no memory preconditions; p is perf, our child.
        unsafe { libc::kill(p.id() as i32, libc::SIGINT) };
    }
    let ga = ctx.ga_so.as_ref().map(|_| {
        run(
            &pam_job("bench-ga-tp", &ga_users),
            args.clients,
            window,
            dir,
        )
    });
    let socket = world.direct_socket();
    let ping_fresh = run(&Job::PingFresh(&socket), args.clients, window, dir);
    let ping_persistent = run(&Job::PingPersistent(&socket), args.clients, window, dir);
    let results = Results {
        twofold,
        twofold_users: pool.len(),
        ga,
        ga_users: ga_users.len(),
        ping_fresh,
        ping_persistent,
    };
    results.print();
    let (after, settled) = memory_after_burst(world);
    if let Some(perf) = perf {
        perf_report(perf, dir);
    }
    (results, after, settled)
}

impl Results {
    fn print(&self) {
        println!(
            "{:<44} {}   ({} users, codes of 2 steps each)",
            "pam_twofold, PAM logins (direct socket)",
            self.twofold.describe(),
            self.twofold_users
        );
        match &self.ga {
            Some(ga) => println!(
                "{:<44} {}   ({} users, codes of 2 steps each)",
                "pam_google_authenticator, PAM logins",
                ga.describe(),
                self.ga_users
            ),
            None => println!("pam_google_authenticator, PAM logins: not installed"),
        }
        println!(
            "{:<44} {}",
            "Peer.Ping, one connection per call",
            self.ping_fresh.describe()
        );
        println!(
            "{:<44} {}",
            "Peer.Ping, one open connection per client",
            self.ping_persistent.describe()
        );
        println!("{PING_DEFINITION}");
    }
}

/// `perf record` of twofoldd (if perf is installed), for `--perf`.
fn start_perf(dir: &Path, world: &World) -> Option<std::process::Child> {
    let child = Command::new("perf")
        .args(["record", "-q", "-g", "-F", "1999", "-o"])
        .arg(dir.join("perf.data"))
        .args(["-p", &world.daemon_pid()?.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some(child)
}

/// twofoldd's memory right after the throughput phase and 12 s later (KiB).
fn memory_after_burst(world: &World) -> (Kib, Kib) {
    let pid = world.daemon_pid().unwrap();
    println!(
        "{:<44} {}",
        "twofoldd memory after the throughput phase",
        env::memory_breakdown(pid)
    );
    let after = rss(world, "after the throughput phase");
    // The burst's extra threads (one per request in flight) end after 10 s idle.
    std::thread::sleep(Duration::from_secs(12));
    let settled = env::rss_kib(pid);
    if let Some((rss, _)) = settled {
        println!(
            "{:<44} {:.1} MiB 12 s later ({})",
            "twofoldd RSS",
            rss as f64 / 1024.0,
            env::memory_breakdown(pid)
        );
    }
    (after, settled)
}

/// Where twofoldd spent the pam_twofold throughput run (`--perf`).
fn perf_report(mut perf: std::process::Child, dir: &std::path::Path) {
    let _ = perf.wait();
    let report = std::process::Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,symbol",
            "-g",
            "none",
            "-i",
        ])
        .arg(dir.join("perf.data"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let _ = fs::write(dir.join("perf.txt"), &report);
    println!("-- twofoldd during the pam_twofold throughput run (perf, top symbols):");
    for l in report
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(25)
    {
        println!("   {l}");
    }
}

//! Throughput: `--clients` worker processes (the bench binary re-executed with a hidden
//! argument) started together, each running its job in a loop for the same window.
//! Processes, not threads: every sudo or sshd-session is its own process, and
//! pam_google_authenticator's file locking differs between threads and processes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{big::Big, rss, Ctx, Kib};
use crate::env::{self, user_name, World};
use crate::logins::wait_next_step;
use crate::{p2p, pam, totp};

/// Seconds of each throughput run.
const THROUGHPUT_SECONDS: u64 = 10;
/// Users given to the throughput runs, at most (two logins each: the codes of two
/// steps); enough for 10 s at 10,000 logins/s.
const THROUGHPUT_USERS: usize = 50_000;

/// The hidden argument that makes the bench binary a throughput worker.
pub const WORKER_ARG: &str = "--worker";

/// How long the workers get to start before the window opens.
const START_DELAY: Duration = Duration::from_millis(2500);

/// What each worker does in a loop.
pub enum Job<'a> {
    /// Full PAM logins (`pam_start_confdir` + `pam_authenticate` + `pam_end`) of its
    /// share of `users`, with the code of `step`, then of `step + 1` (both fresh and
    /// accepted with a ±1 window).
    Pam {
        confdir: &'a Path,
        service: &'a str,
        step: u64,
        users: &'a [(String, Vec<u8>)],
    },
    /// Connect to the direct socket, authenticate, `Peer.Ping`, close: per call.
    PingFresh(&'a Path),
    /// `Peer.Ping` on one connection per worker, opened before the window.
    PingPersistent(&'a Path),
}

/// What the workers did together.
#[derive(Debug, Default)]
pub struct Rate {
    pub ok: usize,
    pub failed: usize,
    /// From the window's opening to the last completion.
    pub secs: f64,
    /// Workers that ran out of users before the window closed.
    pub exhausted: usize,
    /// Workers that were not ready when the window opened.
    pub late: usize,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    /// "4,321/s (43,210 in 10.0 s)" plus whatever went wrong.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{:.0}/s ({} in {:.1} s",
            self.per_second(),
            self.ok,
            self.secs
        );
        if self.failed > 0 {
            s.push_str(&format!(", {} failed", self.failed));
        }
        if self.exhausted > 0 {
            s.push_str(&format!(", {} clients ran out of users", self.exhausted));
        }
        if self.late > 0 {
            s.push_str(&format!(", {} clients started late", self.late));
        }
        s.push(')');
        s
    }
}

/// Runs `job` in `clients` processes for `window`; `dir` holds the users' files.
pub fn run(job: &Job, clients: usize, window: Duration, dir: &Path) -> Rate {
    let exe = std::env::current_exe().expect("current_exe");
    let start = totp::now_f64() + START_DELAY.as_secs_f64();
    let end = start + window.as_secs_f64();
    let mut children = Vec::new();
    for k in 0..clients {
        let mut cmd = Command::new(&exe);
        cmd.arg(WORKER_ARG);
        match job {
            Job::Pam {
                confdir,
                service,
                step,
                users,
            } => {
                let file = users_file(dir, service, k, clients, users);
                cmd.arg("pam")
                    .arg(confdir)
                    .arg(service)
                    .arg(step.to_string())
                    .arg(file);
            }
            Job::PingFresh(socket) => {
                cmd.arg("ping-fresh").arg(socket);
            }
            Job::PingPersistent(socket) => {
                cmd.arg("ping-persistent").arg(socket);
            }
        }
        cmd.arg(start.to_string()).arg(end.to_string());
        children.push(cmd.stdout(Stdio::piped()).spawn().expect("worker"));
    }
    let mut rate = Rate::default();
    let mut last = start;
    for child in children {
        let out = child.wait_with_output().expect("worker");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [ok, failed, done, exhausted, late] = f[..] else {
            eprintln!("  worker said {text:?} ({})", out.status);
            rate.late += 1;
            continue;
        };
        rate.ok += ok as usize;
        rate.failed += failed as usize;
        rate.exhausted += exhausted as usize;
        rate.late += late as usize;
        last = last.max(done);
    }
    rate.secs = last - start;
    rate
}

/// Writes worker `k`'s share of `users` ("name hex-secret" lines).
fn users_file(
    dir: &Path,
    service: &str,
    k: usize,
    clients: usize,
    users: &[(String, Vec<u8>)],
) -> PathBuf {
    let path = dir.join(format!("throughput-{service}-{k}.users"));
    let mut text = String::new();
    for (user, secret) in users.iter().skip(k).step_by(clients) {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{user} {hex}\n"));
    }
    std::fs::write(&path, text).expect("users file");
    path
}

/// The worker process: `--worker KIND ARGS... START END`; prints
/// "ok failed last-completion exhausted late" and exits.
pub fn worker_and_exit(args: &[String]) -> ! {
    let n = args.len();
    let (start, end): (f64, f64) = (
        args[n - 2].parse().expect("start"),
        args[n - 1].parse().expect("end"),
    );
    let mut tally = Tally::default();
    match args[0].as_str() {
        "pam" => pam_worker(&args[1..n - 2], start, end, &mut tally),
        "ping-fresh" => ping_worker(Path::new(&args[1]), false, start, end, &mut tally),
        "ping-persistent" => ping_worker(Path::new(&args[1]), true, start, end, &mut tally),
        other => panic!("unknown worker {other}"),
    }
    println!(
        "{} {} {:.6} {} {}",
        tally.ok,
        tally.failed,
        tally.last,
        u8::from(tally.exhausted),
        u8::from(tally.late)
    );
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    last: f64,
    exhausted: bool,
    late: bool,
}

impl Tally {
    fn record(&mut self, ok: bool, what: &dyn Fn() -> String) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
            if self.failed <= 2 {
                eprintln!("  worker {}: {}", std::process::id(), what());
            }
        }
        self.last = totp::now_f64();
    }
}

/// Sleeps until `start`; marks the tally late if it is past already.
fn wait_for_window(start: f64, tally: &mut Tally) {
    let now = totp::now_f64();
    tally.late = now > start;
    if now < start {
        std::thread::sleep(Duration::from_secs_f64(start - now));
    }
    tally.last = totp::now_f64();
}

/// `pam CONFDIR SERVICE STEP USERS-FILE`.
fn pam_worker(args: &[String], start: f64, end: f64, tally: &mut Tally) {
    let service = pam::Service::existing(Path::new(&args[0]), &args[1]);
    let step: u64 = args[2].parse().expect("step");
    let users: Vec<(String, Vec<u8>)> = std::fs::read_to_string(&args[3])
        .expect("users file")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(user, hex)| {
            let secret = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (user.to_string(), secret)
        })
        .collect();
    // Codes computed before the window: only logins are timed.
    let jobs: Vec<(&str, String)> = [step, step + 1]
        .iter()
        .flat_map(|s| {
            users
                .iter()
                .map(move |(u, k)| (u.as_str(), totp::code(k, *s)))
        })
        .collect();
    wait_for_window(start, tally);
    for (user, code) in &jobs {
        if totp::now_f64() >= end {
            return;
        }
        let (rc, _) = service.login(user, code);
        tally.record(rc == 0, &|| format!("login of {user} -> PAM {rc}"));
    }
    tally.exhausted = true;
}

/// `Peer.Ping` on the direct socket, on a fresh connection per call or on one.
fn ping_worker(socket: &Path, persistent: bool, start: f64, end: f64, tally: &mut Tally) {
    let mut kept = if persistent {
        Some(p2p::Conn::open(socket).expect("direct socket"))
    } else {
        None
    };
    wait_for_window(start, tally);
    let object = twofold_contract::OBJECT_PATH;
    while totp::now_f64() < end {
        let result = match kept.as_mut() {
            Some(conn) => conn.ping(object),
            None => p2p::Conn::open(socket).and_then(|mut c| c.ping(object)),
        };
        let failed = result.as_ref().err().map(|e| e.to_string());
        tally.record(failed.is_none(), &|| format!("Ping: {failed:?}"));
    }
}

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

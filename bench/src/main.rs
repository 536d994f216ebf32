//! twofold-bench: pam_twofold.so + twofoldd against pam_google_authenticator.so and
//! pam_oath.so, side by side in one run, and the targets of issues 7 and 12 as PASS or
//! MISS.
//!
//! `sudo bench/run.sh [--users N] [--steps S] [--fleet-users N] [--big-users M]`: see README "Benchmarks".
//! `--big-users M` (default 100,000) seeds users up to M straight into the daemon's
//! database while it is stopped (src/seed.rs), then measures logins, RSS and throughput
//! with M users enrolled.
//! Every timed login is `pam_start_confdir` + `pam_authenticate` + `pam_end`, with a
//! fresh valid code (one login per user per 30-second step: all three modules refuse a
//! reused code); pam_twofold runs on its default path (the daemon's direct socket, then
//! the bus), and on the bus alone for the bus-fallback line. The side-by-side logins run
//! in this process; module load samples (src/load.rs) and throughput clients
//! (src/throughput.rs) run in fresh processes: the bench binary re-executed with a
//! hidden argument. The phases are in src/phases.rs, the targets in src/targets.rs.

mod absent;
mod env;
mod load;
mod p2p;
mod pam;
mod pg;
mod phases;
mod seed;
mod targets;
mod throughput;
mod totp;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use twofold_contract::TwofoldProxy;

use crate::env::{user_name, World};
use crate::pam::Service;
use crate::targets::Verdicts;

struct Args {
    users: usize,
    small: usize,
    fleet_users: usize,
    steps: usize,
    big_users: usize,
    seed_in_place: bool,
    clients: usize,
    bin_dir: PathBuf,
    keep: bool,
    perf: bool,
    no_syslog: bool,
    daemon_env: Vec<(String, String)>,
}

fn parse_args() -> Args {
    let exe = std::env::current_exe().expect("current_exe");
    let mut a = Args {
        users: 300,
        small: 100,
        fleet_users: 50,
        steps: 3,
        big_users: 100_000,
        seed_in_place: false,
        clients: 32,
        bin_dir: exe.parent().unwrap().to_path_buf(),
        keep: false,
        perf: false,
        no_syslog: false,
        daemon_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value().parse().expect("--users N"),
            "--small" => a.small = value().parse().expect("--small N"),
            "--fleet-users" => a.fleet_users = value().parse().expect("--fleet-users N"),
            "--steps" => a.steps = value().parse().expect("--steps N"),
            "--big-users" => a.big_users = value().parse().expect("--big-users N"),
            "--clients" => a.clients = value().parse().expect("--clients N"),
            "--seed-in-place" => a.seed_in_place = true,
            "--bin-dir" => a.bin_dir = PathBuf::from(value()),
            "--keep" => a.keep = true,
            "--perf" => a.perf = true,
            "--no-syslog" => a.no_syslog = true,
            "--daemon-env" => {
                let kv = value();
                let (k, v) = kv.split_once('=').expect("--daemon-env KEY=VALUE");
                a.daemon_env.push((k.to_string(), v.to_string()));
            }
            "-h" | "--help" => {
                println!(
                    "twofold-bench [--users N (300)] [--small N (100)] [--fleet-users N (50; 0: skip)] \
                     [--steps S (3)] [--big-users M (100000; <= --users: skip)] [--seed-in-place] \
                     [--clients C (32)] [--bin-dir DIR] [--keep] [--perf] [--no-syslog] [--daemon-env K=V]...\n\n\
                     --big-users M: after the side-by-side run, stops twofoldd, seeds users up to M \
                     straight into its database with its own store code (one shared set of 10 \
                     backup-code hashes), restarts it, and measures the --small users' login p50, \
                     the daemon's RSS and the PAM throughput with M users enrolled. The \
                     transactions are committed on a copy in a private tmpfs that then replaces \
                     the daemon's database; --seed-in-place commits them on the state disk."
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    // Absolute: module paths go into PAM service files.
    a.bin_dir = a.bin_dir.canonicalize().expect("--bin-dir");
    assert!(a.small <= a.users, "--small must be <= --users");
    assert!(a.fleet_users <= a.users, "--fleet-users must be <= --users");
    a
}

/// Latency sample set.
#[derive(Default, Clone)]
struct Samples {
    ms: Vec<f64>,
    failures: usize,
}

impl Samples {
    fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
    }
    fn pct(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let mut v = self.ms.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    }
    fn p50(&self) -> f64 {
        self.pct(50.0)
    }
    fn p99(&self) -> f64 {
        self.pct(99.0)
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<44} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  >10ms {:<4} n={:<5} failed={}",
            self.p50(),
            self.p99(),
            self.pct(100.0),
            self.ms.iter().filter(|m| **m > 10.0).count(),
            self.ms.len(),
            self.failures
        )
    }
}

/// One module under test with its users' secrets and replay bookkeeping.
struct Module {
    name: &'static str,
    service: Service,
    users: Vec<(String, Vec<u8>)>,
    last_step: Vec<u64>,
    samples: Samples,
}

impl Module {
    /// Logs in every user not yet used in the current step, once.
    fn pass(&mut self) {
        for i in 0..self.users.len() {
            self.login_one(i);
        }
    }

    /// Logs in user `i` if not yet used in the current step.
    fn login_one(&mut self, i: usize) {
        let step = totp::step_now();
        if self.last_step[i] >= step {
            return;
        }
        let code = totp::code(&self.users[i].1, step);
        let (rc, took) = self.service.login(&self.users[i].0, &code);
        self.last_step[i] = step;
        if rc == 0 {
            self.samples.push(took);
        } else {
            self.samples.failures += 1;
            if self.samples.failures <= 3 {
                eprintln!("  {}: login of {} -> PAM {rc}", self.name, self.users[i].0);
            }
        }
    }
}

/// Sleeps until `lead` seconds into the next 30-second step.
fn wait_next_step(lead: f64) {
    let now = totp::now_f64();
    let next = ((now / 30.0).floor() + 1.0) * 30.0 + lead;
    std::thread::sleep(Duration::from_secs_f64(next - now));
}

async fn connect(address: &str) -> zbus::Result<(zbus::Connection, TwofoldProxy<'static>)> {
    let conn = zbus::connection::Builder::address(address).build().await?;
    let proxy = TwofoldProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    Ok((conn, proxy))
}

struct Enrolled {
    secret: Vec<u8>,
    backup_codes: Vec<String>,
}

/// Enrolls `users` through EnrollBegin/EnrollConfirm as root, `parallel` at a time;
/// returns the secrets and the per-enrollment latencies.
async fn enroll(
    address: &str,
    users: Vec<String>,
    parallel: usize,
) -> (HashMap<String, Enrolled>, Samples) {
    let queue = Arc::new(tokio::sync::Mutex::new(users));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let queue = queue.clone();
        let address = address.to_string();
        tasks.spawn(async move {
            let (_conn, proxy) = connect(&address).await.expect("bus");
            let mut done = Vec::new();
            let mut lat = Samples::default();
            loop {
                let Some(user) = queue.lock().await.pop() else {
                    break;
                };
                let t = Instant::now();
                let e = proxy
                    .enroll_begin(&user, "bench", "")
                    .await
                    .expect("EnrollBegin");
                let secret = totp::decode_base32(&e.secret);
                let mut tries = 0;
                let codes = loop {
                    // The previous step's code, so that the current one stays fresh.
                    let code = totp::code(&secret, totp::step_now() - 1);
                    match proxy.enroll_confirm(&user, &code).await {
                        Ok(c) => break c,
                        Err(e) if tries < 3 => {
                            tries += 1;
                            eprintln!("  EnrollConfirm {user}: {e:?}; retrying");
                        }
                        Err(e) => panic!("EnrollConfirm {user}: {e:?}"),
                    }
                };
                lat.push(t.elapsed());
                done.push((
                    user,
                    Enrolled {
                        secret,
                        backup_codes: codes,
                    },
                ));
            }
            (done, lat)
        });
    }
    let mut all = HashMap::new();
    let mut lat = Samples::default();
    while let Some(r) = tasks.join_next().await {
        let (done, l) = r.expect("enroll task");
        all.extend(done);
        lat.ms.extend(l.ms);
    }
    (all, lat)
}

fn fsync_cost(dir: &Path) -> Samples {
    let path = dir.join("fsync-probe");
    let mut f = fs::File::create(&path).unwrap();
    let block = [7u8; 4096];
    let mut s = Samples::default();
    for _ in 0..200 {
        let t = Instant::now();
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        s.push(t.elapsed());
    }
    let _ = fs::remove_file(&path);
    s
}

fn argon2_cpu_seconds() -> f64 {
    use argon2::password_hash::PasswordHasher;
    // The daemon's parameters (daemon/src/backup_codes.rs): Argon2id, 19 MiB, t=2, p=1.
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let n = 5;
    let t = cpu_self();
    for _ in 0..n {
        a.hash_password(b"0123456789").unwrap();
    }
    (cpu_self() - t) / n as f64
}

fn cpu_self() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    // SAFETY: initialized by getrusage above.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.to_string()))
        .unwrap_or_default();
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|o| {
            o.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l[12..].trim_matches('"').to_string())
        })
        .unwrap_or_default();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{os}, kernel {}, {cores} cores ({cpu}), {}",
        kernel.trim(),
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn find_module(name: &str) -> Option<PathBuf> {
    [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/security",
        "/usr/lib/security",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.exists())
}

fn random_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    twofoldd::secrets::os_random(&mut s);
    s
}

/// Seconds of each throughput run.
const THROUGHPUT_SECONDS: u64 = 10;
/// Users given to the throughput runs, at most (two logins each: the codes of two
/// steps); enough for 10 s at 10,000 logins/s.
const THROUGHPUT_USERS: usize = 50_000;

/// The big run: logins of the `--small` users with `--big-users` enrolled.
struct Big {
    samples: Samples,
    /// twofoldd's `VmRSS`, `VmHWM` (KiB) right after those logins.
    rss: Option<(u64, u64)>,
    /// The seeded users and their TOTP secrets.
    seeded: Vec<(String, Vec<u8>)>,
    /// The backup codes they share.
    backup_codes: Vec<String>,
}

/// `n` with thousands separators: 100,000.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `org.freedesktop.DBus.Peer` of twofoldd on `conn`.
async fn peer(conn: &zbus::Connection) -> zbus::fdo::PeerProxy<'static> {
    zbus::fdo::PeerProxy::builder(conn)
        .destination(twofold_contract::BUS_NAME)
        .path(twofold_contract::OBJECT_PATH)
        .build()
        .await
        .unwrap()
}

/// Fleet mode: a PostgreSQL server, a second bus with a twofoldd on that store (fleet
/// mode: no `--db`), `--fleet-users` users enrolled through it, and the same PAM logins
/// as the SQLite small run (one per user per step, `--steps` steps).
fn fleet_run(args: &Args, dir: &Path, rt: &tokio::runtime::Runtime) -> Result<Samples, String> {
    if args.fleet_users == 0 {
        return Err("--fleet-users 0".into());
    }
    let Some(bin) = pg::postgres_bin() else {
        return Err(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
             bench/run.sh installs the postgresql package)"
                .into(),
        );
    };
    let fdir = dir.join("fleet");
    let server = pg::PgServer::start(&fdir.join("pg"), bin.clone())
        .map_err(|e| format!("PostgreSQL did not start: {e}"))?;
    println!(
        "PostgreSQL from {} on 127.0.0.1:{}, fsync={}, synchronous_commit={}, TCP without TLS",
        bin.display(),
        server.port,
        server.show("fsync"),
        server.show("synchronous_commit")
    );
    let world = env::World::start_with_config(
        &fdir,
        &args.daemon_env,
        &args.bin_dir,
        &server.storage_config("bench-fleet-1"),
    )?;
    let users: Vec<String> = (0..args.fleet_users).map(user_name).collect();
    let t = Instant::now();
    let (enrolled, lat) = rt.block_on(enroll(&world.address, users.clone(), 4));
    println!(
        "{}   ({:.1} enrollments/s)",
        lat.line("one enrollment (latency, 4 in flight)"),
        users.len() as f64 / t.elapsed().as_secs_f64()
    );
    let mut m = Module {
        name: "pam_twofold (PostgreSQL)",
        service: Service::new(
            &dir.join("pam.d"),
            "bench-twofold-fleet",
            &format!(
                "auth required {} bus=unix:path={}",
                args.bin_dir.join("libpam_twofold.so").display(),
                world.socket.display()
            ),
        ),
        users: users
            .iter()
            .map(|u| (u.clone(), enrolled[u].secret.clone()))
            .collect(),
        last_step: vec![0; users.len()],
        samples: Samples::default(),
    };
    for _ in 0..args.steps {
        wait_next_step(0.3);
        m.pass();
    }
    drop(world);
    drop(server);
    Ok(m.samples)
}

fn main() {
    // The bench re-executes itself for what must run in a fresh process.
    let raw: Vec<String> = std::env::args().collect();
    match raw.get(1).map(String::as_str) {
        Some(load::SAMPLE_ARG) => load::sample_and_exit(&raw[2]),
        Some(throughput::WORKER_ARG) => throughput::worker_and_exit(&raw[2..]),
        _ => {}
    }
    let args = parse_args();
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
    header(&args, &dir);
    let mut world =
        World::start(&dir, &args.daemon_env, &args.bin_dir).unwrap_or_else(|e| panic!("{e}"));
    let ctx = context(&args, &dir, &world);
    let mut v = Verdicts(Vec::new());

    let cal = phases::calibration(&ctx, &world);
    println!("\n== module load: dlopen + dlclose in a fresh process, libpam loaded");
    let loads = load::phase(&ctx.so, &dir, &ctx.ga_so, &ctx.oath_so);
    let (mut enrolled, per_enroll) = phases::enrollment(&ctx);
    let (mut small, bus_path) = phases::small_run(&ctx, &enrolled);
    let breakdown = phases::breakdown(&ctx, &mut small);
    phases::enroll_rest(&ctx, &mut enrolled);
    let modules = phases::side_by_side(&ctx, &enrolled, &small);
    phases::print_breakdown(&modules[0].samples, &breakdown, &cal);
    println!();
    let rss_users = phases::rss(&world, &format!("with {} users enrolled", args.users));
    let big = phases::big_run(&ctx, &mut world, &small, &enrolled);

    // Throughput: 32 PAM clients through pam_twofold, through pam_google_authenticator,
    // and bare Pings on the direct socket.
    println!(
        "\n== throughput, {} concurrent client processes",
        args.clients
    );
    let twofold_pool: Vec<(String, Vec<u8>)> = match &big {
        // Seeded users (not the last: its backup code is checked below).
        Some(b) => b.seeded[..b.seeded.len() - 1]
            .iter()
            .take(THROUGHPUT_USERS)
            .cloned()
            .collect(),
        None => modules[0].users.clone(),
    };
    let ga_so = ctx.ga_so.as_deref();
    let (tp, perf) = throughput::phase(&args, &dir, &world, &twofold_pool, ga_so, total_users);
    let (after_throughput, settled) = phases::memory_after_burst(&world);
    if let Some(perf) = perf {
        phases::perf_report(perf, &dir);
    }
    let (estimates, after_backup_codes) =
        phases::backup_codes(&ctx, &world, &enrolled, cal.argon2_cpu, big.as_ref());

    // An absent daemon: the bus is there but nobody owns the name; then no bus at all;
    // then a bus that starts the daemon.
    println!("\n== absent daemon");
    let fresh = user_name(args.users + 1);
    let absent = absent::phase(
        &mut world,
        &ctx.pamdir,
        (&ctx.twofold_line, &ctx.bus_line),
        &ctx.so,
        &user_name(0),
        (&fresh, &enrolled[&fresh].secret),
    );

    // Fleet mode (issue 8): the same logins against a twofoldd whose store is PostgreSQL.
    println!("\n== fleet mode: twofoldd on a PostgreSQL store");
    let fleet = fleet_run(&args, &dir, &ctx.rt);
    print_fleet(&args, &fleet, &small.samples);

    let find = |name| {
        let module = modules.iter().find(|m| m.name == name);
        module.map(|m| &m.samples)
    };
    let tf = &modules[0].samples;
    targets::login_verdicts(
        &mut v,
        tf,
        find("pam_google_authenticator"),
        find("pam_oath"),
        &bus_path,
    );
    targets::load_verdict(&mut v, &loads);
    targets::big_verdict(&mut v, &args, big.as_ref(), &small.samples, per_enroll);
    targets::throughput_verdicts(&mut v, &tp, args.clients);
    targets::argon2_note(&mut v, &estimates);
    let rss = targets::Rss {
        users: rss_users,
        after_throughput,
        settled,
        after_backup_codes,
    };
    targets::rss_verdict(&mut v, &args, big.as_ref(), &rss);
    targets::absent_verdicts(&mut v, &absent);
    targets::print(&v, &fleet, &small.samples);
    println!("load average at end: {}", loadavg());
    match &syslog_lines {
        Some(n) => println!(
            "syslog lines received on the bench's /dev/log: {}",
            n.load(std::sync::atomic::Ordering::Relaxed)
        ),
        None => println!("no syslog socket (--no-syslog): the host's /dev as it is"),
    }
    println!(
        "\nbench took {:.0} s; logs in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
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

/// Prints the run's date, machine and settings.
fn header(args: &Args, dir: &Path) {
    let date = String::from_utf8_lossy(
        &std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_string();
    println!("twofold-bench {date}");
    println!("machine: {}", machine());
    println!("load average at start: {}", loadavg());
    println!(
        "syslog: {}",
        if args.no_syslog {
            "the host's /dev as it is (--no-syslog)"
        } else {
            "a private /dev/log served by the bench"
        }
    );
    println!(
        "passwd lookups: {}",
        if env::passwd_is_hashed() {
            "libnss-db (hashed), then files"
        } else {
            "files only (apt install libnss-db for hashed lookups: with 100,000 accounts, \
             a files lookup of a late line reads the whole file)"
        }
    );
    println!(
        "users: {} (comparison), {} (small run), {} (big run{}), {} steps of 30 s, {} concurrent clients; state on {}",
        args.users,
        args.small,
        thousands(args.big_users),
        if args.big_users > args.users {
            ", seeded"
        } else {
            ": skipped, <= --users"
        },
        args.steps,
        args.clients,
        dir.display()
    );
    if !args.daemon_env.is_empty() {
        println!("twofoldd environment: {:?}", args.daemon_env);
    }
}

/// The phases' shared context: the runtime, the module's two `auth` lines, the anchors.
fn context<'a>(args: &'a Args, dir: &Path, world: &World) -> phases::Ctx<'a> {
    let so = args.bin_dir.join("libpam_twofold.so");
    assert!(so.exists(), "{} missing", so.display());
    phases::Ctx {
        args,
        dir: dir.to_path_buf(),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        address: world.address.clone(),
        pamdir: dir.join("pam.d"),
        twofold_line: format!(
            "auth required {} socket={} bus=unix:path={}",
            so.display(),
            world.direct_socket().display(),
            world.socket.display()
        ),
        bus_line: format!(
            "auth required {} bus=unix:path={}",
            so.display(),
            world.socket.display()
        ),
        so,
        ga_so: find_module("pam_google_authenticator.so"),
        oath_so: find_module("pam_oath.so"),
    }
}

/// The fleet-mode login figures beside SQLite's.
fn print_fleet(args: &Args, fleet: &Result<Samples, String>, small: &Samples) {
    match fleet {
        Ok(s) => {
            println!(
                "{}",
                small.line(&format!("pam_twofold, SQLite store, {} users", args.small))
            );
            println!(
                "{}   ({:.2} × SQLite)",
                s.line(&format!(
                    "pam_twofold, PostgreSQL fleet store, {} users",
                    args.fleet_users
                )),
                s.p50() / small.p50()
            );
        }
        Err(why) => println!("pam_twofold, PostgreSQL fleet store: not measured: {why}"),
    }
}

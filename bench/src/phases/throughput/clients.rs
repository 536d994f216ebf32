//! The throughput clients: `--clients` processes (the bench binary re-executed with a
//! hidden argument) started together, each running its job in a loop for the same
//! window, and what they did together.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{p2p, pam, totp};

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

//! The report: the run's header (date, machine, settings), the targets of issues 7 and
//! 12 judged on the phases' figures (src/report/targets.rs), and the closing lines.

mod targets;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::env;
use crate::phases::Figures;
use crate::Args;
use targets::Verdicts;

/// Prints the run's date, machine and settings.
pub fn header(args: &Args, dir: &Path) {
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

/// Judges the targets on `figures` and prints them, with the fleet-mode figure.
pub fn targets(args: &Args, figures: &Figures) {
    let compared = &figures.compare;
    let small = &compared.small.samples;
    let big = figures.big.as_ref();
    let mut v = Verdicts(Vec::new());
    targets::login_verdicts(
        &mut v,
        &compared.modules[0].samples,
        compared.samples_of("pam_google_authenticator"),
        compared.samples_of("pam_oath"),
        &compared.bus_path,
    );
    targets::load_verdict(&mut v, &figures.loads);
    targets::big_verdict(&mut v, args, big, small, compared.per_enroll);
    targets::throughput_verdicts(&mut v, &figures.throughput, args.clients);
    targets::argon2_note(&mut v, &figures.estimates);
    targets::rss_verdict(&mut v, args, big, &figures.rss);
    targets::absent_verdicts(&mut v, &figures.absent);
    targets::print(&v, &figures.fleet, small);
}

/// The closing lines: the load, what the bench's syslog received, the run's length.
pub fn footer(syslog_lines: Option<&Arc<AtomicU64>>, started: Instant, dir: &Path) {
    println!("load average at end: {}", loadavg());
    match syslog_lines {
        Some(n) => println!(
            "syslog lines received on the bench's /dev/log: {}",
            n.load(Ordering::Relaxed)
        ),
        None => println!("no syslog socket (--no-syslog): the host's /dev as it is"),
    }
    println!(
        "\nbench took {:.0} s; logs in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
}

/// The OS, kernel, cores, CPU model and memory.
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

/// The 1, 5 and 15-minute load averages.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` with thousands separators: 100,000.
pub fn thousands(n: usize) -> String {
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

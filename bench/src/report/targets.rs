//! The targets of issues 7 and 12, as PASS, MISS or "not measured: why", each with the
//! figures it was judged on.

use super::thousands;
use crate::logins::Samples;
use crate::phases::{load, throughput, Absent, Big, Estimate, Rss};
use crate::Args;

pub struct Verdicts(pub Vec<(String, String)>);

impl Verdicts {
    pub fn add(&mut self, target: &str, verdict: String) {
        self.0.push((target.to_string(), verdict));
    }
}

fn verdict(ok: bool, measured: String) -> String {
    format!("{} ({measured})", if ok { "PASS" } else { "MISS" })
}

/// TOTP login p50 against pam_google_authenticator's (with the p99s, and pam_oath's and
/// the bus-fallback path's p50 for information).
pub fn login_verdicts(
    v: &mut Verdicts,
    twofold: &Samples,
    ga: Option<&Samples>,
    oath: Option<&Samples>,
    bus_path: &Samples,
) {
    let target = "TOTP login p50 <= 0.5 x pam_google_authenticator";
    match ga {
        Some(ga) if !ga.ms.is_empty() && !twofold.ms.is_empty() => {
            let r = twofold.p50() / ga.p50();
            v.add(
                target,
                verdict(
                    r <= 0.5 && twofold.failures == 0,
                    format!(
                        "p50 {:.3} ms vs {:.3} ms = {r:.2}x; p99 {:.3} ms vs {:.3} ms{}{}",
                        twofold.p50(),
                        ga.p50(),
                        twofold.p99(),
                        ga.p99(),
                        oath.map_or(String::new(), |o| format!(
                            "; pam_oath p50 {:.3} ms, p99 {:.3} ms",
                            o.p50(),
                            o.p99()
                        )),
                        failed_logins(twofold)
                    ),
                ),
            );
        }
        _ => v.add(
            target,
            "not measured: pam_google_authenticator.so missing or no successful login".into(),
        ),
    }
    v.add(
        "bus-fallback path p50 (information, no target)",
        format!(
            "{:.3} ms (p99 {:.3} ms) vs {:.3} ms on the direct socket{}",
            bus_path.p50(),
            bus_path.p99(),
            twofold.p50(),
            failed_logins(bus_path)
        ),
    );
}

fn failed_logins(s: &Samples) -> String {
    if s.failures > 0 {
        format!(", {} logins failed", s.failures)
    } else {
        String::new()
    }
}

/// Module load (median dlopen + dlclose) against pam_google_authenticator's.
pub fn load_verdict(v: &mut Verdicts, loads: &[load::LoadTimes]) {
    let target = "module load <= 1.5 x pam_google_authenticator";
    let find = |name: &str| loads.iter().find(|l| l.name.starts_with(name));
    match (find("pam_twofold"), find("pam_google_authenticator")) {
        (Some(tf), Some(ga)) if !tf.samples.ms.is_empty() && !ga.samples.ms.is_empty() => {
            let r = tf.samples.p50() / ga.samples.p50();
            let oath = find("pam_oath").map_or(String::new(), |o| {
                format!("; pam_oath {:.0} µs", o.samples.p50() * 1000.0)
            });
            v.add(
                target,
                verdict(
                    r <= 1.5,
                    format!(
                        "median {:.0} µs vs {:.0} µs = {r:.2}x{oath}",
                        tf.samples.p50() * 1000.0,
                        ga.samples.p50() * 1000.0
                    ),
                ),
            );
        }
        _ => v.add(
            target,
            "not measured: a module is missing or every sample failed".into(),
        ),
    }
}

/// 32-client PAM throughput against pam_google_authenticator's and against bare Pings
/// (one connection per call: see [`throughput::PING_DEFINITION`]).
pub fn throughput_verdicts(v: &mut Verdicts, tp: &throughput::Results, clients: usize) {
    let twofold = tp.twofold.per_second();
    let clean = tp.twofold.failed == 0;
    let target = format!("{clients}-client throughput >= pam_google_authenticator's");
    match &tp.ga {
        Some(ga) => v.add(
            &target,
            verdict(
                twofold >= ga.per_second() && clean,
                format!(
                    "{twofold:.0}/s vs {:.0}/s = {:.2}x{}",
                    ga.per_second(),
                    twofold / ga.per_second(),
                    if clean {
                        String::new()
                    } else {
                        format!(", {} logins failed", tp.twofold.failed)
                    }
                ),
            ),
        ),
        None => v.add(
            &target,
            "not measured: pam_google_authenticator.so missing".into(),
        ),
    }
    let ping = tp.ping_fresh.per_second();
    v.add(
        &format!("{clients}-client throughput >= 50% of bare Ping (same socket)"),
        verdict(
            twofold >= 0.5 * ping && clean,
            format!(
                "{twofold:.0}/s vs {ping:.0}/s = {:.0}% (Ping one connection per call; \
                 on open connections {:.0}/s)",
                100.0 * twofold / ping,
                tp.ping_persistent.per_second()
            ),
        ),
    );
}

/// An absent daemon reported within 50 ms on the bus-fallback path, and a stopped
/// activatable daemon started by the first login.
pub fn absent_verdicts(v: &mut Verdicts, absent: &Absent) {
    let (worst, all_unavailable) = absent.worst_p99();
    let each: Vec<String> = absent
        .cases
        .iter()
        .map(|(label, s)| format!("{label} {:.1} ms", s.p99()))
        .collect();
    v.add(
        "absent daemon reported in <= 50 ms",
        verdict(
            worst <= 50.0 && all_unavailable,
            format!("p99: {}", each.join(", ")),
        ),
    );
    let target = "stopped activatable daemon started by the first login";
    match &absent.activation {
        Ok((rc, took, owned)) => v.add(
            target,
            verdict(
                *rc == 0 && *owned,
                format!(
                    "PAM {rc} in {:.0} ms, twofoldd running after it: {owned}",
                    took.as_secs_f64() * 1000.0
                ),
            ),
        ),
        Err(e) => v.add(target, format!("not measured: {e}")),
    }
}

/// The login p50 with `--big-users` enrolled against the p50 with `--small`.
pub fn big_verdict(
    v: &mut Verdicts,
    args: &Args,
    big: Option<&Big>,
    small: &Samples,
    per_enroll: f64,
) {
    match big {
        Some(b) => {
            let r = b.samples.p50() / small.p50();
            v.add(
                &format!(
                    "p50 at {} users <= 1.1 x p50 at {}",
                    thousands(args.big_users),
                    args.small
                ),
                verdict(
                    r <= 1.1 && b.samples.failures == 0,
                    format!(
                        "{:.3} ms vs {:.3} ms = {r:.2}x{}",
                        b.samples.p50(),
                        small.p50(),
                        failed_logins(&b.samples)
                    ),
                ),
            );
        }
        None => v.add(
            "p50 at 100,000 users <= 1.1 x p50 at 100",
            format!(
                "not measured: --big-users {} <= --users {}, nothing seeded (enrolling \
                 100,000 users through the D-Bus API would take ~{:.1} h here)",
                args.big_users,
                args.users,
                per_enroll * 100_000.0 / 3600.0
            ),
        ),
    }
}

/// The backup-code estimates (the exact count is a test's).
pub fn argon2_note(v: &mut Verdicts, estimates: &[Estimate]) {
    let est: Vec<String> = estimates
        .iter()
        .map(|(l, w, _, r, _, _)| format!("{l} left: wrong ≈{w:.2}, right ≈{r:.2}"))
        .collect();
    v.add(
        "exactly one Argon2 evaluation per backup-code attempt",
        format!(
            "counted exactly by daemon/tests/argon2_per_attempt.rs (1 per attempt; \
             `twofoldd --debug` logs the running count); here only a CPU-time estimate \
             of the whole request: {}",
            est.join("; ")
        ),
    );
}

/// Daemon RSS <= 20 MiB at `--big-users`, judged on the highest resident size read at
/// that size (after the logins, the throughput phase and the backup codes).
pub fn rss_verdict(v: &mut Verdicts, args: &Args, big: Option<&Big>, rss: &Rss) {
    let after = |label: &str, r: Option<(u64, u64)>| {
        r.map_or(String::new(), |(r, h)| {
            format!(
                "; {label}: {:.1} MiB (peak {:.1} MiB)",
                r as f64 / 1024.0,
                h as f64 / 1024.0
            )
        })
    };
    let target = "daemon RSS <= 20 MiB at 100,000 users";
    match big.map(|b| b.rss) {
        Some(Some((now, hwm))) => v.add(
            &format!(
                "daemon RSS <= 20 MiB at {} users",
                thousands(args.big_users)
            ),
            verdict(
                [
                    Some((now, hwm)),
                    rss.after_throughput,
                    rss.settled,
                    rss.after_backup_codes,
                ]
                .into_iter()
                .flatten()
                .all(|(r, _)| r <= 20 * 1024),
                format!(
                    "{:.1} MiB after the logins above, peak {:.1} MiB{}",
                    now as f64 / 1024.0,
                    hwm as f64 / 1024.0,
                    after("after the throughput phase", rss.after_throughput)
                        + &after("12 s after it", rss.settled)
                        + &after("after the backup codes (Argon2)", rss.after_backup_codes)
                ),
            ),
        ),
        Some(None) => v.add(target, "not measured: /proc/PID/status unreadable".into()),
        None => v.add(
            target,
            format!(
                "not measured: nothing seeded (--big-users {} <= --users {}){}",
                args.big_users,
                args.users,
                after(&format!("at {} users", args.users), rss.users)
            ),
        ),
    }
}

/// Prints the targets, then the fleet-mode figure beside SQLite's.
pub fn print(v: &Verdicts, fleet: &Result<Samples, String>, small: &Samples) {
    println!("\n== targets");
    for (t, verdict) in &v.0 {
        println!("{t:<56} {verdict}");
    }
    println!(
        "{:<56} {}",
        "fleet-mode login p50 beside SQLite (issue 8)",
        match fleet {
            Ok(s) => format!(
                "PostgreSQL {:.3} ms (p99 {:.3} ms) vs SQLite {:.3} ms (p99 {:.3} ms) = {:.2}x",
                s.p50(),
                s.p99(),
                small.p50(),
                small.p99(),
                s.p50() / small.p50()
            ),
            Err(why) => format!("not measured: {}", why.lines().next().unwrap_or("")),
        }
    );
}

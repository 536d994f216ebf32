//! An absent daemon, on the module's default path (the direct socket refuses, then the
//! bus) and on the bus alone: how soon the login is told (`PAM_AUTHINFO_UNAVAIL`); then
//! a stopped but activatable daemon, which the first login must start.

use std::time::{Duration, Instant};

use super::Ctx;
use crate::env::World;
use crate::logins::Samples;
use crate::pam::{self, Service};
use crate::totp;

/// The phase's figures.
pub struct Absent {
    /// (what, samples): name without owner, then no bus, each on both paths.
    pub cases: Vec<(String, Samples)>,
    /// The first login through a bus that can start twofoldd: (PAM result, time, whether
    /// twofoldd owned its name afterwards), or why it could not be tried.
    pub activation: Result<(i32, Duration, bool), String>,
}

impl Absent {
    /// The worst p99 over every case, and whether every login got AUTHINFO_UNAVAIL.
    pub fn worst_p99(&self) -> (f64, bool) {
        let worst = self.cases.iter().map(|(_, s)| s.p99()).fold(0.0, f64::max);
        (worst, self.cases.iter().all(|(_, s)| s.failures == 0))
    }
}

/// 100 logins of `user` with `svc`, each expected to be refused as unavailable.
fn refusals(svc: &Service, user: &str) -> Samples {
    let mut s = Samples::default();
    for _ in 0..100 {
        let (rc, took) = svc.login(user, "123456");
        if rc == pam::AUTHINFO_UNAVAIL {
            s.push(took);
        } else {
            s.failures += 1;
        }
    }
    s
}

/// An absent daemon: stops twofoldd, measures the refusals (the bus is there but nobody
/// owns the name; then no bus at all), then logs `fresh_user` (enrolled, never logged
/// in: any current code is fresh) in through a bus that activates twofoldd.
pub fn phase(world: &mut World, ctx: &Ctx, victim: &str, fresh_user: (&str, &[u8])) -> Absent {
    println!("\n== absent daemon");
    let (pamdir, so) = (&ctx.pamdir, &ctx.so);
    world.stop_daemon();
    let default = Service::new(pamdir, "bench-absent-default", &ctx.twofold_line);
    let bus_only = Service::new(pamdir, "bench-absent-bus", &ctx.bus_line);
    let mut cases = Vec::new();
    for (label, svc) in [
        ("socket refused, name without owner", &default),
        ("bus only, name without owner", &bus_only),
    ] {
        cases.push((label.to_string(), refusals(svc, victim)));
    }
    world.stop_bus();
    for (label, svc) in [
        ("socket refused, no bus socket", &default),
        ("bus only, no bus socket", &bus_only),
    ] {
        cases.push((label.to_string(), refusals(svc, victim)));
    }
    for (label, s) in &cases {
        s.print(&format!("{label} -> AUTHINFO_UNAVAIL"));
    }
    let activation = world.activation_bus().map(|bus| {
        let svc = Service::new(
            pamdir,
            "bench-activation",
            &format!(
                "auth required {} socket={} bus=unix:path={}",
                so.display(),
                world.direct_socket().display(),
                bus.socket.display()
            ),
        );
        let code = totp::code(fresh_user.1, totp::step_now());
        let started = Instant::now();
        let (rc, _) = svc.login(fresh_user.0, &code);
        let took = started.elapsed();
        (rc, took, bus.owner_pid().is_some())
    });
    match &activation {
        Ok((rc, took, owned)) => println!(
            "{:<44} PAM {rc} in {:.0} ms; twofoldd owns its name after it: {owned}",
            "first login, daemon stopped but activatable",
            took.as_secs_f64() * 1000.0
        ),
        Err(e) => println!("first login, daemon stopped but activatable: not measured: {e}"),
    }
    Absent { cases, activation }
}

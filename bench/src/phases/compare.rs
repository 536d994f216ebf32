//! The comparison: the `--small` users enrolled through the D-Bus API, pam_twofold on
//! its default path and on the bus-fallback path alone, where a login's time goes, then
//! pam_twofold side by side with pam_google_authenticator and pam_oath on the `--users`
//! users.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::calibration::Calibration;
use super::Ctx;
use crate::client::{connect, enroll, Enrolled};
use crate::env::{user_name, user_names};
use crate::logins::{wait_next_step, Module, Samples};
use crate::pam::Service;
use crate::totp;

/// The comparison's figures.
pub struct Compared {
    /// Every enrolled user (`--users`, and the one the absent phase starts a daemon with).
    pub enrolled: HashMap<String, Enrolled>,
    /// Wall time per enrollment, seconds.
    pub per_enroll: f64,
    /// pam_twofold with the `--small` users, on its default path.
    pub small: Module,
    /// The same users on the bus-fallback path alone.
    pub bus_path: Samples,
    /// pam_twofold, then whichever of pam_google_authenticator and pam_oath is installed,
    /// on the `--users` users.
    pub modules: Vec<Module>,
}

impl Compared {
    /// The side-by-side samples of the module called `name`, if it ran.
    pub fn samples_of(&self, name: &str) -> Option<&Samples> {
        let module = self.modules.iter().find(|m| m.name == name);
        module.map(|m| &m.samples)
    }
}

pub fn phase(ctx: &Ctx, cal: &Calibration) -> Compared {
    let (mut enrolled, per_enroll) = enrollment(ctx);
    let (mut small, bus_path) = small_run(ctx, &enrolled);
    let breakdown = breakdown(ctx, &mut small);
    enroll_rest(ctx, &mut enrolled);
    let modules = side_by_side(ctx, &enrolled, &small);
    print_breakdown(&modules[0].samples, &breakdown, cal);
    Compared {
        enrolled,
        per_enroll,
        small,
        bus_path,
        modules,
    }
}

/// `names` with their TOTP secrets.
pub fn with_secrets(
    names: &[String],
    enrolled: &HashMap<String, Enrolled>,
) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|u| (u.clone(), enrolled[u].secret.clone()))
        .collect()
}

/// pam_twofold (on its default path) with the `--small` users and their secrets.
pub fn small_twofold(
    ctx: &Ctx,
    name: &'static str,
    enrolled: &HashMap<String, Enrolled>,
) -> Module {
    Module::new(
        name,
        ctx.twofold_service(),
        with_secrets(&user_names(ctx.args.small), enrolled),
    )
}

/// Enrolls the `--small` users through the D-Bus API; returns them and the wall time
/// per enrollment.
fn enrollment(ctx: &Ctx) -> (HashMap<String, Enrolled>, f64) {
    let (args, rt, address) = (ctx.args, &ctx.rt, &ctx.address);
    println!("\n== enrollment (EnrollBegin + EnrollConfirm as root, 4 in parallel)");
    let small_users = user_names(args.small);
    let t = Instant::now();
    let (enrolled, lat) = rt.block_on(enroll(address, small_users.clone(), 4));
    let small_wall = t.elapsed().as_secs_f64();
    lat.print("one enrollment (latency, 4 in flight)");
    let per_enroll = small_wall / args.small.max(1) as f64;
    println!(
        "{:<44} {:.1} enrollments/s; 100,000 users would take {:.1} h",
        "throughput",
        1.0 / per_enroll,
        per_enroll * 100_000.0 / 3600.0
    );

    (enrolled, per_enroll)
}

/// pam_twofold with the small set enrolled, on its default path, then on the
/// bus-fallback path alone: (the default path's module, the bus path's samples).
fn small_run(ctx: &Ctx, enrolled: &HashMap<String, Enrolled>) -> (Module, Samples) {
    let args = ctx.args;
    println!("\n== twofold with {} enrolled users", args.small);
    let mut small = small_twofold(ctx, "twofold", enrolled);
    small.passes(args.steps);
    small
        .samples
        .print(&format!("pam_twofold, {} users", args.small));
    // The bus-fallback path alone (`bus=` only), the same users, one more step.
    let mut bus_path = Module::new(
        "twofold-bus",
        Service::new(&ctx.pamdir, "bench-twofold-bus", &ctx.bus_line),
        small.users.clone(),
    );
    bus_path.last_step = small.last_step.clone();
    bus_path.passes(1);
    bus_path
        .samples
        .print(&format!("pam_twofold, bus fallback, {} users", args.small));

    (small, bus_path.samples)
}

/// Where a twofold login spends its time, measured apart.
struct Breakdown {
    /// A PAM login up to Status (user not enrolled, nullok).
    status: Samples,
    /// A PAM transaction refused before any daemon traffic.
    early: Samples,
    /// Verify alone on an open bus connection.
    verify: Samples,
}

/// Measures the [`Breakdown`]; uses the small users' codes of a new step.
fn breakdown(ctx: &Ctx, small: &mut Module) -> Breakdown {
    let (args, rt, address) = (ctx.args, &ctx.rt, &ctx.address);
    // Where a twofold login spends its time: connect + Status alone (a user who is not
    // enrolled, nullok) and Verify alone on an open connection.
    // Not enrolled yet (the rest of --users come below, seeded users later), and right
    // after the measured users in passwd: an account at the end of a 100,000-line
    // passwd costs milliseconds per NSS files lookup.
    let none_user = user_name(args.users);
    let status_only = Service::new(
        &ctx.pamdir,
        "bench-twofold-status",
        &format!("{} nullok", ctx.twofold_line),
    );
    let mut status_s = Samples::default();
    let mut early = Samples::default();
    let long_name = "x".repeat(300);
    for _ in 0..200 {
        let (_, took) = status_only.login(&none_user, "000000");
        status_s.push(took);
        // Refused before any bus traffic (name too long): module load + options + pam_end.
        let (_, took) = status_only.login(&long_name, "000000");
        early.push(took);
    }
    wait_next_step(0.3);
    let verify_direct = rt.block_on(async {
        let (_conn, proxy) = connect(address).await;
        let mut s = Samples::default();
        for (i, (user, secret)) in small.users.iter().enumerate() {
            let step = totp::step_now();
            if small.last_step[i] >= step {
                continue;
            }
            let code = totp::code(secret, step);
            let t = Instant::now();
            match proxy.verify(user, &code, HashMap::new()).await {
                Ok(_) => s.push(t.elapsed()),
                Err(_) => s.failures += 1,
            }
        }
        s
    });
    let step = totp::step_now();
    small.last_step.iter_mut().for_each(|s| *s = step);
    Breakdown {
        status: status_s,
        early,
        verify: verify_direct,
    }
}

/// Enrolls the rest of `--users`, and the user whose first login starts a stopped
/// daemon at the end.
fn enroll_rest(ctx: &Ctx, enrolled: &mut HashMap<String, Enrolled>) {
    let args = ctx.args;
    let rest: Vec<String> = (args.small..args.users)
        .chain([args.users + 1])
        .map(user_name)
        .collect();
    println!("\n== enrolling {} more users", rest.len());
    let (more, _) = ctx.rt.block_on(enroll(&ctx.address, rest, 4));
    enrolled.extend(more);
}

/// The three modules side by side, configured alike (±1 step, reuse refused), on the
/// `--users` users, interleaved user by user so that a burst of load elsewhere on the
/// machine hits them alike. pam_twofold is first.
fn side_by_side(ctx: &Ctx, enrolled: &HashMap<String, Enrolled>, small: &Module) -> Vec<Module> {
    let args = ctx.args;
    println!(
        "\n== side by side: {} users, {} steps",
        args.users, args.steps
    );
    let names = user_names(args.users);
    let mut twofold = Module::new(
        "pam_twofold",
        ctx.twofold_service(),
        with_secrets(&names, enrolled),
    );
    // The small users' last codes were used by the breakdown.
    twofold.last_step[..small.last_step.len()].copy_from_slice(&small.last_step);
    let mut modules = vec![twofold];
    match &ctx.ga_so {
        Some(so) => modules.push(google_authenticator(ctx, so, &names)),
        None => println!(
            "pam_google_authenticator.so not installed (apt install libpam-google-authenticator)"
        ),
    }
    match &ctx.oath_so {
        Some(so) => modules.push(oath(ctx, so, &names)),
        None => println!("pam_oath.so not installed (apt install libpam-oath)"),
    }
    for _ in 0..args.steps {
        wait_next_step(0.3);
        for i in 0..args.users {
            for m in modules.iter_mut() {
                m.login_one(i);
            }
        }
    }
    let tf = modules[0].samples.p50();
    for m in &modules {
        println!(
            "{}   {:.2}x twofold",
            m.samples.line(&format!("{}, {} users", m.name, args.users)),
            m.samples.p50() / tf
        );
    }
    modules
}

/// pam_google_authenticator with `secret=DIR/${USER} user=root`, `WINDOW_SIZE 3` and
/// `DISALLOW_REUSE`, a fresh secret per user.
fn google_authenticator(ctx: &Ctx, so: &Path, names: &[String]) -> Module {
    let (gadir, users) = fresh_secrets_in(ctx, "ga", names);
    for (u, s) in &users {
        write_secret_file(
            &gadir.join(u),
            format!(
                "{}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
                data_encoding::BASE32_NOPAD.encode(s)
            ),
        );
    }
    let service = Service::new(
        &ctx.pamdir,
        "bench-ga",
        &format!(
            "auth required {} secret={}/${{USER}} user=root",
            so.display(),
            gadir.display()
        ),
    );
    Module::new("pam_google_authenticator", service, users)
}

/// pam_oath with `usersfile=… window=1 digits=6`, a fresh secret per user.
fn oath(ctx: &Ctx, so: &Path, names: &[String]) -> Module {
    let (odir, users) = fresh_secrets_in(ctx, "oath", names);
    let mut text = String::new();
    for (u, s) in &users {
        let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("HOTP/T30/6 {u} - {hex}\n"));
    }
    let file = odir.join("users.oath");
    write_secret_file(&file, text);
    let service = Service::new(
        &ctx.pamdir,
        "bench-oath",
        &format!(
            "auth required {} usersfile={} window=1 digits=6",
            so.display(),
            file.display()
        ),
    );
    Module::new("pam_oath", service, users)
}

/// `ctx.dir/name`, root's alone (0700), and a fresh secret for each of `names`.
fn fresh_secrets_in(ctx: &Ctx, name: &str, names: &[String]) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let dir = ctx.dir.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let users = names
        .iter()
        .map(|u| (u.clone(), totp::random_secret()))
        .collect();
    (dir, users)
}

/// Writes `text` to `path`, readable by root alone (0600).
fn write_secret_file(path: &Path, text: String) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Prints where a twofold login's time goes.
fn print_breakdown(whole: &Samples, b: &Breakdown, cal: &Calibration) {
    println!("\n-- where a twofold login's time goes");
    whole.print("whole PAM login (start+auth+end)");
    b.status
        .print("  PAM login up to Status (user not enrolled)");
    b.early
        .print("  PAM transaction, no bus traffic (bad name)");
    b.verify.print("  Verify alone on an open bus connection");
    cal.fsync.print("  one fdatasync on the state disk");
    cal.ping.print("  one bus round trip (Ping)");
}

//! The bench's phases, in the order `main` runs them; each prints its own lines and
//! returns its figures for the targets.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::env::{self, user_name, World};
use crate::pam::Service;
use crate::{
    argon2_cpu_seconds, connect, enroll, fsync_cost, p2p, peer, random_secret, seed, thousands,
    totp, wait_next_step, Args, Big, Enrolled, Module, Samples,
};

/// What every phase needs.
pub struct Ctx<'a> {
    pub args: &'a Args,
    pub dir: PathBuf,
    pub rt: tokio::runtime::Runtime,
    /// The private bus's address.
    pub address: String,
    pub pamdir: PathBuf,
    pub so: PathBuf,
    /// The module's default path: the direct socket first, the bus if that fails.
    pub twofold_line: String,
    /// The bus-fallback path alone: `bus=` without `socket=` means that bus only.
    pub bus_line: String,
    pub ga_so: Option<PathBuf>,
    pub oath_so: Option<PathBuf>,
}

impl Ctx<'_> {
    /// pam_twofold on its default path.
    pub fn twofold_service(&self) -> Service {
        Service::new(&self.pamdir, "bench-twofold", &self.twofold_line)
    }

    /// `names` with their TOTP secrets.
    fn with_secrets(
        names: &[String],
        enrolled: &HashMap<String, Enrolled>,
    ) -> Vec<(String, Vec<u8>)> {
        names
            .iter()
            .map(|u| (u.clone(), enrolled[u].secret.clone()))
            .collect()
    }
}

/// Where time can go, measured alone.
pub struct Calibration {
    pub fsync: Samples,
    /// CPU seconds of one Argon2id evaluation with the daemon's parameters.
    pub argon2_cpu: f64,
    /// Peer.Ping through the bus, on an open connection.
    pub ping: Samples,
}

pub fn calibration(ctx: &Ctx, world: &World) -> Calibration {
    let (dir, rt, address) = (&ctx.dir, &ctx.rt, &ctx.address);
    println!("\n== calibration");
    let fsync = fsync_cost(dir);
    println!(
        "{}",
        fsync.line("4 KiB write + fdatasync on the state disk")
    );
    let argon2_cpu = argon2_cpu_seconds();
    println!(
        "{:<44} {:.1} ms CPU (in-process, the daemon's parameters)",
        "one Argon2id evaluation",
        argon2_cpu * 1000.0
    );
    let ping = rt.block_on(async {
        let (conn, _) = connect(address).await.unwrap();
        let peer = peer(&conn).await;
        let mut s = Samples::default();
        for _ in 0..500 {
            let t = Instant::now();
            peer.ping().await.unwrap();
            s.push(t.elapsed());
        }
        s
    });
    println!(
        "{}",
        ping.line("Peer.Ping to twofoldd via the bus (open conn.)")
    );
    let (ping_p2p, ping_p2p_fresh) = p2p::latency(&world.direct_socket());
    println!(
        "{}",
        ping_p2p.line("Peer.Ping on the direct socket (open conn.)")
    );
    println!(
        "{}",
        ping_p2p_fresh.line("  connect + AUTH + Ping + close, direct")
    );

    Calibration {
        fsync,
        argon2_cpu,
        ping,
    }
}

/// Enrolls the `--small` users through the D-Bus API; returns them and the wall time
/// per enrollment.
pub fn enrollment(ctx: &Ctx) -> (HashMap<String, Enrolled>, f64) {
    let (args, rt, address) = (ctx.args, &ctx.rt, &ctx.address);
    println!("\n== enrollment (EnrollBegin + EnrollConfirm as root, 4 in parallel)");
    let small_users: Vec<String> = (0..args.small).map(user_name).collect();
    let t = Instant::now();
    let (enrolled, lat) = rt.block_on(enroll(address, small_users.clone(), 4));
    let small_wall = t.elapsed().as_secs_f64();
    println!("{}", lat.line("one enrollment (latency, 4 in flight)"));
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
pub fn small_run(ctx: &Ctx, enrolled: &HashMap<String, Enrolled>) -> (Module, Samples) {
    let args = ctx.args;
    let small_users: Vec<String> = (0..args.small).map(user_name).collect();
    println!("\n== twofold with {} enrolled users", args.small);
    let mut small = Module {
        name: "twofold",
        service: ctx.twofold_service(),
        users: Ctx::with_secrets(&small_users, enrolled),
        last_step: vec![0; args.small],
        samples: Samples::default(),
    };
    for _ in 0..args.steps {
        wait_next_step(0.3);
        small.pass();
    }
    println!(
        "{}",
        small
            .samples
            .line(&format!("pam_twofold, {} users", args.small))
    );
    // The bus-fallback path alone (`bus=` only), the same users, one more step.
    let mut bus_path = Module {
        name: "twofold-bus",
        service: Service::new(&ctx.pamdir, "bench-twofold-bus", &ctx.bus_line),
        users: small.users.clone(),
        last_step: small.last_step.clone(),
        samples: Samples::default(),
    };
    wait_next_step(0.3);
    bus_path.pass();
    println!(
        "{}",
        bus_path
            .samples
            .line(&format!("pam_twofold, bus fallback, {} users", args.small))
    );

    (small, bus_path.samples)
}

/// Where a twofold login spends its time, measured apart.
pub struct Breakdown {
    /// A PAM login up to Status (user not enrolled, nullok).
    status: Samples,
    /// A PAM transaction refused before any daemon traffic.
    early: Samples,
    /// Verify alone on an open bus connection.
    verify: Samples,
}

/// Measures the [`Breakdown`]; uses the small users' codes of a new step.
pub fn breakdown(ctx: &Ctx, small: &mut Module) -> Breakdown {
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
        let (_conn, proxy) = connect(address).await.unwrap();
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
pub fn enroll_rest(ctx: &Ctx, enrolled: &mut HashMap<String, Enrolled>) {
    let args = ctx.args;
    let rest: Vec<String> = (args.small..args.users)
        .chain([args.users + 1])
        .map(user_name)
        .collect();
    {
        println!("\n== enrolling {} more users", rest.len());
        let (more, _) = ctx.rt.block_on(enroll(&ctx.address, rest, 4));
        enrolled.extend(more);
    }
}

/// The three modules side by side, configured alike (±1 step, reuse refused), on the
/// `--users` users, interleaved user by user so that a burst of load elsewhere on the
/// machine hits them alike. pam_twofold is first.
pub fn side_by_side(
    ctx: &Ctx,
    enrolled: &HashMap<String, Enrolled>,
    small: &Module,
) -> Vec<Module> {
    let args = ctx.args;
    println!(
        "\n== side by side: {} users, {} steps",
        args.users, args.steps
    );
    let names: Vec<String> = (0..args.users).map(user_name).collect();
    let mut modules = vec![Module {
        name: "pam_twofold",
        service: ctx.twofold_service(),
        users: Ctx::with_secrets(&names, enrolled),
        // The small users' last codes were used by the breakdown.
        last_step: (0..args.users)
            .map(|i| small.last_step.get(i).copied().unwrap_or(0))
            .collect(),
        samples: Samples::default(),
    }];
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
fn google_authenticator(ctx: &Ctx, so: &std::path::Path, names: &[String]) -> Module {
    let gadir = ctx.dir.join("ga");
    fs::create_dir_all(&gadir).unwrap();
    fs::set_permissions(&gadir, fs::Permissions::from_mode(0o700)).unwrap();
    let users: Vec<(String, Vec<u8>)> =
        names.iter().map(|u| (u.clone(), random_secret())).collect();
    for (u, s) in &users {
        let p = gadir.join(u);
        fs::write(
            &p,
            format!(
                "{}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n",
                data_encoding::BASE32_NOPAD.encode(s)
            ),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    Module {
        name: "pam_google_authenticator",
        service: Service::new(
            &ctx.pamdir,
            "bench-ga",
            &format!(
                "auth required {} secret={}/${{USER}} user=root",
                so.display(),
                gadir.display()
            ),
        ),
        last_step: vec![0; users.len()],
        users,
        samples: Samples::default(),
    }
}

/// pam_oath with `usersfile=… window=1 digits=6`, a fresh secret per user.
fn oath(ctx: &Ctx, so: &std::path::Path, names: &[String]) -> Module {
    let odir = ctx.dir.join("oath");
    fs::create_dir_all(&odir).unwrap();
    fs::set_permissions(&odir, fs::Permissions::from_mode(0o700)).unwrap();
    let users: Vec<(String, Vec<u8>)> =
        names.iter().map(|u| (u.clone(), random_secret())).collect();
    let mut text = String::new();
    for (u, s) in &users {
        let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("HOTP/T30/6 {u} - {hex}\n"));
    }
    let file = odir.join("users.oath");
    fs::write(&file, text).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    Module {
        name: "pam_oath",
        service: Service::new(
            &ctx.pamdir,
            "bench-oath",
            &format!(
                "auth required {} usersfile={} window=1 digits=6",
                so.display(),
                file.display()
            ),
        ),
        last_step: vec![0; users.len()],
        users,
        samples: Samples::default(),
    }
}

/// Prints where a twofold login's time goes.
pub fn print_breakdown(whole: &Samples, b: &Breakdown, cal: &Calibration) {
    println!("\n-- where a twofold login's time goes");
    println!("{}", whole.line("whole PAM login (start+auth+end)"));
    println!(
        "{}",
        b.status
            .line("  PAM login up to Status (user not enrolled)")
    );
    println!(
        "{}",
        b.early.line("  PAM transaction, no bus traffic (bad name)")
    );
    println!(
        "{}",
        b.verify.line("  Verify alone on an open bus connection")
    );
    println!("{}", cal.fsync.line("  one fdatasync on the state disk"));
    println!("{}", cal.ping.line("  one bus round trip (Ping)"));
}

/// A resident size in KiB: (current, peak).
pub type Kib = Option<(u64, u64)>;

/// twofoldd's resident size, printed with `when`.
pub fn rss(world: &World, when: &str) -> Kib {
    let rss = env::rss_kib(world.daemon_pid()?);
    if let Some((rss, hwm)) = rss {
        println!(
            "{:<44} {:.1} MiB (peak {:.1} MiB) {when}",
            "twofoldd RSS",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    rss
}

/// Stops twofoldd, seeds users up to `--big-users` straight into its database with its
/// own store code, and restarts it.
fn seed_big(ctx: &Ctx, world: &mut World) -> seed::Seeded {
    let args = ctx.args;
    println!(
        "\n== seeding up to {} users into twofoldd's database (daemon stopped)",
        thousands(args.big_users)
    );
    world.stop_daemon();
    let names: Vec<String> = (0..args.big_users).map(user_name).collect();
    let stage = (!args.seed_in_place).then(|| ctx.dir.join("seed-tmpfs"));
    if let Some(stage) = &stage {
        env::mount_tmpfs(stage).unwrap_or_else(|e| panic!("{e}"));
    }
    // Last used step two steps back: every code from now on is fresh.
    let seeded = seed::seed(
        &world.db_path(),
        &world.key_path(),
        &names,
        totp::step_now() - 2,
        stage.as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if let Some(stage) = &stage {
        env::unmount(stage);
    }
    println!(
        "{:<44} {:.2} s (once; every seeded user stores these same 10 hashes)",
        "10 backup-code Argon2id hashes",
        seeded.hash_took.as_secs_f64()
    );
    println!(
        "{:<44} {} users in {:.1} s ({:.0} users/s; {} enrolled already, skipped){}",
        "seeding (begin + confirm enrollment each)",
        thousands(seeded.users.len()),
        seeded.took.as_secs_f64(),
        seeded.users.len() as f64 / seeded.took.as_secs_f64(),
        seeded.skipped,
        if args.seed_in_place {
            "; committed on the state disk"
        } else {
            "; committed on a tmpfs copy"
        }
    );
    if let Some(copy) = seeded.copy_took {
        println!(
            "{:<44} {:.1} s (one fsync)",
            "copy back over twofoldd's database",
            copy.as_secs_f64()
        );
    }
    let db_mib = ["", "-wal"]
        .iter()
        .filter_map(|side| {
            let mut p = world.db_path().into_os_string();
            p.push(side);
            fs::metadata(p).ok()
        })
        .map(|m| m.len())
        .sum::<u64>() as f64
        / 1048576.0;
    println!("{:<44} {db_mib:.1} MiB", "database (with its WAL)");
    let t = Instant::now();
    world.start_daemon().unwrap_or_else(|e| panic!("{e}"));
    ctx.rt.block_on(async {
        let (conn, _) = connect(&ctx.address).await.unwrap();
        peer(&conn).await.ping().await.expect("Ping after restart");
    });
    println!(
        "{:<44} {:.2} s",
        "twofoldd restarted, answering after",
        t.elapsed().as_secs_f64()
    );
    seeded
}

/// The big run: seed up to `--big-users` (daemon stopped), restart the daemon, and log
/// in the same `--small` users again. None when `--big-users` <= `--users`.
pub fn big_run(
    ctx: &Ctx,
    world: &mut World,
    small: &Module,
    enrolled: &HashMap<String, Enrolled>,
) -> Option<Big> {
    let args = ctx.args;
    if args.big_users <= args.users {
        return None;
    }
    let seeded = seed_big(ctx, world);
    println!(
        "\n== twofold with {} enrolled users",
        thousands(args.big_users)
    );
    let small_users: Vec<String> = (0..args.small).map(user_name).collect();
    let step = totp::step_now();
    let mut m = Module {
        name: "twofold-big",
        service: ctx.twofold_service(),
        users: Ctx::with_secrets(&small_users, enrolled),
        last_step: vec![step; args.small],
        samples: Samples::default(),
    };
    for _ in 0..args.steps {
        wait_next_step(0.3);
        m.pass();
    }
    println!(
        "{}",
        small
            .samples
            .line(&format!("pam_twofold, {} users enrolled", args.small))
    );
    println!(
        "{}   ({:.2}x)",
        m.samples.line(&format!(
            "pam_twofold, same {} users, {} enrolled",
            args.small,
            thousands(args.big_users)
        )),
        m.samples.p50() / small.samples.p50()
    );
    let rss = rss(
        world,
        &format!(
            "with {} users enrolled, after these logins",
            thousands(args.big_users)
        ),
    );
    Some(Big {
        samples: m.samples,
        rss,
        seeded: seeded.users,
        backup_codes: seeded.backup_codes,
    })
}

/// twofoldd's memory right after the throughput phase and 12 s later (KiB).
pub fn memory_after_burst(world: &World) -> (Kib, Kib) {
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
pub fn perf_report(mut perf: std::process::Child, dir: &std::path::Path) {
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

/// Argon2 evaluations per backup-code attempt, estimated from twofoldd's CPU time:
/// (codes left, wrong code evaluations, its ms, right code evaluations, its ms, accepted).
pub type Estimate = (usize, f64, f64, f64, f64, bool);

/// The backup-code estimates (user 0's codes, a seeded user's), then the daemon's RSS.
pub fn backup_codes(
    ctx: &Ctx,
    world: &World,
    enrolled: &HashMap<String, Enrolled>,
    argon2_cpu: f64,
    big: Option<&Big>,
) -> (Vec<Estimate>, Kib) {
    println!("\n== backup codes: Argon2 evaluations per attempt");
    let pid = world.daemon_pid().unwrap();
    let victim = user_name(0);
    let codes = enrolled[&victim].backup_codes.clone();
    let estimates = ctx.rt.block_on(async {
        let (_conn, proxy) = connect(&ctx.address).await.unwrap();
        let mut out = Vec::new();
        let mut next = 0usize;
        for left in [10usize, 1] {
            // Use codes until `left` remain.
            while codes.len() - next > left {
                proxy
                    .verify(&victim, &codes[next], HashMap::new())
                    .await
                    .expect("backup code");
                next += 1;
            }
            let attempts = 4; // the fifth failure in a row would lock the user out
            let c0 = env::thread_times(pid);
            let t0 = Instant::now();
            for _ in 0..attempts {
                // Well-formed, wrong: the tag lookup finds no row.
                let _ = proxy.verify(&victim, "zzzz-zzzz-zz", HashMap::new()).await;
            }
            let wrong_cpu = env::cpu_since(pid, &c0) / attempts as f64;
            let wrong_ms = t0.elapsed().as_secs_f64() * 1000.0 / attempts as f64;
            let c0 = env::thread_times(pid);
            let t0 = Instant::now();
            let r = proxy.verify(&victim, &codes[next], HashMap::new()).await;
            next += 1;
            let right_cpu = env::cpu_since(pid, &c0);
            let right_ms = t0.elapsed().as_secs_f64() * 1000.0;
            out.push((
                left,
                wrong_cpu / argon2_cpu,
                wrong_ms,
                right_cpu / argon2_cpu,
                right_ms,
                r.is_ok(),
            ));
        }
        out
    });
    for (left, w, wms, r, rms, ok) in &estimates {
        println!(
            "{:<44} wrong code ≈{w:.2} ({wms:.0} ms), right code ≈{r:.2} ({rms:.0} ms, accepted: {ok})",
            format!("{left} codes left: evaluations (CPU estimate)")
        );
    }

    // A seeded user's backup code: the shared hash, found through the user's own tag.
    if let Some(b) = big {
        let (user, _) = b.seeded.last().unwrap();
        let t0 = Instant::now();
        let r = ctx.rt.block_on(async {
            let (_conn, proxy) = connect(&ctx.address).await.unwrap();
            proxy.verify(user, &b.backup_codes[0], HashMap::new()).await
        });
        println!(
            "{:<44} accepted: {} ({:.0} ms)",
            "a seeded user's backup code",
            r.is_ok(),
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }

    println!();
    let rss_end = rss(
        world,
        &format!(
            "with {} users enrolled, after the backup codes",
            thousands(ctx.args.users.max(ctx.args.big_users))
        ),
    );
    (estimates, rss_end)
}

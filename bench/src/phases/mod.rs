//! The bench's phases, in the order [`run`] runs them; each prints its own lines and
//! returns its figures for the report:
//!
//! | phase | what |
//! |-------|------|
//! | `calibration` | fdatasync, one Argon2id evaluation, Peer.Ping on the bus and the direct socket |
//! | `load` | module load: dlopen + dlclose in fresh processes |
//! | `compare` | enrollment, pam_twofold alone, then side by side with pam_google_authenticator and pam_oath |
//! | `big` | `--big-users` seeded into the stopped daemon's database, the same logins again |
//! | `throughput` | `--clients` processes of PAM logins and of bare Pings |
//! | `backup_codes` | Argon2 evaluations per backup-code attempt, estimated from CPU time |
//! | `absent` | the daemon stopped, then the bus gone, then a bus that activates it |
//! | `fleet` | the same logins against a twofoldd on a PostgreSQL store |

mod absent;
mod backup_codes;
mod big;
mod calibration;
mod compare;
mod fleet;
pub mod load;
pub mod throughput;

use std::path::{Path, PathBuf};

pub use absent::Absent;
pub use backup_codes::Estimate;
pub use big::Big;

use crate::env::{self, user_name, World};
use crate::logins::Samples;
use crate::pam::Service;
use crate::Args;

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
    /// The phases' shared context: the runtime, the module's two `auth` lines, the
    /// anchors.
    pub fn new<'a>(args: &'a Args, dir: &Path, world: &World) -> Ctx<'a> {
        let so = args.bin_dir.join("libpam_twofold.so");
        assert!(so.exists(), "{} missing", so.display());
        Ctx {
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

    /// pam_twofold on its default path.
    pub fn twofold_service(&self) -> Service {
        Service::new(&self.pamdir, "bench-twofold", &self.twofold_line)
    }
}

/// An installed PAM module of the distribution, by file name.
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

/// twofoldd's resident sizes read along the way.
pub struct Rss {
    /// With `--users` enrolled, before the big run.
    pub users: Kib,
    pub after_throughput: Kib,
    pub settled: Kib,
    pub after_backup_codes: Kib,
}

/// Everything the phases measured, for the report.
pub struct Figures {
    pub compare: compare::Compared,
    pub loads: Vec<load::LoadTimes>,
    pub big: Option<Big>,
    pub throughput: throughput::Results,
    pub estimates: Vec<Estimate>,
    pub rss: Rss,
    pub absent: Absent,
    pub fleet: Result<Samples, String>,
}

/// Runs every phase on `world` (its daemon stopped and restarted by the big run,
/// stopped for good by the absent-daemon phase); `accounts` bench accounts exist.
pub fn run(args: &Args, dir: &Path, world: &mut World, accounts: usize) -> Figures {
    let ctx = Ctx::new(args, dir, world);
    let cal = calibration::phase(&ctx, world);
    let loads = load::phase(&ctx.so, dir, &ctx.ga_so, &ctx.oath_so);
    let compare = compare::phase(&ctx, &cal);
    println!();
    let rss_users = rss(world, &format!("with {} users enrolled", args.users));
    let big = big::phase(&ctx, world, &compare);
    let pool = throughput::twofold_pool(big.as_ref(), &compare.modules[0].users);
    let (throughput, after_throughput, settled) = throughput::phase(&ctx, world, &pool, accounts);
    let (estimates, after_backup_codes) =
        backup_codes::phase(&ctx, world, &compare.enrolled, cal.argon2_cpu, big.as_ref());
    let fresh = user_name(args.users + 1);
    let absent = absent::phase(
        world,
        &ctx,
        &user_name(0),
        (&fresh, &compare.enrolled[&fresh].secret),
    );
    let fleet = fleet::phase(&ctx, &compare.small.samples);
    Figures {
        compare,
        loads,
        big,
        throughput,
        estimates,
        rss: Rss {
            users: rss_users,
            after_throughput,
            settled,
            after_backup_codes,
        },
        absent,
        fleet,
    }
}

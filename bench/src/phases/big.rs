//! The big run: twofoldd stopped, users up to `--big-users` seeded straight into its
//! database with its own store code (src/seed.rs), twofoldd restarted, and the same
//! `--small` users logged in again.

use std::fs;
use std::time::Instant;

use super::compare::{small_twofold, Compared};
use super::{rss, Ctx, Kib};
use crate::client::{connect, peer};
use crate::env::{self, user_names, World};
use crate::logins::Samples;
use crate::report::thousands;
use crate::{seed, totp};

/// The big run's figures: logins of the `--small` users with `--big-users` enrolled.
pub struct Big {
    pub samples: Samples,
    /// twofoldd's `VmRSS`, `VmHWM` (KiB) right after those logins.
    pub rss: Kib,
    /// The seeded users and their TOTP secrets.
    pub seeded: Vec<(String, Vec<u8>)>,
    /// The backup codes they share.
    pub backup_codes: Vec<String>,
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
    let names = user_names(args.big_users);
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
        let (conn, _) = connect(&ctx.address).await;
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
pub fn phase(ctx: &Ctx, world: &mut World, compared: &Compared) -> Option<Big> {
    let (small, enrolled) = (&compared.small, &compared.enrolled);
    let args = ctx.args;
    if args.big_users <= args.users {
        return None;
    }
    let seeded = seed_big(ctx, world);
    println!(
        "\n== twofold with {} enrolled users",
        thousands(args.big_users)
    );
    let step = totp::step_now();
    let mut m = small_twofold(ctx, "twofold-big", enrolled);
    m.last_step.fill(step);
    m.passes(args.steps);
    small
        .samples
        .print(&format!("pam_twofold, {} users enrolled", args.small));
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

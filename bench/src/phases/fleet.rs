//! Fleet mode (issue 8): the same logins against a twofoldd whose store is PostgreSQL:
//! the harness's server ([`twofold_tests::PgServer`]) with its files on the bench's
//! state disk (as the SQLite store's), a second bus with a twofoldd on that store (no
//! `--db`), `--fleet-users` users enrolled through it. The daemon connects without TLS
//! (`storage_sslmode = "disable"`), so that the figure is the store's cost, not a TLS
//! handshake's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use twofold_tests::{postgres_bin, PgServer};

use super::compare::with_secrets;
use super::Ctx;
use crate::client::enroll;
use crate::env::{user_names, World};
use crate::logins::{Module, Samples};
use crate::pam::Service;

/// The fleet-mode logins (one per user per step, `--steps` steps), printed beside the
/// SQLite `small` run's; the reason when they were not measured.
pub fn phase(ctx: &Ctx, small: &Samples) -> Result<Samples, String> {
    println!("\n== fleet mode: twofoldd on a PostgreSQL store");
    let fleet = logins(ctx);
    print(ctx, &fleet, small);
    fleet
}

fn logins(ctx: &Ctx) -> Result<Samples, String> {
    let args = ctx.args;
    if args.fleet_users == 0 {
        return Err("--fleet-users 0".into());
    }
    let Some(bin) = postgres_bin() else {
        return Err(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
             bench/run.sh installs the postgresql package)"
                .into(),
        );
    };
    let fdir = ctx.dir.join("fleet");
    fs::create_dir_all(&fdir).map_err(|e| format!("{}: {e}", fdir.display()))?;
    fs::set_permissions(&fdir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let server =
        PgServer::start_in(&fdir, bin).map_err(|e| format!("PostgreSQL did not start: {e}"))?;
    server.create_database("twofold");
    println!(
        "PostgreSQL from {} on 127.0.0.1:{}, fsync={}, synchronous_commit={}, TCP without TLS",
        server.bin.display(),
        server.port,
        server.show("fsync"),
        server.show("synchronous_commit")
    );
    let world = World::start_with_config(
        &fdir,
        &args.daemon_env,
        &args.bin_dir,
        &server.storage_config("twofold", "bench-fleet-1", "disable"),
    )?;
    let users = user_names(args.fleet_users);
    let t = Instant::now();
    let (enrolled, lat) = ctx.rt.block_on(enroll(&world.address, users.clone(), 4));
    println!(
        "{}   ({:.1} enrollments/s)",
        lat.line("one enrollment (latency, 4 in flight)"),
        users.len() as f64 / t.elapsed().as_secs_f64()
    );
    let service = Service::new(
        &ctx.pamdir,
        "bench-twofold-fleet",
        &format!(
            "auth required {} bus=unix:path={}",
            ctx.so.display(),
            world.socket.display()
        ),
    );
    let mut m = Module::new(
        "pam_twofold (PostgreSQL)",
        service,
        with_secrets(&users, &enrolled),
    );
    m.passes(args.steps);
    drop(world);
    drop(server);
    Ok(m.samples)
}

/// The fleet-mode login figures beside SQLite's.
fn print(ctx: &Ctx, fleet: &Result<Samples, String>, small: &Samples) {
    let args = ctx.args;
    match fleet {
        Ok(s) => {
            small.print(&format!("pam_twofold, SQLite store, {} users", args.small));
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

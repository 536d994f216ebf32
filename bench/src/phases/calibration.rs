//! Where time can go, measured alone: an fdatasync on the state disk, one Argon2id
//! evaluation, and Peer.Ping on the bus and on the direct socket.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::Ctx;
use crate::client::{connect, peer};
use crate::env::World;
use crate::logins::Samples;
use crate::p2p;

/// The calibration's figures.
pub struct Calibration {
    pub fsync: Samples,
    /// CPU seconds of one Argon2id evaluation with the daemon's parameters.
    pub argon2_cpu: f64,
    /// Peer.Ping through the bus, on an open connection.
    pub ping: Samples,
}

pub fn phase(ctx: &Ctx, world: &World) -> Calibration {
    println!("\n== calibration");
    let fsync = fsync_cost(&ctx.dir);
    fsync.print("4 KiB write + fdatasync on the state disk");
    let argon2_cpu = argon2_cpu_seconds();
    println!(
        "{:<44} {:.1} ms CPU (in-process, the daemon's parameters)",
        "one Argon2id evaluation",
        argon2_cpu * 1000.0
    );
    let ping = ctx.rt.block_on(async {
        let (conn, _) = connect(&ctx.address).await;
        let peer = peer(&conn).await;
        let mut s = Samples::default();
        for _ in 0..500 {
            let t = Instant::now();
            peer.ping().await.unwrap();
            s.push(t.elapsed());
        }
        s
    });
    ping.print("Peer.Ping to twofoldd via the bus (open conn.)");
    let (ping_p2p, ping_p2p_fresh) = p2p::latency(&world.direct_socket());
    ping_p2p.print("Peer.Ping on the direct socket (open conn.)");
    ping_p2p_fresh.print("  connect + AUTH + Ping + close, direct");
    Calibration {
        fsync,
        argon2_cpu,
        ping,
    }
}

/// 200 writes of 4 KiB, each followed by fdatasync, in `dir`.
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

/// CPU seconds of one Argon2id evaluation with the daemon's parameters.
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

/// CPU seconds this process has used.
fn cpu_self() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    // SAFETY: initialized by getrusage above.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

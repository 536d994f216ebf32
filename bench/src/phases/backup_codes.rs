//! Backup codes: Argon2 evaluations per attempt, estimated from twofoldd's CPU time
//! (the exact count is daemon/tests/argon2_per_attempt.rs's), and a seeded user's code.

use std::collections::HashMap;
use std::time::Instant;

use super::{rss, Big, Ctx, Kib};
use crate::client::{connect, Enrolled};
use crate::env::{self, user_name, World};
use crate::report::thousands;

/// Argon2 evaluations per backup-code attempt, estimated from twofoldd's CPU time:
/// (codes left, wrong code evaluations, its ms, right code evaluations, its ms, accepted).
pub type Estimate = (usize, f64, f64, f64, f64, bool);

/// The backup-code estimates (user 0's codes, a seeded user's), then the daemon's RSS.
pub fn phase(
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
        let (_conn, proxy) = connect(&ctx.address).await;
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
            let (_conn, proxy) = connect(&ctx.address).await;
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

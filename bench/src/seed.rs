//! Seeding a big user base straight into twofoldd's own store, with the daemon stopped.
//!
//! Enrolling through the D-Bus API costs 10 Argon2id hashes per user (one per backup
//! code): ~5-9 users/s, hours for 100,000. Here the bench opens the daemon's database
//! and key file with the daemon's library (`twofoldd::storage::sqlite`,
//! `twofoldd::secrets`) and enrolls each user through the `Store` trait's
//! `begin_enrollment` + `confirm_enrollment`, the calls `EnrollBegin`/`EnrollConfirm`
//! make: a fresh random TOTP secret sealed with the host key, 10 backup codes, the two
//! audit entries, two transactions per user.
//!
//! The one shortcut in the rows: the 10 backup-code Argon2id hashes are computed ONCE
//! and every seeded user stores those same 10 hashes (Argon2 for 1,000,000 codes would
//! take hours). Each user's lookup tags are their own (`Keys::backup_code_tag`, a cheap
//! HMAC keyed by the host key over user and code), so the rows have the real size, shape
//! and index entries, and a seeded user's backup codes do verify.
//!
//! The one shortcut in the way: by default the 200,000 transactions are committed on a
//! copy of the database in a private tmpfs, where `synchronous=FULL`'s fsync is free,
//! and the result is then copied back over the daemon's database (one fsync): the store
//! code writes the same pages either way, and with two fsyncs per user on the state disk
//! 100,000 users take 1 to 15 minutes, depending on the disk and what else runs.
//! `--seed-in-place` commits on the state disk itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use twofoldd::backup_codes;
use twofoldd::otp;
use twofoldd::secrets::Keys;
use twofoldd::storage::sqlite::SqliteStore;
use twofoldd::storage::{AuditEvent, Pending, Store, StoredBackupCode};

/// What seeding did.
pub struct Seeded {
    /// Users seeded now, with their TOTP secrets (the bench computes their codes).
    pub users: Vec<(String, Vec<u8>)>,
    /// Users skipped because they were enrolled already.
    pub skipped: usize,
    /// The 10 backup codes every seeded user shares.
    pub backup_codes: Vec<String>,
    /// The 10 Argon2id hashes shared by every seeded user.
    pub hash_took: Duration,
    /// Opening the store and key, and enrolling every user.
    pub took: Duration,
    /// Copying the staged database back over the daemon's (`None`: seeded in place).
    pub copy_took: Option<Duration>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `db` with `suffix` appended to its file name (`-wal`, `-shm`).
fn side(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Opens and closes the store at `db`: the last connection's close checkpoints the WAL
/// into the database file and removes it, so that `db` alone holds everything.
fn fold_wal(db: &Path) -> Result<(), String> {
    drop(SqliteStore::open(db)?);
    for suffix in ["-wal", "-shm"] {
        if side(db, suffix).exists() {
            return Err(format!(
                "{} still exists after closing the database (is twofoldd still running?)",
                side(db, suffix).display()
            ));
        }
    }
    Ok(())
}

/// Copies `from` over `to` durably: a new 0600 file beside `to`, fsynced, renamed over
/// it, and the directory fsynced.
fn copy_over(from: &Path, to: &Path) -> Result<(), String> {
    let tmp = side(to, ".seeded");
    let _ = fs::remove_file(&tmp);
    let mut src = fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut dst = twofoldd::files::create_private_file(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::io::copy(&mut src, &mut dst).map_err(|e| format!("{}: {e}", tmp.display()))?;
    dst.sync_all()
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, to).map_err(|e| format!("{} -> {}: {e}", tmp.display(), to.display()))?;
    if let Some(dir) = to.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Enrolls every user of `names` not yet enrolled in the store at `db` (key file `key`),
/// with `step` as their last used TOTP step (so that codes of later steps are fresh).
/// With `stage` (a private tmpfs directory), the transactions are committed on a copy
/// there that then replaces `db`. The daemon must be stopped.
pub fn seed(
    db: &Path,
    key: &Path,
    names: &[String],
    step: u64,
    stage: Option<&Path>,
) -> Result<Seeded, String> {
    let t = Instant::now();
    let keys = Keys::load_or_create(key)?;
    let target = match stage {
        None => db.to_path_buf(),
        Some(dir) => {
            fold_wal(db)?;
            let staged = dir.join("twofold.db");
            copy_over(db, &staged)?;
            staged
        }
    };
    let store = SqliteStore::open(&target)?;
    // One set of codes and hashes for everybody (see the module's comment).
    let t_hash = Instant::now();
    let codes: Vec<_> = backup_codes::generate_set()
        .iter()
        .map(|c| backup_codes::normalize(c).expect("generated codes are well-formed"))
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| backup_codes::hash(c)).collect();
    let hash_took = t_hash.elapsed();
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let event = |user: &str, event: &'static str, detail: &str| AuditEvent {
        at: now(),
        actor_uid: Some(0),
        actor_pid: Some(std::process::id()),
        user: user.to_string(),
        event,
        detail: detail.to_string(),
        host: host.clone(),
        ..Default::default()
    };
    let mut out = Seeded {
        users: Vec::with_capacity(names.len()),
        skipped: 0,
        backup_codes: codes.iter().map(|c| c.to_string()).collect(),
        hash_took,
        took: Duration::ZERO,
        copy_took: None,
    };
    for user in names {
        let err = |e: twofoldd::storage::StoreError| format!("seeding {user}: {e}");
        if store.user(user).map_err(err)?.is_some() {
            out.skipped += 1;
            continue;
        }
        let secret = otp::new_secret();
        let begin = event(user, "enroll_begin", "issuer=bench-seed");
        let pending = Pending {
            secret_sealed: keys.seal(user, &secret),
            expires_at: begin.at + 600,
            oath: otp::Oath::APP,
        };
        store
            .begin_enrollment(user, &pending, &begin)
            .map_err(err)?;
        let stored: Vec<StoredBackupCode> = codes
            .iter()
            .zip(&hashes)
            .map(|(code, hash)| StoredBackupCode {
                tag: keys.backup_code_tag(user, code),
                hash: hash.clone(),
            })
            .collect();
        let confirmed = store
            .confirm_enrollment(
                user,
                &pending,
                Some(step),
                &stored,
                &event(user, "enroll_confirm", ""),
            )
            .map_err(err)?;
        if !confirmed {
            return Err(format!("seeding {user}: the pending enrollment vanished"));
        }
        out.users.push((user.clone(), secret.to_vec()));
        let n = out.users.len();
        if n.is_multiple_of(25_000) {
            println!(
                "  {n} users seeded ({:.0} s, {:.0} users/s)",
                t.elapsed().as_secs_f64(),
                n as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    // Closing checkpoints the WAL into the database file.
    drop(store);
    out.took = t.elapsed();
    if stage.is_some() {
        let t = Instant::now();
        if side(&target, "-wal").exists() {
            return Err(format!(
                "{} still exists after closing the database",
                side(&target, "-wal").display()
            ));
        }
        copy_over(&target, db)?;
        let _ = fs::remove_file(&target);
        out.copy_took = Some(t.elapsed());
    }
    Ok(out)
}

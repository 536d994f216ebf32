//! A TOTP acceptance answered before its fsync, and still no replay after a power loss
//! (README, "Durability").
//!
//! An acceptance commits to the WAL and is answered at once; the syncer thread makes it
//! durable within [`LAZY_SYNC_DELAY`] (plus the fsync). A power loss in between undoes
//! the acceptance, and with it the user's replay watermark: the same code would pass
//! again. Two durable records of `run_state` close that hole:
//! - the *reservation*: no step above it is accepted without a sync. A lazy acceptance
//!   needs its step at or below the reservation already on disk; while logins come in,
//!   the syncer keeps it a step ahead of the clock, and an acceptance above it waits for
//!   its sync (and raises it).
//! - the *clean-stop record*: set and synced at an orderly stop (every later write is
//!   synced), cleared at start.
//!
//! A start that finds no clean-stop record from another boot (the kernel stopped: its
//! page cache, with the commits not yet synced, may be gone) raises the *fence* to the
//! reservation, durably: every step at or below it is refused for every user. The
//! reservation reached the disk before any step it covers was accepted, so the fence
//! covers every acceptance the loss may have undone, whatever the clock says at restart.
//! A crash of the daemon alone loses nothing (the kernel still holds its writes, and the
//! next start syncs them): no fence.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};

use super::{err, Cached, Shared};
use nix::fcntl::{Flock, FlockArg};

use crate::files;
use crate::otp;
use crate::storage::{StoreError, StoreResult};

/// How long a lazy commit waits, at most, before the syncer syncs it (and the commits
/// made meanwhile, with one fsync).
pub const LAZY_SYNC_DELAY: Duration = Duration::from_millis(100);
/// The syncer raises the reservation this many seconds before a step begins.
const RESERVE_AHEAD_SECONDS: i64 = 3;
/// Steps reserved beyond the current one: the code of a phone running a step ahead is
/// accepted lazily too.
const RESERVE_STEPS_AHEAD: u64 = 1;
/// Without a TOTP acceptance for this long, the syncer stops raising the reservation
/// (an idle host writes nothing); the next acceptance waits for one sync, which raises it.
const IDLE_AFTER_SECONDS: i64 = 300;
/// The syncer's period while logins come in.
const TICK: Duration = Duration::from_secs(1);
/// The syncer's period when idle (woken by the next acceptance).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// The reservation that covers every step a login may present until
/// [`RESERVE_AHEAD_SECONDS`] before the next step begins.
pub fn reservation_at(now: i64) -> u64 {
    otp::step_at((now + RESERVE_AHEAD_SECONDS).max(0) as u64) + RESERVE_STEPS_AHEAD
}

/// What the previous run of the daemon left in `run_state`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRecord {
    /// Kernel boot id of the run that last started.
    pub boot_id: String,
    /// That run stopped in order, everything synced.
    pub clean: bool,
    /// No step above this was accepted without a sync.
    pub reserved_step: u64,
    /// Steps at or below this are refused (0: none).
    pub fence_step: u64,
}

/// The fence for a run starting on `boot_id` after `previous`: raised to the reservation
/// when the previous run stopped uncleanly on another boot (a fence only ever rises).
pub fn fence_after(previous: &RunRecord, boot_id: &str) -> u64 {
    let page_cache_survived = !boot_id.is_empty() && previous.boot_id == boot_id;
    if previous.clean || page_cache_survived {
        previous.fence_step
    } else {
        previous.fence_step.max(previous.reserved_step)
    }
}

pub(super) fn read_record(conn: &Connection) -> StoreResult<RunRecord> {
    conn.row(
        "SELECT boot_id, clean, reserved_step, fence_step FROM run_state WHERE id = 1",
        [],
        |row| {
            Ok(RunRecord {
                boot_id: row.get(0)?,
                clean: row.get(1)?,
                reserved_step: row.get::<_, i64>(2)? as u64,
                fence_step: row.get::<_, i64>(3)? as u64,
            })
        },
    )
    .map_err(err("run state"))
}

fn record_start(tx: &Transaction<'_>, boot_id: &str, fence: u64) -> StoreResult<()> {
    tx.exec(
        "UPDATE run_state SET boot_id = ?1, clean = 0, fence_step = ?2 WHERE id = 1",
        params![boot_id, fence as i64],
    )
    .map(drop)
    .map_err(err("run state"))
}

fn record_clean_stop(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.exec("UPDATE run_state SET clean = 1 WHERE id = 1", [])
        .map(drop)
        .map_err(err("run state"))
}

pub(super) fn raise_reservation(tx: &Transaction<'_>, step: u64) -> StoreResult<()> {
    tx.exec(
        "UPDATE run_state SET reserved_step = max(reserved_step, ?1) WHERE id = 1",
        params![step as i64],
    )
    .map(drop)
    .map_err(err("run state"))
}

/// How an acceptance commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Answered at once; the syncer syncs it.
    Lazy,
    /// Answered once synced, raising the reservation to this step first if Some.
    Synced(Option<u64>),
}

/// The in-memory side of the run: what is durable, and the syncer's wake-ups.
#[derive(Default)]
pub(super) struct RunState {
    /// A run has begun on a database file (`begin_run`): acceptances may be lazy.
    active: AtomicBool,
    /// Every write waits for its sync: the run is stopping (or stopped), or a background
    /// sync failed.
    synced_only: AtomicBool,
    /// The reservation known to be on disk.
    reserved: AtomicU64,
    /// The fence in force (0: none).
    fence: AtomicU64,
    /// Unix time of the last TOTP acceptance (the syncer keeps the reservation ahead
    /// while they come in).
    last_acceptance: AtomicI64,
    wake: Mutex<Wake>,
    wakeup: Condvar,
}

#[derive(Default)]
struct Wake {
    /// An acceptance was made: a lazy commit may wait for its sync.
    pending: bool,
    /// The store is gone (it synced what was pending): exit.
    stop: bool,
    /// The syncer thread runs.
    started: bool,
}

impl RunState {
    /// How an acceptance of `step` at `now` commits (call with the connection locked).
    pub(super) fn commit_for(&self, step: u64, now: i64) -> Commit {
        if !self.active.load(Ordering::SeqCst) || self.synced_only.load(Ordering::SeqCst) {
            return Commit::Synced(None);
        }
        if step <= self.reserved.load(Ordering::SeqCst) {
            Commit::Lazy
        } else {
            Commit::Synced(Some(step.max(reservation_at(now))))
        }
    }

    /// Notes an acceptance at `now`: the syncer syncs it if lazy, and keeps the
    /// reservation ahead from now on.
    pub(super) fn accepted(&self, now: i64) {
        self.last_acceptance.fetch_max(now, Ordering::SeqCst);
        if let Ok(mut wake) = self.wake.lock() {
            wake.pending = true;
            self.wakeup.notify_one();
        }
    }

    /// TOTP acceptances came in lately.
    fn busy(&self, now: i64) -> bool {
        now - self.last_acceptance.load(Ordering::SeqCst) < IDLE_AFTER_SECONDS
    }

    /// Notes that the reservation `step` is on disk.
    pub(super) fn reserved(&self, step: u64) {
        self.reserved.fetch_max(step, Ordering::SeqCst);
    }

    /// The fence in force, None when there is none.
    pub(super) fn fence(&self) -> Option<u64> {
        Some(self.fence.load(Ordering::SeqCst)).filter(|f| *f > 0)
    }

    /// Tells the syncer to exit.
    pub(super) fn stop(&self) {
        if let Ok(mut wake) = self.wake.lock() {
            wake.stop = true;
            self.wakeup.notify_one();
        }
    }
}

impl Shared {
    /// Starts a run on `boot_id`: the fence it imposes, if any (see the module comment).
    pub(super) fn begin_run(self: &Arc<Self>, boot_id: &str) -> StoreResult<Option<u64>> {
        self.lock_run()?;
        let (previous, fence) = self.write_durably(|tx| {
            let previous = read_record(tx)?;
            let fence = fence_after(&previous, boot_id);
            record_start(tx, boot_id, fence)?;
            Ok((previous, fence))
        })?;
        // Synced just now: the reservation read is on disk.
        let run = &self.run;
        run.reserved(previous.reserved_step);
        run.fence.fetch_max(fence, Ordering::SeqCst);
        run.synced_only.store(false, Ordering::SeqCst);
        if self.wal.path.is_some() {
            run.active.store(true, Ordering::SeqCst);
            self.start_syncer()?;
        }
        Ok((fence > previous.fence_step).then_some(fence))
    }

    /// An orderly stop: everything is synced with the clean-stop record, and every later
    /// write is synced.
    pub(super) fn end_run(&self) -> StoreResult<()> {
        self.write_durably(|tx| {
            // Under the connection lock: no lazy commit can follow the record unsynced.
            self.run.synced_only.store(true, Ordering::SeqCst);
            record_clean_stop(tx)
        })
    }

    /// One run at a time on a database: another daemon's clean stop must not speak for
    /// this one's unsynced commits.
    fn lock_run(&self) -> StoreResult<()> {
        let Some(db) = &self.db else { return Ok(()) };
        let mut held = self
            .run_lock
            .lock()
            .map_err(|_| StoreError::Failed("run lock poisoned".into()))?;
        if held.is_none() {
            let file = files::open_private_file(db).map_err(|e| StoreError::Failed(e.0))?;
            let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
                StoreError::Failed(format!(
                    "{}: {e}: is another twofoldd using it?",
                    db.display()
                ))
            })?;
            *held = Some(lock);
        }
        Ok(())
    }

    fn start_syncer(self: &Arc<Self>) -> StoreResult<()> {
        let mut wake = self
            .run
            .wake
            .lock()
            .map_err(|_| StoreError::Failed("syncer lock poisoned".into()))?;
        if wake.started {
            return Ok(());
        }
        let store = Arc::downgrade(self);
        let run = Arc::clone(&self.run);
        std::thread::Builder::new()
            .name("twofoldd-sync".into())
            .spawn(move || syncer(&store, &run))
            .map_err(|e| StoreError::Failed(format!("cannot start the syncer: {e}")))?;
        wake.started = true;
        Ok(())
    }

    /// Syncs every commit made so far.
    pub(super) fn sync_all(&self) -> StoreResult<()> {
        self.wal
            .sync_through(self.wal.committed.load(Ordering::SeqCst))
    }

    /// Raises the reservation, synced, when the clock is about to outrun it.
    fn keep_reservation_ahead(&self, now: i64) -> StoreResult<()> {
        let wanted = reservation_at(now);
        if self.run.reserved.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        self.write_durably(|tx| raise_reservation(tx, wanted))?;
        self.run.reserved(wanted);
        Ok(())
    }
}

/// The syncer thread: syncs lazy commits within [`LAZY_SYNC_DELAY`], keeps the
/// reservation ahead while logins come in, and exits when the store is dropped.
fn syncer(store: &Weak<Shared>, run: &RunState) {
    loop {
        // Idle: nothing to do until the next acceptance wakes us.
        let period = if run.busy(crate::service::now()) {
            TICK
        } else {
            IDLE_WAIT
        };
        let Ok(wake) = run.wake.lock() else { return };
        let Ok((mut wake, _)) = run
            .wakeup
            .wait_timeout_while(wake, period, |w| !w.pending && !w.stop)
        else {
            return;
        };
        let (pending, stop) = (std::mem::take(&mut wake.pending), wake.stop);
        drop(wake);
        if stop {
            return; // the store synced what was pending as it was dropped
        }
        if pending {
            // Gather the commits of the next moments into the same fsync.
            std::thread::sleep(LAZY_SYNC_DELAY);
        }
        let Some(shared) = store.upgrade() else {
            return;
        };
        if let Err(e) = shared.sync_all() {
            // Fail closed: no acceptance is answered before its sync any more.
            run.synced_only.store(true, Ordering::SeqCst);
            log::error!("cannot sync the database: {e}; every write now waits for its sync");
        }
        let now = crate::service::now();
        if run.busy(now) && run.active.load(Ordering::SeqCst) {
            if let Err(e) = shared.keep_reservation_ahead(now) {
                log::error!("cannot reserve the next TOTP steps: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(boot_id: &str, clean: bool, reserved_step: u64, fence_step: u64) -> RunRecord {
        RunRecord {
            boot_id: boot_id.into(),
            clean,
            reserved_step,
            fence_step,
        }
    }

    #[test]
    fn fence_rises_only_after_an_unclean_stop_on_another_boot() {
        // A clean stop: nothing was pending, whatever the boot.
        assert_eq!(fence_after(&record("a", true, 900, 0), "b"), 0);
        // The daemon alone crashed: the kernel kept its writes.
        assert_eq!(fence_after(&record("a", false, 900, 0), "a"), 0);
        // The kernel stopped (power loss): everything reserved may have been accepted.
        assert_eq!(fence_after(&record("a", false, 900, 0), "b"), 900);
        // An unknown boot id is another boot.
        assert_eq!(fence_after(&record("", false, 900, 0), ""), 900);
        // A fence never goes down: not after a clean stop, not below an older fence.
        assert_eq!(fence_after(&record("a", true, 900, 950), "b"), 950);
        assert_eq!(fence_after(&record("a", false, 900, 950), "b"), 950);
    }

    #[test]
    fn the_reservation_covers_this_step_and_the_next_until_just_before_it() {
        let step_start = 1_000 * otp::STEP_SECONDS as i64;
        // Anywhere in step 1000 up to 3 s before its end: 1001 (a phone a step ahead).
        assert_eq!(reservation_at(step_start), 1_001);
        assert_eq!(reservation_at(step_start + 26), 1_001);
        // In its last 3 s, the next step's too.
        assert_eq!(reservation_at(step_start + 27), 1_002);
        // A clock behind by 60 s reserves 2 steps less: the persisted reservation, not
        // the clock at restart, is what the fence takes.
        assert_eq!(reservation_at(step_start - 60), 999);
    }
}

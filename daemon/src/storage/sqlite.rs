//! The embedded store: one SQLite file in WAL mode, created 0600 and never opened
//! through a link. A write is on disk before it is answered, through group commit (see
//! [`WalSync`]); except a TOTP acceptance, synced right after it is answered, whose loss
//! in a power cut [`durability`] keeps from letting the code pass again.
//!
//! The store's logic is `storage::sql`'s, shared with PostgreSQL; this is how it runs
//! here: on one connection, each write in an immediate transaction.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Params, Transaction, TransactionBehavior};

use super::schema::{self, Migration};
use super::sql::{store_error, Backend, Cell, DbError, DbResult, Dialect, Durability, Row, Tx};
use super::{StoreError, StoreResult};
use crate::files;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
/// The first ones predate `schema` and stay as they were; `schema::TABLES` describes
/// the tables they build (checked by a test).
const MIGRATIONS: &[Migration] = &[
    // 1: the login path.
    Migration::Sql(
        "CREATE TABLE users (
        name        TEXT PRIMARY KEY NOT NULL,
        secret      BLOB NOT NULL,
        enrolled_at INTEGER NOT NULL,
        last_step   INTEGER
    );
    CREATE TABLE pending_enrollments (
        name       TEXT PRIMARY KEY NOT NULL,
        secret     BLOB NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE backup_codes (
        id      INTEGER PRIMARY KEY,
        name    TEXT NOT NULL,
        tag     BLOB NOT NULL,
        hash    TEXT NOT NULL,
        used_at INTEGER
    );
    CREATE INDEX backup_codes_by_tag ON backup_codes(name, tag);
    CREATE TABLE throttle (
        name         TEXT PRIMARY KEY NOT NULL,
        failures     INTEGER NOT NULL DEFAULT 0,
        lockouts     INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        actor_uid INTEGER,
        actor_pid INTEGER,
        user      TEXT NOT NULL,
        event     TEXT NOT NULL,
        service   TEXT NOT NULL DEFAULT '',
        tty       TEXT NOT NULL DEFAULT '',
        rhost     TEXT NOT NULL DEFAULT '',
        detail    TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_user ON audit(user, at);",
    ),
    // 2: self-service (last use, device clock skew).
    Migration::Sql(
        "ALTER TABLE users ADD COLUMN last_used_at INTEGER;
    ALTER TABLE users ADD COLUMN last_method TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN last_service TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN last_rhost TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN step_offset INTEGER;",
    ),
    // 3: policy and administration (lockouts per source, enrollment grace, bypass codes).
    Migration::Sql(
        "CREATE TABLE throttle_by_source (
        name         TEXT NOT NULL,
        source       TEXT NOT NULL,
        failures     INTEGER NOT NULL DEFAULT 0,
        lockouts     INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, source)
    );
    INSERT INTO throttle_by_source (name, source, failures, lockouts, locked_until)
        SELECT name, 'local', failures, lockouts, locked_until FROM throttle;
    DROP TABLE throttle;
    ALTER TABLE throttle_by_source RENAME TO throttle;
    CREATE TABLE first_seen (
        name TEXT PRIMARY KEY NOT NULL,
        at   INTEGER NOT NULL
    );
    CREATE TABLE bypass_codes (
        name       TEXT PRIMARY KEY NOT NULL,
        hash       TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX audit_by_time ON audit(at);",
    ),
    // 4: login sessions, remembered second-factor passes, session timeouts.
    Migration::Sql(
        "CREATE TABLE sessions (
        id             TEXT PRIMARY KEY NOT NULL,
        user           TEXT NOT NULL,
        service        TEXT NOT NULL DEFAULT '',
        tty            TEXT NOT NULL DEFAULT '',
        rhost          TEXT NOT NULL DEFAULT '',
        ruser          TEXT NOT NULL DEFAULT '',
        host           TEXT NOT NULL DEFAULT '',
        boot_id        TEXT NOT NULL DEFAULT '',
        leader_pid     INTEGER NOT NULL,
        leader_start   INTEGER NOT NULL,
        logind_session TEXT NOT NULL DEFAULT '',
        auth_method    TEXT NOT NULL DEFAULT '',
        auth_at        INTEGER NOT NULL DEFAULT 0,
        started        INTEGER NOT NULL,
        ended          INTEGER,
        end_reason     TEXT NOT NULL DEFAULT '',
        rhost_name     TEXT NOT NULL DEFAULT '',
        location       TEXT NOT NULL DEFAULT '',
        country_code   TEXT NOT NULL DEFAULT '',
        warned         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_user ON sessions(user, started);
    CREATE INDEX sessions_live ON sessions(host, ended);
    CREATE TABLE auth_passes (
        id            INTEGER PRIMARY KEY,
        user          TEXT NOT NULL,
        service       TEXT NOT NULL DEFAULT '',
        tty           TEXT NOT NULL DEFAULT '',
        rhost         TEXT NOT NULL DEFAULT '',
        at            INTEGER NOT NULL,
        method        TEXT NOT NULL,
        caller_pid    INTEGER NOT NULL DEFAULT 0,
        caller_ppid   INTEGER NOT NULL DEFAULT 0,
        tty_sid       INTEGER NOT NULL DEFAULT 0,
        tty_sid_start INTEGER NOT NULL DEFAULT 0,
        host          TEXT NOT NULL DEFAULT '',
        boot_id       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX auth_passes_by_user ON auth_passes(user, at);
    CREATE TABLE session_timeouts (
        name    TEXT PRIMARY KEY NOT NULL,
        seconds INTEGER NOT NULL
    );",
    ),
    // 5: fleet mode (the same schema as PostgreSQL's): the host of each audit entry,
    // revocation of a session asked by another host.
    Migration::Sql(
        "ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN revoke_requested TEXT NOT NULL DEFAULT '';",
    ),
    // 6: bounded storage (PostgreSQL's 2).
    Migration::Change(&schema::THROTTLE_UPDATED_AT),
    // 7: TOTP acceptances answered before their fsync (see `durability`): the run of the
    // daemon, the steps reserved, the replay fence after a power loss. Every earlier
    // version synced every acceptance: nothing is pending.
    Migration::Sql(
        "CREATE TABLE run_state (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        boot_id       TEXT NOT NULL DEFAULT '',
        clean         INTEGER NOT NULL DEFAULT 1,
        reserved_step INTEGER NOT NULL DEFAULT 0,
        fence_step    INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO run_state (id) VALUES (1);",
    ),
    // 8: several devices per user (PostgreSQL's 3).
    Migration::Changes(schema::DEVICES),
    // 9: hardware tokens' algorithms, digits, steps and counters (PostgreSQL's 4).
    Migration::Changes(schema::OATH_PARAMS),
    // 10: hardware OATH tokens (PostgreSQL's 5).
    Migration::Changes(schema::TOKENS),
];

mod durability;

/// SQLite-backed [`Store`](super::Store).
pub struct SqliteStore {
    shared: Arc<Shared>,
}

/// The store's state, shared with its syncer thread (see `durability`); a
/// [`SqliteStore`] derefs to it.
pub struct Shared {
    conn: Mutex<Connection>,
    wal: WalSync,
    /// The database file; None in memory.
    db: Option<PathBuf>,
    run: Arc<durability::RunState>,
    /// The database file, locked (`flock`) while a run uses it: one daemon at a time.
    run_lock: Mutex<Option<nix::fcntl::Flock<File>>>,
}

impl std::ops::Deref for SqliteStore {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // What the syncer had yet to sync: the last chance (it cannot reach us any more).
        if let Err(e) = self.shared.sync_all() {
            log::error!("cannot sync the database: {e}");
        }
        self.shared.run.stop();
    }
}

/// Statements through the connection's statement cache: parsing SQL costs more than
/// running these small statements.
trait Cached {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Group commit. Transactions commit with `synchronous=NORMAL`, i.e. without an fsync of
/// their own, while the connection is locked; then each writer waits, outside that lock,
/// for an `fdatasync` of the WAL that began after its commit. One fsync thus covers
/// every commit made while the previous one ran: concurrent logins share it instead of
/// queueing behind one fsync each, and still none is answered before its commit is on
/// disk (a WAL whose commit frame is on disk is replayed after a crash).
struct WalSync {
    /// The `-wal` file; None for an in-memory database.
    path: Option<PathBuf>,
    /// Commits made so far (numbered under the connection lock, after each commit).
    committed: AtomicU64,
    /// fdatasync calls made (read by the tests).
    syncs: AtomicU64,
    state: Mutex<SyncState>,
}

#[derive(Default)]
struct SyncState {
    /// Every commit up to this number is on disk.
    synced: u64,
    /// The open WAL file, with its inode (checked before each sync: SQLite deletes and
    /// recreates the WAL only when every connection closes, but a stale descriptor would
    /// sync nothing).
    file: Option<(File, u64)>,
}

impl WalSync {
    fn new(path: Option<PathBuf>) -> WalSync {
        WalSync {
            path,
            committed: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            state: Mutex::new(SyncState::default()),
        }
    }

    /// Numbers a commit that has just happened (call with the connection locked).
    fn note_commit(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once commit number `seq` is on disk.
    fn sync_through(&self, seq: u64) -> StoreResult<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Failed("database sync lock poisoned".into()))?;
        if state.synced >= seq {
            return Ok(());
        }
        // Every commit numbered so far has written its frames: this sync covers them all.
        let target = self.committed.load(Ordering::SeqCst);
        let inode = std::fs::symlink_metadata(path)
            .map_err(|e| StoreError::Failed(format!("{}: {e}", path.display())))?
            .ino();
        if state.file.as_ref().map(|f| f.1) != Some(inode) {
            let file = files::open_private_file(path).map_err(|e| StoreError::Failed(e.0))?;
            let opened = file
                .metadata()
                .map_err(|e| StoreError::Failed(format!("{}: {e}", path.display())))?
                .ino();
            state.file = Some((file, opened));
        }
        if let Some((file, _)) = &state.file {
            file.sync_data()
                .map_err(|e| StoreError::Failed(format!("cannot sync {}: {e}", path.display())))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        state.synced = target;
        Ok(())
    }
}

fn err(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Failed(format!("{context}: {e}"))
}

impl SqliteStore {
    /// Opens (creating 0600 when absent) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore, String> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                files::ensure_private_dir(dir).map_err(|e| e.0)?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                drop(
                    files::create_private_file(path)
                        .map_err(|e| format!("{}: cannot create database: {e}", path.display()))?,
                );
            }
            _ => files::check_private_file(path).map_err(|e| format!("database: {e}"))?,
        }
        for side in ["-wal", "-shm"] {
            let mut side_path = path.as_os_str().to_owned();
            side_path.push(side);
            let side_path = Path::new(&side_path);
            if std::fs::symlink_metadata(side_path).is_ok() {
                files::check_private_file(side_path).map_err(|e| format!("database: {e}"))?;
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| format!("{}: cannot open database: {e}", path.display()))?;
        Self::prepare(conn, Some(path)).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Creates (0600) a database at `path` of the schema the first `version` migrations
    /// make, then runs `sql` on it: a database of an older twofoldd, for tests of the
    /// later migrations.
    #[cfg(any(test, feature = "test-support"))]
    pub fn create_at_version(path: &Path, version: usize, sql: &str) -> Result<(), String> {
        drop(files::create_private_file(path).map_err(|e| e.to_string())?);
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        for migration in &MIGRATIONS[..version] {
            conn.execute_batch(&migration.sql(Dialect::Sqlite))
                .map_err(|e| e.to_string())?;
        }
        conn.pragma_update(None, "user_version", version as i64)
            .and_then(|()| conn.execute_batch(sql))
            .map_err(|e| e.to_string())
    }

    /// An in-memory store for unit tests.
    #[cfg(test)]
    pub fn in_memory() -> SqliteStore {
        Self::prepare(Connection::open_in_memory().unwrap(), None).unwrap()
    }

    fn prepare(mut conn: Connection, db: Option<&Path>) -> Result<SqliteStore, String> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        conn.set_prepared_statement_cache_capacity(64);
        // 1 MiB of page cache (SQLite's default is 2): lookups are by key into a file
        // the kernel caches anyway, and the daemon's resident size is a goal.
        conn.pragma_update(None, "cache_size", -1024)
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| format!("cannot enable WAL: {e}"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| e.to_string())?;
        migrate(&mut conn)?;
        // From here on commits leave their fsync to `WalSync` (checkpoints still sync).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                wal: WalSync::new(db.map(|db| {
                    let mut wal = db.as_os_str().to_owned();
                    wal.push("-wal");
                    PathBuf::from(wal)
                })),
                db: db.map(Path::to_path_buf),
                run: Arc::default(),
                run_lock: Mutex::new(None),
            }),
        })
    }
}

impl Shared {
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Failed("database lock poisoned".into()))?;
        f(&mut conn)
    }

    /// Reads with the raw connection, inside one transaction so that what is read is one
    /// consistent state (`twofoldd migrate`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))] // the migration's reader
    pub(crate) fn read_raw<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err("begin"))?;
            let out = f(&tx).map_err(err("read"))?;
            tx.commit().map_err(err("commit"))?;
            Ok(out)
        })
    }

    /// One atomic write, on disk when this returns (group commit, see [`WalSync`]).
    fn write_durably<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let (out, seq) = self.commit(f)?;
        self.wal.sync_through(seq)?;
        Ok(out)
    }

    fn commit<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<(T, u64)> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err("begin"))?;
            let out = f(&tx)?;
            tx.commit().map_err(err("commit"))?;
            Ok((out, self.wal.note_commit()))
        })
    }
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let version = usize::try_from(version).map_err(|_| format!("bad schema version {version}"))?;
    if version > MIGRATIONS.len() {
        return Err(format!(
            "database schema version {version} is newer than this twofoldd ({}); refusing to touch it",
            MIGRATIONS.len()
        ));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(&migration.sql(Dialect::Sqlite))
            .and_then(|()| tx.pragma_update(None, "user_version", (i + 1) as i64))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("schema migration {} failed: {e}", i + 1))?;
    }
    Ok(())
}

/// Statements of the shared logic on one connection (inside a transaction for writes).
struct SqliteTx<'a>(&'a Connection);

fn cell(value: ValueRef<'_>) -> DbResult<Cell> {
    Ok(match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Text(t) => Cell::Text(
            String::from_utf8(t.to_vec()).map_err(|e| DbError::Statement(e.to_string()))?,
        ),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        ValueRef::Real(_) => return Err(DbError::Statement("a real number stored".into())),
    })
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&self, sql: &str, args: &[super::sql::Value<'_>]) -> DbResult<u64> {
        let sql = Dialect::Sqlite.text(sql);
        let changed = self
            .0
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(changed as u64)
    }

    fn rows(&self, sql: &str, args: &[super::sql::Value<'_>]) -> DbResult<Vec<Row>> {
        let sql = Dialect::Sqlite.text(sql);
        let mut stmt = self.0.prepare_cached(&sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let cells = (0..columns)
                .map(|i| cell(row.get_ref(i)?))
                .collect::<DbResult<Vec<_>>>()?;
            out.push(Row(cells));
        }
        Ok(out)
    }
}

impl Backend for SqliteStore {
    fn spans_hosts(&self) -> bool {
        false
    }

    fn read<T>(&self, what: &str, mut op: impl FnMut(&dyn Tx) -> DbResult<T>) -> StoreResult<T> {
        self.with_conn(|conn| op(&SqliteTx(conn)).map_err(|e| store_error(what, e)))
    }

    fn write<T>(
        &self,
        what: &str,
        durability: Durability,
        mut op: impl FnMut(&dyn Tx) -> DbResult<T>,
    ) -> StoreResult<T> {
        let (out, seq) = self.commit(|tx| op(&SqliteTx(tx)).map_err(|e| store_error(what, e)))?;
        if durability == Durability::OnDisk {
            self.wal.sync_through(seq)?;
        }
        Ok(out)
    }

    /// Answered before its sync when the run allows it (see [`durability`]).
    fn write_acceptance(
        &self,
        step: u64,
        at: i64,
        mut op: impl FnMut(&dyn Tx) -> DbResult<bool>,
    ) -> StoreResult<bool> {
        let ((moved, commit), seq) = self.commit(|tx| {
            let moved = op(&SqliteTx(tx)).map_err(|e| store_error("replay watermark", e))?;
            // Decided under the connection lock, as `end_run` closes the run.
            let commit = self.run.commit_for(step, at);
            if let durability::Commit::Synced(Some(reserve)) = commit {
                durability::raise_reservation(tx, reserve)?;
            }
            Ok((moved, commit))
        })?;
        if let durability::Commit::Synced(reserve) = commit {
            self.wal.sync_through(seq)?;
            if let Some(reserve) = reserve {
                self.run.reserved(reserve);
            }
        }
        if moved {
            self.run.accepted(at);
        }
        Ok(moved)
    }

    fn start_run(&self, boot_id: &str) -> StoreResult<Option<u64>> {
        self.shared.begin_run(boot_id)
    }

    fn fence(&self) -> Option<u64> {
        self.run.fence()
    }

    fn stop_run(&self) -> StoreResult<()> {
        self.shared.end_run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockout::{LockoutPolicy, Throttle};
    use crate::otp;
    use crate::storage::conformance::{accept, alices_event as event, enroll, local};
    use crate::storage::sql::args;
    use crate::storage::{AuditEvent, Device, Pending, Store};

    #[test]
    fn every_write_is_synced_and_concurrent_writes_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state").join("twofold.db");
        let store = std::sync::Arc::new(SqliteStore::open(&db).unwrap());
        let syncs = |s: &SqliteStore| s.wal.syncs.load(Ordering::Relaxed);
        let synced = |s: &SqliteStore| s.wal.state.lock().unwrap().synced;
        // One after the other: every write waits for a sync of its own commit.
        let before = syncs(&store);
        for i in 0..5 {
            store.first_seen(&format!("u{i}"), 1).unwrap();
            assert_eq!(synced(&store), store.wal.committed.load(Ordering::SeqCst));
        }
        assert_eq!(syncs(&store) - before, 5);
        // The descriptor synced is the WAL's.
        let wal = std::fs::metadata(dir.path().join("state").join("twofold.db-wal")).unwrap();
        let state = store.wal.state.lock().unwrap();
        assert_eq!(state.file.as_ref().map(|f| f.1), Some(wal.ino()));
        drop(state);
        // A write that is not waited for costs no sync.
        let before = syncs(&store);
        store
            .write("test", Durability::Later, |tx| {
                tx.exec("INSERT INTO first_seen (name, at) VALUES ('x', 1)", args![])
            })
            .unwrap();
        assert_eq!(syncs(&store), before);
        // Many at once: each returns synced, with at most one sync each.
        let before = syncs(&store);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        store.first_seen(&format!("t{t}-{i}"), 1).unwrap();
                        let done = store.wal.committed.load(Ordering::SeqCst);
                        assert!(done >= 1 && synced(&store) >= 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(synced(&store), store.wal.committed.load(Ordering::SeqCst));
        let used = syncs(&store) - before;
        assert!((1..=160).contains(&used), "{used} syncs for 160 writes");
        println!("160 concurrent writes took {used} syncs");
    }

    use twofold_contract::limits::FIRST_DEVICE;

    /// A database of the schema before devices (7) with one enrolled user, migrated:
    /// the user's secret becomes their first device, its watermark and last use kept.
    #[test]
    fn an_enrolled_users_secret_becomes_their_first_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twofold.db");
        SqliteStore::create_at_version(
            &path,
            7,
            "INSERT INTO users (name, secret, enrolled_at, last_step, last_used_at, last_method)
             VALUES ('alice', X'010203', 1000, 77, 2000, 'totp'),
                    ('bob', X'0405', 1100, NULL, 2100, 'backup_code');",
        )
        .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        // Each user's devices: name, sealed secret, added, watermark, last use.
        let devices = |user: &str| {
            let each = |d: Device| {
                (
                    d.name,
                    d.secret_sealed,
                    d.added_at,
                    d.last_step,
                    d.last_used_at,
                )
            };
            store
                .devices(user)
                .unwrap()
                .into_iter()
                .map(each)
                .collect::<Vec<_>>()
        };
        let first = FIRST_DEVICE.to_string();
        assert_eq!(
            devices("alice"),
            [(first.clone(), vec![1, 2, 3], 1000, Some(77), Some(2000))]
        );
        assert_eq!(devices("bob"), [(first, vec![4, 5], 1100, None, None)]);
        let rec = store.user("alice").unwrap().unwrap();
        assert_eq!((rec.enrolled_at, rec.last_used_at), (1000, Some(2000)));
        // The watermark holds: its step is used, the next passes once.
        let ev = event(3000);
        assert!(!accept(&store, "alice", FIRST_DEVICE, 77, &ev));
        assert!(accept(&store, "alice", FIRST_DEVICE, 78, &ev));
    }

    fn enroll_at(store: &SqliteStore, user: &str, step: u64) {
        let pending = Pending {
            secret_sealed: vec![1],
            expires_at: i64::MAX,
            oath: crate::otp::Oath::APP,
        };
        let ev = AuditEvent {
            user: user.into(),
            ..event(1)
        };
        store.begin_enrollment(user, &pending, &ev).unwrap();
        assert!(store
            .confirm_enrollment(user, &Pending::sealed(vec![1]), Some(step), &[], &ev)
            .unwrap());
    }

    /// Copies the database files (`-wal`, `-shm` too) from `from` to `to`: what a power
    /// loss leaves when nothing is pending.
    fn snapshot(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for side in ["", "-wal", "-shm"] {
            let name = format!("twofold.db{side}");
            if from.join(&name).exists() {
                std::fs::copy(from.join(&name), to.join(&name)).unwrap();
            }
        }
    }

    fn synced_all(store: &SqliteStore) -> bool {
        store.wal.state.lock().unwrap().synced == store.wal.committed.load(Ordering::SeqCst)
    }

    #[test]
    fn a_totp_acceptance_is_answered_before_its_sync_and_synced_soon_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("twofold.db")).unwrap();
        assert_eq!(store.begin_run("boot-a").unwrap(), None);
        let now = crate::service::now();
        let step = otp::step_at(now as u64);
        enroll_at(&store, "alice", step - 1);
        // The first acceptance reserves the steps ahead (synced), the next ones cost none.
        let ev = |at| AuditEvent {
            user: "alice".into(),
            ..event(at)
        };
        assert!(accept(&store, "alice", FIRST_DEVICE, step, &ev(now)));
        assert!(synced_all(&store));
        std::thread::sleep(durability::LAZY_SYNC_DELAY * 3);
        let syncs = store.wal.syncs.load(Ordering::SeqCst);
        assert!(accept(&store, "alice", FIRST_DEVICE, step + 1, &ev(now)));
        assert!(!synced_all(&store), "answered before its sync");
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !synced_all(&store) {
            assert!(
                std::time::Instant::now() < deadline,
                "not synced within 1 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(store.wal.syncs.load(Ordering::SeqCst) > syncs);
        // After an orderly stop every write waits for its sync again.
        store.end_run().unwrap();
        enroll_at(&store, "bob", step - 1);
        assert!(accept(&store, "bob", FIRST_DEVICE, step, &ev(now)));
        assert!(synced_all(&store));
    }

    #[test]
    fn a_power_loss_fences_every_step_accepted_unsynced_even_with_the_clock_behind() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let store = SqliteStore::open(&live.join("twofold.db")).unwrap();
        assert_eq!(store.begin_run("boot-a").unwrap(), None);
        let now = crate::service::now();
        let step = otp::step_at(now as u64);
        enroll_at(&store, "alice", step - 1);
        let ev = AuditEvent {
            user: "alice".into(),
            ..event(now)
        };
        assert!(accept(&store, "alice", FIRST_DEVICE, step, &ev));
        std::thread::sleep(durability::LAZY_SYNC_DELAY * 3);
        assert!(synced_all(&store));
        // The disk as a power loss would leave it: the next acceptance never reached it.
        snapshot(&live, &dir.path().join("lost"));
        snapshot(&live, &dir.path().join("crashed"));
        assert!(accept(&store, "alice", FIRST_DEVICE, step + 1, &ev));
        drop(store);

        // Restarted on another boot: the watermark went back, the fence covers it. The
        // fence comes from the disk, not from the clock (which could be behind).
        let lost = SqliteStore::open(&dir.path().join("lost/twofold.db")).unwrap();
        assert_eq!(lost.devices("alice").unwrap()[0].last_step, Some(step));
        let fence = lost.begin_run("boot-b").unwrap().expect("a fence");
        assert!(
            fence > step,
            "fence {fence} lets step {} pass again",
            step + 1
        );
        // Bounded by what the syncer could have reserved by now (a step may have begun
        // since the test started, on a loaded machine).
        assert!(
            fence <= durability::reservation_at(crate::service::now()),
            "fence {fence} too far"
        );
        assert_eq!(lost.replay_fence(), Some(fence));
        // A second crash right after the restart keeps it; a clean stop too.
        drop(lost);
        let lost = SqliteStore::open(&dir.path().join("lost/twofold.db")).unwrap();
        assert_eq!(lost.begin_run("boot-c").unwrap(), None);
        assert_eq!(lost.replay_fence(), Some(fence));
        lost.end_run().unwrap();
        drop(lost);
        let lost = SqliteStore::open(&dir.path().join("lost/twofold.db")).unwrap();
        assert_eq!(lost.begin_run("boot-d").unwrap(), None);
        assert_eq!(lost.replay_fence(), Some(fence));

        // The daemon alone crashed (same boot): the kernel kept its writes, no fence.
        let crashed = SqliteStore::open(&dir.path().join("crashed/twofold.db")).unwrap();
        assert_eq!(crashed.begin_run("boot-a").unwrap(), None);
        assert_eq!(crashed.replay_fence(), None);
    }

    #[test]
    fn one_run_at_a_time_on_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("twofold.db");
        let first = SqliteStore::open(&db).unwrap();
        first.begin_run("boot-a").unwrap();
        // A second daemon on the same file never starts (nor records a clean stop).
        let second = SqliteStore::open(&db).unwrap();
        let e = second.begin_run("boot-a").unwrap_err();
        assert!(e.message().contains("another twofoldd"), "{e}");
        drop(first);
        assert_eq!(second.begin_run("boot-a").unwrap(), None);
    }

    fn enrolled() -> SqliteStore {
        let store = SqliteStore::in_memory();
        enroll(&store, "alice", &event(1000));
        store
    }

    #[test]
    fn watermark_moves_forward_only() {
        let store = enrolled();
        assert_eq!(store.devices("alice").unwrap()[0].last_step, Some(50));
        assert!(!accept(&store, "alice", FIRST_DEVICE, 50, &event(1001)));
        assert!(accept(&store, "alice", FIRST_DEVICE, 51, &event(1001)));
        assert!(!accept(&store, "alice", FIRST_DEVICE, 51, &event(1001)));
        assert!(!accept(&store, "bob", FIRST_DEVICE, 99, &event(1001)));
    }

    #[test]
    fn backup_code_is_single_use() {
        let store = enrolled();
        let cands = store.backup_code_candidates("alice", &[9; 8]).unwrap();
        assert_eq!(cands.len(), 1);
        assert_eq!(
            store
                .consume_backup_code("alice", cands[0].0, &local(), &event(1))
                .unwrap(),
            Some(0)
        );
        assert_eq!(
            store
                .consume_backup_code("alice", cands[0].0, &local(), &event(1))
                .unwrap(),
            None
        );
        assert!(store
            .backup_code_candidates("alice", &[9; 8])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn confirm_needs_the_same_unexpired_pending() {
        let store = SqliteStore::in_memory();
        let pending = Pending {
            secret_sealed: vec![7],
            expires_at: 100,
            oath: crate::otp::Oath::APP,
        };
        store.begin_enrollment("bob", &pending, &event(10)).unwrap();
        assert!(!store
            .confirm_enrollment("bob", &Pending::sealed(vec![8]), Some(1), &[], &event(20))
            .unwrap());
        assert!(!store
            .confirm_enrollment("bob", &Pending::sealed(vec![7]), Some(1), &[], &event(100))
            .unwrap());
        assert!(store.pending("bob", 100).unwrap().is_none());
        assert!(store
            .confirm_enrollment("bob", &Pending::sealed(vec![7]), Some(1), &[], &event(99))
            .unwrap());
    }

    #[test]
    fn failures_lock_and_success_clears() {
        let store = enrolled();
        let policy = LockoutPolicy::default();
        let mut t = Throttle::default();
        for _ in 0..5 {
            t = store
                .record_failure("alice", &local(), &policy, &event(500))
                .unwrap();
        }
        assert_eq!(t.locked_for(500), Some(30));
        assert_eq!(store.throttle("alice", &local()).unwrap(), t);
        assert!(accept(&store, "alice", FIRST_DEVICE, 60, &event(600)));
        assert_eq!(
            store.throttle("alice", &local()).unwrap(),
            Throttle::default()
        );
    }
}

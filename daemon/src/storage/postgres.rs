//! The fleet store: many hosts' daemons share one PostgreSQL database (`storage =
//! "postgres://…"`), so that a user enrolls once and logs in anywhere.
//!
//! Semantics are those of the SQLite store, made safe across hosts: every decision is
//! one transaction on the server, whose conditional update (`UPDATE … WHERE last_step <
//! $2`, `… WHERE used_at IS NULL`, `DELETE … WHERE expires_at > $3`) PostgreSQL applies
//! atomically: two hosts verifying the same code race on the row lock, and the second
//! finds the condition false. Where SQLite relied on its single writer (the
//! read-modify-write of the failure counters), rows are locked with `SELECT … FOR
//! UPDATE`; deadlocks and serialization failures are retried. A success is returned
//! only after `COMMIT` returned, so nothing acknowledged is lost when the server or the
//! network goes away; an operation that cannot finish within [`conn::OP_TIMEOUT`]
//! fails closed.
//!
//! Secrets stay sealed with the host key file: every host of a fleet needs the same
//! one. The store records a check value derived from it (never the key) and refuses to
//! serve a host whose key differs.

mod conn;
pub mod migrate;
mod sessions;

use std::future::Future;
use std::pin::Pin;

use tokio_postgres::{Client, Transaction};

pub use super::pg_settings::{is_postgres_url, Settings, SslMode};
pub use conn::{check_url, OP_TIMEOUT};

/// In the text of errors that retrying cannot cure (a newer schema, another key file):
/// the daemon refuses to start on them.
use super::{AuditEvent, Pending, Store, StoreError, StoreResult, StoredBackupCode, UserRecord};
use crate::lockout::{LockoutPolicy, Source, Throttle, CEILINGS_LIKE};
use twofold_contract::AuditEntry;

/// Schema migrations, applied in order; `schema_version` holds how many were applied.
/// The same tables as the SQLite store's (`user` is a reserved word here: `username`).
const MIGRATIONS: &[&str] = &[
    // 1: everything of SQLite's schema 5, plus the fleet's own tables.
    "CREATE TABLE users (
        name         TEXT PRIMARY KEY,
        secret       BYTEA NOT NULL,
        enrolled_at  BIGINT NOT NULL,
        last_step    BIGINT,
        last_used_at BIGINT,
        last_method  TEXT NOT NULL DEFAULT '',
        last_service TEXT NOT NULL DEFAULT '',
        last_rhost   TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE pending_enrollments (
        name       TEXT PRIMARY KEY,
        secret     BYTEA NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE backup_codes (
        id      BIGSERIAL PRIMARY KEY,
        name    TEXT NOT NULL,
        tag     BYTEA NOT NULL,
        hash    TEXT NOT NULL,
        used_at BIGINT
    );
    CREATE INDEX backup_codes_by_tag ON backup_codes (name, tag);
    CREATE TABLE throttle (
        name         TEXT NOT NULL,
        source       TEXT NOT NULL,
        failures     BIGINT NOT NULL DEFAULT 0,
        lockouts     BIGINT NOT NULL DEFAULT 0,
        locked_until BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (name, source)
    );
    CREATE TABLE first_seen (
        name TEXT PRIMARY KEY,
        at   BIGINT NOT NULL
    );
    CREATE TABLE bypass_codes (
        name       TEXT PRIMARY KEY,
        hash       TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE audit (
        id          BIGSERIAL PRIMARY KEY,
        at          BIGINT NOT NULL,
        actor_uid   BIGINT,
        actor_pid   BIGINT,
        username    TEXT NOT NULL,
        event       TEXT NOT NULL,
        service     TEXT NOT NULL DEFAULT '',
        tty         TEXT NOT NULL DEFAULT '',
        rhost       TEXT NOT NULL DEFAULT '',
        detail      TEXT NOT NULL DEFAULT '',
        step_offset INTEGER,
        host        TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_user ON audit (username, at);
    CREATE INDEX audit_by_time ON audit (at);
    CREATE INDEX audit_step_offsets ON audit (username, id) WHERE step_offset IS NOT NULL;
    CREATE TABLE sessions (
        id               TEXT PRIMARY KEY,
        username         TEXT NOT NULL,
        service          TEXT NOT NULL DEFAULT '',
        tty              TEXT NOT NULL DEFAULT '',
        rhost            TEXT NOT NULL DEFAULT '',
        ruser            TEXT NOT NULL DEFAULT '',
        host             TEXT NOT NULL DEFAULT '',
        boot_id          TEXT NOT NULL DEFAULT '',
        leader_pid       BIGINT NOT NULL,
        leader_start     BIGINT NOT NULL,
        logind_session   TEXT NOT NULL DEFAULT '',
        auth_method      TEXT NOT NULL DEFAULT '',
        auth_at          BIGINT NOT NULL DEFAULT 0,
        started          BIGINT NOT NULL,
        ended            BIGINT,
        end_reason       TEXT NOT NULL DEFAULT '',
        rhost_name       TEXT NOT NULL DEFAULT '',
        location         TEXT NOT NULL DEFAULT '',
        country_code     TEXT NOT NULL DEFAULT '',
        warned           BOOLEAN NOT NULL DEFAULT false,
        revoke_requested TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX sessions_by_user ON sessions (username, started);
    CREATE INDEX sessions_live ON sessions (host) WHERE ended IS NULL;
    CREATE TABLE auth_passes (
        id            BIGSERIAL PRIMARY KEY,
        username      TEXT NOT NULL,
        service       TEXT NOT NULL DEFAULT '',
        tty           TEXT NOT NULL DEFAULT '',
        rhost         TEXT NOT NULL DEFAULT '',
        at            BIGINT NOT NULL,
        method        TEXT NOT NULL,
        caller_pid    BIGINT NOT NULL DEFAULT 0,
        caller_ppid   BIGINT NOT NULL DEFAULT 0,
        tty_sid       BIGINT NOT NULL DEFAULT 0,
        tty_sid_start BIGINT NOT NULL DEFAULT 0,
        host          TEXT NOT NULL DEFAULT '',
        boot_id       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX auth_passes_by_user ON auth_passes (username, at);
    CREATE TABLE session_timeouts (
        name    TEXT PRIMARY KEY,
        seconds BIGINT NOT NULL
    );
    CREATE TABLE fleet (
        key   TEXT PRIMARY KEY,
        value BYTEA NOT NULL
    );
    CREATE TABLE migrated_sources (
        source TEXT PRIMARY KEY,
        host   TEXT NOT NULL,
        at     BIGINT NOT NULL
    );",
    // 2: bounded storage (SQLite's 6): when each throttle counter last counted a failure
    // (idle ones are purged).
    "ALTER TABLE throttle ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;",
];

/// Key of the advisory lock that serializes schema migrations of daemons starting
/// together.
const MIGRATION_LOCK: i64 = 0x0074_776f_666f_6c64;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    db: conn::Db,
}

/// Applies the pending migrations and checks the fleet key, under an advisory lock so
/// that daemons starting together take turns.
async fn prepare(client: &mut Client, key_check: Option<&[u8]>) -> Result<(), StoreError> {
    let e =
        |e: tokio_postgres::Error| StoreError::Failed(format!("schema: {}", conn::describe(&e)));
    let tx = client.transaction().await.map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(e)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(e)?;
    let version: i32 = match tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await
        .map_err(e)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                .await
                .map_err(e)?;
            0
        }
    };
    let known = MIGRATIONS.len() as i32;
    if version > known {
        return Err(StoreError::Misconfigured(format!(
            "database schema version {version} is newer than this twofoldd \
             ({known}); upgrade twofold on this host"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(|err| {
            StoreError::Failed(format!(
                "schema migration {} failed: {}",
                i + 1,
                conn::describe(&err)
            ))
        })?;
        tx.execute("UPDATE schema_version SET version = $1", &[&(i as i32 + 1)])
            .await
            .map_err(e)?;
    }
    if let Some(check) = key_check {
        tx.execute(
            "INSERT INTO fleet (key, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
            &[&check],
        )
        .await
        .map_err(e)?;
        let row = tx
            .query_one("SELECT value FROM fleet WHERE key = 'key_check'", &[])
            .await
            .map_err(e)?;
        let stored: Vec<u8> = row.get(0);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_slice(), check)) {
            return Err(StoreError::Misconfigured(
                "this host's key file (--key, default /etc/twofold/secret.key) \
                 is not the fleet's: every host sharing the database needs the same key \
                 file; copy it from a host of the fleet"
                    .into(),
            ));
        }
    }
    tx.commit().await.map_err(e)
}

impl PostgresStore {
    /// A store over `settings`; `key_check` is the value derived from this host's key
    /// file (see `secrets::Keys::fleet_check`) that every host of the fleet must share.
    /// Checks the settings but does not connect: the first operation does, and every
    /// later one reconnects when the connection was lost.
    pub fn open(settings: &Settings, key_check: Option<Vec<u8>>) -> Result<PostgresStore, String> {
        let prepare: conn::Prepare = Box::new(move |client: &mut Client| {
            let key_check = key_check.clone();
            let fut: Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> =
                Box::pin(async move { prepare(client, key_check.as_deref()).await });
            fut
        });
        Ok(PostgresStore {
            db: conn::Db::new(settings, prepare)?,
        })
    }

    /// Connects (migrating the schema when needed): for the start-up message.
    pub fn check(&self) -> StoreResult<()> {
        self.db.run("connect", true, async |c: &mut Client| {
            c.simple_query("SELECT 1").await.map(drop)
        })
    }

    /// `host:port/dbname`, for messages.
    pub fn place(&self) -> &str {
        &self.db.place
    }

    /// A read: retried on a broken pooled connection.
    fn read<T>(
        &self,
        what: &str,
        op: impl AsyncFnMut(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> StoreResult<T> {
        self.db.run(what, true, op)
    }

    /// One transaction: committed before it returns, or rolled back.
    fn write<T>(
        &self,
        what: &str,
        mut op: impl AsyncFnMut(&Transaction<'_>) -> Result<T, tokio_postgres::Error>,
    ) -> StoreResult<T> {
        self.db.run(what, false, async |client: &mut Client| {
            let tx = client.transaction().await?;
            let out = op(&tx).await?;
            tx.commit().await?;
            Ok(out)
        })
    }
}

fn opt_u32(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

pub(crate) async fn insert_audit(
    tx: &Transaction<'_>,
    a: &AuditEvent,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO audit (at, actor_uid, actor_pid, username, event, service, tty, rhost,
                            detail, step_offset, host)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &a.at,
            &opt_u32(a.actor_uid),
            &opt_u32(a.actor_pid),
            &a.user,
            &a.event,
            &a.service,
            &a.tty,
            &a.rhost,
            &a.detail,
            &a.step_offset,
            &a.host,
        ],
    )
    .await
    .map(drop)
}

async fn insert_backup_codes(
    tx: &Transaction<'_>,
    user: &str,
    codes: &[StoredBackupCode],
) -> Result<(), tokio_postgres::Error> {
    tx.execute("DELETE FROM backup_codes WHERE name = $1", &[&user])
        .await?;
    for code in codes {
        tx.execute(
            "INSERT INTO backup_codes (name, tag, hash) VALUES ($1, $2, $3)",
            &[&user, &code.tag, &code.hash],
        )
        .await?;
    }
    Ok(())
}

async fn clear_throttle(
    tx: &Transaction<'_>,
    user: &str,
    sources: &[Source],
) -> Result<(), tokio_postgres::Error> {
    // Ceilings stay: a success does not refill them.
    let keys: Vec<&str> = sources
        .iter()
        .filter(|s| s.clears_on_success())
        .map(|s| s.key.as_str())
        .collect();
    tx.execute(
        "DELETE FROM throttle WHERE name = $1 AND source = ANY($2)",
        &[&user, &keys],
    )
    .await
    .map(drop)
}

async fn count_backup_codes(
    c: &impl tokio_postgres::GenericClient,
    user: &str,
) -> Result<u32, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT count(*) FROM backup_codes WHERE name = $1 AND used_at IS NULL",
            &[&user],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u32)
}

fn throttle_row(row: &tokio_postgres::Row) -> Throttle {
    Throttle {
        failures: row.get::<_, i64>(0).clamp(0, u32::MAX as i64) as u32,
        lockouts: row.get::<_, i64>(1).clamp(0, u32::MAX as i64) as u32,
        locked_until: row.get(2),
    }
}

/// The strictest of several counters: the latest lockout end, the most failures.
fn strictest(all: impl IntoIterator<Item = Throttle>) -> Throttle {
    all.into_iter().fold(Throttle::default(), |a, b| Throttle {
        failures: a.failures.max(b.failures),
        lockouts: a.lockouts.max(b.lockouts),
        locked_until: a.locked_until.max(b.locked_until),
    })
}

impl Store for PostgresStore {
    fn shared(&self) -> bool {
        true
    }

    fn user(&self, user: &str) -> StoreResult<Option<UserRecord>> {
        self.read("user", async |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT secret, enrolled_at, last_step, last_used_at, last_method,
                            last_service, last_rhost
                     FROM users WHERE name = $1",
                    &[&user],
                )
                .await?;
            Ok(row.map(|row| UserRecord {
                secret_sealed: row.get(0),
                enrolled_at: row.get(1),
                last_step: row.get::<_, Option<i64>>(2).map(|s| s as u64),
                last_used_at: row.get(3),
                last_method: row.get(4),
                last_service: row.get(5),
                last_rhost: row.get(6),
            }))
        })
    }

    fn throttle(&self, user: &str, sources: &[Source]) -> StoreResult<Throttle> {
        let keys: Vec<&str> = sources.iter().map(|s| s.key.as_str()).collect();
        self.read("throttle", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT failures, lockouts, locked_until FROM throttle
                     WHERE name = $1 AND source = ANY($2)",
                    &[&user, &keys],
                )
                .await?;
            Ok(strictest(rows.iter().map(throttle_row)))
        })
    }

    fn throttle_summary(&self, user: &str) -> StoreResult<Throttle> {
        self.read("throttle", async |c: &mut Client| {
            let row = c
                .query_one(
                    "SELECT coalesce(sum(CASE WHEN source LIKE $2 THEN 0 ELSE failures END),
                                     0)::BIGINT,
                            coalesce(max(lockouts), 0), coalesce(max(locked_until), 0)
                     FROM throttle WHERE name = $1",
                    &[&user, &CEILINGS_LIKE],
                )
                .await?;
            Ok(throttle_row(&row))
        })
    }

    fn clear_lockouts(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("throttle", async |tx: &Transaction<'_>| {
            let cleared = tx
                .execute("DELETE FROM throttle WHERE name = $1", &[&user])
                .await?;
            insert_audit(tx, audit).await?;
            Ok(cleared > 0)
        })
    }

    fn first_seen(&self, user: &str, now: i64) -> StoreResult<i64> {
        self.write("first seen", async |tx: &Transaction<'_>| {
            tx.execute(
                "INSERT INTO first_seen (name, at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&user, &now],
            )
            .await?;
            let row = tx
                .query_one("SELECT at FROM first_seen WHERE name = $1", &[&user])
                .await?;
            Ok(row.get(0))
        })
    }

    fn set_bypass(
        &self,
        user: &str,
        hash: &str,
        expires_at: i64,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write("bypass code", async |tx: &Transaction<'_>| {
            tx.execute(
                "INSERT INTO bypass_codes (name, hash, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET hash = $2, expires_at = $3",
                &[&user, &hash, &expires_at],
            )
            .await?;
            insert_audit(tx, audit).await
        })
    }

    fn bypass(&self, user: &str, now: i64) -> StoreResult<Option<String>> {
        self.read("bypass code", async |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT hash FROM bypass_codes WHERE name = $1 AND expires_at > $2",
                    &[&user, &now],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn consume_bypass(
        &self,
        user: &str,
        hash: &str,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("bypass code", async |tx: &Transaction<'_>| {
            let used = tx
                .execute(
                    "DELETE FROM bypass_codes WHERE name = $1 AND hash = $2 AND expires_at > $3",
                    &[&user, &hash, &audit.at],
                )
                .await?;
            if used == 1 {
                clear_throttle(tx, user, sources).await?;
                insert_audit(tx, audit).await?;
            }
            Ok(used == 1)
        })
    }

    fn known_users(&self) -> StoreResult<Vec<String>> {
        self.read("users", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT name FROM users UNION SELECT name FROM first_seen
                     UNION SELECT name FROM throttle UNION SELECT name FROM pending_enrollments
                     UNION SELECT name FROM bypass_codes ORDER BY 1",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn append_audit(&self, audit: &AuditEvent) -> StoreResult<()> {
        self.write("audit", async |tx: &Transaction<'_>| {
            insert_audit(tx, audit).await
        })
    }

    fn audit_log(
        &self,
        user: Option<&str>,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        let limit = i64::from(limit);
        self.read("audit", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT at, actor_uid, actor_pid, username, event, service, tty, rhost,
                            detail, host
                     FROM audit WHERE ($1::TEXT IS NULL OR username = $1) AND at >= $2
                     ORDER BY id DESC LIMIT $3",
                    &[&user, &since, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| AuditEntry {
                    at: row.get(0),
                    actor_uid: row.get::<_, Option<i64>>(1).unwrap_or(-1),
                    actor_pid: row.get::<_, Option<i64>>(2).unwrap_or(-1),
                    user: row.get(3),
                    event: row.get(4),
                    service: row.get(5),
                    tty: row.get(6),
                    rhost: row.get(7),
                    detail: row.get(8),
                    host: row.get(9),
                })
                .collect())
        })
    }

    fn backup_codes_left(&self, user: &str) -> StoreResult<u32> {
        self.read("backup codes", async |c: &mut Client| {
            count_backup_codes(&*c, user).await
        })
    }

    fn pending(&self, user: &str, now: i64) -> StoreResult<Option<Pending>> {
        self.read("pending enrollment", async |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT secret, expires_at FROM pending_enrollments
                     WHERE name = $1 AND expires_at > $2",
                    &[&user, &now],
                )
                .await?;
            Ok(row.map(|r| Pending {
                secret_sealed: r.get(0),
                expires_at: r.get(1),
            }))
        })
    }

    fn accept_totp_step(
        &self,
        user: &str,
        step: u64,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let step = step as i64;
        self.write("replay watermark", async |tx: &Transaction<'_>| {
            // The whole decision: PostgreSQL locks the row, and a concurrent update of
            // it (another host, same code) re-evaluates the condition after it commits.
            let moved = tx
                .execute(
                    "UPDATE users SET last_step = $2, last_used_at = $3, last_method = 'totp',
                                      last_service = $4, last_rhost = $5
                     WHERE name = $1 AND (last_step IS NULL OR last_step < $2)",
                    &[&user, &step, &audit.at, &audit.service, &audit.rhost],
                )
                .await?;
            if moved == 1 {
                clear_throttle(tx, user, sources).await?;
                insert_audit(tx, audit).await?;
            }
            Ok(moved == 1)
        })
    }

    // Every commit is durable before it is answered (PostgreSQL's default
    // synchronous_commit): no acceptance is lost, no fence is needed.
    fn begin_run(&self, _boot_id: &str) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    fn replay_fence(&self) -> Option<u64> {
        None
    }

    fn end_run(&self) -> StoreResult<()> {
        Ok(())
    }

    fn recent_step_offsets(&self, user: &str, limit: u32) -> StoreResult<Vec<i32>> {
        let limit = i64::from(limit);
        self.read("audit", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT step_offset FROM audit
                     WHERE username = $1 AND step_offset IS NOT NULL
                     ORDER BY id DESC LIMIT $2",
                    &[&user, &limit],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn backup_code_candidates(&self, user: &str, tag: &[u8]) -> StoreResult<Vec<(i64, String)>> {
        self.read("backup codes", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT id, hash FROM backup_codes
                     WHERE name = $1 AND tag = $2 AND used_at IS NULL ORDER BY id",
                    &[&user, &tag],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<Option<u32>> {
        self.write("backup code", async |tx: &Transaction<'_>| {
            let used = tx
                .execute(
                    "UPDATE backup_codes SET used_at = $3
                     WHERE id = $1 AND name = $2 AND used_at IS NULL",
                    &[&id, &user, &audit.at],
                )
                .await?;
            if used != 1 {
                return Ok(None);
            }
            tx.execute(
                "UPDATE users SET last_used_at = $2, last_method = 'backup_code',
                                  last_service = $3, last_rhost = $4
                 WHERE name = $1",
                &[&user, &audit.at, &audit.service, &audit.rhost],
            )
            .await?;
            clear_throttle(tx, user, sources).await?;
            insert_audit(tx, audit).await?;
            Ok(Some(count_backup_codes(tx, user).await?))
        })
    }

    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("backup codes", async |tx: &Transaction<'_>| {
            // Locks the user against a concurrent disable or reset on another host.
            let enrolled = tx
                .query_opt("SELECT 1 FROM users WHERE name = $1 FOR UPDATE", &[&user])
                .await?
                .is_some();
            if !enrolled {
                return Ok(false);
            }
            insert_backup_codes(tx, user, codes).await?;
            insert_audit(tx, audit).await?;
            Ok(true)
        })
    }

    fn remove_user(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("user", async |tx: &Transaction<'_>| {
            let removed = tx
                .execute("DELETE FROM users WHERE name = $1", &[&user])
                .await?;
            for table in [
                "backup_codes",
                "pending_enrollments",
                "throttle",
                "bypass_codes",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&user])
                    .await?;
            }
            if removed == 1 {
                insert_audit(tx, audit).await?;
            }
            Ok(removed == 1)
        })
    }

    fn record_failure(
        &self,
        user: &str,
        sources: &[Source],
        policy: &LockoutPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<Throttle> {
        // Rows locked in one order everywhere, so that hosts never deadlock on them.
        let mut sorted: Vec<&Source> = sources.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        self.write("throttle", async |tx: &Transaction<'_>| {
            let mut after_all = Vec::with_capacity(sorted.len());
            let mut new_lockout = None;
            for source in &sorted {
                tx.execute(
                    "INSERT INTO throttle (name, source) VALUES ($1, $2)
                     ON CONFLICT (name, source) DO NOTHING",
                    &[&user, &source.key],
                )
                .await?;
                // Read-modify-write of a counter that every host updates: the row lock
                // makes concurrent failures count one after the other.
                let row = tx
                    .query_one(
                        "SELECT failures, lockouts, locked_until FROM throttle
                         WHERE name = $1 AND source = $2 FOR UPDATE",
                        &[&user, &source.key],
                    )
                    .await?;
                let before = throttle_row(&row);
                let after = policy.after_failure(before, source, audit.at);
                tx.execute(
                    "UPDATE throttle SET failures = $3, lockouts = $4, locked_until = $5,
                                         updated_at = $6
                     WHERE name = $1 AND source = $2",
                    &[
                        &user,
                        &source.key,
                        &i64::from(after.failures),
                        &i64::from(after.lockouts),
                        &after.locked_until,
                        &audit.at,
                    ],
                )
                .await?;
                if after.lockouts > before.lockouts {
                    new_lockout = Some((source.key.clone(), after.locked_until - audit.at));
                }
                after_all.push(after);
            }
            insert_audit(tx, audit).await?;
            if let Some((source, seconds)) = &new_lockout {
                insert_audit(
                    tx,
                    &AuditEvent {
                        event: "lockout",
                        detail: format!("{source} locked for {seconds} s"),
                        ..audit.clone()
                    },
                )
                .await?;
            }
            Ok(strictest(after_all))
        })
    }

    fn purge_throttle(&self, now: i64, idle_before: i64) -> StoreResult<u64> {
        self.write("throttle", async |tx: &Transaction<'_>| {
            tx.execute(
                "DELETE FROM throttle WHERE updated_at < $2 AND locked_until <= $1",
                &[&now, &idle_before],
            )
            .await
        })
    }

    fn purge_audit(&self, before: i64, max_rows: u64) -> StoreResult<u64> {
        // Ids are unique and only grow: none at or below this one is among the newest
        // `max_rows`.
        let newest: i64 = self.read("audit", async |c: &mut Client| {
            let row = c
                .query_one("SELECT coalesce(max(id), 0) FROM audit", &[])
                .await?;
            Ok(row.get(0))
        })?;
        let beyond_cap = newest.saturating_sub(i64::try_from(max_rows).unwrap_or(i64::MAX));
        let mut deleted = 0;
        for (sql, bound) in [
            (
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 LIMIT $2)",
                before,
            ),
            (
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id <= $1 LIMIT $2)",
                beyond_cap,
            ),
        ] {
            loop {
                let n = self.write("audit", async |tx: &Transaction<'_>| {
                    tx.execute(sql, &[&bound, &super::PURGE_BATCH]).await
                })?;
                deleted += n;
                if (n as i64) < super::PURGE_BATCH {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    fn begin_enrollment(
        &self,
        user: &str,
        pending: &Pending,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write("pending enrollment", async |tx: &Transaction<'_>| {
            tx.execute(
                "INSERT INTO pending_enrollments (name, secret, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET secret = $2, expires_at = $3",
                &[&user, &pending.secret_sealed, &pending.expires_at],
            )
            .await?;
            insert_audit(tx, audit).await
        })
    }

    fn confirm_enrollment(
        &self,
        user: &str,
        secret_sealed: &[u8],
        step: u64,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let step = step as i64;
        self.write("enrollment", async |tx: &Transaction<'_>| {
            let taken = tx
                .execute(
                    "DELETE FROM pending_enrollments
                     WHERE name = $1 AND secret = $2 AND expires_at > $3",
                    &[&user, &secret_sealed, &audit.at],
                )
                .await?;
            if taken != 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO users (name, secret, enrolled_at, last_step) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET secret = $2, enrolled_at = $3, last_step = $4",
                &[&user, &secret_sealed, &audit.at, &step],
            )
            .await?;
            insert_backup_codes(tx, user, codes).await?;
            tx.execute("DELETE FROM bypass_codes WHERE name = $1", &[&user])
                .await?;
            insert_audit(tx, audit).await?;
            Ok(true)
        })
    }
}

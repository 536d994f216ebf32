//! The fleet store: many hosts' daemons share one PostgreSQL database (`storage =
//! "postgres://…"`), so that a user enrolls once and logs in anywhere.
//!
//! The logic is the SQLite store's, written once (`storage::sql`), made safe across
//! hosts: every decision is one transaction on the server, whose conditional update
//! PostgreSQL applies atomically, so two hosts verifying the same code race on the row
//! lock and the second finds the condition false. Where SQLite relies on its single
//! writer (the read-modify-write of the failure counters), rows are locked with
//! `SELECT … FOR UPDATE`; deadlocks and serialization failures are retried. A success
//! is returned only after `COMMIT` returned, so nothing acknowledged is lost when the
//! server or the network goes away; an operation that cannot finish within
//! [`conn::OP_TIMEOUT`] fails closed.
//!
//! Secrets stay sealed with the host key file: every host of a fleet needs the same
//! one. The store records a check value derived from it (never the key) and refuses to
//! serve a host whose key differs.

mod conn;
pub mod migrate;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio_postgres::Client;

pub use super::pg_settings::{is_postgres_url, Settings, SslMode};
use conn::Commit;
pub use conn::{check_url, OP_TIMEOUT};

use super::schema::{self, Migration};
use super::sql::{Backend, DbResult, Dialect, Durability, Tx};
use super::{StoreError, StoreResult};

/// Schema migrations, applied in order; `schema_version` holds how many were applied.
/// The same tables as the SQLite store's (see `schema`).
const MIGRATIONS: &[Migration] = &[
    // 1: everything of SQLite's schema 5, plus the fleet's own tables.
    Migration::CreateTables,
    // 2: bounded storage (SQLite's 6).
    Migration::Change(&schema::THROTTLE_UPDATED_AT),
    // 3: several devices per user (SQLite's 8).
    Migration::Changes(schema::DEVICES),
    // 4: hardware tokens' algorithms, digits, steps and counters (SQLite's 9).
    Migration::Changes(schema::OATH_PARAMS),
    // 5: hardware OATH tokens (SQLite's 10).
    Migration::Changes(schema::TOKENS),
];

/// The schema as the first `version` migrations left it, with its `schema_version`: a
/// database of an older twofoldd, for tests of the later migrations.
#[cfg(feature = "test-support")]
pub fn schema_at(version: usize) -> String {
    let mut sql: String = MIGRATIONS[..version]
        .iter()
        .map(|m| m.sql(Dialect::Postgres))
        .collect::<Vec<_>>()
        .join("\n");
    sql += &format!(
        "\nCREATE TABLE schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version (version) VALUES ({version});"
    );
    sql
}

/// Key of the advisory lock that serializes schema migrations of daemons starting
/// together.
const MIGRATION_LOCK: i64 = 0x0074_776f_666f_6c64;

/// PostgreSQL-backed [`Store`](super::Store).
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
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let sql = migration.sql(Dialect::Postgres);
        tx.batch_execute(&sql).await.map_err(|err| {
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
    /// Its connections run on `runtime` (the daemon's: a multi-thread runtime), and its
    /// methods must be called outside that runtime's async tasks (`block_in_place`,
    /// `spawn_blocking`, a thread of their own). Checks the settings but does not
    /// connect: the first operation does, and every later one reconnects when the
    /// connection was lost.
    pub fn open(
        settings: &Settings,
        key_check: Option<Vec<u8>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<PostgresStore, String> {
        let prepare: conn::Prepare = Box::new(move |client: &mut Client| {
            let key_check = key_check.clone();
            let fut: Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> =
                Box::pin(async move { prepare(client, key_check.as_deref()).await });
            fut
        });
        Ok(PostgresStore {
            db: conn::Db::new(settings, prepare, runtime)?,
        })
    }

    /// Another time limit than [`OP_TIMEOUT`] for each operation: for tests on a loaded
    /// machine, where what is checked is the outcome, not the time.
    pub fn with_time_limit(mut self, limit: Duration) -> PostgresStore {
        self.db.set_time_limit(limit);
        self
    }

    /// Connects (migrating the schema when needed): for the start-up message.
    pub fn check(&self) -> StoreResult<()> {
        self.db.statements("connect", Commit::EachOnItsOwn, |tx| {
            tx.exec("SELECT 1", &[]).map(drop)
        })
    }

    /// `host:port/dbname`, for messages.
    pub fn place(&self) -> &str {
        &self.db.place
    }
}

/// Every commit is durable before it is answered (PostgreSQL's default
/// `synchronous_commit`): no acceptance is lost, no replay fence is needed.
impl Backend for PostgresStore {
    fn spans_hosts(&self) -> bool {
        true
    }

    fn read<T>(&self, what: &str, op: impl FnMut(&dyn Tx) -> DbResult<T>) -> StoreResult<T> {
        self.db.statements(what, Commit::EachOnItsOwn, op)
    }

    fn write<T>(
        &self,
        what: &str,
        _durability: Durability,
        op: impl FnMut(&dyn Tx) -> DbResult<T>,
    ) -> StoreResult<T> {
        self.db.statements(what, Commit::Together, op)
    }

    fn start_run(&self, _boot_id: &str) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    fn fence(&self) -> Option<u64> {
        None
    }

    fn stop_run(&self) -> StoreResult<()> {
        Ok(())
    }
}

//! Connections to PostgreSQL: settings (URL without a password, password file, TLS),
//! a small pool, and the one way every store operation runs: under a deadline, retried
//! when PostgreSQL asks for it.
//!
//! The store's methods are synchronous: the daemon calls them off its async workers
//! (`block_in_place`, `spawn_blocking`). Each statement blocks that thread on the
//! daemon's own runtime (`Handle::block_on`), whose workers drive the connections; the
//! whole operation is bounded by [`OP_TIMEOUT`] from start to commit. A request whose
//! database does not answer in time fails closed, and its connection is dropped: a
//! later request connects afresh, so the daemon reconnects by itself.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, NoTls};
use zeroize::Zeroizing;

use crate::files;
use crate::storage::pg_settings::{is_postgres_url, Settings, SslMode};
use crate::storage::sql::{Cell, DbError, DbResult, Dialect, Row, Tx, Value};
use crate::storage::{StoreError, StoreResult};

/// Longest time one store operation may take, connection included. Well below the PAM
/// module's default `timeout=5`, so that a login fails closed in time when the
/// database is unreachable or hangs.
pub const OP_TIMEOUT: Duration = Duration::from_millis(2500);
/// Longest time a new connection (TCP, TLS, authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse.
const POOL_IDLE_MAX: usize = 8;
/// Attempts of one operation that PostgreSQL aborted as a serialization failure or
/// deadlock (nothing of it was committed, so it is safe to run again).
const MAX_ATTEMPTS: u32 = 6;

/// Parses and checks a PostgreSQL URL: no password in it (it would show in `ps`, in
/// shell histories and in the world-readable config), no TLS parameters (they have keys
/// of their own).
pub fn check_url(url: &str, key: &str) -> Result<tokio_postgres::Config, String> {
    if !is_postgres_url(url) {
        return Err(format!("{key}: {url:?} is not a postgres:// URL"));
    }
    let config = tokio_postgres::Config::from_str(url).map_err(|e| {
        // The error may quote the URL; it has no password (checked below or not parsed).
        format!("{key}: not a valid PostgreSQL URL: {e}")
    })?;
    if config.get_password().is_some() {
        return Err(format!(
            "{key}: the URL must not contain a password (it would be visible to other users \
             and in logs); put the password in a file of its own, mode 0600, named by \
             `storage_password_file` (for `twofoldd migrate`: --password-file)"
        ));
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|p| p.starts_with("sslmode=") || p.starts_with("sslrootcert="))
    {
        return Err(format!(
            "{key}: set TLS with `storage_sslmode` and `storage_sslrootcert`, not in the URL"
        ));
    }
    if config.get_user().is_none() {
        return Err(format!(
            "{key}: name the database user in the URL (postgres://USER@HOST/DBNAME)"
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(format!(
            "{key}: name the database server in the URL (postgres://USER@HOST/DBNAME)"
        ));
    }
    Ok(config)
}

/// Reads the password file: private to the daemon's user, first line, without the
/// line end.
fn read_password(path: &Path) -> Result<Zeroizing<String>, String> {
    let mut file =
        files::open_private_file(path).map_err(|e| format!("storage_password_file: {}", e.0))?;
    let mut text = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| format!("storage_password_file: {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "storage_password_file: {} is empty",
            path.display()
        ));
    }
    Ok(Zeroizing::new(line.to_string()))
}

enum Tls {
    None,
    Native(postgres_native_tls::MakeTlsConnector),
}

fn tls_connector(settings: &Settings) -> Result<Tls, String> {
    if settings.sslmode == SslMode::Disable {
        return Ok(Tls::None);
    }
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    match settings.sslmode {
        SslMode::Disable => unreachable!(),
        SslMode::Require => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyFull => {}
    }
    if let Some(path) = &settings.sslrootcert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("storage_sslrootcert: {}: {e}", path.display()))?;
        let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            format!(
                "storage_sslrootcert: {}: not PEM certificates: {e}",
                path.display()
            )
        })?;
        if certs.is_empty() {
            return Err(format!(
                "storage_sslrootcert: {}: no certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            builder.add_root_certificate(cert);
        }
    }
    let connector = builder
        .build()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    Ok(Tls::Native(postgres_native_tls::MakeTlsConnector::new(
        connector,
    )))
}

/// The text of a PostgreSQL error: the server's own message and code when it sent one.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What a failed statement means for the operation.
fn classify(e: &tokio_postgres::Error) -> DbError {
    let retry = matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    );
    if retry {
        DbError::Retry(describe(e))
    } else if e.is_closed() {
        DbError::Broken(describe(e))
    } else {
        DbError::Statement(describe(e))
    }
}

/// What a new connection must go through once per process: schema migrations and the
/// fleet-key check (see `PostgresStore`).
pub type Prepare = Box<
    dyn for<'c> Fn(
            &'c mut Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'c>,
        > + Send
        + Sync,
>;

/// A pool of connections, driven by the daemon's runtime.
pub struct Db {
    runtime: Handle,
    config: tokio_postgres::Config,
    password_file: Option<PathBuf>,
    tls: Tls,
    idle: Mutex<Vec<Client>>,
    prepared: AtomicBool,
    prepare: Prepare,
    /// Longest time one operation may take ([`OP_TIMEOUT`]).
    limit: Duration,
    /// `host:port/dbname`, for messages.
    pub place: String,
}

/// Bounds the client and the server put on each operation.
fn set_time_limit(config: &mut tokio_postgres::Config, limit: Duration) {
    config
        .tcp_user_timeout(limit)
        // Server-side bounds too: no statement or lock wait outlives the client's
        // deadline, no transaction stays open if we vanish.
        .options(format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} \
             -c idle_in_transaction_session_timeout=10000 -c TimeZone=UTC",
            ms = limit.as_millis()
        ));
}

/// How the statements of one [`Db::statements`] call commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Outside any transaction, each on its own (a read): run again on another
    /// connection when this one breaks.
    EachOnItsOwn,
    /// In one transaction (a write), committed before the call returns or rolled back.
    Together,
}

impl Db {
    /// Checks the settings (URL, password file, certificates); does not connect.
    /// Connections are driven by `runtime`, which must be a multi-thread runtime (its
    /// workers run them while a store call blocks its own thread).
    pub fn new(settings: &Settings, prepare: Prepare, runtime: Handle) -> Result<Db, String> {
        if runtime.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err("the PostgreSQL store needs a multi-thread tokio runtime".into());
        }
        let mut config = check_url(&settings.url, "storage")?;
        if let Some(path) = &settings.password_file {
            // Read now so that a bad file stops the daemon at start, with its name.
            read_password(path)?;
        }
        let place = format!(
            "{}:{}/{}",
            match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "?".into(),
            },
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("")
        );
        let tls = tls_connector(settings)?;
        config
            .ssl_mode(match settings.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                _ => tokio_postgres::config::SslMode::Require,
            })
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name(format!("twofoldd@{}", settings.application_name));
        set_time_limit(&mut config, OP_TIMEOUT);
        Ok(Db {
            runtime,
            config,
            password_file: settings.password_file.clone(),
            tls,
            idle: Mutex::new(Vec::new()),
            prepared: AtomicBool::new(false),
            prepare,
            limit: OP_TIMEOUT,
            place,
        })
    }

    /// Another time limit for every operation (tests on a loaded machine); connections
    /// opened before keep the server-side bounds they were opened with.
    pub fn set_time_limit(&mut self, limit: Duration) {
        set_time_limit(&mut self.config, limit);
        self.limit = limit;
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let mut config = self.config.clone();
        if let Some(path) = &self.password_file {
            let password = read_password(path).map_err(StoreError::Failed)?;
            config.password(password.as_bytes());
        }
        let fail = |e: tokio_postgres::Error| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {}",
                self.place,
                describe(&e)
            ))
        };
        let client = match &self.tls {
            Tls::None => {
                let (client, conn) = config.connect(NoTls).await.map_err(fail)?;
                self.runtime.spawn(async move {
                    let _ = conn.await;
                });
                client
            }
            Tls::Native(tls) => {
                let (client, conn) = config.connect(tls.clone()).await.map_err(fail)?;
                self.runtime.spawn(async move {
                    let _ = conn.await;
                });
                client
            }
        };
        Ok(client)
    }

    /// A pooled connection, or a new one (prepared once per process).
    async fn client(&self) -> Result<Client, StoreError> {
        loop {
            let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match pooled {
                Some(c) if !c.is_closed() => return Ok(c),
                Some(_) => continue,
                None => break,
            }
        }
        let mut client = self.connect().await?;
        if !self.prepared.load(Ordering::Acquire) {
            (self.prepare)(&mut client).await?;
            self.prepared.store(true, Ordering::Release);
        }
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < POOL_IDLE_MAX {
                idle.push(client);
            }
        }
    }

    /// Blocks this thread on `work` until `deadline`.
    fn block<T>(
        &self,
        deadline: Instant,
        work: impl std::future::Future<Output = T>,
    ) -> DbResult<T> {
        let left = deadline.saturating_duration_since(Instant::now());
        // The timer is made inside the runtime's context, which `block_on` enters.
        self.runtime
            .block_on(async { tokio::time::timeout(left, work).await })
            .map_err(|_| DbError::Late)
    }

    /// Runs `op` on a connection within the time limit. `op` must leave the connection
    /// outside any transaction when it returns. Serialization failures and deadlocks
    /// are retried; with `idempotent`, so is a connection found broken (a pooled one
    /// whose server restarted).
    pub fn run<T>(
        &self,
        what: &str,
        idempotent: bool,
        op: impl FnMut(&mut Client, Instant) -> DbResult<T>,
    ) -> StoreResult<T> {
        self.run_within(what, idempotent, self.limit, op)
    }

    /// [`Db::run`] with another time limit (`twofoldd migrate` copies a whole database).
    pub fn run_within<T>(
        &self,
        what: &str,
        idempotent: bool,
        limit: Duration,
        mut op: impl FnMut(&mut Client, Instant) -> DbResult<T>,
    ) -> StoreResult<T> {
        let deadline = Instant::now() + limit;
        let late = || {
            StoreError::Unavailable(format!(
                "{what}: PostgreSQL at {} did not answer within {} ms",
                self.place,
                limit.as_millis()
            ))
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = self.block(deadline, self.client()).map_err(|_| late())??;
            let failure = match op(&mut client, deadline) {
                Ok(value) => {
                    self.give_back(client);
                    return Ok(value);
                }
                // The connection's state is unknown: dropped (PostgreSQL rolls back what
                // was not committed).
                Err(DbError::Late) => return Err(late()),
                Err(e) => e,
            };
            let broken = matches!(failure, DbError::Broken(_)) || client.is_closed();
            if !broken {
                self.give_back(client);
            }
            let again = (matches!(failure, DbError::Retry(_)) || (broken && idempotent))
                && attempt < MAX_ATTEMPTS
                && Instant::now() < deadline;
            if !again {
                return Err(crate::storage::sql::store_error(what, failure));
            }
            if !broken {
                // Let the competing transaction finish first.
                std::thread::sleep(Duration::from_millis(
                    (2u64 << attempt) + u64::from(rand::random::<u8>() % 8),
                ));
            }
        }
    }

    /// [`Db::run_within`] for an async `op` (`twofoldd migrate`).
    pub fn run_async_within<T>(
        &self,
        what: &str,
        idempotent: bool,
        limit: Duration,
        mut op: impl AsyncFnMut(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> StoreResult<T> {
        self.run_within(what, idempotent, limit, |client, deadline| {
            self.block(deadline, op(client))?.map_err(|e| classify(&e))
        })
    }

    /// The statements of the shared logic on `conn`, due by `deadline`.
    fn tx<'a, C>(&'a self, conn: &'a C, deadline: Instant) -> PgTx<'a, C> {
        PgTx {
            db: self,
            conn,
            deadline,
        }
    }

    /// Runs `op`'s statements as `commit` says.
    pub fn statements<T>(
        &self,
        what: &str,
        commit: Commit,
        mut op: impl FnMut(&dyn Tx) -> DbResult<T>,
    ) -> StoreResult<T> {
        let alone = commit == Commit::EachOnItsOwn;
        self.run(what, alone, |client, deadline| {
            if alone {
                return op(&self.tx(&*client, deadline));
            }
            let tx = self
                .block(deadline, client.transaction())?
                .map_err(|e| classify(&e))?;
            let out = op(&self.tx(&tx, deadline))?;
            self.block(deadline, tx.commit())?
                .map_err(|e| classify(&e))?;
            Ok(out)
        })
    }
}

/// Statements of the shared logic on a connection or in a transaction.
struct PgTx<'a, C> {
    db: &'a Db,
    conn: &'a C,
    deadline: Instant,
}

impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&self, sql: &str, args: &[Value<'_>]) -> DbResult<u64> {
        let params: Vec<_> = args.iter().map(Value::as_pg).collect();
        self.db
            .block(self.deadline, self.conn.execute(sql, &params))?
            .map_err(|e| classify(&e))
    }

    fn rows(&self, sql: &str, args: &[Value<'_>]) -> DbResult<Vec<Row>> {
        let params: Vec<_> = args.iter().map(Value::as_pg).collect();
        let rows = self
            .db
            .block(self.deadline, self.conn.query(sql, &params))?
            .map_err(|e| classify(&e))?;
        rows.iter().map(row).collect()
    }
}

/// A result row of the shared logic's types.
fn row(pg: &tokio_postgres::Row) -> DbResult<Row> {
    let failed = |e: tokio_postgres::Error| DbError::Statement(describe(&e));
    let cells = pg.columns().iter().enumerate().map(|(i, column)| {
        let ty = column.type_();
        let cell = if *ty == Type::INT8 {
            pg.try_get::<_, Option<i64>>(i)
                .map_err(failed)?
                .map(Cell::Int)
        } else if *ty == Type::INT4 {
            pg.try_get::<_, Option<i32>>(i)
                .map_err(failed)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::INT2 {
            pg.try_get::<_, Option<i16>>(i)
                .map_err(failed)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::BOOL {
            pg.try_get::<_, Option<bool>>(i)
                .map_err(failed)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::BYTEA {
            pg.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(failed)?
                .map(Cell::Bytes)
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
            pg.try_get::<_, Option<String>>(i)
                .map_err(failed)?
                .map(Cell::Text)
        } else {
            return Err(DbError::Statement(format!(
                "column {i}: unexpected type {ty}"
            )));
        };
        Ok(cell.unwrap_or(Cell::Null))
    });
    Ok(Row(cells.collect::<DbResult<Vec<_>>>()?))
}

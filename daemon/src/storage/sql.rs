//! The [`Store`](super::Store) written once, over the little that SQLite and PostgreSQL
//! do differently. A backend supplies a [`Backend`]: how a read or an atomic write runs
//! (SQLite: one connection, group commit and the replay fence of `sqlite::durability`;
//! PostgreSQL: a pool, a deadline and retries, see `postgres::conn`) and a [`Tx`] that
//! runs statements. Statements are written once, in the shared form of [`Dialect::text`].

mod sessions;
mod store;
mod tokens;

/// Statements `twofoldd migrate` shares with the store.
#[cfg(feature = "postgres")]
pub(crate) use {
    sessions::{INSERT_AUTH_PASS, SESSION_TIMEOUTS},
    store::INSERT_AUDIT,
};

use std::borrow::Cow;

use super::{StoreError, StoreResult};

/// What a statement or a transaction may fail with.
#[derive(Debug)]
pub enum DbError {
    /// The database aborted the transaction (serialization failure, deadlock): nothing
    /// of it was committed, it may run again.
    Retry(String),
    /// The connection broke under the statement.
    Broken(String),
    /// The operation's deadline passed.
    Late,
    /// The statement failed otherwise (the database's message).
    Statement(String),
    /// A failure the store reports as it is.
    Store(StoreError),
}

pub type DbResult<T> = Result<T, DbError>;

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> DbError {
        DbError::Store(e)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError::Statement(e.to_string())
    }
}

/// Which SQL a [`Tx`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to a `SELECT` whose rows the transaction goes on to update: PostgreSQL
    /// locks them against the other hosts; SQLite's single writer holds the database.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// A statement in this dialect. Shared statements number their parameters `$1`,
    /// `$2`… (SQLite: `?1`, `?2`…) and name the user column of `audit`, `sessions` and
    /// `auth_passes` `username` (SQLite: `user`, a reserved word in PostgreSQL).
    pub fn text(self, shared: &str) -> Cow<'_, str> {
        if self == Dialect::Postgres {
            return Cow::Borrowed(shared);
        }
        let mut out = String::with_capacity(shared.len());
        let mut rest = shared;
        while let Some(c) = rest.chars().next() {
            if c == '\'' {
                // A literal, copied as it is.
                let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            } else if c == '$' {
                out.push('?');
                rest = &rest[1..];
            } else if c.is_ascii_alphabetic() || c == '_' {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                out.push_str(match &rest[..end] {
                    "username" => "user",
                    word => word,
                });
                rest = &rest[end..];
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Cow::Owned(out)
    }
}

/// `$first, $first+1, …` for `n` parameters: the body of an `IN (…)` list.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement parameter, typed as both databases need it (PostgreSQL checks the type
/// of each against its column).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// `INTEGER` (SQLite), `BIGINT` (PostgreSQL).
    Int(i64),
    OptInt(Option<i64>),
    /// PostgreSQL `INTEGER` (`audit.step_offset`).
    OptInt4(Option<i32>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
    /// `INTEGER` 0/1 (SQLite), `BOOLEAN` (PostgreSQL).
    Bool(bool),
}

/// `From` for each parameter type.
macro_rules! value_from {
    ($($from:ty => $variant:ident),* $(,)?) => {
        $(impl<'a> From<$from> for Value<'a> {
            fn from(v: $from) -> Self {
                Value::$variant(v)
            }
        })*
    };
}

value_from! {
    i64 => Int,
    Option<i64> => OptInt,
    Option<i32> => OptInt4,
    &'a str => Text,
    &'a String => Text,
    Option<&'a str> => OptText,
    &'a [u8] => Bytes,
    &'a Vec<u8> => Bytes,
    bool => Bool,
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Int(v) => v.to_sql(),
            Value::OptInt(v) => v.to_sql(),
            Value::OptInt4(v) => v.to_sql(),
            Value::Text(v) => v.to_sql(),
            Value::OptText(v) => v.to_sql(),
            Value::Bytes(v) => v.to_sql(),
            Value::Bool(v) => v.to_sql(),
        }
    }
}

#[cfg(feature = "postgres")]
impl Value<'_> {
    /// The parameter as `tokio-postgres` takes it.
    pub fn as_pg(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Value::Int(v) => v,
            Value::OptInt(v) => v,
            Value::OptInt4(v) => v,
            Value::Text(v) => v,
            Value::OptText(v) => v,
            Value::Bytes(v) => v,
            Value::Bool(v) => v,
        }
    }
}

/// `&[Value]` from expressions that convert into one.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::storage::sql::Value::from($v)),*]
    };
}
pub(crate) use args;

/// One value of a result row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cell {
    #[default]
    Null,
    /// Integers of any width, and booleans (0/1).
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A result row; each value is taken out once.
#[derive(Debug)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn take(&mut self, i: usize) -> Cell {
        self.0.get_mut(i).map(std::mem::take).unwrap_or(Cell::Null)
    }

    fn mismatch(i: usize, want: &str, got: &Cell) -> DbError {
        DbError::Statement(format!("column {i}: {want} expected, {got:?} found"))
    }

    pub fn opt_int(&mut self, i: usize) -> DbResult<Option<i64>> {
        match self.take(i) {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            other => Err(Self::mismatch(i, "an integer", &other)),
        }
    }

    pub fn int(&mut self, i: usize) -> DbResult<i64> {
        self.opt_int(i)?
            .ok_or_else(|| Self::mismatch(i, "an integer", &Cell::Null))
    }

    /// An integer that must fit 32 bits unsigned (written from a `u32`).
    pub fn u32(&mut self, i: usize) -> DbResult<u32> {
        let v = self.int(i)?;
        u32::try_from(v).map_err(|_| Self::mismatch(i, "a u32", &Cell::Int(v)))
    }

    pub fn opt_i32(&mut self, i: usize) -> DbResult<Option<i32>> {
        self.opt_int(i)?
            .map(|v| i32::try_from(v).map_err(|_| Self::mismatch(i, "an i32", &Cell::Int(v))))
            .transpose()
    }

    pub fn bool(&mut self, i: usize) -> DbResult<bool> {
        Ok(self.int(i)? != 0)
    }

    pub fn opt_text(&mut self, i: usize) -> DbResult<Option<String>> {
        match self.take(i) {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            other => Err(Self::mismatch(i, "text", &other)),
        }
    }

    pub fn text(&mut self, i: usize) -> DbResult<String> {
        match self.take(i) {
            Cell::Text(s) => Ok(s),
            other => Err(Self::mismatch(i, "text", &other)),
        }
    }

    pub fn bytes(&mut self, i: usize) -> DbResult<Vec<u8>> {
        match self.take(i) {
            Cell::Bytes(b) => Ok(b),
            other => Err(Self::mismatch(i, "bytes", &other)),
        }
    }
}

/// Statements within one read or one transaction.
pub trait Tx {
    fn dialect(&self) -> Dialect;
    /// Runs a statement (in the shared form, see [`Dialect::text`]); rows changed.
    fn exec(&self, sql: &str, args: &[Value<'_>]) -> DbResult<u64>;
    /// The rows of a query.
    fn rows(&self, sql: &str, args: &[Value<'_>]) -> DbResult<Vec<Row>>;
    /// The first row of a query, if any.
    fn row(&self, sql: &str, args: &[Value<'_>]) -> DbResult<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }
}

/// When a write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once it is on disk.
    OnDisk,
    /// At once: it reaches the disk with the next durable write. Only for records whose
    /// loss in a crash fails closed (a remembered pass, a purge).
    Later,
}

/// How a backend runs the shared logic: a [`Backend`] is a [`Store`](super::Store).
pub trait Backend: Send + Sync {
    /// Other hosts write to this store too (see [`Store::shared`](super::Store::shared)).
    fn spans_hosts(&self) -> bool;
    /// Runs `op` as a read of one consistent state; `what` names it in errors.
    fn read<T>(&self, what: &str, op: impl FnMut(&dyn Tx) -> DbResult<T>) -> StoreResult<T>;
    /// Runs `op` as one atomic write, committed (and durable as asked) when this
    /// returns, else rolled back. `op` may run more than once (a retried deadlock).
    fn write<T>(
        &self,
        what: &str,
        durability: Durability,
        op: impl FnMut(&dyn Tx) -> DbResult<T>,
    ) -> StoreResult<T>;
    /// The write of a TOTP acceptance of `step` at `at`: `op` says whether the
    /// watermark moved (see [`Store::accept_totp_step`](super::Store::accept_totp_step)).
    fn write_acceptance(
        &self,
        step: u64,
        at: i64,
        op: impl FnMut(&dyn Tx) -> DbResult<bool>,
    ) -> StoreResult<bool> {
        let _ = (step, at);
        self.write("replay watermark", Durability::OnDisk, op)
    }
    /// See [`Store::begin_run`](super::Store::begin_run).
    fn start_run(&self, boot_id: &str) -> StoreResult<Option<u64>>;
    /// See [`Store::replay_fence`](super::Store::replay_fence).
    fn fence(&self) -> Option<u64>;
    /// See [`Store::end_run`](super::Store::end_run).
    fn stop_run(&self) -> StoreResult<()>;
}

/// The store's error for a failed read or write named `what`.
pub fn store_error(what: &str, e: DbError) -> StoreError {
    match e {
        DbError::Store(e) => e,
        DbError::Late => StoreError::Unavailable(format!("{what}: no answer in time")),
        DbError::Retry(m) | DbError::Broken(m) | DbError::Statement(m) => {
            StoreError::Failed(format!("{what}: {m}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_numbers_parameters_and_names_the_user_column_its_way() {
        let shared = "SELECT username, at FROM audit WHERE (CAST($1 AS TEXT) IS NULL \
                      OR username = $1) AND event = 'username $2' AND at >= $12";
        assert_eq!(Dialect::Postgres.text(shared), shared);
        assert_eq!(
            Dialect::Sqlite.text(shared),
            "SELECT user, at FROM audit WHERE (CAST(?1 AS TEXT) IS NULL \
             OR user = ?1) AND event = 'username $2' AND at >= ?12"
        );
        assert_eq!(
            Dialect::Sqlite.text("SELECT usernames, my_username FROM t"),
            "SELECT usernames, my_username FROM t"
        );
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}

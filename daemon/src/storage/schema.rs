//! The schema, defined once: every table with its columns and indexes, the dialect
//! differences as data (types, the row id, booleans, the user column's name, tables of
//! one store only), and the changes made since, each rendered for both stores.
//!
//! PostgreSQL's first migration is rendered from [`TABLES`]; later changes common to
//! both stores are [`Change`]s. SQLite's own first migrations predate this module and
//! stay as they were written (databases count them in `user_version`); a test checks
//! that they build these same tables.

use std::borrow::Cow;

use super::sql::Dialect;

/// A column's type, spelled by each dialect its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// 64 bits: SQLite `INTEGER`, PostgreSQL `BIGINT`.
    Int,
    /// 32 bits: `INTEGER` on both.
    Int4,
    Text,
    /// SQLite `BLOB`, PostgreSQL `BYTEA`.
    Blob,
    /// SQLite `INTEGER` 0/1, PostgreSQL `BOOLEAN`.
    Bool,
    /// The row id, growing with each insert: SQLite's rowid, PostgreSQL `BIGSERIAL`.
    Id,
}

impl Type {
    pub fn sql(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Type::Int, Dialect::Sqlite) => "INTEGER",
            (Type::Int, Dialect::Postgres) => "BIGINT",
            (Type::Int4, _) => "INTEGER",
            (Type::Text, _) => "TEXT",
            (Type::Blob, Dialect::Sqlite) => "BLOB",
            (Type::Blob, Dialect::Postgres) => "BYTEA",
            (Type::Bool, Dialect::Sqlite) => "INTEGER",
            (Type::Bool, Dialect::Postgres) => "BOOLEAN",
            (Type::Id, Dialect::Sqlite) => "INTEGER",
            (Type::Id, Dialect::Postgres) => "BIGSERIAL",
        }
    }
}

/// What a column holds besides its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The table's key.
    Key,
    /// `NOT NULL`, no default.
    Required,
    /// May be NULL.
    Optional,
    /// `NOT NULL` with this default (booleans as `false`/`true`).
    Default(&'static str),
}

impl Fill {
    fn sql(self, ty: Type, dialect: Dialect) -> String {
        match self {
            Fill::Key => " PRIMARY KEY".into(),
            Fill::Required => " NOT NULL".into(),
            Fill::Optional => String::new(),
            Fill::Default(value) => format!(" NOT NULL DEFAULT {}", literal(value, ty, dialect)),
        }
    }
}

/// A default as the dialect writes it: SQLite has no booleans.
fn literal(value: &'static str, ty: Type, dialect: Dialect) -> &'static str {
    match (ty, dialect, value) {
        (Type::Bool, Dialect::Sqlite, "false") => "0",
        (Type::Bool, Dialect::Sqlite, "true") => "1",
        _ => value,
    }
}

#[derive(Debug)]
pub struct Column {
    /// In the shared form of [`Dialect::text`] (`username`).
    pub name: &'static str,
    pub ty: Type,
    pub fill: Fill,
}

const fn col(name: &'static str, ty: Type, fill: Fill) -> Column {
    Column { name, ty, fill }
}

#[derive(Debug)]
pub struct Index {
    pub name: &'static str,
    /// `a, b`.
    pub columns: &'static str,
    /// A partial index's condition, "" for all rows.
    pub only_where: &'static str,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// A key of several columns ("" when one column is [`Fill::Key`]).
    pub key: &'static str,
    pub indexes: &'static [Index],
    /// The one store that has it (None: both).
    pub only_in: Option<Dialect>,
}

impl Table {
    fn create(&self, dialect: Dialect) -> String {
        let mut lines: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "    {} {}{}",
                    dialect.text(c.name),
                    c.ty.sql(dialect),
                    c.fill.sql(c.ty, dialect)
                )
            })
            .collect();
        if !self.key.is_empty() {
            lines.push(format!("    PRIMARY KEY ({})", self.key));
        }
        let mut sql = format!("CREATE TABLE {} (\n{}\n);\n", self.name, lines.join(",\n"));
        for index in self.indexes {
            sql += &index.create(self.name, dialect);
            sql.push('\n');
        }
        sql
    }
}

impl Index {
    fn create(&self, table: &str, dialect: Dialect) -> String {
        let only_where = match self.only_where {
            "" => String::new(),
            cond => format!(" WHERE {}", dialect.text(cond)),
        };
        format!(
            "CREATE INDEX {} ON {table} ({}){only_where};",
            self.name,
            dialect.text(self.columns)
        )
    }
}

const fn table(name: &'static str, columns: &'static [Column]) -> Table {
    Table {
        name,
        columns,
        key: "",
        indexes: &[],
        only_in: None,
    }
}

const fn index(name: &'static str, columns: &'static str, only_where: &'static str) -> Index {
    Index {
        name,
        columns,
        only_where,
    }
}

use Fill::{Default, Key, Optional, Required};
use Type::{Blob, Bool, Id, Int, Int4, Text};

/// Every table as first created in a fleet's database (PostgreSQL migration 1, SQLite
/// schema 5), in creation order; each store's later migrations add [`Change`]s.
pub const TABLES: &[Table] = &[
    table(
        "users",
        &[
            col("name", Text, Key),
            col("secret", Blob, Required),
            col("enrolled_at", Int, Required),
            col("last_step", Int, Optional),
            col("last_used_at", Int, Optional),
            col("last_method", Text, Default("''")),
            col("last_service", Text, Default("''")),
            col("last_rhost", Text, Default("''")),
        ],
    ),
    table(
        "pending_enrollments",
        &[
            col("name", Text, Key),
            col("secret", Blob, Required),
            col("expires_at", Int, Required),
        ],
    ),
    Table {
        indexes: &[index("backup_codes_by_tag", "name, tag", "")],
        ..table(
            "backup_codes",
            &[
                col("id", Id, Key),
                col("name", Text, Required),
                col("tag", Blob, Required),
                col("hash", Text, Required),
                col("used_at", Int, Optional),
            ],
        )
    },
    Table {
        key: "name, source",
        ..table(
            "throttle",
            &[
                col("name", Text, Required),
                col("source", Text, Required),
                col("failures", Int, Default("0")),
                col("lockouts", Int, Default("0")),
                col("locked_until", Int, Default("0")),
            ],
        )
    },
    table(
        "first_seen",
        &[col("name", Text, Key), col("at", Int, Required)],
    ),
    table(
        "bypass_codes",
        &[
            col("name", Text, Key),
            col("hash", Text, Required),
            col("expires_at", Int, Required),
        ],
    ),
    Table {
        indexes: &[
            index("audit_by_user", "username, at", ""),
            index("audit_by_time", "at", ""),
            index(
                "audit_step_offsets",
                "username, id",
                "step_offset IS NOT NULL",
            ),
        ],
        ..table(
            "audit",
            &[
                col("id", Id, Key),
                col("at", Int, Required),
                col("actor_uid", Int, Optional),
                col("actor_pid", Int, Optional),
                col("username", Text, Required),
                col("event", Text, Required),
                col("service", Text, Default("''")),
                col("tty", Text, Default("''")),
                col("rhost", Text, Default("''")),
                col("detail", Text, Default("''")),
                col("step_offset", Int4, Optional),
                col("host", Text, Default("''")),
            ],
        )
    },
    Table {
        indexes: &[
            index("sessions_by_user", "username, started", ""),
            index("sessions_live", "host", "ended IS NULL"),
        ],
        ..table(
            "sessions",
            &[
                col("id", Text, Key),
                col("username", Text, Required),
                col("service", Text, Default("''")),
                col("tty", Text, Default("''")),
                col("rhost", Text, Default("''")),
                col("ruser", Text, Default("''")),
                col("host", Text, Default("''")),
                col("boot_id", Text, Default("''")),
                col("leader_pid", Int, Required),
                col("leader_start", Int, Required),
                col("logind_session", Text, Default("''")),
                col("auth_method", Text, Default("''")),
                col("auth_at", Int, Default("0")),
                col("started", Int, Required),
                col("ended", Int, Optional),
                col("end_reason", Text, Default("''")),
                col("rhost_name", Text, Default("''")),
                col("location", Text, Default("''")),
                col("country_code", Text, Default("''")),
                col("warned", Bool, Default("false")),
                col("revoke_requested", Text, Default("''")),
            ],
        )
    },
    Table {
        indexes: &[index("auth_passes_by_user", "username, at", "")],
        ..table(
            "auth_passes",
            &[
                col("id", Id, Key),
                col("username", Text, Required),
                col("service", Text, Default("''")),
                col("tty", Text, Default("''")),
                col("rhost", Text, Default("''")),
                col("at", Int, Required),
                col("method", Text, Required),
                col("caller_pid", Int, Default("0")),
                col("caller_ppid", Int, Default("0")),
                col("tty_sid", Int, Default("0")),
                col("tty_sid_start", Int, Default("0")),
                col("host", Text, Default("''")),
                col("boot_id", Text, Default("''")),
            ],
        )
    },
    table(
        "session_timeouts",
        &[col("name", Text, Key), col("seconds", Int, Required)],
    ),
    // The fleet's own: the key check, the SQLite databases migrated in.
    Table {
        only_in: Some(Dialect::Postgres),
        ..table(
            "fleet",
            &[col("key", Text, Key), col("value", Blob, Required)],
        )
    },
    Table {
        only_in: Some(Dialect::Postgres),
        ..table(
            "migrated_sources",
            &[
                col("source", Text, Key),
                col("host", Text, Required),
                col("at", Int, Required),
            ],
        )
    },
    // The daemon's runs on this host (see `sqlite::durability`), created by SQLite
    // migration 7 (with its one row).
    Table {
        only_in: Some(Dialect::Sqlite),
        ..table(
            "run_state",
            &[
                col("id", Int, Key),
                col("boot_id", Text, Default("''")),
                col("clean", Bool, Default("true")),
                col("reserved_step", Int, Default("0")),
                col("fence_step", Int, Default("0")),
            ],
        )
    },
];

/// A change of the schema made the same way in both stores.
#[derive(Debug)]
pub enum Change {
    /// A new column of an existing table.
    AddColumn { table: &'static str, column: Column },
    /// A column no longer used.
    DropColumn {
        table: &'static str,
        column: &'static str,
    },
    /// A new table.
    CreateTable(&'static Table),
    /// A new index of an existing table.
    AddIndex { table: &'static str, index: Index },
    /// Rows moved by a statement in the shared form of [`Dialect::text`].
    Data(&'static str),
}

impl Change {
    pub fn sql(&self, dialect: Dialect) -> String {
        match self {
            Change::AddColumn { table, column } => format!(
                "ALTER TABLE {table} ADD COLUMN {} {}{};",
                dialect.text(column.name),
                column.ty.sql(dialect),
                column.fill.sql(column.ty, dialect)
            ),
            Change::DropColumn { table, column } => {
                format!("ALTER TABLE {table} DROP COLUMN {};", dialect.text(column))
            }
            Change::CreateTable(table) => table.create(dialect),
            Change::AddIndex { table, index } => index.create(table, dialect),
            Change::Data(sql) => format!("{};", dialect.text(sql)),
        }
    }
}

/// A user's authenticators, each with its own secret and replay watermark (created by
/// [`DEVICES`]).
pub const DEVICES_TABLE: Table = Table {
    key: "name, device",
    ..table(
        "devices",
        &[
            col("name", Text, Required),
            col("device", Text, Required),
            col("kind", Text, Default("'totp app'")),
            col("secret", Blob, Required),
            col("added_at", Int, Required),
            col("last_step", Int, Optional),
            col("last_used_at", Int, Optional),
        ],
    )
};

/// Several devices per user: each enrolled user's secret becomes their first device
/// (named `limits::FIRST_DEVICE`, keeping its watermark and last use), and leaves
/// `users`. SQLite migration 8, PostgreSQL migration 3.
pub const DEVICES: &[Change] = &[
    Change::CreateTable(&DEVICES_TABLE),
    Change::Data(
        "INSERT INTO devices (name, device, kind, secret, added_at, last_step, last_used_at)
         SELECT name, 'default', 'totp app', secret, enrolled_at, last_step,
                CASE WHEN last_method = 'totp' THEN last_used_at END
         FROM users",
    ),
    Change::DropColumn {
        table: "users",
        column: "secret",
    },
    Change::DropColumn {
        table: "users",
        column: "last_step",
    },
];

/// How each device and pending enrollment makes its codes (hardware tokens: SHA-256/512,
/// 8 digits, 60-second steps, or a counter: period 0); every earlier one is an app's.
/// SQLite migration 9, PostgreSQL migration 4.
pub const OATH_PARAMS: &[Change] = &[
    add_column("devices", col("algorithm", Text, Default("'SHA1'"))),
    add_column("devices", col("digits", Int4, Default("6"))),
    add_column("devices", col("period", Int4, Default("30"))),
    add_column(
        "pending_enrollments",
        col("algorithm", Text, Default("'SHA1'")),
    ),
    add_column("pending_enrollments", col("digits", Int4, Default("6"))),
    add_column("pending_enrollments", col("period", Int4, Default("30"))),
];

const fn add_column(table: &'static str, column: Column) -> Change {
    Change::AddColumn { table, column }
}

/// Hardware OATH tokens imported from vendors' seed files, assigned or not (created by
/// [`TOKENS`]). The seed is sealed for the token (see `secrets::Keys::seal_token`);
/// `counter` is an HOTP token's next counter value, kept here so that it outlives the
/// device the token is.
pub const TOKENS_TABLE: Table = Table {
    // A key column of its own would take NULL in SQLite.
    key: "serial",
    ..table(
        "tokens",
        &[
            col("serial", Text, Required),
            col("kind", Text, Required),
            col("secret", Blob, Required),
            col("algorithm", Text, Required),
            col("digits", Int4, Required),
            col("period", Int4, Required),
            col("counter", Int, Default("0")),
            col("manufacturer", Text, Default("''")),
            col("model", Text, Default("''")),
            col("imported_at", Int, Required),
        ],
    )
};

/// Hardware OATH tokens: their table, and on each device the serial of the token it is
/// (NULL: not a token of the table). A token is assigned iff a device names it. SQLite
/// migration 10, PostgreSQL migration 5.
pub const TOKENS: &[Change] = &[
    Change::CreateTable(&TOKENS_TABLE),
    Change::AddColumn {
        table: "devices",
        column: col("token", Text, Optional),
    },
    // Whose device a token is: looked up by every assignment and listing.
    Change::AddIndex {
        table: "devices",
        index: index("devices_by_token", "token", "token IS NOT NULL"),
    },
];

/// When each throttle counter last counted a failure (idle ones are purged): SQLite
/// migration 6, PostgreSQL migration 2.
pub const THROTTLE_UPDATED_AT: Change = Change::AddColumn {
    table: "throttle",
    column: col("updated_at", Int, Default("0")),
};

/// Creates every table of [`TABLES`] that `dialect` has.
pub fn create_tables(dialect: Dialect) -> String {
    TABLES
        .iter()
        .filter(|t| t.only_in.is_none_or(|d| d == dialect))
        .map(|t| t.create(dialect))
        .collect()
}

/// One step of a store's schema history; each store counts the steps applied.
#[derive(Debug)]
pub enum Migration {
    /// Written for one store before the schema was defined here: stays as it was.
    Sql(&'static str),
    /// Creates every table of [`TABLES`] (PostgreSQL's first migration).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    CreateTables,
    /// A change made the same way in both stores.
    Change(&'static Change),
    /// Changes made the same way in both stores, in one step.
    Changes(&'static [Change]),
}

impl Migration {
    pub fn sql(&self, dialect: Dialect) -> Cow<'static, str> {
        match self {
            Migration::Sql(sql) => Cow::Borrowed(sql),
            Migration::CreateTables => Cow::Owned(create_tables(dialect)),
            Migration::Change(change) => Cow::Owned(change.sql(dialect)),
            Migration::Changes(changes) => Cow::Owned(
                changes
                    .iter()
                    .map(|c| c.sql(dialect))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;

    /// One space between words, none around punctuation: the text as the parser sees it.
    fn normalized(sql: &str) -> String {
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut out = String::new();
        for c in words.chars() {
            if c == ' ' && out.ends_with(['(', ')', ',', ';']) {
                continue;
            }
            if matches!(c, '(' | ')' | ',' | ';') && out.ends_with(' ') {
                out.pop();
            }
            out.push(c);
        }
        out
    }

    /// PostgreSQL's migration 1 as written before `schema` existed: every fleet
    /// database was created with it.
    const POSTGRES_1: &str = "CREATE TABLE users (
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
    );";

    #[test]
    fn postgres_migrations_render_the_statements_fleets_were_created_with() {
        assert_eq!(
            normalized(&create_tables(Dialect::Postgres)),
            normalized(POSTGRES_1)
        );
        assert_eq!(
            THROTTLE_UPDATED_AT.sql(Dialect::Postgres),
            "ALTER TABLE throttle ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;"
        );
        assert_eq!(
            THROTTLE_UPDATED_AT.sql(Dialect::Sqlite),
            "ALTER TABLE throttle ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;"
        );
    }

    #[test]
    fn the_devices_migration_names_the_first_device_and_its_kind_as_the_contract_does() {
        use twofold_contract::limits::{DEVICE_KIND_TOTP_APP, FIRST_DEVICE};
        let Change::Data(copy) = &DEVICES[1] else {
            panic!("the second change copies the secrets");
        };
        assert!(copy.contains(&format!("'{FIRST_DEVICE}', '{DEVICE_KIND_TOTP_APP}'")));
        let kind = DEVICES_TABLE
            .columns
            .iter()
            .find(|c| c.name == "kind")
            .unwrap();
        let quoted = format!("'{DEVICE_KIND_TOTP_APP}'");
        assert!(matches!(kind.fill, Fill::Default(v) if v == quoted));
        assert!(DEVICES_TABLE
            .create(Dialect::Postgres)
            .contains("PRIMARY KEY (name, device)"));
    }

    /// `(name, type, not null, default, key)` as `PRAGMA table_info` says them.
    type ColumnInfo = (String, String, bool, Option<String>, bool);

    /// Every change of both stores' later migrations.
    fn changes() -> impl Iterator<Item = &'static Change> {
        std::iter::once(&THROTTLE_UPDATED_AT)
            .chain(DEVICES)
            .chain(OATH_PARAMS)
            .chain(TOKENS)
    }

    fn expected(table: &Table) -> Vec<ColumnInfo> {
        let added = changes().filter_map(|c| match c {
            Change::AddColumn { table: t, column } if *t == table.name => Some(column),
            _ => None,
        });
        let dropped: Vec<&str> = changes()
            .filter_map(|c| match c {
                Change::DropColumn { table: t, column } if *t == table.name => Some(*column),
                _ => None,
            })
            .collect();
        let keys: Vec<&str> = table.key.split(", ").collect();
        table
            .columns
            .iter()
            .chain(added)
            .filter(|c| !dropped.contains(&c.name))
            .map(|c| {
                let key = c.fill == Fill::Key || keys.contains(&c.name);
                let default = match c.fill {
                    Fill::Default(v) => Some(literal(v, c.ty, Dialect::Sqlite).to_string()),
                    _ => None,
                };
                // SQLite's own first migrations spelled keys NOT NULL (its rowid excepted).
                let rowid = c.fill == Fill::Key && matches!(c.ty, Type::Id | Type::Int);
                let not_null = c.fill != Fill::Optional && !rowid;
                (
                    Dialect::Sqlite.text(c.name).into_owned(),
                    c.ty.sql(Dialect::Sqlite).to_string(),
                    not_null,
                    default,
                    key,
                )
            })
            .collect()
    }

    #[test]
    fn added_indexes_are_built_and_rendered_for_both_stores() {
        let store = SqliteStore::in_memory();
        let added: Vec<&str> = changes()
            .filter_map(|c| match c {
                Change::AddIndex { index, .. } => Some(index.name),
                _ => None,
            })
            .collect();
        assert_eq!(added, ["devices_by_token"]);
        store
            .read_raw(|conn| {
                for name in &added {
                    let found: i64 = conn.query_row(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [name],
                        |row| row.get(0),
                    )?;
                    assert_eq!(found, 1, "{name}");
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            TOKENS[2].sql(Dialect::Postgres),
            "CREATE INDEX devices_by_token ON devices (token) WHERE token IS NOT NULL;"
        );
    }

    #[test]
    fn sqlite_migrations_build_the_tables_of_the_schema() {
        let store = SqliteStore::in_memory();
        let created = changes().filter_map(|c| match c {
            Change::CreateTable(table) => Some(*table),
            _ => None,
        });
        let tables: Vec<&Table> = TABLES
            .iter()
            .chain(created)
            .filter(|t| t.only_in != Some(Dialect::Postgres))
            .collect();
        store
            .read_raw(|conn| {
                let mut names: Vec<String> = conn
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                names.retain(|n| !n.starts_with("sqlite_"));
                let mut wanted: Vec<String> = tables.iter().map(|t| t.name.into()).collect();
                wanted.sort();
                assert_eq!(names, wanted);
                for table in &tables {
                    let found: Vec<ColumnInfo> = conn
                        .prepare(&format!("PRAGMA table_info({})", table.name))?
                        .query_map([], |row| {
                            Ok((
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                                row.get::<_, i64>(5)? > 0,
                            ))
                        })?
                        .collect::<Result<_, _>>()?;
                    assert_eq!(found, expected(table), "table {}", table.name);
                }
                Ok(())
            })
            .unwrap();
    }
}

//! `twofoldd migrate --from sqlite:PATH --to postgres://…`: copies one host's SQLite
//! state into the fleet's database, in one transaction (all or nothing).
//!
//! Everything goes, single-use state included: users with their devices' sealed secrets
//! (the fleet shares this host's key file) and replay watermarks, backup-code hashes with
//! their tags and used marks, pending enrollments, throttle counters, bypass codes,
//! first-seen times, session timeouts, sessions, remembered passes, hardware tokens (with
//! their counters, and which device each is) and the audit trail (entries without a host
//! get this host's name).
//!
//! A user the fleet already has is merged only when it is the same enrollment (a device
//! with the same sealed secret, e.g. a copied database): each such device's watermark
//! becomes the later one and a
//! backup code used on either side stays used. A different enrollment in the fleet wins
//! and the user is reported: they keep using the fleet's. Counters merge to the
//! stricter value. A source is migrated once: a second run is refused.

use std::collections::HashSet;
use std::time::Duration;

use rusqlite::Connection;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, ToStatement, Transaction};

use super::PostgresStore;
use crate::storage::sql::{self, Dialect};
use crate::storage::sqlite::SqliteStore;
use crate::storage::StoreError;

/// What a migration copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Users added to the fleet.
    pub users: usize,
    /// Users the fleet had with the same enrollment, merged.
    pub merged: Vec<String>,
    /// Users the fleet had with another enrollment: theirs kept, this host's dropped.
    pub conflicts: Vec<String>,
    /// Backup codes copied (used ones included).
    pub backup_codes: usize,
    /// Audit entries copied.
    pub audit: usize,
    /// Sessions copied.
    pub sessions: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users added, {} merged, {} backup codes, {} audit entries, {} sessions",
            self.users,
            self.merged.len(),
            self.backup_codes,
            self.audit,
            self.sessions
        )?;
        if !self.conflicts.is_empty() {
            write!(
                f,
                "; enrolled differently in the fleet already (the fleet's enrollment kept): {}",
                self.conflicts.join(", ")
            )?;
        }
        Ok(())
    }
}

type Val = rusqlite::types::Value;

/// All rows of one table, as SQLite values.
fn rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Val>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |row| (0..n).map(|i| row.get::<_, Val>(i)).collect())?;
    rows.collect()
}

fn text(v: &Val) -> String {
    match v {
        Val::Text(s) => s.clone(),
        Val::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

fn int(v: &Val) -> Option<i64> {
    match v {
        Val::Integer(i) => Some(*i),
        _ => None,
    }
}

fn blob(v: &Val) -> Vec<u8> {
    match v {
        Val::Blob(b) => b.clone(),
        Val::Text(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// How a column of the source becomes a parameter of the fleet's statement: the value
/// of the PostgreSQL type that column has there.
#[derive(Debug, Clone, Copy)]
enum Param {
    /// TEXT.
    Text,
    /// TEXT or NULL (a text only: a token's serial).
    OptText,
    /// TEXT naming a host: "" (written before hosts were recorded) is this host.
    Host,
    /// BYTEA.
    Blob,
    /// BIGINT or NULL.
    Int,
    /// BIGINT NOT NULL: NULL is 0.
    Int0,
    /// BIGINT NOT NULL: NULL is now.
    IntOrNow,
    /// INTEGER or NULL.
    Int4,
    /// BOOLEAN, from SQLite's 0/1.
    Bool,
}

use Param::{Blob, Bool, Host, Int, Int0, Int4, IntOrNow, OptText, Text};

/// What a parameter of [`Param::Host`] and [`Param::IntOrNow`] takes.
struct Here<'a> {
    host: &'a str,
    now: i64,
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The parameters of a source row whose columns are `columns`.
fn params(row: &[Val], columns: &[Param], here: &Here) -> Params {
    row.iter()
        .zip(columns)
        .map(|(v, column)| -> Box<dyn ToSql + Sync + Send> {
            match column {
                Text => Box::new(text(v)),
                OptText => Box::new(match v {
                    Val::Text(s) => Some(s.clone()),
                    _ => None,
                }),
                Host => Box::new(
                    Some(text(v))
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| here.host.to_string()),
                ),
                Blob => Box::new(blob(v)),
                Int => Box::new(int(v)),
                Int0 => Box::new(int(v).unwrap_or(0)),
                IntOrNow => Box::new(int(v).unwrap_or(here.now)),
                Int4 => Box::new(int(v).map(|i| i as i32)),
                Bool => Box::new(int(v).unwrap_or(0) != 0),
            }
        })
        .collect()
}

/// Runs `statement` with the parameters of `row` (see [`params`]); how many rows it
/// changed.
async fn insert(
    tx: &Transaction<'_>,
    statement: &(impl ToStatement + ?Sized),
    row: &[Val],
    columns: &[Param],
    here: &Here<'_>,
) -> Result<u64, tokio_postgres::Error> {
    tx.execute_raw(statement, params(row, columns, here)).await
}

/// A table copied row by row as it is: read from the source with `select`, written
/// into the fleet with `insert`, whose parameters are `columns`.
struct AsIs {
    /// In the shared form of [`Dialect::text`].
    select: &'static str,
    insert: &'static str,
    columns: &'static [Param],
    /// The rows of a user enrolled differently in the fleet go too.
    of_conflicts_too: bool,
}

/// Pending enrollments and bypass codes (but a user's enrolled differently in the fleet),
/// throttle counters (the stricter of the two), first-seen times, session timeouts and
/// remembered passes (without a host: this host's).
const AS_IS: [AsIs; 6] = [
    AsIs {
        select: "SELECT name, secret, expires_at FROM pending_enrollments",
        insert: "INSERT INTO pending_enrollments (name, secret, expires_at)
                 VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        columns: &[Text, Blob, Int0],
        of_conflicts_too: false,
    },
    AsIs {
        select: "SELECT name, hash, expires_at FROM bypass_codes",
        insert: "INSERT INTO bypass_codes (name, hash, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
        columns: &[Text, Text, Int0],
        of_conflicts_too: false,
    },
    AsIs {
        select: "SELECT name, source, failures, lockouts, locked_until, updated_at FROM throttle",
        insert: "INSERT INTO throttle (name, source, failures, lockouts, locked_until,
                                       updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name, source) DO UPDATE SET
                    failures = GREATEST(throttle.failures, EXCLUDED.failures),
                    lockouts = GREATEST(throttle.lockouts, EXCLUDED.lockouts),
                    locked_until = GREATEST(throttle.locked_until, EXCLUDED.locked_until),
                    updated_at = GREATEST(throttle.updated_at, EXCLUDED.updated_at)",
        columns: &[Text, Text, Int0, Int0, Int0, Int0],
        of_conflicts_too: true,
    },
    AsIs {
        select: "SELECT name, at FROM first_seen",
        insert: "INSERT INTO first_seen (name, at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET at = LEAST(first_seen.at, EXCLUDED.at)",
        columns: &[Text, IntOrNow],
        of_conflicts_too: true,
    },
    AsIs {
        select: sql::SESSION_TIMEOUTS,
        insert: "INSERT INTO session_timeouts (name, seconds) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
        columns: &[Text, Int0],
        of_conflicts_too: true,
    },
    AsIs {
        select: "SELECT username, service, tty, rhost, at, method, caller_pid, caller_ppid,
                        tty_sid, tty_sid_start, host, boot_id FROM auth_passes ORDER BY id",
        insert: sql::INSERT_AUTH_PASS,
        columns: &[
            Text, Text, Text, Text, Int0, Text, Int0, Int0, Int0, Int0, Host, Text,
        ],
        of_conflicts_too: true,
    },
];

type Rows = Vec<Vec<Val>>;

struct Export {
    users: Rows,
    devices: Rows,
    backup_codes: Rows,
    audit: Rows,
    sessions: Rows,
    tokens: Rows,
    /// The rows of each of [`AS_IS`].
    as_is: Vec<Rows>,
}

fn export(source: &SqliteStore) -> Result<Export, StoreError> {
    source.read_raw(|c| {
        Ok(Export {
            // A source whose daemon last stopped uncleanly may have lost acceptances:
            // the watermarks take the replay fence they would get at its next start
            // (storage::sqlite::durability; the boot is not known here: any).
            users: rows(
                c,
                "SELECT name, enrolled_at, last_used_at, last_method, last_service, last_rhost
                 FROM users ORDER BY name",
            )?,
            devices: rows(
                c,
                "SELECT name, device, kind, secret, added_at,
                        CASE WHEN period = 0 OR f.floor = 0 THEN last_step
                             WHEN ((f.floor + 1) * 30 - 1) / period > coalesce(last_step, 0)
                             THEN ((f.floor + 1) * 30 - 1) / period
                             ELSE last_step END,
                        last_used_at, algorithm, digits, period, token
                 FROM devices,
                      (SELECT max(fence_step, CASE WHEN clean THEN 0 ELSE reserved_step END)
                              AS floor
                       FROM run_state) AS f
                 ORDER BY name, added_at",
            )?,
            backup_codes: rows(
                c,
                "SELECT name, tag, hash, used_at FROM backup_codes ORDER BY id",
            )?,
            audit: rows(
                c,
                "SELECT at, actor_uid, actor_pid, user, event, service, tty, rhost, detail,
                        step_offset, host FROM audit ORDER BY id",
            )?,
            sessions: rows(
                c,
                "SELECT id, user, service, tty, rhost, ruser, host, boot_id, leader_pid,
                        leader_start, logind_session, auth_method, auth_at, started, ended,
                        end_reason, rhost_name, location, country_code, warned,
                        revoke_requested FROM sessions",
            )?,
            tokens: rows(
                c,
                "SELECT serial, kind, secret, algorithm, digits, period, counter, manufacturer,
                        model, imported_at FROM tokens",
            )?,
            as_is: AS_IS
                .iter()
                .map(|table| rows(c, &Dialect::Sqlite.text(table.select)))
                .collect::<rusqlite::Result<_>>()?,
        })
    })
}

/// Copies everything of `source` (known as `source_name`, on host `host`) into
/// `target`, in one transaction.
pub fn migrate(
    source: &SqliteStore,
    source_name: &str,
    target: &PostgresStore,
    host: &str,
    now: i64,
) -> Result<Report, String> {
    let data = export(source).map_err(|e| format!("reading {source_name}: {e}"))?;
    let source_key = format!("{host}:{source_name}");
    target
        .db
        .run_async_within(
            "migrate",
            false,
            Duration::from_secs(600),
            async |c: &mut Client| {
                let tx = c.transaction().await?;
                let done = tx
                    .query_opt(
                        "SELECT at FROM migrated_sources WHERE source = $1 FOR UPDATE",
                        &[&source_key],
                    )
                    .await?;
                if let Some(row) = done {
                    let at: i64 = row.get(0);
                    return Ok(Err(format!(
                        "{source_name} of host {host} was migrated already (at Unix time \
                         {at}); nothing done"
                    )));
                }
                tx.execute(
                    "INSERT INTO migrated_sources (source, host, at) VALUES ($1, $2, $3)",
                    &[&source_key, &host, &now],
                )
                .await?;
                let mut report = Report::default();
                let here = Here { host, now };
                copy_tokens(&tx, &data, &here).await?;
                let users = copy_users(&tx, &data, &here, &mut report).await?;
                copy_backup_codes(&tx, &data, &users, &mut report).await?;
                copy_as_is(&tx, &data, &here, &report.conflicts).await?;
                copy_history(&tx, &data, &here, &mut report).await?;
                tx.commit().await?;
                Ok(Ok(report))
            },
        )
        .map_err(|e| {
            format!(
                "migration into {} failed (nothing was changed): {e}",
                target.place()
            )
        })?
}

/// Users of the source copied whole (with their backup codes) or merged into the same
/// enrollment in the fleet.
#[derive(Default)]
struct CopiedUsers {
    copied: HashSet<String>,
    merged: HashSet<String>,
}

/// Users: new ones copied with their devices; the same enrollment merged; another one
/// kept.
async fn copy_users(
    tx: &Transaction<'_>,
    data: &Export,
    here: &Here<'_>,
    report: &mut Report,
) -> Result<CopiedUsers, tokio_postgres::Error> {
    let mut users = CopiedUsers::default();
    for u in &data.users {
        let name = text(&u[0]);
        let devices: Vec<&Vec<Val>> = data
            .devices
            .iter()
            .filter(|d| text(&d[0]) == name)
            .collect();
        let existing = tx
            .query_opt("SELECT 1 FROM users WHERE name = $1 FOR UPDATE", &[&name])
            .await?;
        if existing.is_none() {
            insert(
                tx,
                "INSERT INTO users (name, enrolled_at, last_used_at, last_method,
                        last_service, last_rhost)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                u,
                &[Text, Int0, Int, Text, Text, Text],
                here,
            )
            .await?;
            for d in devices {
                // Its token (`OptText`), unless the fleet has that token on a device already.
                insert(
                    tx,
                    "INSERT INTO devices (name, device, kind, secret, added_at, last_step,
                            last_used_at, algorithm, digits, period, token)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                 CASE WHEN EXISTS (SELECT 1 FROM devices WHERE token = $11)
                                      THEN NULL ELSE $11 END)",
                    d,
                    &[
                        Text, Text, Text, Blob, Int0, Int, Int, Text, Int4, Int4, OptText,
                    ],
                    here,
                )
                .await?;
            }
            report.users += 1;
            users.copied.insert(name);
            continue;
        }
        // Single-use state of the devices both sides have: the later watermark of the two.
        let mut same = false;
        for d in devices {
            let merged = tx
                .execute(
                    "UPDATE devices SET last_step = GREATEST(last_step, $3)
                         WHERE name = $1 AND secret = $2",
                    &[&name, &blob(&d[3]), &int(&d[5])],
                )
                .await?;
            same |= merged > 0;
        }
        if same {
            report.merged.push(name.clone());
            users.merged.insert(name);
        } else {
            report.conflicts.push(name);
        }
    }
    Ok(users)
}

/// Hardware tokens: a serial the fleet has keeps its row, with the later counter of the
/// two (no code used on either side passes again).
async fn copy_tokens(
    tx: &Transaction<'_>,
    data: &Export,
    here: &Here<'_>,
) -> Result<(), tokio_postgres::Error> {
    for t in &data.tokens {
        insert(
            tx,
            "INSERT INTO tokens (serial, kind, secret, algorithm, digits, period, counter,
                                 manufacturer, model, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (serial) DO UPDATE
                 SET counter = GREATEST(tokens.counter, EXCLUDED.counter)",
            t,
            &[Text, Text, Blob, Text, Int4, Int4, Int0, Text, Text, Int0],
            here,
        )
        .await?;
    }
    Ok(())
}

/// Backup codes of the users copied or merged.
async fn copy_backup_codes(
    tx: &Transaction<'_>,
    data: &Export,
    users: &CopiedUsers,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    for b in &data.backup_codes {
        let name = text(&b[0]);
        let (tag, hash, used_at) = (blob(&b[1]), text(&b[2]), int(&b[3]));
        if users.copied.contains(&name) {
            tx.execute(
                "INSERT INTO backup_codes (name, tag, hash, used_at)
                     VALUES ($1, $2, $3, $4)",
                &[&name, &tag, &hash, &used_at],
            )
            .await?;
            report.backup_codes += 1;
        } else if users.merged.contains(&name) && used_at.is_some() {
            // Used here: used in the fleet too.
            tx.execute(
                "UPDATE backup_codes SET used_at = coalesce(used_at, $3)
                     WHERE name = $1 AND hash = $2",
                &[&name, &hash, &used_at],
            )
            .await?;
        }
    }
    Ok(())
}

/// The tables of [`AS_IS`] (but the rows of `conflicts`, the users enrolled differently
/// in the fleet, where they stay).
async fn copy_as_is(
    tx: &Transaction<'_>,
    data: &Export,
    here: &Here<'_>,
    conflicts: &[String],
) -> Result<(), tokio_postgres::Error> {
    for (table, rows) in AS_IS.iter().zip(&data.as_is) {
        for row in rows {
            if table.of_conflicts_too || !conflicts.contains(&text(&row[0])) {
                insert(tx, table.insert, row, table.columns, here).await?;
            }
        }
    }
    Ok(())
}

/// The audit trail and sessions (without a host: this host's).
async fn copy_history(
    tx: &Transaction<'_>,
    data: &Export,
    here: &Here<'_>,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let audit = tx.prepare(sql::INSERT_AUDIT).await?;
    for a in &data.audit {
        let columns = [
            Int0, Int, Int, Text, Text, Text, Text, Text, Text, Int4, Host,
        ];
        insert(tx, &audit, a, &columns, here).await?;
        report.audit += 1;
    }
    for s in &data.sessions {
        let n = insert(
            tx,
            "INSERT INTO sessions (id, username, service, tty, rhost, ruser,
                    host, boot_id, leader_pid, leader_start, logind_session,
                    auth_method, auth_at, started, ended, end_reason, rhost_name,
                    location, country_code, warned, revoke_requested)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                    $14, $15, $16, $17, $18, $19, $20, $21)
                 ON CONFLICT (id) DO NOTHING",
            s,
            &[
                Text, Text, Text, Text, Text, Text, Host, Text, Int0, Int0, Text, Text, Int0, Int0,
                Int, Text, Text, Text, Text, Bool, Text,
            ],
            here,
        )
        .await?;
        report.sessions += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockout::Source;
    use crate::storage::Acceptance;
    use crate::storage::{AuditEvent, Pending, Store};

    fn last_step_exported(store: &SqliteStore) -> Option<i64> {
        int(&export(store).unwrap().devices[0][5])
    }

    #[test]
    fn watermarks_leave_with_the_fence_of_an_unclean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("twofold.db")).unwrap();
        store.begin_run("boot-a").unwrap();
        let now = crate::service::now();
        let step = crate::otp::step_at(now as u64);
        let ev = AuditEvent {
            at: now,
            user: "alice".into(),
            event: "test",
            ..Default::default()
        };
        let pending = Pending {
            secret_sealed: vec![1],
            expires_at: i64::MAX,
            oath: crate::otp::Oath::APP,
        };
        store.begin_enrollment("alice", &pending, &ev).unwrap();
        assert!(store
            .confirm_enrollment("alice", &Pending::sealed(vec![1]), Some(step - 1), &[], &ev)
            .unwrap());
        let local = [Source::in_a_row("local".into(), 5)];
        assert!(store
            .accept_code("alice", "default", Acceptance::totp(step), &local, &ev)
            .unwrap());
        // Running (or stopped uncleanly): every reserved step counts as used.
        let exported = last_step_exported(&store).unwrap();
        assert!(
            exported > step as i64,
            "{exported} lets step {} pass",
            step + 1
        );
        // Stopped in order: the watermark as it is.
        store.end_run().unwrap();
        assert_eq!(last_step_exported(&store), Some(step as i64));
    }
}

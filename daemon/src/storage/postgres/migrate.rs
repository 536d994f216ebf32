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
use tokio_postgres::{Client, Transaction};

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

struct Export {
    users: Vec<Vec<Val>>,
    devices: Vec<Vec<Val>>,
    pending: Vec<Vec<Val>>,
    backup_codes: Vec<Vec<Val>>,
    throttle: Vec<Vec<Val>>,
    first_seen: Vec<Vec<Val>>,
    bypass: Vec<Vec<Val>>,
    audit: Vec<Vec<Val>>,
    sessions: Vec<Vec<Val>>,
    passes: Vec<Vec<Val>>,
    timeouts: Vec<Vec<Val>>,
    tokens: Vec<Vec<Val>>,
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
            pending: rows(
                c,
                "SELECT name, secret, expires_at FROM pending_enrollments",
            )?,
            backup_codes: rows(
                c,
                "SELECT name, tag, hash, used_at FROM backup_codes ORDER BY id",
            )?,
            throttle: rows(
                c,
                "SELECT name, source, failures, lockouts, locked_until, updated_at FROM throttle",
            )?,
            first_seen: rows(c, "SELECT name, at FROM first_seen")?,
            bypass: rows(c, "SELECT name, hash, expires_at FROM bypass_codes")?,
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
            passes: rows(
                c,
                "SELECT user, service, tty, rhost, at, method, caller_pid, caller_ppid,
                        tty_sid, tty_sid_start, host, boot_id FROM auth_passes ORDER BY id",
            )?,
            timeouts: rows(c, &Dialect::Sqlite.text(sql::SESSION_TIMEOUTS))?,
            tokens: rows(
                c,
                "SELECT serial, kind, secret, algorithm, digits, period, counter, manufacturer,
                        model, imported_at FROM tokens",
            )?,
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
                copy_tokens(&tx, &data).await?;
                let users = copy_users(&tx, &data, &mut report).await?;
                copy_user_state(&tx, &data, &users, &mut report).await?;
                copy_counters(&tx, &data, now).await?;
                copy_history(&tx, &data, host, &mut report).await?;
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
            tx.execute(
                "INSERT INTO users (name, enrolled_at, last_used_at, last_method,
                        last_service, last_rhost)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &name,
                    &int(&u[1]).unwrap_or(0),
                    &int(&u[2]),
                    &text(&u[3]),
                    &text(&u[4]),
                    &text(&u[5]),
                ],
            )
            .await?;
            for d in devices {
                // Which token it is, unless the fleet has that token on a device already.
                let token = match &d[10] {
                    Val::Text(serial) => Some(serial.as_str()),
                    _ => None,
                };
                tx.execute(
                    "INSERT INTO devices (name, device, kind, secret, added_at, last_step,
                            last_used_at, algorithm, digits, period, token)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                 CASE WHEN EXISTS (SELECT 1 FROM devices WHERE token = $11)
                                      THEN NULL ELSE $11 END)",
                    &[
                        &name,
                        &text(&d[1]),
                        &text(&d[2]),
                        &blob(&d[3]),
                        &int(&d[4]).unwrap_or(0),
                        &int(&d[5]),
                        &int(&d[6]),
                        &text(&d[7]),
                        &int(&d[8]).map(|v| v as i32),
                        &int(&d[9]).map(|v| v as i32),
                        &token,
                    ],
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
async fn copy_tokens(tx: &Transaction<'_>, data: &Export) -> Result<(), tokio_postgres::Error> {
    for t in &data.tokens {
        tx.execute(
            "INSERT INTO tokens (serial, kind, secret, algorithm, digits, period, counter,
                                 manufacturer, model, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (serial) DO UPDATE
                 SET counter = GREATEST(tokens.counter, EXCLUDED.counter)",
            &[
                &text(&t[0]),
                &text(&t[1]),
                &blob(&t[2]),
                &text(&t[3]),
                &int(&t[4]).map(|v| v as i32),
                &int(&t[5]).map(|v| v as i32),
                &int(&t[6]).unwrap_or(0),
                &text(&t[7]),
                &text(&t[8]),
                &int(&t[9]).unwrap_or(0),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Backup codes, pending enrollments and bypass codes of the users copied or merged.
async fn copy_user_state(
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
    for p in &data.pending {
        let name = text(&p[0]);
        if report.conflicts.contains(&name) {
            continue;
        }
        tx.execute(
            "INSERT INTO pending_enrollments (name, secret, expires_at)
                 VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &blob(&p[1]), &int(&p[2]).unwrap_or(0)],
        )
        .await?;
    }
    for b in &data.bypass {
        let name = text(&b[0]);
        if report.conflicts.contains(&name) {
            continue;
        }
        tx.execute(
            "INSERT INTO bypass_codes (name, hash, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            &[&name, &text(&b[1]), &int(&b[2]).unwrap_or(0)],
        )
        .await?;
    }
    Ok(())
}

/// Throttle counters, first-seen times and session timeouts.
async fn copy_counters(
    tx: &Transaction<'_>,
    data: &Export,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    // Counters: the stricter of the two.
    for t in &data.throttle {
        tx.execute(
            "INSERT INTO throttle (name, source, failures, lockouts, locked_until,
                                       updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name, source) DO UPDATE SET
                    failures = GREATEST(throttle.failures, EXCLUDED.failures),
                    lockouts = GREATEST(throttle.lockouts, EXCLUDED.lockouts),
                    locked_until = GREATEST(throttle.locked_until, EXCLUDED.locked_until),
                    updated_at = GREATEST(throttle.updated_at, EXCLUDED.updated_at)",
            &[
                &text(&t[0]),
                &text(&t[1]),
                &int(&t[2]).unwrap_or(0),
                &int(&t[3]).unwrap_or(0),
                &int(&t[4]).unwrap_or(0),
                &int(&t[5]).unwrap_or(0),
            ],
        )
        .await?;
    }
    for f in &data.first_seen {
        tx.execute(
            "INSERT INTO first_seen (name, at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET at = LEAST(first_seen.at, EXCLUDED.at)",
            &[&text(&f[0]), &int(&f[1]).unwrap_or(now)],
        )
        .await?;
    }
    for t in &data.timeouts {
        tx.execute(
            "INSERT INTO session_timeouts (name, seconds) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
            &[&text(&t[0]), &int(&t[1]).unwrap_or(0)],
        )
        .await?;
    }
    Ok(())
}

/// The audit trail, sessions and remembered passes (without a host: `host`'s).
async fn copy_history(
    tx: &Transaction<'_>,
    data: &Export,
    host: &str,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let or_host = |v: &Val| {
        let h = text(v);
        if h.is_empty() {
            host.to_string()
        } else {
            h
        }
    };
    let audit = tx.prepare(sql::INSERT_AUDIT).await?;
    for a in &data.audit {
        let step_offset = int(&a[9]).map(|o| o as i32);
        tx.execute(
            &audit,
            &[
                &int(&a[0]).unwrap_or(0),
                &int(&a[1]),
                &int(&a[2]),
                &text(&a[3]),
                &text(&a[4]),
                &text(&a[5]),
                &text(&a[6]),
                &text(&a[7]),
                &text(&a[8]),
                &step_offset,
                &or_host(&a[10]),
            ],
        )
        .await?;
        report.audit += 1;
    }
    for s in &data.sessions {
        let n = tx
            .execute(
                "INSERT INTO sessions (id, username, service, tty, rhost, ruser,
                        host, boot_id, leader_pid, leader_start, logind_session,
                        auth_method, auth_at, started, ended, end_reason, rhost_name,
                        location, country_code, warned, revoke_requested)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                        $14, $15, $16, $17, $18, $19, $20, $21)
                     ON CONFLICT (id) DO NOTHING",
                &[
                    &text(&s[0]),
                    &text(&s[1]),
                    &text(&s[2]),
                    &text(&s[3]),
                    &text(&s[4]),
                    &text(&s[5]),
                    &or_host(&s[6]),
                    &text(&s[7]),
                    &int(&s[8]).unwrap_or(0),
                    &int(&s[9]).unwrap_or(0),
                    &text(&s[10]),
                    &text(&s[11]),
                    &int(&s[12]).unwrap_or(0),
                    &int(&s[13]).unwrap_or(0),
                    &int(&s[14]),
                    &text(&s[15]),
                    &text(&s[16]),
                    &text(&s[17]),
                    &text(&s[18]),
                    &(int(&s[19]).unwrap_or(0) != 0),
                    &text(&s[20]),
                ],
            )
            .await?;
        report.sessions += n as usize;
    }
    for p in &data.passes {
        tx.execute(
            sql::INSERT_AUTH_PASS,
            &[
                &text(&p[0]),
                &text(&p[1]),
                &text(&p[2]),
                &text(&p[3]),
                &int(&p[4]).unwrap_or(0),
                &text(&p[5]),
                &int(&p[6]).unwrap_or(0),
                &int(&p[7]).unwrap_or(0),
                &int(&p[8]).unwrap_or(0),
                &int(&p[9]).unwrap_or(0),
                &or_host(&p[10]),
                &text(&p[11]),
            ],
        )
        .await?;
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

//! [`Store`] once for every [`Backend`]: each decision is one transaction whose
//! conditional update (`UPDATE … WHERE last_step < $2`, `… WHERE used_at IS NULL`,
//! `DELETE … WHERE expires_at > $3`) the database applies atomically, so that two
//! verifications of one code (threads of one host, or hosts of a fleet) race on the row
//! and the second finds the condition false. Counters read and then written are read
//! `FOR UPDATE` (PostgreSQL; SQLite's single writer holds the whole database).

use super::{args, placeholders, Backend, DbResult, Durability, Row, Tx};
use crate::lockout::{LockoutPolicy, Source, Throttle, CEILINGS_LIKE};
use crate::otp::Oath;
use crate::storage::{
    Acceptance, AuditEvent, Device, DeviceAdded, DeviceRemoved, Pending, StepOffset, Store,
    StoreResult, StoredBackupCode, UserRecord, PURGE_BATCH,
};
use twofold_contract::{limits, method, AuditEntry};

/// Appends one audit entry (also `twofoldd migrate`'s copy).
pub const INSERT_AUDIT: &str =
    "INSERT INTO audit (at, actor_uid, actor_pid, username, event, service, tty, rhost, detail,
                        step_offset, host)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Appends one audit entry.
pub(crate) fn insert_audit(tx: &dyn Tx, a: &AuditEvent) -> DbResult<()> {
    tx.exec(
        INSERT_AUDIT,
        args![
            a.at,
            a.actor_uid.map(i64::from),
            a.actor_pid.map(i64::from),
            &a.user,
            a.event,
            &a.service,
            &a.tty,
            &a.rhost,
            &a.detail,
            a.step_offset,
            &a.host,
        ],
    )
    .map(drop)
}

/// Replaces the user's backup codes: the old set dies in the same transaction.
fn insert_backup_codes(tx: &dyn Tx, user: &str, codes: &[StoredBackupCode]) -> DbResult<()> {
    tx.exec("DELETE FROM backup_codes WHERE name = $1", args![user])?;
    for code in codes {
        tx.exec(
            "INSERT INTO backup_codes (name, tag, hash) VALUES ($1, $2, $3)",
            args![user, &code.tag, &code.hash],
        )?;
    }
    Ok(())
}

/// What an accepted code records in its transaction: the user's last use (how, from
/// where), the counters of its sources cleared, and its audit entry.
fn record_success(
    tx: &dyn Tx,
    user: &str,
    how: &str,
    sources: &[Source],
    audit: &AuditEvent,
) -> DbResult<()> {
    tx.exec(
        "UPDATE users SET last_used_at = $2, last_method = $5,
                          last_service = $3, last_rhost = $4
         WHERE name = $1",
        args![user, audit.at, &audit.service, &audit.rhost, how],
    )?;
    clear_throttle(tx, user, sources)?;
    insert_audit(tx, audit)
}

/// Clears the counters of `sources` after a success from them (ceilings stay: a success
/// does not refill them).
fn clear_throttle(tx: &dyn Tx, user: &str, sources: &[Source]) -> DbResult<()> {
    let keys: Vec<&str> = sources
        .iter()
        .filter(|s| s.clears_on_success())
        .map(|s| s.key.as_str())
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM throttle WHERE name = $1 AND source IN ({})",
        placeholders(2, keys.len())
    );
    tx.exec(&sql, &with_user(user, &keys)).map(drop)
}

/// `user` then `keys`, as parameters.
fn with_user<'a>(user: &'a str, keys: &[&'a str]) -> Vec<super::Value<'a>> {
    std::iter::once(user)
        .chain(keys.iter().copied())
        .map(super::Value::from)
        .collect()
}

/// Takes the user's pending enrollment whose sealed secret is `secret_sealed`, if still
/// unexpired at `at`.
fn take_pending(tx: &dyn Tx, user: &str, secret_sealed: &[u8], at: i64) -> DbResult<bool> {
    let taken = tx.exec(
        "DELETE FROM pending_enrollments WHERE name = $1 AND secret = $2 AND expires_at > $3",
        args![user, secret_sealed, at],
    )?;
    Ok(taken == 1)
}

/// A device to insert.
pub(crate) struct NewDevice<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub secret_sealed: &'a [u8],
    pub oath: &'a Oath,
    /// Its replay watermark (None: nothing used yet).
    pub last_step: Option<u64>,
}

/// Adds a device of the user.
pub(crate) fn insert_device(tx: &dyn Tx, user: &str, device: &NewDevice, at: i64) -> DbResult<()> {
    tx.exec(
        "INSERT INTO devices (name, device, kind, secret, added_at, last_step, algorithm, digits,
                              period)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            user,
            device.name,
            device.kind,
            device.secret_sealed,
            at,
            device.last_step.map(|s| s as i64),
            device.oath.hash.name(),
            // INTEGER columns: `Option<i32>` is how a parameter says so to PostgreSQL.
            Some(device.oath.digits as i32),
            Some(device.oath.period() as i32)
        ],
    )
    .map(drop)
}

/// The [`Oath`] of a row's `algorithm, digits, period` columns from `first` on.
pub(crate) fn oath_of(row: &mut Row, first: usize) -> DbResult<Oath> {
    let (algorithm, digits, period) = (row.text(first)?, row.int(first + 1)?, row.int(first + 2)?);
    Oath::new(&algorithm, digits as u32, period as u64).map_err(|e| {
        super::DbError::Statement(format!("a stored device has unusable parameters: {e}"))
    })
}

/// Names of the user's devices, locked against another host's change of them (the
/// user's row first, so that hosts lock in one order).
pub(super) fn locked_devices(tx: &dyn Tx, user: &str) -> DbResult<Option<Vec<String>>> {
    let lock = tx.dialect().for_update();
    if tx
        .row(
            &format!("SELECT 1 FROM users WHERE name = $1{lock}"),
            args![user],
        )?
        .is_none()
    {
        return Ok(None);
    }
    tx.rows(
        &format!("SELECT device FROM devices WHERE name = $1{lock}"),
        args![user],
    )?
    .into_iter()
    .map(|mut row| row.text(0))
    .collect::<DbResult<Vec<_>>>()
    .map(Some)
}

fn count_backup_codes(tx: &dyn Tx, user: &str) -> DbResult<u32> {
    let mut row = tx
        .row(
            "SELECT count(*) FROM backup_codes WHERE name = $1 AND used_at IS NULL",
            args![user],
        )?
        .unwrap_or(Row(Vec::new()));
    row.u32(0)
}

fn throttle_row(mut row: Row) -> DbResult<Throttle> {
    Ok(Throttle {
        failures: row.u32(0)?,
        lockouts: row.u32(1)?,
        locked_until: row.int(2)?,
    })
}

/// The strictest of several counters: the latest lockout end, the most failures.
fn strictest(all: impl IntoIterator<Item = Throttle>) -> Throttle {
    all.into_iter().fold(Throttle::default(), |a, b| Throttle {
        failures: a.failures.max(b.failures),
        lockouts: a.lockouts.max(b.lockouts),
        locked_until: a.locked_until.max(b.locked_until),
    })
}

/// Counts one failure against `source`: its counter before and after.
fn count_failure(
    tx: &dyn Tx,
    user: &str,
    source: &Source,
    policy: &LockoutPolicy,
    at: i64,
) -> DbResult<(Throttle, Throttle)> {
    tx.exec(
        "INSERT INTO throttle (name, source) VALUES ($1, $2)
         ON CONFLICT (name, source) DO NOTHING",
        args![user, &source.key],
    )?;
    // Read-modify-write of a counter that every host updates: the row lock makes
    // concurrent failures count one after the other.
    let sql = format!(
        "SELECT failures, lockouts, locked_until FROM throttle
         WHERE name = $1 AND source = $2{}",
        tx.dialect().for_update()
    );
    let before = match tx.row(&sql, args![user, &source.key])? {
        Some(row) => throttle_row(row)?,
        None => Throttle::default(),
    };
    let after = policy.after_failure(before, source, at);
    tx.exec(
        "UPDATE throttle SET failures = $3, lockouts = $4, locked_until = $5, updated_at = $6
         WHERE name = $1 AND source = $2",
        args![
            user,
            &source.key,
            i64::from(after.failures),
            i64::from(after.lockouts),
            after.locked_until,
            at,
        ],
    )?;
    Ok((before, after))
}

fn audit_entry(mut row: Row) -> DbResult<AuditEntry> {
    Ok(AuditEntry {
        at: row.int(0)?,
        actor_uid: row.opt_int(1)?.unwrap_or(-1),
        actor_pid: row.opt_int(2)?.unwrap_or(-1),
        user: row.text(3)?,
        event: row.text(4)?,
        service: row.text(5)?,
        tty: row.text(6)?,
        rhost: row.text(7)?,
        detail: row.text(8)?,
        host: row.text(9)?,
    })
}

impl<B: Backend> Store for B {
    fn shared(&self) -> bool {
        self.spans_hosts()
    }

    fn user(&self, user: &str) -> StoreResult<Option<UserRecord>> {
        self.read("user", |tx| {
            tx.row(
                "SELECT enrolled_at, last_used_at, last_method, last_service, last_rhost
                 FROM users WHERE name = $1",
                args![user],
            )?
            .map(|mut row| {
                Ok(UserRecord {
                    enrolled_at: row.int(0)?,
                    last_used_at: row.opt_int(1)?,
                    last_method: row.text(2)?,
                    last_service: row.text(3)?,
                    last_rhost: row.text(4)?,
                })
            })
            .transpose()
        })
    }

    fn devices(&self, user: &str) -> StoreResult<Vec<Device>> {
        self.read("devices", |tx| {
            tx.rows(
                "SELECT device, kind, secret, added_at, last_step, last_used_at, algorithm, digits,
                        period
                 FROM devices WHERE name = $1 ORDER BY added_at, device",
                args![user],
            )?
            .into_iter()
            .map(|mut row| {
                Ok(Device {
                    name: row.text(0)?,
                    kind: row.text(1)?,
                    secret_sealed: row.bytes(2)?,
                    added_at: row.int(3)?,
                    last_step: row.opt_int(4)?.map(|s| s as u64),
                    last_used_at: row.opt_int(5)?,
                    oath: oath_of(&mut row, 6)?,
                })
            })
            .collect()
        })
    }

    fn throttle(&self, user: &str, sources: &[Source]) -> StoreResult<Throttle> {
        if sources.is_empty() {
            return Ok(Throttle::default());
        }
        let keys: Vec<&str> = sources.iter().map(|s| s.key.as_str()).collect();
        let sql = format!(
            "SELECT failures, lockouts, locked_until FROM throttle
             WHERE name = $1 AND source IN ({})",
            placeholders(2, keys.len())
        );
        let args = with_user(user, &keys);
        self.read("throttle", |tx| {
            let rows = tx.rows(&sql, &args)?;
            Ok(strictest(
                rows.into_iter()
                    .map(throttle_row)
                    .collect::<DbResult<Vec<_>>>()?,
            ))
        })
    }

    fn throttle_summary(&self, user: &str) -> StoreResult<Throttle> {
        self.read("throttle", |tx| {
            let row = tx.row(
                "SELECT CAST(coalesce(sum(CASE WHEN source LIKE $2 THEN 0 ELSE failures END), 0)
                             AS BIGINT),
                        coalesce(max(lockouts), 0), coalesce(max(locked_until), 0)
                 FROM throttle WHERE name = $1",
                args![user, CEILINGS_LIKE],
            )?;
            row.map_or(Ok(Throttle::default()), throttle_row)
        })
    }

    fn clear_lockouts(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("throttle", Durability::OnDisk, |tx| {
            let cleared = tx.exec("DELETE FROM throttle WHERE name = $1", args![user])?;
            insert_audit(tx, audit)?;
            Ok(cleared > 0)
        })
    }

    fn first_seen(&self, user: &str, now: i64) -> StoreResult<i64> {
        self.write("first seen", Durability::OnDisk, |tx| {
            tx.exec(
                "INSERT INTO first_seen (name, at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                args![user, now],
            )?;
            let mut row = tx
                .row("SELECT at FROM first_seen WHERE name = $1", args![user])?
                .unwrap_or(Row(Vec::new()));
            row.int(0)
        })
    }

    fn set_bypass(
        &self,
        user: &str,
        hash: &str,
        expires_at: i64,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write("bypass code", Durability::OnDisk, |tx| {
            tx.exec(
                "INSERT INTO bypass_codes (name, hash, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET hash = $2, expires_at = $3",
                args![user, hash, expires_at],
            )?;
            insert_audit(tx, audit)
        })
    }

    fn bypass(&self, user: &str, now: i64) -> StoreResult<Option<String>> {
        self.read("bypass code", |tx| {
            tx.row(
                "SELECT hash FROM bypass_codes WHERE name = $1 AND expires_at > $2",
                args![user, now],
            )?
            .map(|mut row| row.text(0))
            .transpose()
        })
    }

    fn consume_bypass(
        &self,
        user: &str,
        hash: &str,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("bypass code", Durability::OnDisk, |tx| {
            let used = tx.exec(
                "DELETE FROM bypass_codes WHERE name = $1 AND hash = $2 AND expires_at > $3",
                args![user, hash, audit.at],
            )?;
            if used == 1 {
                clear_throttle(tx, user, sources)?;
                insert_audit(tx, audit)?;
            }
            Ok(used == 1)
        })
    }

    fn known_users(&self) -> StoreResult<Vec<String>> {
        self.read("users", |tx| {
            tx.rows(
                "SELECT name FROM users UNION SELECT name FROM first_seen
                 UNION SELECT name FROM throttle UNION SELECT name FROM pending_enrollments
                 UNION SELECT name FROM bypass_codes ORDER BY 1",
                args![],
            )?
            .into_iter()
            .map(|mut row| row.text(0))
            .collect()
        })
    }

    fn append_audit(&self, audit: &AuditEvent) -> StoreResult<()> {
        self.write("audit", Durability::OnDisk, |tx| insert_audit(tx, audit))
    }

    fn audit_log(
        &self,
        user: Option<&str>,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.read("audit", |tx| {
            tx.rows(
                "SELECT at, actor_uid, actor_pid, username, event, service, tty, rhost,
                        detail, host
                 FROM audit WHERE (CAST($1 AS TEXT) IS NULL OR username = $1) AND at >= $2
                 ORDER BY id DESC LIMIT $3",
                args![user, since, i64::from(limit)],
            )?
            .into_iter()
            .map(audit_entry)
            .collect()
        })
    }

    fn backup_codes_left(&self, user: &str) -> StoreResult<u32> {
        self.read("backup codes", |tx| count_backup_codes(tx, user))
    }

    fn pending(&self, user: &str, now: i64) -> StoreResult<Option<Pending>> {
        self.read("pending enrollment", |tx| {
            tx.row(
                "SELECT secret, expires_at, algorithm, digits, period FROM pending_enrollments
                 WHERE name = $1 AND expires_at > $2",
                args![user, now],
            )?
            .map(|mut row| {
                Ok(Pending {
                    secret_sealed: row.bytes(0)?,
                    expires_at: row.int(1)?,
                    oath: oath_of(&mut row, 2)?,
                })
            })
            .transpose()
        })
    }

    fn accept_code(
        &self,
        user: &str,
        device: &str,
        acceptance: Acceptance,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let how = match acceptance {
            Acceptance::Step { .. } => method::TOTP,
            Acceptance::Counter(_) => method::HOTP,
        };
        let watermark = acceptance.watermark() as i64;
        let op = |tx: &dyn Tx| {
            // The whole decision: the database locks the device's row, and a concurrent
            // update of it (another host, same code) re-evaluates the condition after it
            // commits.
            let moved = tx.exec(
                "UPDATE devices SET last_step = $3, last_used_at = $4
                 WHERE name = $1 AND device = $2 AND (last_step IS NULL OR last_step < $3)",
                args![user, device, watermark, audit.at],
            )?;
            if moved == 1 {
                if let Acceptance::Counter(_) = acceptance {
                    super::tokens::advance_counter(tx, user, device, watermark)?;
                }
                record_success(tx, user, how, sources, audit)?;
            }
            Ok(moved == 1)
        };
        match acceptance {
            Acceptance::Step { clock_step, .. } => self.write_acceptance(clock_step, audit.at, op),
            Acceptance::Counter(_) => self.write("hotp counter", Durability::OnDisk, op),
        }
    }

    fn begin_run(&self, boot_id: &str) -> StoreResult<Option<u64>> {
        self.start_run(boot_id)
    }

    fn replay_fence(&self) -> Option<u64> {
        self.fence()
    }

    fn end_run(&self) -> StoreResult<()> {
        self.stop_run()
    }

    fn recent_step_offsets(&self, user: &str, limit: u32) -> StoreResult<Vec<StepOffset>> {
        self.read("audit", |tx| {
            tx.rows(
                "SELECT step_offset, detail FROM audit
                 WHERE username = $1 AND step_offset IS NOT NULL
                 ORDER BY id DESC LIMIT $2",
                args![user, i64::from(limit)],
            )?
            .into_iter()
            .map(|mut row| {
                let offset = row.opt_i32(0)?.unwrap_or_default();
                // An accepted code's audit detail is `device: NAME` (see `Service::verify`).
                let device = row.text(1)?.strip_prefix("device: ").map(str::to_owned);
                Ok(StepOffset { device, offset })
            })
            .collect()
        })
    }

    fn backup_code_candidates(&self, user: &str, tag: &[u8]) -> StoreResult<Vec<(i64, String)>> {
        self.read("backup codes", |tx| {
            tx.rows(
                "SELECT id, hash FROM backup_codes
                 WHERE name = $1 AND tag = $2 AND used_at IS NULL ORDER BY id",
                args![user, tag],
            )?
            .into_iter()
            .map(|mut row| Ok((row.int(0)?, row.text(1)?)))
            .collect()
        })
    }

    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        sources: &[Source],
        audit: &AuditEvent,
    ) -> StoreResult<Option<u32>> {
        self.write("backup code", Durability::OnDisk, |tx| {
            let used = tx.exec(
                "UPDATE backup_codes SET used_at = $3
                 WHERE id = $1 AND name = $2 AND used_at IS NULL",
                args![id, user, audit.at],
            )?;
            if used != 1 {
                return Ok(None);
            }
            record_success(tx, user, method::BACKUP_CODE, sources, audit)?;
            Ok(Some(count_backup_codes(tx, user)?))
        })
    }

    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("backup codes", Durability::OnDisk, |tx| {
            // Locks the user against a concurrent disable or reset on another host.
            let sql = format!(
                "SELECT 1 FROM users WHERE name = $1{}",
                tx.dialect().for_update()
            );
            if tx.row(&sql, args![user])?.is_none() {
                return Ok(false);
            }
            insert_backup_codes(tx, user, codes)?;
            insert_audit(tx, audit)?;
            Ok(true)
        })
    }

    fn remove_user(&self, user: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("user", Durability::OnDisk, |tx| {
            let removed = tx.exec("DELETE FROM users WHERE name = $1", args![user])?;
            for table in [
                "devices",
                "backup_codes",
                "pending_enrollments",
                "throttle",
                "bypass_codes",
            ] {
                tx.exec(&format!("DELETE FROM {table} WHERE name = $1"), args![user])?;
            }
            if removed == 1 {
                insert_audit(tx, audit)?;
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
        let mut in_lock_order: Vec<usize> = (0..sources.len()).collect();
        in_lock_order.sort_by(|&a, &b| sources[a].key.cmp(&sources[b].key));
        self.write("throttle", Durability::OnDisk, |tx| {
            let mut counted = vec![(Throttle::default(), Throttle::default()); sources.len()];
            for &i in &in_lock_order {
                counted[i] = count_failure(tx, user, &sources[i], policy, audit.at)?;
            }
            insert_audit(tx, audit)?;
            // The last of `sources` whose counter this failure locked.
            let new_lockout = sources
                .iter()
                .zip(&counted)
                .rfind(|(_, (before, after))| after.lockouts > before.lockouts);
            if let Some((source, (_, after))) = new_lockout {
                insert_audit(
                    tx,
                    &AuditEvent {
                        event: "lockout",
                        detail: format!(
                            "{} locked for {} s",
                            source.key,
                            after.locked_until - audit.at
                        ),
                        ..audit.clone()
                    },
                )?;
            }
            Ok(strictest(counted.into_iter().map(|(_, after)| after)))
        })
    }

    fn purge_throttle(&self, now: i64, idle_before: i64) -> StoreResult<u64> {
        // Losing a purge in a crash costs nothing.
        self.write("throttle", Durability::Later, |tx| {
            tx.exec(
                "DELETE FROM throttle WHERE updated_at < $2 AND locked_until <= $1",
                args![now, idle_before],
            )
        })
    }

    fn purge_audit(&self, before: i64, max_rows: u64) -> StoreResult<u64> {
        // Ids are unique and only grow: none at or below this one is among the newest
        // `max_rows`.
        let newest = self.read("audit", |tx| {
            tx.row("SELECT coalesce(max(id), 0) FROM audit", args![])?
                .map_or(Ok(0), |mut row| row.int(0))
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
            // A batch per transaction: logins wait for one batch at most.
            loop {
                let n = self.write("audit", Durability::Later, |tx| {
                    tx.exec(sql, args![bound, PURGE_BATCH])
                })?;
                deleted += n;
                if (n as i64) < PURGE_BATCH {
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
        self.write("pending enrollment", Durability::OnDisk, |tx| {
            tx.exec(
                "INSERT INTO pending_enrollments (name, secret, expires_at, algorithm, digits,
                                                  period)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name) DO UPDATE
                 SET secret = $2, expires_at = $3, algorithm = $4, digits = $5, period = $6",
                args![
                    user,
                    &pending.secret_sealed,
                    pending.expires_at,
                    pending.oath.hash.name(),
                    Some(pending.oath.digits as i32),
                    Some(pending.oath.period() as i32)
                ],
            )?;
            insert_audit(tx, audit)
        })
    }

    fn confirm_enrollment(
        &self,
        user: &str,
        pending: &Pending,
        step: Option<u64>,
        codes: &[StoredBackupCode],
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("enrollment", Durability::OnDisk, |tx| {
            if !take_pending(tx, user, &pending.secret_sealed, audit.at)? {
                return Ok(false);
            }
            tx.exec(
                "INSERT INTO users (name, enrolled_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET enrolled_at = $2",
                args![user, audit.at],
            )?;
            // A new enrollment replaces every device.
            tx.exec("DELETE FROM devices WHERE name = $1", args![user])?;
            let first = NewDevice {
                name: limits::FIRST_DEVICE,
                kind: pending.kind(),
                secret_sealed: &pending.secret_sealed,
                oath: &pending.oath,
                last_step: step,
            };
            insert_device(tx, user, &first, audit.at)?;
            insert_backup_codes(tx, user, codes)?;
            tx.exec("DELETE FROM bypass_codes WHERE name = $1", args![user])?;
            insert_audit(tx, audit)?;
            Ok(true)
        })
    }

    fn add_device(
        &self,
        user: &str,
        device: &str,
        pending: &Pending,
        step: Option<u64>,
        max_devices: u32,
        audit: &AuditEvent,
    ) -> StoreResult<DeviceAdded> {
        self.write("devices", Durability::OnDisk, |tx| {
            let Some(devices) = locked_devices(tx, user)? else {
                return Ok(DeviceAdded::NotEnrolled);
            };
            if devices.iter().any(|d| d == device) {
                return Ok(DeviceAdded::NameTaken);
            }
            if devices.len() >= max_devices as usize {
                return Ok(DeviceAdded::Full);
            }
            if !take_pending(tx, user, &pending.secret_sealed, audit.at)? {
                return Ok(DeviceAdded::NoPending);
            }
            let added = NewDevice {
                name: device,
                kind: pending.kind(),
                secret_sealed: &pending.secret_sealed,
                oath: &pending.oath,
                last_step: step,
            };
            insert_device(tx, user, &added, audit.at)?;
            insert_audit(tx, audit)?;
            Ok(DeviceAdded::Added)
        })
    }

    fn remove_device(
        &self,
        user: &str,
        device: &str,
        audit: &AuditEvent,
    ) -> StoreResult<DeviceRemoved> {
        self.write("devices", Durability::OnDisk, |tx| {
            let devices = locked_devices(tx, user)?.unwrap_or_default();
            if !devices.iter().any(|d| d == device) {
                return Ok(DeviceRemoved::Unknown);
            }
            if devices.len() == 1 {
                return Ok(DeviceRemoved::Last);
            }
            tx.exec(
                "DELETE FROM devices WHERE name = $1 AND device = $2",
                args![user, device],
            )?;
            insert_audit(tx, audit)?;
            Ok(DeviceRemoved::Removed)
        })
    }
}

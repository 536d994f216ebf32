//! [`SessionStore`] on PostgreSQL: every host's sessions in one table, each row naming
//! its host; a revocation from another host is a request in the row that the owning
//! host's reaper carries out.

use tokio_postgres::{Client, Row, Transaction};

use super::{insert_audit, PostgresStore};
use crate::storage::{AuditEvent, AuthPass, SessionRecord, SessionStore, StoreResult};

const SESSION_COLUMNS: &str = "id, username, service, tty, rhost, ruser, host, boot_id,
    leader_pid, leader_start, logind_session, auth_method, auth_at, started, ended,
    end_reason, rhost_name, location, country_code, warned, revoke_requested";

fn session_row(row: &Row) -> SessionRecord {
    SessionRecord {
        id: row.get(0),
        user: row.get(1),
        service: row.get(2),
        tty: row.get(3),
        rhost: row.get(4),
        ruser: row.get(5),
        host: row.get(6),
        boot_id: row.get(7),
        leader_pid: row.get::<_, i64>(8) as u32,
        leader_start: row.get::<_, i64>(9) as u64,
        logind_session: row.get(10),
        auth_method: row.get(11),
        auth_at: row.get(12),
        started: row.get(13),
        ended: row.get(14),
        end_reason: row.get(15),
        rhost_name: row.get(16),
        location: row.get(17),
        country_code: row.get(18),
        warned: row.get(19),
        revoke_requested: row.get(20),
    }
}

fn pass_row(row: &Row) -> AuthPass {
    AuthPass {
        user: row.get(0),
        service: row.get(1),
        tty: row.get(2),
        rhost: row.get(3),
        at: row.get(4),
        method: row.get(5),
        caller_pid: row.get::<_, i64>(6) as u32,
        caller_ppid: row.get::<_, i64>(7) as u32,
        tty_sid: row.get::<_, i64>(8) as u32,
        tty_sid_start: row.get::<_, i64>(9) as u64,
        host: row.get(10),
        boot_id: row.get(11),
    }
}

impl PostgresStore {
    fn sessions_where(
        &self,
        clause: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause}");
        self.read("sessions", async |c: &mut Client| {
            let rows = c.query(&sql, args).await?;
            Ok(rows.iter().map(session_row).collect())
        })
    }
}

impl SessionStore for PostgresStore {
    fn insert_session(&self, s: &SessionRecord, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            let inserted = tx
                .execute(
                    "INSERT INTO sessions (id, username, service, tty, rhost, ruser, host,
                        boot_id, leader_pid, leader_start, logind_session, auth_method, auth_at,
                        started, ended, end_reason, rhost_name, location, country_code, warned)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL,
                        '', $15, $16, $17, false)
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &s.id,
                        &s.user,
                        &s.service,
                        &s.tty,
                        &s.rhost,
                        &s.ruser,
                        &s.host,
                        &s.boot_id,
                        &i64::from(s.leader_pid),
                        &(s.leader_start as i64),
                        &s.logind_session,
                        &s.auth_method,
                        &s.auth_at,
                        &s.started,
                        &s.rhost_name,
                        &s.location,
                        &s.country_code,
                    ],
                )
                .await?;
            if inserted == 1 {
                insert_audit(tx, audit).await?;
            }
            Ok(inserted == 1)
        })
    }

    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.sessions_where("id = $1", &[&id])?.into_iter().next())
    }

    fn user_sessions(
        &self,
        user: &str,
        ended_since: Option<i64>,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(
            "username = $1 AND (ended IS NULL OR ended >= $2) ORDER BY started DESC, id",
            &[&user, &ended_since.unwrap_or(i64::MAX)],
        )
    }

    fn host_live_sessions(&self, host: &str) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where("host = $1 AND ended IS NULL", &[&host])
    }

    fn live_session_count(&self, user: &str) -> StoreResult<u32> {
        self.read("sessions", async |c: &mut Client| {
            let row = c
                .query_one(
                    "SELECT count(*) FROM sessions WHERE username = $1 AND ended IS NULL",
                    &[&user],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u32)
        })
    }

    fn request_revoke(&self, id: &str, reason: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            let asked = tx
                .execute(
                    "UPDATE sessions SET revoke_requested = $2 WHERE id = $1 AND ended IS NULL",
                    &[&id, &reason],
                )
                .await?;
            if asked == 1 {
                insert_audit(tx, audit).await?;
            }
            Ok(asked == 1)
        })
    }

    fn end_session(
        &self,
        id: &str,
        at: i64,
        reason: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            let ended = tx
                .execute(
                    "UPDATE sessions SET ended = $2, end_reason = $3
                     WHERE id = $1 AND ended IS NULL",
                    &[&id, &at, &reason],
                )
                .await?;
            if ended == 1 {
                insert_audit(tx, audit).await?;
            }
            Ok(ended == 1)
        })
    }

    fn set_session_place(
        &self,
        id: &str,
        rhost_name: &str,
        location: &str,
        country_code: &str,
    ) -> StoreResult<()> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            tx.execute(
                "UPDATE sessions SET rhost_name = $2, location = $3, country_code = $4
                 WHERE id = $1",
                &[&id, &rhost_name, &location, &country_code],
            )
            .await
            .map(drop)
        })
    }

    fn mark_session_warned(&self, id: &str) -> StoreResult<()> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            tx.execute("UPDATE sessions SET warned = true WHERE id = $1", &[&id])
                .await
                .map(drop)
        })
    }

    fn record_auth_pass(&self, p: &AuthPass) -> StoreResult<()> {
        self.write("auth passes", async |tx: &Transaction<'_>| {
            tx.execute(
                "INSERT INTO auth_passes (username, service, tty, rhost, at, method, caller_pid,
                    caller_ppid, tty_sid, tty_sid_start, host, boot_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &p.user,
                    &p.service,
                    &p.tty,
                    &p.rhost,
                    &p.at,
                    &p.method,
                    &i64::from(p.caller_pid),
                    &i64::from(p.caller_ppid),
                    &i64::from(p.tty_sid),
                    &(p.tty_sid_start as i64),
                    &p.host,
                    &p.boot_id,
                ],
            )
            .await
            .map(drop)
        })
    }

    fn auth_passes(&self, user: &str, since: i64) -> StoreResult<Vec<AuthPass>> {
        self.read("auth passes", async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT username, service, tty, rhost, at, method, caller_pid, caller_ppid,
                            tty_sid, tty_sid_start, host, boot_id
                     FROM auth_passes WHERE username = $1 AND at >= $2
                     ORDER BY at DESC, id DESC LIMIT 1000",
                    &[&user, &since],
                )
                .await?;
            Ok(rows.iter().map(pass_row).collect())
        })
    }

    fn forget_auth_passes(&self, user: &str, audit: &AuditEvent) -> StoreResult<u32> {
        self.write("auth passes", async |tx: &Transaction<'_>| {
            let n = tx
                .execute("DELETE FROM auth_passes WHERE username = $1", &[&user])
                .await?;
            insert_audit(tx, audit).await?;
            Ok(n as u32)
        })
    }

    fn purge_sessions(&self, passes_before: i64, ended_before: i64) -> StoreResult<()> {
        self.write("sessions", async |tx: &Transaction<'_>| {
            tx.execute("DELETE FROM auth_passes WHERE at < $1", &[&passes_before])
                .await?;
            tx.execute(
                "DELETE FROM sessions WHERE ended IS NOT NULL AND ended < $1",
                &[&ended_before],
            )
            .await?;
            Ok(())
        })
    }

    fn session_timeout(&self, user: &str) -> StoreResult<Option<u64>> {
        self.read("session timeouts", async |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT seconds FROM session_timeouts WHERE name = $1",
                    &[&user],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
        })
    }

    fn session_timeouts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read("session timeouts", async |c: &mut Client| {
            let rows = c
                .query("SELECT name, seconds FROM session_timeouts", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
                .collect())
        })
    }

    fn set_session_timeout(
        &self,
        user: &str,
        seconds: Option<u64>,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write("session timeouts", async |tx: &Transaction<'_>| {
            match seconds {
                Some(s) => {
                    let s = s.min(i64::MAX as u64) as i64;
                    tx.execute(
                        "INSERT INTO session_timeouts (name, seconds) VALUES ($1, $2)
                         ON CONFLICT (name) DO UPDATE SET seconds = $2",
                        &[&user, &s],
                    )
                    .await?
                }
                None => {
                    tx.execute("DELETE FROM session_timeouts WHERE name = $1", &[&user])
                        .await?
                }
            };
            insert_audit(tx, audit).await
        })
    }
}

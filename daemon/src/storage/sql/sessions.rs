//! [`SessionStore`] once for every [`Backend`]: every host's sessions in one table
//! (shared in a fleet), each row naming its host; a revocation from another host is a
//! request in the row that the owning host's reaper carries out.

use super::store::insert_audit;
use super::{args, Backend, DbResult, Durability, Row, Value};
use crate::storage::{AuditEvent, AuthPass, SessionRecord, SessionStore, StoreResult};

const SESSION_COLUMNS: &str = "id, username, service, tty, rhost, ruser, host, boot_id,
    leader_pid, leader_start, logind_session, auth_method, auth_at, started, ended,
    end_reason, rhost_name, location, country_code, warned, revoke_requested";

/// Remembers a passed second factor (also `twofoldd migrate`'s copy).
pub const INSERT_AUTH_PASS: &str =
    "INSERT INTO auth_passes (username, service, tty, rhost, at, method, caller_pid, caller_ppid,
                              tty_sid, tty_sid_start, host, boot_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Every user's own session timeout (also what `twofoldd migrate` copies).
pub const SESSION_TIMEOUTS: &str = "SELECT name, seconds FROM session_timeouts";

fn session_row(mut row: Row) -> DbResult<SessionRecord> {
    Ok(SessionRecord {
        id: row.text(0)?,
        user: row.text(1)?,
        service: row.text(2)?,
        tty: row.text(3)?,
        rhost: row.text(4)?,
        ruser: row.text(5)?,
        host: row.text(6)?,
        boot_id: row.text(7)?,
        leader_pid: row.u32(8)?,
        leader_start: row.int(9)? as u64,
        logind_session: row.text(10)?,
        auth_method: row.text(11)?,
        auth_at: row.int(12)?,
        started: row.int(13)?,
        ended: row.opt_int(14)?,
        end_reason: row.text(15)?,
        rhost_name: row.text(16)?,
        location: row.text(17)?,
        country_code: row.text(18)?,
        warned: row.bool(19)?,
        revoke_requested: row.text(20)?,
    })
}

fn pass_row(mut row: Row) -> DbResult<AuthPass> {
    Ok(AuthPass {
        user: row.text(0)?,
        service: row.text(1)?,
        tty: row.text(2)?,
        rhost: row.text(3)?,
        at: row.int(4)?,
        method: row.text(5)?,
        caller_pid: row.u32(6)?,
        caller_ppid: row.u32(7)?,
        tty_sid: row.u32(8)?,
        tty_sid_start: row.int(9)? as u64,
        host: row.text(10)?,
        boot_id: row.text(11)?,
    })
}

/// The sessions matching `clause`.
fn sessions_where<B: Backend>(
    store: &B,
    clause: &str,
    args: &[Value<'_>],
) -> StoreResult<Vec<SessionRecord>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause}");
    store.read("sessions", |tx| {
        tx.rows(&sql, args)?.into_iter().map(session_row).collect()
    })
}

/// What a write of a single statement changed is confirmed by an audit entry.
fn audited_update<B: Backend>(
    store: &B,
    sql: &str,
    args: &[Value<'_>],
    audit: &AuditEvent,
) -> StoreResult<bool> {
    store.write("sessions", Durability::OnDisk, |tx| {
        let changed = tx.exec(sql, args)?;
        if changed == 1 {
            insert_audit(tx, audit)?;
        }
        Ok(changed == 1)
    })
}

impl<B: Backend> SessionStore for B {
    fn insert_session(&self, s: &SessionRecord, audit: &AuditEvent) -> StoreResult<bool> {
        audited_update(
            self,
            "INSERT INTO sessions (id, username, service, tty, rhost, ruser, host, boot_id,
                leader_pid, leader_start, logind_session, auth_method, auth_at, started, ended,
                end_reason, rhost_name, location, country_code, warned)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, '',
                $15, $16, $17, $18)
             ON CONFLICT (id) DO NOTHING",
            args![
                &s.id,
                &s.user,
                &s.service,
                &s.tty,
                &s.rhost,
                &s.ruser,
                &s.host,
                &s.boot_id,
                i64::from(s.leader_pid),
                s.leader_start as i64,
                &s.logind_session,
                &s.auth_method,
                s.auth_at,
                s.started,
                &s.rhost_name,
                &s.location,
                &s.country_code,
                false,
            ],
            audit,
        )
    }

    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(sessions_where(self, "id = $1", args![id])?
            .into_iter()
            .next())
    }

    fn user_sessions(
        &self,
        user: &str,
        ended_since: Option<i64>,
    ) -> StoreResult<Vec<SessionRecord>> {
        sessions_where(
            self,
            "username = $1 AND (ended IS NULL OR ended >= $2) ORDER BY started DESC, id",
            args![user, ended_since.unwrap_or(i64::MAX)],
        )
    }

    fn host_live_sessions(&self, host: &str) -> StoreResult<Vec<SessionRecord>> {
        sessions_where(self, "host = $1 AND ended IS NULL", args![host])
    }

    fn live_session_count(&self, user: &str) -> StoreResult<u32> {
        self.read("sessions", |tx| {
            tx.row(
                "SELECT count(*) FROM sessions WHERE username = $1 AND ended IS NULL",
                args![user],
            )?
            .map_or(Ok(0), |mut row| row.u32(0))
        })
    }

    fn request_revoke(&self, id: &str, reason: &str, audit: &AuditEvent) -> StoreResult<bool> {
        audited_update(
            self,
            "UPDATE sessions SET revoke_requested = $2 WHERE id = $1 AND ended IS NULL",
            args![id, reason],
            audit,
        )
    }

    fn end_session(
        &self,
        id: &str,
        at: i64,
        reason: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        audited_update(
            self,
            "UPDATE sessions SET ended = $2, end_reason = $3 WHERE id = $1 AND ended IS NULL",
            args![id, at, reason],
            audit,
        )
    }

    fn set_session_place(
        &self,
        id: &str,
        rhost_name: &str,
        location: &str,
        country_code: &str,
    ) -> StoreResult<()> {
        self.write("sessions", Durability::OnDisk, |tx| {
            tx.exec(
                "UPDATE sessions SET rhost_name = $2, location = $3, country_code = $4
                 WHERE id = $1",
                args![id, rhost_name, location, country_code],
            )
            .map(drop)
        })
    }

    fn mark_session_warned(&self, id: &str) -> StoreResult<()> {
        self.write("sessions", Durability::OnDisk, |tx| {
            tx.exec(
                "UPDATE sessions SET warned = $2 WHERE id = $1",
                args![id, true],
            )
            .map(drop)
        })
    }

    fn record_auth_pass(&self, p: &AuthPass) -> StoreResult<()> {
        // Lost in a crash, a pass only means a code is asked again.
        self.write("auth passes", Durability::Later, |tx| {
            tx.exec(
                INSERT_AUTH_PASS,
                args![
                    &p.user,
                    &p.service,
                    &p.tty,
                    &p.rhost,
                    p.at,
                    &p.method,
                    i64::from(p.caller_pid),
                    i64::from(p.caller_ppid),
                    i64::from(p.tty_sid),
                    p.tty_sid_start as i64,
                    &p.host,
                    &p.boot_id,
                ],
            )
            .map(drop)
        })
    }

    fn auth_passes(&self, user: &str, since: i64) -> StoreResult<Vec<AuthPass>> {
        self.read("auth passes", |tx| {
            tx.rows(
                "SELECT username, service, tty, rhost, at, method, caller_pid, caller_ppid,
                        tty_sid, tty_sid_start, host, boot_id
                 FROM auth_passes WHERE username = $1 AND at >= $2
                 ORDER BY at DESC, id DESC LIMIT 1000",
                args![user, since],
            )?
            .into_iter()
            .map(pass_row)
            .collect()
        })
    }

    fn forget_auth_passes(&self, user: &str, audit: &AuditEvent) -> StoreResult<u32> {
        self.write("auth passes", Durability::OnDisk, |tx| {
            let n = tx.exec("DELETE FROM auth_passes WHERE username = $1", args![user])?;
            insert_audit(tx, audit)?;
            Ok(n as u32)
        })
    }

    fn purge_sessions(&self, passes_before: i64, ended_before: i64) -> StoreResult<()> {
        self.write("sessions", Durability::OnDisk, |tx| {
            tx.exec(
                "DELETE FROM auth_passes WHERE at < $1",
                args![passes_before],
            )?;
            tx.exec(
                "DELETE FROM sessions WHERE ended IS NOT NULL AND ended < $1",
                args![ended_before],
            )?;
            Ok(())
        })
    }

    fn session_timeout(&self, user: &str) -> StoreResult<Option<u64>> {
        self.read("session timeouts", |tx| {
            tx.row(
                "SELECT seconds FROM session_timeouts WHERE name = $1",
                args![user],
            )?
            .map(|mut row| Ok(row.int(0)?.max(0) as u64))
            .transpose()
        })
    }

    fn session_timeouts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read("session timeouts", |tx| {
            tx.rows(SESSION_TIMEOUTS, args![])?
                .into_iter()
                .map(|mut row| Ok((row.text(0)?, row.int(1)?.max(0) as u64)))
                .collect()
        })
    }

    fn set_session_timeout(
        &self,
        user: &str,
        seconds: Option<u64>,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write("session timeouts", Durability::OnDisk, |tx| {
            match seconds {
                Some(s) => tx.exec(
                    "INSERT INTO session_timeouts (name, seconds) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET seconds = $2",
                    args![user, s.min(i64::MAX as u64) as i64],
                ),
                None => tx.exec("DELETE FROM session_timeouts WHERE name = $1", args![user]),
            }?;
            insert_audit(tx, audit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::alices_event as event;
    use crate::storage::sqlite::SqliteStore;

    fn session(id: &str, started: i64) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            user: "alice".into(),
            service: "sshd".into(),
            host: "h".into(),
            leader_pid: 42,
            leader_start: 7,
            started,
            ..Default::default()
        }
    }

    #[test]
    fn sessions_open_end_once_and_list() {
        let store = SqliteStore::in_memory();
        assert!(store
            .insert_session(&session("a1", 10), &event(10))
            .unwrap());
        assert!(!store
            .insert_session(&session("a1", 11), &event(11))
            .unwrap());
        assert!(store
            .insert_session(&session("b2", 20), &event(20))
            .unwrap());
        assert_eq!(store.live_session_count("alice").unwrap(), 2);
        assert!(store.end_session("a1", 30, "closed", &event(30)).unwrap());
        assert!(!store.end_session("a1", 31, "again", &event(31)).unwrap());
        let live = store.user_sessions("alice", None).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, "b2");
        let all = store.user_sessions("alice", Some(0)).unwrap();
        assert_eq!(all.len(), 2);
        let a1 = store.session("a1").unwrap().unwrap();
        assert_eq!((a1.ended, a1.end_reason.as_str()), (Some(30), "closed"));
        assert_eq!(store.host_live_sessions("h").unwrap().len(), 1);
        store.purge_sessions(0, 31).unwrap();
        assert!(store.session("a1").unwrap().is_none());
    }

    #[test]
    fn passes_and_timeouts() {
        let store = SqliteStore::in_memory();
        let pass = AuthPass {
            user: "alice".into(),
            service: "sudo".into(),
            tty: "/dev/pts/1".into(),
            at: 100,
            method: "totp".into(),
            tty_sid: 5,
            tty_sid_start: 99,
            ..Default::default()
        };
        store.record_auth_pass(&pass).unwrap();
        assert_eq!(store.auth_passes("alice", 50).unwrap(), vec![pass]);
        assert!(store.auth_passes("alice", 101).unwrap().is_empty());
        assert_eq!(store.forget_auth_passes("alice", &event(1)).unwrap(), 1);
        assert!(store.auth_passes("alice", 0).unwrap().is_empty());
        assert_eq!(store.session_timeout("alice").unwrap(), None);
        store
            .set_session_timeout("alice", Some(600), &event(1))
            .unwrap();
        assert_eq!(store.session_timeout("alice").unwrap(), Some(600));
        assert_eq!(
            store.session_timeouts().unwrap(),
            vec![("alice".into(), 600)]
        );
        store.set_session_timeout("alice", None, &event(1)).unwrap();
        assert_eq!(store.session_timeout("alice").unwrap(), None);
    }
}

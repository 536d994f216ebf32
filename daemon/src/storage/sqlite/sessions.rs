//! [`SessionStore`] on SQLite (schema: migration 4 in `sqlite.rs`).

use rusqlite::{params, OptionalExtension, Row};

use super::{err, insert_audit, Cached, SqliteStore};
use crate::storage::{AuditEvent, AuthPass, SessionRecord, SessionStore, StoreResult};

const SESSION_COLUMNS: &str = "id, user, service, tty, rhost, ruser, host, boot_id, leader_pid,
    leader_start, logind_session, auth_method, auth_at, started, ended, end_reason, rhost_name,
    location, country_code, warned, revoke_requested";

fn session_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        service: row.get(2)?,
        tty: row.get(3)?,
        rhost: row.get(4)?,
        ruser: row.get(5)?,
        host: row.get(6)?,
        boot_id: row.get(7)?,
        leader_pid: row.get(8)?,
        leader_start: row.get::<_, i64>(9)? as u64,
        logind_session: row.get(10)?,
        auth_method: row.get(11)?,
        auth_at: row.get(12)?,
        started: row.get(13)?,
        ended: row.get(14)?,
        end_reason: row.get(15)?,
        rhost_name: row.get(16)?,
        location: row.get(17)?,
        country_code: row.get(18)?,
        warned: row.get(19)?,
        revoke_requested: row.get(20)?,
    })
}

fn pass_row(row: &Row<'_>) -> rusqlite::Result<AuthPass> {
    Ok(AuthPass {
        user: row.get(0)?,
        service: row.get(1)?,
        tty: row.get(2)?,
        rhost: row.get(3)?,
        at: row.get(4)?,
        method: row.get(5)?,
        caller_pid: row.get(6)?,
        caller_ppid: row.get(7)?,
        tty_sid: row.get(8)?,
        tty_sid_start: row.get::<_, i64>(9)? as u64,
        host: row.get(10)?,
        boot_id: row.get(11)?,
    })
}

impl SqliteStore {
    fn sessions_where(
        &self,
        clause: &str,
        args: impl rusqlite::Params,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.with_conn(|conn| {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause}");
            let mut stmt = conn.prepare_cached(&sql).map_err(err("sessions"))?;
            let rows = stmt.query_map(args, session_row).map_err(err("sessions"))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err("sessions"))
        })
    }
}

impl SessionStore for SqliteStore {
    fn insert_session(&self, s: &SessionRecord, audit: &AuditEvent) -> StoreResult<bool> {
        self.write(|tx| {
            let inserted = tx
                .exec(
                    "INSERT OR IGNORE INTO sessions (id, user, service, tty, rhost, ruser, host,
                        boot_id, leader_pid, leader_start, logind_session, auth_method, auth_at,
                        started, ended, end_reason, rhost_name, location, country_code, warned)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, '',
                        ?15, ?16, ?17, 0)",
                    params![
                        s.id,
                        s.user,
                        s.service,
                        s.tty,
                        s.rhost,
                        s.ruser,
                        s.host,
                        s.boot_id,
                        s.leader_pid,
                        s.leader_start as i64,
                        s.logind_session,
                        s.auth_method,
                        s.auth_at,
                        s.started,
                        s.rhost_name,
                        s.location,
                        s.country_code
                    ],
                )
                .map_err(err("sessions"))?;
            if inserted == 1 {
                insert_audit(tx, audit)?;
            }
            Ok(inserted == 1)
        })
    }

    fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.with_conn(|conn| {
            conn.row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"),
                params![id],
                session_row,
            )
            .optional()
            .map_err(err("sessions"))
        })
    }

    fn user_sessions(
        &self,
        user: &str,
        ended_since: Option<i64>,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where(
            "user = ?1 AND (ended IS NULL OR ended >= ?2) ORDER BY started DESC, id",
            params![user, ended_since.unwrap_or(i64::MAX)],
        )
    }

    fn host_live_sessions(&self, host: &str) -> StoreResult<Vec<SessionRecord>> {
        self.sessions_where("host = ?1 AND ended IS NULL", params![host])
    }

    fn live_session_count(&self, user: &str) -> StoreResult<u32> {
        self.with_conn(|conn| {
            conn.row(
                "SELECT count(*) FROM sessions WHERE user = ?1 AND ended IS NULL",
                params![user],
                |row| row.get(0),
            )
            .map_err(err("sessions"))
        })
    }

    fn request_revoke(&self, id: &str, reason: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.write(|tx| {
            let asked = tx
                .exec(
                    "UPDATE sessions SET revoke_requested = ?2 WHERE id = ?1 AND ended IS NULL",
                    params![id, reason],
                )
                .map_err(err("sessions"))?;
            if asked == 1 {
                insert_audit(tx, audit)?;
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
        self.write(|tx| {
            let ended = tx
                .exec(
                    "UPDATE sessions SET ended = ?2, end_reason = ?3
                     WHERE id = ?1 AND ended IS NULL",
                    params![id, at, reason],
                )
                .map_err(err("sessions"))?;
            if ended == 1 {
                insert_audit(tx, audit)?;
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
        self.write(|tx| {
            tx.exec(
                "UPDATE sessions SET rhost_name = ?2, location = ?3, country_code = ?4
                 WHERE id = ?1",
                params![id, rhost_name, location, country_code],
            )
            .map_err(err("sessions"))?;
            Ok(())
        })
    }

    fn mark_session_warned(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec("UPDATE sessions SET warned = 1 WHERE id = ?1", params![id])
                .map_err(err("sessions"))?;
            Ok(())
        })
    }

    fn record_auth_pass(&self, p: &AuthPass) -> StoreResult<()> {
        // Lost in a crash, a pass only means a code is asked again.
        self.write_unsynced(|tx| {
            tx.exec(
                "INSERT INTO auth_passes (user, service, tty, rhost, at, method, caller_pid,
                    caller_ppid, tty_sid, tty_sid_start, host, boot_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    p.user,
                    p.service,
                    p.tty,
                    p.rhost,
                    p.at,
                    p.method,
                    p.caller_pid,
                    p.caller_ppid,
                    p.tty_sid,
                    p.tty_sid_start as i64,
                    p.host,
                    p.boot_id
                ],
            )
            .map_err(err("auth passes"))?;
            Ok(())
        })
    }

    fn auth_passes(&self, user: &str, since: i64) -> StoreResult<Vec<AuthPass>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT user, service, tty, rhost, at, method, caller_pid, caller_ppid,
                            tty_sid, tty_sid_start, host, boot_id
                     FROM auth_passes WHERE user = ?1 AND at >= ?2
                     ORDER BY at DESC, id DESC LIMIT 1000",
                )
                .map_err(err("auth passes"))?;
            let rows = stmt
                .query_map(params![user, since], pass_row)
                .map_err(err("auth passes"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(err("auth passes"))
        })
    }

    fn forget_auth_passes(&self, user: &str, audit: &AuditEvent) -> StoreResult<u32> {
        self.write(|tx| {
            let n = tx
                .exec("DELETE FROM auth_passes WHERE user = ?1", params![user])
                .map_err(err("auth passes"))?;
            insert_audit(tx, audit)?;
            Ok(n as u32)
        })
    }

    fn purge_sessions(&self, passes_before: i64, ended_before: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.exec(
                "DELETE FROM auth_passes WHERE at < ?1",
                params![passes_before],
            )
            .map_err(err("auth passes"))?;
            tx.exec(
                "DELETE FROM sessions WHERE ended IS NOT NULL AND ended < ?1",
                params![ended_before],
            )
            .map_err(err("sessions"))?;
            Ok(())
        })
    }

    fn session_timeout(&self, user: &str) -> StoreResult<Option<u64>> {
        self.with_conn(|conn| {
            conn.row(
                "SELECT seconds FROM session_timeouts WHERE name = ?1",
                params![user],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s.max(0) as u64))
            .map_err(err("session timeouts"))
        })
    }

    fn session_timeouts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, seconds FROM session_timeouts")
                .map_err(err("session timeouts"))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?.max(0) as u64,
                    ))
                })
                .map_err(err("session timeouts"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(err("session timeouts"))
        })
    }

    fn set_session_timeout(
        &self,
        user: &str,
        seconds: Option<u64>,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.write(|tx| {
            match seconds {
                Some(s) => tx.exec(
                    "INSERT INTO session_timeouts (name, seconds) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET seconds = ?2",
                    params![user, s.min(i64::MAX as u64) as i64],
                ),
                None => tx.exec(
                    "DELETE FROM session_timeouts WHERE name = ?1",
                    params![user],
                ),
            }
            .map_err(err("session timeouts"))?;
            insert_audit(tx, audit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64) -> AuditEvent {
        AuditEvent {
            at,
            user: "alice".into(),
            event: "test",
            ..Default::default()
        }
    }

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

//! [`TokenStore`] once for every [`Backend`]. The token's row is locked (`FOR UPDATE`)
//! by every change of its assignment, so that two assignments of one token, on one
//! host or two, take turns and the second finds it taken. (An HOTP acceptance locks its
//! device's row, then the token's; a change here locks the token's first: the rare
//! deadlock of the two is retried by the store, see `Backend::write`.)

use super::store::{insert_audit, insert_device, locked_devices, oath_of, NewDevice};
use super::{args, Backend, DbResult, Durability, Row, Tx};
use crate::storage::tokens::{
    token_kind, NewToken, StoredToken, TokenAssigned, TokenImport, TokenResynced, TokenStore,
    TokenUnassigned,
};
use crate::storage::{AuditEvent, StoreResult};

/// Serials named in an import's audit entry; more are counted.
const SERIALS_AUDITED: usize = 20;

const TOKEN_COLUMNS: &str = "t.serial, t.kind, t.secret, t.algorithm, t.digits, t.period,
    t.counter, t.manufacturer, t.model, t.imported_at, d.name, d.last_used_at";

fn token_row(mut row: Row) -> DbResult<StoredToken> {
    Ok(StoredToken {
        serial: row.text(0)?,
        kind: row.text(1)?,
        secret_sealed: row.bytes(2)?,
        oath: oath_of(&mut row, 3)?,
        counter: row.int(6)? as u64,
        manufacturer: row.text(7)?,
        model: row.text(8)?,
        imported_at: row.int(9)?,
        assigned_to: row.opt_text(10)?,
        last_used_at: row.opt_int(11)?,
    })
}

/// After an HOTP code of the user's `device` passed with counter value `watermark`:
/// the token that device is (if one) expects the next value, in the same transaction.
pub(super) fn advance_counter(
    tx: &dyn Tx,
    user: &str,
    device: &str,
    watermark: i64,
) -> DbResult<()> {
    tx.exec(
        "UPDATE tokens SET counter = $3
         WHERE serial = (SELECT token FROM devices WHERE name = $1 AND device = $2)
           AND counter < $3",
        args![user, device, watermark + 1],
    )
    .map(drop)
}

/// Locks the token's row; its counter and parameters.
fn locked_token(tx: &dyn Tx, serial: &str) -> DbResult<Option<(u64, crate::otp::Oath)>> {
    let sql = format!(
        "SELECT counter, algorithm, digits, period FROM tokens WHERE serial = $1{}",
        tx.dialect().for_update()
    );
    tx.row(&sql, args![serial])?
        .map(|mut row| Ok((row.int(0)? as u64, oath_of(&mut row, 1)?)))
        .transpose()
}

/// The user whose device the token is.
fn holder(tx: &dyn Tx, serial: &str) -> DbResult<Option<String>> {
    tx.row("SELECT name FROM devices WHERE token = $1", args![serial])?
        .map(|mut row| row.text(0))
        .transpose()
}

/// "imported 3: a, b, c; 1 known already (left alone): d".
fn import_detail(imported: &[&str], skipped: &[String]) -> String {
    let listed = |serials: &mut dyn Iterator<Item = &str>, n: usize| {
        let shown: Vec<&str> = serials.take(SERIALS_AUDITED).collect();
        let more = n.saturating_sub(shown.len());
        let mut text = shown.join(", ");
        if more > 0 {
            text += &format!(" and {more} more");
        }
        text
    };
    let mut detail = format!(
        "imported {}: {}",
        imported.len(),
        listed(&mut imported.iter().copied(), imported.len())
    );
    if !skipped.is_empty() {
        detail += &format!(
            "; {} known already (left alone): {}",
            skipped.len(),
            listed(&mut skipped.iter().map(String::as_str), skipped.len())
        );
    }
    detail
}

impl<B: Backend> TokenStore for B {
    fn import_tokens(
        &self,
        tokens: &[NewToken],
        max_tokens: u64,
        audit: &AuditEvent,
    ) -> StoreResult<TokenImport> {
        self.write("tokens", Durability::OnDisk, |tx| {
            let mut known = Vec::new();
            for token in tokens {
                if tx
                    .row(
                        "SELECT 1 FROM tokens WHERE serial = $1",
                        args![&token.serial],
                    )?
                    .is_some()
                {
                    known.push(token.serial.as_str());
                }
            }
            let held = tx
                .row("SELECT count(*) FROM tokens", args![])?
                .map_or(Ok(0), |mut row| row.int(0))? as u64;
            let new = (tokens.len() - known.len()) as u64;
            if held + new > max_tokens {
                return Ok(TokenImport::Full {
                    room: max_tokens.saturating_sub(held),
                });
            }
            let mut imported = Vec::new();
            let mut skipped = Vec::new();
            for token in tokens {
                let added = tx.exec(
                    "INSERT INTO tokens (serial, kind, secret, algorithm, digits, period,
                                         counter, manufacturer, model, imported_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (serial) DO NOTHING",
                    args![
                        &token.serial,
                        token_kind(&token.oath),
                        &token.secret_sealed,
                        token.oath.hash.name(),
                        Some(token.oath.digits as i32),
                        Some(token.oath.period() as i32),
                        token.counter as i64,
                        &token.manufacturer,
                        &token.model,
                        audit.at,
                    ],
                )?;
                if added == 1 {
                    imported.push(token.serial.as_str());
                } else {
                    skipped.push(token.serial.clone());
                }
            }
            let detail = import_detail(&imported, &skipped);
            insert_audit(
                tx,
                &AuditEvent {
                    detail,
                    ..audit.clone()
                },
            )?;
            Ok(TokenImport::Done {
                imported: imported.len() as u32,
                skipped,
            })
        })
    }

    fn tokens(&self) -> StoreResult<Vec<StoredToken>> {
        self.read("tokens", |tx| {
            tx.rows(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens t LEFT JOIN devices d ON d.token = t.serial
                     ORDER BY t.serial"
                ),
                args![],
            )?
            .into_iter()
            .map(token_row)
            .collect()
        })
    }

    fn token(&self, serial: &str) -> StoreResult<Option<StoredToken>> {
        self.read("tokens", |tx| {
            tx.row(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens t LEFT JOIN devices d ON d.token = t.serial
                     WHERE t.serial = $1"
                ),
                args![serial],
            )?
            .map(token_row)
            .transpose()
        })
    }

    fn assign_token(
        &self,
        serial: &str,
        user: &str,
        secret_sealed: &[u8],
        max_devices: u32,
        audit: &AuditEvent,
    ) -> StoreResult<TokenAssigned> {
        self.write("tokens", Durability::OnDisk, |tx| {
            let Some((counter, oath)) = locked_token(tx, serial)? else {
                return Ok(TokenAssigned::UnknownToken);
            };
            if let Some(holder) = holder(tx, serial)? {
                return Ok(TokenAssigned::AssignedTo(holder));
            }
            // A user not enrolled is, with the token as their first device.
            tx.exec(
                "INSERT INTO users (name, enrolled_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                args![user, audit.at],
            )?;
            let devices = locked_devices(tx, user)?.unwrap_or_default();
            if devices.iter().any(|d| d == serial) {
                return Ok(TokenAssigned::NameTaken);
            }
            if devices.len() >= max_devices as usize {
                return Ok(TokenAssigned::Full);
            }
            let last_step = match oath.step_at(audit.at.max(0) as u64) {
                Some(now_step) => Some(now_step),
                None => counter.checked_sub(1),
            };
            let device = NewDevice {
                name: serial,
                kind: token_kind(&oath),
                secret_sealed,
                oath: &oath,
                last_step,
            };
            insert_device(tx, user, &device, audit.at)?;
            tx.exec(
                "UPDATE devices SET token = $3 WHERE name = $1 AND device = $2",
                args![user, serial, serial],
            )?;
            insert_audit(tx, audit)?;
            Ok(TokenAssigned::Assigned)
        })
    }

    fn unassign_token(&self, serial: &str, audit: &AuditEvent) -> StoreResult<TokenUnassigned> {
        self.write("tokens", Durability::OnDisk, |tx| {
            if locked_token(tx, serial)?.is_none() {
                return Ok(TokenUnassigned::UnknownToken);
            }
            let Some(user) = holder(tx, serial)? else {
                return Ok(TokenUnassigned::NotAssigned);
            };
            let devices = locked_devices(tx, &user)?.unwrap_or_default();
            if devices.len() <= 1 {
                return Ok(TokenUnassigned::Last(user));
            }
            tx.exec("DELETE FROM devices WHERE token = $1", args![serial])?;
            insert_audit(
                tx,
                &AuditEvent {
                    user: user.clone(),
                    ..audit.clone()
                },
            )?;
            Ok(TokenUnassigned::Unassigned(user))
        })
    }

    fn resync_token(
        &self,
        serial: &str,
        watermark: u64,
        audit: &AuditEvent,
    ) -> StoreResult<TokenResynced> {
        let watermark = watermark as i64;
        self.write("tokens", Durability::OnDisk, |tx| {
            if locked_token(tx, serial)?.is_none() {
                return Ok(TokenResynced::UnknownToken);
            }
            let moved = tx.exec(
                "UPDATE tokens SET counter = $2 WHERE serial = $1 AND counter < $2",
                args![serial, watermark + 1],
            )?;
            if moved == 0 {
                return Ok(TokenResynced::Overtaken);
            }
            tx.exec(
                "UPDATE devices SET last_step = $2
                 WHERE token = $1 AND (last_step IS NULL OR last_step < $2)",
                args![serial, watermark],
            )?;
            let user = holder(tx, serial)?.unwrap_or_default();
            insert_audit(
                tx,
                &AuditEvent {
                    user,
                    ..audit.clone()
                },
            )?;
            Ok(TokenResynced::Resynced)
        })
    }
}

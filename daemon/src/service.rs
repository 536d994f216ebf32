//! What the daemon does, independent of D-Bus: status, verification, enrollment.
//!
//! Callers arrive here already authorized (see `dbus::authorize`), with the target user
//! resolved. All functions are synchronous and may block (Argon2, SQLite commits, NSS):
//! the bus layer runs them on the blocking thread pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use twofold_contract::{context, method, Enrollment, TwofoldError, UserStatus, Verified};

use crate::backup_codes;
use crate::logging::safe;
use crate::otp;
use crate::policy::Policy;
use crate::secrets::Keys;
use crate::storage::{AuditEvent, Pending, Store, StoreError, StoredBackupCode};

/// Who is calling, from D-Bus credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Unix uid of the connection.
    pub uid: u32,
    /// Process id of the connection, when the bus knows it.
    pub pid: Option<u32>,
}

/// The daemon's state shared by every request.
pub struct Service {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub policy: Policy,
    pub hostname: String,
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn internal(e: StoreError) -> TwofoldError {
    log::error!("storage failure: {e}");
    TwofoldError::Internal("twofoldd could not reach its database; see its log".into())
}

fn locked_message(seconds: i64) -> String {
    format!("Too many failed attempts. Try again in {seconds} seconds.")
}

impl Service {
    fn event(&self, caller: Caller, user: &str, event: &'static str) -> AuditEvent {
        AuditEvent {
            at: now(),
            actor_uid: Some(caller.uid),
            actor_pid: caller.pid,
            user: user.to_string(),
            event,
            ..Default::default()
        }
    }

    /// `Status`: enrollment, backup codes, lockout.
    pub fn status(&self, user: &str) -> Result<UserStatus, TwofoldError> {
        let now = now();
        let record = self.store.user(user).map_err(internal)?;
        let throttle = self.store.throttle(user).map_err(internal)?;
        let backup_codes_left = match record {
            Some(_) => self.store.backup_codes_left(user).map_err(internal)?,
            None => 0,
        };
        let pending = self.store.pending(user, now).map_err(internal)?;
        Ok(UserStatus {
            user: user.to_string(),
            enrolled: record.is_some(),
            enrolled_since: record.as_ref().map_or(0, |r| r.enrolled_at),
            backup_codes_left,
            failures: throttle.failures,
            locked_until: throttle
                .locked_for(now)
                .map_or(0, |_| throttle.locked_until),
            pending_enrollment: pending.is_some(),
        })
    }

    /// `Verify`: one attempt with a TOTP code or a backup code.
    pub fn verify(
        &self,
        caller: Caller,
        user: &str,
        code: &str,
        ctx: &HashMap<String, String>,
    ) -> Result<Verified, TwofoldError> {
        let mut event = self.event(caller, user, "verify_ok");
        let field = |key: &str| ctx.get(key).map(|v| safe(v)).unwrap_or_default();
        event.service = field(context::SERVICE);
        event.tty = field(context::TTY);
        event.rhost = field(context::RHOST);
        let where_ = format!(
            "user={} service={} rhost={}",
            safe(user),
            event.service,
            event.rhost
        );

        let throttle = self.store.throttle(user).map_err(internal)?;
        if let Some(seconds) = throttle.locked_for(event.at) {
            log::warn!("refused while locked out: {where_}");
            return Err(TwofoldError::Locked(locked_message(seconds)));
        }
        let Some(record) = self.store.user(user).map_err(internal)? else {
            return Err(TwofoldError::NotEnrolled(format!(
                "{user} has not enrolled in two-factor authentication"
            )));
        };

        let code = code.trim();
        let outcome = if code.is_empty() {
            Err(Refused::Malformed("empty code", "No code was entered."))
        } else if code.len() > twofold_contract::MAX_CODE_LEN {
            Err(Refused::Malformed(
                "over-long code",
                "That code is far too long.",
            ))
        } else if otp::looks_like_totp(code) {
            self.verify_totp(user, code, &record, &event)
        } else if let Some(normalized) = backup_codes::normalize(code) {
            self.verify_backup_code(user, &normalized, &event)
        } else {
            Err(Refused::Wrong("not a code"))
        };

        let (why, reply) = match outcome {
            Ok(verified) => {
                log::info!("verified by {}: {where_}", verified.method);
                return Ok(verified);
            }
            Err(Refused::Broken(error)) => return Err(*error),
            Err(Refused::Wrong(why)) => (why, invalid_code()),
            Err(Refused::Malformed(why, message)) => {
                (why, TwofoldError::InvalidArgument(message.into()))
            }
        };
        event.event = "verify_failed";
        event.detail = why.to_string();
        let after = self
            .store
            .record_failure(user, &self.policy.lockout, &event)
            .map_err(internal)?;
        match after.locked_for(event.at) {
            Some(seconds) => {
                log::warn!("verification failed ({why}), now locked out for {seconds} s: {where_}");
                Err(TwofoldError::Locked(locked_message(seconds)))
            }
            None => {
                log::warn!("verification failed ({why}): {where_}");
                Err(reply)
            }
        }
    }

    fn verify_totp(
        &self,
        user: &str,
        code: &str,
        record: &crate::storage::UserRecord,
        event: &AuditEvent,
    ) -> Result<Verified, Refused> {
        let secret = self.keys.open(user, &record.secret_sealed).map_err(|e| {
            log::error!("cannot open the secret of {}: {e}", safe(user));
            Refused::Broken(Box::new(TwofoldError::Internal(
                "twofoldd cannot read this user's secret; see its log".into(),
            )))
        })?;
        let now_step = otp::step_at(event.at as u64);
        let step = otp::matching_step(
            &secret,
            code,
            now_step,
            self.policy.totp_window,
            record.last_step,
        )
        .ok_or(Refused::Wrong("wrong or used code"))?;
        let mut event = event.clone();
        let step_offset = step as i64 - now_step as i64;
        event.detail = format!("step_offset={step_offset}");
        match self.store.accept_totp_step(user, step, &event) {
            Ok(true) => Ok(Verified {
                method: method::TOTP.into(),
                backup_codes_left: self.store.backup_codes_left(user).unwrap_or(0),
                step_offset: step_offset as i32,
            }),
            Ok(false) => Err(Refused::Wrong("code already used")),
            Err(e) => Err(Refused::Broken(Box::new(internal(e)))),
        }
    }

    fn verify_backup_code(
        &self,
        user: &str,
        normalized: &str,
        event: &AuditEvent,
    ) -> Result<Verified, Refused> {
        let tag = self.keys.backup_code_tag(user, normalized);
        let candidates = self
            .store
            .backup_code_candidates(user, &tag)
            .map_err(|e| Refused::Broken(Box::new(internal(e))))?;
        // The tag is 64 bits: more than one candidate does not happen; if it ever did, the
        // first is checked, and an attempt still costs exactly one Argon2 evaluation.
        let Some((id, hash)) = candidates.into_iter().next() else {
            backup_codes::verify_nothing(normalized);
            return Err(Refused::Wrong("wrong or used backup code"));
        };
        if !backup_codes::verify(normalized, &hash) {
            return Err(Refused::Wrong("wrong backup code"));
        }
        let mut event = event.clone();
        event.event = "backup_code_used";
        match self.store.consume_backup_code(user, id, &event) {
            Ok(Some(left)) => Ok(Verified {
                method: method::BACKUP_CODE.into(),
                backup_codes_left: left,
                step_offset: 0,
            }),
            Ok(None) => Err(Refused::Wrong("backup code already used")),
            Err(e) => Err(Refused::Broken(Box::new(internal(e)))),
        }
    }

    /// `EnrollBegin`: a new secret, pending until `EnrollConfirm`. An enrolled user keeps
    /// the old secret until the new one is confirmed; only root may re-enroll for now.
    pub fn enroll_begin(
        &self,
        caller: Caller,
        user: &str,
        issuer: &str,
    ) -> Result<Enrollment, TwofoldError> {
        let issuer = if issuer.is_empty() {
            self.hostname.as_str()
        } else {
            issuer
        };
        if issuer.len() > 64 || issuer.contains(':') || issuer.chars().any(char::is_control) {
            return Err(TwofoldError::InvalidArgument(
                "The issuer must be at most 64 characters, without ':' or control characters."
                    .into(),
            ));
        }
        if caller.uid != 0 && self.store.user(user).map_err(internal)?.is_some() {
            return Err(TwofoldError::AlreadyEnrolled(format!(
                "{user} is enrolled already; ask an administrator to re-enroll this account"
            )));
        }
        let secret = otp::new_secret();
        let secret_base32 = otp::to_base32(&secret);
        let mut event = self.event(caller, user, "enroll_begin");
        let pending = Pending {
            secret_sealed: self.keys.seal(user, &secret),
            expires_at: event.at + self.policy.enroll_pending_seconds,
        };
        event.detail = format!("issuer={}", safe(issuer));
        self.store
            .begin_enrollment(user, &pending, &event)
            .map_err(internal)?;
        log::info!("enrollment started for {}", safe(user));
        Ok(Enrollment {
            uri: otp::otpauth_uri(issuer, user, &secret_base32),
            secret: secret_base32.to_string(),
            expires: pending.expires_at,
        })
    }

    /// `EnrollConfirm`: the first code proves the app holds the secret; then 2FA is active
    /// and the backup codes are returned, once.
    pub fn enroll_confirm(
        &self,
        caller: Caller,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, TwofoldError> {
        let now = now();
        let Some(pending) = self.store.pending(user, now).map_err(internal)? else {
            return Err(TwofoldError::NoPendingEnrollment(
                "No enrollment is waiting for a code (it may have expired); run `twofold enroll` again.".into(),
            ));
        };
        let code = code.trim();
        if !otp::looks_like_totp(code) {
            return Err(TwofoldError::InvalidArgument(
                "Enter the 6-digit code your app shows.".into(),
            ));
        }
        let secret = self.keys.open(user, &pending.secret_sealed).map_err(|e| {
            log::error!("cannot open the pending secret of {}: {e}", safe(user));
            TwofoldError::Internal("twofoldd cannot read the pending secret; see its log".into())
        })?;
        let step = otp::matching_step(
            &secret,
            code,
            otp::step_at(now as u64),
            self.policy.totp_window,
            None,
        )
        .ok_or_else(invalid_code)?;
        drop(secret);

        let codes = backup_codes::generate_set();
        let stored: Vec<StoredBackupCode> = codes
            .iter()
            .map(|c| {
                let normalized =
                    backup_codes::normalize(c).expect("generated codes are well-formed");
                StoredBackupCode {
                    tag: self.keys.backup_code_tag(user, &normalized),
                    hash: backup_codes::hash(&normalized),
                }
            })
            .collect();
        let event = self.event(caller, user, "enroll_confirm");
        if !self
            .store
            .confirm_enrollment(user, &pending.secret_sealed, step, &stored, &event)
            .map_err(internal)?
        {
            return Err(TwofoldError::NoPendingEnrollment(
                "The enrollment was replaced or expired meanwhile; run `twofold enroll` again."
                    .into(),
            ));
        }
        log::info!("enrollment confirmed for {}", safe(user));
        Ok(codes
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect::<Vec<_>>())
    }
}

/// Why an attempt did not pass.
enum Refused {
    /// A wrong, used or unrecognizable code: counts towards the lockout.
    Wrong(&'static str),
    /// Input that cannot be a code (empty, over-long): counts too, with its own message.
    Malformed(&'static str, &'static str),
    /// The daemon could not judge (storage, key): fails closed without counting.
    Broken(Box<TwofoldError>),
}

fn invalid_code() -> TwofoldError {
    TwofoldError::InvalidCode(
        "That code did not match. Check that your phone sets its time automatically.".into(),
    )
}

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
use crate::password::PasswordChecker;
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
    pub passwords: PasswordChecker,
}

/// How many recent step offsets `Status` reports.
const RECENT_OFFSETS: u32 = 10;

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
        let recent_step_offsets = match record {
            Some(_) => self
                .store
                .recent_step_offsets(user, RECENT_OFFSETS)
                .map_err(internal)?,
            None => Vec::new(),
        };
        let record = record.as_ref();
        Ok(UserStatus {
            user: user.to_string(),
            enrolled: record.is_some(),
            enrolled_since: record.map_or(0, |r| r.enrolled_at),
            backup_codes_left,
            failures: throttle.failures,
            locked_until: throttle
                .locked_for(now)
                .map_or(0, |_| throttle.locked_until),
            pending_enrollment: pending.is_some(),
            last_used: record.and_then(|r| r.last_used_at).unwrap_or(0),
            last_method: record.map(|r| r.last_method.clone()).unwrap_or_default(),
            last_service: record.map(|r| r.last_service.clone()).unwrap_or_default(),
            last_rhost: record.map(|r| r.last_rhost.clone()).unwrap_or_default(),
            recent_step_offsets,
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
            return Err(not_enrolled(user));
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
        event.step_offset = Some(step_offset as i32);
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

    /// Checks `proof` (a current code or backup code) like a login would: it is consumed
    /// when it passes and counts towards the lockout when it does not. Root needs none.
    fn require_proof(&self, caller: Caller, user: &str, proof: &str) -> Result<(), TwofoldError> {
        if caller.uid == 0 {
            return Ok(());
        }
        let ctx = HashMap::from([(context::SERVICE.to_string(), "twofold".to_string())]);
        self.verify(caller, user, proof, &ctx).map(drop)
    }

    /// A new set of backup codes: what to show once, and what to store.
    fn new_backup_codes(&self, user: &str) -> (Vec<String>, Vec<StoredBackupCode>) {
        let codes = backup_codes::generate_set();
        let stored = codes
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
        let shown = codes.iter().map(|c| c.as_str().to_owned()).collect();
        (shown, stored)
    }

    /// `EnrollBegin`: a new secret, pending until `EnrollConfirm`. Re-enrolling (a new
    /// phone) needs a current code or backup code unless root asks; the old secret keeps
    /// working until the new one is confirmed.
    pub fn enroll_begin(
        &self,
        caller: Caller,
        user: &str,
        issuer: &str,
        proof: &str,
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
            if proof.trim().is_empty() {
                return Err(TwofoldError::AlreadyEnrolled(format!(
                    "{user} is enrolled already; to move to a new device, give a current code \
                     or a backup code from the old one"
                )));
            }
            self.require_proof(caller, user, proof)?;
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

        let (codes, stored) = self.new_backup_codes(user);
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
        Ok(codes)
    }

    /// `RegenerateBackupCodes`: a new set; the old one dies in the same transaction.
    pub fn regenerate_backup_codes(
        &self,
        caller: Caller,
        user: &str,
        proof: &str,
    ) -> Result<Vec<String>, TwofoldError> {
        if self.store.user(user).map_err(internal)?.is_none() {
            return Err(not_enrolled(user));
        }
        self.require_proof(caller, user, proof)?;
        let (codes, stored) = self.new_backup_codes(user);
        let event = self.event(caller, user, "backup_codes_regenerated");
        if !self
            .store
            .replace_backup_codes(user, &stored, &event)
            .map_err(internal)?
        {
            return Err(not_enrolled(user));
        }
        log::info!("backup codes regenerated for {}", safe(user));
        Ok(codes)
    }

    /// `Disable`: the account password and a current code or backup code (root needs
    /// neither); then every trace of the user's 2FA goes, except the audit trail.
    pub fn disable(
        &self,
        caller: Caller,
        user: &str,
        password: &str,
        proof: &str,
    ) -> Result<(), TwofoldError> {
        if self.store.user(user).map_err(internal)?.is_none() {
            return Err(not_enrolled(user));
        }
        if caller.uid != 0 {
            let mut event = self.event(caller, user, "disable_refused");
            let throttle = self.store.throttle(user).map_err(internal)?;
            if let Some(seconds) = throttle.locked_for(event.at) {
                return Err(TwofoldError::Locked(locked_message(seconds)));
            }
            let right = self.passwords.check(user, password).map_err(|e| {
                log::error!("password check failed: {e}");
                TwofoldError::Internal("twofoldd could not check the password; see its log".into())
            })?;
            if !right {
                event.detail = "wrong account password".into();
                let after = self
                    .store
                    .record_failure(user, &self.policy.lockout, &event)
                    .map_err(internal)?;
                log::warn!("disable refused (wrong password) for {}", safe(user));
                return Err(match after.locked_for(event.at) {
                    Some(seconds) => TwofoldError::Locked(locked_message(seconds)),
                    None => TwofoldError::InvalidPassword("That password is not right.".into()),
                });
            }
            self.require_proof(caller, user, proof)?;
        }
        let event = self.event(caller, user, "disabled");
        if !self.store.remove_user(user, &event).map_err(internal)? {
            return Err(not_enrolled(user));
        }
        log::info!("two-factor authentication disabled for {}", safe(user));
        Ok(())
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

fn not_enrolled(user: &str) -> TwofoldError {
    TwofoldError::NotEnrolled(format!(
        "{} has not turned on two-factor authentication",
        safe(user)
    ))
}

fn invalid_code() -> TwofoldError {
    TwofoldError::InvalidCode(
        "That code did not match. Check that your phone sets its time automatically.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;

    const ROOT: Caller = Caller { uid: 0, pid: None };
    const USER: Caller = Caller {
        uid: 1000,
        pid: None,
    };

    fn service() -> Service {
        Service {
            store: Arc::new(SqliteStore::in_memory()),
            keys: Keys::from_master(&[3u8; 32]),
            policy: Policy::default(),
            hostname: "testhost".into(),
            passwords: PasswordChecker::default(),
        }
    }

    fn code_at(secret_b32: &str, step: u64) -> String {
        let secret = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).unwrap();
        let totp = totp_rs::Builder::new()
            .with_secret(secret.as_slice())
            .build()
            .unwrap();
        totp.generate(step * otp::STEP_SECONDS).to_string()
    }

    fn enroll(svc: &Service, user: &str) -> (String, Vec<String>) {
        let e = svc.enroll_begin(ROOT, user, "", "").unwrap();
        assert!(e.uri.contains("issuer=testhost"));
        let step = otp::step_at(now() as u64) - 1;
        let codes = svc.enroll_confirm(ROOT, user, &code_at(&e.secret, step)).unwrap();
        (e.secret, codes)
    }

    #[test]
    fn regenerate_kills_the_old_set() {
        let svc = service();
        let (_, old) = enroll(&svc, "alice");
        let new = svc.regenerate_backup_codes(ROOT, "alice", "").unwrap();
        assert_eq!(new.len(), 10);
        let ctx = HashMap::new();
        assert!(matches!(
            svc.verify(ROOT, "alice", &old[0], &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        let ok = svc.verify(ROOT, "alice", &new[0], &ctx).unwrap();
        assert_eq!(ok.backup_codes_left, 9);
        assert_eq!(svc.status("alice").unwrap().last_method, method::BACKUP_CODE);
    }

    #[test]
    fn non_root_needs_proof_to_regenerate_or_re_enroll() {
        let svc = service();
        let (_, codes) = enroll(&svc, "alice");
        assert!(matches!(
            svc.regenerate_backup_codes(USER, "alice", ""),
            Err(TwofoldError::InvalidArgument(_))
        ));
        assert!(matches!(
            svc.enroll_begin(USER, "alice", "", ""),
            Err(TwofoldError::AlreadyEnrolled(_))
        ));
        assert!(svc.enroll_begin(USER, "alice", "", &codes[0]).is_ok());
        // The old secret still works while the new one waits for its confirmation.
        assert!(svc.status("alice").unwrap().enrolled);
        assert!(svc.regenerate_backup_codes(USER, "alice", &codes[1]).is_ok());
    }

    #[test]
    fn status_reports_step_offsets_newest_first() {
        let svc = service();
        let (secret, _) = enroll(&svc, "alice");
        let step = otp::step_at(now() as u64);
        let ctx = HashMap::from([(context::SERVICE.to_string(), "sshd".to_string())]);
        // Codes are accepted in increasing steps only: -1 (phone behind), then 0.
        let a = svc.verify(ROOT, "alice", &code_at(&secret, step), &ctx);
        if otp::step_at(now() as u64) != step {
            return; // the step rolled over mid-test; the offsets would differ
        }
        assert_eq!(a.unwrap().step_offset, 0);
        let st = svc.status("alice").unwrap();
        assert_eq!(st.recent_step_offsets, vec![0]);
        assert_eq!(st.last_service, "sshd");
        assert_eq!(st.last_method, method::TOTP);
        assert!(st.last_used > 0);
    }

    #[test]
    fn root_disable_removes_everything_but_the_audit() {
        let svc = service();
        enroll(&svc, "alice");
        svc.disable(ROOT, "alice", "", "").unwrap();
        let st = svc.status("alice").unwrap();
        assert!(!st.enrolled);
        assert_eq!(st.backup_codes_left, 0);
        assert!(matches!(
            svc.disable(ROOT, "alice", "", ""),
            Err(TwofoldError::NotEnrolled(_))
        ));
    }
}

//! What the daemon does, independent of D-Bus: status, verification, enrollment.
//!
//! Callers arrive here with a [`Grant`] (made by `dbus::TwofoldInterface::authorize`): the
//! target user, resolved, and the caller's role. No function here looks at a uid: the grant
//! says whether proof is needed and whether the caller's login context is believed. All
//! functions are synchronous and may block (Argon2, SQLite commits, NSS): the bus layer
//! runs them off its event loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use twofold_contract::{
    context, limits, method, AdminUser, AuditEntry, Enrollment, LoginState, OathParams,
    TwofoldError, UserStatus, Verified,
};

use crate::authz::Grant;
use crate::backup_codes;
use crate::groups;
use crate::lockout::Source;
use crate::logging::safe;
use crate::networks;
use crate::otp;
use crate::password::PasswordChecker;
use crate::policy::{Policy, TrustedBy};
use crate::secrets::Keys;
use crate::storage::{Acceptance, AuditEvent, Pending, Store, StoreError, StoredBackupCode};

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
    pub policy: RwLock<Arc<Policy>>,
    pub hostname: String,
    pub passwords: PasswordChecker,
}

/// The store's name for the counters of logins for user names that do not exist.
pub const UNKNOWN_USERS: &str = "";

/// The service name recorded for what an unprivileged caller does over D-Bus: its own
/// service/tty/rhost claims are never believed.
pub const SELF_SERVICE: &str = "self-service via D-Bus";

/// How many recent step offsets `Status` reports.
pub(crate) const RECENT_OFFSETS: u32 = 10;

/// Seconds added to the system clock (`--clock-skew-seconds`, tests only).
static CLOCK_SKEW_SECONDS: AtomicI64 = AtomicI64::new(0);

/// Makes the daemon's clock `seconds` off the system's: tests of a clock that is behind.
pub fn set_clock_skew(seconds: i64) {
    CLOCK_SKEW_SECONDS.store(seconds, Ordering::Relaxed);
}

/// Current Unix time in seconds (the daemon's clock).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + CLOCK_SKEW_SECONDS.load(Ordering::Relaxed)
}

fn internal(e: StoreError) -> TwofoldError {
    log::error!("storage failure: {e}");
    TwofoldError::Internal("twofoldd could not reach its database; see its log".into())
}

fn locked_message(seconds: i64) -> String {
    format!("Too many failed attempts. Try again in {seconds} seconds.")
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`, for messages.
pub fn format_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(
        |_| format!("@{unix}"),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl Service {
    /// The policy in force (replaced as a whole on SIGHUP).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    /// Puts a new policy in force.
    pub fn set_policy(&self, policy: Policy) {
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }

    fn event(&self, grant: &Grant, event: &'static str) -> AuditEvent {
        let caller = grant.caller();
        AuditEvent {
            at: now(),
            actor_uid: Some(caller.uid),
            actor_pid: caller.pid,
            user: grant.user().to_string(),
            event,
            host: self.hostname.clone(),
            ..Default::default()
        }
    }

    /// Deletes what the policy no longer keeps (idle throttle counters, old audit
    /// entries): no caller can make the database grow without bound.
    pub fn purge_expired(&self, now: i64) {
        match crate::storage::purge_expired(&*self.store, &self.policy(), now) {
            Ok(purged) if purged.throttle + purged.audit > 0 => log::info!(
                "purged {} idle throttle counters and {} old audit entries",
                purged.throttle,
                purged.audit
            ),
            Ok(_) => {}
            Err(e) => log::error!("purging expired state failed: {e}"),
        }
    }

    /// `Status`: enrollment, backup codes, lockout, and whether this caller must prove
    /// a code to change them.
    pub fn status(&self, grant: &Grant) -> Result<UserStatus, TwofoldError> {
        Ok(UserStatus {
            proof_required: grant.proof_required(),
            ..self.status_of(grant.user())?
        })
    }

    fn status_of(&self, user: &str) -> Result<UserStatus, TwofoldError> {
        let now = now();
        let record = self.store.user(user).map_err(internal)?;
        let throttle = self.store.throttle_summary(user).map_err(internal)?;
        let backup_codes_left = match record {
            Some(_) => self.store.backup_codes_left(user).map_err(internal)?,
            None => 0,
        };
        let pending = self.store.pending(user, now).map_err(internal)?;
        let recent_step_offsets = match record {
            Some(_) => self
                .store
                .recent_step_offsets(user, RECENT_OFFSETS)
                .map_err(internal)?
                .into_iter()
                .map(|o| o.offset)
                .collect(),
            None => Vec::new(),
        };
        let record = record.as_ref();
        let deadline = match record {
            Some(_) => None,
            None => self.enrollment_requirement(user, &self.policy())?,
        };
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
            required: deadline.is_some(),
            enroll_deadline: deadline.unwrap_or(0),
            proof_required: false,
        })
    }

    /// The audit event and lockout counters of an attempt described by `ctx`. Only a
    /// login service's context is believed; an unprivileged caller's is ignored: its
    /// attempts are recorded as self-service and charged to one counter per uid, so that
    /// made-up terminals or hosts neither multiply its guesses nor fill the records.
    fn attempt(
        &self,
        grant: &Grant,
        ctx: &HashMap<String, String>,
        policy: &Policy,
    ) -> (AuditEvent, Vec<Source>) {
        let mut event = self.event(grant, "verify_ok");
        if !grant.trusts_context() {
            event.service = SELF_SERVICE.into();
            let sources = policy
                .lockout
                .self_service_sources(grant.caller().uid, &self.hostname);
            return (event, sources);
        }
        let field = |key: &str| ctx.get(key).map(|v| safe(v)).unwrap_or_default();
        event.service = field(context::SERVICE);
        event.tty = field(context::TTY);
        event.rhost = field(context::RHOST);
        let raw = |key: &str| ctx.get(key).map(String::as_str).unwrap_or("");
        let sources =
            policy
                .lockout
                .sources(raw(context::RHOST), raw(context::TTY), &self.hostname);
        (event, sources)
    }

    /// `BeginLogin`: the module's first question, before it prompts.
    pub fn begin_login(
        &self,
        grant: &Grant,
        ctx: &HashMap<String, String>,
    ) -> Result<LoginState, TwofoldError> {
        let user = grant.user();
        let policy = self.policy();
        let (event, sources) = self.attempt(grant, ctx, &policy);
        if let Some(trusted) = trusted_network(grant, ctx, &policy) {
            return self.spare_the_code(event, &trusted);
        }
        let throttle = self.store.throttle(user, &sources).map_err(internal)?;
        let enrolled = self.store.user(user).map_err(internal)?.is_some();
        let mut state = LoginState {
            enrolled,
            locked_for: throttle.locked_for(event.at).unwrap_or(0),
            ..Default::default()
        };
        if !enrolled {
            state.bypass_pending = self
                .store
                .bypass(user, event.at)
                .map_err(internal)?
                .is_some();
            let required = self.enrollment_requirement(user, &policy)?;
            if let Some(deadline) = required {
                state.required = true;
                state.enroll_deadline = deadline;
                state.message = if deadline > event.at {
                    format!(
                        "Two-factor authentication is required for your account from {}. \
                         Set it up now with `twofold enroll`.",
                        format_time(deadline)
                    )
                } else {
                    format!(
                        "Two-factor authentication is required for your account and was not \
                         set up in time. Ask {} for help.",
                        policy.admin_contact
                    )
                };
            }
        }
        Ok(state)
    }

    /// A login from a trusted network: audited and logged, then answered as the module's
    /// "required, still within the enrollment grace" (its only answer that makes it step
    /// aside, `PAM_IGNORE`, whatever `nullok` says, showing `message`), so that no new
    /// wire value is needed: the rest of the PAM stack decides. The deadline is the end
    /// of time, as the module's clock may differ from the daemon's (`--clock-skew-seconds`).
    fn spare_the_code(
        &self,
        mut event: AuditEvent,
        trusted: &TrustedBy<'_>,
    ) -> Result<LoginState, TwofoldError> {
        event.event = "trusted_network";
        event.detail = match trusted.group {
            Some(group) => format!(
                "no code asked: in {} (for group {})",
                trusted.network,
                safe(group)
            ),
            None => format!("no code asked: in {}", trusted.network),
        };
        // Failing closed: a skip that cannot be recorded is not made.
        self.store.append_audit(&event).map_err(internal)?;
        log::info!(
            "no code asked, trusted network: user={} service={} rhost={} ({})",
            safe(&event.user),
            event.service,
            event.rhost,
            event.detail
        );
        Ok(LoginState {
            enrolled: false,
            required: true,
            enroll_deadline: i64::MAX,
            message: TRUSTED_NETWORK_MESSAGE.into(),
            ..Default::default()
        })
    }

    /// Counts a login attempt for a user name that does not exist against the
    /// unknown-users counter of its source (stored under the empty user name, which no
    /// account can have). Returns the error to answer: `UnknownUser`, or `Locked` once
    /// that source has guessed too many names. `grant` is about [`UNKNOWN_USERS`].
    pub fn unknown_user_attempt(
        &self,
        grant: &Grant,
        requested: &str,
        ctx: &HashMap<String, String>,
    ) -> TwofoldError {
        let policy = self.policy();
        let (mut event, sources) = self.attempt(grant, ctx, &policy);
        event.event = "unknown_user";
        event.detail = format!("name: {}", safe(requested));
        let unknown = no_such_user(requested);
        match self
            .store
            .record_failure(UNKNOWN_USERS, &sources, &policy.lockout, &event)
        {
            Ok(after) => match after.locked_for(event.at) {
                Some(seconds) => {
                    log::warn!(
                        "login for unknown user {} from rhost={} tty={}: source locked for {seconds} s",
                        safe(requested),
                        event.rhost,
                        event.tty
                    );
                    TwofoldError::Locked(locked_message(seconds))
                }
                None => unknown,
            },
            Err(e) => internal(e),
        }
    }

    /// For a user in a `require_groups` group: the end of their enrollment grace.
    fn enrollment_requirement(
        &self,
        user: &str,
        policy: &Policy,
    ) -> Result<Option<i64>, TwofoldError> {
        if policy.require_groups.is_empty() {
            return Ok(None);
        }
        let member = groups::member_of_any(user, &policy.require_groups).map_err(|e| {
            log::error!("group lookup for {} failed: {e}", safe(user));
            TwofoldError::Internal("twofoldd could not look up the user's groups".into())
        })?;
        if !member {
            return Ok(None);
        }
        let first_seen = self.store.first_seen(user, now()).map_err(internal)?;
        Ok(Some(first_seen + policy.enroll_grace_seconds()))
    }

    /// `Verify`: one attempt with a TOTP code (of any of the user's devices), a backup
    /// code, or an administrator's one-time bypass code.
    pub fn verify(
        &self,
        grant: &Grant,
        code: &str,
        ctx: &HashMap<String, String>,
    ) -> Result<Verified, TwofoldError> {
        self.check_code(grant, code, ctx, None)
    }

    /// [`Service::verify`], where a code of device `except` does not count (the proof
    /// for removing it must come from elsewhere).
    fn check_code(
        &self,
        grant: &Grant,
        code: &str,
        ctx: &HashMap<String, String>,
        except: Option<&str>,
    ) -> Result<Verified, TwofoldError> {
        let user = grant.user();
        let policy = self.policy();
        let (mut event, sources) = self.attempt(grant, ctx, &policy);
        let where_ = format!(
            "user={} service={} rhost={} tty={}",
            safe(user),
            event.service,
            event.rhost,
            event.tty
        );

        let throttle = self.store.throttle(user, &sources).map_err(internal)?;
        if let Some(seconds) = throttle.locked_for(event.at) {
            log::warn!("refused while locked out: {where_}");
            return Err(TwofoldError::Locked(locked_message(seconds)));
        }
        let record = self.store.user(user).map_err(internal)?;
        let bypass = match record {
            Some(_) => None,
            None => match self.store.bypass(user, event.at).map_err(internal)? {
                Some(hash) => Some(hash),
                None => return Err(not_enrolled(user)),
            },
        };

        let code = code.trim();
        let outcome = if code.is_empty() {
            Err(Refused::Malformed("empty code", "No code was entered."))
        } else if code.len() > twofold_contract::MAX_CODE_LEN {
            Err(Refused::Malformed(
                "over-long code",
                "That code is far too long.",
            ))
        } else if let Some(hash) = &bypass {
            self.verify_bypass(user, code, hash, &sources, &event)
        } else if record.is_some() && otp::looks_like_otp(code) {
            match self.verify_device_code(user, code, except, &policy, &sources, &event) {
                // Eight digits may also be an imported google-authenticator scratch code.
                Err(Refused::Wrong(why)) => match backup_codes::normalize(code) {
                    Some(normalized) => {
                        self.verify_backup_code(user, &normalized, &sources, &event)
                    }
                    None => Err(Refused::Wrong(why)),
                },
                other => other,
            }
        } else if let Some(normalized) = backup_codes::normalize(code) {
            self.verify_backup_code(user, &normalized, &sources, &event)
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
            .record_failure(user, &sources, &policy.lockout, &event)
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

    /// A code of any of the user's devices but `except` whose codes have its length: each
    /// device has its own parameters and replay watermark.
    fn verify_device_code(
        &self,
        user: &str,
        code: &str,
        except: Option<&str>,
        policy: &Policy,
        sources: &[Source],
        event: &AuditEvent,
    ) -> Result<Verified, Refused> {
        let broken = |e: StoreError| Refused::Broken(Box::new(internal(e)));
        let devices = self.store.devices(user).map_err(broken)?;
        // After a power loss, no step that may have been accepted before it passes, for
        // anyone (see `Store::begin_run`).
        let fence = self.store.replay_fence();
        let now = event.at.max(0) as u64;
        let mut used = false;
        let candidates = devices
            .iter()
            .filter(|d| Some(d.name.as_str()) != except && d.oath.fits(code));
        for device in candidates {
            let secret = self.keys.open(user, &device.secret_sealed).map_err(|e| {
                log::error!(
                    "cannot open the secret of device {} of {}: {e}",
                    device.name,
                    safe(user)
                );
                Refused::Broken(Box::new(TwofoldError::Internal(
                    "twofoldd cannot read this user's secret; see its log".into(),
                )))
            })?;
            let oath = device.oath;
            let used_up_to = device
                .last_step
                .max(fence.and_then(|f| oath.fenced_up_to(f)));
            let window = if oath.is_counter() {
                limits::HOTP_LOOK_AHEAD
            } else {
                policy.totp_window
            };
            let Some(found) = oath.matching(&secret, code, now, window, used_up_to) else {
                continue;
            };
            let mut event = event.clone();
            event.detail = format!("device: {}", device.name);
            let (acceptance, step_offset) = match oath.step_at(now) {
                Some(now_step) => {
                    let offset = found as i64 - now_step as i64;
                    event.step_offset = Some(offset as i32);
                    let clock_step = oath.clock_step(found);
                    (
                        Acceptance::Step {
                            step: found,
                            clock_step,
                        },
                        offset as i32,
                    )
                }
                None => (Acceptance::Counter(found), 0),
            };
            match self
                .store
                .accept_code(user, &device.name, acceptance, sources, &event)
            {
                Ok(true) => {
                    log::debug!("code of device {} of {} accepted", device.name, safe(user));
                    let how = if oath.is_counter() {
                        method::HOTP
                    } else {
                        method::TOTP
                    };
                    return Ok(Verified {
                        method: how.into(),
                        backup_codes_left: self.store.backup_codes_left(user).unwrap_or(0),
                        step_offset,
                    });
                }
                // Another verification took this step of this device meanwhile.
                Ok(false) => used = true,
                Err(e) => return Err(broken(e)),
            }
        }
        Err(Refused::Wrong(if used {
            "code already used"
        } else {
            "wrong or used code"
        }))
    }

    fn verify_backup_code(
        &self,
        user: &str,
        normalized: &str,
        sources: &[Source],
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
            log::debug!(
                "backup-code attempt checked; Argon2 evaluations so far: {}",
                backup_codes::ARGON2_EVALUATIONS.load(std::sync::atomic::Ordering::Relaxed)
            );
            return Err(Refused::Wrong("wrong or used backup code"));
        };
        let matched = backup_codes::verify(normalized, &hash);
        log::debug!(
            "backup-code attempt checked; Argon2 evaluations so far: {}",
            backup_codes::ARGON2_EVALUATIONS.load(std::sync::atomic::Ordering::Relaxed)
        );
        if !matched {
            return Err(Refused::Wrong("wrong backup code"));
        }
        let mut event = event.clone();
        event.event = "backup_code_used";
        match self.store.consume_backup_code(user, id, sources, &event) {
            Ok(Some(left)) => Ok(Verified {
                method: method::BACKUP_CODE.into(),
                backup_codes_left: left,
                step_offset: 0,
            }),
            Ok(None) => Err(Refused::Wrong("backup code already used")),
            Err(e) => Err(Refused::Broken(Box::new(internal(e)))),
        }
    }

    /// An administrator's one-time code for a user who lost everything (`admin reset
    /// --bypass-code`): one Argon2 evaluation, single use.
    fn verify_bypass(
        &self,
        user: &str,
        code: &str,
        hash: &str,
        sources: &[Source],
        event: &AuditEvent,
    ) -> Result<Verified, Refused> {
        let Some(normalized) = backup_codes::normalize(code) else {
            return Err(Refused::Wrong("not a bypass code"));
        };
        if !backup_codes::verify(&normalized, hash) {
            return Err(Refused::Wrong("wrong bypass code"));
        }
        let mut event = event.clone();
        event.event = "bypass_used";
        match self.store.consume_bypass(user, hash, sources, &event) {
            Ok(true) => Ok(Verified {
                method: method::BYPASS.into(),
                backup_codes_left: 0,
                step_offset: 0,
            }),
            Ok(false) => Err(Refused::Wrong("bypass code already used")),
            Err(e) => Err(Refused::Broken(Box::new(internal(e)))),
        }
    }

    /// Checks `proof` (a current code or backup code) like a login would, when the grant
    /// asks for it: it is consumed when it passes and counts towards the lockout when it
    /// does not.
    fn require_proof(&self, grant: &Grant, proof: &str) -> Result<(), TwofoldError> {
        self.require_proof_except(grant, proof, None)
    }

    /// [`Service::require_proof`], where a code of device `except` does not count.
    fn require_proof_except(
        &self,
        grant: &Grant,
        proof: &str,
        except: Option<&str>,
    ) -> Result<(), TwofoldError> {
        if !grant.proof_required() {
            return Ok(());
        }
        self.check_code(grant, proof, &HashMap::new(), except)
            .map(drop)
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
        grant: &Grant,
        issuer: &str,
        proof: &str,
        oath: &OathParams,
    ) -> Result<Enrollment, TwofoldError> {
        let oath = otp::Oath::enrolled(oath)?;
        let user = grant.user();
        let issuer = if issuer.is_empty() {
            self.hostname.as_str()
        } else {
            issuer
        };
        limits::issuer(issuer)?;
        if grant.proof_required() && self.store.user(user).map_err(internal)?.is_some() {
            if proof.trim().is_empty() {
                return Err(TwofoldError::AlreadyEnrolled(format!(
                    "{user} is enrolled already; to move to a new device, give a current code \
                     or a backup code from the old one"
                )));
            }
            self.require_proof(grant, proof)?;
        }
        self.new_pending_secret(grant, issuer, "", oath)
    }

    /// A new secret, pending until its first code confirms it (an enrollment, or a
    /// device added) made as `oath` says: the one answer that carries a secret. `detail`
    /// goes into the audit entry after the issuer (and the parameters, when not an
    /// app's).
    fn new_pending_secret(
        &self,
        grant: &Grant,
        issuer: &str,
        detail: &str,
        oath: otp::Oath,
    ) -> Result<Enrollment, TwofoldError> {
        let user = grant.user();
        let secret = otp::new_secret();
        let secret_base32 = otp::to_base32(&secret);
        let mut event = self.event(grant, "enroll_begin");
        let pending = Pending {
            secret_sealed: self.keys.seal(user, &secret),
            expires_at: event.at + self.policy().enroll_pending_seconds,
            oath,
        };
        event.detail = format!("issuer={}{detail}", safe(issuer));
        if oath != otp::Oath::APP {
            event.detail.push_str(&format!(
                " oath={}/{}/{}",
                oath.hash.name(),
                oath.digits,
                oath.period()
            ));
        }
        self.store
            .begin_enrollment(user, &pending, &event)
            .map_err(internal)?;
        log::info!("enrollment started for {}", safe(user));
        Ok(Enrollment {
            uri: otp::otpauth_uri(issuer, user, &secret_base32, &pending.oath),
            secret: secret_base32.to_string(),
            expires: pending.expires_at,
        })
    }

    /// `EnrollConfirm`: the first code proves the app holds the secret; then 2FA is active
    /// and the backup codes are returned, once.
    pub fn enroll_confirm(&self, grant: &Grant, code: &str) -> Result<Vec<String>, TwofoldError> {
        let user = grant.user();
        let (pending, step) = self.pending_proven(user, code, "twofold enroll")?;
        let (codes, stored) = self.new_backup_codes(user);
        let event = self.event(grant, "enroll_confirm");
        if !self
            .store
            .confirm_enrollment(user, &pending, Some(step), &stored, &event)
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

    /// The user's pending secret and the step of `code`, its first code (`again` names
    /// the command that starts anew).
    fn pending_proven(
        &self,
        user: &str,
        code: &str,
        again: &str,
    ) -> Result<(Pending, u64), TwofoldError> {
        let now = now();
        let Some(pending) = self.store.pending(user, now).map_err(internal)? else {
            return Err(TwofoldError::NoPendingEnrollment(format!(
                "No enrollment is waiting for a code (it may have expired); run `{again}` again."
            )));
        };
        let code = code.trim();
        if !pending.oath.fits(code) {
            return Err(TwofoldError::InvalidArgument(format!(
                "Enter the {}-digit code your app shows.",
                pending.oath.digits
            )));
        }
        let secret = self.keys.open(user, &pending.secret_sealed).map_err(|e| {
            log::error!("cannot open the pending secret of {}: {e}", safe(user));
            TwofoldError::Internal("twofoldd cannot read the pending secret; see its log".into())
        })?;
        let step = pending
            .oath
            .matching(
                &secret,
                code,
                now.max(0) as u64,
                self.policy().totp_window,
                None,
            )
            .ok_or_else(invalid_code)?;
        Ok((pending, step))
    }

    /// `RegenerateBackupCodes`: a new set; the old one dies in the same transaction.
    pub fn regenerate_backup_codes(
        &self,
        grant: &Grant,
        proof: &str,
    ) -> Result<Vec<String>, TwofoldError> {
        let user = grant.user();
        if self.store.user(user).map_err(internal)?.is_none() {
            return Err(not_enrolled(user));
        }
        self.require_proof(grant, proof)?;
        let (codes, stored) = self.new_backup_codes(user);
        let event = self.event(grant, "backup_codes_regenerated");
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

    /// `Disable`: the account password and a current code or backup code (root and
    /// administrators need neither); then every trace of the user's 2FA goes, except the
    /// audit trail.
    pub fn disable(&self, grant: &Grant, password: &str, proof: &str) -> Result<(), TwofoldError> {
        let user = grant.user();
        if self.store.user(user).map_err(internal)?.is_none() {
            return Err(not_enrolled(user));
        }
        if grant.proof_required() {
            let policy = self.policy();
            let (mut event, sources) = self.attempt(grant, &HashMap::new(), &policy);
            event.event = "disable_refused";
            let throttle = self.store.throttle(user, &sources).map_err(internal)?;
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
                    .record_failure(user, &sources, &policy.lockout, &event)
                    .map_err(internal)?;
                log::warn!("disable refused (wrong password) for {}", safe(user));
                return Err(match after.locked_for(event.at) {
                    Some(seconds) => TwofoldError::Locked(locked_message(seconds)),
                    None => TwofoldError::InvalidPassword("That password is not right.".into()),
                });
            }
            self.require_proof(grant, proof)?;
        }
        let event = self.event(grant, "disabled");
        if !self.store.remove_user(user, &event).map_err(internal)? {
            return Err(not_enrolled(user));
        }
        log::info!("two-factor authentication disabled for {}", safe(user));
        Ok(())
    }

    /// `AdminUsers`: everyone the daemon knows, plus the listed members of required groups.
    pub fn admin_users(&self, _grant: &Grant) -> Result<Vec<AdminUser>, TwofoldError> {
        let policy = self.policy();
        let mut names = self.store.known_users().map_err(internal)?;
        names.retain(|n| n != UNKNOWN_USERS);
        for group in &policy.require_groups {
            names.extend(groups::listed_members(group));
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|user| {
                let status = self.status_of(&user)?;
                let live_sessions = self.store.live_session_count(&user).map_err(internal)?;
                Ok(AdminUser {
                    user,
                    enrolled: status.enrolled,
                    required: status.required,
                    enroll_deadline: status.enroll_deadline,
                    last_used: status.last_used,
                    backup_codes_left: status.backup_codes_left,
                    locked_until: status.locked_until,
                    live_sessions,
                })
            })
            .collect()
    }

    /// `AdminReset`: the user's 2FA goes (they enroll again); optionally a one-time
    /// bypass code, valid `bypass_hours`, lets them log in once to do so.
    pub fn admin_reset(
        &self,
        grant: &Grant,
        reason: &str,
        bypass_hours: u32,
    ) -> Result<String, TwofoldError> {
        let user = grant.user();
        limits::reason(reason)?;
        let reason = reason.trim();
        if bypass_hours > limits::MAX_BYPASS_HOURS {
            return Err(TwofoldError::InvalidArgument(format!(
                "A bypass code can be valid for at most {} hours.",
                limits::MAX_BYPASS_HOURS
            )));
        }
        let mut event = self.event(grant, "reset");
        event.detail = format!("reason: {}", safe_long(reason));
        let removed = self.store.remove_user(user, &event).map_err(internal)?;
        if !removed && bypass_hours == 0 {
            return Err(not_enrolled(user));
        }
        log::info!(
            "administrator uid {} reset the 2FA of {}",
            grant.caller().uid,
            safe(user)
        );
        if bypass_hours == 0 {
            return Ok(String::new());
        }
        let code = backup_codes::generate_set().swap_remove(0);
        let normalized = backup_codes::normalize(&code).expect("generated codes are well-formed");
        let mut event = self.event(grant, "bypass_issued");
        event.detail = format!("valid {bypass_hours} h; reason: {}", safe_long(reason));
        self.store
            .set_bypass(
                user,
                &backup_codes::hash(&normalized),
                event.at + i64::from(bypass_hours) * 3600,
                &event,
            )
            .map_err(internal)?;
        Ok(code.as_str().to_owned())
    }

    /// `AdminUnlock`: clears the user's lockouts from every source.
    pub fn admin_unlock(&self, grant: &Grant) -> Result<(), TwofoldError> {
        let event = self.event(grant, "unlock");
        self.store
            .clear_lockouts(grant.user(), &event)
            .map_err(internal)?;
        log::info!("uid {} unlocked {}", grant.caller().uid, safe(grant.user()));
        Ok(())
    }

    /// `AdminImport`: enrolls the user with a secret they already use with another PAM
    /// module (`source`), and that module's unused scratch codes as backup codes. The
    /// store's enrollment path does it: begin and confirm, at once, without a code (the
    /// user's device holds the secret already). A user enrolled already is left alone.
    /// `last_used_code` ("" = none known) is the last code the old module accepted: when
    /// it is of a step still ahead (a phone whose clock runs fast), that step counts as
    /// used too.
    pub fn admin_import(
        &self,
        grant: &Grant,
        secret_base32: &str,
        codes: &[String],
        source: &str,
        last_used_code: &str,
        params: &OathParams,
    ) -> Result<(), TwofoldError> {
        let user = grant.user();
        limits::imported_secret(secret_base32)?;
        limits::imported_backup_codes(codes)?;
        limits::import_source(source)?;
        limits::bounded("the last used code", last_used_code, limits::MAX_CODE_LEN)?;
        let oath = otp::Oath::imported(params)?;
        if !last_used_code.is_empty() && !oath.fits(last_used_code) {
            return Err(TwofoldError::InvalidArgument(format!(
                "The last used code is not a {}-digit code.",
                oath.digits
            )));
        }
        let secret = otp::from_base32(secret_base32).ok_or_else(|| {
            TwofoldError::InvalidArgument("The secret is not valid base32.".into())
        })?;
        if secret.len() < otp::MIN_SECRET_LEN {
            return Err(TwofoldError::InvalidArgument(format!(
                "The secret has fewer than {} bits, which twofold does not accept \
                 (RFC 4226); {user} enrolls anew with `twofold enroll`.",
                otp::MIN_SECRET_LEN * 8
            )));
        }
        let mut normalized: Vec<zeroize::Zeroizing<String>> = Vec::with_capacity(codes.len());
        for code in codes {
            let code = backup_codes::normalize(code).ok_or_else(|| {
                TwofoldError::InvalidArgument(
                    "An imported backup code is not 8 digits (a google-authenticator scratch \
                     code) nor a twofold backup code."
                        .into(),
                )
            })?;
            // A code listed twice is still one code: it works once.
            if !normalized.contains(&code) {
                normalized.push(code);
            }
        }
        if self.store.user(user).map_err(internal)?.is_some() {
            return Err(TwofoldError::AlreadyEnrolled(format!(
                "{user} is enrolled in twofold already; nothing was imported"
            )));
        }
        let stored: Vec<StoredBackupCode> = normalized
            .iter()
            .map(|code| StoredBackupCode {
                tag: self.keys.backup_code_tag(user, code),
                hash: backup_codes::hash(code),
            })
            .collect();
        let detail = format!("imported from {source}");
        let mut begin = self.event(grant, "enroll_begin");
        begin.detail = detail.clone();
        let pending = Pending {
            secret_sealed: self.keys.seal(user, &secret),
            expires_at: begin.at + self.policy().enroll_pending_seconds,
            oath,
        };
        let used_up_to =
            self.imported_used_up_to(&secret, oath, params.counter, last_used_code, begin.at);
        drop(secret);
        self.store
            .begin_enrollment(user, &pending, &begin)
            .map_err(internal)?;
        let mut confirm = self.event(grant, "enroll_confirm");
        confirm.detail = format!("{detail}, with {} backup codes", stored.len());
        let used_up_to = match oath.step_at(confirm.at.max(0) as u64) {
            Some(now_step) => used_up_to.max(Some(now_step)),
            None => used_up_to,
        };
        if !self
            .store
            .confirm_enrollment(user, &pending, used_up_to, &stored, &confirm)
            .map_err(internal)?
        {
            return Err(TwofoldError::NoPendingEnrollment(
                "The import was overtaken by an enrollment meanwhile; run it again.".into(),
            ));
        }
        log::info!(
            "uid {} imported the {source} secret of {}",
            grant.caller().uid,
            safe(user)
        );
        Ok(())
    }

    /// The imported device's watermark: the last step or counter value that counts as
    /// used. HOTP: the values below `counter` (the next one the old module expected).
    /// TOTP: the old module may have just accepted a code of this step, and nothing says
    /// which: the steps up to now count as used, so that no code seen at the old login
    /// can be replayed here; so do those before `counter` (the first step the old module
    /// had not seen used, 0 = unknown). Either way, the old module's `last_used_code`,
    /// when it is of a step or counter value still ahead, moves the watermark to it. The
    /// next step's code (within a minute) passes, unless one of those.
    fn imported_used_up_to(
        &self,
        secret: &[u8],
        oath: otp::Oath,
        counter: u64,
        last_used_code: &str,
        now: i64,
    ) -> Option<u64> {
        let now = now.max(0) as u64;
        let (used, window) = match oath.step_at(now) {
            Some(now_step) => (
                Some(now_step.max(counter.saturating_sub(1))),
                self.policy().totp_window,
            ),
            None => (counter.checked_sub(1), limits::HOTP_LOOK_AHEAD),
        };
        if last_used_code.is_empty() {
            return used;
        }
        oath.matching(secret, last_used_code, now, window, used)
            .or(used)
    }

    /// `AuditLog`: newest first, of the grant's user ("" = everyone).
    pub fn audit_log(
        &self,
        grant: &Grant,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, TwofoldError> {
        let user = Some(grant.user()).filter(|u| !u.is_empty());
        self.store
            .audit_log(user, since, limit.clamp(1, limits::MAX_AUDIT_LIMIT))
            .map_err(internal)
    }
}

mod devices;
mod tokens;

/// Why an attempt did not pass.
enum Refused {
    /// A wrong, used or unrecognizable code: counts towards the lockout.
    Wrong(&'static str),
    /// Input that cannot be a code (empty, over-long): counts too, with its own message.
    Malformed(&'static str, &'static str),
    /// The daemon could not judge (storage, key): fails closed without counting.
    Broken(Box<TwofoldError>),
}

/// What a login from a trusted network is told.
pub const TRUSTED_NETWORK_MESSAGE: &str = "No verification code is needed from this network.";

/// The trusted network that spares this login its code: only for a login service's
/// context (root's; anyone else's rhost is made up), only for a literal address, and for
/// a group's networks only when the user is a member (a failed lookup asks the code).
fn trusted_network<'p>(
    grant: &Grant,
    ctx: &HashMap<String, String>,
    policy: &'p Policy,
) -> Option<TrustedBy<'p>> {
    if !grant.trusts_context() || !policy.trusts_networks() {
        return None;
    }
    let address = networks::login_address(ctx.get(context::RHOST)?)?;
    policy.trusted_network(address, |group| {
        groups::member_of_any(grant.user(), &[group.to_string()]).unwrap_or_else(|e| {
            log::warn!(
                "trusted_networks_for: cannot tell whether {} is in {}: {e}; asking the code",
                safe(grant.user()),
                safe(group)
            );
            false
        })
    })
}

/// Untrusted text for the audit trail: control characters escaped, at most 500 chars.
fn safe_long(text: &str) -> String {
    text.chars()
        .take(500)
        .flat_map(char::escape_debug)
        .collect()
}

/// A login or admin call about a name that no account has.
pub(crate) fn no_such_user(requested: &str) -> TwofoldError {
    TwofoldError::UnknownUser(format!("There is no user named {}.", safe(requested)))
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

    use crate::authz::Role;

    /// A secret as google-authenticator makes them: 128 bits, 26 base32 symbols.
    const GA_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEH";

    /// An unprivileged caller (uid 1000) acting on its own account.
    pub(super) fn owner(user: &str) -> Grant {
        let caller = Caller {
            uid: 1000,
            pid: Some(4242),
        };
        Grant::for_tests(caller, user, Role::Owner)
    }

    pub(super) fn service() -> Service {
        Service {
            store: Arc::new(SqliteStore::in_memory()),
            keys: Keys::from_master(&[3u8; 32]),
            policy: RwLock::new(Arc::new(Policy::default())),
            hostname: "testhost".into(),
            passwords: PasswordChecker::default(),
        }
    }

    pub(super) fn code_at(secret_b32: &str, step: u64) -> String {
        let secret = otp::from_base32(secret_b32).unwrap();
        let totp = totp_rs::Builder::new()
            .with_secret(secret.as_slice())
            .build()
            .unwrap();
        totp.generate(step * otp::STEP_SECONDS).to_string()
    }

    pub(super) fn enroll(svc: &Service, user: &str) -> (String, Vec<String>) {
        let e = svc
            .enroll_begin(&Grant::in_process_root(user), "", "", &OathParams::app())
            .unwrap();
        assert!(e.uri.contains("issuer=testhost"));
        let step = otp::step_at(now() as u64) - 1;
        let codes = svc
            .enroll_confirm(&Grant::in_process_root(user), &code_at(&e.secret, step))
            .unwrap();
        (e.secret, codes)
    }

    #[test]
    fn an_imported_secret_and_its_scratch_codes_work_and_an_enrolled_user_is_left_alone() {
        let svc = service();
        let app = OathParams::app();
        let root = Grant::in_process_root("alice");
        // The first code twice (a hand-edited file): it still works once.
        let codes = vec![
            "12345678".to_string(),
            "87654321".to_string(),
            "1234-5678".to_string(),
        ];
        svc.admin_import(&root, GA_SECRET, &codes, "google-authenticator", "", &app)
            .unwrap();
        let ctx = HashMap::new();
        let step = otp::step_at(now() as u64);
        // The steps up to the import count as used (the old module may have taken
        // them): a code from before is refused, the next step's passes.
        assert!(matches!(
            svc.verify(&root, &code_at(GA_SECRET, step - 1), &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        assert!(svc
            .verify(&root, &code_at(GA_SECRET, step + 1), &ctx)
            .is_ok());
        let used = svc.verify(&root, "1234 5678", &ctx).unwrap();
        assert_eq!(used.method, method::BACKUP_CODE);
        assert_eq!(used.backup_codes_left, 1);
        assert!(matches!(
            svc.verify(&root, "12345678", &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        let log = svc.audit_log(&root, 0, 10).unwrap();
        assert!(log
            .iter()
            .any(|e| e.event == "enroll_confirm" && e.detail.contains("google-authenticator")));

        assert!(matches!(
            svc.admin_import(
                &root,
                "ABCDEFGHIJKLMNOPABCDEFGHIJ",
                &[],
                "google-authenticator",
                "",
                &app
            ),
            Err(TwofoldError::AlreadyEnrolled(_))
        ));
        // Still the first import's codes.
        assert!(svc.verify(&root, "87654321", &ctx).is_ok());
    }

    #[test]
    fn the_old_modules_last_code_of_a_step_ahead_is_not_accepted_again() {
        let svc = service();
        let app = OathParams::app();
        let root = Grant::in_process_root("carol");
        let ahead = otp::step_at(now() as u64) + 1;
        svc.admin_import(
            &root,
            GA_SECRET,
            &[],
            "pam_oath",
            &code_at(GA_SECRET, ahead),
            &app,
        )
        .unwrap();
        assert!(matches!(
            svc.verify(&root, &code_at(GA_SECRET, ahead), &HashMap::new()),
            Err(TwofoldError::InvalidCode(_))
        ));
    }

    #[test]
    fn an_imported_counter_carries_over_hotp_and_totp() {
        let svc = service();
        let ctx = HashMap::new();
        let bytes = otp::from_base32(GA_SECRET).unwrap();
        // HOTP: the next value expected is 5; 4 was used by the old module.
        let hotp = otp::Oath::new("SHA1", 6, 0).unwrap();
        // Imports the secret for `user` from google-authenticator with `params`.
        let import = |user: &str, params: &twofold_contract::OathParams| {
            let root = Grant::in_process_root(user);
            svc.admin_import(&root, GA_SECRET, &[], "google-authenticator", "", params)
                .unwrap();
            root
        };
        let root = import("erin", &hotp.params(5));
        let code = |n: u64| hotp.code(&bytes, n).unwrap().to_string();
        assert!(matches!(
            svc.verify(&root, &code(4), &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        assert!(svc.verify(&root, &code(5), &ctx).is_ok());
        assert!(svc.verify(&root, &code(5), &ctx).is_err(), "replayed");
        // TOTP with 60-second steps, 8 digits: the steps before `counter` count as used,
        // even ahead of the clock (google-authenticator's DISALLOW_REUSE).
        let totp = otp::Oath::new("SHA256", 8, 60).unwrap();
        let ahead = totp.step_at(now() as u64).unwrap() + 1;
        let root = import("frank", &totp.params(ahead + 1));
        let code = |n: u64| totp.code(&bytes, n).unwrap().to_string();
        assert!(matches!(
            svc.verify(&root, &code(ahead), &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        // A pam_oath HOTP line after a login: the counter of its last code, and that code.
        let hcode = |n: u64| hotp.code(&bytes, n).unwrap().to_string();
        let root = Grant::in_process_root("hank");
        svc.admin_import(
            &root,
            GA_SECRET,
            &[],
            "pam_oath",
            &hcode(9),
            &hotp.params(9),
        )
        .unwrap();
        assert!(svc.verify(&root, &hcode(9), &ctx).is_err());
        assert!(svc.verify(&root, &hcode(10), &ctx).is_ok());
    }

    #[test]
    fn an_app_enrollment_counts_time() {
        let svc = service();
        let root = Grant::in_process_root("ivan");
        for (alg, digits, period, counter) in [
            ("SHA1", 6, 0, 0),
            ("SHA1", 7, 30, 0),
            ("MD5", 6, 30, 0),
            ("SHA1", 6, 30, 3),
        ] {
            let oath = OathParams {
                algorithm: alg.into(),
                digits,
                period,
                counter,
            };
            assert!(
                matches!(
                    svc.enroll_begin(&root, "", "", &oath),
                    Err(TwofoldError::InvalidArgument(_))
                ),
                "{oath:?}"
            );
        }
        let oath = otp::Oath::new("SHA512", 8, 60).unwrap();
        let e = svc.enroll_begin(&root, "", "", &oath.params(0)).unwrap();
        assert!(
            e.uri.contains("algorithm=SHA512&digits=8&period=60"),
            "{}",
            e.uri
        );
        let bytes = otp::from_base32(&e.secret).unwrap();
        let step = oath.step_at(now() as u64).unwrap();
        let six = otp::Oath::APP
            .code(&bytes, otp::step_at(now() as u64))
            .unwrap();
        assert!(matches!(
            svc.enroll_confirm(&root, &six),
            Err(TwofoldError::InvalidArgument(_))
        ));
        svc.enroll_confirm(&root, &oath.code(&bytes, step).unwrap())
            .unwrap();
    }

    #[test]
    fn imports_are_checked_at_the_door() {
        let svc = service();
        let app = OathParams::app();
        let root = Grant::in_process_root("bob");
        let refused = |secret: &str, codes: &[&str], source: &str| {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            matches!(
                svc.admin_import(&root, secret, &codes, source, "", &app),
                Err(TwofoldError::InvalidArgument(_))
            )
        };
        // 80 bits (old google-authenticator files): below RFC 4226's minimum.
        assert!(refused("JBSWY3DPEHPK3PXP", &[], "google-authenticator"));
        assert!(refused(
            "JBSWY3DPEHPK3PX1JBSWY3DPEH",
            &[],
            "google-authenticator"
        ));
        assert!(refused(GA_SECRET, &["1234567"], "google-authenticator"));
        assert!(refused(
            GA_SECRET,
            &["12345678"; 11],
            "google-authenticator"
        ));
        assert!(refused(GA_SECRET, &[], "pam_krb5"));
        let refused_last_code = |code: &str| {
            matches!(
                svc.admin_import(&root, GA_SECRET, &[], "pam_oath", code, &app),
                Err(TwofoldError::InvalidArgument(_))
            )
        };
        let huge = OathParams {
            period: 0,
            counter: u64::MAX,
            ..OathParams::app()
        };
        assert!(matches!(
            svc.admin_import(&root, GA_SECRET, &[], "pam_oath", "", &huge),
            Err(TwofoldError::InvalidArgument(_))
        ));
        assert!(refused_last_code("12345"));
        assert!(refused_last_code("12345a"));
        assert!(refused_last_code(&"1".repeat(limits::MAX_CODE_LEN + 1)));
        assert!(!svc.status_of("bob").unwrap().enrolled);
    }

    #[test]
    fn regenerate_kills_the_old_set() {
        let svc = service();
        let (_, old) = enroll(&svc, "alice");
        let new = svc
            .regenerate_backup_codes(&Grant::in_process_root("alice"), "")
            .unwrap();
        assert_eq!(new.len(), 10);
        let ctx = HashMap::new();
        assert!(matches!(
            svc.verify(&Grant::in_process_root("alice"), &old[0], &ctx),
            Err(TwofoldError::InvalidCode(_))
        ));
        let ok = svc
            .verify(&Grant::in_process_root("alice"), &new[0], &ctx)
            .unwrap();
        assert_eq!(ok.backup_codes_left, 9);
        assert_eq!(
            svc.status_of("alice").unwrap().last_method,
            method::BACKUP_CODE
        );
    }

    #[test]
    fn non_root_needs_proof_to_regenerate_or_re_enroll() {
        let svc = service();
        let (_, codes) = enroll(&svc, "alice");
        assert!(matches!(
            svc.regenerate_backup_codes(&owner("alice"), ""),
            Err(TwofoldError::InvalidArgument(_))
        ));
        assert!(matches!(
            svc.enroll_begin(&owner("alice"), "", "", &OathParams::app()),
            Err(TwofoldError::AlreadyEnrolled(_))
        ));
        assert!(svc
            .enroll_begin(&owner("alice"), "", &codes[0], &OathParams::app())
            .is_ok());
        // The old secret still works while the new one waits for its confirmation.
        assert!(svc.status_of("alice").unwrap().enrolled);
        assert!(svc
            .regenerate_backup_codes(&owner("alice"), &codes[1])
            .is_ok());
    }

    #[test]
    fn status_reports_step_offsets_newest_first() {
        let svc = service();
        let (secret, _) = enroll(&svc, "alice");
        let step = otp::step_at(now() as u64);
        let ctx = HashMap::from([(context::SERVICE.to_string(), "sshd".to_string())]);
        // Codes are accepted in increasing steps only: -1 (phone behind), then 0.
        let a = svc.verify(
            &Grant::in_process_root("alice"),
            &code_at(&secret, step),
            &ctx,
        );
        if otp::step_at(now() as u64) != step {
            return; // the step rolled over mid-test; the offsets would differ
        }
        assert_eq!(a.unwrap().step_offset, 0);
        let st = svc.status_of("alice").unwrap();
        assert_eq!(st.recent_step_offsets, vec![0]);
        assert_eq!(st.last_service, "sshd");
        assert_eq!(st.last_method, method::TOTP);
        assert!(st.last_used > 0);
    }

    #[test]
    fn root_disable_removes_everything_but_the_audit() {
        let svc = service();
        enroll(&svc, "alice");
        svc.disable(&Grant::in_process_root("alice"), "", "")
            .unwrap();
        let st = svc.status_of("alice").unwrap();
        assert!(!st.enrolled);
        assert_eq!(st.backup_codes_left, 0);
        assert!(matches!(
            svc.disable(&Grant::in_process_root("alice"), "", ""),
            Err(TwofoldError::NotEnrolled(_))
        ));
    }

    fn ctx(rhost: &str, tty: &str) -> HashMap<String, String> {
        HashMap::from([
            (context::SERVICE.to_string(), "sshd".to_string()),
            (context::RHOST.to_string(), rhost.to_string()),
            (context::TTY.to_string(), tty.to_string()),
        ])
    }

    /// sshd's (root's) first question about a login of `user` from `rhost` on `tty`.
    fn root_login(svc: &Service, user: &str, rhost: &str, tty: &str) -> LoginState {
        svc.begin_login(&Grant::in_process_root(user), &ctx(rhost, tty))
            .unwrap()
    }

    /// A wrong code for `user` through sshd (root), from `rhost` on `tty`.
    fn wrong_code(svc: &Service, user: &str, rhost: &str, tty: &str) {
        let _ = svc.verify(&Grant::in_process_root(user), "000000", &ctx(rhost, tty));
    }

    #[test]
    fn remote_guessing_does_not_lock_the_console() {
        let svc = service();
        enroll(&svc, "alice");
        for _ in 0..5 {
            wrong_code(&svc, "alice", "203.0.113.7", "ssh");
        }
        let remote = root_login(&svc, "alice", "203.0.113.7", "ssh");
        assert!(remote.locked_for > 0);
        let other_host = root_login(&svc, "alice", "198.51.100.1", "ssh");
        assert_eq!(other_host.locked_for, 0);
        let console = root_login(&svc, "alice", "", "tty1");
        assert_eq!(console.locked_for, 0, "the console stays usable");
        // Unlock clears every source and is audited with its actor.
        svc.admin_unlock(&Grant::in_process_root("alice")).unwrap();
        let remote = root_login(&svc, "alice", "203.0.113.7", "ssh");
        assert_eq!(remote.locked_for, 0);
        let log = svc
            .audit_log(&Grant::in_process_root("alice"), 0, 100)
            .unwrap();
        assert_eq!(log[0].event, "unlock");
        assert_eq!(log[0].actor_uid, 0);
        assert!(log.iter().any(|e| e.event == "lockout"));
    }

    #[test]
    fn many_remote_hosts_hit_the_per_user_ceiling() {
        let svc = service();
        enroll(&svc, "alice");
        for host in 0..20 {
            wrong_code(&svc, "alice", &format!("198.51.100.{host}"), "");
        }
        let fresh_host = root_login(&svc, "alice", "192.0.2.1", "");
        assert!(
            fresh_host.locked_for > 0,
            "remote logins are capped per user"
        );
        let console = root_login(&svc, "alice", "", "tty1");
        assert_eq!(console.locked_for, 0);
    }

    #[test]
    fn an_unprivileged_callers_made_up_terminals_share_one_counter_and_are_not_recorded() {
        let svc = service();
        enroll(&svc, "alice");
        let mut locked = None;
        for i in 0..60 {
            let forged = ctx(&format!("198.51.100.{i}"), &format!("fake{i}"));
            if let Err(TwofoldError::Locked(_)) = svc.verify(&owner("alice"), "000000", &forged) {
                locked = Some(i);
                break;
            }
        }
        let max = Policy::default().lockout.max_failures as usize;
        assert_eq!(
            locked,
            Some(max - 1),
            "locked at the limit, whatever the context"
        );
        let log = svc
            .audit_log(&Grant::in_process_root("alice"), 0, 100)
            .unwrap();
        let failures: Vec<_> = log.iter().filter(|e| e.event == "verify_failed").collect();
        assert!(!failures.is_empty());
        for e in failures {
            assert_eq!(e.service, SELF_SERVICE);
            assert!(e.tty.is_empty() && e.rhost.is_empty(), "{e:?}");
            assert_eq!((e.actor_uid, e.actor_pid), (1000, 4242));
        }
        // The login service's context is still believed: root's console is not locked.
        let console = root_login(&svc, "alice", "", "tty1");
        assert_eq!(console.locked_for, 0);
    }

    fn trusting(config: &str) -> Service {
        let svc = service();
        svc.set_policy(Policy::parse(config).unwrap());
        svc
    }

    fn trusted_skips(svc: &Service) -> Vec<AuditEntry> {
        let log = svc.audit_log(&Grant::in_process_root(""), 0, 100).unwrap();
        log.into_iter()
            .filter(|e| e.event == "trusted_network")
            .collect()
    }

    #[test]
    fn a_login_from_a_trusted_network_is_not_asked_and_is_audited() {
        let svc = trusting("trusted_networks = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n");
        enroll(&svc, "alice");
        let root = Grant::in_process_root("alice");
        for rhost in ["192.0.2.7", "::ffff:192.0.2.8", "2001:db8::9"] {
            let state = svc.begin_login(&root, &ctx(rhost, "ssh")).unwrap();
            // The module's "required, within the grace": it steps aside.
            assert!(
                !state.enrolled && state.required && !state.bypass_pending,
                "{rhost}"
            );
            assert_eq!(state.enroll_deadline, i64::MAX);
            assert_eq!(state.message, TRUSTED_NETWORK_MESSAGE);
        }
        let skips = trusted_skips(&svc);
        assert_eq!(skips.len(), 3, "{skips:?}");
        let last = &skips[0];
        assert_eq!(
            (last.user.as_str(), last.service.as_str()),
            ("alice", "sshd")
        );
        assert_eq!(last.rhost, "2001:db8::9");
        assert_eq!(last.detail, "no code asked: in 2001:db8::/32");
        assert_eq!(skips[1].detail, "no code asked: in 192.0.2.0/24");
        // Enrollment is untouched: the user still has a code elsewhere.
        assert!(svc.status_of("alice").unwrap().enrolled);
    }

    #[test]
    fn other_logins_are_asked_as_before() {
        let svc = trusting("trusted_networks = [\"192.0.2.0/24\", \"127.0.0.0/8\"]\n");
        enroll(&svc, "alice");
        let root = Grant::in_process_root("alice");
        for rhost in [
            "",
            "198.51.100.1",
            "localhost",
            "host.example.org",
            "192.0.2.7 ",
            "[192.0.2.7]",
        ] {
            let state = svc.begin_login(&root, &ctx(rhost, "ssh")).unwrap();
            assert!(state.enrolled && !state.required, "{rhost:?}: {state:?}");
        }
        // An unprivileged caller's rhost is made up: never believed.
        let state = svc
            .begin_login(&owner("alice"), &ctx("192.0.2.7", "ssh"))
            .unwrap();
        assert!(state.enrolled && !state.required, "{state:?}");
        assert_eq!(trusted_skips(&svc), []);
        // Off by default.
        let svc = service();
        enroll(&svc, "alice");
        let state = svc.begin_login(&root, &ctx("192.0.2.7", "ssh")).unwrap();
        assert!(state.enrolled, "{state:?}");
    }

    #[test]
    fn a_groups_networks_spare_only_its_members() {
        let svc =
            trusting("[[trusted_networks_for]]\ngroup = \"root\"\nnetworks = [\"192.0.2.0/24\"]\n");
        enroll(&svc, "root");
        enroll(&svc, "alice");
        let member = root_login(&svc, "root", "192.0.2.7", "ssh");
        assert!(member.required && !member.enrolled, "{member:?}");
        let other = root_login(&svc, "alice", "192.0.2.7", "ssh");
        assert!(other.enrolled && !other.required, "{other:?}");
        let skips = trusted_skips(&svc);
        assert_eq!(skips.len(), 1);
        assert_eq!(
            skips[0].detail,
            "no code asked: in 192.0.2.0/24 (for group root)"
        );
    }

    #[test]
    fn status_says_who_must_prove() {
        let svc = service();
        enroll(&svc, "alice");
        assert!(svc.status(&owner("alice")).unwrap().proof_required);
        assert!(
            !svc.status(&Grant::in_process_root("alice"))
                .unwrap()
                .proof_required
        );
        let admin = Grant::for_tests(
            Caller {
                uid: 1001,
                pid: None,
            },
            "alice",
            Role::Admin,
        );
        assert!(!svc.status(&admin).unwrap().proof_required);
        // An administrator regenerates without the user's code.
        assert_eq!(svc.regenerate_backup_codes(&admin, "").unwrap().len(), 10);
    }

    #[test]
    fn required_groups_give_a_grace_then_refuse() {
        let svc = service();
        let mut policy = Policy {
            require_groups: vec!["root".into()],
            ..Policy::default()
        };
        svc.set_policy(policy.clone());
        let within = root_login(&svc, "root", "", "tty1");
        assert!(within.required && !within.enrolled);
        assert!(within.enroll_deadline > now());
        assert!(
            within.message.contains("twofold enroll"),
            "{}",
            within.message
        );
        assert!(svc.status_of("root").unwrap().required);
        // A user outside the group is not required.
        let outside = root_login(&svc, "daemon", "", "tty1");
        assert!(!outside.required);
        policy.enroll_grace = 0;
        svc.set_policy(policy);
        let after = root_login(&svc, "root", "", "tty1");
        assert!(after.required && after.enroll_deadline <= now());
        assert!(
            after.message.contains("your system administrator"),
            "{}",
            after.message
        );
    }

    #[test]
    fn reset_with_bypass_code_works_once() {
        let svc = service();
        enroll(&svc, "alice");
        let code = svc
            .admin_reset(
                &Grant::in_process_root("alice"),
                "lost phone, ID checked",
                2,
            )
            .unwrap();
        assert!(!svc.status_of("alice").unwrap().enrolled);
        let state = root_login(&svc, "alice", "", "tty1");
        assert!(state.bypass_pending);
        let ok = svc
            .verify(&Grant::in_process_root("alice"), &code, &ctx("", "tty1"))
            .unwrap();
        assert_eq!(ok.method, method::BYPASS);
        assert!(matches!(
            svc.verify(&Grant::in_process_root("alice"), &code, &ctx("", "tty1")),
            Err(TwofoldError::NotEnrolled(_))
        ));
        let log = svc
            .audit_log(&Grant::in_process_root("alice"), 0, 100)
            .unwrap();
        let events: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
        assert!(events.contains(&"reset") && events.contains(&"bypass_issued"));
        assert!(events.contains(&"bypass_used"));
        assert!(log.iter().any(|e| e.detail.contains("lost phone")));
        assert!(
            svc.admin_reset(&Grant::in_process_root("alice"), "", 0)
                .is_err(),
            "a reason is required"
        );
    }
}

//! Who may do what: the one table of rules, the typed grant that the bus layer hands to
//! every method, and the per-caller bounds (rate limit, exact per-user locks, lanes).
//!
//! The bus layer (`dbus::TwofoldInterface::authorize`) is the only place that turns D-Bus
//! credentials into a [`Grant`]; the service takes the grant and never looks at a uid
//! again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use twofold_contract::TwofoldError;

use crate::service::{Caller, UNKNOWN_USERS};

/// What a method is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read enrollment and lockout state.
    Status,
    /// Check a code (logins; screen lockers verify as the user).
    Verify,
    /// Begin or confirm an enrollment.
    Enroll,
    /// Replace the backup codes.
    RegenerateBackupCodes,
    /// List, add or remove devices.
    Devices,
    /// Turn two-factor authentication off.
    Disable,
    /// The module's pre-prompt question about a login.
    BeginLogin,
    /// Administration: list users, reset, unlock, import, hardware tokens, read the audit
    /// trail.
    Administer,
    /// Register or close a login session (the PAM module's session hooks).
    RegisterSession,
    /// Ask about the grace window (the PAM module's auth hook).
    CheckGrace,
    /// List a user's sessions and remembered logins.
    ListSessions,
    /// End a user's session.
    RevokeSession,
    /// Change a user's session timeout or forget their remembered logins.
    SessionSettings,
}

/// How an action is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Root only: the PAM module inside sshd, sudo, login.
    LoginService,
    /// Root, or the caller on its own account; never delegated to polkit (checking
    /// codes is the account owner's business or the login service's).
    OwnerOrRoot,
    /// Root, the caller on its own account, or an administrator (polkit
    /// `org.twofold.administer`) on any account.
    OwnerOrAdmin,
    /// Root or an administrator only.
    Admin,
}

impl Action {
    /// The one table: each action's rule. A new action does not compile without one.
    pub const fn rule(self) -> Rule {
        match self {
            Action::RegisterSession | Action::CheckGrace => Rule::LoginService,
            Action::Verify | Action::BeginLogin => Rule::OwnerOrRoot,
            Action::Status
            | Action::Enroll
            | Action::RegenerateBackupCodes
            | Action::Devices
            | Action::Disable
            | Action::ListSessions
            | Action::RevokeSession
            | Action::SessionSettings => Rule::OwnerOrAdmin,
            Action::Administer => Rule::Admin,
        }
    }
}

/// In what capacity the caller acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Root: the PAM module inside a login service, or root's own CLI. Its login
    /// context (service, tty, rhost) is trusted and it needs no proof.
    LoginService,
    /// An unprivileged caller on its own account: its context is not trusted, and
    /// changes need proof (a current code or backup code).
    Owner,
    /// An unprivileged caller that polkit allowed to administer (any account).
    Admin,
}

/// Permission to run one call: who asks, about whom, in what role. Only [`decide`] makes
/// one, by the rule of [`Action::rule`]; every service method takes one, so a method
/// that skips the decision has nothing to call the service with.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    caller: Caller,
    user: String,
    role: Role,
}

impl Grant {
    fn new(caller: Caller, user: String, role: Role) -> Grant {
        Grant { caller, user, role }
    }

    /// A grant for root in this process, for code that holds the service directly and
    /// is root by construction (tests, the bench's seeding); never for a D-Bus caller.
    pub fn in_process_root(user: &str) -> Grant {
        Grant::new(
            Caller { uid: 0, pid: None },
            user.to_string(),
            Role::LoginService,
        )
    }

    /// Any grant, for unit tests of the service.
    #[cfg(test)]
    pub(crate) fn for_tests(caller: Caller, user: &str, role: Role) -> Grant {
        Grant::new(caller, user.to_string(), role)
    }

    /// The caller, for the audit trail.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// The user the call is about ("" for administration of everyone).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The caller must prove a current code or backup code to change 2FA settings.
    pub fn proof_required(&self) -> bool {
        self.role == Role::Owner
    }

    /// The login context the caller sent (service, tty, rhost) may be believed: it
    /// goes into lockout keys and records. Only root's is.
    pub fn trusts_context(&self) -> bool {
        self.role == Role::LoginService
    }
}

/// What the rule table says about one call.
pub enum Decision {
    /// Allowed, in the grant's role.
    Granted(Grant),
    /// Allowed if polkit grants `org.twofold.administer` to the caller.
    AskPolkit(PolkitPending),
    /// Refused, by this rule.
    Denied(Rule),
}

/// A call that only an administrator may make: [`PolkitPending::allowed`] once polkit
/// said yes.
pub struct PolkitPending {
    caller: Caller,
    user: String,
}

impl PolkitPending {
    /// Polkit allowed it: the caller acts as an administrator.
    pub fn allowed(self) -> Grant {
        Grant::new(self.caller, self.user, Role::Admin)
    }
}

/// The one decision: `caller` (from D-Bus credentials) wants to do `action` to `user`
/// (resolved through NSS, with its uid; no uid for administration of everyone).
pub fn decide(action: Action, caller: Caller, user: String, user_uid: Option<u32>) -> Decision {
    let rule = action.rule();
    if caller.uid == 0 {
        return Decision::Granted(Grant::new(caller, user, Role::LoginService));
    }
    match rule {
        Rule::LoginService => Decision::Denied(rule),
        Rule::OwnerOrRoot | Rule::OwnerOrAdmin if user_uid == Some(caller.uid) => {
            Decision::Granted(Grant::new(caller, user, Role::Owner))
        }
        Rule::OwnerOrRoot => Decision::Denied(rule),
        Rule::OwnerOrAdmin | Rule::Admin => Decision::AskPolkit(PolkitPending { caller, user }),
    }
}

/// A login service asking about a user name that does not exist: charged to the
/// unknown-users counter of its source. Only root's login context names a source.
pub fn unknown_user_login(caller: Caller) -> Option<Grant> {
    (caller.uid == 0).then(|| Grant::new(caller, UNKNOWN_USERS.to_string(), Role::LoginService))
}

/// Requests an unprivileged uid may make in a burst, and per second after it.
pub const RATE_BURST: f64 = 30.0;
/// See [`RATE_BURST`].
pub const RATE_PER_SECOND: f64 = 5.0;
/// Requests past its rate that a uid may have waiting for their turn; more are refused
/// at once. Waiting (rather than an instant refusal) is what stops a client that sends
/// as fast as it gets answers: it gets answers at the rate, not faster.
pub const RATE_QUEUE: f64 = 8.0;
/// Buckets kept at most; full ones are dropped first (a full bucket is a new one).
const RATE_BUCKETS_MAX: usize = 4096;

/// Per-uid token buckets for unprivileged callers. Root (the login services) is never
/// limited here: its logins are throttled per source by the lockout counters.
#[derive(Default)]
pub struct RateLimiter {
    /// Tokens (negative: requests queued for later turns) and when they were counted.
    buckets: Mutex<HashMap<u32, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes a turn for one request of `uid`, waiting for it when the uid is past its
    /// rate but within its queue; refuses when the queue is full.
    pub async fn admit(&self, uid: u32) -> Result<(), TwofoldError> {
        let wait = self.turn_at(uid, Instant::now())?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// How long the request must wait for its turn, or a refusal.
    fn turn_at(&self, uid: u32, now: Instant) -> Result<Duration, TwofoldError> {
        if uid == 0 {
            return Ok(Duration::ZERO);
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let refill = |(tokens, at): (f64, Instant)| {
            let gained = now.saturating_duration_since(at).as_secs_f64() * RATE_PER_SECOND;
            (tokens + gained).min(RATE_BURST)
        };
        if buckets.len() >= RATE_BUCKETS_MAX && !buckets.contains_key(&uid) {
            buckets.retain(|_, b| refill(*b) < RATE_BURST);
            if buckets.len() >= RATE_BUCKETS_MAX {
                return Err(busy());
            }
        }
        let bucket = buckets.entry(uid).or_insert((RATE_BURST, now));
        let left = refill(*bucket) - 1.0;
        if left < -RATE_QUEUE {
            return Err(busy());
        }
        *bucket = (left, now);
        Ok(Duration::from_secs_f64((-left).max(0.0) / RATE_PER_SECOND))
    }
}

fn busy() -> TwofoldError {
    TwofoldError::RateLimited(format!(
        "more than {RATE_PER_SECOND} requests per second (bursts of {RATE_BURST}) from one user"
    ))
}

/// One lock per user name, exactly: one user's attempts are judged one at a time, and
/// no user ever waits on another's lock. Entries go when nobody holds or waits.
#[derive(Default)]
pub struct UserLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl UserLocks {
    /// The lock of `user` (held by the caller until the guard drops).
    pub async fn lock(&self, user: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(lock) = locks.get(user).and_then(Weak::upgrade) {
                lock
            } else {
                // Forget the users nobody holds any more before adding one: the map is
                // bounded by the requests in flight.
                locks.retain(|_, weak| weak.strong_count() > 0);
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(user.to_string(), Arc::downgrade(&lock));
                lock
            }
        };
        lock.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().map(|l| l.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_the_rule_of_the_table() {
        assert_eq!(Action::RegisterSession.rule(), Rule::LoginService);
        assert_eq!(Action::CheckGrace.rule(), Rule::LoginService);
        assert_eq!(Action::Verify.rule(), Rule::OwnerOrRoot);
        assert_eq!(Action::Disable.rule(), Rule::OwnerOrAdmin);
        assert_eq!(Action::Administer.rule(), Rule::Admin);
    }

    #[test]
    fn only_owners_prove_and_only_root_is_believed() {
        let caller = Caller {
            uid: 1000,
            pid: Some(7),
        };
        let owner = Grant::new(caller, "alice".into(), Role::Owner);
        assert!(owner.proof_required() && !owner.trusts_context());
        let admin = Grant::new(caller, "bob".into(), Role::Admin);
        assert!(!admin.proof_required() && !admin.trusts_context());
        let root = Grant::in_process_root("alice");
        assert!(!root.proof_required() && root.trusts_context());
    }

    #[test]
    fn decisions_follow_the_table() {
        let root = Caller { uid: 0, pid: None };
        let alice = Caller {
            uid: 1000,
            pid: None,
        };
        let role = |d: Decision| match d {
            Decision::Granted(g) => format!("{:?}", g.role()),
            Decision::AskPolkit(p) => format!("polkit:{:?}", p.allowed().role()),
            Decision::Denied(rule) => format!("denied:{rule:?}"),
        };
        let on = |action, caller, uid| role(decide(action, caller, "alice".into(), uid));
        assert_eq!(on(Action::CheckGrace, root, Some(1000)), "LoginService");
        assert_eq!(
            on(Action::CheckGrace, alice, Some(1000)),
            "denied:LoginService"
        );
        assert_eq!(on(Action::Verify, alice, Some(1000)), "Owner");
        assert_eq!(on(Action::Verify, alice, Some(1001)), "denied:OwnerOrRoot");
        assert_eq!(on(Action::Disable, alice, Some(1000)), "Owner");
        assert_eq!(on(Action::Disable, alice, Some(1001)), "polkit:Admin");
        assert_eq!(on(Action::Administer, alice, Some(1000)), "polkit:Admin");
        assert_eq!(on(Action::Administer, root, None), "LoginService");
        assert!(unknown_user_login(alice).is_none());
        assert_eq!(unknown_user_login(root).unwrap().user(), UNKNOWN_USERS);
    }

    #[test]
    fn a_uid_gets_its_burst_then_waits_its_turn_then_is_refused() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..RATE_BURST as usize {
            assert_eq!(limiter.turn_at(1000, t0).unwrap(), Duration::ZERO);
        }
        // Past the burst: queued, each a fifth of a second after the one before.
        let mut waits = Vec::new();
        for _ in 0..RATE_QUEUE as usize {
            waits.push(limiter.turn_at(1000, t0).unwrap());
        }
        assert_eq!(waits[0], Duration::from_millis(200));
        assert_eq!(*waits.last().unwrap(), Duration::from_millis(1600));
        assert!(matches!(
            limiter.turn_at(1000, t0),
            Err(TwofoldError::RateLimited(_))
        ));
        // Another uid has its own bucket; root has none.
        assert_eq!(limiter.turn_at(1001, t0).unwrap(), Duration::ZERO);
        for _ in 0..1000 {
            assert_eq!(limiter.turn_at(0, t0).unwrap(), Duration::ZERO);
        }
        // Three seconds later the queue has drained and a few turns are free again.
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(limiter.turn_at(1000, t3).unwrap(), Duration::ZERO);
    }

    #[tokio::test]
    async fn user_locks_are_exact_and_forgotten_when_free() {
        let locks = UserLocks::default();
        let alice = locks.lock("alice").await;
        // Another user never waits on alice's lock, whatever the names hash to.
        for i in 0..200 {
            let other =
                tokio::time::timeout(Duration::from_millis(100), locks.lock(&format!("user{i}")))
                    .await;
            assert!(other.is_ok(), "user{i} waited behind alice");
        }
        // alice's second request waits for the first.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), locks.lock("alice"))
                .await
                .is_err()
        );
        drop(alice);
        let _again = locks.lock("alice").await;
        assert!(locks.len() <= 2, "freed locks are forgotten");
    }
}

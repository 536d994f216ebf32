//! The D-Bus face of the daemon: `org.twofold.Twofold1` on `/org/twofold/Twofold1`.
//!
//! Every method first goes through [`TwofoldInterface::authorize`], the one place where
//! access is decided, from the caller's D-Bus credentials only (never from an argument), by
//! the rule table of [`crate::authz`]; it hands the method a [`Grant`]. The same object is
//! served on the bus and, one instance per connection, on the direct socket (see
//! [`crate::direct`]), where the caller is the socket's peer (`SO_PEERCRED`). Every other
//! value a caller sends is checked at the door against the contract's limits. Then the work
//! runs off the bus loop, in the login services' lane or the (smaller) lane of everyone
//! else, under the exact per-user lock, so that one user's attempts are judged one at a
//! time and nobody else's requests can make a root login wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use twofold_contract::{
    limits, AdminUser, AuditEntry, DeviceInfo, Enrollment, LoginState, OathParams, SessionList,
    TwofoldError, UserStatus, Verified,
};
use twofold_contract::{TokenInfo, TokenSeed, TokensImported};
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::Variant;
use zeroize::Zeroizing;

pub use crate::authz::Action;
use crate::authz::{self, Decision, Grant, RateLimiter, Role, Rule, UserLocks};
use crate::logging::safe;
use crate::service::{no_such_user, Caller, Service};
use crate::sessions::Sessions;

mod direct_calls;
pub use direct_calls::DirectCalls;

/// Bound on the credentials cache (unique names are never reused on a bus, so a cached
/// entry can only be stale in that it is no longer needed).
const CREDENTIALS_CACHE_MAX: usize = 4096;

/// The polkit action for administering other users.
pub const ADMINISTER: &str = "org.twofold.administer";
/// How long polkit may take to answer.
const POLKIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The served `org.twofold.Twofold1` interface (what zbus's object server and the direct
/// socket call the methods of). Its clones (the bus's, and one per direct connection) share
/// the same state: the rate limits and user locks hold across all connections.
#[derive(Clone)]
pub struct TwofoldInterface {
    service: Arc<Service>,
    connection: zbus::Connection,
    dbus: DBusProxy<'static>,
    credentials: Arc<Credentials>,
    limiter: Arc<RateLimiter>,
    user_locks: Arc<UserLocks>,
    sessions: Arc<Sessions>,
    /// On a direct (peer-to-peer) connection: the peer, from `SO_PEERCRED` of the
    /// accepted socket. None on the bus, where each message's sender is looked up.
    peer: Option<Caller>,
}

/// Requests of the login services (root) whose blocking work may run at once. Each
/// holds a thread meanwhile (whose stack stays resident once used); more would not go
/// faster on a small machine, and the others wait without holding one.
const LOGIN_LANE: usize = 12;
/// The same for every other caller: a smaller lane of its own, so that no amount of
/// unprivileged traffic makes a root login wait for a turn.
const OTHERS_LANE: usize = 4;

/// Runs blocking work (NSS, SQLite, Argon2) of one request without stalling the bus, in
/// the lane of the caller's role.
///
/// On the daemon's multi-thread runtime the request's own worker runs it after handing
/// its other tasks to another thread (`block_in_place`): the bus keeps being served, and
/// the request does not pay two thread switches per step as with `spawn_blocking`.
async fn blocking<T: Send + 'static>(
    role: Role,
    f: impl FnOnce() -> Result<T, TwofoldError> + Send + 'static,
) -> Result<T, TwofoldError> {
    static LOGINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LOGIN_LANE);
    static OTHERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(OTHERS_LANE);
    let lane = match role {
        Role::LoginService => &LOGINS,
        Role::Owner | Role::Admin => &OTHERS,
    };
    let _turn = lane.acquire().await;
    let failed = |what: &dyn std::fmt::Display| {
        log::error!("request worker failed: {what}");
        Err(TwofoldError::Internal(
            "twofoldd failed internally; see its log".into(),
        ))
    };
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        return tokio::task::block_in_place(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| failed(&"panic"))
        });
    }
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| failed(&e))
}

/// A login context checked at the door (size, keys, characters) before anything else
/// looks at it.
fn checked(context: HashMap<String, String>) -> Result<HashMap<String, String>, TwofoldError> {
    limits::login_context(&context)?;
    Ok(context)
}

/// Callers by unique bus name, each read from the bus once. A lookup in flight is
/// shared: a call that arrives while the prefetch of its sender is under way waits for
/// it instead of asking again.
#[derive(Default)]
pub struct Credentials {
    by_name: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<Caller>>>>>,
}

impl Credentials {
    fn cell(&self, unique_name: &str) -> Arc<tokio::sync::OnceCell<Option<Caller>>> {
        let Ok(mut map) = self.by_name.lock() else {
            return Arc::default();
        };
        if map.len() >= CREDENTIALS_CACHE_MAX && !map.contains_key(unique_name) {
            map.clear();
        }
        map.entry(unique_name.to_string()).or_default().clone()
    }

    fn forget(&self, unique_name: &str) {
        if let Ok(mut map) = self.by_name.lock() {
            map.remove(unique_name);
        }
    }

    /// The caller behind `unique_name`, from the bus (once per name); None when the bus
    /// cannot say (the connection is gone, or has no uid).
    async fn lookup(&self, dbus: &DBusProxy<'static>, unique_name: &str) -> Option<Caller> {
        let cell = self.cell(unique_name);
        let found = *cell
            .get_or_init(|| async {
                let name = BusName::try_from(unique_name).ok()?;
                match dbus.get_connection_credentials(name).await {
                    Ok(creds) => Some(Caller {
                        uid: creds.unix_user_id()?,
                        pid: creds.process_id(),
                    }),
                    Err(e) => {
                        log::debug!("cannot read the credentials of {unique_name}: {e}");
                        None
                    }
                }
            })
            .await;
        if found.is_none() {
            // Not kept: a later call asks the bus again.
            self.forget(unique_name);
        }
        found
    }
}

impl TwofoldInterface {
    /// Wraps the service for serving on `connection`.
    pub async fn new(
        service: Arc<Service>,
        connection: &zbus::Connection,
    ) -> zbus::Result<TwofoldInterface> {
        let dbus = DBusProxy::builder(connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let sessions = Arc::new(Sessions::new(service.clone(), Some(connection.clone())));
        Ok(TwofoldInterface {
            sessions,
            service,
            connection: connection.clone(),
            dbus,
            credentials: Arc::new(Credentials::default()),
            limiter: Arc::default(),
            user_locks: Arc::default(),
            peer: None,
        })
    }

    /// The instance serving one direct connection, whose peer is `peer` (read by the
    /// kernel when the connection was accepted). It shares all state with `self`.
    pub fn for_peer(&self, peer: Caller) -> TwofoldInterface {
        TwofoldInterface {
            peer: Some(peer),
            ..self.clone()
        }
    }

    /// Reads the credentials of every new bus connection as it appears, and forgets them
    /// when it leaves. A login's first call then usually finds its caller cached, instead
    /// of waiting for a round trip to the bus: the PAM module connects, then asks who
    /// owns our name, and by the time its call arrives the answer is here. A miss still
    /// asks the bus (see [`Self::caller`]). The entries come from the bus alone, keyed by
    /// unique names, which are never reused.
    pub fn prefetch_credentials(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (dbus, cache) = (self.dbus.clone(), self.credentials.clone());
        async move {
            use futures_lite::StreamExt;
            let mut changes = match dbus.receive_name_owner_changed().await {
                Ok(changes) => changes,
                Err(e) => {
                    log::warn!(
                        "cannot watch new bus connections (credentials are read per call): {e}"
                    );
                    return;
                }
            };
            while let Some(change) = changes.next().await {
                let Ok(args) = change.args() else { continue };
                let BusName::Unique(name) = args.name() else {
                    continue;
                };
                let name = name.to_string();
                match (args.old_owner().is_some(), args.new_owner().is_some()) {
                    (false, true) => {
                        let (dbus, cache) = (dbus.clone(), cache.clone());
                        tokio::spawn(async move {
                            cache.lookup(&dbus, &name).await;
                        });
                    }
                    (true, false) => cache.forget(&name),
                    _ => {}
                }
            }
        }
    }

    /// Who sent this message: the peer of a direct connection, else the bus's word for
    /// its sender. Never anything the message itself says.
    async fn caller(&self, header: &Header<'_>) -> Result<Caller, TwofoldError> {
        if let Some(peer) = self.peer {
            return Ok(peer);
        }
        let sender = header
            .sender()
            .ok_or_else(|| TwofoldError::PermissionDenied("anonymous caller".into()))?
            .to_string();
        self.credentials
            .lookup(&self.dbus, &sender)
            .await
            .ok_or_else(|| {
                log::error!("cannot read the credentials of {sender}");
                TwofoldError::PermissionDenied("the bus did not vouch for the caller".into())
            })
    }

    /// Runs the service's `op` for `grant` on the worker pool (see [`blocking`]).
    async fn run<T: Send + 'static>(
        &self,
        grant: Grant,
        op: impl FnOnce(&Service, &Grant) -> Result<T, TwofoldError> + Send + 'static,
    ) -> Result<T, TwofoldError> {
        let service = self.service.clone();
        blocking(grant.role(), move || op(&service, &grant)).await
    }

    /// Runs `op` on the login sessions for `grant` on the worker pool.
    async fn with_sessions<T: Send + 'static>(
        &self,
        grant: Grant,
        op: impl FnOnce(&Sessions, &Grant) -> Result<T, TwofoldError> + Send + 'static,
    ) -> Result<T, TwofoldError> {
        let sessions = self.sessions.clone();
        blocking(grant.role(), move || op(&sessions, &grant)).await
    }

    /// [`Self::run`] holding the grant's user lock: one change of a user at a time (an
    /// enrollment and a verification of the same user never interleave).
    async fn serialized<T: Send + 'static>(
        &self,
        grant: Grant,
        op: impl FnOnce(&Service, &Grant) -> Result<T, TwofoldError> + Send + 'static,
    ) -> Result<T, TwofoldError> {
        let _serialized = self.user_locks.lock(grant.user()).await;
        self.run(grant, op).await
    }

    /// The one authorization decision, made before every method: who is calling (from
    /// D-Bus credentials only), which user the call is about ("" = the caller), and
    /// whether [`Action::rule`] allows it. An unprivileged caller is first charged to its
    /// uid's rate limit. The answer is a [`Grant`] naming the role the caller acts in.
    pub async fn authorize(
        &self,
        header: &Header<'_>,
        action: Action,
        user: &str,
    ) -> Result<Grant, TwofoldError> {
        let caller = self.caller(header).await?;
        self.limiter.admit(caller.uid).await.inspect_err(|_| {
            log::warn!(
                "rate-limited {action:?} from uid {} (pid {:?})",
                caller.uid,
                caller.pid
            );
        })?;
        let rule = action.rule();
        if rule == Rule::LoginService && caller.uid != 0 {
            // Refused before any lookup on its behalf.
            return Err(self.denied(action, rule, caller, user));
        }
        if !user.is_empty() {
            limits::user_name(user)?;
        }
        let target = if rule == Rule::Admin && user.is_empty() {
            None // administration of everyone
        } else {
            let requested = user.to_string();
            let lane = if caller.uid == 0 {
                Role::LoginService
            } else {
                Role::Owner
            };
            Some(blocking(lane, move || resolve(caller, requested)).await?)
        };
        let (name, target_uid) = match target {
            Some((name, uid)) => (name, Some(uid)),
            None => (String::new(), None),
        };
        match authz::decide(action, caller, name, target_uid) {
            Decision::Granted(grant) => Ok(grant),
            Decision::AskPolkit(pending) if self.polkit_allows(header, ADMINISTER).await => {
                let grant = pending.allowed();
                log::info!(
                    "polkit allowed uid {} to {action:?} {}",
                    caller.uid,
                    safe(grant.user())
                );
                Ok(grant)
            }
            Decision::AskPolkit(_) => Err(self.denied(action, Rule::Admin, caller, user)),
            Decision::Denied(rule) => Err(self.denied(action, rule, caller, user)),
        }
    }

    /// [`Self::authorize`] for administering one user, who must be named: "" would mean
    /// everyone. `unnamed` is the error's message when no user is.
    async fn administer_one(
        &self,
        header: &Header<'_>,
        user: &str,
        unnamed: &str,
    ) -> Result<Grant, TwofoldError> {
        if user.is_empty() {
            return Err(TwofoldError::InvalidArgument(unnamed.into()));
        }
        self.authorize(header, Action::Administer, user).await
    }

    fn denied(&self, action: Action, rule: Rule, caller: Caller, user: &str) -> TwofoldError {
        log::warn!(
            "denied {action:?} on {} to uid {} (pid {:?})",
            safe(user),
            caller.uid,
            caller.pid
        );
        TwofoldError::PermissionDenied(match rule {
            Rule::LoginService => "Only root (the PAM module) may do this.".into(),
            Rule::Admin => "This needs an administrator (root, or the \
                            org.twofold.administer polkit permission)."
                .into(),
            Rule::OwnerOrRoot | Rule::OwnerOrAdmin => {
                "You may only act on your own account.".into()
            }
        })
    }

    /// Asks polkit whether the caller (subject: its bus name) may do `action_id`. Any
    /// failure to get an answer is a no.
    async fn polkit_allows(&self, header: &Header<'_>, action_id: &str) -> bool {
        if self.peer.is_some() {
            // The direct socket is root's (0600): a peer there needs no polkit, and polkit
            // could not name any other one (it knows bus names and processes).
            return false;
        }
        let Some(sender) = header.sender() else {
            return false;
        };
        let subject = (
            "system-bus-name",
            HashMap::from([("name", Variant::from(sender.as_str()))]),
        );
        let details: HashMap<&str, &str> = HashMap::new();
        // No interaction: an SSH session has no polkit agent to answer it.
        let args = (subject, action_id, details, 0u32, "");
        let call = self.connection.call_method(
            Some("org.freedesktop.PolicyKit1"),
            "/org/freedesktop/PolicyKit1/Authority",
            Some("org.freedesktop.PolicyKit1.Authority"),
            "CheckAuthorization",
            &args,
        );
        match tokio::time::timeout(POLKIT_TIMEOUT, call).await {
            Ok(Ok(reply)) => match reply
                .body()
                .deserialize::<(bool, bool, HashMap<String, String>)>()
            {
                Ok((authorized, _, _)) => authorized,
                Err(e) => {
                    log::error!("polkit answered something unexpected: {e}");
                    false
                }
            },
            Ok(Err(e)) => {
                log::warn!("polkit did not authorize {action_id}: {e}");
                false
            }
            Err(_) => {
                log::error!("polkit did not answer within {POLKIT_TIMEOUT:?}");
                false
            }
        }
    }

    /// The session state, for the reaper (see `sessions::revoke::reaper`).
    pub fn sessions(&self) -> Arc<Sessions> {
        self.sessions.clone()
    }

    /// A login for a user name that does not exist still counts: a login service (root)
    /// asking about one is charged to the unknown-users counter of the login's source,
    /// so that guessing names is throttled like guessing codes.
    async fn refused_login(
        &self,
        header: &Header<'_>,
        error: TwofoldError,
        requested: &str,
        context: HashMap<String, String>,
    ) -> TwofoldError {
        let TwofoldError::UnknownUser(_) = error else {
            return error;
        };
        let Ok(context) = checked(context) else {
            return error;
        };
        // Only a login service's context names a source to charge.
        let Ok(caller) = self.caller(header).await else {
            return error;
        };
        let Some(grant) = authz::unknown_user_login(caller) else {
            return error;
        };
        let service = self.service.clone();
        let requested = requested.to_string();
        blocking(grant.role(), move || {
            Ok(service.unknown_user_attempt(&grant, &requested, &context))
        })
        .await
        .unwrap_or_else(|e| e)
    }
}

/// Resolves the target user through NSS: (name, uid).
fn resolve(caller: Caller, requested: String) -> Result<(String, u32), TwofoldError> {
    if requested.is_empty() {
        return match nix::unistd::User::from_uid(caller.uid.into()) {
            Ok(Some(u)) => Ok((u.name, caller.uid)),
            Ok(None) => Err(TwofoldError::UnknownUser(format!(
                "uid {} has no user name",
                caller.uid
            ))),
            Err(e) => Err(TwofoldError::Internal(format!("user lookup failed: {e}"))),
        };
    }
    match nix::unistd::User::from_name(&requested) {
        Ok(Some(u)) => Ok((u.name, u.uid.as_raw())),
        Ok(None) => Err(no_such_user(&requested)),
        Err(e) => Err(TwofoldError::Internal(format!("user lookup failed: {e}"))),
    }
}

#[zbus::interface(name = "org.twofold.Twofold1")]
impl TwofoldInterface {
    /// Enrollment, backup codes and lockout state of `user` ("" = the caller).
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<UserStatus, TwofoldError> {
        let grant = self.authorize(&header, Action::Status, user).await?;
        self.run(grant, move |service, grant| service.status(grant))
            .await
    }

    /// Checks a TOTP code or a backup code; `context` names the login for the audit trail.
    async fn verify(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        code: String,
        context: HashMap<String, String>,
    ) -> Result<Verified, TwofoldError> {
        let code = Zeroizing::new(code);
        let grant = match self.authorize(&header, Action::Verify, user).await {
            Ok(grant) => grant,
            Err(e) => return Err(self.refused_login(&header, e, user, context).await),
        };
        let context = checked(context)?;
        let _serialized = self.user_locks.lock(grant.user()).await;
        let service = self.service.clone();
        let sessions = self.sessions.clone();
        blocking(grant.role(), move || {
            let verified = service.verify(&grant, &code, &context)?;
            if grant.trusts_context() {
                // A login passed: remember it for the grace window and for the session
                // this login opens.
                sessions.record_pass(grant.caller(), grant.user(), &context, &verified.method);
            }
            Ok(verified)
        })
        .await
    }

    /// Starts an enrollment; the secret and URI are returned to the enrolling user once.
    async fn enroll_begin(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        issuer: String,
        proof: String,
        oath: OathParams,
    ) -> Result<Enrollment, TwofoldError> {
        let proof = Zeroizing::new(proof);
        // The issuer is checked by the service, on the value used (the host name when
        // "" is sent).
        let grant = self.authorize(&header, Action::Enroll, user).await?;
        self.serialized(grant, move |service, grant| {
            service.enroll_begin(grant, &issuer, &proof, &oath)
        })
        .await
    }

    /// Replaces the backup codes; returns the new set, once.
    async fn regenerate_backup_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        proof: String,
    ) -> Result<Vec<String>, TwofoldError> {
        let proof = Zeroizing::new(proof);
        let grant = self
            .authorize(&header, Action::RegenerateBackupCodes, user)
            .await?;
        self.serialized(grant, move |service, grant| {
            service.regenerate_backup_codes(grant, &proof)
        })
        .await
    }

    /// Turns two-factor authentication off for `user`.
    async fn disable(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        password: String,
        proof: String,
    ) -> Result<(), TwofoldError> {
        let (password, proof) = (Zeroizing::new(password), Zeroizing::new(proof));
        let grant = self.authorize(&header, Action::Disable, user).await?;
        limits::bounded("the password", &password, limits::MAX_PASSWORD_LEN)?;
        self.serialized(grant, move |service, grant| {
            service.disable(grant, &password, &proof)
        })
        .await
    }

    /// The user's devices.
    async fn list_devices(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<Vec<DeviceInfo>, TwofoldError> {
        let grant = self.authorize(&header, Action::Devices, user).await?;
        self.run(grant, move |service, grant| service.list_devices(grant))
            .await
    }

    /// Starts adding a device; its secret and URI are returned to the user once.
    async fn add_device_begin(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        name: String,
        issuer: String,
        proof: String,
        oath: OathParams,
    ) -> Result<Enrollment, TwofoldError> {
        let proof = Zeroizing::new(proof);
        let grant = self.authorize(&header, Action::Devices, user).await?;
        limits::device_name(&name)?;
        self.serialized(grant, move |service, grant| {
            service.add_device_begin(grant, &name, &issuer, &proof, &oath)
        })
        .await
    }

    /// Adds the pending secret as a device, proven by its first code.
    async fn add_device_confirm(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        name: String,
        code: String,
    ) -> Result<(), TwofoldError> {
        let code = Zeroizing::new(code);
        let grant = self.authorize(&header, Action::Devices, user).await?;
        limits::device_name(&name)?;
        self.serialized(grant, move |service, grant| {
            service.add_device_confirm(grant, &name, &code)
        })
        .await
    }

    /// Removes a device (never the last one).
    async fn remove_device(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        name: String,
        proof: String,
    ) -> Result<(), TwofoldError> {
        let proof = Zeroizing::new(proof);
        let grant = self.authorize(&header, Action::Devices, user).await?;
        limits::device_name(&name)?;
        self.serialized(grant, move |service, grant| {
            service.remove_device(grant, &name, &proof)
        })
        .await
    }

    /// Confirms the pending enrollment with a current code; returns the backup codes.
    async fn enroll_confirm(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        code: String,
    ) -> Result<Vec<String>, TwofoldError> {
        let code = Zeroizing::new(code);
        let grant = self.authorize(&header, Action::Enroll, user).await?;
        self.serialized(grant, move |service, grant| {
            service.enroll_confirm(grant, &code)
        })
        .await
    }

    /// The module's first question about a login, before it prompts.
    async fn begin_login(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        context: HashMap<String, String>,
    ) -> Result<LoginState, TwofoldError> {
        let grant = match self.authorize(&header, Action::BeginLogin, user).await {
            Ok(grant) => grant,
            Err(e) => return Err(self.refused_login(&header, e, user, context).await),
        };
        let context = checked(context)?;
        self.run(grant, move |service, grant| {
            service.begin_login(grant, &context)
        })
        .await
    }

    /// Every user the daemon knows or the policy requires.
    async fn admin_users(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<AdminUser>, TwofoldError> {
        let grant = self.authorize(&header, Action::Administer, "").await?;
        self.run(grant, move |service, grant| service.admin_users(grant))
            .await
    }

    /// Removes a user's 2FA so they enroll again; optionally issues a bypass code.
    async fn admin_reset(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        reason: String,
        bypass_hours: u32,
    ) -> Result<String, TwofoldError> {
        let grant = self
            .administer_one(&header, user, "Name the user to reset.")
            .await?;
        self.serialized(grant, move |service, grant| {
            service.admin_reset(grant, &reason, bypass_hours)
        })
        .await
    }

    /// Enrolls a user with the secret and scratch codes of another PAM module.
    // The interface's arguments, one each (zbus decodes the call into them).
    #[allow(clippy::too_many_arguments)]
    async fn admin_import(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        secret: String,
        backup_codes: Vec<String>,
        source: String,
        last_used_code: String,
        oath: OathParams,
    ) -> Result<(), TwofoldError> {
        let secret = Zeroizing::new(secret);
        let backup_codes = Zeroizing::new(backup_codes);
        let grant = self
            .administer_one(&header, user, "Name the user to import.")
            .await?;
        self.serialized(grant, move |service, grant| {
            service.admin_import(
                grant,
                &secret,
                &backup_codes,
                &source,
                &last_used_code,
                &oath,
            )
        })
        .await
    }

    /// Clears a user's lockouts.
    async fn admin_unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<(), TwofoldError> {
        let grant = self
            .administer_one(&header, user, "Name the user to unlock.")
            .await?;
        self.serialized(grant, move |service, grant| service.admin_unlock(grant))
            .await
    }

    /// The audit trail, newest first.
    async fn audit_log(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, TwofoldError> {
        let grant = self.authorize(&header, Action::Administer, user).await?;
        self.run(grant, move |service, grant| {
            service.audit_log(grant, since, limit)
        })
        .await
    }

    /// Registers the login session the caller (root) just opened; returns its id.
    async fn open_session(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        info: HashMap<String, String>,
    ) -> Result<String, TwofoldError> {
        let grant = self
            .authorize(&header, Action::RegisterSession, user)
            .await?;
        let info = checked(info)?;
        let record = self
            .with_sessions(grant, move |sessions, grant| {
                sessions.open(grant.caller(), grant.user(), &info)
            })
            .await?;
        if !record.rhost.is_empty() {
            // Reverse DNS may be slow: the login does not wait for it.
            let sessions = self.sessions.clone();
            let (id, rhost) = (record.id.clone(), record.rhost.clone());
            tokio::task::spawn_blocking(move || sessions.locate(&id, &rhost));
        }
        Ok(record.id)
    }

    /// Records the end of the caller's session.
    async fn close_session(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        info: HashMap<String, String>,
    ) -> Result<(), TwofoldError> {
        let grant = self
            .authorize(&header, Action::RegisterSession, user)
            .await?;
        let info = checked(info)?;
        self.with_sessions(grant, move |sessions, grant| {
            sessions.close(grant.caller(), grant.user(), &info)
        })
        .await
    }

    /// The grace window: did `user` pass for this service on this terminal or from this
    /// remote host within `seconds`?
    async fn check_grace(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        context: HashMap<String, String>,
        seconds: u32,
    ) -> Result<bool, TwofoldError> {
        let grant = self.authorize(&header, Action::CheckGrace, user).await?;
        let context = checked(context)?;
        self.with_sessions(grant, move |sessions, grant| {
            sessions.check_grace(grant.caller(), grant.user(), &context, seconds)
        })
        .await
    }

    /// A user's sessions, remembered logins and timeout.
    async fn list_sessions(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        include_ended: bool,
    ) -> Result<SessionList, TwofoldError> {
        let grant = self.authorize(&header, Action::ListSessions, user).await?;
        self.with_sessions(grant, move |sessions, grant| {
            sessions.list(grant.caller(), grant.user(), include_ended)
        })
        .await
    }

    /// Ends session `id`: its owner or an administrator only.
    async fn revoke_session(
        &self,
        #[zbus(header)] header: Header<'_>,
        id: &str,
    ) -> Result<(), TwofoldError> {
        // Who asks (acting on oneself is always allowed); then whether the session is
        // theirs to end. A session of someone else is "not yours", like a missing one.
        let asker = self.authorize(&header, Action::RevokeSession, "").await?;
        limits::session_id(id)?;
        let not_yours = || TwofoldError::PermissionDenied(format!("You have no session {id}."));
        let sessions = self.sessions.clone();
        let wanted = id.to_string();
        let Some(record) = blocking(asker.role(), move || sessions.get(&wanted)).await? else {
            return Err(match asker.role() {
                Role::LoginService => {
                    TwofoldError::InvalidArgument(format!("There is no session {id}."))
                }
                Role::Owner | Role::Admin => not_yours(),
            });
        };
        let grant = match self
            .authorize(&header, Action::RevokeSession, &record.user)
            .await
        {
            Ok(grant) => grant,
            Err(TwofoldError::PermissionDenied(_)) => return Err(not_yours()),
            Err(other) => return Err(other),
        };
        let reason = format!("revoked by uid {}", grant.caller().uid);
        self.sessions
            .terminate(record, Some(grant.caller()), reason)
            .await
    }

    /// Ends all of a user's live sessions but the caller's own (on every host of a fleet).
    async fn revoke_other_sessions(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<Vec<String>, TwofoldError> {
        let grant = self.authorize(&header, Action::RevokeSession, user).await?;
        let caller = grant.caller();
        let others = self
            .with_sessions(grant, move |sessions, grant| {
                sessions.others(grant.caller(), grant.user())
            })
            .await?;
        let reason = format!("revoked by uid {} (--others)", caller.uid);
        let tasks: Vec<_> = others
            .into_iter()
            .map(|s| {
                let sessions = self.sessions.clone();
                let reason = reason.clone();
                let id = s.id.clone();
                (
                    id,
                    tokio::spawn(async move { sessions.terminate(s, Some(caller), reason).await }),
                )
            })
            .collect();
        let mut ended = Vec::new();
        for (id, task) in tasks {
            match task.await {
                Ok(Ok(())) => ended.push(id),
                Ok(Err(e)) => log::warn!("revoking session {id}: {}", e.message()),
                Err(e) => log::error!("revoking session {id}: {e}"),
            }
        }
        Ok(ended)
    }

    /// Sets the user's own session timeout (0 = none).
    async fn set_session_timeout(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        seconds: u64,
    ) -> Result<(), TwofoldError> {
        let grant = self
            .authorize(&header, Action::SessionSettings, user)
            .await?;
        if seconds > limits::MAX_SESSION_TIMEOUT {
            return Err(TwofoldError::InvalidArgument(format!(
                "a session timeout is at most {} days",
                limits::MAX_SESSION_TIMEOUT / 86_400
            )));
        }
        self.with_sessions(grant, move |sessions, grant| {
            sessions.set_timeout(grant.caller(), grant.user(), seconds)
        })
        .await
    }

    /// Forgets the user's remembered logins (the grace window starts afresh).
    async fn forget_remembered(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<u32, TwofoldError> {
        let grant = self
            .authorize(&header, Action::SessionSettings, user)
            .await?;
        self.with_sessions(grant, move |sessions, grant| {
            sessions.forget(grant.caller(), grant.user())
        })
        .await
    }

    // ---- hardware OATH tokens (see `service::tokens`)

    /// Adds hardware tokens from a vendor's seed file.
    async fn admin_import_tokens(
        &self,
        #[zbus(header)] header: Header<'_>,
        tokens: Vec<TokenSeed>,
    ) -> Result<TokensImported, TwofoldError> {
        let grant = self.authorize(&header, Action::Administer, "").await?;
        self.run(grant, move |service, grant| {
            service.admin_import_tokens(grant, &tokens)
        })
        .await
    }

    /// Every token and whose device it is.
    async fn admin_tokens(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<TokenInfo>, TwofoldError> {
        let grant = self.authorize(&header, Action::Administer, "").await?;
        self.run(grant, move |service, grant| service.admin_tokens(grant))
            .await
    }

    /// Makes a token a device of a user.
    async fn admin_assign_token(
        &self,
        #[zbus(header)] header: Header<'_>,
        serial: String,
        user: &str,
    ) -> Result<(), TwofoldError> {
        let grant = self
            .administer_one(&header, user, "Name the user the token is for.")
            .await?;
        self.serialized(grant, move |service, grant| {
            service.admin_assign_token(grant, &serial)
        })
        .await
    }

    /// Removes the device a token is; the user it was assigned to.
    async fn admin_unassign_token(
        &self,
        #[zbus(header)] header: Header<'_>,
        serial: String,
    ) -> Result<String, TwofoldError> {
        let grant = self.authorize(&header, Action::Administer, "").await?;
        self.run(grant, move |service, grant| {
            service.admin_unassign_token(grant, &serial)
        })
        .await
    }

    /// Finds an HOTP token's counter again from two consecutive codes.
    async fn admin_resync_token(
        &self,
        #[zbus(header)] header: Header<'_>,
        serial: String,
        first: String,
        second: String,
    ) -> Result<u64, TwofoldError> {
        let (first, second) = (Zeroizing::new(first), Zeroizing::new(second));
        let grant = self.authorize(&header, Action::Administer, "").await?;
        self.run(grant, move |service, grant| {
            service.admin_resync_token(grant, &serial, &first, &second)
        })
        .await
    }

    /// The daemon's version.
    #[zbus(property)]
    async fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

//! The D-Bus face of the daemon: `org.twofold.Twofold1` on `/org/twofold/Twofold1`.
//!
//! Every method first goes through [`Bus::authorize`], the one place where access is
//! decided, from the caller's D-Bus credentials only (never from an argument). Then the
//! work runs on the blocking pool, so that an Argon2 hash or an fsync never stalls the
//! bus loop, under a per-user lock so that one user's attempts are judged one at a time.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use twofold_contract::{
    AdminUser, AuditEntry, Enrollment, LoginState, SessionList, TwofoldError, UserStatus, Verified,
    MAX_USER_LEN,
};
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::zvariant::Value;
use zeroize::Zeroizing;

use crate::logging::safe;
use crate::service::{Caller, Service};
use crate::sessions::Sessions;

/// Number of per-user locks (users hash onto them).
const USER_LOCKS: usize = 64;
/// Bound on the credentials cache (unique names are never reused on a bus, so a cached
/// entry can only be stale in that it is no longer needed).
const CREDENTIALS_CACHE_MAX: usize = 4096;

/// What a method is about to do, for [`Bus::authorize`].
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
    /// Turn two-factor authentication off.
    Disable,
    /// The module's pre-prompt question about a login.
    BeginLogin,
    /// Administration: list users, reset, unlock, read the audit trail.
    Administer,
    /// Register or close a login session, or ask about the grace window: root only
    /// (the PAM module inside sshd, sudo, login).
    RegisterSession,
    /// List a user's sessions and remembered logins.
    ListSessions,
    /// End a user's session.
    RevokeSession,
    /// Change a user's session timeout or forget their remembered logins.
    SessionSettings,
}

impl Action {
    /// Actions only root may take, whatever the user and polkit say.
    pub fn root_only(self) -> bool {
        matches!(self, Action::RegisterSession)
    }
}

/// The polkit action for administering other users.
pub const ADMINISTER: &str = "org.twofold.administer";
/// How long polkit may take to answer.
const POLKIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The served object.
pub struct Bus {
    service: Arc<Service>,
    connection: zbus::Connection,
    dbus: DBusProxy<'static>,
    credentials: Arc<Credentials>,
    user_locks: Vec<tokio::sync::Mutex<()>>,
    sessions: Arc<Sessions>,
}

fn user_name(user: &str) -> Result<(), TwofoldError> {
    if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(char::is_control) {
        return Err(TwofoldError::InvalidArgument(
            "That is not a valid user name.".into(),
        ));
    }
    Ok(())
}

/// Requests whose blocking work may run at once. Each holds a thread meanwhile (whose
/// stack stays resident once used); more would not go faster on a small machine, and
/// the others wait without holding one.
const REQUESTS_IN_PLACE: usize = 16;

/// Runs blocking work (NSS, SQLite, Argon2) of one request without stalling the bus.
///
/// On the daemon's multi-thread runtime the request's own worker runs it after handing
/// its other tasks to another thread (`block_in_place`): the bus keeps being served, and
/// the request does not pay two thread switches per step as with `spawn_blocking`.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TwofoldError> + Send + 'static,
) -> Result<T, TwofoldError> {
    static IN_PLACE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(REQUESTS_IN_PLACE);
    let _turn = IN_PLACE.acquire().await;
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

impl Bus {
    /// Wraps the service for serving on `connection`.
    pub async fn new(service: Arc<Service>, connection: &zbus::Connection) -> zbus::Result<Bus> {
        let dbus = DBusProxy::builder(connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let sessions = Arc::new(Sessions::new(service.clone(), Some(connection.clone())));
        Ok(Bus {
            sessions,
            service,
            connection: connection.clone(),
            dbus,
            credentials: Arc::new(Credentials::default()),
            user_locks: (0..USER_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
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

    async fn caller(&self, header: &Header<'_>) -> Result<Caller, TwofoldError> {
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

    /// The one authorization decision, made before every method: who is calling (from
    /// D-Bus credentials only), which user the call is about ("" = the caller), and
    /// whether that is allowed. Root may do anything. Any other caller may act on itself;
    /// acting on others, or administering, needs polkit's `org.twofold.administer`;
    /// checking codes (`Verify`, `BeginLogin`) is never delegated.
    pub async fn authorize(
        &self,
        header: &Header<'_>,
        action: Action,
        user: &str,
    ) -> Result<(Caller, String), TwofoldError> {
        let caller = self.caller(header).await?;
        if action.root_only() && caller.uid != 0 {
            log::warn!(
                "denied {action:?} to uid {} (pid {:?}): root only",
                caller.uid,
                caller.pid
            );
            return Err(TwofoldError::PermissionDenied(
                "Only root (the PAM module) may do this.".into(),
            ));
        }
        let requested = user.to_string();
        if !requested.is_empty() {
            user_name(&requested)?;
        }
        let target = if action == Action::Administer && requested.is_empty() {
            None
        } else {
            Some(blocking(move || resolve(caller, requested)).await?)
        };
        let target_name = target.as_ref().map(|t| t.0.clone()).unwrap_or_default();
        let on_self = target.as_ref().is_some_and(|t| t.1 == caller.uid);
        if caller.uid == 0 || (on_self && action != Action::Administer) {
            return Ok((caller, target_name));
        }
        let delegable = !matches!(action, Action::Verify | Action::BeginLogin);
        if delegable && self.polkit_allows(header, ADMINISTER).await {
            log::info!(
                "polkit allowed uid {} to {action:?} {}",
                caller.uid,
                safe(&target_name)
            );
            return Ok((caller, target_name));
        }
        log::warn!(
            "denied {action:?} on {} to uid {} (pid {:?})",
            safe(&target_name),
            caller.uid,
            caller.pid
        );
        Err(TwofoldError::PermissionDenied(match action {
            Action::Administer => "This needs an administrator (root, or the \
                                   org.twofold.administer polkit permission)."
                .into(),
            _ => "You may only act on your own account.".into(),
        }))
    }

    /// Asks polkit whether the caller (subject: its bus name) may do `action_id`. Any
    /// failure to get an answer is a no.
    async fn polkit_allows(&self, header: &Header<'_>, action_id: &str) -> bool {
        let Some(sender) = header.sender() else {
            return false;
        };
        let subject = (
            "system-bus-name",
            HashMap::from([("name", Value::from(sender.as_str()))]),
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
        let Ok(caller) = self.caller(header).await else {
            return error;
        };
        if caller.uid != 0 {
            return error;
        }
        let service = self.service.clone();
        let requested = requested.to_string();
        blocking(move || Ok(service.unknown_user_attempt(caller, &requested, &context)))
            .await
            .unwrap_or_else(|e| e)
    }

    fn user_lock(&self, user: &str) -> &tokio::sync::Mutex<()> {
        let mut h = DefaultHasher::new();
        user.hash(&mut h);
        &self.user_locks[(h.finish() as usize) % USER_LOCKS]
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
        Ok(None) => Err(TwofoldError::UnknownUser(format!(
            "There is no user named {}.",
            safe(&requested)
        ))),
        Err(e) => Err(TwofoldError::Internal(format!("user lookup failed: {e}"))),
    }
}

#[zbus::interface(name = "org.twofold.Twofold1")]
impl Bus {
    /// Enrollment, backup codes and lockout state of `user` ("" = the caller).
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<UserStatus, TwofoldError> {
        let (caller, user) = self.authorize(&header, Action::Status, user).await?;
        let service = self.service.clone();
        let mut status = blocking(move || service.status(&user)).await?;
        status.proof_required = caller.uid != 0;
        Ok(status)
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
        let (caller, user) = match self.authorize(&header, Action::Verify, user).await {
            Ok(ok) => ok,
            Err(e) => return Err(self.refused_login(&header, e, user, context).await),
        };
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        let sessions = self.sessions.clone();
        blocking(move || {
            let verified = service.verify(caller, &user, &code, &context)?;
            if caller.uid == 0 {
                // A login passed (the PAM module runs as root): remember it for the grace
                // window and for the session this login opens.
                sessions.record_pass(caller, &user, &context, &verified.method);
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
    ) -> Result<Enrollment, TwofoldError> {
        let proof = Zeroizing::new(proof);
        let (caller, user) = self.authorize(&header, Action::Enroll, user).await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.enroll_begin(caller, &user, &issuer, &proof)).await
    }

    /// Replaces the backup codes; returns the new set, once.
    async fn regenerate_backup_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        proof: String,
    ) -> Result<Vec<String>, TwofoldError> {
        let proof = Zeroizing::new(proof);
        let (caller, user) = self
            .authorize(&header, Action::RegenerateBackupCodes, user)
            .await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.regenerate_backup_codes(caller, &user, &proof)).await
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
        let (caller, user) = self.authorize(&header, Action::Disable, user).await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.disable(caller, &user, &password, &proof)).await
    }

    /// Confirms the pending enrollment with a current code; returns the backup codes.
    async fn enroll_confirm(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        code: String,
    ) -> Result<Vec<String>, TwofoldError> {
        let code = Zeroizing::new(code);
        let (caller, user) = self.authorize(&header, Action::Enroll, user).await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.enroll_confirm(caller, &user, &code)).await
    }

    /// The module's first question about a login, before it prompts.
    async fn begin_login(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        context: HashMap<String, String>,
    ) -> Result<LoginState, TwofoldError> {
        let (caller, user) = match self.authorize(&header, Action::BeginLogin, user).await {
            Ok(ok) => ok,
            Err(e) => return Err(self.refused_login(&header, e, user, context).await),
        };
        let service = self.service.clone();
        blocking(move || service.begin_login(caller, &user, &context)).await
    }

    /// Every user the daemon knows or the policy requires.
    async fn admin_users(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<AdminUser>, TwofoldError> {
        self.authorize(&header, Action::Administer, "").await?;
        let service = self.service.clone();
        blocking(move || service.admin_users()).await
    }

    /// Removes a user's 2FA so they enroll again; optionally issues a bypass code.
    async fn admin_reset(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        reason: String,
        bypass_hours: u32,
    ) -> Result<String, TwofoldError> {
        if user.is_empty() {
            return Err(TwofoldError::InvalidArgument(
                "Name the user to reset.".into(),
            ));
        }
        let (caller, user) = self.authorize(&header, Action::Administer, user).await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.admin_reset(caller, &user, &reason, bypass_hours)).await
    }

    /// Clears a user's lockouts.
    async fn admin_unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<(), TwofoldError> {
        if user.is_empty() {
            return Err(TwofoldError::InvalidArgument(
                "Name the user to unlock.".into(),
            ));
        }
        let (caller, user) = self.authorize(&header, Action::Administer, user).await?;
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.admin_unlock(caller, &user)).await
    }

    /// The audit trail, newest first.
    async fn audit_log(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, TwofoldError> {
        let (_, user) = self.authorize(&header, Action::Administer, user).await?;
        let service = self.service.clone();
        blocking(move || {
            let user = (!user.is_empty()).then_some(user.as_str());
            service.audit_log(user, since, limit)
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
        let (caller, user) = self
            .authorize(&header, Action::RegisterSession, user)
            .await?;
        let sessions = self.sessions.clone();
        let record = blocking(move || sessions.open(caller, &user, &info)).await?;
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
        let (caller, user) = self
            .authorize(&header, Action::RegisterSession, user)
            .await?;
        let sessions = self.sessions.clone();
        blocking(move || sessions.close(caller, &user, &info)).await
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
        let (caller, user) = self
            .authorize(&header, Action::RegisterSession, user)
            .await?;
        let sessions = self.sessions.clone();
        blocking(move || sessions.check_grace(caller, &user, &context, seconds)).await
    }

    /// A user's sessions, remembered logins and timeout.
    async fn list_sessions(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
        include_ended: bool,
    ) -> Result<SessionList, TwofoldError> {
        let (caller, user) = self.authorize(&header, Action::ListSessions, user).await?;
        let sessions = self.sessions.clone();
        blocking(move || sessions.list(caller, &user, include_ended)).await
    }

    /// Ends session `id`: its owner or an administrator only.
    async fn revoke_session(
        &self,
        #[zbus(header)] header: Header<'_>,
        id: &str,
    ) -> Result<(), TwofoldError> {
        // Who asks (acting on oneself is always allowed); then whether the session is
        // theirs to end. A session of someone else is "not yours", like a missing one.
        let (caller, _) = self.authorize(&header, Action::RevokeSession, "").await?;
        let not_yours = || {
            TwofoldError::PermissionDenied(format!(
                "You have no session {}.",
                safe(&id.chars().take(64).collect::<String>())
            ))
        };
        let sessions = self.sessions.clone();
        let wanted = id.to_string();
        let Some(record) = blocking(move || sessions.get(&wanted)).await? else {
            return Err(if caller.uid == 0 {
                TwofoldError::InvalidArgument(format!("There is no session {}.", safe(id)))
            } else {
                not_yours()
            });
        };
        if let Err(e) = self
            .authorize(&header, Action::RevokeSession, &record.user)
            .await
        {
            return Err(match e {
                TwofoldError::PermissionDenied(_) => not_yours(),
                other => other,
            });
        }
        let reason = format!("revoked by uid {}", caller.uid);
        self.sessions.terminate(record, Some(caller), reason).await
    }

    /// Ends all of a user's live sessions but the caller's own (on every host of a fleet).
    async fn revoke_other_sessions(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<Vec<String>, TwofoldError> {
        let (caller, user) = self.authorize(&header, Action::RevokeSession, user).await?;
        let sessions = self.sessions.clone();
        let others = blocking(move || sessions.others(caller, &user)).await?;
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
        let (caller, user) = self
            .authorize(&header, Action::SessionSettings, user)
            .await?;
        let sessions = self.sessions.clone();
        blocking(move || sessions.set_timeout(caller, &user, seconds)).await
    }

    /// Forgets the user's remembered logins (the grace window starts afresh).
    async fn forget_remembered(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: &str,
    ) -> Result<u32, TwofoldError> {
        let (caller, user) = self
            .authorize(&header, Action::SessionSettings, user)
            .await?;
        let sessions = self.sessions.clone();
        blocking(move || sessions.forget(caller, &user)).await
    }

    /// The daemon's version.
    #[zbus(property)]
    async fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

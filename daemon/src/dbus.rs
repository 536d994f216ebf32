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

use twofold_contract::{Enrollment, TwofoldError, UserStatus, Verified, MAX_USER_LEN};
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;
use zeroize::Zeroizing;

use crate::logging::safe;
use crate::service::{Caller, Service};

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
}

/// The served object.
pub struct Bus {
    service: Arc<Service>,
    dbus: DBusProxy<'static>,
    credentials: Mutex<HashMap<String, Caller>>,
    user_locks: Vec<tokio::sync::Mutex<()>>,
}

fn user_name(user: &str) -> Result<(), TwofoldError> {
    if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(char::is_control) {
        return Err(TwofoldError::InvalidArgument(
            "That is not a valid user name.".into(),
        ));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TwofoldError> + Send + 'static,
) -> Result<T, TwofoldError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        log::error!("request worker failed: {e}");
        Err(TwofoldError::Internal(
            "twofoldd failed internally; see its log".into(),
        ))
    })
}

impl Bus {
    /// Wraps the service for serving on `connection`.
    pub async fn new(service: Arc<Service>, connection: &zbus::Connection) -> zbus::Result<Bus> {
        let dbus = DBusProxy::builder(connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        Ok(Bus {
            service,
            dbus,
            credentials: Mutex::new(HashMap::new()),
            user_locks: (0..USER_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }

    async fn caller(&self, header: &Header<'_>) -> Result<Caller, TwofoldError> {
        let sender = header
            .sender()
            .ok_or_else(|| TwofoldError::PermissionDenied("anonymous caller".into()))?
            .to_string();
        if let Some(caller) = self
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.get(&sender).copied())
        {
            return Ok(caller);
        }
        let name = BusName::try_from(sender.as_str())
            .map_err(|_| TwofoldError::PermissionDenied("malformed sender".into()))?;
        let creds = self
            .dbus
            .get_connection_credentials(name)
            .await
            .map_err(|e| {
                log::error!("cannot read the credentials of {sender}: {e}");
                TwofoldError::PermissionDenied("the bus did not vouch for the caller".into())
            })?;
        let uid = creds
            .unix_user_id()
            .ok_or_else(|| TwofoldError::PermissionDenied("caller without a uid".into()))?;
        let caller = Caller {
            uid,
            pid: creds.process_id(),
        };
        if let Ok(mut cache) = self.credentials.lock() {
            if cache.len() >= CREDENTIALS_CACHE_MAX {
                cache.clear();
            }
            cache.insert(sender, caller);
        }
        Ok(caller)
    }

    /// The one authorization decision: who is calling (from D-Bus credentials), which
    /// user the call is about ("" = the caller), and whether that is allowed. Root may
    /// act on any user, any other caller only on itself.
    pub async fn authorize(
        &self,
        header: &Header<'_>,
        action: Action,
        user: &str,
    ) -> Result<(Caller, String), TwofoldError> {
        let caller = self.caller(header).await?;
        let requested = user.to_string();
        if !requested.is_empty() {
            user_name(&requested)?;
        }
        let resolved = tokio::task::spawn_blocking(move || resolve(caller, requested))
            .await
            .unwrap_or_else(|_| Err(TwofoldError::Internal("user lookup failed".into())))?;
        let (target_name, target_uid) = resolved;
        if caller.uid == 0 || caller.uid == target_uid {
            return Ok((caller, target_name));
        }
        log::warn!(
            "denied {action:?} on {} to uid {} (pid {:?})",
            safe(&target_name),
            caller.uid,
            caller.pid
        );
        Err(TwofoldError::PermissionDenied(
            "You may only act on your own account.".into(),
        ))
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
        let (_, user) = self.authorize(&header, Action::Status, user).await?;
        let service = self.service.clone();
        blocking(move || service.status(&user)).await
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
            Err(e) => return Err(e),
        };
        let _serialized = self.user_lock(&user).lock().await;
        let service = self.service.clone();
        blocking(move || service.verify(caller, &user, &code, &context)).await
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

    /// The daemon's version.
    #[zbus(property)]
    async fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
}

//! Login sessions: registered by `pam_twofold.so`'s session hooks, listed and revoked by
//! their users, closed by the reaper when their leader is gone, ended when they time
//! out; and the remembered second-factor passes behind the `grace=` window.
//!
//! The session leader is the caller of `OpenSession` as the bus vouches for it (its
//! D-Bus pid credential), recorded with its start time so that a later process with the
//! same pid is never taken for it, nor signalled. sshd authenticates in a child of the
//! process that opens the session, so the login's second-factor pass is found by the
//! process tree first (the pass's caller or its parent is the leader), then by user,
//! service and remote host or terminal within a short time.

pub mod location;
pub mod logind;
pub mod procfs;
pub mod revoke;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use twofold_contract::{
    auth_method, context, method, RememberedLogin, SessionInfo, SessionList, TwofoldError,
};

use crate::logging::safe;
use crate::service::{now, Caller, Service};
use crate::storage::{AuditEvent, AuthPass, SessionRecord, StoreError};

/// Longest grace window honoured (`grace=` beyond it is cut to it), and how long passes
/// are kept.
pub const MAX_GRACE_SECONDS: u32 = 12 * 3600;
/// How far back a session's second-factor pass is looked for by the process tree.
const AUTH_BY_PROCESS_WINDOW: i64 = 600;
/// How far back it is looked for by user, service and remote host or terminal.
const AUTH_BY_PLACE_WINDOW: i64 = 120;
/// How long ended sessions stay listed with `--all`.
pub const ENDED_LISTED_SECONDS: i64 = 7 * 86_400;
/// How long ended sessions are kept at all.
const ENDED_KEPT_SECONDS: i64 = 30 * 86_400;
/// The reaper's period.
pub const REAP_EVERY: Duration = Duration::from_secs(2);
/// Longest text field taken from the module.
const MAX_FIELD: usize = 256;

/// The uid of a user name, from NSS.
pub(crate) fn user_uid(user: &str) -> Option<u32> {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn internal(e: StoreError) -> TwofoldError {
    log::error!("storage failure: {e}");
    TwofoldError::Internal("twofoldd could not reach its database; see its log".into())
}

/// What the module tells about a session, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenInfo {
    pub service: String,
    pub tty: String,
    pub rhost: String,
    pub ruser: String,
    /// The module's `getpid()`, for the log only.
    pub pid: Option<u32>,
}

fn field(info: &HashMap<String, String>, key: &str) -> Result<String, TwofoldError> {
    let v = info.get(key).map(String::as_str).unwrap_or("");
    if v.len() > MAX_FIELD || v.chars().any(char::is_control) {
        return Err(TwofoldError::InvalidArgument(format!(
            "{key}: at most {MAX_FIELD} bytes, no control characters"
        )));
    }
    Ok(v.to_string())
}

impl OpenInfo {
    /// Checks the dictionary sent by the module.
    /// `logind_session` is accepted from older modules but never used: the id comes
    /// from logind itself (a user can set `XDG_SESSION_ID` in the PAM environment).
    pub fn parse(info: &HashMap<String, String>) -> Result<OpenInfo, TwofoldError> {
        field(info, context::LOGIND_SESSION)?;
        Ok(OpenInfo {
            service: field(info, context::SERVICE)?,
            tty: field(info, context::TTY)?,
            rhost: field(info, context::RHOST)?,
            ruser: field(info, context::RUSER)?,
            pid: info.get(context::PID).and_then(|p| p.parse().ok()),
        })
    }
}

/// A terminal value that names one terminal (not sshd's "ssh" placeholder).
fn real_tty(tty: &str) -> bool {
    !tty.is_empty() && tty != "ssh"
}

/// Does `rhost` name this host (sudo sets `PAM_RHOST` to the local host name; a login
/// from a loopback address comes from this host too)?
fn names_this_host(rhost: &str, hostname: &str) -> bool {
    let rhost = rhost.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = rhost.parse::<IpAddr>() {
        return ip.is_loopback() || ip.is_unspecified();
    }
    let system = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let short = |name: &str| name.split('.').next().unwrap_or("").to_ascii_lowercase();
    let rhost_short = short(rhost);
    rhost.eq_ignore_ascii_case("localhost")
        || (!rhost_short.is_empty()
            && [hostname, system.as_str()]
                .iter()
                .any(|h| !h.is_empty() && short(h) == rhost_short))
}

/// The caller's login session (terminal or not): its session id and that session
/// leader's start time.
fn tty_session(pid: u32) -> (u32, u64) {
    let Some(s) = procfs::stat(pid) else {
        return (0, 0);
    };
    let start = procfs::stat(s.sid).map_or(0, |l| l.start);
    (s.sid, start)
}

/// The daemon's session state.
pub struct Sessions {
    pub(crate) service: Arc<Service>,
    pub(crate) boot_id: String,
    resolver: location::Resolver,
    geoip: location::GeoIp,
    /// The bus the daemon serves on; logind is asked on it.
    pub(crate) bus: Option<zbus::Connection>,
    /// Sessions being revoked right now (the reaper must not start a second revocation).
    pub(crate) revoking: Mutex<HashSet<String>>,
    /// Sessions this daemon recorded and has not seen end (and may end by signalling
    /// their root leader). In a fleet any other row of the store, even with this host's
    /// name, may have been written by another host.
    pub(crate) recorded: Mutex<HashSet<String>>,
    /// Other hosts write to the store too (fleet mode).
    pub(crate) fleet: bool,
}

impl Sessions {
    /// Session state over `service`'s store; `bus` is where logind is asked.
    pub fn new(service: Arc<Service>, bus: Option<zbus::Connection>) -> Sessions {
        Sessions {
            boot_id: procfs::boot_id(),
            resolver: location::Resolver::default(),
            geoip: location::GeoIp::default(),
            bus,
            revoking: Mutex::new(HashSet::new()),
            recorded: Mutex::new(HashSet::new()),
            fleet: service.store.shared(),
            service,
        }
    }

    fn host(&self) -> &str {
        &self.service.hostname
    }

    pub(crate) fn event(
        &self,
        caller: Option<Caller>,
        user: &str,
        event: &'static str,
    ) -> AuditEvent {
        AuditEvent {
            at: now(),
            actor_uid: caller.map(|c| c.uid),
            actor_pid: caller.and_then(|c| c.pid),
            user: user.to_string(),
            event,
            host: self.host().to_string(),
            ..Default::default()
        }
    }

    /// `OpenSession`: registers the session the caller (root, checked by the bus layer)
    /// just opened for `user`.
    pub fn open(
        &self,
        caller: Caller,
        user: &str,
        info: &HashMap<String, String>,
    ) -> Result<SessionRecord, TwofoldError> {
        let info = OpenInfo::parse(info)?;
        let Some(leader) = caller.pid else {
            return Err(TwofoldError::InvalidArgument(
                "the bus did not tell the caller's pid".into(),
            ));
        };
        if let Some(claimed) = info.pid.filter(|p| *p != leader) {
            log::warn!(
                "OpenSession: the module says pid {claimed}, the bus says {leader}; using {leader}"
            );
        }
        let Some(stat) = procfs::stat(leader) else {
            return Err(TwofoldError::InvalidArgument(
                "the session leader is gone".into(),
            ));
        };
        let logind_session = self.logind_session_of(user, leader);
        let at = now();
        let (auth_method, auth_at) = self.login_pass(user, &info, leader, at)?;
        let mut record = SessionRecord {
            id: String::new(),
            user: user.to_string(),
            service: info.service.clone(),
            tty: info.tty.clone(),
            rhost: info.rhost.clone(),
            ruser: info.ruser.clone(),
            host: self.host().to_string(),
            boot_id: self.boot_id.clone(),
            leader_pid: leader,
            leader_start: stat.start,
            logind_session,
            auth_method,
            auth_at,
            started: at,
            location: if info.rhost.is_empty() {
                "local".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut event = self.event(Some(caller), user, "session_open");
        event.service = safe(&info.service);
        event.tty = safe(&info.tty);
        event.rhost = safe(&info.rhost);
        for _ in 0..8 {
            record.id = format!("{:08x}", rand::random::<u32>());
            event.detail = format!(
                "id={} leader={leader} auth={}",
                record.id, record.auth_method
            );
            if self
                .service
                .store
                .insert_session(&record, &event)
                .map_err(internal)?
            {
                if let Ok(mut recorded) = self.recorded.lock() {
                    recorded.insert(record.id.clone());
                }
                log::info!(
                    "session {} opened: user={} service={} tty={} rhost={} leader={leader} auth={}",
                    record.id,
                    safe(user),
                    event.service,
                    event.tty,
                    event.rhost,
                    record.auth_method
                );
                return Ok(record);
            }
        }
        Err(TwofoldError::Internal("could not pick a session id".into()))
    }

    /// The logind session `leader` leads for `user`, asked of logind (bounded); "" when
    /// there is none, logind is absent or slow, or the session is someone else's.
    fn logind_session_of(&self, user: &str, leader: u32) -> String {
        let (Some(bus), Ok(handle)) = (&self.bus, tokio::runtime::Handle::try_current()) else {
            return String::new();
        };
        let Some(uid) = user_uid(user) else {
            return String::new();
        };
        let asked = handle.block_on(tokio::time::timeout(
            logind::LOOKUP_TIMEOUT,
            logind::session_of_pid(bus, leader),
        ));
        match asked {
            Ok(Ok(found)) if found.is_of(uid, leader) => found.id,
            Ok(Ok(found)) => {
                log::info!(
                    "leader {leader} runs in logind session {} of uid {} led by {}: not this login's",
                    found.id,
                    found.uid,
                    found.leader
                );
                String::new()
            }
            Ok(Err(e)) => {
                log::debug!("logind has no session for leader {leader}: {e}");
                String::new()
            }
            Err(_) => {
                log::warn!(
                    "logind did not answer within {:?}; session recorded without its logind id",
                    logind::LOOKUP_TIMEOUT
                );
                String::new()
            }
        }
    }

    /// How the login that opens this session passed the second factor, and when.
    fn login_pass(
        &self,
        user: &str,
        info: &OpenInfo,
        leader: u32,
        at: i64,
    ) -> Result<(String, i64), TwofoldError> {
        let store = &self.service.store;
        let mut passes = store
            .auth_passes(user, at - AUTH_BY_PROCESS_WINDOW)
            .map_err(internal)?;
        // sudo and su open the session for the target user; the pass is the invoker's.
        if !info.ruser.is_empty() && info.ruser != user {
            passes.extend(
                store
                    .auth_passes(&info.ruser, at - AUTH_BY_PROCESS_WINDOW)
                    .map_err(internal)?,
            );
        }
        passes.retain(|p| p.host == self.host() && p.boot_id == self.boot_id);
        passes.sort_by_key(|p| std::cmp::Reverse(p.at));
        let by_process = passes
            .iter()
            .find(|p| p.caller_pid == leader || p.caller_ppid == leader);
        let by_place = || {
            passes.iter().find(|p| {
                p.user == user
                    && p.at >= at - AUTH_BY_PLACE_WINDOW
                    && p.service == info.service
                    && ((!info.rhost.is_empty()
                        && !names_this_host(&info.rhost, self.host())
                        && p.rhost == info.rhost)
                        || (real_tty(&info.tty) && p.tty == info.tty))
            })
        };
        if let Some(p) = by_process.or_else(by_place) {
            return Ok((p.method.clone(), p.at));
        }
        let enrolled = store.user(user).map_err(internal)?.is_some();
        let method = if enrolled {
            auth_method::NONE
        } else {
            auth_method::NOT_ENROLLED
        };
        Ok((method.to_string(), 0))
    }

    /// Fills in the remote host's name and place (slow: reverse DNS), after `open`.
    pub fn locate(&self, id: &str, rhost: &str) {
        let ip = rhost
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            });
        let (name, place) = match ip {
            Some(ip) => {
                let name = self.resolver.name(ip).unwrap_or_default();
                let place = self
                    .service
                    .policy()
                    .geoip_db
                    .as_deref()
                    .and_then(|db| self.geoip.place(db, ip))
                    .unwrap_or_default();
                (name, place)
            }
            // sshd with UseDNS gives a name already.
            None => (String::new(), location::Place::default()),
        };
        if let Err(e) =
            self.service
                .store
                .set_session_place(id, &name, &place.label(), &place.country_code)
        {
            log::error!("cannot store where session {id} comes from: {e}");
        }
    }

    /// `CloseSession`: ends the caller's live session(s) of `user` for this service.
    pub fn close(
        &self,
        caller: Caller,
        user: &str,
        info: &HashMap<String, String>,
    ) -> Result<(), TwofoldError> {
        let info = OpenInfo::parse(info)?;
        let Some(leader) = caller.pid else {
            return Ok(());
        };
        let start = procfs::stat(leader).map(|s| s.start);
        let live = self
            .service
            .store
            .host_live_sessions(self.host())
            .map_err(internal)?;
        for s in live.iter().filter(|s| {
            s.user == user
                && s.leader_pid == leader
                && Some(s.leader_start) == start
                && s.service == info.service
        }) {
            // A session being revoked closes because of it: the revocation records why.
            let revoking = self
                .revoking
                .lock()
                .map(|r| r.contains(&s.id))
                .unwrap_or(false);
            if !revoking {
                self.end(s, Some(caller), "closed", "session_close")?;
            }
        }
        Ok(())
    }

    /// Marks a session ended (once) with `reason`.
    pub(crate) fn end(
        &self,
        s: &SessionRecord,
        caller: Option<Caller>,
        reason: &str,
        what: &'static str,
    ) -> Result<bool, TwofoldError> {
        let mut event = self.event(caller, &s.user, what);
        event.service = safe(&s.service);
        event.tty = safe(&s.tty);
        event.rhost = safe(&s.rhost);
        event.detail = format!("id={} {reason}", s.id);
        let ended = self
            .service
            .store
            .end_session(&s.id, event.at, reason, &event)
            .map_err(internal)?;
        if ended {
            log::info!("session {} of {} ended: {reason}", s.id, safe(&s.user));
        }
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.remove(&s.id);
        }
        Ok(ended)
    }

    /// Remembers a passed second factor (called after a successful `Verify` by root,
    /// i.e. by the PAM module inside a login).
    pub fn record_pass(
        &self,
        caller: Caller,
        user: &str,
        ctx: &HashMap<String, String>,
        how: &str,
    ) {
        let Some(service) = ctx.get(context::SERVICE).filter(|s| !s.is_empty()) else {
            return;
        };
        let get = |k: &str| {
            ctx.get(k)
                .filter(|v| v.len() <= MAX_FIELD && !v.chars().any(char::is_control))
                .cloned()
                .unwrap_or_default()
        };
        let pid = caller.pid.unwrap_or(0);
        let (tty_sid, tty_sid_start) = tty_session(pid);
        let pass = AuthPass {
            user: user.to_string(),
            service: service.chars().take(MAX_FIELD).collect(),
            tty: get(context::TTY),
            rhost: get(context::RHOST),
            at: now(),
            method: how.to_string(),
            caller_pid: pid,
            caller_ppid: procfs::stat(pid).map_or(0, |s| s.ppid),
            tty_sid,
            tty_sid_start,
            host: self.host().to_string(),
            boot_id: self.boot_id.clone(),
        };
        if let Err(e) = self.service.store.record_auth_pass(&pass) {
            log::error!("cannot remember the pass of {}: {e}", safe(user));
        }
    }

    /// `CheckGrace`: did `user` pass the second factor for this service on this terminal
    /// (same terminal login) or from this remote host within `seconds`?
    pub fn check_grace(
        &self,
        caller: Caller,
        user: &str,
        ctx: &HashMap<String, String>,
        seconds: u32,
    ) -> Result<bool, TwofoldError> {
        let seconds = seconds.min(MAX_GRACE_SECONDS);
        if seconds == 0 {
            return Ok(false);
        }
        let info = OpenInfo::parse(ctx)?;
        if info.service.is_empty() {
            return Ok(false);
        }
        let at = now();
        let (sid, sid_start) = tty_session(caller.pid.unwrap_or(0));
        let passes = self
            .service
            .store
            .auth_passes(user, at - i64::from(seconds))
            .map_err(internal)?;
        let same_login =
            |p: &AuthPass| sid != 0 && p.tty_sid == sid && p.tty_sid_start == sid_start;
        let remote = !info.rhost.is_empty() && !names_this_host(&info.rhost, self.host());
        let hit = passes.iter().find(|p| {
            let coded = matches!(p.method.as_str(), method::TOTP | method::BACKUP_CODE);
            // On a terminal, only the same terminal login counts. Without one: from a
            // remote host (sshd's "ssh"), the same remote host; else the same login
            // session (sudo sets PAM_RHOST to the local host name, the same in every
            // session of the host).
            let same_place = if real_tty(&info.tty) {
                p.tty == info.tty && same_login(p)
            } else if remote {
                !real_tty(&p.tty) && p.rhost == info.rhost
            } else {
                !real_tty(&p.tty) && p.rhost == info.rhost && same_login(p)
            };
            coded
                && p.host == self.host()
                && p.boot_id == self.boot_id
                && p.service == info.service
                && same_place
        });
        let Some(hit) = hit else {
            return Ok(false);
        };
        log::info!(
            "grace: {} passed {} s ago for service {} (tty {}, rhost {}); no code asked",
            safe(user),
            at - hit.at,
            safe(&info.service),
            safe(&info.tty),
            safe(&info.rhost)
        );
        self.record_pass(caller, user, ctx, auth_method::GRACE);
        Ok(true)
    }

    /// The session timeout in force for `user`: the shorter of theirs and the admin's.
    pub fn timeout_for(&self, own: Option<u64>) -> Option<u64> {
        let default = self.service.policy().session_timeout;
        match (own.filter(|s| *s > 0), (default > 0).then_some(default)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `ListSessions`.
    pub fn list(
        &self,
        caller: Caller,
        user: &str,
        include_ended: bool,
    ) -> Result<SessionList, TwofoldError> {
        let at = now();
        let store = &self.service.store;
        let records = store
            .user_sessions(user, include_ended.then_some(at - ENDED_LISTED_SECONDS))
            .map_err(internal)?;
        let own = store.session_timeout(user).map_err(internal)?;
        let timeout = self.timeout_for(own);
        let ancestry = caller.pid.map(procfs::ancestry).unwrap_or_default();
        let sessions = records
            .iter()
            .map(|s| self.info(s, &ancestry, timeout, at))
            .collect();
        let remembered = store
            .auth_passes(user, at - i64::from(MAX_GRACE_SECONDS))
            .map_err(internal)?
            .into_iter()
            .filter(|p| matches!(p.method.as_str(), method::TOTP | method::BACKUP_CODE))
            .map(|p| RememberedLogin {
                user: p.user,
                service: p.service,
                tty: p.tty,
                rhost: p.rhost,
                at: p.at,
                method: p.method,
            })
            .collect();
        Ok(SessionList {
            sessions,
            remembered,
            timeout: own.unwrap_or(0),
            default_timeout: self.service.policy().session_timeout,
        })
    }

    fn info(
        &self,
        s: &SessionRecord,
        ancestry: &[(u32, u64)],
        timeout: Option<u64>,
        at: i64,
    ) -> SessionInfo {
        let here = s.host == self.host() && s.boot_id == self.boot_id;
        let live = s.ended.is_none();
        let idle = if here && live {
            procfs::session_tty(&s.tty, s.leader_pid)
                .and_then(|t| procfs::idle_seconds(&t, at))
                .unwrap_or(-1)
        } else {
            -1
        };
        SessionInfo {
            id: s.id.clone(),
            user: s.user.clone(),
            service: s.service.clone(),
            tty: s.tty.clone(),
            rhost: s.rhost.clone(),
            ruser: s.ruser.clone(),
            rhost_name: s.rhost_name.clone(),
            location: s.location.clone(),
            country_code: s.country_code.clone(),
            host: s.host.clone(),
            leader_pid: s.leader_pid,
            logind_session: s.logind_session.clone(),
            auth_method: s.auth_method.clone(),
            auth_at: s.auth_at,
            started: s.started,
            idle,
            current: here && live && ancestry.contains(&(s.leader_pid, s.leader_start)),
            ended: s.ended.unwrap_or(0),
            end_reason: s.end_reason.clone(),
            expires: match (live, timeout) {
                (true, Some(t)) => s.started.saturating_add(t.min(i64::MAX as u64) as i64),
                _ => 0,
            },
        }
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Result<Option<SessionRecord>, TwofoldError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        self.service.store.session(id).map_err(internal)
    }

    /// The live sessions of `user` on this host that the caller does not run in.
    pub fn others(&self, caller: Caller, user: &str) -> Result<Vec<SessionRecord>, TwofoldError> {
        let ancestry = caller.pid.map(procfs::ancestry).unwrap_or_default();
        Ok(self
            .service
            .store
            .user_sessions(user, None)
            .map_err(internal)?
            .into_iter()
            // The caller's own session is on this host; every other one goes, on this
            // host or (fleet mode) on the host that runs it.
            .filter(|s| {
                s.host != self.host() || !ancestry.contains(&(s.leader_pid, s.leader_start))
            })
            .collect())
    }

    /// `SetSessionTimeout`.
    pub fn set_timeout(
        &self,
        caller: Caller,
        user: &str,
        seconds: u64,
    ) -> Result<(), TwofoldError> {
        if seconds > 366 * 86_400 {
            return Err(TwofoldError::InvalidArgument(
                "A session timeout is at most 366 days.".into(),
            ));
        }
        let mut event = self.event(Some(caller), user, "session_timeout_set");
        event.detail = if seconds == 0 {
            "off".into()
        } else {
            format!("{seconds} s")
        };
        self.service
            .store
            .set_session_timeout(user, (seconds > 0).then_some(seconds), &event)
            .map_err(internal)
    }

    /// `ForgetRemembered`.
    pub fn forget(&self, caller: Caller, user: &str) -> Result<u32, TwofoldError> {
        let event = self.event(Some(caller), user, "remembered_forgotten");
        self.service
            .store
            .forget_auth_passes(user, &event)
            .map_err(internal)
    }
}

#[cfg(test)]
mod tests;

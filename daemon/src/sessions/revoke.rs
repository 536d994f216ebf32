//! Ending sessions: logind's `TerminateSession` when the session has a logind id that
//! logind still gives to the same user and leader, else SIGHUP, SIGTERM, SIGKILL to the
//! processes the session owns (never another user's, never root's but its recorded
//! leader's), each step bounded; and the reaper, which closes sessions whose leader is
//! gone and ends those that timed out or were revoked from another host.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use twofold_contract::{limits, TwofoldError};

use super::{procfs, Sessions, ENDED_KEPT_SECONDS, MAX_GRACE_SECONDS, REAP_EVERY};
use crate::logging::safe;
use crate::service::{now, Caller};
use crate::storage::SessionRecord;

/// How long logind may take to answer.
const LOGIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long each step (logind, then each signal) waits for the leader to exit.
pub const STEP_WAIT: Duration = Duration::from_secs(2);
/// How often the reaper purges old passes and ended sessions.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long a revocation of another host's session waits for that host's daemon to end
/// it: its reaper looks every [`REAP_EVERY`], then takes at most four [`STEP_WAIT`]s.
pub const REMOTE_REVOKE_WAIT: Duration = Duration::from_secs(15);

/// Waits up to `limit` for the leader to be gone.
async fn gone_within(s: &SessionRecord, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !procfs::alive(s.leader_pid, s.leader_start) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whose processes ending a session may signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    /// The uid of the session's user (None when the name no longer resolves: then only
    /// the recorded leader).
    pub user_uid: Option<u32>,
    /// The session was recorded by this daemon, so its leader (a root PAM application)
    /// may be signalled whatever its uid. A record this daemon did not write (fleet mode:
    /// any host can write any row) reaches the user's own non-root processes only.
    pub recorded_here: bool,
    /// The daemon's own pid, never signalled.
    pub own_pid: u32,
}

impl Reach {
    /// May a process with these real and saved uids be signalled (the leader aside)?
    /// As kill(2) would let the user do it themselves.
    fn owns(&self, (real, saved): (u32, u32)) -> bool {
        match self.user_uid {
            Some(0) if !self.recorded_here => false,
            Some(uid) => real == uid || saved == uid,
            None => false,
        }
    }
}

/// The processes that ending a session signals, as `(pid, start)`, from a snapshot of
/// every process: the leader; its descendants; and its process group (or session) only
/// when the leader created it. Each but the leader must belong to the session's user;
/// never pid 1 nor the daemon. `uids` reads a process's real and saved uid.
pub(crate) fn targets(
    leader: (u32, procfs::Stat),
    processes: &[(u32, procfs::Stat)],
    uids: impl Fn(u32) -> Option<(u32, u32)>,
    reach: Reach,
) -> Vec<(u32, u64)> {
    let (leader_pid, leader_stat) = leader;
    let mut chosen: Vec<(u32, u64)> = Vec::new();
    let allowed = |pid: u32| pid > 1 && pid != reach.own_pid;
    if allowed(leader_pid)
        && (reach.recorded_here || uids(leader_pid).is_some_and(|ids| reach.owns(ids)))
    {
        chosen.push((leader_pid, leader_stat.start));
    }
    // Descendants, breadth first (bounded: a fork bomb must not stall the daemon).
    let mut members: Vec<u32> = Vec::new();
    let mut frontier = vec![leader_pid];
    while !frontier.is_empty() && members.len() < MAX_TARGETS {
        let next: Vec<u32> = processes
            .iter()
            .filter(|(pid, st)| frontier.contains(&st.ppid) && *pid != leader_pid)
            .map(|(pid, _)| *pid)
            .filter(|pid| !members.contains(pid))
            .collect();
        members.extend(&next);
        frontier = next;
    }
    // The leader's own group and session hold what it started, reparented or not.
    let owns_group = leader_stat.pgrp == leader_pid;
    let owns_session = leader_stat.sid == leader_pid;
    for (pid, st) in processes {
        if (owns_group && st.pgrp == leader_pid) || (owns_session && st.sid == leader_pid) {
            members.push(*pid);
        }
    }
    for (pid, st) in processes {
        if members.contains(pid)
            && *pid != leader_pid
            && allowed(*pid)
            && st.state != 'Z'
            && !chosen.iter().any(|(p, _)| p == pid)
            && chosen.len() < MAX_TARGETS
            && uids(*pid).is_some_and(|ids| reach.owns(ids))
        {
            chosen.push((*pid, st.start));
        }
    }
    chosen
}

/// Most processes one signal step reaches.
const MAX_TARGETS: usize = 4096;

/// Sends `sig` to the processes the session owns (see [`targets`]), each only while
/// its pid still names the process seen (start time checked right before the kill).
/// True when anything was signalled.
fn signal(s: &SessionRecord, sig: Signal, reach: Reach) -> bool {
    let Some(stat) = procfs::stat(s.leader_pid) else {
        return false;
    };
    if stat.start != s.leader_start {
        return false;
    }
    let processes = procfs::processes();
    let mut sent = false;
    for (pid, start) in targets((s.leader_pid, stat), &processes, procfs::uids, reach) {
        if procfs::stat(pid).is_none_or(|now| now.start != start) {
            continue; // gone, or the pid names another process by now
        }
        match kill(Pid::from_raw(pid as i32), sig) {
            Ok(()) => sent = true,
            Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => log::warn!("cannot send {sig} to {pid} (session {}): {e}", s.id),
        }
    }
    sent
}

impl Sessions {
    /// Whether this host's twofoldd wrote the record: the only writer of a local store
    /// (root's 0600 file) under this boot, or, in a fleet, this very daemon.
    fn recorded_here(&self, s: &SessionRecord) -> bool {
        let only_writer = !self.fleet && s.host == self.host() && s.boot_id == self.boot_id;
        only_writer || self.recorded.lock().is_ok_and(|r| r.contains(&s.id))
    }

    /// Asks logind to terminate the session, once logind confirms that its session of
    /// that id still belongs to the user and is led by the recorded leader; true when it
    /// accepted.
    async fn logind_terminate(&self, s: &SessionRecord, user_uid: Option<u32>) -> bool {
        let (Some(bus), Some(uid)) = (&self.bus, user_uid) else {
            return false;
        };
        let asked = tokio::time::timeout(
            LOGIND_TIMEOUT,
            super::logind::session_by_id(bus, &s.logind_session),
        )
        .await;
        match asked {
            Ok(Ok(found)) if found.is_of(uid, s.leader_pid) => {}
            Ok(Ok(found)) => {
                log::warn!(
                    "logind session {} is of uid {} led by {}, not session {}'s: signalling",
                    safe(&found.id),
                    found.uid,
                    found.leader,
                    s.id
                );
                return false;
            }
            Ok(Err(e)) => {
                log::warn!(
                    "logind does not confirm session {}: {e}; signalling",
                    safe(&s.logind_session)
                );
                return false;
            }
            Err(_) => {
                log::warn!("logind did not answer within {LOGIND_TIMEOUT:?}; signalling");
                return false;
            }
        }
        let args = (s.logind_session.as_str(),);
        let call = bus.call_method(
            Some("org.freedesktop.login1"),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "TerminateSession",
            &args,
        );
        match tokio::time::timeout(LOGIND_TIMEOUT, call).await {
            Ok(Ok(_)) => {
                log::info!(
                    "logind terminated session {} (logind id {})",
                    s.id,
                    safe(&s.logind_session)
                );
                true
            }
            Ok(Err(e)) => {
                log::warn!(
                    "logind TerminateSession({}) failed: {e}; signalling the leader",
                    safe(&s.logind_session)
                );
                false
            }
            Err(_) => {
                log::warn!(
                    "logind did not answer within {LOGIND_TIMEOUT:?}; signalling the leader"
                );
                false
            }
        }
    }

    /// Ends a live session on this host and records `reason`. Each step is bounded.
    pub async fn terminate(
        self: &Arc<Self>,
        s: SessionRecord,
        caller: Option<Caller>,
        reason: String,
    ) -> Result<(), TwofoldError> {
        if s.ended.is_some() {
            return Err(TwofoldError::InvalidArgument(format!(
                "Session {} has ended already.",
                s.id
            )));
        }
        if s.host != self.service.hostname {
            return self.revoke_elsewhere(s, caller, reason).await;
        }
        {
            let Ok(mut busy) = self.revoking.lock() else {
                return Err(TwofoldError::Internal("session lock poisoned".into()));
            };
            if !busy.insert(s.id.clone()) {
                return Ok(()); // being ended already
            }
        }
        let result = self.terminate_inner(&s, caller, &reason).await;
        if let Ok(mut busy) = self.revoking.lock() {
            busy.remove(&s.id);
        }
        result
    }

    async fn terminate_inner(
        self: &Arc<Self>,
        s: &SessionRecord,
        caller: Option<Caller>,
        reason: &str,
    ) -> Result<(), TwofoldError> {
        let mut how = "gone already";
        let same_boot = s.boot_id == self.boot_id;
        if same_boot && procfs::alive(s.leader_pid, s.leader_start) {
            how = "not ended";
            let reach = Reach {
                user_uid: super::user_uid(&s.user),
                recorded_here: self.recorded_here(s),
                own_pid: std::process::id(),
            };
            if !reach.recorded_here {
                log::warn!(
                    "session {} was not recorded by this daemon: only its user's own \
                     processes are signalled",
                    s.id
                );
            }
            if reach.recorded_here
                && !s.logind_session.is_empty()
                && self.logind_terminate(s, reach.user_uid).await
                && gone_within(s, STEP_WAIT).await
            {
                how = "logind";
            } else {
                for sig in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGKILL] {
                    if !signal(s, sig, reach) && procfs::alive(s.leader_pid, s.leader_start) {
                        continue;
                    }
                    if gone_within(s, STEP_WAIT).await {
                        how = sig.as_str();
                        break;
                    }
                }
            }
            if how == "not ended" && !reach.recorded_here {
                log::error!(
                    "session {}: not recorded by this daemon, and its leader {} outlived \
                     its user's processes",
                    s.id,
                    s.leader_pid
                );
                return Err(TwofoldError::Internal(format!(
                    "Session {} was not recorded by this twofoldd (it restarted since, or \
                     another host wrote it), so only its user's own processes were \
                     signalled, and its leader {} still runs.",
                    s.id, s.leader_pid
                )));
            }
            if how == "not ended" {
                log::error!("session {}: leader {} survived SIGKILL", s.id, s.leader_pid);
                return Err(TwofoldError::Internal(format!(
                    "Session {} did not end (its leader {} survived SIGKILL).",
                    s.id, s.leader_pid
                )));
            }
        }
        let reason = format!("{reason} ({how})");
        let this = self.clone();
        let s2 = s.clone();
        tokio::task::spawn_blocking(move || this.end(&s2, caller, &reason, "session_revoked"))
            .await
            .map_err(|_| TwofoldError::Internal("worker failed".into()))??;
        Ok(())
    }

    /// Fleet mode: a session of another host (sharing the store) is ended by that host's
    /// daemon. The request goes into the store; that daemon's reaper sees it within
    /// [`REAP_EVERY`] and ends the session. Waits up to [`REMOTE_REVOKE_WAIT`] for it.
    async fn revoke_elsewhere(
        self: &Arc<Self>,
        s: SessionRecord,
        caller: Option<Caller>,
        reason: String,
    ) -> Result<(), TwofoldError> {
        let this = self.clone();
        let id = s.id.clone();
        let asked = tokio::task::spawn_blocking(move || {
            let mut event = this.event(caller, &s.user, "session_revoke_requested");
            event.service = safe(&s.service);
            event.tty = safe(&s.tty);
            event.rhost = safe(&s.rhost);
            event.detail = format!("id={} on {}: {reason}", s.id, safe(&s.host));
            let reason = format!("{reason} from {}", this.service.hostname);
            this.service
                .store
                .request_revoke(&s.id, &reason, &event)
                .map(|asked| (asked, s.host))
        })
        .await
        .map_err(|_| TwofoldError::Internal("worker failed".into()))?;
        let (asked, host) = asked.map_err(super::internal)?;
        if !asked {
            return Err(TwofoldError::InvalidArgument(format!(
                "Session {id} has ended already."
            )));
        }
        log::info!(
            "session {id} runs on {}: asked its daemon to end it",
            safe(&host)
        );
        let deadline = Instant::now() + REMOTE_REVOKE_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let this = self.clone();
            let wanted = id.clone();
            let now = tokio::task::spawn_blocking(move || this.service.store.session(&wanted))
                .await
                .map_err(|_| TwofoldError::Internal("worker failed".into()))?
                .map_err(super::internal)?;
            if now.is_none_or(|s| s.ended.is_some()) {
                return Ok(());
            }
        }
        Err(TwofoldError::Internal(format!(
            "Session {id} runs on {}: its daemon was asked to end it but has not done so \
             within {} seconds (is twofoldd running there?). It ends the session as soon \
             as it runs.",
            safe(&host),
            REMOTE_REVOKE_WAIT.as_secs()
        )))
    }

    /// One pass of the reaper: stale sessions closed, timed-out ones warned and ended.
    /// Returns the sessions to end, with why: timed out, or revoked from another host.
    pub(crate) fn reap_once(&self) -> Vec<(SessionRecord, String)> {
        let store = &self.service.store;
        let live = match store.host_live_sessions(&self.service.hostname) {
            Ok(l) => l,
            Err(e) => {
                log::error!("reaper: {e}");
                return Vec::new();
            }
        };
        if live.is_empty() {
            return Vec::new();
        }
        let own: std::collections::HashMap<String, u64> = store
            .session_timeouts()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let at = now();
        let mut expired = Vec::new();
        for s in live {
            let reason = if s.boot_id != self.boot_id {
                Some("host rebooted".to_string())
            } else if !procfs::alive(s.leader_pid, s.leader_start) {
                Some(format!(
                    "leader gone (process {} ended without closing the session)",
                    s.leader_pid
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                // A leader that dies while its session is being ended dies of it: the
                // revocation records why (checked after the death was seen, and a
                // revocation is marked before its first signal, so this cannot race).
                if self.revoking.lock().is_ok_and(|r| r.contains(&s.id)) {
                    continue;
                }
                if let Err(e) = self.end(&s, None, &reason, "session_reaped") {
                    log::error!("reaper: {}", e.message());
                }
                continue;
            }
            if !s.revoke_requested.is_empty() {
                let reason = s.revoke_requested.clone();
                expired.push((s, reason));
                continue;
            }
            let Some(timeout) = self.timeout_for(own.get(&s.user).copied()) else {
                continue;
            };
            let ends = s
                .started
                .saturating_add(timeout.min(i64::MAX as u64) as i64);
            if at >= ends {
                expired.push((s, "timeout".to_string()));
            } else if !s.warned && at >= ends - limits::SESSION_TIMEOUT_WARNING {
                // A session is recorded before sshd or login gives it its terminal: one
                // not found yet is looked for again at the next pass, for a while.
                let warned = warn_terminal(&s, ends - at)
                    || at.saturating_sub(s.started) >= TERMINAL_SEARCH_SECONDS;
                if warned {
                    if let Err(e) = store.mark_session_warned(&s.id) {
                        log::error!("reaper: {e}");
                    }
                }
            }
        }
        expired
    }
}

/// How long after a session starts the reaper keeps looking for its terminal to warn.
const TERMINAL_SEARCH_SECONDS: i64 = 30;

/// Writes the timeout warning to the session's terminal, where it has one; false when
/// no terminal was found (yet). Never blocks: the terminal is opened non-blocking and
/// never becomes our controlling tty.
fn warn_terminal(s: &SessionRecord, seconds: i64) -> bool {
    let Some(path) = procfs::session_tty(&s.tty, s.leader_pid) else {
        return false;
    };
    let is_tty = std::fs::symlink_metadata(&path)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false);
    if !is_tty {
        return false;
    }
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&path);
    let message = format!(
        "\r\n*** twofold: this session ({}) reaches its time limit and will be ended in {} seconds. ***\r\n",
        s.id,
        seconds.max(0)
    );
    match opened.and_then(|mut f| f.write(message.as_bytes())) {
        Ok(_) => log::info!(
            "session {}: timeout warning written to {}",
            s.id,
            path.display()
        ),
        Err(e) => log::debug!("session {}: no warning on {}: {e}", s.id, path.display()),
    }
    true
}

/// The reaper: every [`REAP_EVERY`], closes this host's sessions whose leader is gone
/// (or that predate a reboot) and ends those past their timeout; hourly, purges old
/// remembered passes, ended sessions, idle throttle counters and old audit entries.
pub async fn reaper(sessions: Arc<Sessions>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge: Option<Instant> = None;
    loop {
        tick.tick().await;
        let this = sessions.clone();
        let purge = last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY);
        let expired = tokio::task::spawn_blocking(move || {
            if purge {
                let at = now();
                if let Err(e) = this
                    .service
                    .store
                    .purge_sessions(at - i64::from(MAX_GRACE_SECONDS), at - ENDED_KEPT_SECONDS)
                {
                    log::error!("reaper: purge failed: {e}");
                }
                this.service.purge_expired(at);
            }
            this.reap_once()
        })
        .await
        .unwrap_or_default();
        if purge {
            last_purge = Some(Instant::now());
        }
        for (s, reason) in expired {
            let this = sessions.clone();
            tokio::spawn(async move {
                let id = s.id.clone();
                if let Err(e) = this.terminate(s, None, reason.clone()).await {
                    log::error!("session {id}: {reason}: {}", e.message());
                }
            });
        }
    }
}

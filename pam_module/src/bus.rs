//! The real daemon connection: zbus on a tokio current-thread runtime owned by the hook.
//!
//! The daemon's direct socket (`socket=`) is tried first: D-Bus peer to peer, no bus in
//! between. Its peer must be `daemon_uid` (`SO_PEERCRED`, read before anything is sent),
//! which is then the whole owner check. When it is absent or refuses, the module uses
//! the bus (`bus=`) as below, and asks the bus to start the daemon when the name has no
//! owner (D-Bus activation).
//!
//! No thread outlives a hook call: the runtime is current-thread (it spawns none), zbus
//! is built with only its `tokio` feature (so it starts no executor thread of its own),
//! and the socket is connected here, non-blocking, instead of by zbus (whose address
//! connector runs the blocking `connect(2)` on tokio's blocking pool, i.e. in a thread).
//! The runtime is shut down when the [`BusDaemon`] is dropped.
//!
//! The owner check costs no round trip of its own: [`BusConnector::connect`] asks the bus
//! who owns [`BUS_NAME`] (unique name O) and stops there; the first daemon call (unless
//! it carries a code: `Verify` waits for the check) is sent to O together with
//! `GetConnectionUnixUser(O)`, and its answer is handed
//! out only once that uid is `daemon_uid` (otherwise it is dropped, and this and every
//! later call fail as "unavailable"). Unique names are never reused, so both messages
//! concern the same connection, and nothing is ever sent to the well-known name.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use twofold_contract::{LoginState, TwofoldError, TwofoldProxy, Verified, BUS_NAME};
use zbus::address::transport::{Transport, UnixSocket};
use zbus::fdo::DBusProxy;
use zbus::names::{BusName, OwnedUniqueName, WellKnownName};
use zbus::proxy::CacheProperties;

use crate::auth::{CallError, Connector, Daemon};
use crate::options::Options;

/// How long dropping a [`BusDaemon`] waits for tokio's blocking pool (normally empty).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// Connects to `twofoldd` on the bus named by `opts.bus`.
#[derive(Debug, Default)]
pub struct BusConnector;

/// A connection to the owner of [`BUS_NAME`] (whose uid the first call checks), with the
/// runtime that drives it.
pub struct BusDaemon {
    // Dropped explicitly, in this order, inside the runtime context: see `Drop`.
    link: Option<Link>,
    rt: Option<Runtime>,
}

/// The connection (held by the proxies) and what is known of the daemon at its end.
struct Link {
    /// On the bus, sends to `owner`, never to the well-known name.
    proxy: TwofoldProxy<'static>,
    /// On the bus: the bus itself, for the uid check, and the unique name that owned
    /// [`BUS_NAME`] when asked. None on the direct socket (checked before the handshake).
    bus_owner: Option<(DBusProxy<'static>, OwnedUniqueName)>,
    daemon_uid: u32,
    owner_uid: OwnerUid,
    /// Why the direct socket was not used although something listened there as another
    /// uid than `daemon_uid` (for the log: someone may be impersonating the daemon).
    impostor: Option<String>,
}

/// Whether `owner` is known to run as `daemon_uid`.
enum OwnerUid {
    /// Not answered yet (not asked, or the call that asked ran out of time): the next
    /// call asks again, alongside.
    Unchecked,
    /// It does: calls run alone.
    Expected,
    /// It does not, or the bus could not say: every call fails with this reason.
    Refused(String),
}

impl Connector for BusConnector {
    type Daemon = BusDaemon;

    fn connect(&mut self, opts: &Options, deadline: Instant) -> Result<BusDaemon, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        let mut daemon = BusDaemon {
            link: None,
            rt: Some(rt),
        };
        let link = daemon
            .run(deadline, "connecting", open(opts))
            .map_err(|e| match e {
                CallError::Unavailable(reason) => reason,
                CallError::Daemon(e) => format!("{e:?}"),
            })?;
        daemon.link = Some(link);
        Ok(daemon)
    }
}

impl BusDaemon {
    /// Runs `fut` on the runtime until it completes or `deadline` passes. The future is
    /// dropped inside the runtime (zbus may spawn clean-up tasks from destructors).
    fn run<T, F>(&self, deadline: Instant, what: &str, fut: F) -> Result<T, CallError>
    where
        F: Future<Output = Result<T, CallError>>,
    {
        let Some(rt) = self.rt.as_ref() else {
            return Err(CallError::Unavailable("runtime already shut down".into()));
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        rt.block_on(async move {
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(result) => result,
                Err(_) => Err(CallError::Unavailable(format!(
                    "no answer within the timeout while {what}"
                ))),
            }
        })
    }

    fn link(&self) -> Result<&Link, CallError> {
        self.link
            .as_ref()
            .ok_or_else(|| CallError::Unavailable("not connected".into()))
    }

    /// The proxy to the owner, for one call (a cheap clone, so that [`Self::call`] may
    /// record the uid check's outcome while the call borrows the proxy).
    fn proxy(&self) -> Result<TwofoldProxy<'static>, CallError> {
        Ok(self.link()?.proxy.clone())
    }

    /// Runs one daemon call under `deadline`. Until the owner's uid is known to be
    /// right, the call runs alongside the check and its answer waits for (and depends
    /// on) the check's outcome, which is kept for the following calls.
    fn call<T, F>(&mut self, deadline: Instant, what: &str, call: F) -> Result<T, CallError>
    where
        F: Future<Output = Result<T, TwofoldError>>,
    {
        let link = self.link()?;
        let call = async { Ok(call.await?) };
        match &link.owner_uid {
            OwnerUid::Expected => return self.run(deadline, what, call),
            OwnerUid::Refused(reason) => return Err(CallError::Unavailable(reason.clone())),
            OwnerUid::Unchecked => {}
        }
        let mut verdict = None;
        let result = self.run(
            deadline,
            what,
            gated(link.check_owner_uid(), call, &mut verdict),
        );
        if let Some(verdict) = &verdict {
            self.settle_owner(verdict);
        }
        result
    }
}

impl BusDaemon {
    /// Keeps the outcome of the owner check for the following calls.
    fn settle_owner(&mut self, verdict: &Result<(), String>) {
        if let Some(link) = self.link.as_mut() {
            link.owner_uid = match verdict {
                Ok(()) => OwnerUid::Expected,
                Err(reason) => OwnerUid::Refused(reason.clone()),
            };
        }
    }

    /// Settles the owner check on its own (before a call that carries a secret).
    fn check_owner_alone(&mut self, deadline: Instant) -> Result<(), CallError> {
        let link = self.link()?;
        if !matches!(link.owner_uid, OwnerUid::Unchecked) {
            return Ok(());
        }
        let verdict = self.run(deadline, "checking the daemon", async {
            Ok(link.check_owner_uid().await)
        })?;
        self.settle_owner(&verdict);
        verdict.map_err(CallError::Unavailable)
    }
}

impl Link {
    /// `GetConnectionUnixUser(owner)` must answer `daemon_uid`; the error is the reason
    /// for the log.
    async fn check_owner_uid(&self) -> Result<(), String> {
        let Some((dbus, owner)) = &self.bus_owner else {
            return Err("no bus to check the daemon's uid on".into());
        };
        let uid = dbus
            .get_connection_unix_user(BusName::Unique(owner.as_ref()))
            .await
            .map_err(|e| format!("GetConnectionUnixUser({owner}): {e}"))?;
        if uid != self.daemon_uid {
            let expected = self.daemon_uid;
            return Err(format!(
                "owner {owner} of {BUS_NAME} runs as uid {uid}, expected {expected}"
            ));
        }
        Ok(())
    }
}

/// Runs `call` alongside `check` (`check` is polled first, then `call`, so both requests
/// are on the wire before either answer is awaited) and returns `call`'s answer only
/// once `check` has passed. A failed check is the result as soon as it is known, whatever
/// `call` answered or would answer (its answer is dropped unseen). `verdict` receives
/// the check's outcome once known (it stays `None` if this is dropped before).
async fn gated<T>(
    check: impl Future<Output = Result<(), String>>,
    call: impl Future<Output = Result<T, CallError>>,
    verdict: &mut Option<Result<(), String>>,
) -> Result<T, CallError> {
    let mut check = pin!(check);
    let mut call = pin!(call);
    let mut answer = None;
    poll_fn(move |cx| {
        if verdict.is_none() {
            if let Poll::Ready(outcome) = check.as_mut().poll(cx) {
                *verdict = Some(outcome);
            }
        }
        if let Some(Err(reason)) = verdict {
            return Poll::Ready(Err(CallError::Unavailable(reason.clone())));
        }
        if answer.is_none() {
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                answer = Some(result);
            }
        }
        match (&*verdict, answer.take()) {
            (Some(Ok(())), Some(result)) => Poll::Ready(result),
            (_, pending) => {
                answer = pending;
                Poll::Pending
            }
        }
    })
    .await
}

impl Daemon for BusDaemon {
    fn impostor(&self) -> Option<String> {
        self.link.as_ref()?.impostor.clone()
    }

    fn begin_login(
        &mut self,
        user: &str,
        context: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<LoginState, CallError> {
        let proxy = self.proxy()?;
        self.call(deadline, "asking about the login", async move {
            proxy.begin_login(user, context).await
        })
    }

    fn verify(
        &mut self,
        user: &str,
        code: &str,
        context: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<Verified, CallError> {
        // A code goes only to an owner already checked: never alongside the check.
        self.check_owner_alone(deadline)?;
        let proxy = self.proxy()?;
        self.call(deadline, "verifying the code", async move {
            proxy.verify(user, code, context).await
        })
    }

    fn open_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<String, CallError> {
        let proxy = self.proxy()?;
        self.call(deadline, "registering the session", async move {
            proxy.open_session(user, info).await
        })
    }

    fn close_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<(), CallError> {
        let proxy = self.proxy()?;
        self.call(deadline, "closing the session", async move {
            proxy.close_session(user, info).await
        })
    }

    fn check_grace(
        &mut self,
        user: &str,
        context: HashMap<String, String>,
        seconds: u32,
        deadline: Instant,
    ) -> Result<bool, CallError> {
        let proxy = self.proxy()?;
        self.call(deadline, "checking the grace window", async move {
            proxy.check_grace(user, context, seconds).await
        })
    }
}

impl Drop for BusDaemon {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _context = rt.enter();
                self.link = None;
            }
            // Drops every task (the socket reader among them) and closes the socket.
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> CallError {
    CallError::Unavailable(e.to_string())
}

/// Connects the bus socket without blocking (a full listen backlog fails with `EAGAIN`
/// instead of blocking in `connect(2)`).
async fn connect_socket(bus: &str) -> Result<tokio::net::UnixStream, CallError> {
    let addr: zbus::Address = bus
        .parse()
        .map_err(|e| unavailable(format!("bad bus address: {e}")))?;
    let Transport::Unix(unix) = addr.transport() else {
        return Err(unavailable("only unix: bus addresses are supported"));
    };
    let result = match unix.path() {
        UnixSocket::File(path) => tokio::net::UnixStream::connect(path).await,
        UnixSocket::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::ffi::OsStrExt;
            let std_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(|e| unavailable(format!("bad abstract socket name: {e}")))?;
            let addr = tokio::net::unix::SocketAddr::from(std_addr);
            tokio::net::UnixStream::connect_addr(&addr).await
        }
        _ => {
            return Err(unavailable(
                "only unix:path= and unix:abstract= are supported",
            ))
        }
    };
    result.map_err(|e| unavailable(format!("cannot connect to {bus}: {e}")))
}

/// The direct socket when there is one (`socket=`) and it works, else the bus.
async fn open(opts: &Options) -> Result<Link, CallError> {
    let Some(socket) = &opts.socket else {
        return open_bus(&opts.bus, opts.daemon_uid).await;
    };
    let (direct, impostor) = match open_direct(socket, opts.daemon_uid).await {
        Ok(link) => return Ok(link),
        Err(DirectFailure::Unavailable(reason)) => (reason, None),
        Err(DirectFailure::Impostor(reason)) => (reason.clone(), Some(reason)),
    };
    match open_bus(&opts.bus, opts.daemon_uid).await {
        Ok(link) => Ok(Link { impostor, ..link }),
        Err(CallError::Unavailable(bus)) => Err(unavailable(format!("{direct}; {bus}"))),
        Err(other) => Err(other),
    }
}

/// Why the direct socket was not used.
enum DirectFailure {
    /// Absent, refusing, or not speaking D-Bus: the bus is tried, nothing to report.
    Unavailable(String),
    /// Served by another uid than `daemon_uid`: the bus is tried, and this is logged.
    Impostor(String),
}

impl From<CallError> for DirectFailure {
    fn from(e: CallError) -> Self {
        DirectFailure::Unavailable(match e {
            CallError::Unavailable(reason) => reason,
            CallError::Daemon(e) => format!("{e:?}"),
        })
    }
}

/// Connects to the daemon's socket, checks that its peer runs as `daemon_uid` before
/// sending a byte, then speaks D-Bus peer to peer (no `Hello`, no owner to look up).
async fn open_direct(path: &str, daemon_uid: u32) -> Result<Link, DirectFailure> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| unavailable(format!("cannot connect to {path}: {e}")))?;
    let peer = stream
        .peer_cred()
        .map_err(|e| unavailable(format!("SO_PEERCRED on {path}: {e}")))?;
    if peer.uid() != daemon_uid {
        return Err(DirectFailure::Impostor(format!(
            "{path} is served by uid {}, expected {daemon_uid}; not using it",
            peer.uid()
        )));
    }
    let conn = zbus::connection::Builder::unix_stream(stream)
        .p2p()
        .build()
        .await
        .map_err(|e| unavailable(format!("D-Bus handshake on {path} failed: {e}")))?;
    let proxy = TwofoldProxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| unavailable(format!("Twofold proxy: {e}")))?;
    Ok(Link {
        proxy,
        bus_owner: None,
        daemon_uid,
        owner_uid: OwnerUid::Expected,
        impostor: None,
    })
}

/// Connects, finds the owner of [`BUS_NAME`] (asking the bus to start it when there is
/// none) and builds a proxy that sends to that owner's unique name; the owner's uid is
/// checked by the first call (see [`Link`]). Building the proxies sends nothing (no
/// introspection, no match rule: properties are not cached), so this costs the
/// handshake and `GetNameOwner` only when the daemon runs.
async fn open_bus(bus: &str, daemon_uid: u32) -> Result<Link, CallError> {
    let stream = connect_socket(bus).await?;
    let conn = zbus::connection::Builder::unix_stream(stream)
        .build()
        .await
        .map_err(|e| unavailable(format!("D-Bus handshake on {bus} failed: {e}")))?;
    let dbus = DBusProxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| unavailable(format!("D-Bus proxy: {e}")))?;
    let name = BusName::try_from(BUS_NAME).map_err(unavailable)?;
    let owner = match dbus.get_name_owner(name.clone()).await {
        Ok(owner) => owner,
        Err(zbus::fdo::Error::NameHasNoOwner(_)) => {
            // Not running (after a boot, a crash, an upgrade): D-Bus activation starts
            // it, and answers once it owns the name (or could not start it).
            let well_known = WellKnownName::try_from(BUS_NAME).map_err(unavailable)?;
            dbus.start_service_by_name(well_known, 0)
                .await
                .map_err(|e| {
                    unavailable(format!(
                        "{BUS_NAME} has no owner on {bus} and could not be started: {e}"
                    ))
                })?;
            dbus.get_name_owner(name).await.map_err(|e| {
                unavailable(format!("GetNameOwner({BUS_NAME}) after starting it: {e}"))
            })?
        }
        Err(e) => return Err(unavailable(format!("GetNameOwner({BUS_NAME}): {e}"))),
    };
    let proxy = TwofoldProxy::builder(&conn)
        .destination(BusName::Unique(owner.clone().into_inner()))
        .map_err(unavailable)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| unavailable(format!("Twofold proxy: {e}")))?;
    Ok(Link {
        proxy,
        bus_owner: Some((dbus, owner)),
        daemon_uid,
        owner_uid: OwnerUid::Unchecked,
        impostor: None,
    })
}

#[cfg(test)]
mod tests;

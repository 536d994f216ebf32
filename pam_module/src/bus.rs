//! The real daemon connection: zbus on a tokio current-thread runtime owned by the hook.
//!
//! No thread outlives a hook call: the runtime is current-thread (it spawns none), zbus
//! is built with only its `tokio` feature (so it starts no executor thread of its own),
//! and the socket is connected here, non-blocking, instead of by zbus (whose address
//! connector runs the blocking `connect(2)` on tokio's blocking pool, i.e. in a thread).
//! The runtime is shut down when the [`BusDaemon`] is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use twofold_contract::{LoginState, TwofoldProxy, Verified, BUS_NAME};
use zbus::address::transport::{Transport, UnixSocket};
use zbus::fdo::DBusProxy;
use zbus::names::BusName;
use zbus::proxy::CacheProperties;
use zbus::Connection;

use crate::auth::{CallError, Connector, Daemon};
use crate::options::Options;

/// How long dropping a [`BusDaemon`] waits for tokio's blocking pool (normally empty).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// Connects to `twofoldd` on the bus named by `opts.bus`.
#[derive(Debug, Default)]
pub struct BusConnector;

/// A connection to the checked owner of [`BUS_NAME`], with the runtime that drives it.
pub struct BusDaemon {
    // Dropped explicitly, in this order, inside the runtime context: see `Drop`.
    proxy: Option<TwofoldProxy<'static>>,
    conn: Option<Connection>,
    rt: Option<Runtime>,
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
            proxy: None,
            conn: None,
            rt: Some(rt),
        };
        let (conn, proxy) = daemon
            .run(deadline, "connecting", open(&opts.bus, opts.daemon_uid))
            .map_err(|e| match e {
                CallError::Unavailable(reason) => reason,
                CallError::Daemon(e) => format!("{e:?}"),
            })?;
        daemon.conn = Some(conn);
        daemon.proxy = Some(proxy);
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

    fn proxy(&self) -> Result<&TwofoldProxy<'static>, CallError> {
        self.proxy
            .as_ref()
            .ok_or_else(|| CallError::Unavailable("not connected".into()))
    }
}

impl Daemon for BusDaemon {
    fn begin_login(
        &mut self,
        user: &str,
        context: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<LoginState, CallError> {
        let proxy = self.proxy()?;
        self.run(deadline, "asking about the login", async {
            Ok(proxy.begin_login(user, context).await?)
        })
    }

    fn verify(
        &mut self,
        user: &str,
        code: &str,
        context: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<Verified, CallError> {
        let proxy = self.proxy()?;
        self.run(deadline, "verifying the code", async {
            Ok(proxy.verify(user, code, context).await?)
        })
    }

    fn open_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<String, CallError> {
        let proxy = self.proxy()?;
        self.run(deadline, "registering the session", async {
            Ok(proxy.open_session(user, info).await?)
        })
    }

    fn close_session(
        &mut self,
        user: &str,
        info: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<(), CallError> {
        let proxy = self.proxy()?;
        self.run(deadline, "closing the session", async {
            Ok(proxy.close_session(user, info).await?)
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
        self.run(deadline, "checking the grace window", async {
            Ok(proxy.check_grace(user, context, seconds).await?)
        })
    }
}

impl Drop for BusDaemon {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _context = rt.enter();
                self.proxy = None;
                self.conn = None;
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

/// Connects, finds the owner of [`BUS_NAME`], checks its uid, and builds a proxy that
/// sends to that owner's unique name (so the checked connection is the one answering).
async fn open(
    bus: &str,
    daemon_uid: u32,
) -> Result<(Connection, TwofoldProxy<'static>), CallError> {
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
    let owner = match dbus.get_name_owner(name).await {
        Ok(owner) => owner,
        Err(zbus::fdo::Error::NameHasNoOwner(_)) => {
            return Err(unavailable(format!("{BUS_NAME} has no owner on {bus}")));
        }
        Err(e) => return Err(unavailable(format!("GetNameOwner({BUS_NAME}): {e}"))),
    };
    let uid = dbus
        .get_connection_unix_user(BusName::Unique(owner.as_ref()))
        .await
        .map_err(|e| unavailable(format!("GetConnectionUnixUser({owner}): {e}")))?;
    if uid != daemon_uid {
        return Err(unavailable(format!(
            "owner {owner} of {BUS_NAME} runs as uid {uid}, expected {daemon_uid}"
        )));
    }
    let proxy = TwofoldProxy::builder(&conn)
        .destination(BusName::Unique(owner.into_inner()))
        .map_err(unavailable)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| unavailable(format!("Twofold proxy: {e}")))?;
    Ok((conn, proxy))
}

#[cfg(test)]
mod tests;

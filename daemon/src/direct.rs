//! The direct socket: the same `org.twofold.Twofold1` object as on the bus, spoken
//! D-Bus peer to peer (framed by [`twofold_contract::wire`], without a zbus connection
//! per client: a login opens two) on a root-only unix socket (by default
//! [`twofold_contract::DIRECT_SOCKET`]), so that a login costs no trip through the bus
//! daemon and holds none of root's bus connections.
//!
//! The caller of every call on a connection is the socket's peer as the kernel saw it when
//! the connection was accepted (`SO_PEERCRED`), never anything a message says; the calls
//! then go through the same [`TwofoldInterface::authorize`] as the bus's. Connections are
//! capped in number and idle time, so that nobody can hold the daemon's resources by
//! leaving them open.

use std::fs;
use std::io;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use twofold_contract::wire::{self, Message, FIXED_HEADER_LEN};
use zeroize::Zeroizing;

use crate::dbus::{DirectCalls, TwofoldInterface};
use crate::files::ensure_runtime_dir;
use crate::service::Caller;

mod sasl;

/// Direct connections open at once; one more is closed as soon as it is accepted (the
/// module then uses the bus).
pub const MAX_CONNECTIONS: usize = 64;
/// A direct connection that sends nothing for this long (the handshake included) is
/// closed. The module holds one for a few round trips, never while the user types.
pub const IDLE_LIMIT: Duration = Duration::from_secs(10);

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The listening socket: the one systemd passed (socket activation, `twofoldd.socket`),
/// else `path`, bound here. Call before any thread is started (it reads and clears the
/// `LISTEN_*` variables).
pub fn listen(path: &Path) -> Result<UnixListener, String> {
    match from_systemd()? {
        Some(listener) => Ok(listener),
        None => bind(path),
    }
}

/// The socket systemd passed, if it passed one to this process (`LISTEN_PID` is ours).
fn from_systemd() -> Result<Option<UnixListener>, String> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").ok();
    // Meant for us or not, children must not see them.
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    if !ours {
        return Ok(None);
    }
    if count.as_deref() != Some("1") {
        return Err(format!(
            "systemd passed {} sockets; twofoldd.socket passes exactly one",
            count.unwrap_or_default()
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor flags of fd 3 (EBADF when it is closed);
    // no memory is passed.
    if unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_GETFD) } == -1 {
        return Err("LISTEN_FDS is 1 but nothing is open on fd 3".into());
    }
    // SAFETY: systemd passed fd 3 to this very process (LISTEN_PID is our pid and
    // LISTEN_FDS is 1), and nothing in it has used or claimed that descriptor yet.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    check_passed_socket(&fd)?;
    Ok(Some(UnixListener::from(fd)))
}

/// A passed descriptor must be a listening unix stream socket; it is made close-on-exec.
fn check_passed_socket(fd: &OwnedFd) -> Result<(), String> {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType};
    use nix::sys::socket::{SockaddrLike, UnixAddr};
    use std::os::fd::AsRawFd;
    let wrong = |what: &str| format!("the socket systemd passed is {what}");
    let kind = getsockopt(fd, sockopt::SockType).map_err(|e| wrong(&format!("unusable: {e}")))?;
    let listening = getsockopt(fd, sockopt::AcceptConn).unwrap_or(false);
    let family = getsockname::<UnixAddr>(fd.as_raw_fd())
        .ok()
        .and_then(|a| a.family());
    if kind != SockType::Stream || family != Some(AddressFamily::Unix) || !listening {
        return Err(wrong("not a listening unix stream socket"));
    }
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| wrong(&format!("unusable: {e}")))?;
    Ok(())
}

/// Binds `path` (mode 0600) in a safe directory, replacing a stale socket left by a
/// daemon that is gone, never one that still answers.
fn bind(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    let dir = path
        .parent()
        .filter(|d| path.is_absolute() && !d.as_os_str().is_empty())
        .ok_or_else(|| format!("--socket {shown}: give an absolute path"))?;
    ensure_runtime_dir(dir).map_err(|e| e.to_string())?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: cannot inspect: {e}")),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(format!("{shown} exists and is not a socket; refusing it"));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(format!("{shown}: another twofoldd is serving it")),
            Err(_) => fs::remove_file(path)
                .map_err(|e| format!("{shown}: cannot remove the stale socket: {e}"))?,
        },
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("cannot bind {shown}: {e}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{shown}: cannot set its mode: {e}"))?;
    Ok(listener)
}

/// Set once the daemon stops: no further call is answered, and the waiting thread
/// stops accepting.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// The listening socket's descriptor while it is served (-1 before), for [`stop`].
static LISTENING: AtomicI32 = AtomicI32::new(-1);

/// The direct socket being served: what every thread of it shares.
struct Server {
    listener: UnixListener,
    template: TwofoldInterface,
    runtime: tokio::runtime::Handle,
    /// Connections being served.
    open: AtomicUsize,
}

/// Serves direct connections until [`stop`], each by its own instance of `template`'s
/// object (sharing its state), at most [`MAX_CONNECTIONS`] at once, each in a thread of
/// the blocking pool, calls and all (see [`Server::accept_then_serve`]).
pub async fn serve(listener: UnixListener, template: TwofoldInterface) {
    // Blocking accept, even on a socket systemd passed non-blocking.
    if let Err(e) = listener.set_nonblocking(false) {
        log::error!("cannot serve the direct socket (the bus still works): {e}");
        return;
    }
    LISTENING.store(listener.as_raw_fd(), Ordering::SeqCst);
    let server = Arc::new(Server {
        listener,
        template,
        runtime: tokio::runtime::Handle::current(),
        open: AtomicUsize::new(0),
    });
    tokio::task::spawn_blocking(move || server.accept_then_serve());
}

/// Stops serving: calls not yet answered get no answer, and the thread waiting for
/// connections returns (`shutdown(2)` of a listening socket wakes its `accept(2)`).
pub fn stop() {
    STOPPING.store(true, Ordering::SeqCst);
    let fd = LISTENING.load(Ordering::SeqCst);
    if fd >= 0 {
        // The listening socket `serve` keeps open for the rest of the run.
        let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
    }
}

impl Server {
    /// Waits for a connection, hands the waiting to another thread of the pool, then
    /// serves that connection in this one. A connection thus wakes exactly the thread
    /// that serves it, and its calls run there without a hand-off between threads
    /// (serving each as a task paid one at every blocking step: most of a login's time
    /// in the daemon). One over [`MAX_CONNECTIONS`] is closed at once (the module then
    /// uses the bus).
    fn accept_then_serve(self: Arc<Self>) {
        while !STOPPING.load(Ordering::SeqCst) {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) if STOPPING.load(Ordering::SeqCst) => return,
                Err(e) => {
                    // Out of descriptors, most likely: let some connections end first.
                    log::warn!("direct socket: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if self.open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                self.open.fetch_sub(1, Ordering::SeqCst);
                log::debug!("direct socket: {MAX_CONNECTIONS} connections open; closing a new one");
                continue;
            }
            let next = Arc::clone(&self);
            self.runtime
                .spawn_blocking(move || next.accept_then_serve());
            if let Err(e) = serve_connection(stream, &self.template, &self.runtime) {
                log::debug!("direct connection ended: {e}");
            }
            self.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    }
}

/// Serves one connection until the peer hangs up, breaks the protocol, or stays silent
/// for [`IDLE_LIMIT`] (each message, the handshake included, must arrive whole within
/// it): the handshake ([`sasl`]), then its calls one after the other, each answered by
/// [`DirectCalls`] (on `runtime`, in this thread) before the next is read.
fn serve_connection(
    mut stream: UnixStream,
    template: &TwofoldInterface,
    runtime: &tokio::runtime::Handle,
) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let credentials =
        getsockopt(&stream, PeerCredentials).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    let peer = Caller {
        uid: credentials.uid(),
        pid: u32::try_from(credentials.pid()).ok().filter(|pid| *pid > 0),
    };
    // A peer that stops reading cannot hold this thread either.
    stream
        .set_write_timeout(Some(IDLE_LIMIT))
        .map_err(|e| format!("setting a timeout: {e}"))?;
    // Bytes read and not yet taken: they may hold a code.
    let mut input = Zeroizing::new(Vec::new());
    let deadline = Instant::now() + IDLE_LIMIT;
    sasl::handshake(&mut stream, &mut input, peer.uid, guid(), deadline)
        .map_err(|e| format!("handshake failed: {e}"))?;
    let mut calls = DirectCalls::new(template.for_peer(peer))?;
    loop {
        let deadline = Instant::now() + IDLE_LIMIT;
        let Some(message) = read_message(&mut stream, &mut input, deadline)? else {
            return Ok(());
        };
        if STOPPING.load(Ordering::SeqCst) {
            return Err("twofoldd is stopping".into());
        }
        if let Some(reply) = runtime.block_on(calls.answer(&message)) {
            stream
                .write_all(&reply)
                .map_err(|e| format!("writing a reply: {e}"))?;
        }
    }
}

/// The next whole message, at most [`wire::MAX_MESSAGE_LEN`] bytes, by `deadline`; None
/// when the peer hung up (or stayed silent until the deadline) between messages.
fn read_message(
    stream: &mut UnixStream,
    input: &mut Zeroizing<Vec<u8>>,
    deadline: Instant,
) -> Result<Option<Message>, String> {
    match fill(stream, input, FIXED_HEADER_LEN, deadline) {
        Ok(()) => {}
        Err(Ended::Quietly) if input.is_empty() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let fixed: [u8; FIXED_HEADER_LEN] = input[..FIXED_HEADER_LEN].try_into().expect("filled");
    let len = wire::message_len(&fixed)?;
    fill(stream, input, len, deadline)?;
    let bytes = input[..len].to_vec();
    input.drain(..len);
    Message::parse(bytes).map(Some)
}

/// Why reading stopped short.
#[derive(Debug)]
enum Ended {
    /// The peer hung up, or sent nothing more until the deadline.
    Quietly,
    Failed(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Quietly => f.write_str("the peer hung up or went silent"),
            Ended::Failed(e) => f.write_str(e),
        }
    }
}

impl From<Ended> for String {
    fn from(e: Ended) -> String {
        e.to_string()
    }
}

/// Reads until `input` holds at least `len` bytes, by `deadline`.
fn fill(
    stream: &mut UnixStream,
    input: &mut Zeroizing<Vec<u8>>,
    len: usize,
    deadline: Instant,
) -> Result<(), Ended> {
    let mut chunk = Zeroizing::new([0u8; 4096]);
    while input.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ended::Quietly);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| Ended::Failed(format!("setting a timeout: {e}")))?;
        match stream.read(&mut chunk[..]) {
            Ok(0) => return Err(Ended::Quietly),
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Ended::Quietly)
            }
            Err(e) => return Err(Ended::Failed(format!("reading: {e}"))),
        }
    }
    Ok(())
}

/// The server's GUID for the handshake: one per daemon run.
fn guid() -> &'static str {
    static GUID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    GUID.get_or_init(|| zbus::Guid::generate().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{refused, temp_path};

    #[test]
    fn binds_0600_replaces_a_stale_socket_and_refuses_a_live_one_or_a_file() {
        let (dir, path) = temp_path("run/twofoldd.socket");
        let first = bind(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        refused(bind(&path), "another twofoldd");
        drop(first); // the file stays, nobody answers: stale
        bind(&path).unwrap();

        let file = dir.path().join("run/file");
        fs::write(&file, "").unwrap();
        refused(bind(&file), "not a socket");
        assert!(bind(Path::new("relative.socket")).is_err());
    }
}

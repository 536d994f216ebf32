//! The real daemon connection: D-Bus over a unix socket, synchronous, in the calling
//! thread (no runtime, no thread, no signal handler; one file descriptor, closed when the
//! [`BusDaemon`] is dropped).
//!
//! The daemon's direct socket (`socket=`) is tried first: D-Bus peer to peer, no bus in
//! between. Its peer must be `daemon_uid` (`SO_PEERCRED`, read before anything is sent),
//! which is then the whole owner check. When it is absent or refuses, the module uses
//! the bus (`bus=`), and asks the bus to start the daemon when the name has no owner
//! (D-Bus activation).
//!
//! On the bus, the owner check costs no round trip of its own: [`BusConnector::connect`]
//! asks the bus who owns [`BUS_NAME`] (unique name O) and stops there; the first daemon
//! call (unless it carries a code: `Verify` waits for the check) is sent to O together
//! with `GetConnectionUnixUser(O)`, and its answer is handed out only once that uid is
//! `daemon_uid` (otherwise it is dropped, and this and every later call fail as
//! "unavailable"). Unique names are never reused, so both messages concern the same
//! connection, and nothing is ever sent to the well-known name.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use serde::de::DeserializeOwned;
use serde::Serialize;
use twofold_contract::{ErrorKind, LoginState, Verified, BUS_NAME, INTERFACE, OBJECT_PATH};
use zbus::Type;
use zeroize::Zeroizing;

use crate::client::{CallError, Connector, Daemon, Request};
use crate::options::{parse_bus_address, Options, SocketTarget};
use twofold_contract::wire::{self, Message, Target, FIXED_HEADER_LEN};

/// The bus itself, for `Hello`, `GetNameOwner`, `StartServiceByName` and the uid check.
const DBUS: Target<'static> = Target {
    destination: Some("org.freedesktop.DBus"),
    path: "/org/freedesktop/DBus",
    interface: "org.freedesktop.DBus",
};

/// A method of `twofoldd`'s interface: its member name, and what the module is doing
/// while it waits for the reply (for the log).
#[derive(Debug, Clone, Copy)]
struct Method {
    member: &'static str,
    what: &'static str,
}

impl Method {
    const fn new(member: &'static str, what: &'static str) -> Method {
        Method { member, what }
    }
}

const BEGIN_LOGIN: Method = Method::new("BeginLogin", "asking about the login");
const VERIFY: Method = Method::new("Verify", "verifying the code");
const OPEN_SESSION: Method = Method::new("OpenSession", "registering the session");
const CLOSE_SESSION: Method = Method::new("CloseSession", "closing the session");
const CHECK_GRACE: Method = Method::new("CheckGrace", "checking the grace window");

/// The arguments of a method call: serialized into its body.
trait Args: Serialize + Type {}
impl<T: Serialize + Type> Args for T {}

/// The body of a method return: deserialized from it.
trait Body: DeserializeOwned + Type {}
impl<T: DeserializeOwned + Type> Body for T {}

/// Longest line of the authentication exchange the module reads.
const MAX_AUTH_LINE: usize = 512;

/// Connects to `twofoldd`: its direct socket first, then the bus.
#[derive(Debug, Default)]
pub struct BusConnector;

/// A connection to `twofoldd`, directly or through the bus.
pub struct BusDaemon {
    wire: Wire,
    /// On the bus, the unique name that owned [`BUS_NAME`] when asked; None on the
    /// direct socket (its peer was checked before the handshake).
    owner: Option<String>,
    daemon_uid: u32,
    owner_uid: OwnerUid,
    /// Why the direct socket was not used although something listened there as another
    /// uid than `daemon_uid` (for the log: someone may be impersonating the daemon).
    impostor: Option<String>,
    /// On the direct socket until the daemon's first answer: the bus to use instead
    /// when the daemon turns the connection away (at its connection cap it closes it
    /// at once) before accepting the handshake.
    bus_fallback: Option<String>,
}

/// Whether the owner is known to run as `daemon_uid`.
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
        open(opts, deadline).map_err(|e| e.to_string())
    }
}

fn unavailable(e: impl std::fmt::Display) -> CallError {
    CallError::Unavailable(e.to_string())
}

/// The direct socket when there is one (`socket=`) and it works, else the bus.
fn open(opts: &Options, deadline: Instant) -> Result<BusDaemon, CallError> {
    let Some(socket) = &opts.socket else {
        return open_bus(&opts.bus, opts.daemon_uid, deadline);
    };
    let (direct, impostor) = match open_direct(socket, &opts.bus, opts.daemon_uid) {
        Ok(daemon) => return Ok(daemon),
        Err(DirectFailure::Unavailable(reason)) => (reason, None),
        Err(DirectFailure::Impostor(reason)) => (reason.clone(), Some(reason)),
    };
    match open_bus(&opts.bus, opts.daemon_uid, deadline) {
        Ok(daemon) => Ok(BusDaemon { impostor, ..daemon }),
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
        DirectFailure::Unavailable(e.to_string())
    }
}

/// Connects to the daemon's socket, checks that its peer runs as `daemon_uid` before
/// sending a byte, then speaks D-Bus peer to peer (no `Hello`, no owner to look up). The
/// first call goes with the handshake, without waiting for its `OK`; should the daemon
/// turn the connection away instead, that call is made on `bus` (see
/// [`BusDaemon::call`]).
fn open_direct(path: &str, bus: &str, daemon_uid: u32) -> Result<BusDaemon, DirectFailure> {
    let mut wire = Wire::connect(&SocketTarget::Path(path.to_owned()), path)?;
    let peer = wire.peer_uid()?;
    if peer != daemon_uid {
        return Err(DirectFailure::Impostor(format!(
            "{path} is served by uid {peer}, expected {daemon_uid}; not using it"
        )));
    }
    wire.authenticate();
    Ok(BusDaemon {
        wire,
        owner: None,
        daemon_uid,
        owner_uid: OwnerUid::Expected,
        impostor: None,
        bus_fallback: Some(bus.to_owned()),
    })
}

/// Connects, finds the owner of [`BUS_NAME`] (asking the bus to start it when there is
/// none) and keeps its unique name; the owner's uid is checked by the first call. This
/// costs the handshake and one round trip (`Hello` and `GetNameOwner` go together) when
/// the daemon runs.
fn open_bus(bus: &str, daemon_uid: u32, deadline: Instant) -> Result<BusDaemon, CallError> {
    let target =
        parse_bus_address(bus).map_err(|e| unavailable(format!("bad bus address: {e}")))?;
    let mut wire = Wire::connect(&target, bus)?;
    wire.authenticate();
    let hello = wire.send(DBUS, "Hello", &(), deadline)?;
    let owner = wire.send(DBUS, "GetNameOwner", &(BUS_NAME,), deadline)?;
    ok_body::<String>(&wire.reply_to(hello, deadline, "saying hello to the bus")?)?;
    let reply = wire.reply_to(owner, deadline, "asking who owns the name")?;
    let owner = if reply.error.as_deref() == Some(NAME_HAS_NO_OWNER) {
        // Not running (after a boot, a crash, an upgrade): D-Bus activation starts it,
        // and answers once it owns the name (or could not start it).
        start_daemon(&mut wire, bus, deadline)?
    } else {
        ok_body::<String>(&reply)
            .map_err(|e| unavailable(format!("GetNameOwner({BUS_NAME}): {e}")))?
    };
    Ok(BusDaemon {
        wire,
        owner: Some(owner),
        daemon_uid,
        owner_uid: OwnerUid::Unchecked,
        impostor: None,
        bus_fallback: None,
    })
}

const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

/// `StartServiceByName`, then the new owner's unique name.
fn start_daemon(wire: &mut Wire, bus: &str, deadline: Instant) -> Result<String, CallError> {
    let start = wire.send(DBUS, "StartServiceByName", &(BUS_NAME, 0u32), deadline)?;
    ok_body::<u32>(&wire.reply_to(start, deadline, "starting the daemon")?).map_err(|e| {
        unavailable(format!(
            "{BUS_NAME} has no owner on {bus} and could not be started: {e}"
        ))
    })?;
    let again = wire.send(DBUS, "GetNameOwner", &(BUS_NAME,), deadline)?;
    ok_body::<String>(&wire.reply_to(again, deadline, "asking who owns the name")?)
        .map_err(|e| unavailable(format!("GetNameOwner({BUS_NAME}) after starting it: {e}")))
}

/// The body of a method return, or the error this reply is.
fn ok_body<T: Body>(reply: &Message) -> Result<T, CallError> {
    let Some(name) = &reply.error else {
        return reply
            .body::<T>()
            .map_err(|e| CallError::Unexpected(format!("unexpected D-Bus reply: {e}")));
    };
    let message = reply.error_message();
    if let Some(kind) = ErrorKind::from_error_name(name) {
        return Err(CallError::Daemon(kind, message));
    }
    let said = format!("{name}: {message}");
    if is_transport(name) {
        Err(CallError::Unavailable(format!("D-Bus error: {said}")))
    } else {
        Err(CallError::Unexpected(format!(
            "unexpected D-Bus reply: {said}"
        )))
    }
}

/// True when a bus error means the daemon could not be reached (or went away, or did not
/// answer in time), false when something answered in a way it never should.
fn is_transport(name: &str) -> bool {
    let Some(short) = name.strip_prefix("org.freedesktop.DBus.Error.") else {
        return false;
    };
    matches!(
        short,
        "ServiceUnknown"
            | "NameHasNoOwner"
            | "NoReply"
            | "Timeout"
            | "TimedOut"
            | "Disconnected"
            | "NoServer"
            | "NoNetwork"
    ) || short.starts_with("Spawn.")
}

impl BusDaemon {
    /// Runs one daemon call under `deadline`, on the bus instead when the direct socket
    /// turned this connection away before any answer (see [`open_direct`]).
    fn call<A: Args, R: Body>(
        &mut self,
        method: Method,
        args: &A,
        deadline: Instant,
    ) -> Result<R, CallError> {
        let result = self.call_here(method, args, deadline);
        let Some(bus) = self.bus_fallback.take() else {
            return ok_body(&result?);
        };
        let reply = match result {
            Err(CallError::Unavailable(direct)) if !self.wire.authenticated => {
                let on_bus = open_bus(&bus, self.daemon_uid, deadline).map_err(|e| match e {
                    CallError::Unavailable(bus) => unavailable(format!("{direct}; {bus}")),
                    other => other,
                })?;
                *self = BusDaemon {
                    impostor: self.impostor.take(),
                    ..on_bus
                };
                // Whatever the call carries, the bus's owner is checked first (a
                // fallback is rare; a code must never go along with the check).
                self.check_owner_alone(deadline)?;
                self.call_here(method, args, deadline)
            }
            other => other,
        };
        ok_body(&reply?)
    }

    /// Runs one daemon call under `deadline` on this connection: its reply. Until the
    /// owner's uid is known to be right, the call goes alongside the check and its reply
    /// waits for (and depends on) the check's outcome, which is kept for the following
    /// calls.
    fn call_here<A: Args>(
        &mut self,
        method: Method,
        args: &A,
        deadline: Instant,
    ) -> Result<Message, CallError> {
        let Method { member, what } = method;
        let check = match &self.owner_uid {
            OwnerUid::Refused(reason) => return Err(unavailable(reason)),
            OwnerUid::Expected => None,
            OwnerUid::Unchecked => Some(self.send_check(deadline)?),
        };
        let to = Target {
            destination: self.owner.as_deref(),
            path: OBJECT_PATH,
            interface: INTERFACE,
        };
        let call = self.wire.send(to, member, args, deadline)?;
        if let Some(check) = check {
            let mut answer = None;
            while matches!(self.owner_uid, OwnerUid::Unchecked) {
                let reply = self.wire.reply_to_either(check, call, deadline, what)?;
                if reply.reply_serial == Some(check) {
                    self.settle_owner(&reply);
                } else {
                    answer = Some(reply);
                }
            }
            if let OwnerUid::Refused(reason) = &self.owner_uid {
                return Err(unavailable(reason));
            }
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
        self.wire.reply_to(call, deadline, what)
    }

    /// Sends `GetConnectionUnixUser(owner)`.
    fn send_check(&mut self, deadline: Instant) -> Result<u32, CallError> {
        let Some(owner) = self.owner.clone() else {
            return Err(unavailable("no bus to check the daemon's uid on"));
        };
        self.wire
            .send(DBUS, "GetConnectionUnixUser", &(owner.as_str(),), deadline)
    }

    /// Keeps the outcome of the owner check (the answer to `GetConnectionUnixUser`).
    fn settle_owner(&mut self, reply: &Message) {
        let owner = self.owner.as_deref().unwrap_or_default();
        self.owner_uid = match ok_body::<u32>(reply) {
            Ok(uid) if uid == self.daemon_uid => OwnerUid::Expected,
            Ok(uid) => OwnerUid::Refused(format!(
                "owner {owner} of {BUS_NAME} runs as uid {uid}, expected {}",
                self.daemon_uid
            )),
            Err(e) => OwnerUid::Refused(format!("GetConnectionUnixUser({owner}): {e}")),
        };
    }

    /// Settles the owner check on its own (before a call that carries a secret).
    fn check_owner_alone(&mut self, deadline: Instant) -> Result<(), CallError> {
        if matches!(self.owner_uid, OwnerUid::Unchecked) {
            let check = self.send_check(deadline)?;
            let reply = self.wire.reply_to(check, deadline, "checking the daemon")?;
            self.settle_owner(&reply);
        }
        match &self.owner_uid {
            OwnerUid::Refused(reason) => Err(unavailable(reason)),
            _ => Ok(()),
        }
    }
}

impl Daemon for BusDaemon {
    fn impostor(&self) -> Option<String> {
        self.impostor.clone()
    }

    fn begin_login(&mut self, req: Request<'_>) -> Result<LoginState, CallError> {
        self.call(BEGIN_LOGIN, &(req.user, req.context), req.deadline)
    }

    fn verify(&mut self, req: Request<'_>, code: &str) -> Result<Verified, CallError> {
        // A code goes only to an owner already checked: never alongside the check.
        self.check_owner_alone(req.deadline)?;
        self.call(VERIFY, &(req.user, code, req.context), req.deadline)
    }

    fn open_session(&mut self, req: Request<'_>) -> Result<String, CallError> {
        self.call(OPEN_SESSION, &(req.user, req.context), req.deadline)
    }

    fn close_session(&mut self, req: Request<'_>) -> Result<(), CallError> {
        self.call(CLOSE_SESSION, &(req.user, req.context), req.deadline)
    }

    fn check_grace(&mut self, req: Request<'_>, seconds: u32) -> Result<bool, CallError> {
        self.call(CHECK_GRACE, &(req.user, req.context, seconds), req.deadline)
    }
}

/// One connected socket speaking D-Bus: non-blocking, every wait bounded by a deadline
/// (`poll(2)`), writes with `MSG_NOSIGNAL` (a daemon that went away must not raise
/// SIGPIPE in sshd or sudo).
struct Wire {
    fd: OwnedFd,
    /// For messages: the address or path connected to.
    peer: String,
    last_serial: u32,
    /// Calls sent and not answered yet, with the bus name that must answer each (None
    /// peer to peer). A reply from another sender is refused, although the bus itself
    /// refuses to deliver replies nobody asked for.
    awaited: Vec<(u32, Option<String>)>,
    /// Bytes read and not yet taken.
    input: Vec<u8>,
    /// The peer's answer to the authentication is still to be read (it comes before
    /// any reply).
    auth_unread: bool,
    /// The peer accepted the authentication (`OK`).
    authenticated: bool,
    /// Bytes to write before the next message (the authentication); wiped when
    /// dropped, like every buffer that a message with a code goes through.
    unsent: Zeroizing<Vec<u8>>,
}

impl Wire {
    /// Connects without blocking: a full listen backlog fails with `EAGAIN` at once
    /// instead of blocking in `connect(2)`.
    fn connect(target: &SocketTarget, shown: &str) -> Result<Wire, CallError> {
        let cannot = |e: Errno| unavailable(format!("cannot connect to {shown}: {}", e.desc()));
        let addr = match target {
            SocketTarget::Path(path) => UnixAddr::new(path.as_str()),
            SocketTarget::Abstract(name) => UnixAddr::new_abstract(name),
        }
        .map_err(cannot)?;
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(cannot)?;
        socket::connect(fd.as_raw_fd(), &addr).map_err(cannot)?;
        Ok(Wire {
            fd,
            peer: shown.to_owned(),
            last_serial: 0,
            awaited: Vec::new(),
            input: Vec::new(),
            auth_unread: false,
            authenticated: false,
            unsent: Zeroizing::default(),
        })
    }

    /// The uid the peer had when it called `listen(2)` (`SO_PEERCRED`).
    fn peer_uid(&self) -> Result<u32, CallError> {
        socket::getsockopt(&self.fd, sockopt::PeerCredentials)
            .map(|cred| cred.uid())
            .map_err(|e| unavailable(format!("SO_PEERCRED on {}: {}", self.peer, e.desc())))
    }

    /// The SASL exchange: `EXTERNAL` with our effective uid, which the peer checks
    /// against the socket's credentials. `BEGIN` and the first messages follow at once,
    /// without waiting for the peer's `OK` (as sd-bus does): it is read before the first
    /// reply, and a refusal fails that reply. Nothing secret is sent before the peer is
    /// known (`SO_PEERCRED` on the direct socket; on the bus, a code waits for the
    /// owner's uid check).
    fn authenticate(&mut self) {
        let uid: String = nix::unistd::geteuid()
            .as_raw()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Written with the first message: one write, so that the peer wakes once.
        self.unsent
            .extend_from_slice(format!("\0AUTH EXTERNAL {uid}\r\nBEGIN\r\n").as_bytes());
        self.auth_unread = true;
    }

    /// Reads the peer's answer to [`Self::authenticate`], once.
    fn read_auth(&mut self, deadline: Instant) -> Result<(), CallError> {
        if !std::mem::take(&mut self.auth_unread) {
            return Ok(());
        }
        if !self.unsent.is_empty() {
            let out = std::mem::take(&mut self.unsent);
            self.write_all(&out, deadline, "authenticating")?;
        }
        let line = self.read_line(deadline, "authenticating")?;
        if !line.starts_with("OK ") {
            let said = crate::text::safe_str(&line, 80);
            return Err(unavailable(format!(
                "D-Bus handshake on {} failed: the peer said \"{said}\"",
                self.peer
            )));
        }
        self.authenticated = true;
        Ok(())
    }

    /// Sends a method call; returns its serial.
    fn send<A: Args>(
        &mut self,
        to: Target<'_>,
        member: &str,
        args: &A,
        deadline: Instant,
    ) -> Result<u32, CallError> {
        self.last_serial += 1;
        let serial = self.last_serial;
        let message = wire::method_call(serial, to, member, args).map_err(CallError::Unexpected)?;
        let mut out = std::mem::take(&mut self.unsent);
        out.extend_from_slice(&message);
        self.write_all(&out, deadline, &format!("sending {member}"))?;
        self.awaited
            .push((serial, to.destination.map(str::to_owned)));
        Ok(serial)
    }

    /// The reply to `serial` (skipping signals and anything else).
    fn reply_to(
        &mut self,
        serial: u32,
        deadline: Instant,
        what: &str,
    ) -> Result<Message, CallError> {
        self.reply_to_either(serial, serial, deadline, what)
    }

    /// The next reply to `a` or `b`.
    fn reply_to_either(
        &mut self,
        a: u32,
        b: u32,
        deadline: Instant,
        what: &str,
    ) -> Result<Message, CallError> {
        loop {
            let message = self.read_message(deadline, what)?;
            let reply = Message::parse(message)
                .map_err(|e| CallError::Unexpected(format!("{} sent {e}", self.peer)))?;
            // Signals and calls to us are skipped.
            let Some(serial) = reply
                .reply_serial
                .filter(|s| reply.is_reply() && (*s == a || *s == b))
            else {
                continue;
            };
            let at = self.awaited.iter().position(|(s, _)| *s == serial);
            let expected = at.and_then(|i| self.awaited.swap_remove(i).1);
            if expected.is_some() && reply.sender != expected {
                return Err(CallError::Unexpected(format!(
                    "a reply from {:?} where {expected:?} was asked",
                    reply.sender
                )));
            }
            return Ok(reply);
        }
    }

    /// One whole message, at most [`wire::MAX_MESSAGE_LEN`] bytes.
    fn read_message(&mut self, deadline: Instant, what: &str) -> Result<Vec<u8>, CallError> {
        self.read_auth(deadline)?;
        self.fill(FIXED_HEADER_LEN, deadline, what)?;
        let fixed: [u8; FIXED_HEADER_LEN] =
            self.input[..FIXED_HEADER_LEN].try_into().expect("filled");
        let len = wire::message_len(&fixed)
            .map_err(|e| CallError::Unexpected(format!("{} sent {e}", self.peer)))?;
        self.fill(len, deadline, what)?;
        let rest = self.input.split_off(len);
        Ok(std::mem::replace(&mut self.input, rest))
    }

    /// One `\r\n`-terminated line of the authentication exchange, without its end.
    fn read_line(&mut self, deadline: Instant, what: &str) -> Result<String, CallError> {
        loop {
            if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                let rest = self.input.split_off(end + 2);
                let line = std::mem::replace(&mut self.input, rest);
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.input.len() > MAX_AUTH_LINE {
                return Err(unavailable(format!(
                    "D-Bus handshake on {} failed: an over-long line",
                    self.peer
                )));
            }
            self.read_some(deadline, what)?;
        }
    }

    /// Reads until at least `len` bytes are buffered.
    fn fill(&mut self, len: usize, deadline: Instant, what: &str) -> Result<(), CallError> {
        while self.input.len() < len {
            self.read_some(deadline, what)?;
        }
        Ok(())
    }

    fn read_some(&mut self, deadline: Instant, what: &str) -> Result<(), CallError> {
        let mut chunk = [0u8; 4096];
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut chunk, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    return Err(unavailable(format!(
                        "{} closed the connection while {what}",
                        self.peer
                    )))
                }
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    self.wait(PollFlags::POLLIN, deadline, what)?
                }
                Err(e) => return Err(self.io_error(e, what)),
            }
        }
    }

    fn write_all(
        &mut self,
        mut bytes: &[u8],
        deadline: Instant,
        what: &str,
    ) -> Result<(), CallError> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        while !bytes.is_empty() {
            match socket::send(self.fd.as_raw_fd(), bytes, flags) {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    self.wait(PollFlags::POLLOUT, deadline, what)?
                }
                Err(e) => return Err(self.io_error(e, what)),
            }
        }
        Ok(())
    }

    /// Waits until the socket is ready for `events`, at most until `deadline`.
    fn wait(&self, events: PollFlags, deadline: Instant, what: &str) -> Result<(), CallError> {
        let timed_out = || unavailable(format!("no answer within the timeout while {what}"));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        // Rounded up: a wait of 0 ms would spin until the deadline.
        let ms = left.as_millis().saturating_add(1);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), events)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => Err(timed_out()),
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(self.io_error(e, what)),
        }
    }

    fn io_error(&self, e: Errno, what: &str) -> CallError {
        unavailable(format!("{} failed while {what}: {}", self.peer, e.desc()))
    }
}

#[cfg(test)]
mod tests;

//! The real connector against a private `dbus-daemon` and a fake `twofoldd`, plus the
//! timeouts, the "no thread left behind" rule, the uid check that gates the first call's
//! answer, and the messages a login costs on the bus (counted with `dbus-monitor`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pam::constants::PamResultCode;
use twofold_contract::{method, TwofoldError, BUS_NAME, OBJECT_PATH};
use zeroize::Zeroizing;

use super::*;
use crate::auth::{authenticate, AuthTok, AuthTokError, ConvError, Conversation};
use crate::client::{Level, LoginContext};
use crate::mock::MockLog;
use crate::options::{FailMode, Options};

const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";
const DBUS_MONITOR: &str = "/usr/bin/dbus-monitor";

fn unique_name(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "twofold-pam-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").expect("/proc/self").uid()
}

/// No tokio thread (blocking pool: "tokio-rt-worker", or "tokio-runtime-worker" in older
/// tokio) or zbus executor thread exists in this process (none of the tests here creates
/// one on purpose: the fake daemon's runtime names its threads "fake-…").
fn assert_no_stray_threads() {
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let comm =
            std::fs::read_to_string(task.expect("task").path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        assert!(
            !comm.starts_with("tokio") && !comm.starts_with("zbus"),
            "stray thread {comm:?}"
        );
    }
}

/// Starts `command` with its standard output piped to the test (nothing on its standard
/// input, its errors dropped).
fn spawn_piped(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()))
}

/// A private bus on an abstract socket.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start() -> Option<Bus> {
        // Never skipped silently: the test command installs dbus-daemon.
        assert!(
            std::path::Path::new(DBUS_DAEMON).exists(),
            "{DBUS_DAEMON} is required for these tests (tests/run.sh installs it)"
        );
        let address = format!("unix:abstract={}", unique_name("bus"));
        let mut child = spawn_piped(
            Command::new(DBUS_DAEMON)
                .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
                .arg(format!("--address={address}")),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("dbus-daemon address");
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        Some(Bus { child, address })
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake `twofoldd`: alice is enrolled with code 123456 and backup code "backup-1";
/// bob is not enrolled; code "slow" never gets an answer.
struct Fake;

#[zbus::interface(name = "org.twofold.Twofold1")]
impl Fake {
    async fn begin_login(
        &self,
        user: &str,
        _context: HashMap<String, String>,
    ) -> Result<LoginState, TwofoldError> {
        match user {
            "alice" => Ok(LoginState {
                enrolled: true,
                ..Default::default()
            }),
            "bob" => Err(TwofoldError::NotEnrolled("bob is not enrolled".into())),
            _ => Err(TwofoldError::UnknownUser("no such user".into())),
        }
    }

    async fn verify(
        &self,
        user: &str,
        code: &str,
        context: HashMap<String, String>,
    ) -> Result<Verified, TwofoldError> {
        if context.get("service").map(String::as_str) != Some("test") {
            return Err(TwofoldError::InvalidArgument("missing context".into()));
        }
        match (user, code) {
            ("alice", "123456") => Ok(Verified {
                method: method::TOTP.into(),
                backup_codes_left: 2,
                step_offset: 0,
            }),
            ("alice", "backup-1") => Ok(Verified {
                method: method::BACKUP_CODE.into(),
                backup_codes_left: 1,
                step_offset: 0,
            }),
            (_, "slow") => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(TwofoldError::Internal("too late".into()))
            }
            _ => Err(TwofoldError::InvalidCode("invalid code".into())),
        }
    }
}

/// The test side's connection to a bus (the module has its own, synchronous).
fn connect_socket(bus: &str) -> std::os::unix::net::UnixStream {
    let target = parse_bus_address(bus).expect("bus address");
    let SocketTarget::Abstract(name) = target else {
        panic!("the tests' buses are abstract")
    };
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).expect("addr");
    // zbus makes it non-blocking and drives it on the runtime the connection is built on.
    std::os::unix::net::UnixStream::connect_addr(&addr).expect("connect")
}

/// Runs [`Fake`] on `bus` in its own thread until dropped.
struct Service {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn start(bus: &Bus) -> Service {
        let address = bus.address.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-twofoldd".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .thread_name("fake-blocking")
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let stream = connect_socket(&address);
                    let conn = zbus::connection::Builder::unix_stream(stream)
                        .name(BUS_NAME)
                        .serve_at(OBJECT_PATH, Fake)
                        .build()
                        .await
                        .expect("fake twofoldd connection");
                    ready_tx.send(()).expect("ready");
                    let _ = stop_rx.await;
                    drop(conn);
                });
            })
            .expect("spawn fake twofoldd");
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake twofoldd ready");
        Service {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn opts(bus: &str) -> Options {
    Options {
        // That bus only: never a daemon that may run on this machine's socket.
        socket: None,
        bus: bus.to_owned(),
        daemon_uid: euid(),
        timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

fn test_context() -> HashMap<String, String> {
    [("service".to_owned(), "test".to_owned())].into()
}

/// A request about `user` in the test's context, due in five seconds.
fn about(user: &str) -> Request<'_> {
    Request::new(
        user,
        test_context(),
        Instant::now() + Duration::from_secs(5),
    )
}

fn connect(opts: &Options) -> Result<BusDaemon, String> {
    BusConnector.connect(opts, Instant::now() + opts.timeout)
}

#[test]
fn status_and_verify_through_a_real_bus() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let mut d = connect(&opts(&bus.address)).expect("connect");

    let state = d.begin_login(about("alice")).expect("begin_login");
    assert!(state.enrolled);
    assert!(matches!(
        d.begin_login(about("bob")),
        Err(CallError::Daemon(ErrorKind::NotEnrolled, _))
    ));
    assert!(matches!(
        d.begin_login(about("carol")),
        Err(CallError::Daemon(ErrorKind::UnknownUser, _))
    ));
    alices_codes_right_and_wrong(&mut d);
    // Not even while connected: the socket was not connected on tokio's blocking pool.
    assert_no_stray_threads();
    drop(d);
    assert_no_stray_threads();
}

/// [`Fake`] served peer to peer on a socket at `path`, as twofoldd serves its direct
/// socket (zbus server side), for one connection.
fn serve_direct(
    path: &std::path::Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
    std::thread::Builder::new()
        .name("fake-direct".into())
        .spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .thread_name("fake-direct-blocking")
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let conn = zbus::connection::Builder::unix_stream(stream)
                    .server(zbus::Guid::generate())
                    .p2p()
                    .serve_at(OBJECT_PATH, Fake)
                    .build()
                    .await
                    .expect("p2p handshake");
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                drop(conn);
            });
        })
        .expect("spawn")
}

#[test]
fn status_and_verify_on_a_direct_socket() {
    let dir = std::env::temp_dir().join(unique_name("direct"));
    std::fs::create_dir(&dir).expect("dir");
    let path = dir.join("twofoldd.socket");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_direct(&path, stop.clone());
    let o = Options {
        socket: Some(path.to_str().expect("utf-8").to_owned()),
        // No bus there: the socket must do.
        bus: format!("unix:abstract={}", unique_name("nobus")),
        ..opts("unix:abstract=unused")
    };
    let mut d = connect(&o).expect("connect");
    assert!(d.begin_login(about("alice")).expect("begin_login").enrolled);
    alices_codes_right_and_wrong(&mut d);
    drop(d);
    stop.store(true, Ordering::Relaxed);
    server.join().expect("server");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fake's alice: her code passes, another does not.
fn alices_codes_right_and_wrong(d: &mut BusDaemon) {
    let ok = d.verify(about("alice"), "123456").expect("verify");
    assert_eq!(ok.method, method::TOTP);
    assert!(matches!(
        d.verify(about("alice"), "000000"),
        Err(CallError::Daemon(ErrorKind::InvalidCode, _))
    ));
}

fn assert_wrong_uid<T: std::fmt::Debug>(r: Result<T, CallError>) {
    assert!(
        matches!(&r, Err(CallError::Unavailable(m)) if m.contains("runs as uid")),
        "{r:?}"
    );
}

/// The uid check travels with the first call, whichever it is, and gates its answer: the
/// fake's "bob is not enrolled" or its acceptance of alice's code must not get through
/// from an owner running as another uid, nor may any later call.
#[test]
fn wrong_owner_uid_is_unavailable() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let mut o = opts(&bus.address);
    o.daemon_uid = euid().wrapping_add(1);

    // Connecting stops before the check: it is the first call that fails.
    let mut d = connect(&o).expect("connect");
    assert_wrong_uid(d.begin_login(about("bob")));
    assert_wrong_uid(d.verify(about("alice"), "123456"));
    assert_wrong_uid(d.begin_login(about("alice")));
    drop(d);

    let mut d = connect(&o).expect("connect");
    assert_wrong_uid(d.verify(about("alice"), "123456"));
    drop(d);

    // Through the whole flow: "not enrolled" under nullok would be PAM_IGNORE.
    let mut nullok = o.clone();
    nullok.nullok = true;
    let (code, said, log) = run(&nullok, "bob", "123456");
    assert_eq!(code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    // The user is told the service is unavailable, not why (that is for the log).
    assert_eq!(said, [crate::auth::UNAVAILABLE_TEXT], "{said:?}");
    assert!(log.has(Level::Err, "runs as uid"), "{:?}", log.lines);
    assert_no_stray_threads();
}

#[test]
fn missing_owner_is_unavailable() {
    let Some(bus) = Bus::start() else { return };
    let err = connect(&opts(&bus.address)).err().expect("no owner");
    assert!(err.contains("has no owner"), "{err}");
    assert_no_stray_threads();
}

#[test]
fn missing_socket_is_unavailable() {
    for address in [
        "unix:path=/nonexistent/twofold/bus".to_owned(),
        format!("unix:abstract={}", unique_name("nobody")),
    ] {
        let err = connect(&opts(&address)).err().expect("no bus");
        assert!(err.contains("cannot connect"), "{err}");
    }
    assert_no_stray_threads();
}

#[test]
fn silent_peer_times_out_while_connecting() {
    use std::os::linux::net::SocketAddrExt;
    let name = unique_name("silent");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    // Bound and listening but never accepting: connect(2) succeeds through the backlog,
    // the D-Bus handshake never gets an answer.
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind");
    let mut o = opts(&format!("unix:abstract={name}"));
    o.timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = connect(&o).err().expect("must time out");
    let took = start.elapsed();
    assert!(err.contains("within the timeout"), "{err}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_no_stray_threads();
}

#[test]
fn slow_verify_times_out() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let mut d = connect(&opts(&bus.address)).expect("connect");
    let start = Instant::now();
    let deadline = Instant::now() + Duration::from_millis(300);
    let r = d.verify(Request::new("alice", test_context(), deadline), "slow");
    let took = start.elapsed();
    assert!(
        matches!(&r, Err(CallError::Unavailable(m)) if m.contains("within the timeout")),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(d);
    assert_no_stray_threads();
}

// ------------------------------------------------ the whole flow over the real bus

struct Typing(Vec<&'static str>, Vec<String>);

impl Conversation for Typing {
    fn prompt_hidden(&mut self, _msg: &str) -> Result<Zeroizing<String>, ConvError> {
        if self.0.is_empty() {
            return Err(ConvError);
        }
        Ok(Zeroizing::new(self.0.remove(0).to_owned()))
    }
    fn info(&mut self, msg: &str) {
        self.1.push(msg.to_owned());
    }
    fn error(&mut self, msg: &str) {
        self.1.push(msg.to_owned());
    }
}

impl AuthTok for Typing {
    fn set_authtok(&mut self, _authtok: &[u8]) -> Result<(), AuthTokError> {
        panic!("PAM_AUTHTOK set without forward_pass");
    }
}

fn run(o: &Options, user: &str, typed: &'static str) -> (PamResultCode, Vec<String>, MockLog) {
    let ctx = LoginContext {
        service: Some("test".into()),
        ..LoginContext::default()
    };
    let mut conv = Typing(vec![typed], Vec::new());
    let mut log = MockLog::default();
    let code = authenticate(
        o,
        user.as_bytes(),
        &ctx,
        &mut conv,
        &mut BusConnector,
        &mut log,
    );
    (code, conv.1, log)
}

#[test]
fn authenticate_over_a_real_bus() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let o = opts(&bus.address);

    assert_eq!(run(&o, "alice", "123456").0, PamResultCode::PAM_SUCCESS);
    assert_eq!(run(&o, "alice", " 654321 ").0, PamResultCode::PAM_AUTH_ERR);
    let (code, said, _) = run(&o, "alice", "backup-1");
    assert_eq!(code, PamResultCode::PAM_SUCCESS);
    assert_eq!(said[0], "Backup code accepted. 1 backup code left.");
    assert!(said[1].contains("twofold backup-codes regenerate"));
    assert_eq!(run(&o, "bob", "123456").0, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        run(&o, "carol", "123456").0,
        PamResultCode::PAM_USER_UNKNOWN
    );

    let mut slow = o.clone();
    slow.timeout = Duration::from_millis(300);
    let (code, _, log) = run(&slow, "alice", "slow");
    assert_eq!(code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(log.has(Level::Err, "timeout"));
    slow.failmode = FailMode::Safe;
    assert_eq!(run(&slow, "alice", "slow").0, PamResultCode::PAM_IGNORE);

    let mut wrong_uid = o.clone();
    wrong_uid.daemon_uid = euid().wrapping_add(1);
    assert_eq!(
        run(&wrong_uid, "alice", "123456").0,
        PamResultCode::PAM_AUTHINFO_UNAVAIL
    );
    assert_no_stray_threads();
}

// ------------------------------------------------ the uid check alongside the first call

/// A header as zbus's wire format reads it: the test's own decoder of what the module sends.
type Header = (u8, u8, u8, u8, u32, u32, Vec<(u8, zbus::OwnedVariant)>);

/// The other end of a [`BusDaemon`]'s socket, scripted by the test.
struct Peer(
    std::os::unix::net::UnixStream,
    /// The destination of each call read, by serial: the reply's sender by default.
    HashMap<u32, String>,
);

impl Peer {
    /// A daemon "on the bus" whose owner `:1.42` is not checked yet, and its peer.
    fn pair(daemon_uid: u32) -> (BusDaemon, Peer) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let daemon = BusDaemon {
            wire: Wire {
                fd: ours.into(),
                peer: "the test's peer".into(),
                last_serial: 0,
                awaited: Vec::new(),
                input: Vec::new(),
                auth_unread: false,
                authenticated: true,
                unsent: zeroize::Zeroizing::default(),
            },
            owner: Some(":1.42".into()),
            daemon_uid,
            owner_uid: OwnerUid::Unchecked,
            impostor: None,
            bus_fallback: None,
        };
        (daemon, Peer(theirs, HashMap::new()))
    }

    /// The next message: (serial, member, destination), decoded by zbus's wire format.
    fn read_call(&mut self) -> (u32, String, String) {
        use std::io::Read;
        let mut fixed = [0u8; FIXED_HEADER_LEN];
        self.0.read_exact(&mut fixed).expect("header");
        let mut message = fixed.to_vec();
        message.resize(wire::message_len(&fixed).expect("length"), 0);
        self.0
            .read_exact(&mut message[FIXED_HEADER_LEN..])
            .expect("message");
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let data = zbus::wire::serialized::Data::new(&message[..], ctxt);
        let (header, _): (Header, _) = data.deserialize().expect("a valid header");
        let field = |code: u8| {
            header
                .6
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| match &**v {
                    zbus::Variant::Str(s) => s.to_string(),
                    other => panic!("field {code}: {other:?}"),
                })
        };
        assert_eq!(header.1, 1, "a method call");
        let destination = field(6).unwrap_or_default();
        self.1.insert(header.5, destination.clone());
        (header.5, field(3).expect("MEMBER"), destination)
    }

    /// Sends a method return of `body` to `serial`.
    fn reply<B: serde::Serialize + zbus::Type>(&mut self, serial: u32, body: &B) {
        self.send(2, serial, None, body);
    }

    fn send<B: serde::Serialize + zbus::Type>(
        &mut self,
        kind: u8,
        serial: u32,
        error: Option<&str>,
        body: &B,
    ) {
        let sender = self
            .1
            .get(&serial)
            .cloned()
            .unwrap_or_else(|| ":1.42".into());
        self.send_as(&sender, kind, serial, error, body);
    }

    /// Sends a reply (kind 2) or an error (kind 3) to `serial` as coming from `sender`.
    fn send_as<B: serde::Serialize + zbus::Type>(
        &mut self,
        sender: &str,
        kind: u8,
        serial: u32,
        error: Option<&str>,
        body: &B,
    ) {
        use std::io::Write;
        self.0
            .write_all(&reply_bytes(sender, kind, serial, error, body))
            .expect("write");
    }
}

/// A reply (kind 2) or error (kind 3) to `serial`, built by zbus.
fn reply_bytes<B: serde::Serialize + zbus::Type>(
    sender: &str,
    kind: u8,
    serial: u32,
    error: Option<&str>,
    body: &B,
) -> Vec<u8> {
    use zbus::message::Message;
    let call = zbus::message::Message::method_call("/", "Call")
        .serial(std::num::NonZeroU32::new(serial).expect("a serial is not 0"))
        .build(&())
        .expect("call");
    let header = call.header();
    let builder = match (kind, error) {
        (2, None) => Message::method_return(&header),
        (3, Some(name)) => Message::error(&header, name),
        _ => panic!("kind {kind} with {error:?}"),
    };
    let reply = builder.sender(sender).build(body).expect("reply");
    reply.data().bytes().to_vec()
}

/// The uid the daemon of [`scripted`] must run as: the check passes when the peer
/// answers it.
const DAEMON_UID: u32 = 7;

/// Runs `script` as the bus end while the daemon does `call`.
fn scripted<T: Send + 'static>(
    script: impl FnOnce(&mut Peer) + Send + 'static,
    call: impl FnOnce(&mut BusDaemon) -> T,
) -> T {
    let (mut daemon, mut peer) = Peer::pair(DAEMON_UID);
    let thread = std::thread::spawn(move || script(&mut peer));
    let result = call(&mut daemon);
    drop(daemon);
    thread.join().expect("script");
    result
}

/// [`scripted`], with a peer that reads the uid check and the call that travels with it,
/// then answers as `answer` says (given their serials).
fn answering<T: Send + 'static>(
    answer: impl FnOnce(&mut Peer, u32, u32) + Send + 'static,
    call: impl FnOnce(&mut BusDaemon) -> T,
) -> T {
    let script = move |peer: &mut Peer| {
        let (check, _, _) = peer.read_call();
        let (call, _, _) = peer.read_call();
        answer(peer, check, call);
    };
    scripted(script, call)
}

fn state() -> LoginState {
    LoginState {
        enrolled: true,
        ..Default::default()
    }
}

/// The first call goes out together with the uid check (both are on the wire before
/// either answer), and its answer is handed out only once the check has passed, in
/// whichever order the answers come.
#[test]
fn the_first_call_travels_with_the_check_and_waits_for_it() {
    for call_first in [true, false] {
        let r = scripted(
            move |peer| {
                let (check, member, to) = peer.read_call();
                assert_eq!(
                    (member.as_str(), to.as_str()),
                    ("GetConnectionUnixUser", "org.freedesktop.DBus")
                );
                let (call, member, to) = peer.read_call();
                assert_eq!((member.as_str(), to.as_str()), ("BeginLogin", ":1.42"));
                if call_first {
                    peer.reply(call, &state());
                    peer.reply(check, &DAEMON_UID);
                } else {
                    peer.reply(check, &DAEMON_UID);
                    peer.reply(call, &state());
                }
            },
            |d| {
                let first = d.begin_login(about("alice"));
                (first, matches!(d.owner_uid, OwnerUid::Expected))
            },
        );
        assert!(
            r.0.expect("begin_login").enrolled,
            "call_first={call_first}"
        );
        assert!(r.1, "the check's outcome is kept");
    }
}

/// A failed check is the answer, whatever the call answered (dropped unseen), and every
/// later call fails the same way without reaching the peer.
#[test]
fn a_failed_check_drops_the_answer() {
    for call_first in [true, false] {
        let r = answering(
            move |peer, check, call| {
                if call_first {
                    peer.reply(call, &state());
                }
                peer.reply(check, &1000u32);
            },
            |d| {
                let first = d.begin_login(about("alice"));
                let second = d.verify(about("alice"), "123456");
                (first, second)
            },
        );
        assert_wrong_uid(r.0);
        assert_wrong_uid(r.1);
    }
}

/// A code never travels alongside the check: `Verify` on an unchecked owner waits for
/// the check's answer before it is sent.
#[test]
fn a_code_waits_for_the_check() {
    let r = scripted(
        |peer| {
            let (check, member, _) = peer.read_call();
            assert_eq!(member, "GetConnectionUnixUser");
            peer.0
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let mut byte = [0u8; 1];
            let early = std::io::Read::read(&mut peer.0, &mut byte);
            assert!(early.is_err(), "Verify was sent before the check's answer");
            peer.0.set_read_timeout(None).expect("timeout");
            peer.reply(check, &DAEMON_UID);
            let (call, member, _) = peer.read_call();
            assert_eq!(member, "Verify");
            let ok = Verified {
                method: method::TOTP.into(),
                backup_codes_left: 3,
                step_offset: 0,
            };
            peer.reply(call, &ok);
        },
        |d| d.verify(about("alice"), "123456"),
    );
    assert_eq!(r.expect("verify").backup_codes_left, 3);
}

/// Which error replies mean "unavailable", which are the daemon's own, and which mean
/// something answered that never should (closed whatever `failmode` says).
#[test]
fn error_replies_are_sorted_by_name() {
    type Expected = fn(&CallError) -> bool;
    let cases: [(&str, Expected); 6] = [
        (
            "org.twofold.Error.Locked",
            |e| matches!(e, CallError::Daemon(ErrorKind::Locked, m) if m == "said"),
        ),
        (
            "org.freedesktop.DBus.Error.NoReply",
            |e| matches!(e, CallError::Unavailable(m) if m.contains("NoReply")),
        ),
        ("org.freedesktop.DBus.Error.ServiceUnknown", |e| {
            matches!(e, CallError::Unavailable(_))
        }),
        ("org.freedesktop.DBus.Error.Spawn.ChildExited", |e| {
            matches!(e, CallError::Unavailable(_))
        }),
        (
            "org.freedesktop.DBus.Error.UnknownMethod",
            |e| matches!(e, CallError::Unexpected(m) if m.contains("UnknownMethod")),
        ),
        ("org.twofold.Error.Unheard", |e| {
            matches!(e, CallError::Unexpected(_))
        }),
    ];
    for (name, expected) in cases {
        let r = answering(
            move |peer, check, call| {
                peer.reply(check, &DAEMON_UID);
                peer.send(3, call, Some(name), &("said",));
            },
            |d| d.begin_login(about("alice")),
        );
        let e = r.expect_err(name);
        assert!(expected(&e), "{name}: {e:?}");
    }
}

/// A reply must come from whom the call went to: the owner for the daemon's calls, the
/// bus for the uid check (the bus refuses to deliver unrequested replies; this holds
/// even if it did not).
#[test]
fn a_reply_from_another_sender_is_refused() {
    type Forgery = fn(&mut Peer, u32, u32);
    let forged_check: Forgery = |peer, check, _| {
        peer.send_as(":1.42", 2, check, None, &DAEMON_UID);
    };
    let forged_answer: Forgery = |peer, check, call| {
        peer.reply(check, &DAEMON_UID);
        peer.send_as(":1.666", 2, call, None, &state());
    };
    for (forgery, from_where) in [(forged_check, ":1.42"), (forged_answer, ":1.666")] {
        let r = answering(forgery, |d| d.begin_login(about("alice")));
        assert!(
            matches!(&r, Err(CallError::Unexpected(m)) if m.contains(from_where)),
            "{r:?}"
        );
    }
}

/// A reply of another shape than the call's is never taken for an answer.
#[test]
fn a_reply_of_the_wrong_shape_is_unexpected() {
    let r = answering(
        |peer, check, call| {
            peer.reply(check, &DAEMON_UID);
            peer.reply(call, &true);
        },
        |d| d.begin_login(about("alice")),
    );
    assert!(
        matches!(&r, Err(CallError::Unexpected(m)) if m.contains("signature")),
        "{r:?}"
    );
}

/// `dbus-monitor --profile` on a bus, started after the fake twofoldd so that every
/// message it reports concerns the connections made afterwards.
struct Monitor {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(bus: &Bus) -> Monitor {
        assert!(
            std::path::Path::new(DBUS_MONITOR).exists(),
            "{DBUS_MONITOR} is required for these tests (tests/run.sh installs it)"
        );
        let mut child =
            spawn_piped(Command::new(DBUS_MONITOR).args(["--profile", "--address", &bus.address]));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("fake-monitor".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn monitor reader");
        let mut monitor = Monitor {
            child,
            lines,
            reader: Some(reader),
        };
        // Becoming a monitor, it loses its own unique name: from then on it sees all.
        monitor.until(|f| f[0] == "sig" && f.get(7) == Some(&"NameLost"));
        monitor
    }

    /// The tab-separated fields of the lines up to and including the first one that
    /// `stop` accepts.
    fn until(&mut self, mut stop: impl FnMut(&[&str]) -> bool) -> Vec<Vec<String>> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("dbus-monitor: {e}; saw {seen:?}"));
            let fields: Vec<&str> = line.split('\t').collect();
            let done = stop(&fields);
            seen.push(fields.into_iter().map(str::to_owned).collect());
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// What a login costs on the bus: after the handshake (`Hello`), `GetNameOwner`, then the
/// uid check together with `BeginLogin`, then `Verify`: no introspection, no match rule,
/// nothing to the well-known name, and one uid check only.
#[test]
fn a_login_sends_five_method_calls() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let mut monitor = Monitor::start(&bus);

    let mut d = connect(&opts(&bus.address)).expect("connect");
    assert!(d.begin_login(about("alice")).expect("begin_login").enrolled);
    d.verify(about("alice"), "123456").expect("verify");
    drop(d);

    // The module's connection: a NameOwnerChanged when it gets its unique name, another
    // when it is gone.
    let mut changes = 0;
    let seen = monitor.until(|f| {
        if f[0] == "sig" && f.get(7) == Some(&"NameOwnerChanged") {
            changes += 1;
        }
        changes == 2
    });
    let calls: Vec<(&str, &str, &str)> = seen
        .iter()
        .filter(|f| f[0] == "mc" && f.len() >= 8)
        .map(|f| (f[3].as_str(), f[4].as_str(), f[7].as_str()))
        .collect();
    let members: Vec<&str> = calls.iter().map(|c| c.2).collect();
    assert_eq!(members.len(), 5, "{calls:?}");
    assert_eq!(members[..2], ["Hello", "GetNameOwner"], "{calls:?}");
    let mut pair = members[2..4].to_vec();
    pair.sort_unstable();
    assert_eq!(pair, ["BeginLogin", "GetConnectionUnixUser"], "{calls:?}");
    assert_eq!(members[4], "Verify", "{calls:?}");
    let module = calls[0].0;
    for (sender, destination, member) in &calls {
        assert_eq!(*sender, module, "{calls:?}");
        if matches!(*member, "BeginLogin" | "Verify") {
            assert!(destination.starts_with(':'), "{calls:?}");
        }
    }
    assert_no_stray_threads();
}

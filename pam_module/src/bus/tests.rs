//! The real connector against a private `dbus-daemon` and a fake `twofoldd`, plus the
//! timeouts, the "no thread left behind" rule, the uid check that gates the first call's
//! answer, and the messages a login costs on the bus (counted with `dbus-monitor`).

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use pam::constants::PamResultCode;
use twofold_contract::{method, LoginState, TwofoldError, Verified, BUS_NAME, OBJECT_PATH};
use zeroize::Zeroizing;

use super::*;
use crate::auth::{
    authenticate, AuthTok, AuthTokError, ConvError, Conversation, Level, Logger, LoginContext,
};
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
        let mut child = Command::new(DBUS_DAEMON)
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dbus-daemon");
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
                    let stream = connect_socket(&address).await.expect("connect");
                    let conn = zbus::connection::Builder::unix_stream(stream)
                        .name(BUS_NAME)
                        .expect("name")
                        .serve_at(OBJECT_PATH, Fake)
                        .expect("serve_at")
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

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn connect(opts: &Options) -> Result<BusDaemon, String> {
    BusConnector.connect(opts, Instant::now() + opts.timeout)
}

#[test]
fn status_and_verify_through_a_real_bus() {
    let Some(bus) = Bus::start() else { return };
    let _service = Service::start(&bus);
    let mut d = connect(&opts(&bus.address)).expect("connect");

    let state = d
        .begin_login("alice", test_context(), soon())
        .expect("begin_login");
    assert!(state.enrolled);
    assert!(matches!(
        d.begin_login("bob", test_context(), soon()),
        Err(CallError::Daemon(TwofoldError::NotEnrolled(_)))
    ));
    assert!(matches!(
        d.begin_login("carol", test_context(), soon()),
        Err(CallError::Daemon(TwofoldError::UnknownUser(_)))
    ));
    let ok = d
        .verify("alice", "123456", test_context(), soon())
        .expect("verify");
    assert_eq!(ok.method, method::TOTP);
    assert!(matches!(
        d.verify("alice", "000000", test_context(), soon()),
        Err(CallError::Daemon(TwofoldError::InvalidCode(_)))
    ));
    // Not even while connected: the socket was not connected on tokio's blocking pool.
    assert_no_stray_threads();
    drop(d);
    assert_no_stray_threads();
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
    assert_wrong_uid(d.begin_login("bob", test_context(), soon()));
    assert_wrong_uid(d.verify("alice", "123456", test_context(), soon()));
    assert_wrong_uid(d.begin_login("alice", test_context(), soon()));
    drop(d);

    let mut d = connect(&o).expect("connect");
    assert_wrong_uid(d.verify("alice", "123456", test_context(), soon()));
    drop(d);

    // Through the whole flow: "not enrolled" under nullok would be PAM_IGNORE.
    let mut nullok = o.clone();
    nullok.nullok = true;
    let (code, said, log) = run(&nullok, "bob", "123456");
    assert_eq!(code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(said.is_empty(), "{said:?}");
    assert!(
        log.0
            .iter()
            .any(|(l, m)| *l == Level::Err && m.contains("runs as uid")),
        "{:?}",
        log.0
    );
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
    let r = d.verify(
        "alice",
        "slow",
        test_context(),
        Instant::now() + Duration::from_millis(300),
    );
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

#[derive(Default)]
struct Lines(Vec<(Level, String)>);

impl Logger for Lines {
    fn log(&mut self, level: Level, msg: &str) {
        self.0.push((level, msg.to_owned()));
    }
}

fn run(o: &Options, user: &str, typed: &'static str) -> (PamResultCode, Vec<String>, Lines) {
    let ctx = LoginContext {
        service: Some("test".into()),
        ..LoginContext::default()
    };
    let mut conv = Typing(vec![typed], Vec::new());
    let mut log = Lines::default();
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
    assert!(log
        .0
        .iter()
        .any(|(l, m)| *l == Level::Err && m.contains("timeout")));
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

fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Senders that answer the check and the call of [`cued`].
struct Cues {
    check: tokio::sync::oneshot::Sender<Result<(), String>>,
    call: tokio::sync::oneshot::Sender<u32>,
}

/// A check and a call answered on cue; `sent` is set when the call is first polled (with
/// zbus, polled once means written to the socket).
fn cued<'a>(
    sent: &'a Cell<bool>,
) -> (
    Cues,
    impl Future<Output = Result<(), String>> + 'a,
    impl Future<Output = Result<u32, CallError>> + 'a,
) {
    let (check_tx, check_rx) = tokio::sync::oneshot::channel();
    let (call_tx, call_rx) = tokio::sync::oneshot::channel();
    let check = async move { check_rx.await.expect("check cue") };
    let call = async move {
        sent.set(true);
        Ok(call_rx.await.expect("call cue"))
    };
    (
        Cues {
            check: check_tx,
            call: call_tx,
        },
        check,
        call,
    )
}

#[test]
fn gated_sends_both_and_answers_after_the_check() {
    for call_first in [true, false] {
        let sent = Cell::new(false);
        let (cues, check, call) = cued(&sent);
        let mut verdict = None;
        {
            let mut fut = pin!(gated(check, call, &mut verdict));
            assert!(poll_once(fut.as_mut()).is_pending());
            assert!(sent.get(), "the call must not wait for the check");
            if call_first {
                cues.call.send(7).expect("call");
                assert!(
                    poll_once(fut.as_mut()).is_pending(),
                    "the answer must wait for the check"
                );
                cues.check.send(Ok(())).expect("check");
            } else {
                cues.check.send(Ok(())).expect("check");
                assert!(poll_once(fut.as_mut()).is_pending());
                cues.call.send(7).expect("call");
            }
            assert!(matches!(poll_once(fut.as_mut()), Poll::Ready(Ok(7))));
        }
        assert_eq!(verdict, Some(Ok(())));
    }
}

#[test]
fn gated_drops_the_answer_when_the_check_fails() {
    for call_first in [true, false] {
        let sent = Cell::new(false);
        let (cues, check, call) = cued(&sent);
        let mut verdict = None;
        {
            let mut fut = pin!(gated(check, call, &mut verdict));
            assert!(poll_once(fut.as_mut()).is_pending());
            if call_first {
                cues.call.send(7).expect("call");
                assert!(poll_once(fut.as_mut()).is_pending());
            }
            // Without the call's answer, when it comes second: no waiting for it.
            cues.check.send(Err("wrong owner".into())).expect("check");
            let r = poll_once(fut.as_mut());
            assert!(
                matches!(&r, Poll::Ready(Err(CallError::Unavailable(m))) if m == "wrong owner"),
                "{r:?}"
            );
        }
        assert_eq!(verdict, Some(Err("wrong owner".into())));
    }
}

#[test]
fn gated_dropped_early_leaves_the_check_open() {
    let sent = Cell::new(false);
    let (cues, check, call) = cued(&sent);
    let mut verdict = None;
    {
        let mut fut = pin!(gated(check, call, &mut verdict));
        assert!(poll_once(fut.as_mut()).is_pending());
        cues.call.send(7).expect("call");
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    assert_eq!(verdict, None);
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
        let mut child = Command::new(DBUS_MONITOR)
            .args(["--profile", "--address", &bus.address])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dbus-monitor");
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
    assert!(
        d.begin_login("alice", test_context(), soon())
            .expect("begin_login")
            .enrolled
    );
    d.verify("alice", "123456", test_context(), soon())
        .expect("verify");
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

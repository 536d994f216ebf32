//! The direct socket (issue 12): the module speaks D-Bus peer to peer on twofoldd's
//! root-only socket, checks its peer before sending anything, falls back to the bus
//! (starting the daemon there if need be), and holds no connection while the user types.
//! Real libpam (pamdriver), real dbus-daemon, real twofoldd, codes from oathtool.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use twofold_tests::root_only;
use twofold_tests::{
    assert_failed_saying, built, dbus_send_to, first_line, pam, totp, wait_for, Login, TestEnv,
    NOBODY,
};

const USER: &str = "daemon";
const OTHER: &str = "bin";

/// A login of `user` with `code` and exactly these transport options.
fn login(user: &str, code: &str, transport: String) -> Login {
    Login {
        bus_arg: Some(transport),
        ..Login::new(user, code)
    }
}

fn nowhere(env: &TestEnv) -> String {
    format!("unix:path={}/no-bus-here", env.dir.path().display())
}

#[test]
fn a_login_through_the_socket_needs_no_bus() {
    root_only!();
    let env = TestEnv::new();
    let meta = std::fs::symlink_metadata(&env.socket).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    let dir = std::fs::metadata(env.socket.parent().unwrap()).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o777), (0, 0o755));

    let enrolled = env.enroll(USER);
    let code = totp(&enrolled.secret, 0);
    let transport = format!("socket={} bus={}", env.socket.display(), nowhere(&env));
    let ok = env.pam(&login(USER, &code, transport.clone()));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert_eq!(ok.threads_after, ok.threads_before, "{ok:?}");
    // The same rules as on the bus: a code is accepted once.
    let replay = env.pam(&login(USER, &code, transport));
    assert_eq!(replay.result, pam::AUTH_ERR, "{replay:?}");
}

/// A socket at the configured path served by someone else than `daemon_uid`.
struct Impostor {
    child: Child,
    received: std::path::PathBuf,
}

impl Impostor {
    /// Listens at `path` as uid `NOBODY`; every byte it receives is counted in a file.
    fn listen(env: &TestEnv) -> (Impostor, std::path::PathBuf) {
        let dir = env.dir.path().join("impostor");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        let path = dir.join("twofoldd.socket");
        let received = dir.join("received");
        let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(64)
print("ready", flush=True)
total = 0
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        while True:
            data = c.recv(4096)
            if not data: break
            total += len(data)
    except OSError:
        pass
    c.close()
    open(sys.argv[2], "w").write(str(total))
"#;
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&path)
            .arg(&received)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let line = first_line(child.stdout.take().unwrap());
        assert_eq!(line.trim(), "ready");
        (Impostor { child, received }, path)
    }

    fn bytes_received(&self) -> Option<u64> {
        std::fs::read_to_string(&self.received).ok()?.parse().ok()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_socket_served_by_another_uid_gets_nothing_and_the_bus_is_used() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let (impostor, path) = Impostor::listen(&env);

    // The bus is there: the login goes through it.
    let code = totp(&enrolled.secret, 0);
    let transport = format!("socket={} bus={}", path.display(), env.address);
    let ok = env.pam(&login(USER, &code, transport));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");

    // No bus: failmode decides.
    let transport = format!("socket={} bus={}", path.display(), nowhere(&env));
    let code = totp(&enrolled.secret, 1);
    let secure = env.pam(&login(USER, &code, transport.clone()));
    assert_eq!(secure.result, pam::AUTHINFO_UNAVAIL, "{secure:?}");
    let safe = env.pam(&login(USER, &code, transport).args("failmode=safe"));
    // The module steps aside (PAM_IGNORE); alone in the stack, libpam denies.
    assert_eq!(safe.result, pam::PERM_DENIED, "{safe:?}");
    assert_eq!(safe.prompts(), 0, "nothing to prompt for without a daemon");

    // It was connected to, and was sent nothing at all (not even the handshake's NUL).
    let received = wait_for(Duration::from_secs(5), || impostor.bytes_received());
    assert_eq!(received, Some(0), "the impostor was sent bytes");
}

#[test]
fn without_the_socket_the_bus_is_used() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let absent = env.dir.path().join("absent/twofoldd.socket");
    let transport = format!("socket={} bus={}", absent.display(), env.address);
    let ok = env.pam(&login(USER, &totp(&enrolled.secret, 0), transport));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
}

#[test]
fn the_first_login_starts_a_stopped_activatable_daemon() {
    root_only!();
    let env = TestEnv::activatable();
    assert!(!env.name_has_owner());
    // Activated once to enroll (as install.sh does, with the bus's own generous limit:
    // a debug build on a loaded machine may take longer than the CLI's timeout), then
    // stopped.
    let started = dbus_send_to(&env.address, "org.freedesktop.DBus")
        .args([
            "--reply-timeout=30000",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.StartServiceByName",
            "string:org.twofold.Twofold1",
            "uint32:0",
        ])
        .output()
        .expect("dbus-send");
    assert!(started.status.success(), "activation: {started:?}");
    let enrolled = env.enroll(USER);
    let pid = env.owner_pid().expect("the CLI started twofoldd");
    twofold_tests::signal(pid, libc::SIGTERM);
    wait_for(Duration::from_secs(10), || {
        (!env.name_has_owner()).then_some(())
    })
    .expect("twofoldd stopped");
    let _ = std::fs::remove_file(&env.socket);

    let started = Instant::now();
    let bus_only = format!("bus={}", env.address);
    let ok = env.pam(&login(USER, &totp(&enrolled.secret, 0), bus_only));
    let pid = env.owner_pid();
    if let Some(pid) = pid {
        twofold_tests::signal(pid, libc::SIGTERM);
    }
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");
    assert!(pid.is_some(), "the login started twofoldd");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// One root process per login, as sudo is, left at the code prompt.
struct Waiting(Child);

impl Drop for Waiting {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // the user gives up: the conversation fails
        let _ = self.0.wait();
    }
}

#[test]
fn three_hundred_waiting_prompts_block_nobody_else() {
    root_only!();
    const WAITING: usize = 300;
    let (env, victim) = TestEnv::with_enrolled(USER);
    env.enroll(OTHER);
    let transport = format!("socket={} bus={}", env.socket.display(), env.address);
    let confdir = env.pam_confdir(&login(OTHER, "", transport.clone()));
    let started = Instant::now();
    let mut waiting = Vec::new();
    for n in 0..WAITING {
        let mut child = Command::new(built("pamdriver"))
            .arg("--confdir")
            .arg(&confdir)
            .args(["--service", "twofold-test", "--user", OTHER, "--hold"])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pamdriver");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let _ = stdout.read_line(&mut line);
        if line.trim() != "waiting at the prompt" {
            let _ = stdout.read_to_string(&mut line);
            panic!("login {n} did not reach its prompt: {line}");
        }
        waiting.push(Waiting(child));
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "too slow at {n}"
        );
    }

    // Another user's logins still work, through the socket and through the bus.
    let direct = format!("socket={} bus={}", env.socket.display(), nowhere(&env));
    let ok = env.pam(&login(USER, &totp(&victim.secret, 0), direct));
    assert_eq!(
        ok.result,
        pam::SUCCESS,
        "socket: {ok:?}\n{}",
        env.log_text()
    );
    let bus_only = format!("bus={}", env.address);
    let ok = env.pam(&login(USER, &victim.backup_codes[0], bus_only));
    assert_eq!(ok.result, pam::SUCCESS, "bus: {ok:?}");
    drop(waiting);
}

/// One read; a signal meant for another test's child may interrupt it: then read again.
fn read_once(mut stream: impl Read) -> std::io::Result<usize> {
    loop {
        match stream.read(&mut [0u8; 16]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[test]
fn direct_connections_are_capped_and_idle_ones_closed() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let open: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(&env.socket).unwrap())
        .collect();
    let opened = Instant::now();
    // The 65th is closed at once.
    let mut extra = UnixStream::connect(&env.socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_once(&mut extra).unwrap(), 0, "not closed at once");
    // A login still works (on the bus).
    let transport = format!("socket={} bus={}", env.socket.display(), env.address);
    let ok = env.pam(&login(USER, &totp(&enrolled.secret, 0), transport));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");
    // The silent ones are closed after the idle limit (10 s), not before.
    let mut first = &open[0];
    first
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    assert_eq!(read_once(&mut first).unwrap(), 0);
    let idle = opened.elapsed();
    assert!(
        idle >= Duration::from_secs(9) && idle < Duration::from_secs(14),
        "{idle:?}"
    );
    // Others (not root) cannot connect at all: the socket is root's.
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
        ])
        .arg(&env.socket)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert_failed_saying(&out, "Permission denied");
}

#[test]
fn a_peer_that_is_not_root_gets_no_login_service_rights() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    // Loosened by hand (twofoldd makes it 0600): the caller is who connects, whatever
    // the socket's mode lets in.
    std::fs::set_permissions(
        &env.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let code = totp(&enrolled.secret, 0);
    let transport = format!("socket={} bus={}", env.socket.display(), nowhere(&env));
    let mut as_nobody = login(USER, &code, transport.clone());
    as_nobody.as_uid = Some(NOBODY);
    let out = env.pam(&as_nobody);
    assert_eq!(out.result, pam::AUTH_ERR, "{out:?}");
    assert_eq!(out.prompts(), 0, "refused at BeginLogin: {out:?}");
    let log = env.log_text();
    assert!(
        log.contains("denied BeginLogin") && log.contains("uid 65534"),
        "{log}"
    );
    // The code was never spent: root's login with it passes.
    let ok = env.pam(&login(USER, &code, transport));
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}");
}

/// Runs twofoldd as systemd would with `twofoldd.socket`: the listening socket on fd 3,
/// `LISTEN_FDS=1`, and `LISTEN_PID` naming the daemon itself (or, `for_us` false,
/// another process: then the socket is not its to take).
fn spawn_socket_activated(env: &TestEnv, passed: &std::path::Path, for_us: bool) -> Child {
    use std::os::fd::AsRawFd;
    let listener = std::os::unix::net::UnixListener::bind(passed).unwrap();
    let fd = listener.as_raw_fd();
    let pid = if for_us { "$$" } else { "1" };
    let to_fd_3 = if fd == 3 {
        String::new()
    } else {
        format!("3<&{fd} {fd}<&-")
    };
    // bash (not dash: the listener's descriptor may have two digits) moves it to fd 3.
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID={pid} LISTEN_FDS=1 exec {} \"$@\" {to_fd_3}",
            built("twofoldd").display()
        ))
        .arg("twofoldd")
        .args(env.daemon_args())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&env.log)
                .unwrap(),
        );
    // SAFETY: fcntl is async-signal-safe; it only lets the listener survive the exec
    // of bash (which moves it to fd 3, as systemd passes it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(listener);
    child
}

#[test]
fn a_socket_passed_by_systemd_is_served() {
    root_only!();
    let (mut env, enrolled) = TestEnv::with_enrolled(USER);
    env.stop_daemon();
    std::fs::remove_file(&env.socket).unwrap();
    let passed = env.dir.path().join("passed.socket");
    let mut daemon = spawn_socket_activated(&env, &passed, true);
    let up = wait_for(Duration::from_secs(20), || {
        env.name_has_owner().then_some(())
    });
    let transport = format!("socket={} bus={}", passed.display(), nowhere(&env));
    let ok = env.pam(&login(USER, &totp(&enrolled.secret, 0), transport));
    let bound_its_own = env.socket.exists();
    twofold_tests::signal(daemon.id() as i32, libc::SIGTERM);
    let _ = daemon.wait();
    assert!(up.is_some(), "{}", env.log_text());
    assert_eq!(ok.result, pam::SUCCESS, "{ok:?}\n{}", env.log_text());
    assert!(
        !bound_its_own,
        "the passed socket is served instead of --socket"
    );

    // LISTEN_PID naming another process: not ours; the daemon binds --socket.
    std::fs::remove_file(&passed).unwrap();
    let mut daemon = spawn_socket_activated(&env, &passed, false);
    let bound = wait_for(Duration::from_secs(20), || {
        env.socket.exists().then_some(())
    });
    twofold_tests::signal(daemon.id() as i32, libc::SIGTERM);
    let _ = daemon.wait();
    assert!(bound.is_some(), "{}", env.log_text());
}

/// The module leaves nothing in its host: after a thousand logins in one process (half
/// on the direct socket, half on the bus; successes, refused codes, lockouts), the same
/// descriptors, the same single thread, the same signal mask and dispositions.
#[test]
fn a_thousand_logins_leave_nothing_behind() {
    root_only!();
    // Enough failures before a lockout that most logins reach Verify.
    let env = TestEnv::with_config(
        "[lockout]\nmax_failures = 100\nlocal_ceiling = 1000\nuser_ceiling = 1000\n",
    );
    let socket = format!("socket={} bus={}", env.socket.display(), nowhere(&env));
    let bus = format!("bus={}", env.address);
    for (user, transport) in [(USER, socket), (OTHER, bus)] {
        let enrolled = env.enroll(user);
        // The first login passes; the next ones replay its code (refused, counted) until
        // the source is locked; then they stop at BeginLogin.
        let runs = env.pam_repeated(&login(user, &totp(&enrolled.secret, 0), transport), 500);
        assert_eq!(runs.len(), 500);
        assert_eq!(
            runs[0].result,
            pam::SUCCESS,
            "{:?}\n{}",
            runs[0],
            env.log_text()
        );
        let refused = runs.iter().filter(|r| r.result == pam::AUTH_ERR).count();
        let locked = runs.iter().filter(|r| r.result == pam::MAXTRIES).count();
        assert!(
            refused >= 90 && refused + locked == 499,
            "{refused} {locked}"
        );
        let first = &runs[0].state_before;
        assert!(!first.signals.is_empty(), "{first:?}");
        for (i, run) in runs.iter().enumerate() {
            assert_eq!(run.threads_after, 1, "login {i}: {run:?}");
            assert_eq!(&run.state_after, first, "login {i} left something behind");
        }
    }
}

/// `dbus-send` (libdbus: another D-Bus implementation than ours and zbus's) to `env`'s
/// daemon, peer to peer on the direct socket or through the bus.
fn dbus_send(env: &TestEnv, direct: bool, method: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("dbus-send");
    if direct {
        cmd.arg(format!("--peer=unix:path={}", env.socket.display()));
    } else {
        cmd.arg(format!("--bus={}", env.address))
            .arg("--dest=org.twofold.Twofold1");
    }
    cmd.args(["--print-reply=literal", "/org/twofold/Twofold1", method])
        .args(args)
        .output()
        .expect("dbus-send (dbus-bin)")
}

/// The methods of `interface` in an introspection document.
fn methods_of(xml: &str, interface: &str) -> Vec<String> {
    let start = xml
        .find(&format!("<interface name=\"{interface}\">"))
        .unwrap_or_else(|| panic!("no {interface} in {xml}"));
    let body = &xml[start..];
    let body = &body[..body.find("</interface>").expect("closed")];
    let mut names: Vec<String> = body
        .split("<method name=\"")
        .skip(1)
        .map(|m| m[..m.find('"').expect("quoted")].to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_direct_socket_serves_every_method_the_bus_serves() {
    root_only!();
    let env = TestEnv::new();
    let introspect = "org.freedesktop.DBus.Introspectable.Introspect";
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let on_bus = dbus_send(&env, false, introspect, &[]);
    let direct = dbus_send(&env, true, introspect, &[]);
    assert!(
        on_bus.status.success() && direct.status.success(),
        "{on_bus:?} {direct:?}"
    );
    let interface = twofold_contract::INTERFACE;
    let methods = methods_of(&text(&on_bus), interface);
    assert!(methods.len() >= 19, "{methods:?}");
    assert_eq!(methods_of(&text(&direct), interface), methods);

    // Each is served: called without its arguments it is refused as such (or, taking
    // none, answered), never unknown; the bus's object server says InvalidArgs too (zbus
    // 5 said org.freedesktop.zbus.Error there).
    for method in &methods {
        for direct in [true, false] {
            let out = dbus_send(&env, direct, &format!("{interface}.{method}"), &[]);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!said.contains("UnknownMethod"), "{method}: {said}");
            assert!(
                out.status.success() || said.contains("org.freedesktop.DBus.Error.InvalidArgs"),
                "{method} (direct: {direct}): {out:?}"
            );
        }
    }
    // The same answers on both ways in: a method, a property, and Peer.Ping.
    for (method, args) in [
        (format!("{interface}.Status"), vec!["string:"]),
        (
            "org.freedesktop.DBus.Properties.Get".to_owned(),
            vec![&*format!("string:{interface}"), "string:Version"],
        ),
        ("org.freedesktop.DBus.Peer.Ping".to_owned(), vec![]),
    ] {
        let on_bus = dbus_send(&env, false, &method, &args);
        let direct = dbus_send(&env, true, &method, &args);
        assert!(direct.status.success(), "{method}: {direct:?}");
        assert_eq!(text(&direct), text(&on_bus), "{method}");
    }
    // A method of no interface ours, and an object that is not there.
    let out = dbus_send(&env, true, "org.example.Nope.Nothing", &[]);
    assert_failed_saying(&out, "UnknownInterface");
}

#[test]
fn sigterm_ends_the_daemon_promptly_with_direct_connections_open() {
    root_only!();
    let mut env = TestEnv::new();
    // Idle ones (their threads wait in read) and one half-way through a message.
    let mut open: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&env.socket).unwrap())
        .collect();
    std::io::Write::write_all(&mut open[0], b"\0AUTH EXTERNAL 30\r\nBEGIN\r\nl\x01").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    env.stop_daemon();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    assert!(
        env.log_text().contains("SIGTERM: exiting"),
        "{}",
        env.log_text()
    );
}

//! The daemon's log never goes silent: a real twofoldd, in a mount namespace whose
//! `/dev/log` points at a private "syslog" socket, keeps logging across a syslog restart,
//! logs to stderr while there is no syslog and returns to syslog once one appears; the
//! shipped fail2ban filter matches its real failure line.
//!
//! Needs root (private bus, bubblewrap, real libpam).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use twofold_tests::{built, repo_root, root_only, signal, totp, Login, TestEnv};

/// The user that the tests enroll (uid 1 on Debian).
const USER: &str = "daemon";
/// A little more than the daemon's retry interval for a missing syslog socket.
const RETRY_WAIT: Duration = Duration::from_millis(2500);

/// A private syslog daemon: a datagram socket at `path`.
fn listen(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket
}

/// A private syslog (or journal) socket `name` in `env`'s directory: its path, the socket.
fn listen_in(env: &TestEnv, name: &str) -> (PathBuf, UnixDatagram) {
    let path = env.dir.path().join(name);
    let socket = listen(&path);
    (path, socket)
}

/// A test environment with USER enrolled, and a wrong code of theirs.
fn enrolled_env() -> (TestEnv, String) {
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let wrong = totp(&enrolled.secret, 1000);
    (env, wrong)
}

/// A login of USER with the `wrong` code, over ssh from `rhost` or, without one, on
/// tty1: it fails.
fn fail_a_login(env: &TestEnv, wrong: &str, rhost: Option<&str>) {
    let out = env.pam(&Login {
        tty: Some(if rhost.is_some() { "ssh" } else { "tty1" }.into()),
        rhost: rhost.map(Into::into),
        ..Login::new(USER, wrong)
    });
    assert_ne!(out.result, 0, "a wrong code succeeded: {out:?}");
}

/// The first line received within 10 s that contains `needle`.
fn receive_line(socket: &UnixDatagram, needle: &str) -> Option<String> {
    receive_line_within(socket, needle, Duration::from_secs(10))
}

fn receive_line_within(socket: &UnixDatagram, needle: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0; 65536];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(needle) {
                return Some(line);
            }
        }
    }
    None
}

/// A twofoldd run, without `--log-stderr`, in a mount namespace whose `/dev/log` is a
/// symlink to `syslog` (so the socket there can come, go and come back).
struct Daemon {
    bwrap: Child,
    pid: i32,
    stderr: PathBuf,
}

impl Daemon {
    fn start(env: &mut TestEnv, syslog: &Path) -> Daemon {
        Self::start_with_journal(env, syslog, None)
    }

    /// With `journal`: as systemd starts it, `JOURNAL_STREAM` naming its stderr and
    /// `/run/systemd/journal/socket` (in a private `/run`) a symlink to `journal`.
    fn start_with_journal(env: &mut TestEnv, syslog: &Path, journal: Option<&Path>) -> Daemon {
        env.stop_daemon();
        let stderr = env.dir.path().join("twofoldd.stderr");
        let stderr_file = fs::File::create(&stderr).unwrap();
        let mut bwrap = Command::new("bwrap");
        bwrap
            .args(["--dev-bind", "/", "/", "--dev", "/dev", "--symlink"])
            .arg(syslog)
            .arg("/dev/log");
        bwrap.env_remove("JOURNAL_STREAM");
        if let Some(journal) = journal {
            let meta = stderr_file.metadata().unwrap();
            bwrap
                .args([
                    "--tmpfs",
                    "/run",
                    "--dir",
                    "/run/systemd/journal",
                    "--symlink",
                ])
                .arg(journal)
                .arg("/run/systemd/journal/socket")
                .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let bwrap = bwrap
            .args(["--die-with-parent", "--"])
            .arg(built("twofoldd"))
            .args(env.daemon_place_args())
            .arg("--db")
            .arg(&env.db)
            .stdout(Stdio::null())
            .stderr(stderr_file)
            .spawn()
            .expect("bwrap (bubblewrap) must be installed");
        let mut daemon = Daemon {
            bwrap,
            pid: 0,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !env.name_has_owner() {
            if let Some(status) = daemon.bwrap.try_wait().unwrap() {
                panic!("twofoldd exited with {status}: {}", daemon.stderr_text());
            }
            assert!(Instant::now() < deadline, "twofoldd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon.pid = env
            .owner_pid()
            .expect("the daemon inside bwrap owns the name");
        daemon
    }

    fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Makes the daemon log "SIGHUP: configuration reloaded" and checks that `syslog`
    /// gets that line within 10 s (`lost`: what its loss means). The signal is sent
    /// every 0.5 s during the first 1.5 s: on a busy machine a child that another test
    /// is forking may hold the old socket for a moment, and a line sent then is lost (as
    /// with syslog(3)); the next one must get through at once, well before the daemon's
    /// 2-second rest after a failed reconnect.
    fn assert_reload_reaches(&self, syslog: &UnixDatagram, lost: &str) {
        let start = Instant::now();
        let mut reached = false;
        while !reached && start.elapsed() < Duration::from_secs(10) {
            if start.elapsed() < Duration::from_millis(1500) {
                signal(self.pid, libc::SIGHUP);
            }
            let needle = "SIGHUP: configuration reloaded";
            reached = receive_line_within(syslog, needle, Duration::from_millis(500)).is_some();
        }
        assert!(reached, "{lost}; stderr: {}", self.stderr_text());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.pid > 0 {
            signal(self.pid, libc::SIGTERM);
        }
        let _ = self.bwrap.kill();
        let _ = self.bwrap.wait();
    }
}

#[test]
fn a_restarted_syslog_still_gets_the_daemons_lines() {
    root_only!();
    let mut env = TestEnv::new();
    let (path, syslog) = listen_in(&env, "syslog.sock");
    let daemon = Daemon::start(&mut env, &path);
    let line = receive_line(&syslog, "serving org.twofold.Twofold1");
    let line = line.expect("the start line reaches syslog");
    assert!(line.starts_with("<86>"), "authpriv.info: {line:?}");
    assert!(line.contains(" twofoldd["), "{line:?}");

    // rsyslog restarts: the old socket closes, a new one appears at the same path.
    drop(syslog);
    fs::remove_file(&path).unwrap();
    let syslog = listen(&path);
    daemon.assert_reload_reaches(&syslog, "the line after the restart was lost");
}

#[test]
fn without_syslog_the_daemon_logs_to_stderr_until_syslog_appears() {
    root_only!();
    let mut env = TestEnv::new();
    let path = env.dir.path().join("syslog.sock");
    let daemon = Daemon::start(&mut env, &path);
    assert!(
        daemon
            .stderr_text()
            .contains("serving org.twofold.Twofold1"),
        "no syslog: the start line goes to stderr: {:?}",
        daemon.stderr_text()
    );

    let syslog = listen(&path);
    std::thread::sleep(RETRY_WAIT);
    daemon.assert_reload_reaches(&syslog, "the syslog that appeared later got nothing");
}

#[test]
fn under_systemd_a_failure_goes_to_the_journal_with_its_fields() {
    root_only!();
    let (mut env, wrong) = enrolled_env();
    let (journal_path, journal) = listen_in(&env, "journal.sock");
    let (syslog_path, syslog) = listen_in(&env, "syslog.sock");
    let daemon = Daemon::start_with_journal(&mut env, &syslog_path, Some(&journal_path));

    fail_a_login(&env, &wrong, Some("127.0.0.7"));
    let entry = receive_line(&journal, "MESSAGE=verification failed")
        .unwrap_or_else(|| panic!("no journal entry; stderr: {}", daemon.stderr_text()));
    let fields: Vec<&str> = entry.lines().collect();
    for expected in [
        "PRIORITY=4",
        "SYSLOG_IDENTIFIER=twofoldd",
        "SYSLOG_FACILITY=10",
        "USER=daemon",
        "SERVICE=twofold-test",
        "RHOST=127.0.0.7",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing in {fields:?}"
        );
    }
    // The journal takes every line: nothing goes to syslog or stderr besides.
    assert_eq!(
        receive_line_within(&syslog, "twofoldd", Duration::from_secs(1)),
        None
    );
    assert_eq!(daemon.stderr_text(), "");
}

#[test]
fn the_fail2ban_filter_matches_the_daemons_remote_failure_line() {
    root_only!();
    let (mut env, wrong) = enrolled_env();
    let (path, syslog) = listen_in(&env, "syslog.sock");
    let _daemon = Daemon::start(&mut env, &path);

    let mut log = String::new();
    for rhost in [Some("127.0.0.7"), None] {
        fail_a_login(&env, &wrong, rhost);
        let line = receive_line(&syslog, "verification failed").expect("failure line");
        log.push_str(&as_written_by_syslog(&line));
        log.push('\n');
    }

    let config = env.dir.path().join("fail2ban");
    fs::create_dir_all(config.join("filter.d")).unwrap();
    fs::copy(
        "/etc/fail2ban/filter.d/common.conf",
        config.join("filter.d/common.conf"),
    )
    .expect("fail2ban must be installed (tests/run.sh installs it)");
    fs::copy(
        repo_root().join("packaging/fail2ban/twofold.conf"),
        config.join("filter.d/twofold.conf"),
    )
    .unwrap();
    let log_path = env.dir.path().join("auth.log");
    fs::write(&log_path, &log).unwrap();
    let out = Command::new("fail2ban-regex")
        .arg("--config")
        .arg(&config)
        .args(["--out", "ip"])
        .arg(&log_path)
        .arg("twofold")
        .output()
        .expect("fail2ban-regex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The remote failure names its address; the local one (empty rhost=) matches nothing.
    assert_eq!(stdout.trim(), "127.0.0.7", "log:\n{log}");
}

/// A line received on /dev/log as rsyslog writes it to auth.log: priority dropped, the
/// host name after the time stamp.
fn as_written_by_syslog(datagram: &str) -> String {
    let line = datagram.split_once('>').expect("<PRI>").1;
    let (stamp, rest) = line.split_at(15);
    format!("{stamp} testhost{rest}")
}

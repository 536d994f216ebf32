use super::*;
use crate::testing::temp_path;
use std::sync::Arc;

/// The sinks' retry interval where a test does not wait for it.
const RETRY: Duration = Duration::from_secs(60);

/// A stand-in for stderr that the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A private "syslog daemon": a datagram socket bound at `path`.
fn listen(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = vec![0; 65536];
    let n = socket.recv(&mut buf).expect("a line arrives");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// [`Sinks::new`] with a stderr the test reads.
fn captured_sinks(
    journal: Option<&Path>,
    syslog: &Path,
    copy_to_stderr: bool,
    retry: Duration,
) -> (Sinks, Captured) {
    let stderr = Captured::default();
    let sinks = Sinks::new(
        journal,
        syslog,
        copy_to_stderr,
        Box::new(stderr.clone()),
        retry,
    );
    (sinks, stderr)
}

/// Writes `text` to `sinks` and asserts that `syslog` receives it.
fn delivered(sinks: &mut Sinks, level: Level, text: &str, syslog: &UnixDatagram) {
    sinks.write(level, text);
    let line = receive(syslog);
    assert!(line.ends_with(text), "{line:?}");
}

fn syslog_sinks(path: &Path, retry: Duration) -> (Sinks, Captured) {
    captured_sinks(None, path, false, retry)
}

#[test]
fn safe_escapes_and_truncates() {
    assert_eq!(safe("alice"), "alice");
    assert_eq!(safe("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    assert_eq!(safe(&"x".repeat(40)), format!("{}…", "x".repeat(32)));
}

#[test]
fn a_restarted_syslog_gets_the_next_line() {
    let (_dir, path) = temp_path("log");
    let syslog = listen(&path);
    let (mut sinks, stderr) = syslog_sinks(&path, RETRY);
    delivered(&mut sinks, Level::Warn, "before the restart", &syslog);

    // rsyslog restarts: its socket closes, a new one is bound at the same path.
    drop(syslog);
    std::fs::remove_file(&path).unwrap();
    let syslog = listen(&path);
    delivered(&mut sinks, Level::Warn, "after the restart", &syslog);
    assert_eq!(stderr.text(), "", "nothing fell back to stderr");
}

#[test]
fn without_syslog_lines_go_to_stderr_until_it_appears() {
    let (_dir, path) = temp_path("log");
    let retry = Duration::from_millis(300);
    let (mut sinks, stderr) = syslog_sinks(&path, retry);
    sinks.write(Level::Error, "no syslog yet");
    assert!(stderr.text().contains("no syslog yet"), "{}", stderr.text());

    let syslog = listen(&path);
    std::thread::sleep(retry + Duration::from_millis(50));
    delivered(&mut sinks, Level::Info, "syslog is back", &syslog);
    assert!(
        !stderr.text().contains("syslog is back"),
        "{}",
        stderr.text()
    );
}

#[test]
fn an_unreachable_socket_is_not_retried_on_every_line() {
    let (_dir, path) = temp_path("log");
    let (mut sinks, stderr) = syslog_sinks(&path, RETRY);
    let syslog = listen(&path);
    // Within the retry interval the new socket is not tried: the line goes to stderr.
    sinks.write(Level::Info, "still resting");
    assert!(stderr.text().contains("still resting"));
    syslog.set_nonblocking(true).unwrap();
    assert!(syslog.recv(&mut [0; 64]).is_err(), "no datagram expected");
}

#[test]
fn a_full_syslog_socket_never_stalls_the_daemon() {
    let (_dir, path) = temp_path("log");
    // A syslog daemon that never reads: its queue fills up.
    let _stuck = listen(&path);
    let (mut sinks, stderr) = syslog_sinks(&path, RETRY);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for n in 0..5000 {
            sinks.write(Level::Info, &format!("line {n} {}", "x".repeat(200)));
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("logging to a full socket must not block");
    assert!(
        stderr.text().contains("line 4999"),
        "overflow went to stderr"
    );
}

#[test]
fn syslog_lines_are_rfc3164_authpriv() {
    let line = syslog_line(Level::Warn, "verification failed");
    // authpriv (10) * 8 + warning (4) = 84.
    let rest = line.strip_prefix("<84>").expect(&line);
    let (stamp, rest) = rest.split_at(15);
    assert_eq!(stamp.as_bytes()[3], b' ', "{stamp:?}");
    assert_eq!(&stamp[6..7], " ", "{stamp:?}");
    assert_eq!(
        rest,
        format!(" twofoldd[{}]: verification failed", std::process::id())
    );
    assert!(syslog_line(Level::Error, "x").starts_with("<83>"));
    assert!(syslog_line(Level::Info, "x").starts_with("<86>"));
}

#[test]
fn journal_entries_carry_structured_fields() {
    let (dir, journal_path) = temp_path("journal");
    let journal = listen(&journal_path);
    let (mut sinks, stderr) = captured_sinks(
        Some(&journal_path),
        &dir.path().join("no-syslog"),
        true,
        RETRY,
    );
    let message =
        "verification failed (wrong code): user=alice service=sshd rhost=192.0.2.1 tty=ssh";
    sinks.write(Level::Warn, message);
    let entry = receive(&journal);
    let fields: Vec<&str> = entry.lines().collect();
    assert_eq!(
        fields,
        [
            format!("MESSAGE={message}").as_str(),
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=twofoldd",
            "SYSLOG_FACILITY=10",
            "USER=alice",
            "SERVICE=sshd",
            "RHOST=192.0.2.1",
        ]
    );
    // A local login has an empty rhost: no RHOST field.
    sinks.write(
        Level::Info,
        "verified by totp: user=bob service=sudo rhost= tty=pts/1",
    );
    let entry = receive(&journal);
    assert!(
        entry.contains("\nUSER=bob\n") && !entry.contains("RHOST"),
        "{entry:?}"
    );
    // Under the journal, stderr is the journal: no copies there.
    assert_eq!(stderr.text(), "");
}

#[test]
fn journal_values_with_newlines_use_the_binary_form() {
    let entry = journal_entry(Level::Info, "two\nlines");
    let mut expected = b"MESSAGE\n".to_vec();
    expected.extend_from_slice(&9u64.to_le_bytes());
    expected.extend_from_slice(b"two\nlines\nPRIORITY=6\n");
    assert!(entry.starts_with(&expected), "{entry:?}");
}

#[test]
fn without_the_journal_lines_go_to_syslog() {
    let (dir, syslog_path) = temp_path("log");
    let syslog = listen(&syslog_path);
    let (mut sinks, stderr) = captured_sinks(
        Some(&dir.path().join("no-journal")),
        &syslog_path,
        false,
        RETRY,
    );
    delivered(&mut sinks, Level::Info, "journald is down", &syslog);
    assert_eq!(stderr.text(), "");
}

#[test]
fn over_long_messages_are_cut_at_a_character_boundary() {
    let text = "é".repeat(MAX_MESSAGE_BYTES);
    let cut = truncate(&text, MAX_MESSAGE_BYTES + 1);
    assert_eq!(cut.len(), MAX_MESSAGE_BYTES);
    assert_eq!(truncate("short", MAX_MESSAGE_BYTES), "short");
}

#[test]
fn login_fields_are_read_only_from_the_login_suffix() {
    let fields =
        LoginFields::parse("refused while locked out: user=a b service=sshd rhost=h tty=ssh");
    assert_eq!(
        fields,
        Some(LoginFields {
            user: "a b",
            service: "sshd",
            rhost: "h"
        })
    );
    // A user name cannot fake the rhost: fields are read from the right.
    let fields = LoginFields::parse(
        "verification failed (wrong code): user=x rhost=6.6.6.6 service=sshd rhost=192.0.2.1 tty=ssh",
    )
    .unwrap();
    assert_eq!(
        (fields.user, fields.rhost),
        ("x rhost=6.6.6.6", "192.0.2.1")
    );
    // The unknown-user line names no account; its made-up name yields no fields.
    assert_eq!(
        LoginFields::parse(
            "login for unknown user a: user=root service=x from rhost=1.2.3.4 tty=: source locked for 60 s"
        ),
        None
    );
    assert_eq!(LoginFields::parse("SIGHUP: configuration reloaded"), None);
}

//! Logging that never goes silent. Nothing here ever receives a secret or a typed code.
//!
//! Where a line goes, first that takes it:
//! 1. the systemd journal (native protocol, structured fields), when systemd connected our
//!    stderr to the journal (`JOURNAL_STREAM` names stderr);
//! 2. syslog at `/dev/log`: RFC 3164, facility authpriv, ident `twofoldd`;
//! 3. standard error.
//!
//! Like syslog(3), a failed send reconnects once and retries, so a restarted syslog daemon
//! gets the next line. A socket that cannot be reached is tried again at most every
//! [`RETRY_INTERVAL`]; meanwhile lines go to stderr. Sockets are non-blocking: a stuck or
//! full log socket costs a line on stderr, never a stalled request.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The syslog socket of syslog(3).
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// journald's native-protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// How long an unreachable socket is left alone before the next try.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// `LOG_AUTHPRIV`, as a facility number (`LOG_AUTHPRIV >> 3`).
const FACILITY_AUTHPRIV: u8 = 10;
const IDENT: &str = "twofoldd";
/// Longest message sent: well inside any datagram limit, so a send never fails on size.
const MAX_MESSAGE_BYTES: usize = 4096;

/// A unix datagram socket that reconnects as syslog(3) does.
struct Reconnecting {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    /// While disconnected: no new try before this instant.
    retry_at: Option<Instant>,
    retry_interval: Duration,
}

impl Reconnecting {
    fn new(path: &Path, retry_interval: Duration) -> Self {
        let mut this = Reconnecting {
            path: path.to_owned(),
            socket: None,
            retry_at: None,
            retry_interval,
        };
        this.socket = this.connect();
        if this.socket.is_none() {
            this.retry_at = Some(Instant::now() + retry_interval);
        }
        this
    }

    fn connect(&self) -> Option<UnixDatagram> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        socket.connect(&self.path).ok()?;
        Some(socket)
    }

    /// Sends `datagram`; on failure reconnects once and retries. False: the line was not
    /// taken, and the socket rests until the retry interval has passed.
    fn send(&mut self, datagram: &[u8]) -> bool {
        if let Some(socket) = &self.socket {
            match socket.send(datagram) {
                Ok(_) => return true,
                // A full queue: this line goes elsewhere, the connection is fine.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => self.socket = None,
            }
        } else if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        if let Some(socket) = self.connect() {
            if socket.send(datagram).is_ok() {
                self.socket = Some(socket);
                self.retry_at = None;
                return true;
            }
        }
        self.retry_at = Some(Instant::now() + self.retry_interval);
        false
    }
}

/// Where lines go; see the module comment.
pub struct Sinks {
    journal: Option<Reconnecting>,
    syslog: Reconnecting,
    /// Copy every line to stderr (not when stderr is the journal already).
    copy_to_stderr: bool,
    stderr: Box<dyn Write + Send>,
}

impl Sinks {
    /// Sinks at the given socket paths (`journal`: `None` when not under systemd);
    /// `stderr` receives the fallback and, with `copy_to_stderr`, every line.
    pub fn new(
        journal: Option<&Path>,
        syslog: &Path,
        copy_to_stderr: bool,
        stderr: Box<dyn Write + Send>,
        retry_interval: Duration,
    ) -> Self {
        Sinks {
            journal: journal.map(|path| Reconnecting::new(path, retry_interval)),
            syslog: Reconnecting::new(syslog, retry_interval),
            copy_to_stderr: copy_to_stderr && journal.is_none(),
            stderr,
        }
    }

    /// Writes one line to the first sink that takes it (and to stderr when asked).
    pub fn write(&mut self, level: Level, message: &str) {
        let message = truncate(message, MAX_MESSAGE_BYTES);
        let sent = self
            .journal
            .as_mut()
            .is_some_and(|journal| journal.send(&journal_entry(level, message)))
            || self.syslog.send(syslog_line(level, message).as_bytes());
        if !sent || self.copy_to_stderr {
            let _ = writeln!(
                self.stderr,
                "{IDENT}[{}]: {level}: {message}",
                std::process::id()
            );
        }
    }
}

/// The part of `text` that fits in `max` bytes, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// syslog severity of a `log` level.
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// An RFC 3164 line as syslog(3) sends it to `/dev/log`:
/// `<PRI>Mmm dd hh:mm:ss twofoldd[PID]: message`.
fn syslog_line(level: Level, message: &str) -> String {
    let priority = u32::from(FACILITY_AUTHPRIV) * 8 + u32::from(severity(level));
    format!(
        "<{priority}>{} {IDENT}[{}]: {message}",
        local_timestamp(),
        std::process::id()
    )
}

/// The current local time as RFC 3164 writes it (`Nov  3 09:05:01`).
fn local_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) only returns the time; localtime_r writes into the `tm` we own
    // and returns null (left zeroed) on failure.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let month = MONTHS[usize::try_from(tm.tm_mon).unwrap_or(0).min(11)];
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

/// A journal entry in the native protocol: `KEY=VALUE` lines, or for a value holding a
/// newline `KEY\n`, its length as 64-bit little endian, the value, `\n`.
fn journal_entry(level: Level, message: &str) -> Vec<u8> {
    let mut entry = Vec::with_capacity(message.len() + 160);
    let mut field = |key: &str, value: &str| {
        entry.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            entry.push(b'\n');
            entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            entry.push(b'=');
        }
        entry.extend_from_slice(value.as_bytes());
        entry.push(b'\n');
    };
    field("MESSAGE", message);
    field("PRIORITY", &severity(level).to_string());
    field("SYSLOG_IDENTIFIER", IDENT);
    field("SYSLOG_FACILITY", &FACILITY_AUTHPRIV.to_string());
    if let Some(login) = LoginFields::parse(message) {
        field("USER", login.user);
        field("SERVICE", login.service);
        if !login.rhost.is_empty() {
            field("RHOST", login.rhost);
        }
    }
    entry
}

/// The login a line is about, from the suffix the daemon's login lines end with:
/// `…: user=U service=S rhost=R tty=T` (verified, failed, refused while locked out).
#[derive(Debug, PartialEq)]
struct LoginFields<'a> {
    user: &'a str,
    service: &'a str,
    rhost: &'a str,
}

impl<'a> LoginFields<'a> {
    /// Read from the right, so that a user name holding `rhost=` cannot fake the others
    /// (service, rhost and tty come from root's login context and hold no space).
    fn parse(message: &'a str) -> Option<Self> {
        let (rest, tty) = message.rsplit_once(" tty=")?;
        let (rest, rhost) = rest.rsplit_once(" rhost=")?;
        let (rest, service) = rest.rsplit_once(" service=")?;
        let (_, user) = rest.split_once(": user=")?;
        let spaceless = |value: &str| !value.contains(' ');
        (spaceless(tty) && spaceless(rhost) && spaceless(service) && !user.is_empty()).then_some(
            LoginFields {
                user,
                service,
                rhost,
            },
        )
    }
}

/// Whether systemd connected our stderr to the journal: `JOURNAL_STREAM` (`DEV:INODE`)
/// names the file our stderr is. A child that inherited the variable with another stderr
/// does not count.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from);
    match (
        stderr.and_then(|f| f.metadata()),
        dev.parse::<u64>(),
        ino.parse::<u64>(),
    ) {
        (Ok(meta), Ok(dev), Ok(ino)) => meta.dev() == dev && meta.ino() == ino,
        _ => false,
    }
}

struct DaemonLogger {
    sinks: Mutex<Sinks>,
    level: LevelFilter,
}

impl Log for DaemonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with("twofoldd")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if let Ok(mut sinks) = self.sinks.lock() {
            sinks.write(record.level(), &message);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: the journal under systemd, else `/dev/log`, else stderr;
/// `stderr` copies every line to standard error.
pub fn init(stderr: bool, debug: bool) {
    let journal = stderr_is_journal().then_some(Path::new(JOURNAL_SOCKET));
    init_with_sinks(
        Sinks::new(
            journal,
            Path::new(SYSLOG_SOCKET),
            stderr,
            Box::new(std::io::stderr()),
            RETRY_INTERVAL,
        ),
        debug,
    );
}

/// Installs the logger with syslog at `socket` and no journal (for tests).
pub fn init_with_socket(socket: &Path, stderr: bool, debug: bool) {
    init_with_sinks(
        Sinks::new(
            None,
            socket,
            stderr,
            Box::new(std::io::stderr()),
            RETRY_INTERVAL,
        ),
        debug,
    );
}

fn init_with_sinks(sinks: Sinks, debug: bool) {
    let level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let logger = DaemonLogger {
        sinks: Mutex::new(sinks),
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// A form of untrusted text that is safe to log: control characters escaped, at most
/// 32 characters.
pub fn safe(text: &str) -> String {
    let mut out: String = text.chars().take(32).flat_map(char::escape_debug).collect();
    if text.chars().count() > 32 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;

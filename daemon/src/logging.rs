//! Logging to syslog (facility authpriv, ident `twofoldd`), and to stderr when asked or
//! when no syslog socket exists. Nothing here ever receives a secret or a typed code.

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

type SyslogWriter = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

struct DaemonLogger {
    syslog: Option<Mutex<SyslogWriter>>,
    stderr: bool,
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
        if let Some(syslog) = &self.syslog {
            if let Ok(mut w) = syslog.lock() {
                let _ = match record.level() {
                    Level::Error => w.err(&message),
                    Level::Warn => w.warning(&message),
                    Level::Info => w.info(&message),
                    Level::Debug | Level::Trace => w.debug(&message),
                };
            }
        }
        if self.stderr || self.syslog.is_none() {
            eprintln!(
                "twofoldd[{}]: {}: {message}",
                std::process::id(),
                record.level()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; `stderr` copies every line to standard error.
pub fn init(stderr: bool, debug: bool) {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "twofoldd".into(),
        pid: std::process::id(),
    };
    let syslog = syslog::unix(formatter).ok().map(Mutex::new);
    let level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let logger = DaemonLogger {
        syslog,
        stderr,
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
mod tests {
    use super::safe;

    #[test]
    fn safe_escapes_and_truncates() {
        assert_eq!(safe("alice"), "alice");
        assert_eq!(safe("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(safe(&"x".repeat(40)), format!("{}…", "x".repeat(32)));
    }
}

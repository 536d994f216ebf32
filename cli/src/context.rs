//! The words for what went wrong talking to `twofoldd`: one line a person can act on,
//! and the kind scripts test (`code` under `--json`).

use std::io;
use std::time::Duration;

use twofold_contract::{TwofoldError, BUS_NAME};

use crate::error::Failure;
use crate::options::BusTarget;
use crate::text::{capitalize_first, one_line, suggest};

/// What a message needs to know about the request that failed.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub bus: &'a BusTarget,
    /// `None`: the caller.
    pub user: Option<&'a str>,
}

impl Context<'_> {
    /// "your account" or "user alice".
    pub fn who(&self) -> String {
        match self.user {
            None => "your account".to_owned(),
            Some(u) => format!("user {u}"),
        }
    }

    fn unreachable(&self, reason: &str) -> Failure {
        Failure::coded(
            "unavailable",
            format!(
                "The twofold daemon is not reachable on {}: {}. Is it installed and running?",
                self.bus, reason
            ),
        )
    }

    /// The bus call did not finish in time.
    pub fn timed_out(&self, limit: Duration) -> Failure {
        Failure::coded(
            "unavailable",
            format!(
                "The twofold daemon on {} did not answer within {} seconds. Is it running? \
             (see `systemctl status twofoldd`)",
                self.bus,
                limit.as_secs()
            ),
        )
    }

    /// Connecting to the bus did not finish in time.
    pub fn connect_timed_out(&self, limit: Duration) -> Failure {
        self.unreachable(&format!("no connection within {} seconds", limit.as_secs()))
    }

    /// The message for an error from the daemon or the bus, coded by its kind.
    pub fn failure(&self, err: &TwofoldError) -> Failure {
        let failure = self.failure_text(err);
        let code = match err {
            TwofoldError::ZBus(_) => failure.code(),
            TwofoldError::PermissionDenied(_) => "permission_denied",
            TwofoldError::NotEnrolled(_) => "not_enrolled",
            TwofoldError::InvalidCode(_) => "invalid_code",
            TwofoldError::Locked(_) => "locked",
            TwofoldError::InvalidArgument(_) => "invalid_argument",
            TwofoldError::RateLimited(_) => "rate_limited",
            TwofoldError::UnknownUser(_) => "unknown_user",
            TwofoldError::AlreadyEnrolled(_) => "already_enrolled",
            TwofoldError::NoPendingEnrollment(_) => "no_pending_enrollment",
            TwofoldError::InvalidPassword(_) => "invalid_password",
            TwofoldError::Internal(_) => "internal",
        };
        failure.with_code(code)
    }

    fn failure_text(&self, err: &TwofoldError) -> Failure {
        let detail = |m: &str| {
            let m = one_line(m);
            if m.is_empty() {
                String::new()
            } else {
                format!(" ({m})")
            }
        };
        match err {
            TwofoldError::ZBus(e) => self.bus_failure(e),
            TwofoldError::PermissionDenied(_) => {
                Failure::new("You may only manage your own two-factor settings (or run as root).")
            }
            TwofoldError::NotEnrolled(_) => Failure::new(format!(
                "Two-factor authentication is not set up for {}. Set it up with `twofold enroll`.",
                self.who()
            )),
            TwofoldError::InvalidCode(_) => Failure::new(
                "That code did not match. Check that your phone sets its time automatically.",
            ),
            TwofoldError::Locked(m) => Failure::new(format!(
                "Too many wrong codes: {} is locked for a while{}. Try again later, \
                 or ask an administrator to run `twofold admin unlock`.",
                self.who(),
                detail(m)
            )),
            TwofoldError::InvalidArgument(m) => Failure::new(format!(
                "The twofold daemon refused the request{}.",
                detail(m)
            )),
            TwofoldError::UnknownUser(m) => match self.user {
                Some(u) => Failure::new(format!("There is no user \"{u}\" on this system.")),
                None => Failure::new(format!("Your user is unknown to the daemon{}.", detail(m))),
            },
            TwofoldError::AlreadyEnrolled(_) => Failure::new(format!(
                "Two-factor authentication is already on for {}. To move it to a new phone, \
                 prove it is you with a current code or a backup code: `{}` asks for one \
                 (in scripts: `{}` with the code on standard input), or ask an administrator.",
                self.who(),
                suggest("enroll", self.user),
                suggest("enroll --proof -", self.user)
            )),
            TwofoldError::InvalidPassword(_) => Failure::new(format!(
                "That is not the password of {}. Nothing was changed.",
                self.who()
            )),
            TwofoldError::RateLimited(m) => Failure::new(format!(
                "Too many requests from your user in a short time{}; nothing was changed. \
                 Wait a few seconds and try again.",
                detail(m)
            )),
            TwofoldError::NoPendingEnrollment(_) => Failure::new(
                "There is no enrollment waiting for a code (it may have expired). \
                 Start again with `twofold enroll`.",
            ),
            TwofoldError::Internal(m) => Failure::new(format!(
                "The twofold daemon could not complete the request{}. Its log may say more \
                 (`journalctl -u twofoldd`).",
                detail(m)
            )),
        }
    }

    fn bus_failure(&self, e: &zbus::Error) -> Failure {
        match e {
            zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => {
                self.unreachable(&io_reason(io))
            }
            zbus::Error::Handshake(m) => {
                self.unreachable(&format!("the bus refused the connection ({})", one_line(m)))
            }
            zbus::Error::Address(m) => Failure::new(format!(
                "The bus address is not valid ({}). Check --bus or TWOFOLD_BUS_ADDRESS.",
                one_line(m)
            )),
            zbus::Error::MethodError(name, desc, _) => {
                self.method_error(name.as_str(), desc.as_deref().unwrap_or(""))
            }
            zbus::Error::FDO(fdo) => {
                let name = zbus::DBusError::name(fdo.as_ref());
                let desc = zbus::DBusError::description(fdo.as_ref()).unwrap_or("");
                self.method_error(name.as_str(), desc)
            }
            // A reply that does not decode (zbus 6 flattened zvariant's errors into its own).
            zbus::Error::InvalidReply
            | zbus::Error::IncorrectType
            | zbus::Error::Utf8(_)
            | zbus::Error::PaddingNot0(_)
            | zbus::Error::UnknownFd
            | zbus::Error::SignatureMismatch(..)
            | zbus::Error::OutOfBounds
            | zbus::Error::MaxDepthExceeded(_)
            | zbus::Error::SignatureParse(_)
            | zbus::Error::EmptyStructure
            | zbus::Error::InvalidObjectPath => Failure::new(format!(
                "The twofold daemon on {} sent a reply this program does not understand. \
                 Are the daemon and this program the same version?",
                self.bus
            )),
            other => Failure::new(format!(
                "Talking to the twofold daemon on {} failed: {}",
                self.bus,
                one_line(&other.to_string())
            )),
        }
    }

    fn method_error(&self, name: &str, desc: &str) -> Failure {
        const FDO: &str = "org.freedesktop.DBus.Error.";
        let short = name.strip_prefix(FDO).unwrap_or(name);
        let desc = one_line(desc);
        match short {
            "ServiceUnknown" | "NameHasNoOwner" => {
                self.unreachable(&format!("no service named {BUS_NAME}"))
            }
            "NoReply" | "Timeout" | "TimedOut" => self.unreachable("it did not answer"),
            "Disconnected" => self.unreachable("the bus closed the connection"),
            s if s.starts_with("Spawn.") => Failure::coded(
                "unavailable",
                format!(
                    "The twofold daemon could not be started on {} ({desc}). It logged why: {}.",
                    self.bus,
                    where_the_log_is()
                ),
            ),
            "AccessDenied" => Failure::new(format!(
                "{} refused the request ({desc}). Is twofold's D-Bus policy installed?",
                capitalize_first(&self.bus.to_string())
            )),
            "UnknownMethod" | "UnknownInterface" | "UnknownObject" | "UnknownProperty"
            | "InvalidArgs" => Failure::new(format!(
                "The twofold daemon on {} does not understand this request ({desc}). \
                 Are the daemon and this program the same version?",
                self.bus
            )),
            _ => Failure::new(format!(
                "Unexpected error from {}: {}: {desc}",
                self.bus,
                one_line(name)
            )),
        }
    }
}

/// Where twofoldd's log lines are on this host: the journal under systemd, else the
/// syslog file of facility authpriv.
fn where_the_log_is() -> &'static str {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        "see `journalctl -u twofoldd -b`"
    } else if std::path::Path::new("/var/log/secure").exists() {
        "see /var/log/secure (syslog, facility authpriv)"
    } else {
        "see /var/log/auth.log (syslog, facility authpriv), or run `twofoldd --check-config`"
    }
}

/// A short reason for an I/O error, without "(os error N)".
fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no bus socket at that address".to_owned(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionAborted => "the connection was closed".to_owned(),
        _ => {
            let text = e.to_string();
            let text = match text.find(" (os error") {
                Some(i) => &text[..i],
                None => &text,
            };
            one_line(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx(bus: &BusTarget) -> Context<'_> {
        Context { bus, user: None }
    }

    /// A bus where no daemon answers.
    fn nope_bus() -> BusTarget {
        BusTarget::Address("unix:path=/nope".into())
    }

    /// The error of a daemon that refused the connection.
    fn connection_refused() -> TwofoldError {
        let io = io::Error::from(io::ErrorKind::ConnectionRefused);
        TwofoldError::ZBus(zbus::Error::InputOutput(Arc::new(io)))
    }

    #[test]
    fn daemon_errors_are_friendly() {
        let bus = BusTarget::System;
        let c = ctx(&bus);
        let m = c.failure(&TwofoldError::PermissionDenied("uid 1000 vs bob".into()));
        assert_eq!(
            m.message(),
            "You may only manage your own two-factor settings (or run as root)."
        );
        let m = c.failure(&TwofoldError::Locked("until 12:00\nZ".into()));
        assert!(m.message().contains("(until 12:00 Z)"), "{m}");
        let bob = Context {
            bus: &bus,
            user: Some("bob"),
        };
        let m = bob.failure(&TwofoldError::NotEnrolled(String::new()));
        assert!(m.message().contains("user bob"), "{m}");
        let m = bob.failure(&TwofoldError::UnknownUser(String::new()));
        assert_eq!(m.message(), "There is no user \"bob\" on this system.");
        let m = c.failure(&TwofoldError::InvalidPassword("pam said no".into()));
        assert_eq!(
            m.message(),
            "That is not the password of your account. Nothing was changed."
        );
        let m = bob.failure(&TwofoldError::AlreadyEnrolled(String::new()));
        assert!(
            m.message()
                .contains("`twofold enroll --proof - --user bob`"),
            "{m}"
        );
        assert!(
            m.message().contains("`twofold enroll --user bob` asks"),
            "{m}"
        );
        let m = c.failure(&TwofoldError::InvalidCode(String::new()));
        assert!(m.message().starts_with("That code did not match."), "{m}");
        let m = c.failure(&TwofoldError::RateLimited("try again in 2 s\n".into()));
        assert_eq!(
            m.message(),
            "Too many requests from your user in a short time (try again in 2 s); nothing \
             was changed. Wait a few seconds and try again."
        );
    }

    #[test]
    fn unreachable_daemon() {
        let bus = nope_bus();
        let c = ctx(&bus);
        let m = c.failure(&connection_refused());
        assert_eq!(
            m.message(),
            "The twofold daemon is not reachable on the bus at unix:path=/nope: \
             connection refused. Is it installed and running?"
        );
        let fdo = zbus::fdo::Error::ServiceUnknown("The name is not activatable".into());
        let m = c.failure(&TwofoldError::ZBus(zbus::Error::FDO(Box::new(fdo))));
        assert!(
            m.message()
                .contains("not reachable on the bus at unix:path=/nope: no service named"),
            "{m}"
        );
        let fdo = zbus::fdo::Error::NameHasNoOwner("x".into());
        let m = c.failure(&TwofoldError::ZBus(zbus::Error::FDO(Box::new(fdo))));
        assert!(m.message().contains("Is it installed and running?"), "{m}");
        let m = c.timed_out(Duration::from_secs(25));
        assert!(m.message().contains("within 25 seconds"), "{m}");
    }
    #[test]
    fn a_daemon_that_cannot_start_points_to_its_log() {
        let bus = nope_bus();
        let c = ctx(&bus);
        let spawn = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.Spawn.ChildExited")
                .unwrap(),
            Some("Process org.twofold.Twofold1 exited with status 1".into()),
            zbus::message::Message::method_call("/", "Ping")
                .build(&())
                .unwrap(),
        );
        let m = c.failure(&TwofoldError::ZBus(spawn));
        assert_eq!(m.code(), "unavailable");
        assert!(
            m.message().contains("exited with status 1"),
            "{}",
            m.message()
        );
        assert!(
            m.message().contains("journalctl -u twofoldd") || m.message().contains("/var/log/"),
            "{}",
            m.message()
        );
    }

    #[test]
    fn failures_carry_their_kind() {
        let bus = nope_bus();
        let c = ctx(&bus);
        assert_eq!(c.failure(&connection_refused()).code(), "unavailable");
        assert_eq!(
            c.failure(&TwofoldError::Locked("x".into())).code(),
            "locked"
        );
        let limited = c.failure(&TwofoldError::RateLimited("x".into()));
        assert_eq!(limited.code(), "rate_limited");
        assert_eq!(Failure::new("x").code(), "failed");
    }

    #[test]
    fn io_reasons_drop_os_error_numbers() {
        let e = io::Error::from_raw_os_error(libc_enoexec());
        assert!(!io_reason(&e).contains("os error"));
    }

    /// ENOEXEC on Linux: an errno without a dedicated `ErrorKind` arm above.
    fn libc_enoexec() -> i32 {
        8
    }
}

//! Module arguments from the `/etc/pam.d/*` line.
//!
//! Everything the module is told comes from here and nowhere else: in particular the
//! bus address and the socket path are never read from the environment (setuid hosts
//! such as `su` inherit the caller's environment).

use std::time::Duration;

use crate::text::safe_bytes;

/// Default prompt shown when asking for the code.
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// Default prompt with `forward_pass` (google-authenticator-libpam's wording): one hidden
/// answer holding the account password followed by the code.
pub const FORWARD_PASS_PROMPT: &str = "Password & verification code: ";
/// Default bound of each daemon phase.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Smallest accepted `timeout=`, in seconds.
pub const MIN_TIMEOUT_SECS: f64 = 0.1;
/// Largest accepted `timeout=`, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 300.0;
/// Largest accepted `grace=`, in seconds (12 hours; the daemon keeps passes that long).
pub const MAX_GRACE_SECS: u32 = 12 * 3600;

/// What to do when `twofoldd` cannot be asked (unreachable, slow, wrong owner). Never
/// consulted when the daemon answers that it is broken (its store failed): that fails
/// closed always, or a full disk would be a way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse the login: `PAM_AUTHINFO_UNAVAIL` (the default).
    Secure,
    /// Let the rest of the stack decide: `PAM_IGNORE`.
    Safe,
}

/// Longest `socket=` path (a unix socket address holds 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Parsed module arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `twofoldd`'s direct socket, tried first (`socket=`, default
    /// [`twofold_contract::DIRECT_SOCKET`]); None with a `bus=` and no `socket=`: that
    /// bus only.
    pub socket: Option<String>,
    /// D-Bus address of the bus `twofoldd` is on (`bus=`): the fallback when the socket
    /// is absent or refuses.
    pub bus: String,
    /// Bound of each daemon phase (`timeout=`).
    pub timeout: Duration,
    /// `failmode=secure|safe`.
    pub failmode: FailMode,
    /// Users who are not enrolled pass with `PAM_IGNORE` (`nullok`).
    pub nullok: bool,
    /// Text of the code prompt (`prompt=`); with `forward_pass` and no `prompt=`,
    /// [`FORWARD_PASS_PROMPT`].
    pub prompt: String,
    /// One prompt for `password` + `code`; the password part is handed on as
    /// `PAM_AUTHTOK` to the next module (`forward_pass`).
    pub forward_pass: bool,
    /// Step-by-step log lines (`debug`).
    pub debug: bool,
    /// The uid the owner of `org.twofold.Twofold1` must run as (`daemon_uid=`).
    pub daemon_uid: u32,
    /// Seconds within which a pass for the same service on the same terminal, or from
    /// the same remote host, spares the code (`grace=`; 0 = off).
    pub grace: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            socket: Some(twofold_contract::DIRECT_SOCKET.to_owned()),
            bus: twofold_contract::SYSTEM_BUS_ADDRESS.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            failmode: FailMode::Secure,
            nullok: false,
            prompt: DEFAULT_PROMPT.to_owned(),
            forward_pass: false,
            debug: false,
            daemon_uid: 0,
            grace: 0,
        }
    }
}

impl Options {
    /// Parses the module arguments. Never fails: unknown or malformed arguments are
    /// returned as warnings (for the log) and a malformed known option keeps its default.
    /// With `forward_pass` and no valid `prompt=`, the prompt is [`FORWARD_PASS_PROMPT`].
    /// A valid `bus=` without a valid `socket=` means that bus only (no socket).
    pub fn parse<A: AsRef<[u8]>>(args: &[A]) -> (Options, Vec<String>) {
        let mut opts = Options::default();
        let (mut prompt_given, mut bus_given, mut socket_given) = (false, false, false);
        let mut warnings = Vec::new();
        for raw in args {
            let raw = raw.as_ref();
            let Ok(arg) = std::str::from_utf8(raw) else {
                warnings.push(format!(
                    "ignoring option that is not UTF-8: \"{}\"",
                    safe_bytes(raw, 64)
                ));
                continue;
            };
            match opts.apply(arg) {
                Ok(()) => {
                    prompt_given |= arg.starts_with("prompt=");
                    bus_given |= arg.starts_with("bus=");
                    socket_given |= arg.starts_with("socket=");
                }
                Err(w) => warnings.push(w),
            }
        }
        if bus_given && !socket_given {
            opts.socket = None;
        }
        if opts.forward_pass && !prompt_given {
            opts.prompt = FORWARD_PASS_PROMPT.to_owned();
        }
        (opts, warnings)
    }

    fn apply(&mut self, arg: &str) -> Result<(), String> {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        let shown = || crate::text::safe_str(arg, 64);
        // `why` may quote the value (zbus's address errors do): escape it like the value.
        let malformed = |why: &str| {
            format!(
                "ignoring malformed option \"{}\": {}",
                shown(),
                crate::text::safe_str(why, 96)
            )
        };
        match (key, value) {
            ("nullok", None) => self.nullok = true,
            ("debug", None) => self.debug = true,
            ("forward_pass", None) => self.forward_pass = true,
            ("nullok" | "debug" | "forward_pass", Some(_)) => {
                return Err(malformed("takes no value"))
            }
            ("bus", Some(v)) => {
                check_bus_address(v).map_err(|why| malformed(&why))?;
                self.bus = v.to_owned();
            }
            ("socket", Some(v)) => {
                check_socket_path(v).map_err(&malformed)?;
                self.socket = Some(v.to_owned());
            }
            ("timeout", Some(v)) => {
                self.timeout = parse_timeout(v).ok_or_else(|| {
                    malformed(&format!(
                        "expected seconds between {MIN_TIMEOUT_SECS} and {MAX_TIMEOUT_SECS}"
                    ))
                })?
            }
            ("failmode", Some("secure")) => self.failmode = FailMode::Secure,
            ("failmode", Some("safe")) => self.failmode = FailMode::Safe,
            ("failmode", Some(_)) => return Err(malformed("expected secure or safe")),
            ("prompt", Some("")) => return Err(malformed("empty prompt")),
            ("prompt", Some(v)) => self.prompt = v.to_owned(),
            ("daemon_uid", Some(v)) => {
                self.daemon_uid = v
                    .parse::<u32>()
                    .map_err(|_| malformed("expected a numeric uid"))?;
            }
            ("grace", Some(v)) => {
                self.grace = v
                    .parse::<u32>()
                    .ok()
                    .filter(|g| *g <= MAX_GRACE_SECS)
                    .ok_or_else(|| {
                        malformed(&format!("expected seconds from 0 to {MAX_GRACE_SECS}"))
                    })?;
            }
            (
                "bus" | "socket" | "timeout" | "failmode" | "prompt" | "daemon_uid" | "grace",
                None,
            ) => {
                return Err(malformed("needs a value"));
            }
            _ => return Err(format!("ignoring unknown option \"{}\"", shown())),
        }
        Ok(())
    }
}

/// `timeout=` value: decimal seconds, finite, within the allowed range.
fn parse_timeout(v: &str) -> Option<Duration> {
    // Plain decimal numbers only: no "inf", "nan", exponents or signs.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = v.parse().ok()?;
    if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// `socket=`: an absolute path that fits in a unix socket address.
fn check_socket_path(v: &str) -> Result<(), &'static str> {
    if !v.starts_with('/') {
        return Err("expected an absolute path");
    }
    if v.len() > MAX_SOCKET_PATH || v.contains('\0') {
        return Err("not a usable socket path");
    }
    Ok(())
}

/// The module only speaks to unix-socket buses: other transports either spawn
/// processes (`unixexec:`), resolve names in a helper thread (`tcp:`) or cannot carry
/// the credentials the owner check relies on.
pub(crate) fn check_bus_address(v: &str) -> Result<(), String> {
    use zbus::address::transport::{Transport, UnixSocket};
    let addr: zbus::Address = v.parse().map_err(|e: zbus::Error| e.to_string())?;
    match addr.transport() {
        Transport::Unix(unix) => match unix.path() {
            UnixSocket::File(_) | UnixSocket::Abstract(_) => Ok(()),
            _ => Err("only unix:path= and unix:abstract= addresses are supported".to_owned()),
        },
        _ => Err("only unix:path= and unix:abstract= addresses are supported".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Options, Vec<String>) {
        Options::parse(args)
    }

    #[test]
    fn defaults() {
        let (o, w) = parse(&[]);
        assert!(w.is_empty());
        assert_eq!(o.socket.as_deref(), Some("/run/twofold/twofoldd.socket"));
        assert_eq!(o.bus, "unix:path=/run/dbus/system_bus_socket");
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(o.failmode, FailMode::Secure);
        assert!(!o.nullok);
        assert!(!o.debug);
        assert_eq!(o.prompt, "Verification code: ");
        assert!(!o.forward_pass);
        assert_eq!(o.daemon_uid, 0);
    }

    #[test]
    fn all_known_options() {
        let (o, w) = parse(&[
            "bus=unix:path=/tmp/test.sock",
            "timeout=0.5",
            "failmode=safe",
            "nullok",
            "prompt=Code (2FA): ",
            "debug",
            "daemon_uid=1234",
            "forward_pass",
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(o.forward_pass);
        assert_eq!(o.bus, "unix:path=/tmp/test.sock");
        assert_eq!(o.socket, None, "bus= alone means that bus only");
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert_eq!(o.failmode, FailMode::Safe);
        assert!(o.nullok);
        assert!(o.debug);
        assert_eq!(o.prompt, "Code (2FA): ");
        assert_eq!(o.daemon_uid, 1234);
    }

    #[test]
    fn prompt_keeps_everything_after_the_first_equals() {
        let (o, w) = parse(&["prompt=a=b: "]);
        assert!(w.is_empty());
        assert_eq!(o.prompt, "a=b: ");
    }

    #[test]
    fn abstract_bus_and_failmode_secure() {
        let (o, w) = parse(&["bus=unix:abstract=twofold-test", "failmode=secure"]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.bus, "unix:abstract=twofold-test");
        assert_eq!(o.failmode, FailMode::Secure);
    }

    #[test]
    fn timeout_bounds_and_formats() {
        for (v, ok) in [
            ("5", Some(5000)),
            ("0.1", Some(100)),
            ("300", Some(300_000)),
            ("12.25", Some(12_250)),
            ("0.05", None),
            ("0", None),
            ("300.5", None),
            ("-1", None),
            ("inf", None),
            ("NaN", None),
            ("1e1", None),
            ("", None),
            ("five", None),
            ("1.2.3", None),
        ] {
            let (o, w) = parse(&[&format!("timeout={v}")]);
            match ok {
                Some(ms) => {
                    assert!(w.is_empty(), "{v}: {w:?}");
                    assert_eq!(o.timeout, Duration::from_millis(ms), "{v}");
                }
                None => {
                    assert_eq!(w.len(), 1, "{v}");
                    assert!(w[0].contains("malformed"), "{v}: {w:?}");
                    assert_eq!(o.timeout, DEFAULT_TIMEOUT, "{v}");
                }
            }
        }
    }

    #[test]
    fn malformed_known_options_keep_defaults() {
        let (o, w) = parse(&[
            "failmode=open",
            "daemon_uid=-1",
            "daemon_uid=root",
            "bus=tcp:host=localhost,port=1",
            "bus=unix:tmpdir=/tmp",
            "bus=nonsense",
            "bus=",
            "prompt=",
            "nullok=yes",
            "debug=1",
            "forward_pass=1",
            "timeout",
            "bus",
            "socket",
            "socket=",
            "socket=relative/path",
            "socket=/a/path/longer/than/a/unix/socket/address/can/hold/0123456789012345678901234567890123456789012345678901234567890123456789",
        ]);
        assert_eq!(w.len(), 17, "{w:?}");
        assert!(w.iter().all(|l| l.contains("malformed")), "{w:?}");
        assert_eq!(o, Options::default());
    }

    #[test]
    fn unknown_options_are_warnings_not_errors() {
        let (o, w) = parse(&[
            "use_first_pass",
            "frobnicate=1",
            "try_first_pass",
            "grace=-1",
        ]);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].contains("unknown option \"use_first_pass\""));
        assert!(w[1].contains("unknown option \"frobnicate=1\""));
        assert!(w[2].contains("unknown option \"try_first_pass\""));
        assert!(w[3].contains("malformed"));
        assert_eq!(o, Options::default());
    }

    #[test]
    fn forward_pass_flag_and_its_prompt() {
        let (o, w) = parse(&["forward_pass"]);
        assert!(w.is_empty(), "{w:?}");
        assert!(o.forward_pass);
        assert_eq!(o.prompt, "Password & verification code: ");
        // prompt= wins, wherever it stands.
        for args in [
            ["forward_pass", "prompt=Password+OTP: "],
            ["prompt=Password+OTP: ", "forward_pass"],
        ] {
            let (o, w) = parse(&args);
            assert!(w.is_empty(), "{w:?}");
            assert!(o.forward_pass);
            assert_eq!(o.prompt, "Password+OTP: ");
        }
        // A malformed prompt= does not count as given.
        let (o, w) = parse(&["prompt=", "forward_pass"]);
        assert_eq!(w.len(), 1);
        assert_eq!(o.prompt, FORWARD_PASS_PROMPT);
        // Without forward_pass nothing changes.
        assert_eq!(parse(&["nullok"]).0.prompt, DEFAULT_PROMPT);
    }

    #[test]
    fn non_utf8_and_control_characters_are_escaped_in_warnings() {
        // The last one: zbus's error for a bad address quotes the value (found by fuzzing).
        let args: [&[u8]; 3] = [b"bad\xff\x1b[31m", b"x\nforged log line", b"bus=uni\x05x:"];
        let (o, w) = Options::parse(&args);
        assert_eq!(o, Options::default());
        assert_eq!(w.len(), 3);
        for line in &w {
            assert!(!line.chars().any(char::is_control), "{line}");
        }
        assert!(w[0].contains("\\xff"), "{w:?}");
    }

    #[test]
    fn socket_then_bus_unless_a_bus_alone_is_named() {
        let (o, w) = parse(&["socket=/run/test/twofoldd.socket"]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.socket.as_deref(), Some("/run/test/twofoldd.socket"));
        assert_eq!(o.bus, Options::default().bus);

        for args in [
            ["bus=unix:path=/tmp/bus", "socket=/tmp/direct"],
            ["socket=/tmp/direct", "bus=unix:path=/tmp/bus"],
        ] {
            let (o, w) = parse(&args);
            assert!(w.is_empty(), "{w:?}");
            assert_eq!(o.socket.as_deref(), Some("/tmp/direct"));
            assert_eq!(o.bus, "unix:path=/tmp/bus");
        }
        // A malformed socket= is not "given": the bus alone, as asked.
        let (o, w) = parse(&["bus=unix:path=/tmp/bus", "socket=tmp/direct"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(o.socket, None);
        // A malformed bus= is not "given" either: the defaults stay.
        let (o, w) = parse(&["bus=nonsense"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(o.socket, Options::default().socket);
    }

    #[test]
    fn grace_seconds() {
        assert_eq!(parse(&["grace=300"]).0.grace, 300);
        assert_eq!(parse(&["grace=0"]).0.grace, 0);
        for bad in ["grace=43201", "grace=1.5", "grace=", "grace"] {
            let (o, w) = parse(&[bad]);
            assert_eq!((o.grace, w.len()), (0, 1), "{bad}");
        }
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let (o, _) = parse(&["timeout=2", "timeout=3", "failmode=safe", "failmode=secure"]);
        assert_eq!(o.timeout, Duration::from_secs(3));
        assert_eq!(o.failmode, FailMode::Secure);
    }
}

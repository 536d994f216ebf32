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
/// Smallest accepted `timeout=`.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Largest accepted `timeout=`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
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
        // `why` may quote the value (the address errors do): escape it like the value.
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
                parse_bus_address(v).map_err(|why| malformed(&why))?;
                self.bus = v.to_owned();
            }
            ("socket", Some(v)) => {
                check_socket_path(v).map_err(&malformed)?;
                self.socket = Some(v.to_owned());
            }
            ("timeout", Some(v)) => {
                self.timeout = parse_timeout(v).ok_or_else(|| {
                    malformed(&format!(
                        "expected seconds between {} and {}",
                        seconds_text(MIN_TIMEOUT),
                        seconds_text(MAX_TIMEOUT)
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

/// `timeout=` value: decimal seconds (at most nanosecond precision), within the allowed
/// range. Parsed without floating point: no "inf", "nan", exponents or signs, and no
/// float parsing code in a module loaded by every sshd and sudo.
fn parse_timeout(v: &str) -> Option<Duration> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    if v.ends_with('.') {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    let timeout = Duration::new(secs, nanos);
    (MIN_TIMEOUT..=MAX_TIMEOUT)
        .contains(&timeout)
        .then_some(timeout)
}

/// `d` in seconds, as a person writes them (0.1, 300).
pub fn seconds_text(d: Duration) -> String {
    let millis = d.subsec_millis();
    if millis == 0 {
        return d.as_secs().to_string();
    }
    let fraction = format!("{millis:03}");
    format!("{}.{}", d.as_secs(), fraction.trim_end_matches('0'))
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

/// A unix socket to connect to: a file, or a name in the abstract namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketTarget {
    Path(String),
    Abstract(Vec<u8>),
}

const UNIX_ONLY: &str = "only unix:path= and unix:abstract= addresses are supported";

/// Parses a D-Bus address (`bus=`). The module only speaks to unix-socket buses: other
/// transports either spawn processes (`unixexec:`), resolve names (`tcp:`) or cannot
/// carry the credentials the owner check relies on. One address, whose value may be
/// escaped (`%2f`); its `guid=`, if any, is not checked (the owner's uid is).
pub fn parse_bus_address(v: &str) -> Result<SocketTarget, String> {
    if v.contains(';') {
        return Err("one address only".to_owned());
    }
    let Some(pairs) = v.strip_prefix("unix:") else {
        return Err(UNIX_ONLY.to_owned());
    };
    let mut target = None;
    for pair in pairs.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("\"{pair}\" is not key=value"));
        };
        let value = unescape(value)?;
        let found = match key {
            "path" => SocketTarget::Path(
                String::from_utf8(value).map_err(|_| "the path is not UTF-8".to_owned())?,
            ),
            "abstract" => SocketTarget::Abstract(value),
            "guid" => continue,
            _ => return Err(UNIX_ONLY.to_owned()),
        };
        if target.replace(found).is_some() {
            return Err("more than one socket in the address".to_owned());
        }
    }
    match target {
        Some(SocketTarget::Path(p)) if p.is_empty() || p.len() > MAX_SOCKET_PATH => {
            Err("not a usable socket path".to_owned())
        }
        Some(SocketTarget::Abstract(n)) if n.len() >= MAX_SOCKET_PATH => {
            Err("abstract name too long".to_owned())
        }
        Some(t) => Ok(t),
        None => Err(UNIX_ONLY.to_owned()),
    }
}

/// Undoes D-Bus address escaping (`%` and two hex digits; NUL never).
fn unescape(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad %-escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err("a NUL byte in the address".to_owned());
    }
    Ok(out)
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
            (".5", None),
            ("5.", None),
            ("0.1234567891", None),
            ("0.125000000", Some(125)),
            ("99999999999999999999", None),
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
        // The last one: an error for a bad address may quote the value (found by fuzzing).
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
    fn bus_addresses_are_unix_sockets_only() {
        let ok = |v: &str| parse_bus_address(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(
            ok("unix:path=/run/dbus/system_bus_socket"),
            SocketTarget::Path("/run/dbus/system_bus_socket".into())
        );
        assert_eq!(
            ok("unix:abstract=twofold-test,guid=0123456789abcdef0123456789abcdef"),
            SocketTarget::Abstract(b"twofold-test".to_vec())
        );
        assert_eq!(
            ok("unix:path=/tmp/a%20b"),
            SocketTarget::Path("/tmp/a b".into())
        );
        for bad in [
            "unix:path=/a;unix:path=/b",
            "unix:path=/a,abstract=b",
            "unix:path=/a%2",
            "unix:path=/a%zz",
            "unix:path=/a%00",
            "unix:path=",
            "unix:tmpdir=/tmp",
            "unix:runtime=yes",
            "unix:",
            "unix:path",
            "tcp:host=localhost,port=1",
            "unixexec:path=/bin/sh",
        ] {
            assert!(parse_bus_address(bad).is_err(), "{bad}");
        }
        let long = format!("unix:path=/{}", "a".repeat(MAX_SOCKET_PATH));
        assert!(parse_bus_address(&long).is_err());
    }

    #[test]
    fn seconds_are_written_as_people_write_them() {
        assert_eq!(seconds_text(MIN_TIMEOUT), "0.1");
        assert_eq!(seconds_text(MAX_TIMEOUT), "300");
        assert_eq!(seconds_text(Duration::from_millis(12_250)), "12.25");
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

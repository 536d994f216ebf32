//! Validated options: what the parsed flags mean together, checked before any bus call.

use std::fmt;

use twofold_contract::{MAX_CODE_LEN, MAX_USER_LEN};
use zbus::Address;
use zeroize::Zeroizing;

use crate::cli::{Cli, Commands, EnrollArgs, StatusArgs, UserArg};

/// Longest issuer name accepted (it ends up in the authenticator app's list).
pub const MAX_ISSUER_LEN: usize = 128;

/// A usage error: the message is shown as `twofold: <message>`, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// Which bus to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusTarget {
    /// The system bus (`zbus::Connection::system()`).
    System,
    /// An explicit address from `--bus` or `TWOFOLD_BUS_ADDRESS`; the text as given.
    Address(String),
}

impl fmt::Display for BusTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusTarget::System => f.write_str("the system bus"),
            BusTarget::Address(a) => write!(f, "the bus at {a}"),
        }
    }
}

/// What `twofold enroll` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollMode {
    /// Show the QR code, ask for a code, print backup codes.
    Interactive,
    /// Print the secret and URI only.
    Begin,
    /// Confirm with this code (digits only, spaces removed).
    Confirm(Zeroizing<String>),
}

/// The action to run, with its validated arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Enroll {
        user: Option<String>,
        /// Empty: the daemon picks the host name.
        issuer: String,
        mode: EnrollMode,
    },
    Status {
        user: Option<String>,
    },
}

/// Everything the actions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub bus: BusTarget,
    pub json: bool,
    pub action: Action,
}

impl Options {
    /// Checks the parsed command line.
    pub fn from_cli(cli: Cli) -> Result<Options, UsageError> {
        let bus = validate_bus(cli.bus.as_deref())?;
        let action = match cli.command {
            Commands::Enroll(args) => validate_enroll(args, cli.json)?,
            Commands::Status(StatusArgs { user }) => Action::Status {
                user: validate_user(user)?,
            },
        };
        Ok(Options {
            bus,
            json: cli.json,
            action,
        })
    }

    /// The user the action is about, `None` for the caller.
    pub fn user(&self) -> Option<&str> {
        match &self.action {
            Action::Enroll { user, .. } | Action::Status { user } => user.as_deref(),
        }
    }
}

fn validate_bus(bus: Option<&str>) -> Result<BusTarget, UsageError> {
    let Some(bus) = bus else {
        return Ok(BusTarget::System);
    };
    let bus = bus.trim();
    if bus.is_empty() {
        return usage(
            "--bus (or TWOFOLD_BUS_ADDRESS) is empty; give a D-Bus address such as \
             unix:path=/run/dbus/system_bus_socket, or leave it out for the system bus",
        );
    }
    if bus.parse::<Address>().is_err() {
        return usage(format!(
            "\"{}\" is not a valid D-Bus address; example: unix:path=/run/dbus/system_bus_socket",
            one_line(bus)
        ));
    }
    Ok(BusTarget::Address(bus.to_owned()))
}

fn validate_user(arg: UserArg) -> Result<Option<String>, UsageError> {
    let Some(user) = arg.user else {
        return Ok(None);
    };
    if user.is_empty() {
        return usage("--user needs a user name (leave it out to act on yourself)");
    }
    if user.len() > MAX_USER_LEN {
        return usage(format!(
            "--user: a user name has at most {MAX_USER_LEN} characters"
        ));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return usage("--user: a user name cannot contain spaces or control characters");
    }
    Ok(Some(user))
}

fn validate_issuer(issuer: Option<String>) -> Result<String, UsageError> {
    let Some(issuer) = issuer else {
        return Ok(String::new());
    };
    let issuer = issuer.trim();
    if issuer.is_empty() {
        return usage("--issuer needs a name (leave it out to use this host's name)");
    }
    if issuer.chars().count() > MAX_ISSUER_LEN {
        return usage(format!(
            "--issuer: the name has at most {MAX_ISSUER_LEN} characters"
        ));
    }
    if issuer.chars().any(char::is_control) {
        return usage("--issuer: the name cannot contain control characters");
    }
    if issuer.contains(':') {
        return usage("--issuer: the name cannot contain ':' (authenticator apps split on it)");
    }
    Ok(issuer.to_owned())
}

fn validate_enroll(args: EnrollArgs, json: bool) -> Result<Action, UsageError> {
    let EnrollArgs {
        user,
        issuer,
        begin,
        confirm,
    } = args;
    let user = validate_user(user)?;
    let issuer = validate_issuer(issuer)?;
    let mode = match (begin, confirm) {
        (true, Some(_)) => return usage("--begin and --confirm cannot be used together"),
        (true, None) => EnrollMode::Begin,
        (false, Some(code)) => {
            let code = Zeroizing::new(code);
            match normalize_code(&code, None) {
                Ok(code) => EnrollMode::Confirm(code),
                Err(e) => return usage(format!("--confirm: {e}")),
            }
        }
        (false, None) => {
            if json {
                return usage(
                    "--json needs --begin or --confirm CODE with enroll \
                     (interactive enrollment is for people)",
                );
            }
            EnrollMode::Interactive
        }
    };
    Ok(Action::Enroll { user, issuer, mode })
}

/// Digits of a TOTP code as typed: spaces are dropped (`123 456`). `digits` is the
/// expected length when known (from the URI), else 6 to 8 digits are accepted.
pub fn normalize_code(input: &str, digits: Option<usize>) -> Result<Zeroizing<String>, String> {
    let expected = match digits {
        Some(n) => format!("{n}-digit"),
        None => "6-digit".to_owned(),
    };
    if input.len() > MAX_CODE_LEN {
        return Err(format!("that is too long for a {expected} code"));
    }
    let code: Zeroizing<String> =
        Zeroizing::new(input.chars().filter(|c| !c.is_whitespace()).collect());
    if code.is_empty() {
        return Err(format!("enter the {expected} code shown by your app"));
    }
    if !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "a code has digits only; enter the {expected} code shown by your app"
        ));
    }
    let ok = match digits {
        Some(n) => code.len() == n,
        None => (6..=8).contains(&code.len()),
    };
    if !ok {
        return Err(format!(
            "that has {} digits; enter the {expected} code shown by your app",
            code.len()
        ));
    }
    Ok(code)
}

/// `text` on one line, without control characters, at most 300 characters: for messages
/// that carry text from elsewhere (the daemon, the bus, the command line).
pub fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    for (i, c) in text.trim().chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        let mut argv = vec!["twofold"];
        argv.extend_from_slice(args);
        Options::from_cli(Cli::try_parse_from(argv).expect("clap accepts"))
    }

    #[test]
    fn defaults() {
        let o = parse(&["status"]).unwrap();
        // The environment of the test run may set TWOFOLD_BUS_ADDRESS.
        if std::env::var_os(crate::cli::BUS_ENV).is_none() {
            assert_eq!(o.bus, BusTarget::System);
        }
        assert!(!o.json);
        assert_eq!(o.action, Action::Status { user: None });
        assert_eq!(o.user(), None);
    }

    #[test]
    fn bus_address_is_checked() {
        let o = parse(&["--bus", "unix:path=/tmp/bus", "status"]).unwrap();
        assert_eq!(o.bus, BusTarget::Address("unix:path=/tmp/bus".into()));
        assert!(parse(&["--bus", "", "status"]).is_err());
        assert!(parse(&["--bus", "nonsense", "status"]).is_err());
        let e = parse(&["--bus", "bogus:x=1\n", "status"]).unwrap_err();
        assert!(!e.0.contains('\n'), "{e}");
    }

    #[test]
    fn user_is_checked() {
        let o = parse(&["status", "--user", "alice"]).unwrap();
        assert_eq!(o.user(), Some("alice"));
        assert!(parse(&["status", "--user", ""]).is_err());
        assert!(parse(&["status", "--user", "a b"]).is_err());
        assert!(parse(&["status", "--user", "a\u{1b}[2J"]).is_err());
        let long = "a".repeat(MAX_USER_LEN + 1);
        assert!(parse(&["status", "--user", &long]).is_err());
    }

    #[test]
    fn enroll_modes() {
        let o = parse(&["enroll"]).unwrap();
        assert_eq!(
            o.action,
            Action::Enroll {
                user: None,
                issuer: String::new(),
                mode: EnrollMode::Interactive
            }
        );
        let o = parse(&["enroll", "--begin", "--issuer", " Example Corp ", "--json"]).unwrap();
        assert!(o.json);
        assert_eq!(
            o.action,
            Action::Enroll {
                user: None,
                issuer: "Example Corp".into(),
                mode: EnrollMode::Begin
            }
        );
        let o = parse(&["enroll", "--confirm", "123 456", "--user", "bob"]).unwrap();
        assert_eq!(
            o.action,
            Action::Enroll {
                user: Some("bob".into()),
                issuer: String::new(),
                mode: EnrollMode::Confirm(Zeroizing::new("123456".into()))
            }
        );
    }

    #[test]
    fn interactive_enroll_refuses_json() {
        assert!(parse(&["enroll", "--json"]).is_err());
    }

    #[test]
    fn issuer_is_checked() {
        assert!(parse(&["enroll", "--issuer", ""]).is_err());
        assert!(parse(&["enroll", "--issuer", "a:b"]).is_err());
        assert!(parse(&["enroll", "--issuer", "a\tb"]).is_err());
        let long = "x".repeat(MAX_ISSUER_LEN + 1);
        assert!(parse(&["enroll", "--issuer", &long]).is_err());
    }

    #[test]
    fn confirm_code_is_checked() {
        for bad in [
            "",
            "12345",
            "123456789",
            "12345a",
            "１２３４５６",
            "-123456",
        ] {
            let arg = format!("--confirm={bad}");
            let parsed = Cli::try_parse_from(["twofold", "enroll", &arg]);
            assert!(
                parsed.map_or(true, |cli| Options::from_cli(cli).is_err()),
                "accepted {bad:?}"
            );
        }
        for good in ["123456", " 123 456 ", "12345678"] {
            assert!(parse(&["enroll", "--confirm", good]).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn code_length_follows_the_uri() {
        assert_eq!(
            normalize_code("123 456", Some(6)).unwrap().as_str(),
            "123456"
        );
        assert!(normalize_code("1234567", Some(6)).is_err());
        assert!(normalize_code("12345678", Some(8)).is_ok());
        assert!(normalize_code(&"1".repeat(MAX_CODE_LEN + 1), None).is_err());
    }

    #[test]
    fn one_line_strips_controls() {
        assert_eq!(one_line(" a\nb\u{1b}c "), "a b c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }
}

//! Validated options: what the parsed flags mean together, checked before any bus call.
//! They read the clap definitions ([`crate::cli`]) and leaf helpers only; the commands
//! read them.

pub mod admin;
pub mod devices;
pub mod sessions;
pub mod setup;
pub mod tokens;
pub mod usage;

use std::fmt;
use std::path::PathBuf;

use zbus::Address;

use crate::cli::{
    BackupCodesArgs, BackupCodesCommand, Cli, Commands, DisableArgs, DoctorArgs, EnrollArgs,
    RegenerateArgs, StatusArgs, UserArg, YesNo,
};
use crate::options::usage::{usage, validate_user};
use crate::text::one_line;

pub use crate::options::admin::AdminAction;
pub use crate::options::devices::DevicesAction;
pub use crate::options::sessions::SessionsAction;
use crate::options::setup::{from_stdin, validate_setup};
pub use crate::options::setup::{EnrollMode, QrFiles, Setup};
pub use crate::options::usage::UsageError;

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

/// Paths and overrides of `twofold doctor` (hidden options, for tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorOptions {
    /// `None`: /etc/pam.d.
    pub pam_dir: Option<PathBuf>,
    /// `None`: `sshd -T` when root, else /etc/ssh/sshd_config.
    pub sshd_config: Option<PathBuf>,
    /// `Some`: the server clock's NTP state, without asking the system.
    pub assume_ntp_synced: Option<bool>,
    /// `None`: /etc/twofold/twofoldd.toml.
    pub daemon_config: Option<PathBuf>,
}

/// The action to run, with its validated arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Enroll {
        user: Option<String>,
        setup: Setup,
    },
    Status {
        user: Option<String>,
    },
    BackupCodesCount {
        user: Option<String>,
    },
    BackupCodesRegenerate {
        user: Option<String>,
        /// The code is on standard input (`--code -`).
        code_stdin: bool,
    },
    Disable {
        user: Option<String>,
        yes: bool,
        password_stdin: bool,
        /// The code is on standard input (`--code -`), after the password if that is too.
        code_stdin: bool,
    },
    Doctor {
        user: Option<String>,
        doctor: DoctorOptions,
    },
    Sessions {
        user: Option<String>,
        action: SessionsAction,
    },
    Devices {
        user: Option<String>,
        action: DevicesAction,
    },
    Admin {
        /// The user acted on (`reset`, `unlock`, `log --user`), for messages.
        user: Option<String>,
        action: AdminAction,
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
            Commands::Sessions(args) => {
                let (user, action) = sessions::validate(args)?;
                Action::Sessions { user, action }
            }
            Commands::Admin(args) => {
                let (user, action) = admin::validate(args)?;
                Action::Admin { user, action }
            }
            Commands::Enroll(args) => validate_enroll(args, cli.json)?,
            Commands::Devices(args) => {
                let (user, action) = devices::validate(args, cli.json)?;
                Action::Devices { user, action }
            }
            Commands::Status(StatusArgs { user }) => Action::Status {
                user: validate_user(user)?,
            },
            Commands::BackupCodes(args) => validate_backup_codes(args)?,
            Commands::Disable(args) => validate_disable(args)?,
            Commands::Doctor(DoctorArgs {
                user,
                pam_dir,
                sshd_config,
                assume_ntp_synced,
                daemon_config,
            }) => Action::Doctor {
                user: validate_user(user)?,
                doctor: DoctorOptions {
                    pam_dir,
                    sshd_config,
                    assume_ntp_synced: assume_ntp_synced.map(|v| v == YesNo::Yes),
                    daemon_config,
                },
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
            Action::Enroll { user, .. }
            | Action::Status { user }
            | Action::BackupCodesCount { user }
            | Action::BackupCodesRegenerate { user, .. }
            | Action::Disable { user, .. }
            | Action::Doctor { user, .. }
            | Action::Sessions { user, .. }
            | Action::Devices { user, .. }
            | Action::Admin { user, .. } => user.as_deref(),
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

fn validate_enroll(args: EnrollArgs, json: bool) -> Result<Action, UsageError> {
    let EnrollArgs { user, setup } = args;
    Ok(Action::Enroll {
        user: validate_user(user)?,
        setup: validate_setup(setup, "enroll", json)?,
    })
}

fn validate_backup_codes(args: BackupCodesArgs) -> Result<Action, UsageError> {
    let BackupCodesArgs { command, user } = args;
    let pick = |inner: UserArg| -> Result<Option<String>, UsageError> {
        match (validate_user(user.clone())?, validate_user(inner)?) {
            (Some(a), Some(b)) if a != b => usage(format!(
                "--user is given twice, as \"{a}\" and \"{b}\"; give it once"
            )),
            (a, b) => Ok(b.or(a)),
        }
    };
    Ok(match command {
        None => Action::BackupCodesCount {
            user: pick(UserArg::default())?,
        },
        Some(BackupCodesCommand::Count(StatusArgs { user: inner })) => {
            Action::BackupCodesCount { user: pick(inner)? }
        }
        Some(BackupCodesCommand::Regenerate(RegenerateArgs { user: inner, code })) => {
            Action::BackupCodesRegenerate {
                user: pick(inner)?,
                code_stdin: from_stdin("--code", code, ", or leave it out to be asked")?,
            }
        }
    })
}

fn validate_disable(args: DisableArgs) -> Result<Action, UsageError> {
    let DisableArgs {
        user,
        yes,
        password_stdin,
        code,
    } = args;
    Ok(Action::Disable {
        user: validate_user(user)?,
        yes,
        password_stdin,
        code_stdin: from_stdin("--code", code, ", or leave it out to be asked")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use twofold_contract::{limits, OathParams};

    /// `twofold ARGS`, parsed by clap and checked (for the submodules' tests too).
    pub(super) fn parse(args: &[&str]) -> Result<Options, UsageError> {
        let mut argv = vec!["twofold"];
        argv.extend_from_slice(args);
        Options::from_cli(Cli::try_parse_from(argv).expect("clap accepts"))
    }

    /// The set-up `mode` gets without other flags (for the submodules' tests too).
    pub(super) fn plain_setup(mode: EnrollMode) -> Setup {
        Setup {
            issuer: String::new(),
            mode,
            proof_stdin: false,
            qr: QrFiles::default(),
            oath: OathParams::app(),
        }
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
        assert!(parse(&["status", "--user", "a\tb"]).is_err());
        assert!(parse(&["status", "--user", "a\u{1b}[2J"]).is_err());
        let long = "a".repeat(limits::MAX_USER_LEN + 1);
        assert!(parse(&["status", "--user", &long]).is_err());
    }

    #[test]
    fn enroll_modes() {
        let o = parse(&["enroll"]).unwrap();
        assert_eq!(
            o.action,
            Action::Enroll {
                user: None,
                setup: plain_setup(EnrollMode::Interactive),
            }
        );
        let o = parse(&["enroll", "--begin", "--issuer", " Example Corp ", "--json"]).unwrap();
        assert!(o.json);
        assert_eq!(
            o.action,
            Action::Enroll {
                user: None,
                setup: Setup {
                    issuer: "Example Corp".into(),
                    ..plain_setup(EnrollMode::Begin)
                },
            }
        );
        let o = parse(&["enroll", "--confirm", "-", "--user", "bob", "--json"]).unwrap();
        assert_eq!(
            o.action,
            Action::Enroll {
                user: Some("bob".into()),
                setup: plain_setup(EnrollMode::Confirm),
            }
        );
    }

    #[test]
    fn enroll_parameters_default_to_an_apps_and_are_checked() {
        let o = parse(&[
            "enroll",
            "--algorithm",
            "sha256",
            "--digits",
            "8",
            "--period",
            "60",
        ])
        .unwrap();
        let Action::Enroll { setup, .. } = o.action else {
            panic!("{:?}", o.action);
        };
        let Setup { oath, .. } = setup;
        let expected = OathParams {
            algorithm: "SHA256".into(),
            digits: 8,
            period: 60,
            counter: 0,
        };
        assert_eq!(oath, expected);
        for (flag, value) in [
            ("--digits", "7"),
            ("--period", "0"),
            ("--period", "90"),
            ("--algorithm", "MD5"),
        ] {
            let e = parse(&["enroll", flag, value]).unwrap_err();
            assert!(e.0.starts_with(&format!("{flag}: ")), "{e}");
            assert!(!e.0.contains('\n'), "{e}");
        }
        // They go with the start of an enrollment, not its confirmation.
        assert!(
            Cli::try_parse_from(["twofold", "enroll", "--confirm", "-", "--digits", "8"]).is_err()
        );
    }

    #[test]
    fn enroll_proof_and_qr_files() {
        let o = parse(&[
            "enroll", "--proof", "-", "--qr-png", "a.png", "--qr-svg", "a.svg",
        ])
        .unwrap();
        match o.action {
            Action::Enroll { setup, .. } => {
                assert!(setup.proof_stdin);
                assert_eq!(setup.qr.png, Some(PathBuf::from("a.png")));
                assert_eq!(setup.qr.svg, Some(PathBuf::from("a.svg")));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["enroll", "--qr-png", "x", "--qr-svg", "x"]).is_err());
        // clap itself refuses an empty path.
        assert!(Cli::try_parse_from(["twofold", "enroll", "--qr-png", ""]).is_err());
        assert!(parse(&["enroll", "--qr-png", "/tmp/.."]).is_err());
        assert!(
            Cli::try_parse_from(["twofold", "enroll", "--confirm", "-", "--proof", "-"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["twofold", "enroll", "--confirm", "-", "--qr-png", "x"]).is_err()
        );
    }

    #[test]
    fn backup_codes_commands() {
        let o = parse(&["backup-codes"]).unwrap();
        assert_eq!(o.action, Action::BackupCodesCount { user: None });
        let o = parse(&["backup-codes", "count", "--user", "bob"]).unwrap();
        assert_eq!(o.user(), Some("bob"));
        let o = parse(&["backup-codes", "--user", "bob", "count"]).unwrap();
        assert_eq!(o.user(), Some("bob"));
        assert!(parse(&["backup-codes", "--user", "bob", "count", "--user", "eve"]).is_err());
        let o = parse(&["backup-codes", "regenerate", "--code", "-"]).unwrap();
        assert_eq!(
            o.action,
            Action::BackupCodesRegenerate {
                user: None,
                code_stdin: true
            }
        );
        let o = parse(&["backup-codes", "regenerate"]).unwrap();
        assert_eq!(
            o.action,
            Action::BackupCodesRegenerate {
                user: None,
                code_stdin: false
            }
        );
    }

    #[test]
    fn disable_flags() {
        let o = parse(&["disable", "--yes", "--password-stdin", "--code", "-"]).unwrap();
        assert_eq!(
            o.action,
            Action::Disable {
                user: None,
                yes: true,
                password_stdin: true,
                code_stdin: true
            }
        );
        let o = parse(&["disable", "-y", "--user", "bob"]).unwrap();
        assert_eq!(o.user(), Some("bob"));
    }

    #[test]
    fn doctor_hidden_options() {
        let o = parse(&[
            "doctor",
            "--pam-dir",
            "/tmp/pam.d",
            "--sshd-config",
            "/tmp/sshd_config",
            "--assume-ntp-synced",
            "yes",
        ])
        .unwrap();
        assert_eq!(
            o.action,
            Action::Doctor {
                user: None,
                doctor: DoctorOptions {
                    pam_dir: Some("/tmp/pam.d".into()),
                    sshd_config: Some("/tmp/sshd_config".into()),
                    assume_ntp_synced: Some(true),
                    daemon_config: None,
                }
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
        // The daemon's bound, from the contract: 64 passes, 65 is refused in one line.
        let longest = "x".repeat(limits::MAX_ISSUER_LEN);
        assert!(parse(&["enroll", "--issuer", &longest]).is_ok());
        let long = "x".repeat(limits::MAX_ISSUER_LEN + 1);
        let e = parse(&["enroll", "--issuer", &long]).unwrap_err();
        assert!(e.0.starts_with("--issuer: ") && e.0.contains("64"), "{e}");
    }

    #[test]
    fn codes_are_never_taken_from_the_command_line() {
        let secret = "k7qm-x2fp-9d";
        for flags in [
            &["enroll", "--confirm"][..],
            &["enroll", "--proof"],
            &["enroll", "--begin", "--proof"],
            &["backup-codes", "regenerate", "--code"],
            &["disable", "--code"],
        ] {
            for value in ["123456", secret, ""] {
                let mut args = flags.to_vec();
                let arg = format!("{}={value}", args.pop().unwrap());
                args.push(&arg);
                let mut argv = vec!["twofold"];
                argv.extend_from_slice(&args);
                let cli = Cli::try_parse_from(argv).expect("clap takes any value");
                let e = Options::from_cli(cli).unwrap_err();
                let flag = arg.split('=').next().unwrap();
                assert!(
                    e.0.contains(&format!("give `{flag} -`")) && !e.0.contains('\n'),
                    "{args:?}: {e}"
                );
                if !value.is_empty() {
                    assert!(!e.0.contains(value), "the code is repeated: {e}");
                }
            }
        }
        assert_eq!(
            parse(&["enroll", "--confirm", "-"]).unwrap().action,
            Action::Enroll {
                user: None,
                setup: plain_setup(EnrollMode::Confirm),
            }
        );
    }
}

//! `twofold devices`' arguments, checked: list, add, remove.

use twofold_contract::limits;

use crate::cli::{DeviceAddArgs, DeviceRemoveArgs, DevicesArgs, DevicesCommand, UserArg};
use crate::options::setup::{from_stdin, validate_setup, Setup};
use crate::options::usage::{validate_user, UsageError};
use crate::text::one_line;

/// What `twofold devices` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesAction {
    List,
    Add {
        name: String,
        setup: Setup,
    },
    Remove {
        name: String,
        /// The proof is on standard input (`--code -`).
        code_stdin: bool,
    },
}

/// Checks the parsed `twofold devices` arguments: the user (`None` for the caller) and
/// the action.
pub fn validate(
    args: DevicesArgs,
    json: bool,
) -> Result<(Option<String>, DevicesAction), UsageError> {
    let user = validate_user(UserArg { user: args.user })?;
    let action = match args.command {
        None | Some(DevicesCommand::List) => DevicesAction::List,
        Some(DevicesCommand::Add(DeviceAddArgs { name, setup })) => DevicesAction::Add {
            name: validate_name(&name)?,
            setup: validate_setup(setup, "devices add", json)?,
        },
        Some(DevicesCommand::Remove(DeviceRemoveArgs { name, code })) => DevicesAction::Remove {
            name: validate_name(&name)?,
            code_stdin: from_stdin("--code", code, ", or leave it out to be asked")?,
        },
    };
    Ok((user, action))
}

fn validate_name(name: &str) -> Result<String, UsageError> {
    let name = name.trim();
    limits::device_name(name).map_err(|e| UsageError(format!("\"{}\": {e}", one_line(name))))?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::{parse, plain_setup};
    use crate::options::{Action, EnrollMode};

    #[test]
    fn list_is_the_default() {
        for args in [
            &["devices"][..],
            &["devices", "list"],
            &["devices", "--user", "bob"],
        ] {
            let o = parse(args).unwrap();
            let Action::Devices { action, .. } = o.action else {
                panic!("{args:?}");
            };
            assert_eq!(action, DevicesAction::List);
        }
        assert_eq!(
            parse(&["devices", "--user", "bob"]).unwrap().user(),
            Some("bob")
        );
    }

    #[test]
    fn add_takes_enrolls_flags_and_a_checked_name() {
        let o = parse(&["devices", "add", "spare", "--begin", "--json"]).unwrap();
        assert_eq!(
            o.action,
            Action::Devices {
                user: None,
                action: DevicesAction::Add {
                    name: "spare".into(),
                    setup: plain_setup(EnrollMode::Begin),
                },
            }
        );
        assert!(parse(&["devices", "add", "my phone"]).is_err());
        assert!(parse(&["devices", "add", "x", "--json"]).is_err());
        assert!(parse(&["devices", "add", "x", "--proof", "123456"]).is_err());
        let long = "a".repeat(limits::MAX_DEVICE_NAME_LEN + 1);
        assert!(parse(&["devices", "add", &long]).is_err());
    }

    #[test]
    fn remove_takes_its_code_from_standard_input_only() {
        let o = parse(&["devices", "remove", "old", "--code", "-"]).unwrap();
        assert_eq!(
            o.action,
            Action::Devices {
                user: None,
                action: DevicesAction::Remove {
                    name: "old".into(),
                    code_stdin: true,
                },
            }
        );
        let e = parse(&["devices", "remove", "old", "--code", "123456"]).unwrap_err();
        assert!(!e.0.contains("123456"), "{e}");
    }
}

//! `twofold admin tokens`'s arguments, checked.

use std::path::PathBuf;

use twofold_contract::limits;

use crate::cli::{TokensArgs, TokensCommand, TokensImportArgs};
use crate::options::usage::{usage, validate_name, UsageError};

/// What `twofold admin tokens` does, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokensAction {
    List,
    Import(TokensImport),
    Assign {
        serial: String,
        user: String,
    },
    Unassign {
        serial: String,
    },
    Resync {
        serial: String,
        /// Two consecutive codes; empty: asked for.
        codes: Vec<String>,
    },
}

/// How the seeds of a PSKC file are decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Plain, or a password asked for on the terminal when the file needs one.
    None,
    /// The pre-shared AES key, hex, in this file.
    KeyFile(PathBuf),
    /// The password, the first line of this file.
    PasswordFile(PathBuf),
}

/// `twofold admin tokens import`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensImport {
    pub file: PathBuf,
    pub key: KeySource,
    pub dry_run: bool,
}

fn validate_serial(serial: &str) -> Result<String, UsageError> {
    limits::token_serial(serial).map_err(|e| UsageError(format!("SERIAL: {e}")))?;
    Ok(serial.to_owned())
}

/// Checks the parsed `twofold admin tokens` arguments: the user acted on (`assign`, for
/// messages) and the action.
pub fn validate(args: TokensArgs) -> Result<(Option<String>, TokensAction), UsageError> {
    Ok(match args.command {
        None | Some(TokensCommand::List) => (None, TokensAction::List),
        Some(TokensCommand::Import(TokensImportArgs {
            file,
            key_file,
            password_file,
            dry_run,
        })) => {
            let key = match (key_file, password_file) {
                (Some(path), None) => KeySource::KeyFile(path),
                (None, Some(path)) => KeySource::PasswordFile(path),
                (None, None) => KeySource::None,
                (Some(_), Some(_)) => return usage("give --key-file or --password-file, not both"),
            };
            let import = TokensImport { file, key, dry_run };
            (None, TokensAction::Import(import))
        }
        Some(TokensCommand::Assign { serial, user }) => {
            let user = validate_name("USER", &user)?;
            let action = TokensAction::Assign {
                serial: validate_serial(&serial)?,
                user: user.clone(),
            };
            (Some(user), action)
        }
        Some(TokensCommand::Unassign { serial }) => (
            None,
            TokensAction::Unassign {
                serial: validate_serial(&serial)?,
            },
        ),
        Some(TokensCommand::Resync { serial, codes }) => {
            for code in &codes {
                if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return usage("CODE: a token's code is its digits (6 or 8), as shown");
                }
            }
            (
                None,
                TokensAction::Resync {
                    serial: validate_serial(&serial)?,
                    codes,
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_from, AdminCommand, Commands};

    fn tokens(args: &[&str]) -> Result<(Option<String>, TokensAction), UsageError> {
        let mut argv = vec!["twofold", "admin", "tokens"];
        argv.extend_from_slice(args);
        let cli = parse_from(argv).map_err(|e| UsageError(e.to_string()))?;
        let Commands::Admin(admin) = cli.command else {
            panic!("admin")
        };
        let AdminCommand::Tokens(t) = admin.command else {
            panic!("tokens")
        };
        validate(t)
    }

    #[test]
    fn the_subcommands_and_their_checks() {
        assert_eq!(tokens(&[]).unwrap().1, TokensAction::List);
        assert_eq!(tokens(&["list"]).unwrap().1, TokensAction::List);
        assert_eq!(
            tokens(&["import", "f.pskc", "--key-file", "k", "--dry-run"])
                .unwrap()
                .1,
            TokensAction::Import(TokensImport {
                file: "f.pskc".into(),
                key: KeySource::KeyFile("k".into()),
                dry_run: true
            })
        );
        assert!(tokens(&["import", "f", "--key-file", "k", "--password-file", "p"]).is_err());
        assert_eq!(
            tokens(&["assign", "987654321", "alice"]).unwrap(),
            (
                Some("alice".into()),
                TokensAction::Assign {
                    serial: "987654321".into(),
                    user: "alice".into()
                }
            )
        );
        assert!(tokens(&["assign", "9 8", "alice"]).is_err());
        assert!(tokens(&["unassign", "-x"]).is_err());
        assert_eq!(
            tokens(&["resync", "987654321"]).unwrap().1,
            TokensAction::Resync {
                serial: "987654321".into(),
                codes: vec![]
            }
        );
        assert!(tokens(&["resync", "987654321", "123456"]).is_err());
        assert!(tokens(&["resync", "987654321", "12345a", "123456"]).is_err());
        assert!(tokens(&["resync", "987654321", "755224", "287082"]).is_ok());
    }
}

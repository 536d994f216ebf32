//! `twofold admin`'s arguments, checked: users, reset, unlock, import, log.

use std::path::PathBuf;

use twofold_contract::limits::{self, MAX_AUDIT_LIMIT, MAX_BYPASS_HOURS};

use crate::cli::{
    AdminArgs, AdminCommand, AdminLogArgs, AdminResetArgs, GoogleAuthenticatorArgs, ImportCommand,
    OathArgs,
};
use crate::options::usage::{usage, validate_name, UsageError};
use crate::text::one_line;
use crate::time::{now, parse_since};

/// Audit entries shown when `--limit` is not given.
pub const DEFAULT_LOG_LIMIT: u32 = 100;

/// What `twofold admin` does, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    Users,
    Reset {
        user: String,
        reason: String,
        /// 0: no bypass code.
        bypass_hours: u32,
    },
    Unlock {
        user: String,
    },
    ImportGoogleAuthenticator(GoogleAuthenticatorImport),
    ImportOath(OathImport),
    Tokens(crate::options::tokens::TokensAction),
    Log {
        /// `None`: everyone.
        user: Option<String>,
        /// Unix time; 0 = from the start.
        since: i64,
        limit: u32,
    },
}

/// Whose google-authenticator files to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportUsers {
    /// Every user of the user database who has a file.
    All,
    /// These users, in this order, each with the file named by `--file` or `None` for
    /// `~/.google_authenticator`.
    Named(Vec<(String, Option<PathBuf>)>),
}

/// `twofold admin import google-authenticator`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleAuthenticatorImport {
    pub users: ImportUsers,
    pub remove_files: bool,
    pub dry_run: bool,
}

/// `twofold admin import oath`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OathImport {
    /// pam_oath's usersfile.
    pub file: PathBuf,
    /// The users imported from it, in this order; empty: all of its users.
    pub users: Vec<String>,
    pub dry_run: bool,
}

/// Checks the parsed `twofold admin` arguments: the user acted on (`reset`, `unlock`,
/// `log --user`, for messages) and the action.
pub fn validate(args: AdminArgs) -> Result<(Option<String>, AdminAction), UsageError> {
    validate_at(args, now())
}

fn validate_at(args: AdminArgs, now: i64) -> Result<(Option<String>, AdminAction), UsageError> {
    let action = match args.command {
        AdminCommand::Users => AdminAction::Users,
        AdminCommand::Reset(AdminResetArgs {
            user,
            reason,
            bypass_code,
        }) => AdminAction::Reset {
            user: validate_name("USER", &user)?,
            reason: validate_reason(&reason)?,
            bypass_hours: match bypass_code {
                None => 0,
                Some(h) => parse_hours(&h)?,
            },
        },
        AdminCommand::Unlock { user } => AdminAction::Unlock {
            user: validate_name("USER", &user)?,
        },
        AdminCommand::Import(import) => match import.command {
            ImportCommand::GoogleAuthenticator(args) => {
                AdminAction::ImportGoogleAuthenticator(validate_google_authenticator(args)?)
            }
            ImportCommand::Oath(args) => AdminAction::ImportOath(validate_oath(args)?),
        },
        AdminCommand::Tokens(args) => {
            let (user, action) = crate::options::tokens::validate(args)?;
            return Ok((user, AdminAction::Tokens(action)));
        }
        AdminCommand::Log(AdminLogArgs { user, since, limit }) => AdminAction::Log {
            user: user.map(|u| validate_name("--user", &u)).transpose()?,
            since: match since {
                None => 0,
                Some(t) => parse_since(&t, now).map_err(|e| UsageError(format!("--since: {e}")))?,
            },
            limit: match limit {
                None => DEFAULT_LOG_LIMIT,
                Some(n) => parse_limit(&n)?,
            },
        },
    };
    let user = match &action {
        AdminAction::Reset { user, .. } | AdminAction::Unlock { user } => Some(user.clone()),
        AdminAction::Log { user, .. } => user.clone(),
        AdminAction::Users
        | AdminAction::ImportGoogleAuthenticator(_)
        | AdminAction::ImportOath(_)
        | AdminAction::Tokens(_) => None,
    };
    Ok((user, action))
}

fn validate_google_authenticator(
    args: GoogleAuthenticatorArgs,
) -> Result<GoogleAuthenticatorImport, UsageError> {
    let users = if args.all {
        ImportUsers::All
    } else {
        let mut named: Vec<(String, Option<PathBuf>)> = Vec::new();
        for user in &args.users {
            named.push((validate_name("USER", user)?, None));
        }
        for spec in &args.file {
            let Some((user, path)) = spec.split_once('=').filter(|(_, p)| !p.is_empty()) else {
                return usage(format!(
                    "--file \"{}\" is not USER=PATH (for example carol=/srv/ga/carol)",
                    one_line(spec)
                ));
            };
            named.push((validate_name("--file", user)?, Some(PathBuf::from(path))));
        }
        if named.is_empty() {
            return usage("name the users to import, or give --all or --file USER=PATH");
        }
        for (i, (user, _)) in named.iter().enumerate() {
            if named[..i].iter().any(|(earlier, _)| earlier == user) {
                return usage(format!("{user} is named twice"));
            }
        }
        ImportUsers::Named(named)
    };
    Ok(GoogleAuthenticatorImport {
        users,
        remove_files: args.remove_files,
        dry_run: args.dry_run,
    })
}

fn validate_oath(args: OathArgs) -> Result<OathImport, UsageError> {
    let mut users: Vec<String> = Vec::new();
    for user in &args.users {
        let user = validate_name("USER", user)?;
        if users.contains(&user) {
            return usage(format!("{user} is named twice"));
        }
        users.push(user);
    }
    Ok(OathImport {
        file: args.usersfile,
        users,
        dry_run: args.dry_run,
    })
}

fn validate_reason(reason: &str) -> Result<String, UsageError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return usage(
            "--reason needs a text: why, and who checked the user's identity \
             (it goes into the audit trail)",
        );
    }
    limits::reason(reason).map_err(|e| UsageError(format!("--reason: {e}")))?;
    Ok(reason.to_owned())
}

fn parse_hours(text: &str) -> Result<u32, UsageError> {
    let t = text.trim();
    let t = t.strip_suffix('h').unwrap_or(t);
    match t.parse::<u32>() {
        Ok(h) if (1..=MAX_BYPASS_HOURS).contains(&h) => Ok(h),
        _ => usage(format!(
            "--bypass-code: \"{}\" is not a number of hours from 1 to {MAX_BYPASS_HOURS} \
             (how long the one-time code stays valid)",
            one_line(text)
        )),
    }
}

fn parse_limit(text: &str) -> Result<u32, UsageError> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => Ok(n),
        _ => usage(format!(
            "--limit: \"{}\" is not a number of entries from 1 to {MAX_AUDIT_LIMIT}",
            one_line(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    const NOW: i64 = 1_800_000_000; // 2027-01-15 08:00:00 UTC

    fn parse(args: &[&str]) -> Result<AdminAction, UsageError> {
        let mut argv = vec!["twofold", "admin"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("clap accepts");
        match cli.command {
            crate::cli::Commands::Admin(a) => validate_at(a, NOW).map(|(_, action)| action),
            other => panic!("{other:?}"),
        }
    }

    /// `admin import KIND ARGS…` parsed.
    fn parse_import(kind: &str, args: &[&str]) -> Result<AdminAction, UsageError> {
        let argv: Vec<&str> = ["import", kind].iter().chain(args).copied().collect();
        parse(&argv)
    }

    /// Whether clap itself refuses `admin import KIND ARGS…`.
    fn clap_refuses_import(kind: &str, args: &[&str]) -> bool {
        let head = ["twofold", "admin", "import", kind];
        Cli::try_parse_from(head.iter().chain(args)).is_err()
    }

    #[test]
    fn google_authenticator_imports_parse() {
        let import = |args: &[&str]| parse_import("google-authenticator", args);
        assert_eq!(
            import(&["--all", "--dry-run"]).unwrap(),
            AdminAction::ImportGoogleAuthenticator(GoogleAuthenticatorImport {
                users: ImportUsers::All,
                remove_files: false,
                dry_run: true
            })
        );
        assert_eq!(
            import(&["alice", "--file", "carol=/srv/ga/carol", "--remove-files"]).unwrap(),
            AdminAction::ImportGoogleAuthenticator(GoogleAuthenticatorImport {
                users: ImportUsers::Named(vec![
                    ("alice".into(), None),
                    ("carol".into(), Some(PathBuf::from("/srv/ga/carol")))
                ]),
                remove_files: true,
                dry_run: false
            })
        );
        assert!(import(&[]).unwrap_err().0.contains("--all"));
        assert!(import(&["--file", "carol"])
            .unwrap_err()
            .0
            .contains("USER=PATH"));
        assert!(import(&["--file", "=/x"]).is_err());
        assert!(import(&["alice", "--file", "alice=/x"]).is_err());
        let clap_refuses = |args: &[&str]| clap_refuses_import("google-authenticator", args);
        assert!(clap_refuses(&["--all", "alice"]));
        assert!(clap_refuses(&["--dry-run", "--remove-files", "alice"]));
    }

    #[test]
    fn oath_imports_parse() {
        let import = |args: &[&str]| parse_import("oath", args);
        assert_eq!(
            import(&["/etc/users.oath", "--dry-run"]).unwrap(),
            AdminAction::ImportOath(OathImport {
                file: PathBuf::from("/etc/users.oath"),
                users: Vec::new(),
                dry_run: true
            })
        );
        assert_eq!(
            import(&["/etc/users.oath", "alice", "bob"]).unwrap(),
            AdminAction::ImportOath(OathImport {
                file: PathBuf::from("/etc/users.oath"),
                users: vec!["alice".into(), "bob".into()],
                dry_run: false
            })
        );
        assert!(import(&["/etc/users.oath", "alice", "alice"])
            .unwrap_err()
            .0
            .contains("twice"));
        let clap_refuses = |args: &[&str]| clap_refuses_import("oath", args);
        assert!(clap_refuses(&[]));
        assert!(clap_refuses(&["/etc/users.oath", "--remove-files"]));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&["users"]).unwrap(), AdminAction::Users);
        assert_eq!(
            parse(&["reset", "alice", "--reason", " lost phone "]).unwrap(),
            AdminAction::Reset {
                user: "alice".into(),
                reason: "lost phone".into(),
                bypass_hours: 0
            }
        );
        assert_eq!(
            parse(&["reset", "alice", "--reason", "x", "--bypass-code", "24"]).unwrap(),
            AdminAction::Reset {
                user: "alice".into(),
                reason: "x".into(),
                bypass_hours: 24
            }
        );
        assert_eq!(
            parse(&["unlock", "bob"]).unwrap(),
            AdminAction::Unlock { user: "bob".into() }
        );
        assert_eq!(
            parse(&["log"]).unwrap(),
            AdminAction::Log {
                user: None,
                since: 0,
                limit: DEFAULT_LOG_LIMIT
            }
        );
        assert_eq!(
            parse(&["log", "--user", "bob", "--since", "2h", "--limit", "5"]).unwrap(),
            AdminAction::Log {
                user: Some("bob".into()),
                since: NOW - 7200,
                limit: 5
            }
        );
    }

    #[test]
    fn bad_arguments_are_one_line_usage_errors() {
        for args in [
            &["reset", "alice", "--reason", "  "][..],
            &["reset", "alice", "--reason", "a\nb"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "0"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "721"],
            &["reset", "alice", "--reason", "x", "--bypass-code", "two"],
            &["reset", "a\u{1b}b", "--reason", "x"],
            &["unlock", ""],
            &["log", "--since", "yesterday"],
            &["log", "--since", "5"],
            &["log", "--limit", "0"],
            &["log", "--user", ""],
        ] {
            let e = parse(args).unwrap_err();
            assert!(!e.0.contains('\n'), "{args:?}: {e}");
        }
        let long = "x".repeat(limits::MAX_REASON_LEN + 1);
        assert!(parse(&["reset", "alice", "--reason", &long]).is_err());
        // USER and --reason are required by clap itself.
        assert!(Cli::try_parse_from(["twofold", "admin", "reset", "alice"]).is_err());
        assert!(Cli::try_parse_from(["twofold", "admin", "unlock"]).is_err());
        assert!(Cli::try_parse_from(["twofold", "admin"]).is_err());
    }
}

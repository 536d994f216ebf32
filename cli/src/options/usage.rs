//! Usage errors, and the check of a user name that every command shares.

use std::fmt;

use twofold_contract::limits;

use crate::cli::UserArg;

/// A usage error: the message is shown as `twofold: <message>`, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Refuses the command line with `message`.
pub fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// The user name given as `what` (`USER`, `--user`), checked by the daemon's own rules.
pub fn validate_name(what: &str, user: &str) -> Result<String, UsageError> {
    if user.is_empty() {
        return usage(format!("{what} needs a user name"));
    }
    limits::user_name(user).map_err(|e| UsageError(format!("{what}: {e}")))?;
    Ok(user.to_owned())
}

/// `--user`: `None` (the caller) when not given.
pub fn validate_user(arg: UserArg) -> Result<Option<String>, UsageError> {
    match arg.user {
        None => Ok(None),
        Some(user) if user.is_empty() => {
            usage("--user needs a user name (leave it out to act on yourself)")
        }
        Some(user) => validate_name("--user", &user).map(Some),
    }
}

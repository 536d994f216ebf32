//! `twofold sessions`' arguments, checked: list, revoke, timeout, forget.

use std::path::PathBuf;

use twofold_contract::limits::{self, MAX_SESSION_TIMEOUT};

use crate::cli::{SessionsArgs, SessionsCommand, UserArg};
use crate::options::usage::{validate_user, UsageError};
use crate::pam_config::PAM_DIR;
use crate::text::one_line;
use crate::time::sum_of_units;

/// What `twofold sessions` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsAction {
    List {
        all: bool,
        /// Where a `grace=` window is looked for (the remembered logins are shown only
        /// when one is configured).
        pam_dir: PathBuf,
    },
    Revoke {
        id: String,
    },
    RevokeOthers,
    /// Seconds; 0 = off.
    Timeout {
        seconds: u64,
    },
    Forget,
}

/// Checks the parsed `twofold sessions` arguments: the user (`None` for the caller) and
/// the action.
pub fn validate(args: SessionsArgs) -> Result<(Option<String>, SessionsAction), UsageError> {
    let user = validate_user(UserArg { user: args.user })?;
    let pam_dir = args.pam_dir.unwrap_or_else(|| PathBuf::from(PAM_DIR));
    let action = match args.command {
        None => SessionsAction::List {
            all: args.all,
            pam_dir,
        },
        Some(SessionsCommand::List { all }) => SessionsAction::List {
            all: all || args.all,
            pam_dir,
        },
        Some(SessionsCommand::Revoke { others: true, .. }) => SessionsAction::RevokeOthers,
        Some(SessionsCommand::Revoke { id, .. }) => {
            let id = id.unwrap_or_default();
            let id = id.trim();
            if limits::session_id(id).is_err() {
                return Err(UsageError(format!(
                    "\"{}\" is not a session id; `twofold sessions` lists them",
                    one_line(id)
                )));
            }
            SessionsAction::Revoke {
                id: id.to_ascii_lowercase(),
            }
        }
        Some(SessionsCommand::Timeout { duration }) => SessionsAction::Timeout {
            seconds: parse_duration(&duration).map_err(UsageError)?,
        },
        Some(SessionsCommand::Forget) => SessionsAction::Forget,
    };
    Ok((user, action))
}

/// `30s`, `10m`, `8h`, `2d`, `1h30m`, a plain number of seconds, or `off` (0).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "off" | "none" | "0") {
        return Ok(0);
    }
    let bad = || {
        format!(
            "\"{}\" is not a duration; examples: 30m, 8h, 1d, 1h30m, or off",
            one_line(text)
        )
    };
    let total = match sum_of_units(&t).ok_or_else(bad)? {
        // A bare number at the end counts seconds.
        (units, Some(seconds)) => units.checked_add(seconds).ok_or_else(bad)?,
        (units, None) => units,
    };
    if total == 0 {
        return Err(bad());
    }
    if total > MAX_SESSION_TIMEOUT {
        return Err(format!(
            "a session timeout is at most {} days",
            MAX_SESSION_TIMEOUT / 86_400
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("off"), Ok(0));
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("8h"), Ok(8 * 3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(2 * 86_400));
        assert_eq!(parse_duration("90"), Ok(90));
        for bad in [
            "",
            "h",
            "5x",
            "-5m",
            "1.5h",
            "0s",
            "400d",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

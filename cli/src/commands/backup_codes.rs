//! `twofold backup-codes count` and `twofold backup-codes regenerate`.

use std::io::{BufRead, Write};

use serde::Serialize;
use twofold_contract::{TwofoldError, UserStatus, BACKUP_CODES_LOW};

use crate::bus::Daemon;
use crate::codes::normalize_proof;
use crate::commands::enroll::write_backup_codes;
use crate::error::Failure;
use crate::json::write_json;
use crate::output::write_out;
use crate::prompt::{
    ask_until_accepted, proof_from_stdin, Checked, Unanswered, PROOF_PROMPT, TRIES,
};
use crate::text::suggest;

/// `backup-codes count --json`.
#[derive(Debug, Serialize)]
pub struct CountJson<'a> {
    pub user: &'a str,
    pub backup_codes_left: u32,
    /// 3 or fewer left: time to regenerate.
    pub low: bool,
}

/// "Only 2 backup codes are left" and the like; `None` when there are enough.
pub fn low_warning(left: u32, user: Option<&str>) -> Option<String> {
    if left > BACKUP_CODES_LOW {
        return None;
    }
    let few = match left {
        0 => "No backup codes are left".to_owned(),
        1 => "Only 1 backup code is left".to_owned(),
        n => format!("Only {n} backup codes are left"),
    };
    Some(format!(
        "{few}. Run `{}` to get a new set.",
        suggest("backup-codes regenerate", user)
    ))
}

/// The count for people.
pub fn count_text(s: &UserStatus, user: Option<&str>) -> String {
    let mut t = match s.backup_codes_left {
        1 => "1 backup code left.\n".to_owned(),
        n => format!("{n} backup codes left.\n"),
    };
    if let Some(w) = low_warning(s.backup_codes_left, user) {
        t.push_str(&format!("Warning: {w}\n"));
    }
    t
}

/// Runs `twofold backup-codes count`.
pub async fn count(daemon: &Daemon<'_>, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let s = daemon.enrolled_status().await?;
    if json {
        let count = CountJson {
            user: &s.user,
            backup_codes_left: s.backup_codes_left,
            low: s.backup_codes_left <= BACKUP_CODES_LOW,
        };
        return write_json(out, &count);
    }
    write_out(out, &count_text(&s, daemon.context().user))
}

/// Runs `twofold backup-codes regenerate`: the proof from standard input (`--code -`),
/// else asked for when the daemon says this caller needs one.
pub async fn regenerate(
    daemon: &Daemon<'_>,
    code_stdin: bool,
    json: bool,
    out: &mut impl Write,
    input: &mut impl BufRead,
) -> Result<(), Failure> {
    let user = daemon.user_arg();
    let codes = if code_stdin {
        let code = proof_from_stdin(input, "--code")?;
        daemon
            .run(daemon.proxy().regenerate_backup_codes(user, &code))
            .await?
    } else {
        let s = daemon.enrolled_status().await?;
        if s.proof_required {
            ask_and_regenerate(daemon, json, out, input).await?
        } else {
            daemon
                .run(daemon.proxy().regenerate_backup_codes(user, ""))
                .await?
        }
    };
    let headline = format!(
        "New backup codes for {}. The old ones no longer work.",
        daemon.context().who()
    );
    write_backup_codes(codes, &headline, json, out)
}

async fn ask_and_regenerate(
    daemon: &Daemon<'_>,
    json: bool,
    out: &mut impl Write,
    input: &mut impl BufRead,
) -> Result<Vec<String>, Failure> {
    // With --json, standard output is for the JSON alone: prompts go to standard error.
    let mut stderr = std::io::stderr();
    let prompts: &mut dyn Write = if json { &mut stderr } else { out };
    let answered = ask_until_accepted(input, prompts, PROOF_PROMPT, false, async |answer| {
        let proof = match normalize_proof(&answer) {
            Ok(proof) => proof,
            Err(e) => return Ok(Checked::Refused(format!("{e}.\n"))),
        };
        let regenerate = daemon
            .proxy()
            .regenerate_backup_codes(daemon.user_arg(), &proof);
        match daemon.call(regenerate).await? {
            Ok(codes) => Ok(Checked::Accepted(codes)),
            Err(TwofoldError::InvalidCode(_)) => Ok(Checked::Refused(
                "That code did not match. Check that your phone sets its time automatically, \
                 or use a backup code.\n"
                    .to_owned(),
            )),
            Err(e) => Err(daemon.context().failure(&e)),
        }
    })
    .await?;
    answered.map_err(|unanswered| match unanswered {
        Unanswered::EndOfInput => Failure::new(
            "No code was entered (end of input), so the backup codes were not changed. \
             In scripts, give it on standard input with --code -.",
        ),
        Unanswered::OutOfTries => Failure::new(format!(
            "No matching code after {TRIES} tries, so the backup codes were not changed."
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(left: u32) -> UserStatus {
        UserStatus {
            user: "alice".into(),
            enrolled: true,
            backup_codes_left: left,
            ..UserStatus::default()
        }
    }

    #[test]
    fn count_warns_at_three_or_fewer() {
        assert_eq!(count_text(&status(10), None), "10 backup codes left.\n");
        assert_eq!(count_text(&status(4), None), "4 backup codes left.\n");
        let t = count_text(&status(3), None);
        assert!(t.contains("Warning: Only 3 backup codes are left."), "{t}");
        assert!(t.contains("`twofold backup-codes regenerate`"), "{t}");
        let t = count_text(&status(1), Some("bob"));
        assert!(t.starts_with("1 backup code left."), "{t}");
        assert!(t.contains("regenerate --user bob"), "{t}");
        assert!(count_text(&status(0), None).contains("No backup codes are left"));
    }

    #[test]
    fn count_json_shape() {
        let v = serde_json::to_value(CountJson {
            user: "alice",
            backup_codes_left: 3,
            low: true,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user": "alice", "backup_codes_left": 3, "low": true})
        );
    }
}

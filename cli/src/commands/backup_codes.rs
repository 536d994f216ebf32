//! `twofold backup-codes count` and `twofold backup-codes regenerate`.

use serde::Serialize;
use twofold_contract::{UserStatus, BACKUP_CODES_LOW};

use crate::commands::cx::Cx;
use crate::commands::enroll::write_backup_codes;
use crate::commands::proof::{with_proof, ProofWords};
use crate::error::Failure;
use crate::prompt::PROOF_PROMPT;
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
pub async fn count(cx: &mut Cx<'_>) -> Result<(), Failure> {
    let s = cx.daemon.enrolled_status().await?;
    let count = CountJson {
        user: &s.user,
        backup_codes_left: s.backup_codes_left,
        low: s.backup_codes_left <= BACKUP_CODES_LOW,
    };
    let user = cx.daemon.context().user;
    cx.out.answer(&count, || count_text(&s, user))
}

/// Runs `twofold backup-codes regenerate`: the proof from standard input (`--code -`),
/// else asked for when the daemon says this caller needs one.
pub async fn regenerate(cx: &mut Cx<'_>, code_stdin: bool) -> Result<(), Failure> {
    let words = ProofWords {
        prompt: PROOF_PROMPT,
        mismatch: "That code did not match. Check that your phone sets its time automatically, \
                   or use a backup code.\n",
        not_done: "the backup codes were not changed",
    };
    let daemon = cx.daemon;
    let codes = with_proof(cx, code_stdin, words, async |proof| {
        let user = daemon.user_arg();
        daemon.proxy().regenerate_backup_codes(user, proof).await
    })
    .await?;
    let headline = format!(
        "New backup codes for {}. The old ones no longer work.",
        daemon.context().who()
    );
    write_backup_codes(&mut cx.out, codes, &headline)
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

//! `twofold admin import google-authenticator`: reads each user's file as root, and asks
//! the daemon to enroll the user with its secret and scratch codes (`AdminImport`). One
//! line (or JSON object) per user: imported, already enrolled, or refused and why.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use twofold_contract::TwofoldError;

use crate::bus::Daemon;
use crate::commands::admin::admin_failure;
use crate::error::Failure;
use crate::google_authenticator::{self as ga, Owner, Unreadable};
use crate::json::write_json;
use crate::options::admin::{GoogleAuthenticatorImport, ImportUsers};
use crate::output::write_out;
use crate::prompt::is_root;
use crate::text::one_line;

/// The source named to the daemon (and in the audit trail).
const SOURCE: &str = "google-authenticator";

/// What came of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Imported,
    WouldImport,
    AlreadyEnrolled,
    Refused,
    Failed,
}

/// One user's line, and its `--json` object.
#[derive(Debug, Serialize)]
pub struct Row {
    pub user: String,
    pub file: String,
    pub outcome: Outcome,
    /// Why it was refused or failed; "" otherwise.
    pub detail: String,
    /// Scratch codes imported (or that would be).
    pub backup_codes: usize,
    /// The options twofold's policy replaces.
    pub notes: Vec<String>,
    pub removed: bool,
}

impl Row {
    fn new(user: &str, file: &Path, outcome: Outcome, detail: impl Into<String>) -> Row {
        Row {
            user: user.to_owned(),
            file: file.display().to_string(),
            outcome,
            detail: one_line(&detail.into()),
            backup_codes: 0,
            notes: Vec::new(),
            removed: false,
        }
    }

    fn line(&self) -> String {
        let mut parts = vec![match self.outcome {
            Outcome::Imported => format!("imported with {} backup codes", self.backup_codes),
            Outcome::WouldImport => format!(
                "would be imported with {} backup codes (dry run)",
                self.backup_codes
            ),
            Outcome::AlreadyEnrolled => "already enrolled in twofold; left alone".to_owned(),
            Outcome::Refused => format!("refused: {}", self.detail),
            Outcome::Failed => format!("failed: {}", self.detail),
        }];
        parts.extend(self.notes.iter().cloned());
        if self.removed {
            parts.push(format!("{} removed", self.file));
        } else if !self.detail.is_empty() && self.outcome == Outcome::Imported {
            parts.push(self.detail.clone());
        }
        format!("{}: {}\n", self.user, parts.join("; "))
    }
}

/// Runs the import.
pub async fn google_authenticator(
    daemon: &Daemon<'_>,
    import: &GoogleAuthenticatorImport,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    if !is_root() {
        return Err(Failure::coded(
            "permission_denied",
            "Importing reads the users' files: run it as root (sudo).",
        ));
    }
    let (users, named) = match &import.users {
        ImportUsers::All => (
            ga::user_database_names()
                .into_iter()
                .map(|u| (u, None))
                .collect(),
            false,
        ),
        ImportUsers::Named(users) => (users.clone(), true),
    };
    let mut rows = Vec::new();
    for (user, file) in &users {
        if let Some(row) = one_user(daemon, import, user, file.as_deref(), named).await? {
            if !json {
                write_out(out, &row.line())?;
            }
            rows.push(row);
        }
    }
    if json {
        write_json(out, &rows)?;
    } else if rows.is_empty() {
        write_out(
            out,
            &format!("No user of the user database has a ~/{}.\n", ga::FILE_NAME),
        )?;
    }
    let not_imported = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Refused | Outcome::Failed))
        .count();
    if not_imported > 0 {
        return Err(Failure::new(format!(
            "{not_imported} of {} users were not imported (see above).",
            rows.len()
        )));
    }
    Ok(())
}

/// One user: None when `--all` passes over them (no file).
async fn one_user(
    daemon: &Daemon<'_>,
    import: &GoogleAuthenticatorImport,
    user: &str,
    file: Option<&Path>,
    named: bool,
) -> Result<Option<Row>, Failure> {
    let (owner, path) = match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => match file {
            Some(file) => (Owner::UserOrRoot(u.uid.as_raw()), file.to_path_buf()),
            None => (Owner::User(u.uid.as_raw()), u.dir.join(ga::FILE_NAME)),
        },
        Ok(None) => {
            let path = file.map_or_else(PathBuf::new, Path::to_path_buf);
            return Ok(Some(Row::new(
                user,
                &path,
                Outcome::Refused,
                "no such user",
            )));
        }
        Err(e) => {
            let path = file.map_or_else(PathBuf::new, Path::to_path_buf);
            let why = format!("user lookup failed: {e}");
            return Ok(Some(Row::new(user, &path, Outcome::Failed, why)));
        }
    };
    let read = match read_and_parse(&path, owner) {
        Ok(Some(read)) => Ok(read),
        Ok(None) if !named => return Ok(None),
        Ok(None) => Err(format!("no file {}", path.display())),
        Err(why) => Err(why),
    };
    let (parsed, read_as) = match read {
        Ok(read) => read,
        // Someone enrolled in twofold already needs nothing from the file.
        Err(why) => {
            let row = match daemon.call(daemon.proxy().status(user)).await? {
                Ok(status) if status.enrolled => {
                    Row::new(user, &path, Outcome::AlreadyEnrolled, "")
                }
                Ok(_) => Row::new(user, &path, Outcome::Refused, why),
                Err(e) => failed(daemon, user, &path, e)?,
            };
            return Ok(Some(row));
        }
    };
    let codes: Vec<&str> = parsed.scratch_codes.iter().map(|c| c.as_str()).collect();
    let proxy = daemon.proxy();
    let outcome = if import.dry_run {
        match daemon.call(proxy.status(user)).await? {
            Ok(status) if status.enrolled => Ok(Outcome::AlreadyEnrolled),
            Ok(_) => Ok(Outcome::WouldImport),
            Err(e) => Err(e),
        }
    } else {
        match daemon
            .call(proxy.admin_import(user, &parsed.secret, &codes, SOURCE, ""))
            .await?
        {
            Ok(()) => Ok(Outcome::Imported),
            Err(TwofoldError::AlreadyEnrolled(_)) => Ok(Outcome::AlreadyEnrolled),
            Err(e) => Err(e),
        }
    };
    let mut row = match outcome {
        Ok(outcome) => Row::new(user, &path, outcome, ""),
        Err(e) => failed(daemon, user, &path, e)?,
    };
    if row.outcome == Outcome::AlreadyEnrolled {
        return Ok(Some(row));
    }
    row.backup_codes = codes.len();
    row.notes = parsed.notes;
    if row.outcome == Outcome::Imported && import.remove_files {
        remove(&mut row, &path, read_as);
    }
    Ok(Some(row))
}

/// What a file holds, and the file's identity.
type Parsed = (ga::Secret, ga::Identity);

/// The file's secret and its identity; None when there is no file; else why it is
/// refused (one line, naming the file).
fn read_and_parse(path: &Path, owner: Owner) -> Result<Option<Parsed>, String> {
    let named = |why: String| format!("{}: {why}", path.display());
    let (text, read_as) = match ga::read(path, owner) {
        Ok(read) => read,
        Err(Unreadable::Missing) => return Ok(None),
        Err(Unreadable::Refused(why)) => return Err(named(why)),
    };
    let parsed = ga::parse(&text).map_err(named)?;
    Ok(Some((parsed, read_as)))
}

/// A daemon's error about one user: its row, or the end of the run when the caller is
/// not an administrator (every other user would be refused alike).
fn failed(daemon: &Daemon<'_>, user: &str, path: &Path, e: TwofoldError) -> Result<Row, Failure> {
    let failure = admin_failure(daemon, &e);
    if let TwofoldError::PermissionDenied(_) = e {
        return Err(failure);
    }
    Ok(Row::new(user, path, Outcome::Failed, failure.message()))
}

/// Removes the imported file, if it is still the one that was read.
fn remove(row: &mut Row, path: &Path, read_as: ga::Identity) {
    if ga::identity(path) != Some(read_as) {
        row.detail = format!("{} kept: it changed after it was read", path.display());
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => row.removed = true,
        Err(e) => row.detail = format!("{} kept: cannot remove it: {e}", path.display()),
    }
}

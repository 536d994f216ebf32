//! `twofold admin import`: reads another PAM module's secrets as root (google-authenticator's
//! per-user files, pam_oath's usersfile), and asks the daemon to enroll each user with
//! them (`AdminImport`). One line (or JSON object) per user: imported, already enrolled,
//! or refused and why.

use std::path::{Path, PathBuf};

use serde::Serialize;
use twofold_contract::{OathParams, TwofoldError};

use crate::bus::Daemon;
use crate::commands::admin::admin_failure;
use crate::commands::cx::{Cx, Out};
use crate::error::Failure;
use crate::google_authenticator as ga;
use crate::oath_usersfile::{self as oath_file, Entry};
use crate::options::admin::{GoogleAuthenticatorImport, ImportUsers, OathImport};
use crate::prompt::is_root;
use crate::secret_file::{self, Identity, Owner, Unreadable};
use crate::text::{is_app, oath_summary, one_line};

/// The sources named to the daemon (and in the audit trail).
const GA_SOURCE: &str = "google-authenticator";
const OATH_SOURCE: &str = "pam_oath";

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
    /// "" for a line of a usersfile that names no user.
    pub user: String,
    pub file: String,
    pub outcome: Outcome,
    /// Why it was refused or failed; "" otherwise.
    pub detail: String,
    /// Scratch codes imported (or that would be).
    pub backup_codes: usize,
    /// What twofold's policy replaces.
    pub notes: Vec<String>,
    pub removed: bool,
    /// How the device makes its codes (as imported, or would be); None when not read.
    pub oath: Option<OathParams>,
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
            oath: None,
        }
    }

    fn line(&self) -> String {
        let with_codes = match self.backup_codes {
            0 => String::new(),
            n => format!(" with {n} backup codes"),
        };
        let mut parts = vec![match self.outcome {
            Outcome::Imported => format!("imported{with_codes}"),
            Outcome::WouldImport => format!("would be imported{with_codes} (dry run)"),
            Outcome::AlreadyEnrolled => "already enrolled in twofold; left alone".to_owned(),
            Outcome::Refused => format!("refused: {}", self.detail),
            Outcome::Failed => format!("failed: {}", self.detail),
        }];
        // An app's parameters go without saying, except in a dry run.
        let shown = |oath: &&OathParams| {
            self.outcome == Outcome::WouldImport || !is_app(oath) || oath.counter != 0
        };
        if let Some(oath) = self.oath.as_ref().filter(shown) {
            parts.push(import_parameters(oath));
        }
        parts.extend(self.notes.iter().cloned());
        if self.removed {
            parts.push(format!("{} removed", self.file));
        } else if !self.detail.is_empty() && self.outcome == Outcome::Imported {
            parts.push(self.detail.clone());
        }
        let who = if self.user.is_empty() {
            &self.file
        } else {
            &self.user
        };
        format!("{who}: {}\n", parts.join("; "))
    }
}

/// An imported device's parameters, for its line: `HOTP, SHA1, 6 digits, next counter
/// 5`; `TOTP, SHA1, 6 digits, 30 s, steps up to 123 used`.
fn import_parameters(oath: &OathParams) -> String {
    let mut text = oath_summary(oath);
    match (oath.period, oath.counter) {
        (0, next) => text.push_str(&format!(", next counter {next}")),
        (_, 0) => {}
        (_, first_unused) => text.push_str(&format!(", steps up to {} used", first_unused - 1)),
    }
    text
}

/// The rows of a run: each line printed as it comes, or the JSON list at the end.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, row: Row, out: &mut Out<'_>) -> Result<(), Failure> {
        if !out.json {
            out.say(&row.line())?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// Ends the run: the JSON list, or `none` when there was no row; a failure when a
    /// user was refused or failed.
    fn finish(self, out: &mut Out<'_>, none: &str) -> Result<(), Failure> {
        if out.json {
            out.write_json(&self.rows)?;
        } else if self.rows.is_empty() {
            out.say(none)?;
        }
        let not_imported = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Refused | Outcome::Failed))
            .count();
        if not_imported > 0 {
            return Err(Failure::new(format!(
                "{not_imported} of {} users were not imported (see above).",
                self.rows.len()
            )));
        }
        Ok(())
    }
}

fn require_root(reads: &str) -> Result<(), Failure> {
    if is_root() {
        return Ok(());
    }
    Err(Failure::coded(
        "permission_denied",
        format!("Importing reads {reads}: run it as root (sudo)."),
    ))
}

/// What the daemon is asked to enroll a user with.
struct Enrollment<'a> {
    secret: &'a str,
    backup_codes: Vec<&'a str>,
    source: &'static str,
    /// "" when the old module's last used code is not known.
    last_used_code: &'a str,
    oath: &'a OathParams,
}

/// Enrolls `user` (or, in a dry run, says whether it would): their row.
async fn enroll(
    daemon: &Daemon<'_>,
    user: &str,
    path: &Path,
    enrollment: &Enrollment<'_>,
    dry_run: bool,
) -> Result<Row, Failure> {
    let proxy = daemon.proxy();
    let outcome = if dry_run {
        match daemon.call(proxy.status(user)).await? {
            Ok(status) if status.enrolled => Ok(Outcome::AlreadyEnrolled),
            Ok(_) => Ok(Outcome::WouldImport),
            Err(e) => Err(e),
        }
    } else {
        let call = proxy.admin_import(
            user,
            enrollment.secret,
            &enrollment.backup_codes,
            enrollment.source,
            enrollment.last_used_code,
            enrollment.oath,
        );
        match daemon.call(call).await? {
            Ok(()) => Ok(Outcome::Imported),
            Err(TwofoldError::AlreadyEnrolled(_)) => Ok(Outcome::AlreadyEnrolled),
            Err(e) => Err(e),
        }
    };
    let mut row = match outcome {
        Ok(outcome) => Row::new(user, path, outcome, ""),
        Err(e) => failed(daemon, user, path, e)?,
    };
    if row.outcome != Outcome::AlreadyEnrolled {
        row.backup_codes = enrollment.backup_codes.len();
        row.oath = Some(enrollment.oath.clone());
    }
    Ok(row)
}

/// The row of a user whose secret twofold cannot take (`why`): someone enrolled in
/// twofold already needs nothing from it.
async fn refused(
    daemon: &Daemon<'_>,
    user: &str,
    path: &Path,
    why: String,
) -> Result<Row, Failure> {
    Ok(match daemon.call(daemon.proxy().status(user)).await? {
        Ok(status) if status.enrolled => Row::new(user, path, Outcome::AlreadyEnrolled, ""),
        Ok(_) => Row::new(user, path, Outcome::Refused, why),
        Err(e) => failed(daemon, user, path, e)?,
    })
}

// ---- google-authenticator ----

/// Imports google-authenticator's files.
pub async fn google_authenticator(
    cx: &mut Cx<'_>,
    import: &GoogleAuthenticatorImport,
) -> Result<(), Failure> {
    require_root("the users' files")?;
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
    let mut report = Report::default();
    for (user, file) in &users {
        if let Some(row) = one_user(cx.daemon, import, user, file.as_deref(), named).await? {
            report.add(row, &mut cx.out)?;
        }
    }
    let none = format!("No user of the user database has a ~/{}.\n", ga::FILE_NAME);
    report.finish(&mut cx.out, &none)
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
        Err(why) => return refused(daemon, user, &path, why).await.map(Some),
    };
    let enrollment = Enrollment {
        secret: &parsed.secret,
        backup_codes: parsed.scratch_codes.iter().map(|c| c.as_str()).collect(),
        source: GA_SOURCE,
        last_used_code: "",
        oath: &parsed.oath,
    };
    let mut row = enroll(daemon, user, &path, &enrollment, import.dry_run).await?;
    if row.outcome == Outcome::AlreadyEnrolled {
        return Ok(Some(row));
    }
    row.notes = parsed.notes;
    if row.outcome == Outcome::Imported && import.remove_files {
        remove(&mut row, &path, read_as);
    }
    Ok(Some(row))
}

/// What a file holds, and the file's identity.
type Parsed = (ga::Secret, Identity);

/// The file's secret and its identity; None when there is no file; else why it is
/// refused (one line, naming the file).
fn read_and_parse(path: &Path, owner: Owner) -> Result<Option<Parsed>, String> {
    let named = |why: String| format!("{}: {why}", path.display());
    let (text, read_as) = match secret_file::read(path, ga::rules(owner)) {
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
fn remove(row: &mut Row, path: &Path, read_as: Identity) {
    if secret_file::identity(path) != Some(read_as) {
        row.detail = format!("{} kept: it changed after it was read", path.display());
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => row.removed = true,
        Err(e) => row.detail = format!("{} kept: cannot remove it: {e}", path.display()),
    }
}

// ---- pam_oath ----

/// Imports pam_oath's usersfile: its users, or those named.
pub async fn oath(cx: &mut Cx<'_>, import: &OathImport) -> Result<(), Failure> {
    require_root("pam_oath's usersfile")?;
    let path = import.file.as_path();
    let text = match secret_file::read(path, oath_file::RULES) {
        Ok((text, _)) => text,
        Err(Unreadable::Missing) => {
            return Err(Failure::new(format!("{}: no such file.", path.display())))
        }
        Err(Unreadable::Refused(why)) => {
            return Err(Failure::new(format!("{}: {why}.", path.display())))
        }
    };
    let entries = oath_file::parse(&text);
    drop(text);
    let mut report = Report::default();
    // Lines that name no user are the file's own trouble: shown whoever is imported.
    for entry in entries.iter().filter(|e| e.user.is_none()) {
        let why = entry.token.as_ref().err().cloned().unwrap_or_default();
        report.add(Row::new("", path, Outcome::Refused, why), &mut cx.out)?;
    }
    let mut users: Vec<&str> = import.users.iter().map(String::as_str).collect();
    if users.is_empty() {
        for user in entries.iter().filter_map(|e| e.user.as_deref()) {
            if !users.contains(&user) {
                users.push(user);
            }
        }
    }
    for user in users {
        let lines: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.user.as_deref() == Some(user))
            .collect();
        let row = oath_user(cx.daemon, import.dry_run, path, user, &lines).await?;
        report.add(row, &mut cx.out)?;
    }
    report.finish(
        &mut cx.out,
        &format!("{} has no token lines.\n", path.display()),
    )
}

/// One user of the usersfile, with their lines.
async fn oath_user(
    daemon: &Daemon<'_>,
    dry_run: bool,
    path: &Path,
    user: &str,
    lines: &[&Entry],
) -> Result<Row, Failure> {
    let token = match lines {
        [] => {
            let why = format!("no line for {user} in {}", path.display());
            return Ok(Row::new(user, path, Outcome::Refused, why));
        }
        [entry] => entry.token.as_ref().map_err(Clone::clone),
        several => {
            let numbers: Vec<String> = several.iter().map(|e| e.line.to_string()).collect();
            Err(format!(
                "lines {}: several tokens for one user; twofold takes one device per user",
                numbers.join(", ")
            ))
        }
    };
    match nix::unistd::User::from_name(user) {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(Row::new(user, path, Outcome::Refused, "no such user")),
        Err(e) => {
            let why = format!("user lookup failed: {e}");
            return Ok(Row::new(user, path, Outcome::Failed, why));
        }
    }
    let token = match token {
        Ok(token) => token,
        Err(why) => return refused(daemon, user, path, why).await,
    };
    let enrollment = Enrollment {
        secret: &token.secret,
        backup_codes: Vec::new(),
        source: OATH_SOURCE,
        last_used_code: token.last_code.as_deref().unwrap_or(""),
        oath: &token.oath,
    };
    let mut row = enroll(daemon, user, path, &enrollment, dry_run).await?;
    if row.outcome != Outcome::AlreadyEnrolled {
        row.notes = token.notes.clone();
    }
    Ok(row)
}

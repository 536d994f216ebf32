//! Generates twofold's man pages and shell completions, all of them, in memory:
//!
//! - twofold(1) and one page per subcommand, and twofoldd(8), from the clap definitions
//!   (`twofold_cli::cli::command()`, `twofoldd::args::Args::command()`);
//! - pam_twofold(8) and twofoldd.toml(5), hand-written roff (`man/*.in`) with the version
//!   and the defaults filled in from the code;
//! - bash, zsh and fish completions of `twofold`.
//!
//! `cargo xtask gen-docs` writes them into `packaging/man/` and `packaging/completions/`;
//! the test `committed_files_are_current` fails when the committed files differ.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;
use clap_mangen::Man;

/// Directory of the man pages, relative to the repository root.
pub const MAN_DIR: &str = "packaging/man";
/// Directory of the shell completions, relative to the repository root.
pub const COMPLETIONS_DIR: &str = "packaging/completions";

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MANUAL: &str = "twofold manual";

const PAM_TWOFOLD_8: &str = include_str!("../man/pam_twofold.8.in");
const TWOFOLDD_TOML_5: &str = include_str!("../man/twofoldd.toml.5.in");

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Relative to the repository root.
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// The repository root (this crate lives in `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// Every generated file, in a stable order.
pub fn generate() -> io::Result<Vec<Doc>> {
    let mut docs = Vec::new();
    twofold_pages(&mut docs)?;
    docs.push(man_doc("twofoldd.8", &twofoldd_page()?));
    twofoldd_subcommand_pages(&mut docs)?;
    docs.push(man_doc("pam_twofold.8", &pam_twofold_page()));
    docs.push(man_doc("twofoldd.toml.5", &twofoldd_toml_page()));
    for (shell, name) in [
        (Shell::Bash, "twofold.bash"),
        (Shell::Zsh, "_twofold"),
        (Shell::Fish, "twofold.fish"),
    ] {
        let mut cmd = visible_only(&twofold_cli::cli::command());
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "twofold", &mut buf);
        docs.push(Doc {
            path: Path::new(COMPLETIONS_DIR).join(name),
            content: buf,
        });
    }
    Ok(docs)
}

/// A copy of `cmd` without its hidden options and subcommands (the test-only options
/// of `twofold doctor`): clap_complete would offer them otherwise.
fn visible_only(cmd: &clap::Command) -> clap::Command {
    // clap takes &'static str names without its "string" feature; this program is short.
    let name: &'static str = cmd.get_name().to_owned().leak();
    let mut out = clap::Command::new(name)
        .propagate_version(cmd.is_propagate_version_set())
        .subcommand_required(cmd.is_subcommand_required_set());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        let version: &'static str = version.to_owned().leak();
        out = out.version(version);
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(arg.clone());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible_only(sub));
    }
    out
}

fn man_doc(name: &str, text: &str) -> Doc {
    Doc {
        path: Path::new(MAN_DIR).join(name),
        content: text.as_bytes().to_vec(),
    }
}

fn man(cmd: clap::Command, section: &str) -> Man {
    Man::new(cmd)
        .section(section)
        .manual(MANUAL)
        .source(format!("twofold {VERSION}"))
}

/// twofold(1), and twofold-SUBCOMMAND(1) for each visible subcommand, recursively.
fn twofold_pages(docs: &mut Vec<Doc>) -> io::Result<()> {
    let mut cmd = twofold_cli::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    // twofold(1) points at the page of each direct subcommand.
    let mut see_also = String::from(".SH \"SEE ALSO\"\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_display_name().unwrap_or_else(|| sub.get_name());
        let _ = writeln!(see_also, ".BR {} (1),", name.replace('-', "\\-"));
    }
    see_also.push_str(".BR pam_twofold (8),\n.BR twofoldd (8),\n.BR twofoldd.toml (5)\n");
    for sub in pages {
        let name = sub
            .get_display_name()
            .unwrap_or_else(|| sub.get_name())
            .to_owned();
        let mut text = render_sections(&man(sub.clone(), "1"), &sub)?;
        text.push_str(&examples(&sub));
        if name == "twofold" {
            text.push_str(TWOFOLD_EXTRA);
            text.push_str(&see_also);
        } else {
            let _ = write!(text, ".SH \"SEE ALSO\"\n.BR twofold (1)\n");
        }
        docs.push(man_doc(&format!("{name}.1"), &text));
    }
    Ok(())
}

/// The standard sections of a page: title, name, synopsis, description, options,
/// subcommands (not clap's "EXTRA" and "VERSION": the examples get their own section,
/// the version is in the footer).
fn render_sections(man: &Man, cmd: &clap::Command) -> io::Result<String> {
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An EXAMPLES section from a help text that ends with "Examples:" and indented lines.
fn examples(cmd: &clap::Command) -> String {
    let Some(after) = cmd.get_after_help().map(|h| h.to_string()) else {
        return String::new();
    };
    let Some((_, lines)) = after.split_once("Examples:") else {
        return String::new();
    };
    let mut out = String::from(".SH EXAMPLES\n.nf\n");
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "{}", roff_value(line));
    }
    out.push_str(".fi\n");
    out
}

fn collect(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out);
    }
}

/// Sections of twofold(1) that clap does not know about.
const TWOFOLD_EXTRA: &str = r#".SH "GETTING STARTED"
.nf
\fBtwofold enroll\fR            scan the QR code, type a code, keep the 10 backup codes
\fBtwofold status\fR            on or off, backup codes left, last use, lockout
\fBtwofold backup\-codes regenerate\fR   a new set of backup codes
\fBtwofold doctor\fR            check the daemon, the clocks, PAM and sshd
\fBtwofold disable\fR           turn it off (password, code and confirmation)
.fi
.SH "LOST PHONE"
Log in with a backup code instead of a code from the app (each works once, with or
without its dashes).
Then run \fBtwofold enroll\fR on the new phone: it asks for a backup code to prove it
is you.
Without a phone and without backup codes, ask an administrator.
.SH ENVIRONMENT
.TP
.B TWOFOLD_BUS_ADDRESS
D\-Bus address of the bus where twofoldd runs, when \fB\-\-bus\fR is not given.
.TP
.B NO_COLOR
When set, the QR code is drawn without colours.
.SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
The command failed (one line on standard error says why; with \fB\-\-json\fR a JSON
object with \fBerror\fR and \fBcode\fR), or \fBtwofold doctor\fR warned.
.TP
.B 2
Wrong usage (unknown option, bad value), or a check of \fBtwofold doctor\fR failed.
"#;

fn twofoldd_page() -> io::Result<String> {
    let cmd = twofoldd::args::Args::command().disable_help_subcommand(true);
    let mut text = render_sections(&man(cmd.clone(), "8"), &cmd)?;
    text.push_str(TWOFOLDD_EXTRA);
    Ok(text)
}

/// twofoldd-SUBCOMMAND(8) for each subcommand (`twofoldd migrate`).
fn twofoldd_subcommand_pages(docs: &mut Vec<Doc>) -> io::Result<()> {
    let mut cmd = twofoldd::args::Args::command().disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub
            .get_display_name()
            .unwrap_or_else(|| sub.get_name())
            .to_owned();
        let mut text = render_sections(&man(sub.clone(), "8"), sub)?;
        text.push_str(".SH \"SEE ALSO\"\n.BR twofoldd (8),\n.BR twofoldd.toml (5)\n");
        docs.push(man_doc(&format!("{name}.8"), &text));
    }
    Ok(())
}

/// Sections of twofoldd(8) that clap does not know about.
const TWOFOLDD_EXTRA: &str = r#".SH OPERATION
\fBtwofoldd\fR serves \fBorg.twofold.Twofold1\fR at \fB/org/twofold/Twofold1\fR on the
system bus. It is the only program that sees TOTP secrets and backup-code hashes:
\fBpam_twofold.so\fR and \fBtwofold\fR are thin clients. It identifies every caller by
its D\-Bus credentials: root may act on any user, any other user only on itself.
It is normally started by D\-Bus activation or systemd, not by hand.
.PP
TOTP secrets are encrypted at rest with the key file (\fB\-\-key\fR); backup codes are
kept only as Argon2id hashes. A code is accepted once: the accepted time step is written
to disk before success is returned. Wrong codes are counted durably, and lead to a
lockout that grows with each further one.
.PP
\fBtwofold disable\fR needs the account password: the daemon checks it through PAM,
with the service \fBtwofold\-password\fR (\fI/etc/pam.d/twofold\-password\fR).
.SH FILES
.TP
.I /etc/twofold/twofoldd.toml
policy; see \fBtwofoldd.toml\fR(5)
.TP
.I /etc/twofold/secret.key
encryption key of the TOTP secrets, created 0600 on first start; keep it apart from
backups of the database
.TP
.I /var/lib/twofold/twofold.db
state (SQLite), 0600, owned by root
.TP
.I /etc/pam.d/twofold\-password
PAM service for the account-password check of \fBtwofold disable\fR
.SH SIGNALS
\fBSIGTERM\fR and \fBSIGINT\fR end the daemon cleanly.
.SH LOGGING
syslog, facility authpriv, ident twofoldd; with \fB\-\-log\-stderr\fR also on standard
error. No secret or typed code is ever logged.
.SH "SEE ALSO"
.BR twofoldd.toml (5),
.BR pam_twofold (8),
.BR twofold (1)
"#;

/// A value shown in a man page: roff-escaped (backslashes and leading dots/quotes).
fn roff_value(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut text = template.replace("@VERSION@", VERSION);
    for (key, value) in values {
        text = text.replace(&format!("@{key}@"), value);
    }
    let left = text
        .split('@')
        .skip(1)
        .step_by(2)
        .find(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    assert!(
        left.is_none(),
        "placeholder @{}@ is not filled",
        left.unwrap_or_default()
    );
    text
}

fn pam_twofold_page() -> String {
    use twofold_pam::options::{
        seconds_text, Options, DEFAULT_PROMPT, DEFAULT_TIMEOUT, MAX_TIMEOUT, MIN_TIMEOUT,
    };
    let defaults = Options::default();
    fill(
        PAM_TWOFOLD_8,
        &[
            ("bus", roff_value(&defaults.bus)),
            (
                "socket",
                roff_value(defaults.socket.as_deref().unwrap_or_default()),
            ),
            ("timeout", seconds_text(DEFAULT_TIMEOUT)),
            ("min_timeout", seconds_text(MIN_TIMEOUT)),
            ("max_timeout", seconds_text(MAX_TIMEOUT)),
            ("prompt", roff_value(DEFAULT_PROMPT)),
            ("daemon_uid", defaults.daemon_uid.to_string()),
        ],
    )
}

fn twofoldd_toml_page() -> String {
    let p = twofoldd::policy::Policy::default();
    let groups = if p.require_groups.is_empty() {
        "[]".to_owned()
    } else {
        format!(
            "[{}]",
            p.require_groups
                .iter()
                .map(|g| format!("\"{g}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    fill(
        TWOFOLDD_TOML_5,
        &[
            ("totp_window", p.totp_window.to_string()),
            (
                "enroll_pending_seconds",
                p.enroll_pending_seconds.to_string(),
            ),
            ("require_groups", groups),
            ("enroll_grace", p.enroll_grace.to_string()),
            ("admin_contact", roff_value(&p.admin_contact)),
            ("storage_sslmode", roff_value(&p.storage_sslmode)),
            ("session_timeout", p.session_timeout.to_string()),
            ("max_failures", p.lockout.max_failures.to_string()),
            ("base_delay", p.lockout.base_delay.to_string()),
            ("max_delay", p.lockout.max_delay.to_string()),
            ("user_ceiling", p.lockout.user_ceiling.to_string()),
            ("local_ceiling", p.lockout.local_ceiling.to_string()),
            ("ceiling_period", p.lockout.ceiling_period.to_string()),
            ("audit_retention_days", p.audit_retention_days.to_string()),
            ("audit_max_rows", p.audit_max_rows.to_string()),
        ],
    )
}

/// Writes every generated file under `root`; returns the paths written.
pub fn write_all(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for doc in generate()? {
        let path = root.join(&doc.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        if fs::read(&path).ok().as_deref() != Some(&doc.content[..]) {
            fs::write(&path, &doc.content)?;
            written.push(doc.path);
        }
    }
    Ok(written)
}

/// The generated files that differ from (or are missing under) `root`, and the files in
/// the generated directories that the generator no longer makes.
pub fn stale(root: &Path) -> io::Result<Vec<String>> {
    let docs = generate()?;
    let mut problems = Vec::new();
    for doc in &docs {
        match fs::read(root.join(&doc.path)) {
            Ok(c) if c == doc.content => {}
            Ok(_) => problems.push(format!("{} differs", doc.path.display())),
            Err(_) => problems.push(format!("{} is missing", doc.path.display())),
        }
    }
    for dir in [MAN_DIR, COMPLETIONS_DIR] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let rel = Path::new(dir).join(entry.file_name());
            if !docs.iter().any(|d| d.path == rel) {
                problems.push(format!("{} is not generated any more", rel.display()));
            }
        }
    }
    problems.sort();
    Ok(problems)
}

#[cfg(test)]
mod tests;

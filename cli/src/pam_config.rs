//! Does a PAM service (`/etc/pam.d/sshd`, `/etc/pam.d/sudo`) run pam_twofold.so in its
//! `auth` stack, directly or through `@include`, `include` or `substack`?

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where PAM's service files are, unless a test gives its own directory.
pub const PAM_DIR: &str = "/etc/pam.d";

/// Deepest chain of included files followed (Linux-PAM stops at a similar depth).
const MAX_DEPTH: usize = 16;

/// The `auth` line that runs pam_twofold.so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file holding the line.
    pub file: PathBuf,
    /// Its control field (`required`, `[success=1 default=ignore]`, ...).
    pub control: String,
    /// Its module arguments.
    pub args: Vec<String>,
}

impl Found {
    /// The module lets users who have not enrolled through.
    pub fn nullok(&self) -> bool {
        self.args.iter().any(|a| a == "nullok")
    }

    /// The control does not make the code necessary: `optional` ignores a wrong code,
    /// `sufficient` lets a right code alone skip the rest of the stack.
    pub fn weak_control(&self) -> Option<&str> {
        match self.control.as_str() {
            "optional" => Some("optional"),
            "sufficient" => Some("sufficient"),
            _ => None,
        }
    }
}

/// What the service's configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// No file for the service.
    Missing,
    /// The file cannot be read.
    Unreadable(String),
    /// The auth stack does not run pam_twofold.so.
    NotUsed,
    /// It does.
    Used(Found),
}

/// Looks for pam_twofold.so in the `auth` stack of `service` under `dir`.
pub fn check_service(dir: &Path, service: &str) -> Finding {
    let path = dir.join(service);
    match fs::read_to_string(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Finding::Missing,
        Err(e) => Finding::Unreadable(format!("{}: {}", path.display(), short_io(&e))),
        Ok(text) => {
            let mut seen = HashSet::new();
            seen.insert(path.clone());
            match search(dir, &path, &text, 0, &mut seen) {
                Some(found) => Finding::Used(found),
                None => Finding::NotUsed,
            }
        }
    }
}

fn short_io(e: &io::Error) -> String {
    let t = e.to_string();
    match t.find(" (os error") {
        Some(i) => t[..i].to_owned(),
        None => t,
    }
}

/// The logical lines of a PAM file: comments (from `#`) removed, `\` continuations
/// joined, blank lines dropped.
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let without_comment = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        if let Some(stripped) = without_comment.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(without_comment);
        if !current.trim().is_empty() {
            lines.push(current.trim().to_owned());
        }
        current.clear();
    }
    if !current.trim().is_empty() {
        lines.push(current.trim().to_owned());
    }
    lines
}

/// Fields of a PAM line; `[...]` groups (controls, arguments with spaces) stay one field.
pub fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn resolve(dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn is_twofold_module(module: &str) -> bool {
    let base = module.rsplit('/').next().unwrap_or(module);
    // libpam_twofold.so: the same module as cargo names it in a build tree.
    matches!(base, "pam_twofold.so" | "pam_twofold" | "libpam_twofold.so")
}

fn search(
    dir: &Path,
    file: &Path,
    text: &str,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
) -> Option<Found> {
    for line in logical_lines(text) {
        let f = fields(&line);
        let Some(first) = f.first() else { continue };
        // Debian's "@include common-auth": the whole file, every type.
        if first == "@include" {
            if let Some(name) = f.get(1) {
                if let Some(found) = follow(dir, &resolve(dir, name), depth, seen) {
                    return Some(found);
                }
            }
            continue;
        }
        if f.len() < 3 {
            continue;
        }
        let kind = first.trim_start_matches('-').to_ascii_lowercase();
        if kind != "auth" {
            continue;
        }
        let (control, module) = (&f[1], &f[2]);
        if control == "include" || control == "substack" {
            if let Some(found) = follow(dir, &resolve(dir, module), depth, seen) {
                return Some(found);
            }
            continue;
        }
        if is_twofold_module(module) {
            return Some(Found {
                file: file.to_path_buf(),
                control: control.clone(),
                args: f[3..].to_vec(),
            });
        }
    }
    None
}

/// Whether some `auth` line of any file in `dir` runs pam_twofold.so with a `grace=`
/// window (more than 0 seconds): only then can a remembered login skip the code. True
/// when `dir` cannot be read (it cannot be ruled out).
pub fn grace_configured(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return true;
    };
    entries
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .any(|text| {
            logical_lines(&text).iter().any(|line| {
                let f = fields(line);
                f.len() >= 3
                    && f[0].trim_start_matches('-').eq_ignore_ascii_case("auth")
                    && is_twofold_module(&f[2])
                    && f[3..].iter().any(|a| {
                        a.strip_prefix("grace=")
                            .and_then(|n| n.parse::<u64>().ok())
                            .is_some_and(|n| n > 0)
                    })
            })
        })
}

fn follow(dir: &Path, path: &Path, depth: usize, seen: &mut HashSet<PathBuf>) -> Option<Found> {
    if depth >= MAX_DEPTH || !seen.insert(path.to_path_buf()) {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    search(dir, path, &text, depth + 1, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn direct_line() {
        let d = dir_with(&[(
            "sudo",
            "#%PAM-1.0\n@include common-auth\nauth required pam_twofold.so nullok\n",
        )]);
        match check_service(d.path(), "sudo") {
            Finding::Used(f) => {
                assert_eq!(f.file, d.path().join("sudo"));
                assert_eq!(f.control, "required");
                assert!(f.nullok());
                assert_eq!(f.weak_control(), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn through_includes_and_substacks() {
        let d = dir_with(&[
            (
                "sshd",
                "@include common-auth\naccount include common-account\n",
            ),
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
                 auth substack twofold-auth\n",
            ),
            (
                "twofold-auth",
                "-auth [success=ok default=die] /usr/lib/security/pam_twofold.so \\\n  timeout=3\n",
            ),
            ("common-account", "account required pam_twofold.so\n"),
        ]);
        match check_service(d.path(), "sshd") {
            Finding::Used(f) => {
                assert_eq!(f.file, d.path().join("twofold-auth"));
                assert_eq!(f.control, "[success=ok default=die]");
                assert_eq!(f.args, vec!["timeout=3".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn comments_other_types_and_cycles_do_not_count() {
        let d = dir_with(&[
            (
                "sudo",
                "# auth required pam_twofold.so\nauth required pam_unix.so # pam_twofold.so\n\
                 session required pam_twofold.so\n@include loop\n",
            ),
            ("loop", "@include sudo\nauth include loop\n"),
        ]);
        assert_eq!(check_service(d.path(), "sudo"), Finding::NotUsed);
        assert_eq!(check_service(d.path(), "sshd"), Finding::Missing);
    }

    #[test]
    fn grace_is_configured_only_by_a_grace_argument_of_the_module() {
        let without = dir_with(&[
            ("common-auth", "auth required pam_twofold.so nullok\n"),
            (
                "sudo",
                "# auth required pam_twofold.so grace=300\n@include common-auth\n",
            ),
            ("other", "auth required pam_unix.so grace=300\n"),
            ("zero", "auth required pam_twofold.so grace=0\n"),
            ("session", "session optional pam_twofold.so grace=300\n"),
        ]);
        assert!(!grace_configured(without.path()));
        let with = dir_with(&[
            ("common-auth", "auth required pam_twofold.so nullok\n"),
            (
                "sudo",
                "auth [success=ok default=die] /lib/security/pam_twofold.so grace=300\n",
            ),
        ]);
        assert!(grace_configured(with.path()));
        assert!(grace_configured(&with.path().join("missing")));
    }

    #[test]
    fn weak_controls() {
        let d = dir_with(&[("sudo", "auth sufficient pam_twofold.so\n")]);
        match check_service(d.path(), "sudo") {
            Finding::Used(f) => assert_eq!(f.weak_control(), Some("sufficient")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_keep_brackets() {
        assert_eq!(
            fields("auth [success=1 default=ignore] pam_x.so [prompt=Your code: ]"),
            vec![
                "auth",
                "[success=1 default=ignore]",
                "pam_x.so",
                "[prompt=Your code: ]"
            ]
        );
    }
}

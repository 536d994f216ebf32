//! Does sshd let PAM ask for the code? Its settings from `sshd -T` (root), else from
//! `sshd_config` and the files it includes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Deepest chain of `Include`s followed.
const MAX_DEPTH: usize = 16;

/// The settings that decide whether SSH logins can be asked for a code. `None`: not set,
/// sshd's default applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `UsePAM` (default no).
    pub use_pam: Option<bool>,
    /// `KbdInteractiveAuthentication`, or its old name `ChallengeResponseAuthentication`
    /// (default yes).
    pub kbd_interactive: Option<bool>,
    /// `AuthenticationMethods` (default `any`).
    pub authentication_methods: Option<String>,
    /// `PubkeyAuthentication` (default yes).
    pub pubkey: Option<bool>,
}

impl Settings {
    pub fn use_pam(&self) -> bool {
        self.use_pam.unwrap_or(false)
    }

    pub fn kbd_interactive(&self) -> bool {
        self.kbd_interactive.unwrap_or(true)
    }

    pub fn pubkey(&self) -> bool {
        self.pubkey.unwrap_or(true)
    }

    pub fn authentication_methods(&self) -> &str {
        self.authentication_methods.as_deref().unwrap_or("any")
    }

    /// sshd keeps the first value it reads for each keyword.
    fn set(&mut self, keyword: &str, value: &str) {
        let yes = || Some(value.eq_ignore_ascii_case("yes"));
        match keyword.to_ascii_lowercase().as_str() {
            "usepam" if self.use_pam.is_none() => self.use_pam = yes(),
            "kbdinteractiveauthentication" | "challengeresponseauthentication"
                if self.kbd_interactive.is_none() =>
            {
                self.kbd_interactive = yes()
            }
            "pubkeyauthentication" if self.pubkey.is_none() => self.pubkey = yes(),
            "authenticationmethods" if self.authentication_methods.is_none() => {
                self.authentication_methods = Some(value.to_owned())
            }
            _ => {}
        }
    }
}

/// `keyword value...` of one config line, or `None` for blank lines and comments.
fn keyword_value(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // "Keyword value", "Keyword=value" and "Keyword = value" are all accepted by sshd.
    let split = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(split);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let rest = rest.trim_matches('"');
    Some((key, rest))
}

/// The settings of `sshd -T` output (lower-case keywords, every setting once).
pub fn parse_effective(text: &str) -> Settings {
    let mut s = Settings::default();
    for line in text.lines() {
        if let Some((k, v)) = keyword_value(line) {
            s.set(k, v);
        }
    }
    s
}

/// Reads `sshd_config` at `path` with its `Include`s (relative ones are taken from the
/// directory of `path`, as sshd takes them from /etc/ssh). Lines inside `Match` blocks
/// apply only to some logins and are skipped.
pub fn parse_config(path: &Path) -> io::Result<Settings> {
    let text = fs::read_to_string(path)?;
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut s = Settings::default();
    read_into(&mut s, &base, &text, 0);
    Ok(s)
}

fn read_into(s: &mut Settings, base: &Path, text: &str, depth: usize) {
    for line in text.lines() {
        let Some((key, value)) = keyword_value(line) else {
            continue;
        };
        if key.eq_ignore_ascii_case("match") {
            // A Match block runs to the end of its file.
            return;
        }
        if key.eq_ignore_ascii_case("include") {
            if depth >= MAX_DEPTH {
                continue;
            }
            for pattern in value.split_whitespace() {
                for file in expand(base, pattern) {
                    if let Ok(t) = fs::read_to_string(&file) {
                        read_into(s, base, &t, depth + 1);
                    }
                }
            }
            continue;
        }
        s.set(key, value);
    }
}

/// The files an `Include` pattern names, sorted (as sshd's glob(3) returns them). Wildcards
/// (`*`, `?`) are expanded in the last path component only.
fn expand(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && wildcard(&name, n))
                .map(|n| dir.join(n))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Shell-style match of `*` and `?`.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How sshd's settings fit two-factor logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Warn(String),
    Fail(String),
}

/// Judges `s`; `twofold_in_pam`: /etc/pam.d/sshd runs pam_twofold.so (then a login
/// that skips keyboard-interactive skips the code).
pub fn judge(s: &Settings, twofold_in_pam: bool) -> Verdict {
    if !s.use_pam() {
        return Verdict::Fail(
            "sshd does not use PAM (UsePAM no), so SSH logins never ask for a code: set \
             `UsePAM yes`"
                .into(),
        );
    }
    if !s.kbd_interactive() {
        return Verdict::Fail(
            "sshd does not allow keyboard-interactive authentication, which asks for the \
             code: set `KbdInteractiveAuthentication yes`"
                .into(),
        );
    }
    let methods = s.authentication_methods();
    if methods.eq_ignore_ascii_case("any") {
        if twofold_in_pam && s.pubkey() {
            return Verdict::Warn(
                "a public key alone logs in without a code (AuthenticationMethods any); to \
                 ask for the code after the key: `AuthenticationMethods \
                 publickey,keyboard-interactive`"
                    .into(),
            );
        }
        return Verdict::Ok("sshd uses PAM and allows keyboard-interactive authentication".into());
    }
    let lists: Vec<&str> = methods.split_whitespace().collect();
    let asks = |list: &str| {
        list.split(',')
            .any(|m| m == "keyboard-interactive" || m.starts_with("keyboard-interactive:"))
    };
    let skipping: Vec<&str> = lists.iter().copied().filter(|l| !asks(l)).collect();
    if skipping.len() == lists.len() {
        Verdict::Fail(format!(
            "AuthenticationMethods {methods} never uses keyboard-interactive, so SSH logins \
             never ask for a code: use e.g. `publickey,keyboard-interactive`"
        ))
    } else if !skipping.is_empty() && twofold_in_pam {
        Verdict::Warn(format!(
            "logins by {} skip the code (AuthenticationMethods {methods})",
            skipping.join(" or ")
        ))
    } else {
        Verdict::Ok(format!(
            "sshd uses PAM and asks for keyboard-interactive (AuthenticationMethods {methods})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_includes_come_in_place() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("sshd_config.d")).unwrap();
        for (name, text) in [
            (
                "sshd_config.d/10-twofold.conf",
                "KbdInteractiveAuthentication yes\n",
            ),
            (
                "sshd_config.d/20-other.conf",
                "KbdInteractiveAuthentication no\n",
            ),
            ("sshd_config.d/ignored.txt", "UsePAM no\n"),
            (
                "sshd_config",
                "# comment\nInclude sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n\
                 UsePAM=yes\nAuthenticationMethods \"publickey,keyboard-interactive\"\n\
                 Match User backup\n  AuthenticationMethods publickey\n",
            ),
        ] {
            fs::write(d.path().join(name), text).unwrap();
        }
        let s = parse_config(&d.path().join("sshd_config")).unwrap();
        assert_eq!(s.use_pam, Some(true));
        assert_eq!(s.kbd_interactive, Some(true));
        assert_eq!(
            s.authentication_methods.as_deref(),
            Some("publickey,keyboard-interactive")
        );
        assert!(matches!(judge(&s, true), Verdict::Ok(_)));
    }

    #[test]
    fn debian_default_config_fails() {
        let s = parse_effective(
            "usepam yes\nkbdinteractiveauthentication no\nauthenticationmethods any\n",
        );
        match judge(&s, true) {
            Verdict::Fail(m) => assert!(m.contains("KbdInteractiveAuthentication yes"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The old name counts too.
        let s = parse_effective("UsePAM yes\nChallengeResponseAuthentication no\n");
        assert!(matches!(judge(&s, true), Verdict::Fail(_)));
    }

    #[test]
    fn defaults_and_methods() {
        // Upstream default: no PAM.
        assert!(matches!(
            judge(&Settings::default(), false),
            Verdict::Fail(_)
        ));
        let pam = |methods: &str| Settings {
            use_pam: Some(true),
            authentication_methods: Some(methods.into()),
            ..Settings::default()
        };
        assert!(matches!(judge(&pam("any"), true), Verdict::Warn(_)));
        assert!(matches!(judge(&pam("any"), false), Verdict::Ok(_)));
        assert!(matches!(judge(&pam("publickey"), true), Verdict::Fail(_)));
        assert!(matches!(
            judge(&pam("publickey,keyboard-interactive:pam"), true),
            Verdict::Ok(_)
        ));
        match judge(&pam("publickey,keyboard-interactive password"), true) {
            Verdict::Warn(m) => assert!(m.contains("logins by password skip"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wildcards() {
        for (pattern, name, matches) in [
            ("*.conf", "10-a.conf", true),
            ("*.conf", "10-a.conf.bak", false),
            ("a?c*", "abcdef", true),
            ("a?c", "ac", false),
        ] {
            assert_eq!(wildcard(pattern, name), matches, "{pattern} {name}");
        }
    }
}

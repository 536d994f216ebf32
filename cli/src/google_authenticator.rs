//! google-authenticator-libpam's per-user file (`~/.google_authenticator`): read the way
//! `pam_google_authenticator.so` reads it (no symbolic link, a regular file of the user's
//! or root's, readable by its owner only, small) and parsed into what twofold can take.
//!
//! The format: the base32 secret on the first line; then option lines starting with `"`
//! (` RATE_LIMIT n m [times…]`, ` WINDOW_SIZE n`, ` DISALLOW_REUSE [steps…]`,
//! ` TOTP_AUTH` or ` HOTP_COUNTER n`, ` STEP_SIZE n`); then the unused 8-digit scratch
//! codes, one per line.

use twofold_contract::limits;
use zeroize::Zeroizing;

use crate::secret_file::{Owner, Rules};

/// The file's name in a home directory.
pub const FILE_NAME: &str = ".google_authenticator";
/// Largest file read (google-authenticator writes a few hundred bytes).
pub const MAX_FILE_LEN: u64 = 4096;
/// The only step size twofoldd uses, in seconds.
const STEP_SECONDS: u64 = 30;
/// Digits of a scratch code.
const SCRATCH_CODE_DIGITS: usize = 8;

/// How `pam_google_authenticator.so` wants its file: `owner`'s, at most
/// [`MAX_FILE_LEN`] bytes, readable by its owner only.
pub fn rules(owner: Owner) -> Rules {
    Rules {
        owner,
        max_len: MAX_FILE_LEN,
        mode_rule: "google-authenticator requires 0400 or 0600",
    }
}

/// The names of the user database (NSS), in its order, each once; where enumeration is
/// off (some LDAP set-ups), only the users it lists.
pub fn user_database_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    // SAFETY: setpwent/getpwent/endpwent keep their state in libc; this program calls
    // them from one thread only, and each entry's name is copied before the next call.
    unsafe {
        libc::setpwent();
        loop {
            let entry = libc::getpwent();
            if entry.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*entry).pw_name);
            if let Ok(name) = name.to_str() {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        libc::endpwent();
    }
    names
}

/// What a file holds that twofold can take, and what it says that twofold replaces.
#[derive(Debug, PartialEq, Eq)]
pub struct Secret {
    /// Base32, upper case, without spaces or padding.
    pub secret: Zeroizing<String>,
    /// The unused scratch codes.
    pub scratch_codes: Vec<Zeroizing<String>>,
    /// One line each for the options whose effect twofold's policy takes over.
    pub notes: Vec<String>,
}

/// Parses a file's text. Refusals (one line): not a google-authenticator file,
/// counter-based (HOTP), a step other than 30 seconds, more scratch codes than twofold
/// keeps.
pub fn parse(text: &str) -> Result<Secret, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut secret = Zeroizing::new(String::with_capacity(first.len()));
    for c in first.chars().filter(|c| !matches!(c, ' ' | '-' | '=')) {
        secret.push(c.to_ascii_uppercase());
    }
    if limits::imported_secret(&secret).is_err() {
        return Err(
            "the first line is not a base32 secret of 16 to 128 characters: not a \
             google-authenticator file"
                .into(),
        );
    }
    // 128 bits (26 symbols) is RFC 4226's least; older google-authenticator wrote 80.
    if secret.len() * 5 < 128 {
        return Err(format!(
            "the secret has {} bits, fewer than the 128 twofold accepts: the user enrolls \
             anew with `twofold enroll`",
            secret.len() * 5 / 8 * 8
        ));
    }
    let mut notes = Vec::new();
    let mut scratch_codes = Vec::new();
    for line in lines {
        if let Some(option) = line.strip_prefix('"') {
            if let Some(note) = option_note(option.trim())? {
                notes.push(note);
            }
            continue;
        }
        let code = line.trim();
        if code.is_empty() {
            continue;
        }
        if code.len() != SCRATCH_CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                "a line is neither an option nor an 8-digit scratch code: not a \
                 google-authenticator file"
                    .into(),
            );
        }
        // A code listed twice is one code.
        if !scratch_codes
            .iter()
            .any(|known: &Zeroizing<String>| known.as_str() == code)
        {
            scratch_codes.push(Zeroizing::new(code.to_owned()));
        }
    }
    if scratch_codes.len() > limits::MAX_IMPORTED_BACKUP_CODES {
        return Err(format!(
            "the file has {} scratch codes; twofold takes at most {}",
            scratch_codes.len(),
            limits::MAX_IMPORTED_BACKUP_CODES
        ));
    }
    Ok(Secret {
        secret,
        scratch_codes,
        notes,
    })
}

/// What one option line (after its `"`) means here: a note, nothing, or a refusal.
fn option_note(option: &str) -> Result<Option<String>, String> {
    let mut words = option.split_whitespace();
    let name = words.next().unwrap_or_default();
    let values: Vec<&str> = words.collect();
    Ok(match name {
        "TOTP_AUTH" => None,
        "HOTP_COUNTER" => {
            return Err(
                "counter-based (HOTP) file: twofoldd does not support HOTP yet; the user \
                 enrolls anew with `twofold enroll`, or keeps google-authenticator"
                    .into(),
            )
        }
        "STEP_SIZE" => match values.first().map(|v| v.parse::<u64>()) {
            Some(Ok(STEP_SECONDS)) => None,
            _ => {
                return Err(format!(
                    "STEP_SIZE {}: twofoldd supports 30-second steps only",
                    values.first().copied().unwrap_or("?")
                ))
            }
        },
        "WINDOW_SIZE" => Some(format!(
            "WINDOW_SIZE {}: twofold's policy applies: one step of clock drift either way",
            values.first().copied().unwrap_or("?")
        )),
        "RATE_LIMIT" => Some(format!(
            "RATE_LIMIT {} {}: twofold's policy applies: the lockout of twofoldd.toml",
            values.first().copied().unwrap_or("?"),
            values.get(1).copied().unwrap_or("?")
        )),
        "DISALLOW_REUSE" => {
            Some("DISALLOW_REUSE: twofold's policy applies: a code is never accepted twice".into())
        }
        other => Some(format!(
            "option {}: not known to twofold, ignored",
            crate::text::one_line(other)
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEH";

    #[test]
    fn a_totp_file_with_options_and_scratch_codes() {
        let text = format!(
            "{SECRET}\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\
             \" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n12345678\n87654321\n12345678\n"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.secret.as_str(), SECRET);
        let codes: Vec<&str> = parsed.scratch_codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, ["12345678", "87654321"]);
        assert_eq!(parsed.notes.len(), 3, "{:?}", parsed.notes);
        assert!(parsed.notes[0].starts_with("RATE_LIMIT 3 30: twofold's policy applies"));
        assert!(parsed.notes[1].starts_with("WINDOW_SIZE 17: twofold's policy applies"));
        assert!(parsed.notes[2].starts_with("DISALLOW_REUSE: twofold's policy applies"));
    }

    #[test]
    fn a_bare_file_and_one_in_lower_case_with_step_size_30() {
        let parsed = parse(&format!("{SECRET}\n")).unwrap();
        assert!(parsed.scratch_codes.is_empty() && parsed.notes.is_empty());
        let text = format!("{}\n\" STEP_SIZE 30\n\" TOTP_AUTH\n", SECRET.to_lowercase());
        assert_eq!(parse(&text).unwrap().secret.as_str(), SECRET);
    }

    #[test]
    fn what_twofold_cannot_take_is_refused_with_a_reason() {
        let refusal = |text: String| parse(&text).unwrap_err();
        assert!(refusal(format!("{SECRET}\n\" HOTP_COUNTER 1\n12345678\n")).contains("HOTP"));
        assert!(
            refusal(format!("{SECRET}\n\" STEP_SIZE 60\n\" TOTP_AUTH\n")).contains("STEP_SIZE 60")
        );
        assert!(refusal(format!("{SECRET}\n\" STEP_SIZE x\n")).contains("30-second"));
        assert!(refusal("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n".into()).contains("80 bits"));
        assert!(refusal("root:x:0:0::/root:/bin/sh\n".into()).contains("not a"));
        assert!(refusal(String::new()).contains("not a"));
        assert!(refusal(format!("{SECRET}\n1234567\n")).contains("8-digit"));
        let eleven: String = (0..11).map(|i| format!("{}\n", 12345670 + i)).collect();
        assert!(refusal(format!("{SECRET}\n{eleven}")).contains("at most"));
    }

    #[test]
    fn the_file_is_read_as_google_authenticator_reads_it() {
        use crate::secret_file::Unreadable;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let me = Owner::User(nix::unistd::geteuid().as_raw());
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let refused = crate::secret_file::read(&path, rules(me)).unwrap_err();
        assert!(
            matches!(&refused, Unreadable::Refused(w) if w.contains("google-authenticator requires 0400 or 0600")),
            "{refused:?}"
        );
        std::fs::write(&path, "x".repeat(MAX_FILE_LEN as usize + 1)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let refused = crate::secret_file::read(&path, rules(me)).unwrap_err();
        assert!(matches!(refused, Unreadable::Refused(w) if w.contains("4096")));
    }
}

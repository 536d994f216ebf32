//! google-authenticator-libpam's per-user file (`~/.google_authenticator`): read the way
//! `pam_google_authenticator.so` reads it (no symbolic link, a regular file of the user's
//! or root's, readable by its owner only, small) and parsed into what twofold can take.
//!
//! The format: the base32 secret on the first line; then option lines starting with `"`
//! (` RATE_LIMIT n m [times…]`, ` WINDOW_SIZE n`, ` DISALLOW_REUSE [steps…]`,
//! ` TOTP_AUTH` or ` HOTP_COUNTER n`, ` STEP_SIZE n`); then the unused 8-digit scratch
//! codes, one per line. Its codes are SHA-1 and 6 digits; `HOTP_COUNTER n` (n ≥ 1) makes
//! it counter-based, n being the next value it checks; `DISALLOW_REUSE` lists the steps
//! (of `STEP_SIZE` seconds) whose codes it accepted lately.

use twofold_contract::{limits, OathParams};
use zeroize::Zeroizing;

use crate::secret_file::{Owner, Rules};
use crate::text::one_line;

/// The file's name in a home directory.
pub const FILE_NAME: &str = ".google_authenticator";
/// Largest file read (google-authenticator writes a few hundred bytes).
pub const MAX_FILE_LEN: u64 = 4096;
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
    /// How its codes are made; `counter` is HOTP's next value, or TOTP's first step not
    /// yet used (0: none listed).
    pub oath: OathParams,
    /// One line each for the options whose effect twofold's policy takes over.
    pub notes: Vec<String>,
}

/// Parses a file's text. Refusals (one line): not a google-authenticator file, a step
/// other than 30 or 60 seconds, more scratch codes than twofold keeps.
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
    let mut options = Options {
        hotp_counter: None,
        step: OathParams::app().period,
        used_steps: Vec::new(),
        notes: Vec::new(),
    };
    let mut scratch_codes = Vec::new();
    for line in lines {
        if let Some(option) = line.strip_prefix('"') {
            read_option(option.trim(), &mut options)?;
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
        oath: oath_params(&options),
        notes: options.notes,
    })
}

/// What the option lines say.
struct Options {
    /// `HOTP_COUNTER n`: the next counter value google-authenticator checks.
    hotp_counter: Option<u64>,
    /// `STEP_SIZE n`, in seconds.
    step: u32,
    /// `DISALLOW_REUSE`'s list: the steps (in `STEP_SIZE` units) already used.
    used_steps: Vec<u64>,
    notes: Vec<String>,
}

/// Reads one option line (after its `"`) into `options`, or refuses it.
fn read_option(option: &str, options: &mut Options) -> Result<(), String> {
    let mut words = option.split_whitespace();
    let name = words.next().unwrap_or_default();
    let values: Vec<&str> = words.collect();
    let first = values.first().copied().unwrap_or("?");
    let note = match name {
        "TOTP_AUTH" => None,
        // google-authenticator checks counters from this value on, and writes the one
        // after the code it accepted; below 1 it is not a counter-based file.
        "HOTP_COUNTER" => match first.parse::<u64>() {
            Ok(counter) if counter >= 1 => {
                options.hotp_counter = Some(counter);
                None
            }
            _ => return Err(format!("HOTP_COUNTER {}: not a counter", one_line(first))),
        },
        "STEP_SIZE" => match first.parse::<u32>() {
            Ok(step) if limits::TOTP_PERIODS.contains(&u64::from(step)) => {
                options.step = step;
                None
            }
            _ => {
                return Err(format!(
                    "STEP_SIZE {}: twofoldd supports 30- and 60-second steps only",
                    one_line(first)
                ))
            }
        },
        "WINDOW_SIZE" => Some(format!(
            "WINDOW_SIZE {}: not carried over: twofold's policy applies (one step of clock \
             drift either way; {} codes ahead for HOTP)",
            one_line(first),
            limits::HOTP_LOOK_AHEAD
        )),
        "RATE_LIMIT" => Some(format!(
            "RATE_LIMIT {} {}: not carried over: twofold's policy applies (the lockout of \
             twofoldd.toml)",
            one_line(first),
            one_line(values.get(1).copied().unwrap_or("?"))
        )),
        // google-authenticator lists the steps of the codes it accepted lately.
        "DISALLOW_REUSE" => {
            for value in &values {
                let step = value
                    .parse::<u64>()
                    .map_err(|_| "DISALLOW_REUSE: a listed step is not a number".to_owned())?;
                options.used_steps.push(step);
            }
            Some(match options.used_steps.iter().max() {
                Some(last) => format!(
                    "DISALLOW_REUSE: carried over: the codes of steps up to {last} count as \
                     used (twofold never accepts a code twice)"
                ),
                None => "DISALLOW_REUSE: twofold never accepts a code twice".to_owned(),
            })
        }
        "TIME_SKEW" | "RESETTING_TIME_SKEW" => Some(format!(
            "{name}: not carried over: twofold's policy applies (one step of clock drift \
             either way)"
        )),
        other => Some(format!(
            "option {}: not known to twofold, ignored",
            one_line(other)
        )),
    };
    options.notes.extend(note);
    Ok(())
}

/// The parameters of the file's device: google-authenticator's codes are SHA-1 and 6
/// digits, counted by `HOTP_COUNTER` or by the clock in steps of `STEP_SIZE`.
fn oath_params(options: &Options) -> OathParams {
    let app = OathParams::app();
    match options.hotp_counter {
        Some(counter) => OathParams {
            period: 0,
            counter,
            ..app
        },
        None => OathParams {
            period: options.step,
            // The first step not yet used.
            counter: options.used_steps.iter().max().map_or(0, |last| last + 1),
            ..app
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEH";

    #[test]
    fn a_totp_file_with_options_and_scratch_codes() {
        let text = format!(
            "{SECRET}\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\
             \" DISALLOW_REUSE 56666666 56666665\n\" TOTP_AUTH\n12345678\n87654321\n12345678\n"
        );
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.secret.as_str(), SECRET);
        let codes: Vec<&str> = parsed.scratch_codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, ["12345678", "87654321"]);
        assert_eq!(parsed.notes.len(), 3, "{:?}", parsed.notes);
        assert!(parsed.notes[0].starts_with("RATE_LIMIT 3 30: not carried over"));
        assert!(parsed.notes[1].starts_with("WINDOW_SIZE 17: not carried over"));
        assert!(parsed.notes[2].contains("steps up to 56666666 count as used"));
        // The first step not yet used.
        let expected = OathParams {
            counter: 56666667,
            ..OathParams::app()
        };
        assert_eq!(parsed.oath, expected);
    }

    #[test]
    fn a_bare_file_and_one_in_lower_case_with_step_size_30() {
        let parsed = parse(&format!("{SECRET}\n")).unwrap();
        assert!(parsed.scratch_codes.is_empty() && parsed.notes.is_empty());
        assert_eq!(parsed.oath, OathParams::app());
        let text = format!("{}\n\" STEP_SIZE 30\n\" TOTP_AUTH\n", SECRET.to_lowercase());
        assert_eq!(parse(&text).unwrap().secret.as_str(), SECRET);
    }

    #[test]
    fn counters_and_60_second_steps_carry_over() {
        let hotp = parse(&format!("{SECRET}\n\" HOTP_COUNTER 7\n12345678\n")).unwrap();
        let expected = OathParams {
            period: 0,
            counter: 7,
            ..OathParams::app()
        };
        assert_eq!(hotp.oath, expected);
        assert_eq!(hotp.scratch_codes.len(), 1);
        let text = format!("{SECRET}\n\" STEP_SIZE 60\n\" DISALLOW_REUSE 100\n\" TOTP_AUTH\n");
        let expected = OathParams {
            period: 60,
            counter: 101,
            ..OathParams::app()
        };
        assert_eq!(parse(&text).unwrap().oath, expected);
        let skew = parse(&format!("{SECRET}\n\" TIME_SKEW 2\n\" DISALLOW_REUSE\n")).unwrap();
        assert!(
            skew.notes[0].starts_with("TIME_SKEW: not carried over"),
            "{:?}",
            skew.notes
        );
        assert_eq!(skew.oath, OathParams::app());
    }

    #[test]
    fn what_twofold_cannot_take_is_refused_with_a_reason() {
        let refusal = |text: String| parse(&text).unwrap_err();
        assert!(refusal(format!("{SECRET}\n\" HOTP_COUNTER 0\n")).contains("not a counter"));
        assert!(refusal(format!("{SECRET}\n\" HOTP_COUNTER x\n")).contains("not a counter"));
        assert!(
            refusal(format!("{SECRET}\n\" STEP_SIZE 45\n\" TOTP_AUTH\n")).contains("STEP_SIZE 45")
        );
        assert!(refusal(format!("{SECRET}\n\" STEP_SIZE x\n")).contains("60-second"));
        assert!(refusal(format!("{SECRET}\n\" DISALLOW_REUSE 12 x\n")).contains("not a number"));
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

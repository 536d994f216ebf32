//! `twofold enroll`: interactive, or `--begin` then `--confirm CODE`.

use std::io::{self, BufRead, Write};

use serde::Serialize;
use twofold_contract::{Enrollment, TwofoldError};
use zeroize::Zeroizing;

use crate::bus::Daemon;
use crate::error::Failure;
use crate::format::{group_secret, human_duration, human_time, now, optional_iso8601, uri_digits};
use crate::options::{normalize_code, EnrollMode};
use crate::output::{suggest, write_out};
use crate::qr;

/// Codes asked for before giving up, in interactive enrollment.
pub const TRIES: usize = 3;

/// `enroll --begin --json`.
#[derive(Debug, Serialize)]
pub struct BeginJson<'a> {
    pub secret: &'a str,
    pub uri: &'a str,
    /// ISO 8601 UTC; `null` if the daemon gave no expiry.
    pub expires: Option<String>,
}

/// `enroll --confirm CODE --json` (and later `backup-codes regenerate --json`).
#[derive(Debug, Serialize)]
pub struct BackupCodesJson<'a> {
    pub backup_codes: &'a [String],
}

/// The secret parts of an [`Enrollment`], wiped when dropped.
struct Secret {
    secret: Zeroizing<String>,
    uri: Zeroizing<String>,
    expires: i64,
}

impl From<Enrollment> for Secret {
    fn from(mut e: Enrollment) -> Self {
        Secret {
            secret: Zeroizing::new(std::mem::take(&mut e.secret)),
            uri: Zeroizing::new(std::mem::take(&mut e.uri)),
            expires: e.expires,
        }
    }
}

fn json_line(value: &impl Serialize) -> Result<Zeroizing<String>, Failure> {
    let mut text = Zeroizing::new(
        serde_json::to_string(value)
            .map_err(|e| Failure::new(format!("Could not write JSON: {e}")))?,
    );
    text.push('\n');
    Ok(text)
}

/// Runs `twofold enroll`.
pub async fn run(
    daemon: &Daemon<'_>,
    issuer: &str,
    mode: &EnrollMode,
    json: bool,
    out: &mut impl Write,
    input: &mut impl BufRead,
) -> Result<(), Failure> {
    match mode {
        EnrollMode::Begin => begin(daemon, issuer, json, out).await,
        EnrollMode::Confirm(code) => {
            let codes = daemon
                .run(daemon.proxy().enroll_confirm(daemon.user_arg(), code))
                .await?;
            print_backup_codes(daemon, codes, json, out)
        }
        EnrollMode::Interactive => interactive(daemon, issuer, out, input).await,
    }
}

async fn begin_call(daemon: &Daemon<'_>, issuer: &str) -> Result<Secret, Failure> {
    daemon
        .run(daemon.proxy().enroll_begin(daemon.user_arg(), issuer))
        .await
        .map(Secret::from)
}

async fn begin(
    daemon: &Daemon<'_>,
    issuer: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let s = begin_call(daemon, issuer).await?;
    let text = if json {
        json_line(&BeginJson {
            secret: &s.secret,
            uri: &s.uri,
            expires: optional_iso8601(s.expires),
        })?
    } else {
        let mut t = Zeroizing::new(format!(
            "Secret:  {}\nURI:     {}\n",
            *group_secret(&s.secret),
            *s.uri
        ));
        if s.expires > 0 {
            t.push_str(&format!("Expires: {}\n", human_time(s.expires)));
        }
        t.push_str(&format!(
            "Add it to your authenticator app, then run `{}` with the code it shows.\n",
            suggest("enroll --confirm CODE", daemon.context().user)
        ));
        t
    };
    write_out(out, &text)
}

fn print_backup_codes(
    daemon: &Daemon<'_>,
    codes: Vec<String>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let codes = Zeroizing::new(codes);
    let text = if json {
        json_line(&BackupCodesJson {
            backup_codes: &codes,
        })?
    } else {
        backup_codes_text(&codes, daemon.context().user)
    };
    write_out(out, &text)
}

/// The success message with the backup codes, for people.
pub fn backup_codes_text(codes: &[String], user: Option<&str>) -> Zeroizing<String> {
    let who = match user {
        Some(u) => format!("user {u}"),
        None => "your account".to_owned(),
    };
    let mut t = Zeroizing::new(format!(
        "Two-factor authentication is now on for {who}.\n\n\
         Backup codes, for logging in without your phone. Each one works once. Store them \
         in a password manager or a safe: they are not shown again.\n\n"
    ));
    for code in codes {
        t.push_str(code);
        t.push('\n');
    }
    t
}

/// One answer read from `input` after printing `prompt`; `None` at end of input.
pub fn read_answer(
    input: &mut impl BufRead,
    out: &mut impl Write,
    prompt: &str,
) -> Result<Option<Zeroizing<String>>, Failure> {
    write_out(out, prompt)?;
    let mut line = Zeroizing::new(String::new());
    match input.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line)),
        // Not UTF-8: no code at all; the caller words it like any other malformed code.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Some(line)),
        Err(e) => Err(Failure::new(format!(
            "Could not read the code from standard input: {e}"
        ))),
    }
}

async fn interactive(
    daemon: &Daemon<'_>,
    issuer: &str,
    out: &mut impl Write,
    input: &mut impl BufRead,
) -> Result<(), Failure> {
    let user = daemon.context().user;
    let s = begin_call(daemon, issuer).await?;
    let digits = uri_digits(&s.uri);

    let mut intro = Zeroizing::new(String::new());
    if let Some(u) = user {
        intro.push_str(&format!(
            "Setting up two-factor authentication for user {u}.\n\n"
        ));
    }
    match qr::for_terminal(&s.uri) {
        Ok(code) => {
            intro.push_str("Scan this QR code with your authenticator app:\n\n");
            intro.push_str(&code);
            intro.push_str("\nOr enter the secret by hand:\n");
        }
        Err(_) => intro.push_str(
            "(The URI is too long for a QR code.) Enter the secret in your authenticator \
             app by hand:\n",
        ),
    }
    intro.push_str(&format!(
        "  Secret: {}\n  URI:    {}\n\n",
        *group_secret(&s.secret),
        *s.uri
    ));
    let remaining = s.expires - now();
    if s.expires > 0 && remaining > 0 {
        intro.push_str(&format!(
            "Enter a code within {} (before {}).\n",
            human_duration(remaining),
            human_time(s.expires)
        ));
    }
    write_out(out, &intro)?;
    drop(intro);

    let prompt = format!("Enter the {digits}-digit code from your app: ");
    let confirm_later = suggest("enroll --confirm CODE", user);
    for attempt in 1..=TRIES {
        let Some(answer) = read_answer(input, out, &prompt)? else {
            return Err(Failure::new(format!(
                "No code was entered (end of input), so two-factor authentication is not on. \
                 Finish with `{confirm_later}` or start over with `{}`.",
                suggest("enroll", user)
            )));
        };
        let retry = match normalize_code(&answer, Some(digits)) {
            Err(e) => format!("{}.\n", capitalize_first(&e)),
            Ok(code) => match daemon
                .call(daemon.proxy().enroll_confirm(daemon.user_arg(), &code))
                .await?
            {
                Ok(codes) => {
                    write_out(out, "\n")?;
                    return print_backup_codes(daemon, codes, false, out);
                }
                Err(TwofoldError::InvalidCode(_)) => "That code did not match. Check that your \
                    phone sets its time automatically.\n"
                    .to_owned(),
                Err(e) => return Err(daemon.context().failure(&e)),
            },
        };
        write_out(out, &retry)?;
        if attempt == TRIES {
            break;
        }
    }
    Err(Failure::new(format!(
        "No matching code after {TRIES} tries, so two-factor authentication is not on. \
         Check the time on your phone, then finish with `{confirm_later}` or start over with \
         `{}`.",
        suggest("enroll", user)
    )))
}

fn capitalize_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_json_shape() {
        let v = serde_json::to_value(BeginJson {
            secret: "JBSWY3DPEHPK3PXP",
            uri: "otpauth://totp/h:alice?secret=JBSWY3DPEHPK3PXP&issuer=h",
            expires: optional_iso8601(1_735_787_045),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "secret": "JBSWY3DPEHPK3PXP",
                "uri": "otpauth://totp/h:alice?secret=JBSWY3DPEHPK3PXP&issuer=h",
                "expires": "2025-01-02T03:04:05Z",
            })
        );
    }

    #[test]
    fn backup_codes_json_shape() {
        let codes = vec!["1111-2222".to_owned(), "3333-4444".to_owned()];
        let line = json_line(&BackupCodesJson {
            backup_codes: &codes,
        })
        .unwrap();
        assert_eq!(
            line.as_str(),
            "{\"backup_codes\":[\"1111-2222\",\"3333-4444\"]}\n"
        );
    }

    #[test]
    fn backup_codes_one_per_line_with_advice() {
        let codes: Vec<String> = (0..10).map(|i| format!("code-{i}")).collect();
        let text = backup_codes_text(&codes, None);
        for c in &codes {
            assert!(text.lines().any(|l| l == c), "{}", *text);
        }
        assert!(text.contains("password manager or a safe"));
        assert!(text.contains("works once"));
    }

    #[test]
    fn answers_and_end_of_input() {
        let mut out = Vec::new();
        let mut input = io::Cursor::new(b"123 456\n".to_vec());
        let a = read_answer(&mut input, &mut out, "Code: ").unwrap();
        assert_eq!(a.as_deref().map(String::as_str), Some("123 456\n"));
        assert_eq!(read_answer(&mut input, &mut out, "Code: ").unwrap(), None);
        assert_eq!(out, b"Code: Code: ");
        // Not UTF-8: an answer that fails the format check, not an error.
        let mut input = io::Cursor::new(b"\xff\xfe\n".to_vec());
        let a = read_answer(&mut input, &mut out, "").unwrap().unwrap();
        assert!(normalize_code(&a, Some(6)).is_err());
    }
}

//! `twofold enroll`: interactive, or `--begin` then `--confirm -` (the code on standard
//! input: never on the command line). `twofold devices add NAME` runs the same, for a
//! further device.

use std::future::Future;
use std::io::BufRead;

use serde::Serialize;
use twofold_contract::{Enrollment, OathParams, TwofoldError};
use zeroize::Zeroizing;

use crate::bus::{Daemon, Reply};
use crate::codes::{normalize_code, normalize_proof, uri_digits};
use crate::commands::cx::{Cx, Out};
use crate::error::Failure;
use crate::options::{EnrollMode, QrFiles, Setup};
use crate::prompt::{
    ask_until_accepted, code_from_stdin, proof_from_stdin, Checked, Unanswered, OLD_DEVICE_PROMPT,
    PROOF_PROMPT, TRIES,
};
use crate::qr;
use crate::text::{capitalize_first, group_secret, suggest};
use crate::time::{human_duration, human_time, now, optional_iso8601};

/// Said (on standard error) when `--algorithm`, `--digits` or `--period` asks for other
/// than an app's defaults.
pub const PARAMETERS_WARNING: &str = "Warning: some authenticator apps (Google Authenticator \
    among them, on some platforms) ignore --algorithm, --digits and --period and then show \
    wrong codes; the confirmation code will tell.";

/// `enroll --begin --json`.
#[derive(Debug, Serialize)]
pub struct BeginJson<'a> {
    pub secret: &'a str,
    pub uri: &'a str,
    /// ISO 8601 UTC; `null` if the daemon gave no expiry.
    pub expires: Option<String>,
}

/// `enroll --confirm - --json` (and later `backup-codes regenerate --json`).
#[derive(Debug, Serialize)]
pub struct BackupCodesJson<'a> {
    pub backup_codes: &'a [String],
}

/// `devices add NAME --confirm - --json`.
#[derive(Debug, Serialize)]
pub struct DeviceAddedJson<'a> {
    pub device: &'a str,
    pub added: bool,
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

/// What `twofold enroll` (or `devices add`) was asked to do.
pub struct Request<'a> {
    /// `Some(name)`: add a device of this name (`devices add`), not enroll.
    pub device: Option<&'a str>,
    /// The issuer, mode, proof, QR files and code parameters asked for.
    pub setup: &'a Setup,
}

/// What a confirmed secret gave: an enrollment's backup codes, or a device added.
enum Finished {
    BackupCodes(Vec<String>),
    DeviceAdded,
}

impl Request<'_> {
    /// The command that sets this secret up, as typed: `enroll`, `devices add NAME`.
    fn command(&self) -> String {
        match self.device {
            None => "enroll".to_owned(),
            Some(name) => format!("devices add {name}"),
        }
    }

    /// Calls the daemon: `enroll` for an enrollment, `add(name)` for `devices add NAME`.
    async fn call<T>(
        &self,
        daemon: &Daemon<'_>,
        enroll: impl Future<Output = Result<T, TwofoldError>>,
        add: impl AsyncFnOnce(&str) -> Result<T, TwofoldError>,
    ) -> Reply<T> {
        match self.device {
            None => daemon.call(enroll).await,
            Some(name) => daemon.call(add(name)).await,
        }
    }

    /// Asks the daemon for the new secret (`proof`: a code of a device the user has).
    async fn start(&self, daemon: &Daemon<'_>, proof: &str) -> Reply<Enrollment> {
        let (proxy, user) = (daemon.proxy(), daemon.user_arg());
        let Setup { issuer, oath, .. } = self.setup;
        let enroll = proxy.enroll_begin(user, issuer, proof, oath);
        let add = async |name: &str| {
            proxy
                .add_device_begin(user, name, issuer, proof, oath)
                .await
        };
        self.call(daemon, enroll, add).await
    }

    /// Confirms the new secret with its first code.
    async fn finish(&self, daemon: &Daemon<'_>, code: &str) -> Reply<Finished> {
        let (proxy, user) = (daemon.proxy(), daemon.user_arg());
        let enroll = async {
            proxy
                .enroll_confirm(user, code)
                .await
                .map(Finished::BackupCodes)
        };
        let add = async |name: &str| {
            proxy
                .add_device_confirm(user, name, code)
                .await
                .map(|()| Finished::DeviceAdded)
        };
        self.call(daemon, enroll, add).await
    }

    /// What is not done when the code never came.
    fn not_done(&self) -> &'static str {
        match self.device {
            None => "two-factor authentication is not on",
            Some(_) => "the device was not added",
        }
    }
}

/// Runs `twofold enroll`.
pub async fn run(cx: &mut Cx<'_>, req: &Request<'_>) -> Result<(), Failure> {
    if req.setup.mode != EnrollMode::Confirm && req.setup.oath != OathParams::app() {
        eprintln!("{}", PARAMETERS_WARNING);
    }
    match &req.setup.mode {
        EnrollMode::Begin => begin(cx, req).await,
        EnrollMode::Confirm => {
            let typed = code_from_stdin(cx.input, "--confirm", "Code from your app: ")?;
            let code = normalize_code(&typed, None).map_err(|e| {
                Failure::new(format!(
                    "--confirm -: {e}. {}.",
                    capitalize_first(req.not_done())
                ))
            })?;
            let finished = req
                .finish(cx.daemon, &code)
                .await?
                .map_err(|e| cx.daemon.context().failure(&e))?;
            print_finished(cx, req, finished)
        }
        EnrollMode::Interactive => interactive(cx, req).await,
    }
}

/// The old device's code when `--proof -` gave one on standard input.
fn given_proof(
    req: &Request<'_>,
    input: &mut dyn BufRead,
) -> Result<Option<Zeroizing<String>>, Failure> {
    if req.setup.proof_stdin {
        proof_from_stdin(input, "--proof").map(Some)
    } else {
        Ok(None)
    }
}

async fn begin_call(cx: &mut Cx<'_>, req: &Request<'_>) -> Result<Secret, Failure> {
    let daemon = cx.daemon;
    let proof = given_proof(req, cx.input)?;
    let proof = proof.as_deref().map_or("", String::as_str);
    req.start(daemon, proof)
        .await?
        .map(Secret::from)
        .map_err(|e| match (e, req.device) {
            (TwofoldError::AlreadyEnrolled(_), Some(name)) => {
                let user = daemon.context().user;
                Failure::new(format!(
                    "Adding {name} needs a current code of one of the devices of {} or a \
                     backup code: `{}` asks for one (in scripts: `{}` with the code on \
                     standard input).",
                    daemon.context().who(),
                    suggest(&req.command(), user),
                    suggest(&format!("{} --proof -", req.command()), user)
                ))
            }
            (e, _) => daemon.context().failure(&e),
        })
}

/// Starts an interactive enrollment. A user who is enrolled already (a new phone) is
/// asked for a current code or backup code of the old device, unless `--proof -` gave one.
async fn interactive_begin_call(cx: &mut Cx<'_>, req: &Request<'_>) -> Result<Secret, Failure> {
    let daemon = cx.daemon;
    let proof = given_proof(req, cx.input)?;
    let first = req
        .start(daemon, proof.as_deref().map_or("", String::as_str))
        .await?;
    match first {
        Ok(e) => return Ok(Secret::from(e)),
        Err(TwofoldError::AlreadyEnrolled(_)) if proof.is_none() => {}
        Err(e) => return Err(daemon.context().failure(&e)),
    }
    let who = daemon.context().who();
    let (why, prompt) = match req.device {
        None => (
            format!(
                "Two-factor authentication is already on for {who}. To move it to a new \
                 phone, first prove it is you. Your old device keeps working until the new \
                 one is confirmed.\n"
            ),
            OLD_DEVICE_PROMPT,
        ),
        Some(name) => (
            format!(
                "To add {name} to the devices of {who}, first prove it is you with a current \
                 code of one of them or a backup code.\n"
            ),
            PROOF_PROMPT,
        ),
    };
    cx.out.say(&why)?;
    let (input, prompts) = cx.input_and_prompts();
    let answered = ask_until_accepted(input, prompts, prompt, true, async |answer| {
        let proof = match normalize_proof(&answer) {
            Ok(proof) => proof,
            Err(e) => return Ok(Checked::Refused(format!("{e}.\n"))),
        };
        match req.start(daemon, &proof).await? {
            Ok(e) => Ok(Checked::Accepted(Secret::from(e))),
            Err(TwofoldError::InvalidCode(_)) => Ok(Checked::Refused(
                "That code did not match. Use the current code of a device you have, \
                 or one of your backup codes.\n"
                    .to_owned(),
            )),
            Err(e) => Err(daemon.context().failure(&e)),
        }
    })
    .await?;
    answered.map_err(|unanswered| match unanswered {
        Unanswered::EndOfInput => {
            Failure::new("No code was entered (end of input), so nothing was changed.")
        }
        Unanswered::OutOfTries => Failure::new(format!(
            "No matching code after {TRIES} tries, so nothing was changed. If you lost your \
             old device and your backup codes, ask an administrator to reset your account."
        )),
    })
}

/// Writes the QR code files asked for; the lines to tell the user where they are.
fn write_qr_files(uri: &str, files: &QrFiles) -> Result<String, Failure> {
    let mut told = String::new();
    let fail = |what: &str, path: &std::path::Path, e: String| {
        Failure::new(format!(
            "Could not write the QR code {what} to {}: {e}",
            path.display()
        ))
    };
    if let Some(path) = &files.png {
        let data = qr::png(uri).map_err(|e| fail("image", path, e))?;
        qr::write_private(path, &data).map_err(|e| fail("image", path, e))?;
        told.push_str(&format!("QR code written to {} (PNG).\n", path.display()));
    }
    if let Some(path) = &files.svg {
        let data = qr::svg(uri).map_err(|e| fail("image", path, e))?;
        qr::write_private(path, data.as_bytes()).map_err(|e| fail("image", path, e))?;
        told.push_str(&format!("QR code written to {} (SVG).\n", path.display()));
    }
    if !told.is_empty() {
        told.push_str("The image holds your secret: delete it once your app has it.\n");
    }
    Ok(told)
}

async fn begin(cx: &mut Cx<'_>, req: &Request<'_>) -> Result<(), Failure> {
    let s = begin_call(cx, req).await?;
    let files = write_qr_files(&s.uri, &req.setup.qr)?;
    let begun = BeginJson {
        secret: &s.secret,
        uri: &s.uri,
        expires: optional_iso8601(s.expires),
    };
    let user = cx.daemon.context().user;
    cx.out.answer(&begun, || {
        let mut text = Zeroizing::new(format!(
            "Secret:  {}\nURI:     {}\n",
            *group_secret(&s.secret),
            *s.uri
        ));
        if s.expires > 0 {
            text.push_str(&format!("Expires: {}\n", human_time(s.expires)));
        }
        text.push_str(&files);
        text.push_str(&format!(
            "Add it to your authenticator app, then run `{}` and type the code it shows.\n",
            suggest(&format!("{} --confirm -", req.command()), user)
        ));
        text
    })
}

/// What a confirmed secret gave: the backup codes of an enrollment, once, or that the
/// device was added.
fn print_finished(cx: &mut Cx<'_>, req: &Request<'_>, finished: Finished) -> Result<(), Failure> {
    let who = cx.daemon.context().who();
    match finished {
        Finished::BackupCodes(codes) => {
            let headline = format!("Two-factor authentication is now on for {who}.");
            write_backup_codes(&mut cx.out, codes, &headline)
        }
        Finished::DeviceAdded => {
            let device = req.device.unwrap_or_default();
            let added = DeviceAddedJson {
                device,
                added: true,
            };
            cx.out.answer(&added, || {
                format!(
                    "Device {device} added for {who}: a code from any of the devices now \
                     works.\n"
                )
            })
        }
    }
}

/// Prints a new set of backup codes, once: JSON `{"backup_codes": [...]}`, or for people
/// the `headline`, the advice and one code a line.
pub fn write_backup_codes(
    out: &mut Out<'_>,
    codes: Vec<String>,
    headline: &str,
) -> Result<(), Failure> {
    let codes = Zeroizing::new(codes);
    let json = BackupCodesJson {
        backup_codes: &codes,
    };
    out.answer(&json, || backup_codes_text(&codes, headline))
}

/// The message with the backup codes, for people.
pub fn backup_codes_text(codes: &[String], headline: &str) -> Zeroizing<String> {
    let mut t = Zeroizing::new(format!(
        "{headline}\n\n\
         Backup codes, for logging in without your phone. Each one works once, typed with \
         or without the dashes. Store them in a password manager or a safe: they are not \
         shown again.\n\n"
    ));
    for code in codes {
        t.push_str("    ");
        t.push_str(code);
        t.push('\n');
    }
    t
}

async fn interactive(cx: &mut Cx<'_>, req: &Request<'_>) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let user = daemon.context().user;
    let s = interactive_begin_call(cx, req).await?;
    let digits = uri_digits(&s.uri);
    let files = write_qr_files(&s.uri, &req.setup.qr)?;

    let mut intro = Zeroizing::new(String::new());
    if let Some(u) = user {
        intro.push_str(&match req.device {
            None => format!("Setting up two-factor authentication for user {u}.\n\n"),
            Some(name) => format!("Setting up device {name} for user {u}.\n\n"),
        });
    }
    match qr::for_terminal(&s.uri) {
        Ok((code, plain)) => {
            intro.push_str("Scan this QR code with your authenticator app:\n\n");
            intro.push_str(&code);
            if let Some(why) = plain {
                // Its colours are the terminal's: unreadable on a dark background.
                intro.push_str(&format!(
                    "\nThe QR code is drawn in the terminal's own colours ({why}): on a dark \
                     background your app may not read it. Then write it to an image with \
                     `{}` and open that.\n",
                    suggest(&format!("{} --qr-png qr.png", req.command()), user)
                ));
            }
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
    intro.push_str(&files);
    let remaining = s.expires - now();
    if s.expires > 0 && remaining > 0 {
        intro.push_str(&format!(
            "Enter a code within {} (before {}).\n",
            human_duration(remaining),
            human_time(s.expires)
        ));
    }
    cx.out.say(&intro)?;
    drop(intro);

    let prompt = format!("Enter the {digits}-digit code from your app: ");
    let confirm_later = suggest(&format!("{} --confirm -", req.command()), user);
    let start_over = suggest(&req.command(), user);
    let not_done = req.not_done();
    let (input, prompts) = cx.input_and_prompts();
    let answered = ask_until_accepted(input, prompts, &prompt, true, async |answer| {
        let code = match normalize_code(&answer, Some(digits)) {
            Ok(code) => code,
            Err(e) => return Ok(Checked::Refused(format!("{e}.\n"))),
        };
        match req.finish(daemon, &code).await? {
            Ok(finished) => Ok(Checked::Accepted(finished)),
            Err(TwofoldError::InvalidCode(_)) => Ok(Checked::Refused(
                "That code did not match. Check that your phone sets its time automatically.\n"
                    .to_owned(),
            )),
            Err(e) => Err(daemon.context().failure(&e)),
        }
    })
    .await?;
    match answered {
        Ok(finished) => {
            cx.out.say("\n")?;
            print_finished(cx, req, finished)
        }
        Err(Unanswered::EndOfInput) => Err(Failure::new(format!(
            "No code was entered (end of input), so {not_done}. \
             Finish with `{confirm_later}` or start over with `{start_over}`."
        ))),
        Err(Unanswered::OutOfTries) => Err(Failure::new(format!(
            "No matching code after {TRIES} tries, so {not_done}. \
             Check the time on your phone, then finish with `{confirm_later}` or start over \
             with `{start_over}`."
        ))),
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
        let mut out = Vec::new();
        write_backup_codes(&mut Out::new(true, &mut out), codes, "unused").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"backup_codes\": [\n    \"1111-2222\",\n    \"3333-4444\"\n  ]\n}\n"
        );
    }

    #[test]
    fn backup_codes_one_per_line_with_advice() {
        let codes: Vec<String> = (0..10).map(|i| format!("code-{i}")).collect();
        let text = backup_codes_text(&codes, "On.");
        assert!(text.starts_with("On.\n"));
        for c in &codes {
            assert!(text.lines().any(|l| l.trim() == c), "{}", *text);
        }
        assert!(text.contains("password manager or a safe"));
        assert!(text.contains("works once"));
    }
}

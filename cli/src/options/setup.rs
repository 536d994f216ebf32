//! How a new secret is set up in an app (`twofold enroll`, `twofold devices add`), and
//! codes taken from standard input only: the checked flags both commands share.

use std::path::PathBuf;

use twofold_contract::{limits, OathParams};
use zeroize::Zeroizing;

use crate::cli::SetupArgs;
use crate::options::usage::{usage, UsageError};
use crate::text::one_line;

/// What `twofold enroll` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollMode {
    /// Show the QR code, ask for a code, print backup codes.
    Interactive,
    /// Print the secret and URI only.
    Begin,
    /// Confirm with the code on the first line of standard input (`--confirm -`).
    Confirm,
}

/// Where to write the QR code besides the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QrFiles {
    pub png: Option<PathBuf>,
    pub svg: Option<PathBuf>,
}

/// How a new secret is set up (`enroll`, `devices add`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Empty: the daemon picks the host name.
    pub issuer: String,
    pub mode: EnrollMode,
    /// The proof (a code of a device the user has) is on standard input (`--proof -`).
    pub proof_stdin: bool,
    pub qr: QrFiles,
    /// How the app makes its codes (`--algorithm`, `--digits`, `--period`).
    pub oath: OathParams,
}

/// The set-up flags of `command` (`enroll`, `devices add`).
pub fn validate_setup(args: SetupArgs, command: &str, json: bool) -> Result<Setup, UsageError> {
    let SetupArgs {
        issuer,
        proof,
        qr_png,
        qr_svg,
        algorithm,
        digits,
        period,
        begin,
        confirm,
    } = args;
    let issuer = validate_issuer(issuer)?;
    let oath = validate_oath(algorithm, digits, period)?;
    let proof_stdin = from_stdin("--proof", proof, ", or leave it out to be asked")?;
    let qr = QrFiles {
        png: validate_output_file("--qr-png", qr_png)?,
        svg: validate_output_file("--qr-svg", qr_svg)?,
    };
    if qr.png.is_some() && qr.png == qr.svg {
        return usage("--qr-png and --qr-svg need two different files");
    }
    let confirm = from_stdin("--confirm", confirm, "")?;
    let mode = match (begin, confirm) {
        (true, true) => return usage("--begin and --confirm cannot be used together"),
        (true, false) => EnrollMode::Begin,
        (false, true) => {
            if proof_stdin || qr != QrFiles::default() {
                return usage("--proof, --qr-png and --qr-svg go with the start of an enrollment, not with --confirm");
            }
            EnrollMode::Confirm
        }
        (false, false) => {
            if json {
                return usage(format!(
                    "--json needs --begin or --confirm - with {command} \
                     (interactive enrollment is for people)"
                ));
            }
            EnrollMode::Interactive
        }
    };
    Ok(Setup {
        issuer,
        mode,
        proof_stdin,
        qr,
        oath,
    })
}

/// `--algorithm`, `--digits`, `--period`: an app's defaults for those left out.
fn validate_oath(
    algorithm: Option<String>,
    digits: Option<u32>,
    period: Option<u32>,
) -> Result<OathParams, UsageError> {
    let app = OathParams::app();
    let oath = OathParams {
        algorithm: algorithm.map_or(app.algorithm, |a| a.trim().to_ascii_uppercase()),
        digits: digits.unwrap_or(app.digits),
        period: period.unwrap_or(app.period),
        counter: 0,
    };
    limits::enrollment_oath(&oath).map_err(|e| {
        let flag = if !limits::OATH_ALGORITHMS.contains(&oath.algorithm.as_str()) {
            "--algorithm"
        } else if !limits::OATH_DIGITS.contains(&oath.digits) {
            "--digits"
        } else {
            "--period"
        };
        UsageError(format!("{flag}: {e}"))
    })?;
    Ok(oath)
}

fn validate_issuer(issuer: Option<String>) -> Result<String, UsageError> {
    let Some(issuer) = issuer else {
        return Ok(String::new());
    };
    let issuer = issuer.trim();
    if issuer.is_empty() {
        return usage("--issuer needs a name (leave it out to use this host's name)");
    }
    limits::issuer(issuer).map_err(|e| UsageError(format!("--issuer: {e}")))?;
    Ok(issuer.to_owned())
}

fn validate_output_file(flag: &str, path: Option<PathBuf>) -> Result<Option<PathBuf>, UsageError> {
    let Some(path) = path else {
        return Ok(None);
    };
    if path.as_os_str().is_empty() {
        return usage(format!("{flag} needs a file name"));
    }
    if path.file_name().is_none() {
        return usage(format!(
            "{flag}: \"{}\" is a directory; give a file name such as qr.png",
            one_line(&path.display().to_string())
        ));
    }
    Ok(Some(path))
}

/// A flag that takes a code accepts only `-` (read it from standard input): argv is
/// readable by every local user (`ps`), so a code there is a code given away. True when
/// the flag is `-`. The refusal never repeats what was given.
pub fn from_stdin(flag: &str, value: Option<String>, otherwise: &str) -> Result<bool, UsageError> {
    let Some(value) = value.map(Zeroizing::new) else {
        return Ok(false);
    };
    if value.as_str() == "-" {
        return Ok(true);
    }
    usage(format!(
        "{flag} takes no code on the command line, where other users can read it: give \
         `{flag} -` and type or pipe the code on standard input{otherwise}"
    ))
}

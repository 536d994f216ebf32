//! A change that may need a proof of possession (a current code or a backup code):
//! `backup-codes regenerate` and `devices remove`.

use twofold_contract::TwofoldError;

use crate::codes::normalize_proof;
use crate::commands::cx::Cx;
use crate::error::Failure;
use crate::prompt::{ask_until_accepted, proof_from_stdin, Checked, Unanswered, TRIES};

/// How one change asks for its proof and says that it was not made.
pub struct ProofWords<'w> {
    pub prompt: &'w str,
    /// Said after a code that did not match: a sentence and a newline.
    pub mismatch: &'w str,
    /// What stays as it was, as "so …" ends a sentence: "the backup codes were not
    /// changed".
    pub not_done: &'w str,
}

/// Makes the change `change(proof)`: with the proof from standard input (`--code -`)
/// when `code_stdin`; else with none when the daemon says this caller needs none; else
/// with a proof asked for until one is accepted (on standard error with `--json`).
pub async fn with_proof<T>(
    cx: &mut Cx<'_>,
    code_stdin: bool,
    words: ProofWords<'_>,
    change: impl AsyncFn(&str) -> Result<T, TwofoldError>,
) -> Result<T, Failure> {
    let daemon = cx.daemon;
    if code_stdin {
        let proof = proof_from_stdin(cx.input, "--code")?;
        return daemon.run(change(&proof)).await;
    }
    if !daemon.enrolled_status().await?.proof_required {
        return daemon.run(change("")).await;
    }
    let (input, prompts) = cx.input_and_prompts();
    let answered = ask_until_accepted(input, prompts, words.prompt, false, async |answer| {
        let proof = match normalize_proof(&answer) {
            Ok(proof) => proof,
            Err(e) => return Ok(Checked::Refused(format!("{e}.\n"))),
        };
        match daemon.call(change(&proof)).await? {
            Ok(changed) => Ok(Checked::Accepted(changed)),
            Err(TwofoldError::InvalidCode(_)) => Ok(Checked::Refused(words.mismatch.to_owned())),
            Err(e) => Err(daemon.context().failure(&e)),
        }
    })
    .await?;
    answered.map_err(|unanswered| match unanswered {
        Unanswered::EndOfInput => Failure::new(format!(
            "No code was entered (end of input), so {}. In scripts, give it on standard \
             input with --code -.",
            words.not_done
        )),
        Unanswered::OutOfTries => Failure::new(format!(
            "No matching code after {TRIES} tries, so {}.",
            words.not_done
        )),
    })
}

//! `twofold disable`: a typed confirmation, the account password, and a current code or
//! backup code; then the daemon checks both and removes the secret and the backup codes.

use serde::Serialize;
use twofold_contract::TwofoldError;
use zeroize::Zeroizing;

use crate::codes::normalize_proof;
use crate::commands::cx::Cx;
use crate::error::Failure;
use crate::prompt::{
    confirm_disable, proof_from_stdin, read_answer, read_password, PasswordSource, PROOF_PROMPT,
};
use crate::text::{capitalize_first, suggest};

/// `disable --json`.
#[derive(Debug, Serialize)]
pub struct DisableJson<'a> {
    pub user: &'a str,
    pub enrolled: bool,
}

/// What `twofold disable` was given on the command line.
pub struct Request {
    pub yes: bool,
    pub password_stdin: bool,
    /// The code is on standard input (`--code -`), after the password if that is too.
    pub code_stdin: bool,
}

/// Runs `twofold disable`. `ask_password` reads a hidden password from the terminal.
pub async fn run(
    cx: &mut Cx<'_>,
    req: &Request,
    ask_password: &mut dyn FnMut(&str) -> std::io::Result<String>,
) -> Result<(), Failure> {
    let daemon = cx.daemon;
    let ctx = daemon.context();
    let user = daemon.user_arg();
    let status = daemon.run(daemon.proxy().status(user)).await?;
    if !status.enrolled {
        return Err(Failure::new(format!(
            "Two-factor authentication is not on for {}: there is nothing to turn off.",
            ctx.who()
        )));
    }
    let (input, prompts) = cx.input_and_prompts();

    // The confirmation first: the code comes last and is checked at once, so a wrong
    // one is said right after it was typed, never after a confirmation.
    if !req.yes && !confirm_disable(input, prompts)? {
        return Err(Failure::new(
            "Not confirmed, so nothing was changed (type the word disable to confirm, or use \
             --yes in scripts).",
        ));
    }
    // The daemon says whether this caller must prove it is the user (root and
    // administrators need not): only then are password and code asked for. What is given
    // on standard input is passed on either way.
    let proof_required = status.proof_required;
    let password = if req.password_stdin {
        read_password(PasswordSource::Stdin, input, prompts, &ctx.who())?
    } else if !proof_required {
        Zeroizing::new(String::new())
    } else {
        read_password(
            PasswordSource::Terminal(ask_password),
            input,
            prompts,
            &ctx.who(),
        )?
    };
    let code = if req.code_stdin {
        proof_from_stdin(input, "--code")?
    } else if !proof_required {
        Zeroizing::new(String::new())
    } else {
        let Some(answer) = read_answer(input, prompts, PROOF_PROMPT)? else {
            return Err(Failure::new(
                "No code was entered (end of input), so nothing was changed. In scripts, \
                 give it on standard input with --code -.",
            ));
        };
        normalize_proof(&answer)
            .map_err(|e| Failure::new(format!("{}. Nothing was changed.", capitalize_first(&e))))?
    };
    match daemon
        .call(daemon.proxy().disable(user, &password, &code))
        .await?
    {
        Ok(()) => {}
        Err(TwofoldError::InvalidCode(_)) => {
            return Err(Failure::new(
                "That code did not match, so nothing was changed. Use the current code \
                 from your app (check that your phone sets its time automatically) or a \
                 backup code.",
            ))
        }
        Err(e) => return Err(ctx.failure(&e)),
    }
    let disabled = DisableJson {
        user: &status.user,
        enrolled: false,
    };
    cx.out.answer(&disabled, || {
        format!(
            "Two-factor authentication is now off for {}. The authenticator app's entry \
             and the backup codes no longer work; you may delete them. To turn it on \
             again: `{}`.\n",
            ctx.who(),
            suggest("enroll", ctx.user)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(DisableJson {
            user: "alice",
            enrolled: false,
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"user": "alice", "enrolled": false}));
    }
}

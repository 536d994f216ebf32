//! Asking people for things: answers read line by line from standard input, the account
//! password without echo from the terminal.

use std::io::{self, BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

use crate::codes::normalize_proof;
use crate::error::Failure;
use crate::output::write_out;
use crate::text::capitalize_first;

/// How many times a prompt for a code is repeated after a wrong code.
pub const TRIES: usize = 3;

/// Prompt for a proof of possession (re-enrollment, regenerate, disable).
pub const PROOF_PROMPT: &str = "Enter a current code or a backup code: ";

/// Prompt for a proof from the old device when re-enrolling.
pub const OLD_DEVICE_PROMPT: &str = "Enter a current code or a backup code from your old device: ";

/// The words to type to confirm `twofold disable`.
pub const DISABLE_WORD: &str = "disable";

/// One answer read from `input` after printing `prompt`; `None` at end of input.
pub fn read_answer(
    input: &mut (impl BufRead + ?Sized),
    out: &mut (impl Write + ?Sized),
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
            "Could not read the answer from standard input: {e}"
        ))),
    }
}

/// What `check` made of one answer at a prompt.
pub enum Checked<T> {
    /// The answer did it.
    Accepted(T),
    /// The answer was wrong; the line says why, and the prompt is asked again.
    Refused(String),
}

/// How asking ended without an accepted answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    EndOfInput,
    OutOfTries,
}

/// Asks `prompt` up to [`TRIES`] times until `check` accepts an answer. After a refused
/// answer the reason is said (as a sentence) and, when `count_down`, how many tries are
/// left.
pub async fn ask_until_accepted<T>(
    input: &mut (impl BufRead + ?Sized),
    out: &mut (impl Write + ?Sized),
    prompt: &str,
    count_down: bool,
    mut check: impl AsyncFnMut(Zeroizing<String>) -> Result<Checked<T>, Failure>,
) -> Result<Result<T, Unanswered>, Failure> {
    for attempt in 1..=TRIES {
        let Some(answer) = read_answer(input, out, prompt)? else {
            return Ok(Err(Unanswered::EndOfInput));
        };
        match check(answer).await? {
            Checked::Accepted(value) => return Ok(Ok(value)),
            Checked::Refused(why) => write_out(out, &capitalize_first(&why))?,
        }
        if attempt == TRIES {
            break;
        }
        if count_down {
            write_out(out, &tries_left(TRIES - attempt))?;
        }
    }
    Ok(Err(Unanswered::OutOfTries))
}

/// "2 tries left." after a wrong code at a prompt.
fn tries_left(n: usize) -> String {
    match n {
        1 => "1 try left.\n".to_owned(),
        n => format!("{n} tries left.\n"),
    }
}

/// The code of a `FLAG -`: the first line of standard input, as typed (the caller
/// checks its form). On a terminal the person is asked first, on standard error so that
/// standard output stays for the result.
pub fn code_from_stdin(
    input: &mut (impl BufRead + ?Sized),
    flag: &str,
    prompt: &str,
) -> Result<Zeroizing<String>, Failure> {
    if io::stdin().is_terminal() {
        write_out(&mut io::stderr(), prompt)?;
    }
    let mut line = Zeroizing::new(String::new());
    match input.read_line(&mut line) {
        Ok(0) => Err(Failure::new(format!(
            "{flag} -: standard input is empty; give the code on its first line. \
             Nothing was changed."
        ))),
        Ok(_) => Ok(line),
        // Not UTF-8: no code at all; the caller words it like any other malformed code.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(line),
        Err(e) => Err(Failure::new(format!(
            "{flag} -: could not read the code from standard input: {e}"
        ))),
    }
}

/// A current code or backup code given with `FLAG -` on standard input, checked.
pub fn proof_from_stdin(
    input: &mut (impl BufRead + ?Sized),
    flag: &str,
) -> Result<Zeroizing<String>, Failure> {
    let typed = code_from_stdin(input, flag, PROOF_PROMPT)?;
    normalize_proof(&typed)
        .map_err(|e| Failure::new(format!("{flag} -: {e}. Nothing was changed.")))
}

/// The line without its line ending (and nothing else: spaces in passwords count).
pub fn without_newline(line: &str) -> &str {
    line.strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(line)
}

/// Where the account password comes from.
pub enum PasswordSource<'a> {
    /// The first line of standard input (`--password-stdin`).
    Stdin,
    /// The terminal, without echo; the function reads it (rpassword in the program).
    Terminal(&'a mut dyn FnMut(&str) -> io::Result<String>),
}

/// Asks for the account password of `who` ("your account", "user alice").
pub fn read_password(
    source: PasswordSource<'_>,
    input: &mut (impl BufRead + ?Sized),
    out: &mut (impl Write + ?Sized),
    who: &str,
) -> Result<Zeroizing<String>, Failure> {
    match source {
        PasswordSource::Stdin => {
            let mut line = Zeroizing::new(String::new());
            match input.read_line(&mut line) {
                Ok(0) => Err(Failure::new(
                    "--password-stdin: standard input is empty; give the password on its \
                     first line.",
                )),
                Ok(_) => Ok(Zeroizing::new(without_newline(&line).to_owned())),
                Err(e) => Err(Failure::new(format!(
                    "--password-stdin: could not read the password: {e}"
                ))),
            }
        }
        PasswordSource::Terminal(ask) => {
            out.flush().ok();
            let prompt = format!("Password of {who}: ");
            match ask(&prompt) {
                Ok(p) => Ok(Zeroizing::new(p)),
                Err(e) if is_no_terminal(&e) => Err(Failure::new(
                    "There is no terminal to ask for the password. In scripts, give it on \
                     standard input with --password-stdin.",
                )),
                Err(e) => Err(Failure::new(format!("Could not read the password: {e}"))),
            }
        }
    }
}

fn is_no_terminal(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::UnexpectedEof
    ) || e.raw_os_error() == Some(libc::ENXIO)
        || e.raw_os_error() == Some(libc::ENOTTY)
}

/// The hidden password prompt of the real program: on /dev/tty, without echo.
pub fn terminal_password(prompt: &str) -> io::Result<String> {
    rpassword::prompt_password(prompt)
}

/// Asks for the typed confirmation of `twofold disable`; true when confirmed.
pub fn confirm_disable(
    input: &mut (impl BufRead + ?Sized),
    out: &mut (impl Write + ?Sized),
) -> Result<bool, Failure> {
    let answer = read_answer(
        input,
        out,
        &format!("Type '{DISABLE_WORD}' to turn off two-factor authentication: "),
    )?;
    Ok(answer.is_some_and(|a| a.trim() == DISABLE_WORD))
}

/// True when the program runs as root: only for reading files that need it (`doctor`);
/// whether a code is needed, the daemon says (`UserStatus::proof_required`).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(typed: &str, count_down: bool) -> (Result<u8, Unanswered>, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut input = io::Cursor::new(typed.to_owned());
        let mut out = Vec::new();
        let answered = runtime
            .block_on(ask_until_accepted(
                &mut input,
                &mut out,
                "Code: ",
                count_down,
                async |answer| {
                    Ok(match answer.trim() {
                        "123456" => Checked::Accepted(7),
                        _ => Checked::Refused("that is not it.\n".to_owned()),
                    })
                },
            ))
            .unwrap();
        (answered, String::from_utf8(out).unwrap())
    }

    #[test]
    fn asks_again_until_accepted_or_out_of_tries() {
        let (answered, said) = ask("1\n123456\n", true);
        assert_eq!(answered, Ok(7));
        assert_eq!(said, "Code: That is not it.\n2 tries left.\nCode: ");
        let (answered, said) = ask("1\n2\n3\n123456\n", true);
        assert_eq!(answered, Err(Unanswered::OutOfTries));
        assert_eq!(said.matches("Code: ").count(), TRIES, "{said}");
        assert!(
            said.ends_with("1 try left.\nCode: That is not it.\n"),
            "{said}"
        );
        let (answered, said) = ask("1\n", false);
        assert_eq!(answered, Err(Unanswered::EndOfInput));
        assert_eq!(said, "Code: That is not it.\nCode: ");
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
        assert!(crate::codes::normalize_code(&a, Some(6)).is_err());
    }

    #[test]
    fn code_from_stdin_reads_one_line() {
        let mut input = io::Cursor::new(b"123456\nnext\n".to_vec());
        let c = code_from_stdin(&mut input, "--code", "Code: ").unwrap();
        assert_eq!(c.as_str(), "123456\n");
        let mut empty = io::Cursor::new(Vec::new());
        let e = code_from_stdin(&mut empty, "--confirm", "Code: ").unwrap_err();
        assert!(
            e.message()
                .starts_with("--confirm -: standard input is empty"),
            "{e}"
        );
    }

    #[test]
    fn password_from_stdin_keeps_spaces() {
        let mut out = Vec::new();
        let mut input = io::Cursor::new(b" pass word \r\n123456\n".to_vec());
        let p = read_password(PasswordSource::Stdin, &mut input, &mut out, "x").unwrap();
        assert_eq!(p.as_str(), " pass word ");
        // The next line is still there for the code prompt.
        let a = read_answer(&mut input, &mut out, "").unwrap().unwrap();
        assert_eq!(a.trim(), "123456");
        let mut empty = io::Cursor::new(Vec::new());
        assert!(read_password(PasswordSource::Stdin, &mut empty, &mut out, "x").is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn password_from_terminal() {
        let mut out = Vec::new();
        let mut input = io::Cursor::new(Vec::new());
        let mut from_terminal = |ask: &mut dyn FnMut(&str) -> io::Result<String>, who: &str| {
            read_password(PasswordSource::Terminal(ask), &mut input, &mut out, who)
        };
        let mut seen = String::new();
        let mut ask = |prompt: &str| {
            seen = prompt.to_owned();
            Ok("hunter2".to_owned())
        };
        let p = from_terminal(&mut ask, "user bob").unwrap();
        assert_eq!(p.as_str(), "hunter2");
        assert_eq!(seen, "Password of user bob: ");
        let mut no_tty = |_: &str| Err(io::Error::from_raw_os_error(libc::ENXIO));
        let e = from_terminal(&mut no_tty, "x").unwrap_err();
        assert!(e.message().contains("--password-stdin"), "{e}");
    }

    #[test]
    fn confirmation_needs_the_word() {
        let mut out = Vec::new();
        for (typed, ok) in [
            ("disable\n", true),
            ("  disable \n", true),
            ("yes\n", false),
            ("Disable\n", false),
            ("", false),
        ] {
            let mut input = io::Cursor::new(typed.as_bytes().to_vec());
            assert_eq!(
                confirm_disable(&mut input, &mut out).unwrap(),
                ok,
                "{typed:?}"
            );
        }
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("Type 'disable' to turn off two-factor authentication: "));
    }
}

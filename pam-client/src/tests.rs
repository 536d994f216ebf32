//! Transactions through the real libpam, against service files in a private directory
//! (`pam_start_confdir`) built from stock modules.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::*;

/// Answers every prompt with one text and records every message.
struct Recorder {
    answer: &'static str,
    seen: Vec<(Style, String)>,
}

impl Converser for Recorder {
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        self.seen.push((message.style, message.text().into_owned()));
        Ok(message
            .style
            .is_prompt()
            .then(|| Zeroizing::new(self.answer.as_bytes().to_vec())))
    }
}

fn service(dir: &Path, name: &str, lines: &str) -> (CString, CString) {
    std::fs::write(dir.join(name), lines).unwrap();
    (
        CString::new(dir.to_str().unwrap()).unwrap(),
        CString::new(name).unwrap(),
    )
}

fn cstr(text: &str) -> CString {
    CString::new(text).unwrap()
}

#[test]
fn authenticate_gives_the_stacks_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut quiet = NoConversation;
    let (confdir, permit) = service(dir.path(), "permit", "auth required pam_permit.so\n");
    let mut tx = Transaction::start(&permit, &cstr("nobody"), Some(&confdir), &mut quiet).unwrap();
    assert_eq!(tx.authenticate(0), Ok(()));
    assert_eq!(tx.last_status(), SUCCESS);
    drop(tx);

    let (confdir, deny) = service(dir.path(), "deny", "auth required pam_deny.so\n");
    let mut tx = Transaction::start(&deny, &cstr("nobody"), Some(&confdir), &mut quiet).unwrap();
    let denied = tx.authenticate(SILENT).unwrap_err();
    assert_eq!(denied, PamError(7), "PAM_AUTH_ERR");
    assert_eq!(tx.last_status(), 7);
    assert_eq!(tx.strerror(denied.0), "Authentication failure");
}

#[test]
fn a_module_gets_the_conversers_answer() {
    let dir = tempfile::tempdir().unwrap();
    // pam_exec with expose_authtok prompts for the password and writes it to the
    // program's standard input.
    let got = dir.path().join("got");
    let program = dir.path().join("record");
    std::fs::write(&program, format!("#!/bin/sh\ncat > {}\n", got.display())).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lines = format!(
        "auth optional pam_echo.so Hello\nauth required pam_exec.so expose_authtok {}\n",
        program.display()
    );
    let (confdir, name) = service(dir.path(), "prompting", &lines);
    let mut recorder = Recorder {
        answer: "right answer",
        seen: Vec::new(),
    };
    let mut tx = Transaction::start(&name, &cstr("nobody"), Some(&confdir), &mut recorder).unwrap();
    assert_eq!(tx.authenticate(0), Ok(()));
    drop(tx);
    assert_eq!(
        recorder.seen,
        [
            (Style::TextInfo, "Hello".into()),
            (Style::PromptEchoOff, "Password: ".into()),
        ]
    );
    let written = std::fs::read(&got).unwrap();
    assert!(written.starts_with(b"right answer"), "{written:?}");
}

#[test]
fn a_session_opens_and_closes_with_items_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (confdir, name) = service(dir.path(), "session", "session required pam_permit.so\n");
    let mut quiet = NoConversation;
    let mut tx = Transaction::start(&name, &cstr("nobody"), Some(&confdir), &mut quiet).unwrap();
    assert_eq!(tx.set_item(Item::Tty, &cstr("pts/9")), Ok(()));
    assert_eq!(tx.set_item(Item::Rhost, &cstr("127.0.0.1")), Ok(()));
    assert_eq!(tx.set_item(Item::Ruser, &cstr("somebody")), Ok(()));
    assert_eq!(tx.putenv(&cstr("TWOFOLD_TEST=1")), Ok(()));
    assert_eq!(tx.open_session(0), Ok(()));
    assert_eq!(tx.close_session(0), Ok(()));
}

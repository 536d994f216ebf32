//! pamdriver: runs the real libpam (`pam_start_confdir` + `pam_authenticate`) against a
//! private PAM config directory, answering prompts from the command line, and prints
//! one JSON line per attempt: result, messages, elapsed time, thread counts, and the open
//! descriptors and signal state before and after.
//!
//! Usage: pamdriver --confdir DIR --service NAME (--user USER | --user-hex HEX)
//!        [--tty TTY] [--rhost HOST] [--ruser USER] [--response TEXT]... [--repeat N]
//!        [--hold]
//!
//! With `--hold`, a prompt left without a response is a user who does not answer: the
//! driver prints `waiting at the prompt` (a line of its own) and blocks until its
//! standard input closes, then fails the conversation.

use std::io::{Read, Write};
use std::time::Instant;

use twofold_pam_client::{Answer, ConversationFailed, Converser, Message, Style};
use twofold_tests::driver::Target;
use twofold_tests::process_state::{threads, ProcessState};

/// The user at the keyboard: answers prompts from the command line, in order, and
/// records every message for the JSON line.
#[derive(Default)]
struct Script {
    responses: Vec<String>,
    hold: bool,
    next: usize,
    messages: Vec<serde_json::Value>,
}

impl Converser for Script {
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        let style = match message.style {
            Style::PromptEchoOff => "prompt_echo_off",
            Style::PromptEchoOn => "prompt_echo_on",
            Style::ErrorMsg => "error",
            Style::TextInfo => "info",
            Style::Other(_) => "other",
        };
        self.messages
            .push(serde_json::json!({"style": style, "text": message.text()}));
        if !message.style.is_prompt() {
            return Ok(None);
        }
        if self.hold && self.next == self.responses.len() {
            println!("waiting at the prompt");
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        let answer = self.responses.get(self.next).ok_or(ConversationFailed)?;
        self.next += 1;
        Ok(Some(Answer::new(answer.as_bytes().to_vec())))
    }
}

fn main() {
    let mut responses = Vec::new();
    let mut repeat = 1usize;
    let mut hold = false;
    let target = Target::from_args(|flag, value| match flag {
        "--response" => responses.push(value()),
        "--repeat" => repeat = value().parse().expect("--repeat N"),
        "--hold" => hold = true,
        other => panic!("unknown flag {other}"),
    });
    for _ in 0..repeat {
        let mut script = Script {
            responses: responses.clone(),
            hold,
            ..Default::default()
        };
        let threads_before = threads();
        let state_before = ProcessState::now();
        let started = Instant::now();
        let mut tx = target.start(&mut script);
        let _ = tx.authenticate(0);
        let result = tx.last_status();
        let name = tx.strerror(result);
        // Ends the transaction (pam_end) inside the timed span, as a login program does.
        drop(tx);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let line = serde_json::json!({
            "result": result,
            "strerror": name,
            "messages": script.messages,
            "elapsed_ms": elapsed_ms,
            "threads_before": threads_before,
            "threads_after": threads(),
            "state_before": state_before,
            "state_after": ProcessState::now(),
        });
        println!("{line}");
    }
}

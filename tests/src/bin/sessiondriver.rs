//! sessiondriver: opens a PAM session with the real libpam (`pam_start_confdir` +
//! `pam_open_session`) against a private PAM config directory, stays alive as the
//! session leader until its standard input closes, then closes the session.
//!
//! Usage: sessiondriver --confdir DIR --service NAME (--user USER | --user-hex HEX) [--tty TTY]
//!        [--rhost HOST] [--ruser USER] [--env NAME=VALUE]...
//!
//! Prints `open RC ELAPSED_MS THREADS_BEFORE THREADS_AFTER` after opening and
//! `close RC` after closing, one line each.

use std::ffi::CString;
use std::io::{Read, Write};
use std::time::Instant;

use twofold_pam_client::NoConversation;
use twofold_tests::driver::Target;
use twofold_tests::process_state::threads;

fn main() {
    let mut env = Vec::new();
    let target = Target::from_args(|flag, value| match flag {
        "--env" => env.push(value()),
        other => panic!("unknown flag {other}"),
    });
    // Session hooks must not talk to the user: any conversation is an error.
    let mut no_conversation = NoConversation;
    let mut tx = target.start(&mut no_conversation);
    for e in &env {
        let e = CString::new(e.as_str()).unwrap();
        tx.putenv(&e).expect("pam_putenv");
    }
    let before = threads();
    let started = Instant::now();
    let _ = tx.open_session(0);
    let rc = tx.last_status();
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    println!("open {rc} {elapsed:.0} {before} {}", threads());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let _ = tx.close_session(0);
    println!("close {}", tx.last_status());
    std::io::stdout().flush().unwrap();
    // Dropping the transaction ends it (pam_end) with the close's status.
}

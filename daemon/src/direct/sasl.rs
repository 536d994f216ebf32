//! The server's side of D-Bus authentication (specification, "Authentication
//! Protocol") on a direct connection: `EXTERNAL` only, for the uid the kernel gave for
//! the socket's peer, and no file-descriptor passing.
//!
//! The peer's uid is `SO_PEERCRED`'s, read when the connection was accepted; the
//! exchange only lets the client confirm it (a client that claims another uid is
//! rejected). A client may send `BEGIN` and its first messages without waiting for `OK`
//! (sd-bus and pam_twofold.so do): whatever follows `BEGIN` stays in the buffer.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use zeroize::Zeroizing;

use super::{fill, Ended};

/// Longest line of the exchange.
const MAX_LINE: usize = 512;
/// Commands before `BEGIN`: a client needs three (`AUTH`, `NEGOTIATE_UNIX_FD`, `BEGIN`).
const MAX_COMMANDS: usize = 16;

/// Runs the exchange until the client's `BEGIN` after a successful `AUTH`, by
/// `deadline`. Bytes read past it are left in `input`.
pub fn handshake(
    stream: &mut UnixStream,
    input: &mut Zeroizing<Vec<u8>>,
    peer_uid: u32,
    guid: &str,
    deadline: Instant,
) -> Result<(), String> {
    // The first byte is the credentials byte, a NUL.
    fill(stream, input, 1, deadline).map_err(|e| e.to_string())?;
    if input[0] != 0 {
        return Err("the first byte is not NUL".into());
    }
    input.drain(..1);
    let mut state = State::Waiting;
    for _ in 0..MAX_COMMANDS {
        let line = read_line(stream, input, deadline)?;
        let (answer, next) = respond(&line, state, peer_uid, guid);
        if next == State::Begun {
            return Ok(());
        }
        if let Some(answer) = answer {
            stream
                .write_all(answer.as_bytes())
                .map_err(|e| format!("writing the handshake: {e}"))?;
        }
        state = next;
    }
    Err(format!("no BEGIN after {MAX_COMMANDS} commands"))
}

/// Where the exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No successful `AUTH` yet.
    Waiting,
    /// `AUTH EXTERNAL` without an identity: the client's `DATA` follows.
    WaitingForData,
    /// `OK` sent.
    Authenticated,
    /// `BEGIN` received after `OK`.
    Begun,
}

/// The answer to one command line (without its `\r\n`) and the next state. A `BEGIN`
/// before `OK` is refused by ending the exchange.
fn respond(line: &str, state: State, peer_uid: u32, guid: &str) -> (Option<String>, State) {
    let rejected = || (Some("REJECTED EXTERNAL\r\n".to_owned()), State::Waiting);
    let ok = || (Some(format!("OK {guid}\r\n")), State::Authenticated);
    let (command, argument) = line.split_once(' ').unwrap_or((line, ""));
    match (command, state) {
        ("AUTH", _) => match argument.split_once(' ') {
            Some(("EXTERNAL", identity)) if claims(identity, peer_uid) => ok(),
            None if argument == "EXTERNAL" => (Some("DATA\r\n".to_owned()), State::WaitingForData),
            _ => rejected(),
        },
        ("DATA", State::WaitingForData) if argument.is_empty() || claims(argument, peer_uid) => {
            ok()
        }
        ("DATA", State::WaitingForData) | ("CANCEL" | "ERROR", _) => rejected(),
        ("NEGOTIATE_UNIX_FD", State::Authenticated) => (
            Some("ERROR \"file descriptors are not passed here\"\r\n".to_owned()),
            State::Authenticated,
        ),
        ("BEGIN", State::Authenticated) => (None, State::Begun),
        ("BEGIN", _) => (Some("ERROR \"not authenticated\"\r\n".to_owned()), state),
        _ => (Some("ERROR \"unknown command\"\r\n".to_owned()), state),
    }
}

/// Whether the hex-encoded identity is `uid` in decimal (the form every client uses).
fn claims(hex: &str, uid: u32) -> bool {
    let expected: String = uid
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.eq_ignore_ascii_case(&expected)
}

/// One `\r\n`-terminated line, taken out of `input` (reading more as needed).
fn read_line(
    stream: &mut UnixStream,
    input: &mut Zeroizing<Vec<u8>>,
    deadline: Instant,
) -> Result<String, String> {
    loop {
        if let Some(end) = input.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8(input[..end].to_vec())
                .map_err(|_| "a handshake line that is not UTF-8".to_owned())?;
            input.drain(..end + 2);
            return Ok(line);
        }
        if input.len() > MAX_LINE {
            return Err("an over-long handshake line".into());
        }
        let len = input.len() + 1;
        fill(stream, input, len, deadline).map_err(|e: Ended| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "0123456789abcdef0123456789abcdef";
    /// "0" in hex: root's claim.
    const ROOT: &str = "30";

    fn run(lines: &[&str], uid: u32) -> Vec<(Option<String>, State)> {
        let mut state = State::Waiting;
        lines
            .iter()
            .map(|line| {
                let step = respond(line, state, uid, GUID);
                state = step.1;
                step
            })
            .collect()
    }

    #[test]
    fn external_for_the_peers_uid_with_or_without_data() {
        let steps = run(
            &[
                &format!("AUTH EXTERNAL {ROOT}"),
                "NEGOTIATE_UNIX_FD",
                "BEGIN",
            ],
            0,
        );
        assert_eq!(
            steps[0].0.as_deref(),
            Some(format!("OK {GUID}\r\n").as_str())
        );
        assert!(steps[1].0.as_deref().unwrap().starts_with("ERROR"));
        assert_eq!(steps[2], (None, State::Begun));

        let steps = run(&["AUTH EXTERNAL", "DATA", "BEGIN"], 0);
        assert_eq!(steps[0].0.as_deref(), Some("DATA\r\n"));
        assert_eq!(steps[1].1, State::Authenticated);
        assert_eq!(steps[2].1, State::Begun);
        // 1000 = "31303030"
        let steps = run(&["AUTH EXTERNAL", "DATA 31303030", "BEGIN"], 1000);
        assert_eq!(steps[2].1, State::Begun);
    }

    #[test]
    fn another_uid_other_mechanisms_and_begin_before_ok_are_refused() {
        // Claiming root from uid 1000.
        let steps = run(&[&format!("AUTH EXTERNAL {ROOT}"), "BEGIN"], 1000);
        assert_eq!(steps[0].0.as_deref(), Some("REJECTED EXTERNAL\r\n"));
        assert_ne!(steps[1].1, State::Begun);
        let steps = run(&["AUTH EXTERNAL", "DATA 30", "BEGIN"], 1000);
        assert_ne!(steps[2].1, State::Begun);
        for line in [
            "AUTH",
            "AUTH DBUS_COOKIE_SHA1 30",
            "AUTH ANONYMOUS",
            "BEGIN",
        ] {
            let steps = run(&[line, "BEGIN"], 0);
            assert_ne!(steps[1].1, State::Begun, "{line}");
        }
        // CANCEL takes an OK back.
        let steps = run(&[&format!("AUTH EXTERNAL {ROOT}"), "CANCEL", "BEGIN"], 0);
        assert_ne!(steps[2].1, State::Begun);
        assert!(run(&["HELLO"], 0)[0]
            .0
            .as_deref()
            .unwrap()
            .starts_with("ERROR"));
    }
}

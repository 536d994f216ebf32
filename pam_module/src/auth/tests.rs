//! `authenticate` against a scripted conversation and a scripted daemon.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use pam::constants::PamResultCode;
use twofold_contract::{method, ErrorKind, LoginState, Verified, MAX_CODE_LEN};
use zeroize::Zeroizing;

use super::*;
use crate::client::MAX_ITEM_LEN;
use crate::mock::{MockConnector, MockLog, Record};
use crate::options::{FailMode, Options};

// ---------------------------------------------------------------- mocks

#[derive(Default)]
struct MockConv {
    replies: VecDeque<Result<String, ConvError>>,
    prompts: Vec<String>,
    infos: Vec<String>,
    errors: Vec<String>,
    /// Every `set_authtok` call, in order.
    authtoks: Vec<Vec<u8>>,
    /// `set_authtok` fails (libpam's PAM_BUF_ERR).
    authtok_fails: bool,
    /// Answers came through `prompt_hidden_raw`.
    raw_prompts: usize,
    /// The daemon connections, to note how many are open at each prompt.
    record: Option<Rc<RefCell<Record>>>,
}

impl Conversation for MockConv {
    fn prompt_hidden(&mut self, msg: &str) -> Result<Zeroizing<String>, ConvError> {
        self.prompts.push(msg.to_owned());
        if let Some(record) = &self.record {
            let mut record = record.borrow_mut();
            let open = record.open;
            record.open_at_prompts.push(open);
        }
        self.replies
            .pop_front()
            .expect("unexpected prompt")
            .map(Zeroizing::new)
    }
    fn info(&mut self, msg: &str) {
        self.infos.push(msg.to_owned());
    }
    fn error(&mut self, msg: &str) {
        self.errors.push(msg.to_owned());
    }
    fn prompt_hidden_raw(&mut self, msg: &str) -> Result<Zeroizing<Vec<u8>>, ConvError> {
        self.raw_prompts += 1;
        self.prompt_hidden(msg)
            .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
    }
}

impl AuthTok for MockConv {
    fn set_authtok(&mut self, authtok: &[u8]) -> Result<(), AuthTokError> {
        self.authtoks.push(authtok.to_vec());
        if self.authtok_fails {
            Err(AuthTokError(5))
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- helpers

fn enrolled() -> LoginState {
    LoginState {
        enrolled: true,
        ..Default::default()
    }
}

fn not_enrolled_status() -> LoginState {
    LoginState {
        enrolled: false,
        ..enrolled()
    }
}

fn totp() -> Verified {
    Verified {
        method: method::TOTP.into(),
        backup_codes_left: 10,
        step_offset: 0,
    }
}

fn backup(left: u32) -> Verified {
    Verified {
        method: method::BACKUP_CODE.into(),
        backup_codes_left: left,
        step_offset: 0,
    }
}

/// Not enrolled, in a `require_groups` group whose enrollment deadline is `deadline`,
/// with the daemon's `message`.
fn required(deadline: i64, message: &str) -> LoginState {
    LoginState {
        enrolled: false,
        required: true,
        enroll_deadline: deadline,
        message: message.into(),
        ..Default::default()
    }
}

/// Not enrolled, with a bypass code from an administrator's reset waiting.
fn bypass_pending() -> LoginState {
    LoginState {
        enrolled: false,
        bypass_pending: true,
        ..Default::default()
    }
}

fn bypass() -> Verified {
    Verified {
        method: method::BYPASS.into(),
        backup_codes_left: 0,
        step_offset: 0,
    }
}

fn ctx() -> LoginContext {
    LoginContext {
        service: Some("sshd".into()),
        tty: Some("ssh".into()),
        rhost: Some("192.0.2.7".into()),
        ruser: None,
    }
}

struct Case {
    opts: Options,
    user: Vec<u8>,
    connect: Result<(), String>,
    reconnect: Option<Result<(), String>>,
    impostor: Option<String>,
    status: Option<Result<LoginState, CallError>>,
    replies: Vec<Result<String, ConvError>>,
    verify: Option<Result<Verified, CallError>>,
    grace: Option<bool>,
    authtok_fails: bool,
}

impl Case {
    fn new() -> Self {
        Case {
            opts: Options::default(),
            user: b"alice".to_vec(),
            connect: Ok(()),
            reconnect: None,
            impostor: None,
            status: Some(Ok(enrolled())),
            replies: vec![Ok("123456".into())],
            verify: Some(Ok(totp())),
            grace: None,
            authtok_fails: false,
        }
    }
    fn opts(mut self, f: impl FnOnce(&mut Options)) -> Self {
        f(&mut self.opts);
        self
    }
    fn status(mut self, s: Result<LoginState, CallError>) -> Self {
        self.status = Some(s);
        self
    }
    fn typed(mut self, r: Result<&str, ConvError>) -> Self {
        self.replies = vec![r.map(str::to_owned)];
        self
    }
    fn verify(mut self, v: Result<Verified, CallError>) -> Self {
        self.verify = Some(v);
        self
    }
    fn run(self) -> Outcome {
        let record = Rc::new(RefCell::new(Record::default()));
        let mut conv = MockConv {
            replies: self.replies.into_iter().collect(),
            authtok_fails: self.authtok_fails,
            record: Some(record.clone()),
            ..MockConv::default()
        };
        let mut connector = MockConnector {
            connect: self.connect,
            reconnect: self.reconnect,
            impostor: self.impostor,
            status: self.status,
            verify: self.verify,
            grace: self.grace.map(Ok),
            record: record.clone(),
            ..MockConnector::new()
        };
        let mut log = MockLog::default();
        let code = authenticate(
            &self.opts,
            &self.user,
            &ctx(),
            &mut conv,
            &mut connector,
            &mut log,
        );
        drop(connector);
        conv.record = None;
        let record = Rc::try_unwrap(record)
            .ok()
            .expect("the daemon connection outlived authenticate")
            .into_inner();
        let out = Outcome {
            code,
            conv,
            log,
            record,
        };
        out.assert_no_secret_logged();
        assert_eq!(
            out.record.open, 0,
            "a daemon connection outlived authenticate"
        );
        assert!(
            out.record.open_at_prompts.iter().all(|open| *open == 0),
            "a daemon connection was held while the user typed: {:?}",
            out.record.open_at_prompts
        );
        if !self.opts.forward_pass {
            // Without forward_pass, PAM_AUTHTOK is never touched and answers are read
            // as before.
            assert!(out.conv.authtoks.is_empty());
            assert_eq!(out.conv.raw_prompts, 0);
        }
        out
    }
}

struct Outcome {
    code: PamResultCode,
    conv: MockConv,
    log: MockLog,
    record: Record,
}

impl Outcome {
    fn assert_no_secret_logged(&self) {
        for (_, typed, _) in &self.record.verifies {
            if typed.is_empty() {
                continue;
            }
            for (_, line) in &self.log.lines {
                assert!(!line.contains(typed.as_str()), "code logged: {line}");
            }
        }
    }
    /// The login ended with `code` in phase 1: no prompt, no `Verify`.
    fn assert_ended_unprompted(&self, code: PamResultCode) {
        assert_eq!(self.code, code);
        self.assert_not_prompted();
    }
    fn assert_not_prompted(&self) {
        assert!(self.conv.prompts.is_empty(), "{:?}", self.conv.prompts);
        assert!(self.record.verifies.is_empty());
    }
    fn sent_code(&self) -> &str {
        assert_eq!(self.record.verifies.len(), 1);
        &self.record.verifies[0].1
    }
}

/// The daemon's answer refusing with `kind`.
fn refused<T>(kind: ErrorKind, message: &str) -> Result<T, CallError> {
    Err(CallError::daemon(kind, message))
}

fn unavailable_err() -> CallError {
    CallError::Unavailable("timed out after 5s".into())
}

// ---------------------------------------------------------------- tests

#[test]
fn right_code_succeeds() {
    let out = Case::new().run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.conv.prompts, ["Verification code: "]);
    assert!(out.conv.infos.is_empty() && out.conv.errors.is_empty());
    // One connection for BeginLogin, closed before the prompt; one for Verify.
    assert_eq!(out.record.connects, 2);
    assert_eq!(out.record.open_at_prompts, [0]);
    assert_eq!(out.record.statuses, ["alice"]);
    let (user, code, context) = &out.record.verifies[0];
    assert_eq!(user, "alice");
    assert_eq!(code, "123456");
    let expected: HashMap<String, String> =
        [("service", "sshd"), ("tty", "ssh"), ("rhost", "192.0.2.7")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(context, &expected);
    assert!(out.record.dropped);
    assert!(out.log.has(
        Level::Notice,
        "2FA succeeded for user \"alice\" (service sshd, rhost 192.0.2.7)"
    ));
    assert!(out.log.lines.iter().all(|(l, _)| *l != Level::Debug));
}

#[test]
fn custom_prompt_is_used() {
    let out = Case::new().opts(|o| o.prompt = "OTP: ".into()).run();
    assert_eq!(out.conv.prompts, ["OTP: "]);
}

#[test]
fn wrong_code_fails() {
    let out = Case::new()
        .verify(refused(ErrorKind::InvalidCode, "invalid code"))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert!(out.conv.errors.is_empty());
    // The daemon records the failure; the module adds a line only with `debug`.
    assert!(
        !out.log.has(Level::Notice, "2FA failed"),
        "{:?}",
        out.log.lines
    );
    let out = Case::new()
        .opts(|o| o.debug = true)
        .verify(refused(ErrorKind::InvalidCode, "invalid code"))
        .run();
    assert!(out
        .log
        .has(Level::Debug, "2FA failed: invalid code for user \"alice\""));
}

#[test]
fn invalid_argument_and_permission_denied_fail() {
    for e in [
        CallError::daemon(ErrorKind::InvalidArgument, "code too long"),
        CallError::daemon(ErrorKind::PermissionDenied, "no"),
    ] {
        let out = Case::new().verify(Err(e)).run();
        assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    }
    for e in [
        CallError::daemon(ErrorKind::InvalidArgument, "bad user"),
        CallError::daemon(ErrorKind::PermissionDenied, "no"),
    ] {
        let out = Case::new().status(Err(e)).run();
        out.assert_ended_unprompted(PamResultCode::PAM_AUTH_ERR);
    }
}

#[test]
fn locked_in_phase_1_by_status() {
    let out = Case::new()
        .status(Ok(LoginState {
            locked_for: 600,
            ..enrolled()
        }))
        .run();
    out.assert_ended_unprompted(PamResultCode::PAM_MAXTRIES);
    assert_eq!(out.conv.errors.len(), 1);
    let msg = &out.conv.errors[0];
    assert!(
        msg == "Too many failed attempts. Try again in 600 seconds."
            || msg == "Too many failed attempts. Try again in 599 seconds.",
        "{msg}"
    );
}

#[test]
fn no_lock_means_a_prompt() {
    let out = Case::new()
        .status(Ok(LoginState {
            locked_for: 0,
            ..enrolled()
        }))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
}

#[test]
fn required_within_grace_steps_aside_with_the_deadline() {
    let out = Case::new()
        .status(Ok(required(
            now_unix() + 86_400,
            "required from 2030-01-01; run `twofold enroll`",
        )))
        .run();
    out.assert_ended_unprompted(PamResultCode::PAM_IGNORE);
    assert_eq!(
        out.conv.infos,
        ["required from 2030-01-01; run `twofold enroll`"]
    );
}

/// Refused in phase 1 in the daemon's own words: past the enrollment deadline (even
/// with nullok), or locked out (by an error).
#[test]
fn refused_before_the_prompt_in_the_daemons_words() {
    let past_deadline = Case::new()
        .opts(|o| o.nullok = true)
        .status(Ok(required(now_unix() - 1, "Ask the help desk.")));
    let locked = Case::new().status(refused(ErrorKind::Locked, "Locked for 30 more seconds."));
    for (case, code, said) in [
        (
            past_deadline,
            PamResultCode::PAM_AUTH_ERR,
            "Ask the help desk.",
        ),
        (
            locked,
            PamResultCode::PAM_MAXTRIES,
            "Locked for 30 more seconds.",
        ),
    ] {
        let out = case.run();
        out.assert_ended_unprompted(code);
        assert_eq!(out.conv.errors, [said]);
    }
}

#[test]
fn bypass_code_is_prompted_for_and_explained() {
    let out = Case::new()
        .status(Ok(bypass_pending()))
        .verify(Ok(bypass()))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert!(out.conv.infos[0].contains("twofold enroll"));
}

#[test]
fn locked_in_phase_3() {
    let out = Case::new()
        .verify(refused(
            ErrorKind::Locked,
            "Too many failed attempts. Try again in 60 seconds.\x1b[2J",
        ))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(
        out.conv.errors,
        ["Too many failed attempts. Try again in 60 seconds.?[2J"]
    );
    assert!(out.log.has(Level::Notice, "locked out"));
}

#[test]
fn locked_with_empty_message_gets_a_generic_one() {
    let out = Case::new().verify(refused(ErrorKind::Locked, "")).run();
    assert_eq!(out.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(
        out.conv.errors,
        ["Too many failed attempts. Try again later."]
    );
}

#[test]
fn not_enrolled_without_nullok_fails_without_prompt() {
    for status in [
        Ok(not_enrolled_status()),
        refused(ErrorKind::NotEnrolled, "not enrolled"),
    ] {
        let out = Case::new().status(status).run();
        out.assert_ended_unprompted(PamResultCode::PAM_AUTH_ERR);
        assert!(out.log.has(Level::Notice, "not enrolled"));
    }
}

#[test]
fn not_enrolled_with_nullok_is_ignored() {
    for status in [
        Ok(not_enrolled_status()),
        refused(ErrorKind::NotEnrolled, "not enrolled"),
    ] {
        let out = Case::new().opts(|o| o.nullok = true).status(status).run();
        out.assert_ended_unprompted(PamResultCode::PAM_IGNORE);
    }
}

#[test]
fn not_enrolled_in_phase_3() {
    let e = || refused(ErrorKind::NotEnrolled, "reset by admin");
    let out = Case::new().verify(e()).run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    let out = Case::new().opts(|o| o.nullok = true).verify(e()).run();
    assert_eq!(out.code, PamResultCode::PAM_IGNORE);
}

#[test]
fn unknown_user() {
    let e = || refused(ErrorKind::UnknownUser, "no such user");
    let out = Case::new().status(e()).run();
    out.assert_ended_unprompted(PamResultCode::PAM_USER_UNKNOWN);
    let out = Case::new().opts(|o| o.nullok = true).status(e()).run();
    out.assert_ended_unprompted(PamResultCode::PAM_IGNORE);
}

#[test]
fn unavailable_connect_secure_and_safe() {
    let mut case = Case::new();
    case.connect = Err("owner of org.twofold.Twofold1 runs as uid 1000, expected 0".into());
    let out = case.run();
    out.assert_ended_unprompted(PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(out.record.statuses.is_empty());
    assert!(out.log.has(Level::Err, "twofoldd unavailable for user \"alice\" (service sshd, rhost 192.0.2.7): owner of org.twofold.Twofold1 runs as uid 1000, expected 0; failing closed"));

    let mut case = Case::new().opts(|o| o.failmode = FailMode::Safe);
    case.connect = Err("connection refused".into());
    let out = case.run();
    out.assert_ended_unprompted(PamResultCode::PAM_IGNORE);
    assert!(out.log.has(Level::Err, "failmode=safe"));
}

/// The daemon could not be asked: `failmode` decides. (Which bus errors mean this is
/// `bus::is_transport`'s to say, tested there.)
fn transport_errors() -> Vec<CallError> {
    vec![
        unavailable_err(),
        CallError::Unavailable("peer closed the connection while verifying".into()),
        CallError::Unavailable("D-Bus error: org.freedesktop.DBus.Error.NoReply: x".into()),
    ]
}

/// The daemon answered that it is broken, or answered what it never should: closed,
/// whatever `failmode` says.
fn broken_answers() -> Vec<CallError> {
    vec![
        CallError::daemon(ErrorKind::Internal, "could not reach its database"),
        CallError::daemon(ErrorKind::AlreadyEnrolled, "?"),
        CallError::daemon(ErrorKind::RateLimited, "?"),
        CallError::Unexpected("unexpected D-Bus reply: a reply of signature \"s\"".into()),
        CallError::Unexpected(
            "unexpected D-Bus reply: org.freedesktop.DBus.Error.UnknownMethod: no".into(),
        ),
    ]
}

#[test]
fn unavailable_status_secure_and_safe() {
    for e in transport_errors().into_iter().chain(broken_answers()) {
        let out = Case::new().status(Err(e)).run();
        out.assert_ended_unprompted(PamResultCode::PAM_AUTHINFO_UNAVAIL);
    }
    for e in transport_errors() {
        let out = Case::new()
            .opts(|o| o.failmode = FailMode::Safe)
            .status(Err(e))
            .run();
        out.assert_ended_unprompted(PamResultCode::PAM_IGNORE);
        assert!(out.log.has(Level::Err, "twofoldd unavailable"));
    }
}

#[test]
fn a_broken_daemon_fails_closed_even_with_failmode_safe() {
    for forward_pass in [false, true] {
        let safe = |o: &mut Options| {
            o.failmode = FailMode::Safe;
            o.forward_pass = forward_pass;
        };
        // Before the prompt.
        for e in broken_answers() {
            let why = format!("{e:?}");
            let out = Case::new().opts(safe).status(Err(e)).run();
            assert_eq!(out.code, PamResultCode::PAM_AUTHINFO_UNAVAIL, "{why}");
            out.assert_not_prompted();
            assert!(out.conv.authtoks.is_empty(), "{why}");
            assert!(
                out.log
                    .has(Level::Err, "failing closed whatever failmode says"),
                "{why}: {:?}",
                out.log.lines
            );
        }
        // After it: a wrong code meets a full disk.
        for e in broken_answers() {
            let why = format!("{e:?}");
            let out = Case::new()
                .opts(safe)
                .typed(Ok("hunter2000000"))
                .verify(Err(e))
                .run();
            assert_eq!(out.code, PamResultCode::PAM_AUTHINFO_UNAVAIL, "{why}");
            assert!(out.conv.authtoks.is_empty(), "{why}");
            assert!(out
                .log
                .has(Level::Err, "twofoldd failed for user \"alice\""));
        }
    }
    let out = Case::new()
        .status(refused(ErrorKind::Internal, "disk full"))
        .run();
    assert!(out.log.has(Level::Err, "disk full"), "{:?}", out.log.lines);
}

#[test]
fn unavailable_verify_secure_and_safe() {
    let out = Case::new().verify(Err(unavailable_err())).run();
    assert_eq!(out.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(out.log.has(Level::Err, "timed out after 5s"));
    let out = Case::new()
        .opts(|o| o.failmode = FailMode::Safe)
        .verify(Err(unavailable_err()))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_IGNORE);
}

#[test]
fn no_connection_is_held_while_the_user_types() {
    for forward_pass in [false, true] {
        let out = Case::new()
            .opts(|o| o.forward_pass = forward_pass)
            .typed(Ok("hunter2123456"))
            .run();
        assert_eq!(out.code, PamResultCode::PAM_SUCCESS, "{forward_pass}");
        assert_eq!(out.record.open_at_prompts, [0], "{forward_pass}");
        assert_eq!(out.record.connects, 2, "{forward_pass}");
        assert_eq!(out.record.verifies.len(), 1, "{forward_pass}");
    }
}

#[test]
fn a_failed_reconnection_for_verify_is_unavailable_secure_and_safe() {
    let lost = || {
        Some(Err(
            "cannot connect to /run/twofold/twofoldd.socket".to_owned()
        ))
    };
    let mut case = Case::new();
    case.reconnect = lost();
    let out = case.run();
    assert_eq!(out.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(out.record.verifies.is_empty());
    assert!(out
        .log
        .has(Level::Err, "twofoldd unavailable for user \"alice\""));

    let mut case = Case::new().opts(|o| o.failmode = FailMode::Safe);
    case.reconnect = lost();
    assert_eq!(case.run().code, PamResultCode::PAM_IGNORE);

    // forward_pass stepping aside after the prompt hands the password (no code) on.
    let mut case = fwd("hunter2123456").opts(|o| o.failmode = FailMode::Safe);
    case.reconnect = lost();
    let out = case.run();
    assert_eq!(out.code, PamResultCode::PAM_IGNORE);
    assert_eq!(out.authtoks(), ["hunter2"]);
}

#[test]
fn a_socket_served_by_another_uid_is_logged() {
    let mut case = Case::new();
    case.impostor = Some("/run/twofold/twofoldd.socket is served by uid 1000".into());
    let out = case.run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert!(
        out.log.has(
            Level::Warning,
            "twofoldd's socket refused for user \"alice\""
        ),
        "{:?}",
        out.log.lines
    );
    assert!(!Case::new()
        .run()
        .log
        .lines
        .iter()
        .any(|(_, l)| l.contains("socket refused")));
}

#[test]
fn conversation_error() {
    let out = Case::new().typed(Err(ConvError)).run();
    assert_eq!(out.code, PamResultCode::PAM_CONV_ERR);
    assert!(out.record.verifies.is_empty());
    assert!(out.record.dropped);
}

#[test]
fn backup_code_reports_codes_left() {
    let out = Case::new()
        .typed(Ok("abcd-efgh"))
        .verify(Ok(backup(7)))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        out.conv.infos,
        ["Backup code accepted. 7 backup codes left."]
    );
    assert!(out.conv.errors.is_empty());
    assert!(out.log.has(Level::Notice, "backup code (7 left)"));
}

#[test]
fn backup_code_warns_when_three_or_fewer_left() {
    for left in [3, 1, 0] {
        let out = Case::new().verify(Ok(backup(left))).run();
        assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
        assert_eq!(
            out.conv.infos,
            [format!(
                "Backup code accepted. {left} backup {} left.",
                if left == 1 { "code" } else { "codes" }
            )]
        );
        assert_eq!(out.conv.errors.len(), 1);
        assert!(
            out.conv.errors[0].contains("Run `twofold backup-codes regenerate` to get new codes.")
        );
    }
    let out = Case::new().verify(Ok(backup(4))).run();
    assert!(out.conv.errors.is_empty());
}

#[test]
fn typed_code_is_trimmed() {
    let out = Case::new().typed(Ok("  123 456 \r\n")).run();
    assert_eq!(out.sent_code(), "123 456");
}

#[test]
fn empty_code_is_still_sent() {
    let out = Case::new()
        .typed(Ok(""))
        .verify(refused(ErrorKind::InvalidCode, ""))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(out.sent_code(), "");
    let out = Case::new()
        .typed(Ok("   "))
        .verify(refused(ErrorKind::InvalidCode, ""))
        .run();
    assert_eq!(out.sent_code(), "");
}

#[test]
fn over_long_code_is_cut_but_stays_over_long() {
    let long = "7".repeat(10_000);
    let out = Case::new()
        .typed(Ok(&long))
        .verify(refused(ErrorKind::InvalidArgument, "code too long"))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(out.sent_code().len(), MAX_CODE_LEN + 1);

    // A multi-byte character across the cut: keep it whole rather than fall to MAX_CODE_LEN.
    let tricky = format!("{}é{}", "1".repeat(MAX_CODE_LEN), "2".repeat(10));
    let out = Case::new().typed(Ok(&tricky)).run();
    assert_eq!(out.sent_code().len(), MAX_CODE_LEN + 2);
    assert!(out.sent_code().len() > MAX_CODE_LEN);

    // Exactly MAX_CODE_LEN is left alone.
    let exact = "1".repeat(MAX_CODE_LEN);
    let out = Case::new().typed(Ok(&exact)).run();
    assert_eq!(out.sent_code(), exact);
}

#[test]
fn bad_user_names_are_unknown_without_asking_the_daemon() {
    for user in [
        b"al\xffice".to_vec(),
        Vec::new(),
        vec![b'a'; twofold_contract::MAX_USER_LEN + 1],
        // Control characters: no account has them (the contract's rule).
        b"al\nice".to_vec(),
        b"alice\x1b[2J".to_vec(),
        b"\x7falice".to_vec(),
        b"alice\t".to_vec(),
        "alice\u{85}".as_bytes().to_vec(),
    ] {
        let mut case = Case::new();
        case.user = user;
        let out = case.run();
        assert_eq!(out.code, PamResultCode::PAM_USER_UNKNOWN);
        assert_eq!(out.record.connects, 0);
        assert!(out.log.has(Level::Warning, "refusing user"));
    }
    let mut case = Case::new();
    case.user = b"evil\xff\n\x1b[31m".to_vec();
    let out = case.run();
    assert!(out
        .log
        .lines
        .iter()
        .all(|(_, l)| !l.contains('\n') && !l.contains('\x1b')));
    // The longest allowed name is fine.
    let mut case = Case::new();
    case.user = vec![b'a'; twofold_contract::MAX_USER_LEN];
    assert_eq!(case.run().code, PamResultCode::PAM_SUCCESS);
}

#[test]
fn debug_adds_steps_but_never_the_code() {
    let out = Case::new()
        .opts(|o| o.debug = true)
        .typed(Ok("918273"))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    let debug: Vec<_> = out
        .log
        .lines
        .iter()
        .filter(|(l, _)| *l == Level::Debug)
        .collect();
    assert!(debug.len() >= 4, "{debug:?}");
    assert!(out.log.has(Level::Debug, "phase 1"));
    assert!(out.log.has(Level::Debug, "phase 3"));
    assert!(out.log.lines.iter().all(|(_, l)| !l.contains("918273")));
}

#[test]
fn each_bounded_phase_gets_the_timeout() {
    let out = Case::new()
        .opts(|o| o.timeout = Duration::from_millis(1500))
        .run();
    let c = out.record.connect_budget.unwrap();
    let v = out.record.verify_budget.unwrap();
    assert!(
        c <= Duration::from_millis(1500) && c > Duration::from_millis(1000),
        "{c:?}"
    );
    assert!(
        v <= Duration::from_millis(1500) && v > Duration::from_millis(1000),
        "{v:?}"
    );
}

#[test]
fn context_from_items() {
    let c = LoginContext::from_items(Some(b"sudo"), None, Some(b"h\xffst"), Some(&[b'r'; 300]));
    assert_eq!(c.service.as_deref(), Some("sudo"));
    assert_eq!(c.tty, None);
    assert_eq!(c.rhost.as_deref(), Some("h\u{fffd}st"));
    assert_eq!(c.ruser.as_ref().map(String::len), Some(MAX_ITEM_LEN));
    let m = c.to_map();
    assert_eq!(m.len(), 3);
    assert_eq!(m["service"], "sudo");
    assert!(!m.contains_key("tty"));
}

// ---------------------------------------------------------------- forward_pass

const FWD_PROMPT: &str = "Password & verification code: ";

/// A `forward_pass` case: the user types `answer`.
fn fwd(answer: &str) -> Case {
    Case::new()
        .opts(|o| {
            o.forward_pass = true;
            o.prompt = FWD_PROMPT.into();
        })
        .typed(Ok(answer))
}

impl Outcome {
    fn authtoks(&self) -> Vec<String> {
        self.conv
            .authtoks
            .iter()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }
    fn assert_not_logged(&self, secret: &str) {
        for (_, line) in &self.log.lines {
            assert!(!line.contains(secret), "secret logged: {line}");
        }
    }
}

#[test]
fn split_rules() {
    type Split<'a> = Option<(&'a [u8], &'a [u8], TrailingCode)>;
    let cases: [(&[u8], Split<'_>); 17] = [
        // TOTP: the last six bytes are digits, no separator (as google-authenticator).
        (
            b"hunter2123456",
            Some((b"hunter2", b"123456", TrailingCode::Totp)),
        ),
        (b"123456", Some((b"", b"123456", TrailingCode::Totp))),
        (b"pw 123456", Some((b"pw ", b"123456", TrailingCode::Totp))),
        (b"1234567", Some((b"1", b"234567", TrailingCode::Totp))),
        (
            b"p\xffw000000",
            Some((b"p\xffw", b"000000", TrailingCode::Totp)),
        ),
        (b"12345", None),
        (b"hunter2", None),
        (b"hunter212345a", None),
        (b"hunter2123456 ", None),
        (b"", None),
        // Backup (and bypass) codes: printed form, after one space.
        (
            b"s3cret k7qm-x2fp-9d",
            Some((b"s3cret", b"k7qm-x2fp-9d", TrailingCode::Backup)),
        ),
        (
            b"two words K7QM-X2FP-9D",
            Some((b"two words", b"K7QM-X2FP-9D", TrailingCode::Backup)),
        ),
        (
            b" k7qm-x2fp-9d",
            Some((b"", b"k7qm-x2fp-9d", TrailingCode::Backup)),
        ),
        (b"s3cretk7qm-x2fp-9d", None),
        (b"k7qm-x2fp-9d", None),
        (b"s3cret k7qm x2fp 9d", None),
        (b"s3cret k7qm-x2f_-9d", None),
    ];
    for (answer, expected) in cases {
        assert_eq!(
            split_answer(answer),
            expected,
            "{}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[test]
fn forward_pass_right_code_hands_the_password_on() {
    let out = fwd("hunter2123456").opts(|o| o.debug = true).run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.conv.prompts, [FWD_PROMPT]);
    assert_eq!(out.conv.raw_prompts, 1);
    assert_eq!(out.sent_code(), "123456");
    assert_eq!(out.authtoks(), ["hunter2"]);
    assert!(out.record.dropped);
    assert!(out
        .log
        .has(Level::Notice, "2FA succeeded for user \"alice\""));
    for secret in ["hunter2", "123456"] {
        out.assert_not_logged(secret);
    }
}

#[test]
fn forward_pass_password_bytes_are_kept_exactly() {
    let out = fwd(" pass wörd \t000000").run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.sent_code(), "000000");
    assert_eq!(out.authtoks(), [" pass wörd \t"]);
    // Only a code: the password handed on is empty (pam_unix decides).
    let out = fwd("123456").run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.conv.authtoks, [Vec::<u8>::new()]);
}

#[test]
fn forward_pass_backup_and_bypass_codes() {
    let out = fwd("s3cret pw k7qm-x2fp-9d").verify(Ok(backup(7))).run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.sent_code(), "k7qm-x2fp-9d");
    assert_eq!(out.authtoks(), ["s3cret pw"]);
    assert_eq!(
        out.conv.infos,
        ["Backup code accepted. 7 backup codes left."]
    );
    out.assert_not_logged("s3cret");

    let out = fwd("s3cret ab12-cd34-ef")
        .status(Ok(bypass_pending()))
        .verify(Ok(bypass()))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.sent_code(), "ab12-cd34-ef");
    assert_eq!(out.authtoks(), ["s3cret"]);
}

#[test]
fn forward_pass_wrong_code_fails_without_handing_anything_on() {
    let out = fwd("hunter2654321")
        .verify(refused(ErrorKind::InvalidCode, "invalid code"))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(out.sent_code(), "654321");
    assert!(out.conv.authtoks.is_empty());
    // Nothing says which factor was wrong.
    assert!(out.conv.errors.is_empty() && out.conv.infos.is_empty());
    out.assert_not_logged("hunter2");
}

#[test]
fn forward_pass_answer_without_code_sends_an_empty_code_never_the_password() {
    for answer in ["justapassword", "hunter2 12345", ""] {
        let out = fwd(answer)
            .opts(|o| o.debug = true)
            .verify(refused(ErrorKind::InvalidCode, ""))
            .run();
        assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR, "{answer}");
        assert_eq!(out.sent_code(), "", "{answer}");
        assert!(out.conv.authtoks.is_empty());
        if !answer.is_empty() {
            out.assert_not_logged(answer);
        }
    }
    // A daemon that accepted an empty code proves nothing.
    let out = fwd("justapassword").run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert!(out.conv.authtoks.is_empty());
}

#[test]
fn forward_pass_lockout_fails_without_handing_anything_on() {
    let out = fwd("hunter2123456")
        .status(Ok(LoginState {
            locked_for: 60,
            ..enrolled()
        }))
        .run();
    out.assert_ended_unprompted(PamResultCode::PAM_MAXTRIES);
    assert!(out.conv.authtoks.is_empty());

    let out = fwd("hunter2123456")
        .verify(refused(ErrorKind::Locked, "Try again in 60 seconds."))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_MAXTRIES);
    assert!(out.conv.authtoks.is_empty());
    for e in [
        CallError::daemon(ErrorKind::InvalidArgument, "code too long"),
        CallError::daemon(ErrorKind::PermissionDenied, "no"),
    ] {
        let out = fwd("hunter2123456").verify(Err(e)).run();
        assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
        assert!(out.conv.authtoks.is_empty());
    }
}

#[test]
fn forward_pass_not_enrolled_with_nullok_hands_the_whole_answer_on() {
    for status in [
        Ok(not_enrolled_status()),
        refused(ErrorKind::NotEnrolled, "not enrolled"),
        refused(ErrorKind::UnknownUser, "no such user"),
    ] {
        // Even an answer ending in six digits: this user has no code to type.
        let out = fwd("hunter2123456")
            .opts(|o| o.nullok = true)
            .status(status)
            .run();
        assert_eq!(out.code, PamResultCode::PAM_IGNORE);
        assert_eq!(out.conv.prompts, [FWD_PROMPT]);
        assert!(out.record.verifies.is_empty());
        assert_eq!(out.authtoks(), ["hunter2123456"]);
        assert!(out.record.dropped);
    }
}

#[test]
fn forward_pass_refusals_before_the_prompt_are_unchanged() {
    // Not enrolled without nullok, unknown user, enrollment deadline passed: the same
    // result as without forward_pass, no prompt, nothing handed on.
    let after_deadline = required(now_unix() - 1, "");
    for (status, nullok, expected) in [
        (
            Ok(not_enrolled_status()),
            false,
            PamResultCode::PAM_AUTH_ERR,
        ),
        (
            refused(ErrorKind::UnknownUser, "no"),
            false,
            PamResultCode::PAM_USER_UNKNOWN,
        ),
        (Ok(after_deadline), true, PamResultCode::PAM_AUTH_ERR),
        (
            refused(ErrorKind::PermissionDenied, "no"),
            true,
            PamResultCode::PAM_AUTH_ERR,
        ),
    ] {
        let out = fwd("hunter2123456")
            .opts(|o| o.nullok = nullok)
            .status(status)
            .run();
        out.assert_ended_unprompted(expected);
        assert!(out.conv.authtoks.is_empty());
    }
}

#[test]
fn forward_pass_required_within_enrollment_grace_hands_the_whole_answer_on() {
    let out = fwd("hunter2")
        .status(Ok(required(now_unix() + 86_400, "run `twofold enroll`")))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_IGNORE);
    assert_eq!(out.conv.infos, ["run `twofold enroll`"]);
    assert_eq!(out.conv.prompts, [FWD_PROMPT]);
    assert_eq!(out.authtoks(), ["hunter2"]);
}

#[test]
fn forward_pass_daemon_unavailable_secure_and_safe() {
    // Secure: fail closed, no prompt, nothing handed on.
    let mut case = fwd("hunter2123456");
    case.connect = Err("connection refused".into());
    let out = case.run();
    out.assert_ended_unprompted(PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(out.conv.authtoks.is_empty());
    let out = fwd("hunter2123456").status(Err(unavailable_err())).run();
    out.assert_ended_unprompted(PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let out = fwd("hunter2123456").verify(Err(unavailable_err())).run();
    assert_eq!(out.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(out.conv.authtoks.is_empty());

    // Safe: the stack decides on the password; a trailing code (which cannot be checked)
    // is not part of it, an answer without one is the password.
    for (answer, password) in [("hunter2123456", "hunter2"), ("hunter2", "hunter2")] {
        let safe = || fwd(answer).opts(|o| o.failmode = FailMode::Safe);
        let mut case = safe();
        case.connect = Err("connection refused".into());
        let out = case.run();
        assert_eq!(out.code, PamResultCode::PAM_IGNORE);
        assert_eq!(out.conv.prompts, [FWD_PROMPT]);
        assert!(out.record.verifies.is_empty());
        assert_eq!(out.authtoks(), [password]);

        let out = safe().status(Err(unavailable_err())).run();
        assert_eq!(out.code, PamResultCode::PAM_IGNORE);
        assert!(out.record.verifies.is_empty());
        assert_eq!(out.authtoks(), [password]);

        let out = safe().verify(Err(unavailable_err())).run();
        assert_eq!(out.code, PamResultCode::PAM_IGNORE);
        assert_eq!(out.authtoks(), [password]);
    }
}

#[test]
fn forward_pass_reset_between_prompt_and_verify() {
    let e = || refused(ErrorKind::NotEnrolled, "reset by admin");
    let out = fwd("hunter2123456").verify(e()).run();
    assert_eq!(out.code, PamResultCode::PAM_AUTH_ERR);
    assert!(out.conv.authtoks.is_empty());
    let out = fwd("hunter2123456")
        .opts(|o| o.nullok = true)
        .verify(e())
        .run();
    assert_eq!(out.code, PamResultCode::PAM_IGNORE);
    assert_eq!(out.authtoks(), ["hunter2"]);
}

#[test]
fn forward_pass_conversation_error() {
    let out = fwd("x").typed(Err(ConvError)).run();
    assert_eq!(out.code, PamResultCode::PAM_CONV_ERR);
    assert!(out.record.verifies.is_empty());
    assert!(out.conv.authtoks.is_empty());
    let out = fwd("x")
        .typed(Err(ConvError))
        .opts(|o| o.nullok = true)
        .status(Ok(not_enrolled_status()))
        .run();
    assert_eq!(out.code, PamResultCode::PAM_CONV_ERR);
    assert!(out.conv.authtoks.is_empty());
}

#[test]
fn forward_pass_authtok_refused_by_libpam_is_a_system_error() {
    let mut case = fwd("hunter2123456");
    case.authtok_fails = true;
    let out = case.run();
    assert_eq!(out.code, PamResultCode::PAM_SYSTEM_ERR);
    assert!(out.log.has(Level::Err, "PAM_AUTHTOK"));
    assert!(!out.log.has(Level::Notice, "2FA succeeded"));

    let mut case = fwd("hunter2")
        .opts(|o| o.nullok = true)
        .status(Ok(not_enrolled_status()));
    case.authtok_fails = true;
    assert_eq!(case.run().code, PamResultCode::PAM_SYSTEM_ERR);
}

#[test]
fn forward_pass_within_the_grace_window_asks_the_password_only() {
    let out = fwd("hunter2123456")
        .opts(|o| o.grace = 300)
        .status(Ok(enrolled()))
        .run_with_grace(true);
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.conv.prompts, [GRACE_PASSWORD_PROMPT]);
    assert!(out.record.verifies.is_empty());
    assert_eq!(out.authtoks(), ["hunter2123456"]);

    // Outside the window: the usual single prompt.
    let out = fwd("hunter2123456")
        .opts(|o| o.grace = 300)
        .run_with_grace(false);
    assert_eq!(out.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(out.conv.prompts, [FWD_PROMPT]);
    assert_eq!(out.authtoks(), ["hunter2"]);

    // Without forward_pass the grace window still asks nothing.
    let out = Case::new().opts(|o| o.grace = 300).run_with_grace(true);
    out.assert_ended_unprompted(PamResultCode::PAM_SUCCESS);
}

impl Case {
    fn run_with_grace(mut self, grace: bool) -> Outcome {
        self.grace = Some(grace);
        if grace {
            // Neither a prompt's answer nor a Verify is used for the code.
            self.verify = None;
        }
        self.run()
    }
}

//! The callback called as libpam calls it, with scripted conversers.

use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr;

use zeroize::Zeroizing;

use super::{converse, Answer, ConversationFailed, Converser, Message, Style};
use crate::ffi::{
    PamMessage, PamResponse, PAM_CONV_ERR, PAM_ERROR_MSG as ERROR, PAM_MAX_NUM_MSG,
    PAM_PROMPT_ECHO_OFF as ECHO_OFF, PAM_PROMPT_ECHO_ON as ECHO_ON, PAM_SUCCESS,
    PAM_TEXT_INFO as INFO,
};

/// Answers the message at position i with `answers[i]` when it is a prompt (none left:
/// refuses), and records every message.
#[derive(Default)]
struct Script {
    answers: Vec<&'static str>,
    seen: Vec<(Style, String)>,
}

impl Converser for Script {
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        self.seen.push((message.style, message.text().into_owned()));
        if !message.style.is_prompt() {
            return Ok(None);
        }
        let next = self
            .answers
            .get(self.seen.len() - 1)
            .ok_or(ConversationFailed)?;
        Ok(Some(Zeroizing::new(next.as_bytes().to_vec())))
    }
}

struct Panics;

impl Converser for Panics {
    fn answer(&mut self, _: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        panic!("a converser's bug");
    }
}

/// Calls the callback with `num_msg` and these messages as libpam would: (status, the
/// answers it got, None for a null response). Frees what libpam would free.
fn call<C: Converser>(
    converser: &mut C,
    num_msg: c_int,
    messages: &[(c_int, &str)],
) -> (c_int, Option<Vec<Option<String>>>) {
    let texts: Vec<CString> = messages
        .iter()
        .map(|(_, t)| CString::new(*t).unwrap())
        .collect();
    let structs: Vec<PamMessage> = messages
        .iter()
        .zip(&texts)
        .map(|((style, _), text)| PamMessage {
            msg_style: *style,
            msg: text.as_ptr(),
        })
        .collect();
    let mut pointers: Vec<*const PamMessage> = structs.iter().map(ptr::from_ref).collect();
    let mut responses: *mut PamResponse = ptr::null_mut();
    // SAFETY: `pointers` holds `messages.len()` live messages; the callback reads at most
    // `num_msg` of them, and the tests never pass more than they built.
    let status = unsafe {
        converse::<C>(
            num_msg,
            pointers.as_mut_ptr(),
            &mut responses,
            ptr::from_mut(converser).cast::<c_void>(),
        )
    };
    if responses.is_null() {
        return (status, None);
    }
    let answers = (0..num_msg as usize)
        .map(|i| {
            // SAFETY: a success returns one response per message.
            let response = unsafe { &*responses.add(i) };
            assert_eq!(response.resp_retcode, 0);
            if response.resp.is_null() {
                return None;
            }
            // SAFETY: a NUL-terminated malloc'd copy, freed here as libpam would.
            let text = unsafe { CStr::from_ptr(response.resp) }
                .to_str()
                .unwrap()
                .to_owned();
            // SAFETY: malloc'd by the callback, freed once.
            unsafe { libc::free(response.resp.cast()) };
            Some(text)
        })
        .collect();
    // SAFETY: calloc'd by the callback, freed once.
    unsafe { libc::free(responses.cast()) };
    (status, Some(answers))
}

#[test]
fn answers_each_prompt_in_order_and_none_to_the_rest() {
    let mut script = Script {
        answers: vec!["", "123456", "", "yes"],
        ..Script::default()
    };
    let messages = [
        (INFO, "Welcome"),
        (ECHO_OFF, "Code: "),
        (ERROR, "Careful"),
        (ECHO_ON, "Sure? "),
    ];
    let (status, answers) = call(&mut script, 4, &messages);
    assert_eq!(status, PAM_SUCCESS);
    assert_eq!(
        answers.unwrap(),
        [None, Some("123456".into()), None, Some("yes".into())]
    );
    assert_eq!(
        script.seen,
        [
            (Style::TextInfo, "Welcome".into()),
            (Style::PromptEchoOff, "Code: ".into()),
            (Style::ErrorMsg, "Careful".into()),
            (Style::PromptEchoOn, "Sure? ".into()),
        ]
    );
}

#[test]
fn zero_messages_fail_without_asking() {
    let mut script = Script::default();
    let (status, answers) = call(&mut script, 0, &[(ECHO_OFF, "Code: ")]);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
    assert!(script.seen.is_empty());
}

#[test]
fn a_negative_count_fails_without_asking() {
    let mut script = Script::default();
    let (status, answers) = call(&mut script, -1, &[(ECHO_OFF, "Code: ")]);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
    assert!(script.seen.is_empty());
}

#[test]
fn more_than_pam_max_num_msg_fails_without_asking() {
    let messages = vec![(INFO, "hello"); PAM_MAX_NUM_MSG + 1];
    let mut script = Script::default();
    let (status, answers) = call(&mut script, messages.len() as c_int, &messages);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
    assert!(script.seen.is_empty());
    // PAM_MAX_NUM_MSG itself is allowed.
    let (status, _) = call(&mut script, PAM_MAX_NUM_MSG as c_int, &messages);
    assert_eq!(status, PAM_SUCCESS);
}

#[test]
fn a_panicking_converser_fails_the_conversation() {
    let (status, answers) = call(&mut Panics, 1, &[(ECHO_OFF, "Code: ")]);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
}

#[test]
fn a_refusal_after_an_answer_fails_the_whole_call() {
    // One answer only: the second prompt is refused, and the first answer is not handed out.
    let mut script = Script {
        answers: vec!["first"],
        ..Script::default()
    };
    let messages = [(ECHO_OFF, "One: "), (ECHO_OFF, "Two: ")];
    let (status, answers) = call(&mut script, 2, &messages);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
    assert_eq!(script.seen.len(), 2);
}

#[test]
fn an_answer_with_a_nul_byte_fails_the_call() {
    struct Nul;
    impl Converser for Nul {
        fn answer(&mut self, _: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
            Ok(Some(Zeroizing::new(b"12\x0034".to_vec())))
        }
    }
    let (status, answers) = call(&mut Nul, 1, &[(ECHO_OFF, "Code: ")]);
    assert_eq!((status, answers), (PAM_CONV_ERR, None));
}

#[test]
fn null_pointers_from_libpam_fail_the_call() {
    let mut script = Script::default();
    let mut responses: *mut PamResponse = ptr::null_mut();
    let appdata = ptr::from_mut(&mut script).cast::<c_void>();
    // SAFETY: the callback checks each pointer before it reads or writes through it.
    let statuses = unsafe {
        [
            converse::<Script>(1, ptr::null_mut(), &mut responses, appdata),
            converse::<Script>(1, [ptr::null()].as_mut_ptr(), &mut responses, appdata),
            converse::<Script>(1, [ptr::null()].as_mut_ptr(), ptr::null_mut(), appdata),
            converse::<Script>(
                1,
                [ptr::null()].as_mut_ptr(),
                &mut responses,
                ptr::null_mut(),
            ),
        ]
    };
    assert_eq!(statuses, [PAM_CONV_ERR; 4]);
    assert!(responses.is_null());
    assert!(script.seen.is_empty());
}

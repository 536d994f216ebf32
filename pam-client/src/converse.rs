//! One conversation for every libpam client: a [`Converser`] answers one message at a
//! time in safe Rust; [`converse`] is the one C callback, which checks what libpam hands
//! it, never lets a panic cross into C, and copies the answers into the `malloc`'d
//! memory libpam frees, wiping its own copies.

use std::borrow::Cow;
use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use zeroize::{Zeroize, Zeroizing};

use crate::ffi::{
    PamMessage, PamResponse, PAM_BUF_ERR, PAM_CONV_ERR, PAM_ERROR_MSG, PAM_MAX_NUM_MSG,
    PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SUCCESS, PAM_TEXT_INFO,
};

/// What kind of message a module sends (`msg_style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A prompt whose answer is not shown (a password, a code).
    PromptEchoOff,
    /// A prompt whose answer is shown.
    PromptEchoOn,
    /// An error to show.
    ErrorMsg,
    /// Information to show.
    TextInfo,
    /// A style Linux-PAM does not define for text (binary prompts).
    Other(c_int),
}

impl Style {
    fn from_raw(raw: c_int) -> Style {
        match raw {
            PAM_PROMPT_ECHO_OFF => Style::PromptEchoOff,
            PAM_PROMPT_ECHO_ON => Style::PromptEchoOn,
            PAM_ERROR_MSG => Style::ErrorMsg,
            PAM_TEXT_INFO => Style::TextInfo,
            other => Style::Other(other),
        }
    }

    /// True for the styles that expect an answer.
    pub fn is_prompt(self) -> bool {
        matches!(self, Style::PromptEchoOff | Style::PromptEchoOn)
    }
}

/// One message of a conversation, borrowed from libpam for the callback's duration.
#[derive(Debug)]
pub struct Message<'a> {
    pub style: Style,
    pub text: &'a CStr,
}

impl<'a> Message<'a> {
    /// The text, with bytes that are not UTF-8 replaced.
    pub fn text(&self) -> Cow<'a, str> {
        self.text.to_string_lossy()
    }
}

/// An answer to a prompt: wiped once libpam has its copy.
pub type Answer = Zeroizing<Vec<u8>>;

/// The conversation failed: libpam gets `PAM_CONV_ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;

/// The user's side of a conversation.
pub trait Converser {
    /// Answers one message: `Some` answer to a prompt, `None` to the rest. An error fails
    /// the whole call. An answer may not hold a NUL byte (that fails the call too).
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed>;
}

/// No conversation at all (session hooks must not talk to the user): every call fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConversation;

impl Converser for NoConversation {
    fn answer(&mut self, _: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        Err(ConversationFailed)
    }
}

/// The conversation callback libpam calls for a converser of type `C`.
///
/// # Safety
/// libpam's contract: `msg` points to `num_msg` message pointers, each message text a
/// NUL-terminated string, all alive for the call; `resp` is writable; `appdata_ptr` is
/// the `*mut C` given to pam_start, and nothing else uses that converser during the call.
pub(crate) unsafe extern "C" fn converse<C: Converser>(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    let count = match usize::try_from(num_msg) {
        Ok(count) if (1..=PAM_MAX_NUM_MSG).contains(&count) => count,
        _ => return PAM_CONV_ERR,
    };
    if msg.is_null() || resp.is_null() || appdata_ptr.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: checked non-null above; libpam passes `count` message pointers.
    let messages = unsafe { std::slice::from_raw_parts(msg.cast_const(), count) };
    // SAFETY: the `*mut C` of this transaction, used by no one else while libpam calls us.
    let converser = unsafe { &mut *appdata_ptr.cast::<C>() };
    // A panic must not unwind into C: it fails the conversation instead.
    let answers = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the messages are libpam's, alive for this call (this function's contract).
        unsafe { collect_answers(converser, messages) }
    }));
    let Ok(Ok(answers)) = answers else {
        return PAM_CONV_ERR;
    };
    match to_responses(&answers) {
        Some(responses) => {
            // SAFETY: `resp` is libpam's non-null out-pointer; libpam now owns the array.
            unsafe { *resp = responses };
            PAM_SUCCESS
        }
        None => PAM_BUF_ERR,
    }
}

/// Asks the converser about each message in turn.
///
/// # Safety
/// Each pointer in `messages` is null or points to a `pam_message` whose `msg` is null or
/// a NUL-terminated string, alive for the call.
unsafe fn collect_answers<C: Converser>(
    converser: &mut C,
    messages: &[*const PamMessage],
) -> Result<Vec<Option<Answer>>, ConversationFailed> {
    let mut answers = Vec::with_capacity(messages.len());
    for &raw in messages {
        // SAFETY: null or a live pam_message (this function's contract).
        let raw = unsafe { raw.as_ref() }.ok_or(ConversationFailed)?;
        if raw.msg.is_null() {
            return Err(ConversationFailed);
        }
        // SAFETY: a non-null, NUL-terminated message text (this function's contract).
        let text = unsafe { CStr::from_ptr(raw.msg) };
        let message = Message {
            style: Style::from_raw(raw.msg_style),
            text,
        };
        let answer = converser.answer(&message)?;
        if answer.as_ref().is_some_and(|a| a.contains(&0)) {
            return Err(ConversationFailed);
        }
        answers.push(answer);
    }
    Ok(answers)
}

/// The answers as libpam frees them: a `calloc`'d array of responses, each answer a
/// NUL-terminated `malloc`'d copy. None when out of memory (then nothing stays allocated).
fn to_responses(answers: &[Option<Answer>]) -> Option<*mut PamResponse> {
    // SAFETY: calloc of 1..=PAM_MAX_NUM_MSG zeroed responses (null `resp`, retcode 0).
    let array =
        unsafe { libc::calloc(answers.len(), size_of::<PamResponse>()) }.cast::<PamResponse>();
    if array.is_null() {
        return None;
    }
    for (i, answer) in answers.iter().enumerate() {
        let Some(answer) = answer else { continue };
        // SAFETY: malloc of the answer and its terminating NUL.
        let copy = unsafe { libc::malloc(answer.len() + 1) }.cast::<u8>();
        if copy.is_null() {
            // SAFETY: `array` is from calloc above, its first `i` entries set by this loop.
            unsafe { free_responses(array, i) };
            return None;
        }
        // SAFETY: `copy` has room for the answer's bytes and a NUL; the two do not overlap.
        unsafe {
            ptr::copy_nonoverlapping(answer.as_ptr(), copy, answer.len());
            copy.add(answer.len()).write(0);
        }
        // SAFETY: i < answers.len(), inside the array.
        unsafe { (*array.add(i)).resp = copy.cast() };
    }
    Some(array)
}

/// Wipes and frees the first `filled` responses and the array.
///
/// # Safety
/// `array` came from calloc in [`to_responses`]; each of its first `filled` entries has a
/// null `resp` or a NUL-terminated malloc'd one; nothing uses them afterwards.
unsafe fn free_responses(array: *mut PamResponse, filled: usize) {
    for i in 0..filled {
        // SAFETY: i < filled, inside the array (contract).
        let resp = unsafe { (*array.add(i)).resp };
        if !resp.is_null() {
            // SAFETY: a NUL-terminated malloc'd string of ours (contract).
            let len = unsafe { libc::strlen(resp) };
            // SAFETY: its `len` bytes are ours to wipe before the memory goes back.
            unsafe { std::slice::from_raw_parts_mut(resp.cast::<u8>(), len) }.zeroize();
            // SAFETY: malloc'd, freed once.
            unsafe { libc::free(resp.cast()) };
        }
    }
    // SAFETY: calloc'd, freed once.
    unsafe { libc::free(array.cast()) };
}

#[cfg(test)]
mod tests;

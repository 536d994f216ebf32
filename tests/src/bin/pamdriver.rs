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

use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr;
use std::time::Instant;

use twofold_tests::pam_ffi::*;

#[derive(Default)]
struct Script {
    responses: Vec<String>,
    hold: bool,
    next: usize,
    messages: Vec<serde_json::Value>,
}

extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    out: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    // SAFETY: appdata is the &mut Script we passed to pam_start_confdir; libpam calls the
    // conversation on this thread only, while `main` keeps the Script alive.
    let script = unsafe { &mut *(appdata as *mut Script) };
    let n = n.max(0) as usize;
    // SAFETY: calloc for n responses; libpam frees the array and each resp with free().
    let replies =
        unsafe { libc::calloc(n.max(1), std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of n message pointers.
        let msg = unsafe { &**msgs.add(i) };
        // SAFETY: each message text is a NUL-terminated string owned by libpam.
        let text = unsafe { CStr::from_ptr(msg.msg) }
            .to_string_lossy()
            .into_owned();
        let style = match msg.msg_style {
            PAM_PROMPT_ECHO_OFF => "prompt_echo_off",
            PAM_PROMPT_ECHO_ON => "prompt_echo_on",
            PAM_ERROR_MSG => "error",
            PAM_TEXT_INFO => "info",
            _ => "other",
        };
        script
            .messages
            .push(serde_json::json!({"style": style, "text": text}));
        if msg.msg_style == PAM_PROMPT_ECHO_OFF || msg.msg_style == PAM_PROMPT_ECHO_ON {
            if script.hold && script.next == script.responses.len() {
                use std::io::{Read, Write};
                println!("waiting at the prompt");
                let _ = std::io::stdout().flush();
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            }
            let Some(answer) = script.responses.get(script.next) else {
                // SAFETY: nothing was allocated inside the array yet for unanswered
                // prompts; free the partially filled array and its strings.
                unsafe { free_replies(replies, i) };
                return PAM_CONV_ERR;
            };
            script.next += 1;
            let c = CString::new(answer.as_bytes()).unwrap_or_default();
            // SAFETY: strdup copies into malloc'd memory that libpam will free.
            let copy = unsafe { libc::strdup(c.as_ptr()) };
            // SAFETY: i < n, inside the calloc'd array.
            unsafe { (*replies.add(i)).resp = copy };
        }
    }
    // SAFETY: `out` is libpam's out-pointer for the reply array.
    unsafe { *out = replies };
    PAM_SUCCESS
}

/// # Safety
/// `replies` is a calloc'd array with at least `filled` initialized entries.
unsafe fn free_replies(replies: *mut PamResponse, filled: usize) {
    for j in 0..filled {
        // SAFETY: per the contract above.
        unsafe { libc::free((*replies.add(j)).resp as *mut c_void) };
    }
    // SAFETY: the array came from calloc.
    unsafe { libc::free(replies as *mut c_void) };
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut confdir, mut service, mut user) = (String::new(), String::new(), Vec::new());
    let (mut tty, mut rhost, mut ruser) = (None, None, None);
    let mut responses = Vec::new();
    let mut repeat = 1usize;
    let mut hold = false;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--confdir" => confdir = value(),
            "--service" => service = value(),
            "--user" => user = value().into_bytes(),
            "--user-hex" => user = hex(&value()),
            "--tty" => tty = Some(value()),
            "--rhost" => rhost = Some(value()),
            "--ruser" => ruser = Some(value()),
            "--response" => responses.push(value()),
            "--repeat" => repeat = value().parse().expect("--repeat N"),
            "--hold" => hold = true,
            other => panic!("unknown flag {other}"),
        }
    }
    let confdir = CString::new(confdir).unwrap();
    let service = CString::new(service).unwrap();
    let user = CString::new(user).unwrap();
    for _ in 0..repeat {
        let mut script = Script {
            responses: responses.clone(),
            hold,
            ..Default::default()
        };
        let conv = PamConv {
            conv: converse,
            appdata: &mut script as *mut Script as *mut c_void,
        };
        let threads_before = threads();
        let state_before = ProcessState::now();
        let started = Instant::now();
        let mut pamh: *mut c_void = ptr::null_mut();
        // SAFETY: all pointers are valid NUL-terminated strings / live structs for the call.
        let rc = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &conv,
                confdir.as_ptr(),
                &mut pamh,
            )
        };
        assert_eq!(rc, PAM_SUCCESS, "pam_start_confdir failed");
        for (item, value) in [(PAM_TTY, &tty), (PAM_RHOST, &rhost), (PAM_RUSER, &ruser)] {
            if let Some(v) = value {
                let v = CString::new(v.as_str()).unwrap();
                // SAFETY: libpam copies the string.
                unsafe { pam_set_item(pamh, item, v.as_ptr() as *const c_void) };
            }
        }
        // SAFETY: pamh came from pam_start_confdir.
        let result = unsafe { pam_authenticate(pamh, 0) };
        // SAFETY: pam_strerror returns a static string.
        let name = unsafe { CStr::from_ptr(pam_strerror(pamh, result)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ends the transaction started above; pamh is not used afterwards.
        unsafe { pam_end(pamh, result) };
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

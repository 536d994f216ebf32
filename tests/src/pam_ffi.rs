//! The libpam client API the test drivers (and the benchmark) call: one declaration of
//! the C types and functions, `unsafe` only at this edge.

use std::ffi::{c_char, c_int, c_void};

pub const PAM_SUCCESS: c_int = 0;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
pub const PAM_PROMPT_ECHO_ON: c_int = 2;
pub const PAM_ERROR_MSG: c_int = 3;
pub const PAM_TEXT_INFO: c_int = 4;
pub const PAM_TTY: c_int = 3;
pub const PAM_RHOST: c_int = 4;
pub const PAM_RUSER: c_int = 8;

/// `struct pam_message`.
#[repr(C)]
pub struct PamMessage {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

/// `struct pam_response`.
#[repr(C)]
pub struct PamResponse {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

/// The conversation callback's type.
pub type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
pub struct PamConv {
    pub conv: ConvFn,
    pub appdata: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    pub fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    pub fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    pub fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    pub fn pam_putenv(pamh: *mut c_void, name_value: *const c_char) -> c_int;
    pub fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
    pub fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
    pub fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    pub fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

/// What a module could leave behind in its host process: open file descriptors (number
/// and target), and the signal mask and dispositions (`SigBlk`, `SigIgn`, `SigCgt` of
/// /proc/self/status).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessState {
    pub fds: Vec<String>,
    pub signals: Vec<String>,
}

impl ProcessState {
    pub fn now() -> ProcessState {
        let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        let target = std::fs::read_link(e.path()).unwrap_or_default();
                        format!(
                            "{} -> {}",
                            e.file_name().to_string_lossy(),
                            target.display()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The directory listing's own descriptor differs between calls.
        fds.retain(|f| !f.ends_with("/fd"));
        fds.sort();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let signals = status
            .lines()
            .filter(|l| {
                ["SigBlk:", "SigIgn:", "SigCgt:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(str::to_owned)
            .collect();
        ProcessState { fds, signals }
    }
}

/// Threads of this process, to prove that a module left none behind.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

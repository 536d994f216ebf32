//! One PAM transaction in this process: `pam_start_confdir` + `pam_authenticate` +
//! `pam_end` through the real libpam, answering every prompt with one code.

use std::ffi::{c_int, c_void, CString};
use std::path::Path;
use std::ptr;
use std::time::{Duration, Instant};

use twofold_tests::pam_ffi::*;

/// Linux-PAM's `PAM_AUTHINFO_UNAVAIL`.
pub const AUTHINFO_UNAVAIL: i32 = 9;

/// Answers every prompt with the code in `appdata`.
extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    out: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    // SAFETY: appdata is the CString `login` keeps alive for the whole transaction.
    let code = unsafe { &*(appdata as *const CString) };
    let n = n.max(0) as usize;
    // SAFETY: calloc of n responses; libpam frees the array and each resp with free().
    let replies =
        unsafe { libc::calloc(n.max(1), std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of n message pointers.
        let msg = unsafe { &**msgs.add(i) };
        if msg.msg_style == PAM_PROMPT_ECHO_OFF || msg.msg_style == PAM_PROMPT_ECHO_ON {
            // SAFETY: i < n, inside the calloc'd array; strdup's copy is freed by libpam.
            unsafe { (*replies.add(i)).resp = libc::strdup(code.as_ptr()) };
        }
    }
    // SAFETY: `out` is libpam's out-pointer for the reply array.
    unsafe { *out = replies };
    PAM_SUCCESS
}

/// A PAM service file in a private directory, for `pam_start_confdir`.
pub struct Service {
    confdir: CString,
    name: CString,
}

impl Service {
    /// Writes `dir/NAME` holding the single `auth` line `line`.
    pub fn new(dir: &Path, name: &str, line: &str) -> Service {
        std::fs::create_dir_all(dir).expect("PAM confdir");
        std::fs::write(dir.join(name), format!("{line}\n")).expect("PAM service file");
        Service {
            confdir: CString::new(dir.to_str().expect("UTF-8 path")).unwrap(),
            name: CString::new(name).unwrap(),
        }
    }

    /// A service file written before (by [`Service::new`], in another process).
    pub fn existing(dir: &Path, name: &str) -> Service {
        Service {
            confdir: CString::new(dir.to_str().expect("UTF-8 path")).unwrap(),
            name: CString::new(name).unwrap(),
        }
    }

    /// One transaction for `user` answering `code`: (PAM result, elapsed time).
    pub fn login(&self, user: &str, code: &str) -> (i32, Duration) {
        let user = CString::new(user).unwrap();
        let code = CString::new(code).unwrap();
        let conv = PamConv {
            conv: converse,
            appdata: &code as *const CString as *mut c_void,
        };
        let started = Instant::now();
        let mut pamh: *mut c_void = ptr::null_mut();
        // SAFETY: valid NUL-terminated strings and a live conversation struct.
        let rc = unsafe {
            pam_start_confdir(
                self.name.as_ptr(),
                user.as_ptr(),
                &conv,
                self.confdir.as_ptr(),
                &mut pamh,
            )
        };
        assert_eq!(rc, PAM_SUCCESS, "pam_start_confdir failed");
        // SAFETY: pamh came from pam_start_confdir.
        let result = unsafe { pam_authenticate(pamh, 0) };
        // SAFETY: ends the transaction; pamh is not used afterwards.
        unsafe { pam_end(pamh, result) };
        (result, started.elapsed())
    }
}

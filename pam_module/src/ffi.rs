//! The FFI edge of this crate, and its only place with `unsafe`: `pam_syslog` and
//! `pam_set_item(PAM_AUTHTOK)`. The exported `pam_sm_*` symbols are generated in the
//! shared object's own crate (pam_module/cdylib) from `PamTwofold`.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CString};

use pam::items::ItemType;
use pam::module::PamHandle;

use crate::client::{Level, Logger};

#[link(name = "pam")]
unsafe extern "C" {
    /// `void pam_syslog(const pam_handle_t *pamh, int priority, const char *fmt, ...);`
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

#[link(name = "pam")]
unsafe extern "C" {
    /// `int pam_set_item(pam_handle_t *pamh, int item_type, const void *item);`
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

/// Sets `PAM_AUTHTOK` to `authtok` (`forward_pass`): libpam copies it (and wipes and
/// frees the previous one); our NUL-terminated copy is zeroized here. The error is
/// libpam's result code; a NUL byte inside `authtok` is refused with `PAM_BUF_ERR`.
pub fn set_authtok(pamh: &PamHandle, authtok: &[u8]) -> Result<(), c_int> {
    if authtok.contains(&0) {
        return Err(pam::constants::PamResultCode::PAM_BUF_ERR as c_int);
    }
    let mut c_authtok = zeroize::Zeroizing::new(Vec::with_capacity(authtok.len() + 1));
    c_authtok.extend_from_slice(authtok);
    c_authtok.push(0);
    let pamh = std::ptr::from_ref(pamh).cast_mut();
    // `pamh` is the running hook's handle (module hooks may set PAM_AUTHTOK), an opaque
    // stand-in whose pointee Rust never touches; nothing here holds a reference into the
    // old PAM_AUTHTOK item (never read), which libpam wipes and frees.
    // SAFETY: valid handle; `c_authtok` is NUL-terminated with no NUL before its end and
    // outlives the call, during which libpam only reads it.
    let rc = unsafe {
        pam_set_item(
            pamh,
            ItemType::AuthTok as c_int,
            c_authtok.as_ptr().cast::<c_void>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Log lines through `pam_syslog(3)`: facility `LOG_AUTHPRIV`, prefixed by libpam with
/// `pam_twofold(SERVICE:TYPE):`.
pub struct Syslog<'a> {
    pamh: &'a PamHandle,
}

impl<'a> Syslog<'a> {
    /// A logger for the handle of the current hook call.
    pub fn new(pamh: &'a PamHandle) -> Self {
        Syslog { pamh }
    }
}

impl Logger for Syslog<'_> {
    fn log(&mut self, level: Level, msg: &str) {
        let severity = match level {
            Level::Err => libc::LOG_ERR,
            Level::Warning => libc::LOG_WARNING,
            Level::Notice => libc::LOG_NOTICE,
            Level::Info => libc::LOG_INFO,
            Level::Debug => libc::LOG_DEBUG,
        };
        let Ok(msg) = CString::new(msg.replace('\0', "\\0")) else {
            return;
        };
        // The format is the literal "%s" and its only argument a NUL-terminated string
        // that outlives the call: pam_syslog reads exactly one valid C string.
        // SAFETY: `self.pamh` borrows the running hook's handle; see above for the rest.
        unsafe {
            pam_syslog(
                self.pamh,
                libc::LOG_AUTHPRIV | severity,
                c"%s".as_ptr(),
                msg.as_ptr(),
            );
        }
    }
}

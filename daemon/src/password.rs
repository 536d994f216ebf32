//! Checking an account password through PAM (service `twofold-password`, normally
//! pam_unix), for `twofold disable`. This is the daemon's only use of libpam and its only
//! FFI: one owner type for the PAM handle, `unsafe` confined to this file.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use zeroize::Zeroizing;

/// PAM service the daemon authenticates passwords with.
pub const SERVICE: &str = "twofold-password";

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

/// Answers every hidden prompt with the password, and nothing else.
extern "C" fn answer_with_password(
    n: c_int,
    msgs: *mut *const PamMessage,
    out: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let n = n.max(0) as usize;
    if n == 0 || msgs.is_null() || out.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // The NUL-terminated password bytes passed to pam_start by `check`, alive for the
    // whole transaction; libpam calls the conversation on the same thread.
    let password = appdata as *const c_char;
    // SAFETY: calloc for n zeroed responses; libpam frees the array and each `resp`.
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of n valid message pointers.
        let style = unsafe { (**msgs.add(i)).msg_style };
        if style == PAM_PROMPT_ECHO_OFF {
            // SAFETY: strdup copies the NUL-terminated password into malloc'd memory that
            // libpam owns (and pam_unix wipes) from here on.
            let copy = unsafe { libc::strdup(password) };
            // SAFETY: i < n, inside the calloc'd array.
            unsafe { (*replies.add(i)).resp = copy };
        }
    }
    // SAFETY: `out` is libpam's out-pointer for the reply array.
    unsafe { *out = replies };
    PAM_SUCCESS
}

/// Owner of one PAM transaction: `pam_end` runs exactly once, on drop.
struct Transaction {
    handle: *mut c_void,
    status: c_int,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `handle` came from a successful pam_start and is ended only here.
        unsafe { pam_end(self.handle, self.status) };
    }
}

/// Checks account passwords.
#[derive(Debug, Clone, Default)]
pub struct PasswordChecker {
    /// A PAM configuration directory other than the system's (tests).
    pub confdir: Option<PathBuf>,
}

impl PasswordChecker {
    /// True when `password` is `user`'s account password. Blocking: pam_unix delays
    /// failures by about two seconds, which also slows guessing.
    pub fn check(&self, user: &str, password: &str) -> Result<bool, String> {
        let service = CString::new(SERVICE).expect("no NUL in the service name");
        let user = CString::new(user).map_err(|_| "user name with NUL".to_string())?;
        if password.as_bytes().contains(&0) {
            return Ok(false);
        }
        let mut password = Zeroizing::new(password.as_bytes().to_vec());
        password.push(0);
        let conv = PamConv {
            conv: answer_with_password,
            appdata: password.as_ptr() as *mut c_void,
        };
        let mut handle = ptr::null_mut();
        let rc = match &self.confdir {
            Some(dir) => {
                let dir = path_cstring(dir)?;
                // SAFETY: every pointer is a live NUL-terminated string or struct for the
                // call; `handle` receives the new transaction.
                unsafe {
                    pam_start_confdir(
                        service.as_ptr(),
                        user.as_ptr(),
                        &conv,
                        dir.as_ptr(),
                        &mut handle,
                    )
                }
            }
            // SAFETY: as above, with the system's PAM configuration.
            None => unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut handle) },
        };
        if rc != PAM_SUCCESS || handle.is_null() {
            return Err(format!("pam_start({SERVICE}) failed with code {rc}"));
        }
        let mut tx = Transaction { handle, status: rc };
        // SAFETY: the handle is live until `tx` drops; `conv` and `password` outlive it.
        tx.status = unsafe { pam_authenticate(tx.handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
        let ok = tx.status == PAM_SUCCESS;
        drop(tx);
        Ok(ok)
    }
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| "path with NUL".to_string())
}

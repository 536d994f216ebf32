//! The libpam client side of twofold, written once: twofoldd's account-password check,
//! the test drivers and the bench start PAM transactions through [`Transaction`] and
//! answer modules through a [`Converser`]. `unsafe` lives only in the two FFI edges,
//! `ffi` (the declarations) and the callback in `converse`, and in [`Transaction`]'s calls.

mod converse;
mod ffi;

use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

pub use converse::{Answer, ConversationFailed, Converser, Message, NoConversation, Style};
use ffi::{PamConv, PamHandle, PAM_RHOST, PAM_RUSER, PAM_SUCCESS, PAM_TTY};

/// Linux-PAM's `PAM_SUCCESS`.
pub const SUCCESS: i32 = PAM_SUCCESS;
/// `PAM_SILENT`: modules print nothing.
pub const SILENT: i32 = ffi::PAM_SILENT;
/// `PAM_DISALLOW_NULL_AUTHTOK`: an empty password does not authenticate.
pub const DISALLOW_NULL_AUTHTOK: i32 = ffi::PAM_DISALLOW_NULL_AUTHTOK;

/// The string items a client sets (`pam_set_item`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// `PAM_TTY`.
    Tty,
    /// `PAM_RHOST`.
    Rhost,
    /// `PAM_RUSER`.
    Ruser,
}

impl Item {
    fn raw(self) -> c_int {
        match self {
            Item::Tty => PAM_TTY,
            Item::Rhost => PAM_RHOST,
            Item::Ruser => PAM_RUSER,
        }
    }
}

/// A PAM call that did not return `PAM_SUCCESS`: its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PamError(pub i32);

impl std::fmt::Display for PamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PAM status {}", self.0)
    }
}

impl std::error::Error for PamError {}

/// One PAM transaction, from `pam_start` to `pam_end`: `pam_end` runs exactly once, when
/// it drops, with the status of the last call. The converser it borrows answers every
/// module that talks during the transaction.
pub struct Transaction<'a, C: Converser> {
    handle: NonNull<PamHandle>,
    last_status: c_int,
    /// Boxed so that its address holds for the whole transaction, whether or not libpam
    /// keeps its own copy.
    _conversation: Box<PamConv>,
    _converser: PhantomData<&'a mut C>,
}

impl<'a, C: Converser> Transaction<'a, C> {
    /// Starts a transaction for `user` with `service`, read from `confdir` when given
    /// (`pam_start_confdir`), else from the system's configuration (`pam_start`).
    pub fn start(
        service: &CStr,
        user: &CStr,
        confdir: Option<&CStr>,
        converser: &'a mut C,
    ) -> Result<Self, PamError> {
        let conversation = Box::new(PamConv {
            conv: converse::converse::<C>,
            appdata_ptr: ptr::from_mut(converser).cast::<c_void>(),
        });
        let mut handle = ptr::null_mut();
        let status = match confdir {
            // SAFETY: NUL-terminated strings and the conversation, alive for the call;
            // `handle` receives the new transaction.
            Some(dir) => unsafe {
                ffi::pam_start_confdir(
                    service.as_ptr(),
                    user.as_ptr(),
                    &*conversation,
                    dir.as_ptr(),
                    &mut handle,
                )
            },
            // SAFETY: as above, with the system's PAM configuration.
            None => unsafe {
                ffi::pam_start(service.as_ptr(), user.as_ptr(), &*conversation, &mut handle)
            },
        };
        match NonNull::new(handle) {
            Some(handle) if status == PAM_SUCCESS => Ok(Transaction {
                handle,
                last_status: status,
                _conversation: conversation,
                _converser: PhantomData,
            }),
            // A failed pam_start leaves no transaction to end.
            _ => Err(PamError(status)),
        }
    }

    /// Records a call's status for `pam_end` and turns it into a result.
    fn record(&mut self, status: c_int) -> Result<(), PamError> {
        self.last_status = status;
        match status {
            PAM_SUCCESS => Ok(()),
            failed => Err(PamError(failed)),
        }
    }

    /// One of libpam's hooks that take the handle and `flags` (`pam_authenticate`, ...).
    fn run_hook(
        &mut self,
        hook: unsafe extern "C" fn(*mut PamHandle, c_int) -> c_int,
        flags: i32,
    ) -> Result<(), PamError> {
        // SAFETY: `hook` is one of libpam's functions of this signature; a live handle
        // (ended only on drop); the converser outlives `self`.
        let status = unsafe { hook(self.handle.as_ptr(), flags) };
        self.record(status)
    }

    /// `pam_authenticate` with `flags` ([`SILENT`], [`DISALLOW_NULL_AUTHTOK`]).
    pub fn authenticate(&mut self, flags: i32) -> Result<(), PamError> {
        self.run_hook(ffi::pam_authenticate, flags)
    }

    /// `pam_acct_mgmt`: is the account usable now?
    pub fn acct_mgmt(&mut self, flags: i32) -> Result<(), PamError> {
        self.run_hook(ffi::pam_acct_mgmt, flags)
    }

    /// `pam_open_session`.
    pub fn open_session(&mut self, flags: i32) -> Result<(), PamError> {
        self.run_hook(ffi::pam_open_session, flags)
    }

    /// `pam_close_session`.
    pub fn close_session(&mut self, flags: i32) -> Result<(), PamError> {
        self.run_hook(ffi::pam_close_session, flags)
    }

    /// `pam_set_item` of a string item (libpam keeps its own copy).
    pub fn set_item(&mut self, item: Item, value: &CStr) -> Result<(), PamError> {
        // SAFETY: a live handle and a NUL-terminated string, copied by libpam.
        let status =
            unsafe { ffi::pam_set_item(self.handle.as_ptr(), item.raw(), value.as_ptr().cast()) };
        self.record(status)
    }

    /// `pam_putenv` of `NAME=VALUE` into the transaction's environment (copied by libpam).
    pub fn putenv(&mut self, name_value: &CStr) -> Result<(), PamError> {
        // SAFETY: a live handle and a NUL-terminated string, copied by libpam.
        let status = unsafe { ffi::pam_putenv(self.handle.as_ptr(), name_value.as_ptr()) };
        self.record(status)
    }

    /// The status of the last call (what `pam_end` will get).
    pub fn last_status(&self) -> i32 {
        self.last_status
    }

    /// libpam's text for a status (`pam_strerror`).
    pub fn strerror(&self, status: i32) -> String {
        // SAFETY: a live handle; the result is null or a static NUL-terminated string.
        let text = unsafe { ffi::pam_strerror(self.handle.as_ptr(), status) };
        if text.is_null() {
            return format!("PAM status {status}");
        }
        // SAFETY: non-null, static and NUL-terminated (above).
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

impl<C: Converser> Drop for Transaction<'_, C> {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful pam_start and is ended only here.
        unsafe { ffi::pam_end(self.handle.as_ptr(), self.last_status) };
    }
}

#[cfg(test)]
mod tests;

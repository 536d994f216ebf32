//! sessiondriver: opens a PAM session with the real libpam (`pam_start_confdir` +
//! `pam_open_session`) against a private PAM config directory, stays alive as the
//! session leader until its standard input closes, then closes the session.
//!
//! Usage: sessiondriver --confdir DIR --service NAME --user USER [--tty TTY]
//!        [--rhost HOST] [--ruser USER] [--env NAME=VALUE]...
//!
//! Prints `open RC ELAPSED_MS THREADS_BEFORE THREADS_AFTER` after opening and
//! `close RC` after closing, one line each.

use std::ffi::{c_int, c_void, CString};
use std::io::{Read, Write};
use std::ptr;
use std::time::Instant;

use twofold_tests::pam_ffi::*;

/// Session hooks must not talk to the user: any conversation is an error.
extern "C" fn no_conversation(
    _n: c_int,
    _msgs: *mut *const PamMessage,
    _out: *mut *mut PamResponse,
    _appdata: *mut c_void,
) -> c_int {
    PAM_CONV_ERR
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut confdir, mut service, mut user) = (String::new(), String::new(), String::new());
    let mut items = Vec::new();
    let mut env = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--confdir" => confdir = value(),
            "--service" => service = value(),
            "--user" => user = value(),
            "--tty" => items.push((PAM_TTY, value())),
            "--rhost" => items.push((PAM_RHOST, value())),
            "--ruser" => items.push((PAM_RUSER, value())),
            "--env" => env.push(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    let confdir = CString::new(confdir).unwrap();
    let service = CString::new(service).unwrap();
    let user = CString::new(user).unwrap();
    let conv = PamConv {
        conv: no_conversation,
        appdata: ptr::null_mut(),
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and a live conv struct for the call.
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
    for (item, v) in &items {
        let v = CString::new(v.as_str()).unwrap();
        // SAFETY: libpam copies the string.
        unsafe { pam_set_item(pamh, *item, v.as_ptr() as *const c_void) };
    }
    for e in &env {
        let e = CString::new(e.as_str()).unwrap();
        // SAFETY: libpam copies the string.
        unsafe { pam_putenv(pamh, e.as_ptr()) };
    }
    let before = threads();
    let started = Instant::now();
    // SAFETY: pamh came from pam_start_confdir.
    let rc = unsafe { pam_open_session(pamh, 0) };
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    println!("open {rc} {elapsed:.0} {before} {}", threads());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    // SAFETY: pamh is still the live handle.
    let rc = unsafe { pam_close_session(pamh, 0) };
    println!("close {rc}");
    std::io::stdout().flush().unwrap();
    // SAFETY: ends the transaction; pamh is not used afterwards.
    unsafe { pam_end(pamh, rc) };
}

//! `pam_twofold.so`: asks `twofoldd` (over D-Bus) for a second factor.
//!
//! ```text
//! auth required pam_twofold.so [socket=PATH] [bus=ADDRESS] [timeout=SECONDS] [failmode=secure|safe]
//!                              [nullok] [prompt=TEXT] [forward_pass] [grace=SECONDS]
//!                              [debug] [daemon_uid=UID]
//! ```
//!
//! With `forward_pass` the module asks one hidden question, password then code, checks
//! the code and hands the password on as `PAM_AUTHTOK` to the next module
//! (`pam_unix.so use_first_pass`); see [`auth::split_answer`].
//!
//! The module is a thin client: it never sees a secret, only the code the user types,
//! which it hands to the daemon and zeroizes. Its bus address comes only from its
//! arguments (never from the environment); the owner of `org.twofold.Twofold1` must run
//! as `daemon_uid` (root by default); every daemon interaction is bounded by `timeout=`;
//! when the daemon cannot be asked the module fails closed (`PAM_AUTHINFO_UNAVAIL`)
//! unless `failmode=safe`. No thread outlives a hook call and nothing is printed.
//!
//! Layout, each module importing only those below it (checked by
//! `tests/tests/layers.rs`): this file (the hooks); [`auth`], the whole login flow
//! (generic over the conversation, the daemon and the log, unit-tested with mocks);
//! [`session`], the session hooks and the grace question; [`bus`], the real daemon
//! connection, and `ffi` (the only `unsafe`: `pam_syslog`, `PAM_AUTHTOK`); `mock`, the
//! scripted daemon and log of the unit tests; [`client`], what the flows ask of a daemon
//! connection; [`options`]; [`text`].
#![deny(unsafe_code)]

use std::ffi::CStr;
use std::ops::Deref;

use pam::constants::PAM_TEXT_INFO;
use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_SILENT};
use pam::conv::Conv;
use pam::items::{Item, RHost, RUser, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use zeroize::Zeroizing;

pub mod auth;
pub mod bus;
pub mod client;
mod ffi;
#[cfg(test)]
mod mock;
pub mod options;
pub mod session;
pub mod text;

use auth::{AuthTok, AuthTokError, ConvError, Conversation};
use client::{Level, Logger, LoginContext};
use ffi::Syslog;
use options::Options;

/// The module's [`PamHooks`] implementation.
pub struct PamTwofold;

impl PamHooks for PamTwofold {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args: Vec<&[u8]> = args.iter().map(|a| a.to_bytes()).collect();
        let (opts, warnings) = Options::parse(&args);
        {
            let mut log = Syslog::new(pamh);
            for w in &warnings {
                log.log(Level::Warning, w);
            }
        }
        let user = match read_user(pamh) {
            Ok(user) => user,
            Err(e) => {
                let line = format!("cannot get the user name: {e:?}");
                Syslog::new(pamh).log(Level::Err, &line);
                return e;
            }
        };
        let pamh: &PamHandle = pamh;
        let ctx = LoginContext::from_items(
            item_bytes::<Service>(pamh).as_deref(),
            item_bytes::<Tty>(pamh).as_deref(),
            item_bytes::<RHost>(pamh).as_deref(),
            item_bytes::<RUser>(pamh).as_deref(),
        );
        let mut conv = PamConversation {
            pamh,
            conv: pamh.get_item::<Conv>().ok().flatten(),
            silent: flags & PAM_SILENT != 0,
        };
        let mut log = Syslog::new(pamh);
        auth::authenticate(
            &opts,
            &user,
            &ctx,
            &mut conv,
            &mut bus::BusConnector,
            &mut log,
        )
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        session_hook(session::Hook::Open, pamh, &args)
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        session_hook(session::Hook::Close, pamh, &args)
    }

    fn sm_chauthtok(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }
}

/// `pam_sm_open_session` / `pam_sm_close_session`: tells the daemon, never fails the
/// login (see [`session`]). The user is read from `PAM_USER` only (no prompting here).
fn session_hook(hook: session::Hook, pamh: &PamHandle, args: &[&CStr]) -> PamResultCode {
    let args: Vec<&[u8]> = args.iter().map(|a| a.to_bytes()).collect();
    let (opts, warnings) = Options::parse(&args);
    let mut log = Syslog::new(pamh);
    for w in &warnings {
        log.log(Level::Warning, w);
    }
    let Some(user) = item_bytes::<User>(pamh) else {
        log.log(Level::Warning, "session hook without PAM_USER: ignored");
        return PamResultCode::PAM_IGNORE;
    };
    let ctx = session::SessionContext {
        login: LoginContext::from_items(
            item_bytes::<Service>(pamh).as_deref(),
            item_bytes::<Tty>(pamh).as_deref(),
            item_bytes::<RHost>(pamh).as_deref(),
            item_bytes::<RUser>(pamh).as_deref(),
        ),
        pid: std::process::id(),
    };
    session::session(hook, &opts, &user, &ctx, &mut bus::BusConnector, &mut log)
}

/// The raw bytes of a string item, if set.
fn item_bytes<'a, T>(pamh: &'a PamHandle) -> Option<Vec<u8>>
where
    T: Item<'a> + Deref<Target = &'a CStr>,
{
    pamh.get_item::<T>()
        .ok()
        .flatten()
        .map(|item| item.to_bytes().to_vec())
}

/// `PAM_USER` as raw bytes (so a non-UTF-8 name can be reported as such), asking the
/// application through `pam_get_user` when it is not set yet.
fn read_user(pamh: &mut PamHandle) -> Result<Vec<u8>, PamResultCode> {
    if let Some(user) = item_bytes::<User>(pamh) {
        return Ok(user);
    }
    match pamh.get_user(None) {
        Ok(user) => Ok(user.into_bytes()),
        // pam-bindings refuses non-UTF-8 names; the item is set by now, so read it raw.
        Err(e) => item_bytes::<User>(pamh).ok_or(e),
    }
}

/// The application's conversation function, through pam-bindings, and `PAM_AUTHTOK`.
struct PamConversation<'a> {
    pamh: &'a PamHandle,
    conv: Option<Conv<'a>>,
    /// `PAM_SILENT`: no informational or error messages (prompts still go out).
    silent: bool,
}

impl PamConversation<'_> {
    fn say(&mut self, style: pam::constants::PamMessageStyle, msg: &str) {
        if self.silent {
            return;
        }
        if let Some(conv) = &self.conv {
            // A failure to show a message changes nothing.
            let _ = conv.send(style, msg);
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt_hidden(&mut self, msg: &str) -> Result<Zeroizing<String>, ConvError> {
        let conv = self.conv.as_ref().ok_or(ConvError)?;
        match conv.send(PAM_PROMPT_ECHO_OFF, msg) {
            // `secret` zeroizes its buffer on drop; the lossy copy is zeroized by the caller.
            Ok(Some(secret)) => Ok(Zeroizing::new(
                String::from_utf8_lossy(secret.as_bytes()).into_owned(),
            )),
            Ok(None) | Err(_) => Err(ConvError),
        }
    }

    fn prompt_hidden_raw(&mut self, msg: &str) -> Result<Zeroizing<Vec<u8>>, ConvError> {
        let conv = self.conv.as_ref().ok_or(ConvError)?;
        match conv.send(PAM_PROMPT_ECHO_OFF, msg) {
            // `secret` zeroizes its buffer on drop; the copy is zeroized by the caller.
            Ok(Some(secret)) => Ok(Zeroizing::new(secret.as_bytes().to_vec())),
            Ok(None) | Err(_) => Err(ConvError),
        }
    }

    fn info(&mut self, msg: &str) {
        self.say(PAM_TEXT_INFO, msg);
    }

    fn error(&mut self, msg: &str) {
        self.say(PAM_ERROR_MSG, msg);
    }
}

impl AuthTok for PamConversation<'_> {
    fn set_authtok(&mut self, authtok: &[u8]) -> Result<(), AuthTokError> {
        ffi::set_authtok(self.pamh, authtok).map_err(AuthTokError)
    }
}

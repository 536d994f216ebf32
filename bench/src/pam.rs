//! One PAM transaction in this process: `pam_start_confdir` + `pam_authenticate` +
//! `pam_end` through the real libpam, answering every prompt with one code.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use twofold_pam_client::{Answer, ConversationFailed, Converser, Message, Transaction};

/// Linux-PAM's `PAM_AUTHINFO_UNAVAIL`.
pub const AUTHINFO_UNAVAIL: i32 = 9;

/// Answers every prompt with one code.
struct OneCode<'a> {
    code: &'a str,
}

impl Converser for OneCode<'_> {
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        Ok(message
            .style
            .is_prompt()
            .then(|| Answer::new(self.code.as_bytes().to_vec())))
    }
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
        assert!(!code.contains('\0'), "a code with NUL");
        let mut answer = OneCode { code };
        let started = Instant::now();
        let mut tx = Transaction::start(&self.name, &user, Some(&self.confdir), &mut answer)
            .expect("pam_start_confdir failed");
        let _ = tx.authenticate(0);
        let result = tx.last_status();
        drop(tx);
        (result, started.elapsed())
    }
}

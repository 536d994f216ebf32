//! Checking an account password through PAM (service `twofold-password`, normally
//! pam_unix), for `twofold disable`. This is the daemon's only use of libpam, through
//! the shared client layer (twofold-pam-client): no `unsafe` here.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use twofold_pam_client::{
    Answer, ConversationFailed, Converser, Message, Style, Transaction, DISALLOW_NULL_AUTHTOK,
    SILENT,
};

/// PAM service the daemon authenticates passwords with.
pub const SERVICE: &str = "twofold-password";

/// Answers every hidden prompt with the password, and nothing else.
struct PasswordAnswer<'a> {
    password: &'a [u8],
}

impl Converser for PasswordAnswer<'_> {
    fn answer(&mut self, message: &Message<'_>) -> Result<Option<Answer>, ConversationFailed> {
        Ok((message.style == Style::PromptEchoOff).then(|| Answer::new(self.password.to_vec())))
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
        let confdir = self.confdir.as_deref().map(path_cstring).transpose()?;
        let mut answer = PasswordAnswer {
            password: password.as_bytes(),
        };
        let mut tx = Transaction::start(&service, &user, confdir.as_deref(), &mut answer)
            .map_err(|e| format!("pam_start({SERVICE}) failed with code {}", e.0))?;
        Ok(tx.authenticate(SILENT | DISALLOW_NULL_AUTHTOK).is_ok())
    }
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| "path with NUL".to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A `twofold-password` service whose only module, pam_exec with `expose_authtok`,
    /// prompts (hidden) for the password and accepts `right horse`; it notes each run
    /// in `runs`. pam_echo first sends a message that must get no answer.
    fn checker(dir: &Path) -> PasswordChecker {
        let program = dir.join("accept");
        let runs = dir.join("runs");
        let script = format!(
            "#!/bin/sh\necho run >> {}\n[ \"$(tr -d '\\000')\" = 'right horse' ]\n",
            runs.display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stack = format!(
            "auth optional pam_echo.so Hello\nauth required pam_exec.so expose_authtok {}\n",
            program.display()
        );
        std::fs::write(dir.join(SERVICE), stack).unwrap();
        PasswordChecker {
            confdir: Some(dir.to_path_buf()),
        }
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    #[test]
    fn password_check_answers_the_hidden_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path());
        assert_eq!(checker.check("nobody", "right horse"), Ok(true));
        assert_eq!(checker.check("nobody", "wrong horse"), Ok(false));
        assert_eq!(checker.check("nobody", ""), Ok(false));
        assert_eq!(runs(dir.path()), 3);
    }

    #[test]
    fn password_check_with_nul_bytes_is_wrong_without_asking_pam() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path());
        assert_eq!(checker.check("nobody", "right horse\0"), Ok(false));
        assert_eq!(runs(dir.path()), 0);
        assert_eq!(
            checker.check("no\0body", "right horse"),
            Err("user name with NUL".to_string())
        );
    }
}

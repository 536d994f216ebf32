//! Files that hold another PAM module's secrets (google-authenticator's per-user file,
//! pam_oath's usersfile), read as root the careful way: not through a symbolic link, a
//! regular file with one link, owned by whom it must be, closed to group and others,
//! small; its bytes zeroized when dropped.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// Why a file was not read: `Missing` (no such file) or a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    Missing,
    Refused(String),
}

/// A file's device and inode: to remove exactly the file that was read.
pub type Identity = (u64, u64);

/// A file's text, and its identity.
pub type FileRead = (Zeroizing<String>, Identity);

/// Who may own a file that is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The user only, as `pam_google_authenticator.so` requires by default: for the file
    /// in their home directory (a file of root's there could be anyone's, e.g. in a home
    /// directory `/` that many system users share).
    User(u32),
    /// The user or root: for a file an administrator names with `--file`.
    UserOrRoot(u32),
    /// Root only: for a file that holds several users' secrets.
    Root,
}

impl Owner {
    fn allows(self, uid: u32) -> bool {
        match self {
            Owner::User(user) => uid == user,
            Owner::UserOrRoot(user) => uid == user || uid == 0,
            Owner::Root => uid == 0,
        }
    }

    fn named(self) -> &'static str {
        match self {
            Owner::User(_) => "the user",
            Owner::UserOrRoot(_) => "the user or root",
            Owner::Root => "root",
        }
    }
}

/// What a file must be to be read.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub owner: Owner,
    /// Largest size read, in bytes.
    pub max_len: u64,
    /// Said when the mode lets group or others in, e.g. "google-authenticator requires
    /// 0400 or 0600".
    pub mode_rule: &'static str,
}

/// Reads the file at `path` if it is as `rules` say, not readable or writable by group
/// or others, and has one link.
pub fn read(path: &Path, rules: Rules) -> Result<FileRead, Unreadable> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Unreadable::Missing,
            Some(libc::ELOOP) => Unreadable::Refused(
                "the file is a symbolic link, which is not followed (it could point anywhere)"
                    .into(),
            ),
            _ => Unreadable::Refused(format!("cannot open the file: {e}")),
        })?;
    let refused = |why: String| Unreadable::Refused(why);
    let meta = file
        .metadata()
        .map_err(|e| refused(format!("cannot read the file's metadata: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(refused("the file is not a regular file".into()));
    }
    if !rules.owner.allows(meta.uid()) {
        return Err(refused(format!(
            "the file belongs to uid {}, not to {}",
            meta.uid(),
            rules.owner.named()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refused(format!(
            "the file is open to group or others (mode {:04o}); {}",
            meta.mode() & 0o7777,
            rules.mode_rule
        )));
    }
    if meta.nlink() != 1 {
        return Err(refused("the file has other hard links".into()));
    }
    let too_large = || refused(format!("the file is larger than {} bytes", rules.max_len));
    if meta.len() > rules.max_len {
        return Err(too_large());
    }
    // Room for all of it up front: no reallocation leaves a copy of a secret behind.
    let capacity = usize::try_from(rules.max_len).unwrap_or(usize::MAX - 1) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(rules.max_len + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > rules.max_len {
        return Err(too_large());
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok((Zeroizing::new(text.to_owned()), (meta.dev(), meta.ino()))),
        Err(_) => Err(refused("the file is not text".into())),
    }
}

/// The identity of the file at `path` (not following a symbolic link).
pub fn identity(path: &Path) -> Option<Identity> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const MAX: u64 = 64;

    fn rules(owner: Owner) -> Rules {
        Rules {
            owner,
            max_len: MAX,
            mode_rule: "it must be 0600 or stricter",
        }
    }

    #[test]
    fn files_are_read_only_when_safe() {
        let dir = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let me = rules(Owner::User(uid));
        let path = dir.path().join("secret");
        std::fs::write(&path, "text\n").unwrap();
        let mode = |m: u32| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m));
        mode(0o600).unwrap();
        let (text, identity) = read(&path, me).unwrap();
        assert_eq!(text.as_str(), "text\n");
        assert_eq!(Some(identity), super::identity(&path));
        mode(0o400).unwrap();
        assert!(read(&path, me).is_ok());
        mode(0o640).unwrap();
        assert!(
            matches!(read(&path, me), Err(Unreadable::Refused(w)) if w.contains("0640") && w.contains("0600 or stricter"))
        );
        mode(0o600).unwrap();
        let someone_else = rules(Owner::User(uid + 1));
        assert!(
            matches!(read(&path, someone_else), Err(Unreadable::Refused(w)) if w.contains("uid"))
        );
        // Root's file: for --file and for a usersfile only.
        assert_eq!(read(&path, rules(Owner::UserOrRoot(1))).is_ok(), uid == 0);
        assert_eq!(read(&path, rules(Owner::Root)).is_ok(), uid == 0);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(read(&link, me), Err(Unreadable::Refused(w)) if w.contains("symbolic")));
        let hard = dir.path().join("hard");
        std::fs::hard_link(&path, &hard).unwrap();
        assert!(matches!(read(&path, me), Err(Unreadable::Refused(w)) if w.contains("hard")));
        std::fs::remove_file(&hard).unwrap();
        std::fs::write(&path, "x".repeat(MAX as usize + 1)).unwrap();
        assert!(matches!(read(&path, me), Err(Unreadable::Refused(w)) if w.contains("larger")));
        assert!(matches!(
            read(&dir.path().join("none"), me),
            Err(Unreadable::Missing)
        ));
        assert!(matches!(read(dir.path(), me), Err(Unreadable::Refused(_))));
    }
}

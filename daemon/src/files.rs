//! Opening the daemon's private files (database, key) without following links.
//!
//! pam_oath's CVE-2024-47191 was a symlink attack on its state file; we refuse to start
//! rather than write through a link, into a file someone else owns, or into one that
//! others can read.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why a private file or directory was refused.
#[derive(Debug)]
pub struct UnsafeFile(pub String);

impl std::fmt::Display for UnsafeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn our_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The metadata of `path` itself, which must not be a symbolic link.
fn not_a_link(path: &Path) -> Result<fs::Metadata, UnsafeFile> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| UnsafeFile(format!("{}: cannot inspect: {e}", path.display())))?;
    if meta.file_type().is_symlink() {
        return Err(UnsafeFile(format!(
            "{} is a symbolic link; refusing to use it",
            path.display()
        )));
    }
    Ok(meta)
}

/// Checks that `path` is a regular file (not a link), owned by us, and not readable or
/// writable by group or others.
pub fn check_private_file(path: &Path) -> Result<(), UnsafeFile> {
    let meta = not_a_link(path)?;
    if !meta.file_type().is_file() {
        return Err(UnsafeFile(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.uid() != our_uid() {
        return Err(UnsafeFile(format!(
            "{} is owned by uid {}, expected uid {}",
            path.display(),
            meta.uid(),
            our_uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(UnsafeFile(format!(
            "{} has mode {mode:04o}, expected 0600 (others must not read it)",
            path.display()
        )));
    }
    Ok(())
}

/// Creates `path` as a new 0600 file; fails if anything (even a dangling link) is there.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens an existing private file for reading after checking it.
pub fn open_private_file(path: &Path) -> Result<File, UnsafeFile> {
    check_private_file(path)?;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| UnsafeFile(format!("{}: {e}", path.display())))
}

/// Makes sure the directory holding a private file exists (created 0700) and that nobody
/// but us or root can write into it (or swap our files for links).
pub fn ensure_private_dir(dir: &Path) -> Result<(), UnsafeFile> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| UnsafeFile(format!("{}: cannot create: {e}", dir.display())))?;
    }
    let meta = fs::metadata(dir)
        .map_err(|e| UnsafeFile(format!("{}: cannot inspect: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(UnsafeFile(format!("{} is not a directory", dir.display())));
    }
    let mode = meta.permissions().mode();
    if meta.uid() != our_uid() && meta.uid() != 0 {
        return Err(UnsafeFile(format!(
            "{} is owned by uid {}; it must belong to uid {} or root",
            dir.display(),
            meta.uid(),
            our_uid()
        )));
    }
    // Sticky or not: in a sticky directory others cannot replace our files, but they can
    // create a file or link under a name we have not created yet (a new -wal, the key).
    if mode & 0o022 != 0 {
        return Err(UnsafeFile(format!(
            "{} is writable by group or others (mode {:04o})",
            dir.display(),
            mode & 0o7777
        )));
    }
    Ok(())
}

/// Makes sure the directory of the direct socket exists (created 0755) and that nobody
/// but us or root can write into it or swap it: not a link, owned by us or root, not
/// writable by group or others. Readable by all is fine (the socket itself is 0600).
pub fn ensure_runtime_dir(dir: &Path) -> Result<(), UnsafeFile> {
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            // The umask (077) narrowed the mode: the directory is meant to be listable.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| UnsafeFile(format!("{}: cannot set its mode: {e}", dir.display())))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(UnsafeFile(format!("{}: cannot create: {e}", dir.display()))),
    }
    not_a_link(dir)?;
    ensure_private_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{refused, temp_path};
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_links_and_loose_modes() {
        let (dir, good) = temp_path("good");
        drop(create_private_file(&good).unwrap());
        check_private_file(&good).unwrap();

        let link = dir.path().join("link");
        symlink(&good, &link).unwrap();
        refused(check_private_file(&link), "symbolic link");
        assert!(create_private_file(&link).is_err());

        fs::set_permissions(&good, fs::Permissions::from_mode(0o644)).unwrap();
        refused(check_private_file(&good), "0644");
    }

    #[test]
    fn refuses_a_state_directory_others_can_write_sticky_or_not() {
        let (_dir, state) = temp_path("state");
        ensure_private_dir(&state).unwrap();
        for mode in [0o1777, 0o777, 0o1770, 0o1733, 0o0720] {
            fs::set_permissions(&state, fs::Permissions::from_mode(mode)).unwrap();
            let err = ensure_private_dir(&state).unwrap_err();
            assert!(
                err.0.contains(&format!("mode {mode:04o}")),
                "{mode:04o}: {err}"
            );
        }
        for mode in [0o700, 0o755, 0o1755] {
            fs::set_permissions(&state, fs::Permissions::from_mode(mode)).unwrap();
            ensure_private_dir(&state).unwrap();
        }
    }

    #[test]
    fn the_runtime_directory_is_created_listable_and_refused_as_a_link_or_loose() {
        let (dir, run) = temp_path("run");
        ensure_runtime_dir(&run).unwrap();
        let meta = fs::metadata(&run).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        ensure_runtime_dir(&run).unwrap();

        let link = dir.path().join("link");
        symlink(&run, &link).unwrap();
        refused(ensure_runtime_dir(&link), "symbolic link");

        fs::set_permissions(&run, fs::Permissions::from_mode(0o777)).unwrap();
        refused(ensure_runtime_dir(&run), "writable by group or others");
    }
}

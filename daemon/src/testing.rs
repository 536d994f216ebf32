//! What the unit tests of several modules share.

use std::fmt::{Debug, Display};

/// Asserts that `result` is an error whose text contains `says`.
#[track_caller]
pub fn refused<T: Debug, E: Display>(result: Result<T, E>, says: &str) {
    let text = result.unwrap_err().to_string();
    assert!(text.contains(says), "{text}");
}

/// A fresh temporary directory (removed when dropped) and the path `name` in it.
pub fn temp_path(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

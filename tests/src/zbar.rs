//! QR codes read back by zbarimg, an independent decoder.

use std::path::Path;
use std::process::Command;

/// What `zbarimg` decodes from the image at `path`: the QR code's text, or `None`.
pub fn zbar_decode(path: &Path) -> Option<String> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .expect("zbarimg must be installed (tests/run.sh installs zbar-tools)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim_end_matches('\n').to_owned())
}

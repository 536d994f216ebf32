//! The enrollment QR code in the terminal, two modules per character cell.

use std::io::IsTerminal;

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use zeroize::Zeroizing;

/// Black on white, so that the code reads the same on dark and light terminal themes.
const COLOURS: &str = "\x1b[30;47m";
const RESET: &str = "\x1b[0m";

/// The QR code of `text`: dark modules as blocks, light ones as spaces, with a quiet
/// zone. Lines are separated by `\n`, with no trailing newline.
pub fn render(text: &str) -> Result<Zeroizing<String>, qrcode::types::QrError> {
    let code = QrCode::new(text.as_bytes())?;
    Ok(Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .module_dimensions(1, 1)
            .build(),
    ))
}

/// Sets explicit colours on every line (reset before each newline).
pub fn coloured(plain: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(plain.len() * 2));
    for line in plain.lines() {
        out.push_str(COLOURS);
        out.push_str(line);
        out.push_str(RESET);
        out.push('\n');
    }
    out
}

/// Whether to colour: standard output is a terminal that takes escape sequences, and
/// the user did not ask for no colour (<https://no-color.org>).
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// The rendering to print: coloured when [`use_colour`], ending with a newline.
pub fn for_terminal(text: &str) -> Result<Zeroizing<String>, qrcode::types::QrError> {
    let plain = render(text)?;
    if use_colour() {
        Ok(coloured(&plain))
    } else {
        let mut out = Zeroizing::new(String::with_capacity(plain.len() + 1));
        out.push_str(&plain);
        out.push('\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Characters the rendering may contain (besides newlines).
    const BLOCKS: [char; 4] = [' ', '\u{2580}', '\u{2584}', '\u{2588}'];

    /// Width of the quiet zone around a QR code, in modules (ISO/IEC 18004).
    const QUIET_ZONE: usize = 4;

    const URI: &str = "otpauth://totp/example.org:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
                       &issuer=example.org&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn only_block_characters() {
        let qr = render(URI).unwrap();
        assert!(
            qr.chars().all(|c| c == '\n' || BLOCKS.contains(&c)),
            "{}",
            *qr
        );
        assert!(qr.contains('\u{2588}'));
        assert!(!qr.ends_with('\n'));
    }

    #[test]
    fn rectangular_with_a_quiet_zone() {
        let qr = render(URI).unwrap();
        let lines: Vec<Vec<char>> = qr.lines().map(|l| l.chars().collect()).collect();
        let width = lines[0].len();
        // Square in modules: each line holds two rows of modules.
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(lines.iter().all(|l| l.len() == width));
        // Top and bottom: QUIET_ZONE rows of modules = QUIET_ZONE / 2 blank lines.
        let blank = |l: &Vec<char>| l.iter().all(|&c| c == ' ');
        for l in lines.iter().take(QUIET_ZONE / 2) {
            assert!(blank(l));
        }
        for l in lines.iter().rev().take(QUIET_ZONE / 2) {
            assert!(blank(l));
        }
        // Left and right.
        for l in &lines {
            assert!(l[..QUIET_ZONE].iter().all(|&c| c == ' '));
            assert!(l[width - QUIET_ZONE..].iter().all(|&c| c == ' '));
        }
        // The finder pattern starts right after the quiet zone.
        assert_ne!(lines[QUIET_ZONE / 2][QUIET_ZONE], ' ');
    }

    #[test]
    fn colours_wrap_each_line() {
        let plain = render(URI).unwrap();
        let c = coloured(&plain);
        assert_eq!(c.lines().count(), plain.lines().count());
        for line in c.lines() {
            assert!(line.starts_with(COLOURS) && line.ends_with(RESET));
        }
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        assert!(render(&"x".repeat(10_000)).is_err());
    }
}

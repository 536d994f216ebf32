//! The enrollment QR code: in the terminal (two modules per character cell, black on
//! white whatever the theme), and as PNG or SVG files.

use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use qrcode::render::svg;
use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, QrCode};
use zeroize::Zeroizing;

/// Black on white from the 256-colour cube (16 = #000000, 231 = #ffffff): themes remap
/// the 16 basic colours (a "white" that is light grey, a "black" that is dark blue), but
/// leave the cube alone. Dark modules are drawn in the foreground colour.
const COLOURS_256: &str = "\x1b[38;5;16;48;5;231m";
/// Black on white from the basic colours, for terminals without 256 colours (the Linux
/// console).
const COLOURS_BASIC: &str = "\x1b[30;47m";
const RESET: &str = "\x1b[0m";

/// Width of the quiet zone around a QR code, in modules (ISO/IEC 18004).
pub const QUIET_ZONE: u32 = 4;
/// Pixels per module in the PNG file.
const PNG_SCALE: u32 = 8;

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

/// Sets explicit colours (`colours`, an SGR sequence) on every line, reset before each
/// newline so that nothing bleeds into the rest of the terminal.
pub fn coloured(plain: &str, colours: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(plain.len() * 2));
    for line in plain.lines() {
        out.push_str(colours);
        out.push_str(line);
        out.push_str(RESET);
        out.push('\n');
    }
    out
}

/// Why the QR code is drawn without colours, if it is: the terminal then draws the dark
/// modules in its own text colour, which is light on a dark theme (an inverted code
/// that many readers cannot read).
pub fn why_plain() -> Option<&'static str> {
    if !std::io::stdout().is_terminal() {
        Some("the output is not a terminal")
    } else if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        // <https://no-color.org>
        Some("NO_COLOR is set")
    } else if std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        Some("TERM is dumb")
    } else {
        None
    }
}

/// The colours for this terminal: the 256-colour cube where the terminal says it has it.
fn colours() -> &'static str {
    let term = std::env::var("TERM").unwrap_or_default();
    let colorterm = std::env::var_os("COLORTERM").is_some_and(|v| !v.is_empty());
    if colorterm || term.contains("256") || term.contains("direct") {
        COLOURS_256
    } else {
        COLOURS_BASIC
    }
}

/// The rendering to print, ending with a newline: black on white, or without colours
/// (and why, see [`why_plain`]).
pub fn for_terminal(
    text: &str,
) -> Result<(Zeroizing<String>, Option<&'static str>), qrcode::types::QrError> {
    let plain = render(text)?;
    match why_plain() {
        None => Ok((coloured(&plain, colours()), None)),
        Some(why) => {
            let mut out = Zeroizing::new(String::with_capacity(plain.len() + 1));
            out.push_str(&plain);
            out.push('\n');
            Ok((out, Some(why)))
        }
    }
}

/// A PNG image of the QR code of `text`: black on white, 8 pixels per module, with the
/// quiet zone.
pub fn png(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
    let mut pixels = Zeroizing::new(vec![255u8; (side * side) as usize]);
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = (x / PNG_SCALE, y / PNG_SCALE);
            let inside = (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
                && (QUIET_ZONE..QUIET_ZONE + modules).contains(&my);
            if inside {
                let i = ((my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)) as usize;
                if colors[i] == Color::Dark {
                    pixels[(y * side + x) as usize] = 0;
                }
            }
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    {
        let mut encoder = png::Encoder::new(&mut *out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// An SVG image of the QR code of `text`, black on white with the quiet zone.
pub fn svg(text: &str) -> Result<Zeroizing<String>, String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(Zeroizing::new(
        code.render::<svg::Color<'_>>()
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .quiet_zone(true)
            .min_dimensions(256, 256)
            .build(),
    ))
}

/// Writes `data` to `path`, readable by its owner only (it holds the secret): into a new
/// file beside it, then renamed over `path`, so that an existing file or symlink at
/// `path` is replaced, never written through.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| "not a file name".to_owned())?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        let text = e.to_string();
        match text.find(" (os error") {
            Some(i) => text[..i].to_owned(),
            None => text,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Characters the rendering may contain (besides newlines).
    const BLOCKS: [char; 4] = [' ', '\u{2580}', '\u{2584}', '\u{2588}'];

    const QUIET_ZONE: usize = super::QUIET_ZONE as usize;

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
        for colours in [COLOURS_256, COLOURS_BASIC] {
            let c = coloured(&plain, colours);
            assert_eq!(c.lines().count(), plain.lines().count());
            for line in c.lines() {
                assert!(line.starts_with(colours) && line.ends_with(RESET));
            }
        }
    }

    #[test]
    fn png_is_a_square_png_with_a_white_border() {
        let data = png(URI).unwrap();
        let decoder = ::png::Decoder::new(std::io::Cursor::new(data.to_vec()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, info.height);
        let modules = QrCode::new(URI).unwrap().width() as u32;
        assert_eq!(info.width, (modules + 8) * 8);
        // The quiet zone is white; the finder pattern's corner is black.
        assert!(buf[..(info.width * 32) as usize].iter().all(|&p| p == 255));
        assert_eq!(buf[(32 * info.width + 32) as usize], 0);
    }

    #[test]
    fn svg_is_black_on_white() {
        let s = svg(URI).unwrap();
        assert!(s.starts_with("<?xml"), "{}", &s[..40]);
        assert!(s.contains("#000000") && s.contains("#ffffff"));
    }

    #[test]
    fn private_files_replace_and_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qr.png");
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_private(&path, b"secret").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(
            fs::read(&target).unwrap(),
            b"keep",
            "written through a symlink"
        );
        let mode = fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary left"
        );
        assert!(write_private(&dir.path().join("no/such/dir/x.png"), b"x").is_err());
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        assert!(render(&"x".repeat(10_000)).is_err());
    }
}

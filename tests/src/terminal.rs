//! What a terminal shows: an ANSI renderer of block-character output (QR codes) in dark
//! and light themes, to pixels and PPM images.

use std::fs;
use std::path::Path;

/// Colours of a terminal theme, for [`render_terminal`].
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub name: &'static str,
    pub default_fg: [u8; 3],
    pub default_bg: [u8; 3],
    /// The 16 basic colours as this theme shows them (themes remap these).
    pub basic: [[u8; 3]; 16],
}

impl Theme {
    /// A dark theme (Solarized Dark): light grey text on dark blue-grey.
    pub fn dark() -> Theme {
        Theme {
            name: "dark",
            default_fg: [0x83, 0x94, 0x96],
            default_bg: [0x00, 0x2b, 0x36],
            basic: [
                [0x07, 0x36, 0x42],
                [0xdc, 0x32, 0x2f],
                [0x85, 0x99, 0x00],
                [0xb5, 0x89, 0x00],
                [0x26, 0x8b, 0xd2],
                [0xd3, 0x36, 0x82],
                [0x2a, 0xa1, 0x98],
                [0xee, 0xe8, 0xd5],
                [0x00, 0x2b, 0x36],
                [0xcb, 0x4b, 0x16],
                [0x58, 0x6e, 0x75],
                [0x65, 0x7b, 0x83],
                [0x83, 0x94, 0x96],
                [0x6c, 0x71, 0xc4],
                [0x93, 0xa1, 0xa1],
                [0xfd, 0xf6, 0xe3],
            ],
        }
    }

    /// A light theme: near-black text on white, xterm's basic colours.
    pub fn light() -> Theme {
        Theme {
            name: "light",
            default_fg: [0x20, 0x20, 0x20],
            default_bg: [0xff, 0xff, 0xff],
            basic: [
                [0, 0, 0],
                [205, 0, 0],
                [0, 205, 0],
                [205, 205, 0],
                [0, 0, 238],
                [205, 0, 205],
                [0, 205, 205],
                [229, 229, 229],
                [127, 127, 127],
                [255, 0, 0],
                [0, 255, 0],
                [255, 255, 0],
                [92, 92, 255],
                [255, 0, 255],
                [0, 255, 255],
                [255, 255, 255],
            ],
        }
    }

    fn colour_256(&self, n: u16) -> [u8; 3] {
        match n {
            0..=15 => self.basic[n as usize],
            16..=231 => {
                let n = n - 16;
                let level = |v: u16| if v == 0 { 0 } else { (55 + v * 40) as u8 };
                [level(n / 36), level(n / 6 % 6), level(n % 6)]
            }
            _ => {
                let g = (8 + (n.min(255) - 232) * 10) as u8;
                [g, g, g]
            }
        }
    }
}

/// What a terminal with `theme` shows for the block-character lines of `text` (the QR
/// code of `twofold enroll`): each character cell is one pixel wide and two tall (upper
/// and lower half), in the colours its SGR escape sequences set. Lines that are not
/// made of block characters (the text around the code) are left out; a margin of the
/// theme's background surrounds the picture. Returns rows of RGB pixels.
pub fn render_terminal(text: &str, theme: &Theme) -> Vec<Vec<[u8; 3]>> {
    const MARGIN: usize = 3;
    let mut rows: Vec<Vec<[u8; 3]>> = Vec::new();
    let (mut fg, mut bg) = (theme.default_fg, theme.default_bg);
    for line in text.split('\n') {
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        let mut chars = line.trim_end_matches('\r').chars().peekable();
        let mut blocks = 0;
        let mut other = 0;
        let mut escapes = 0;
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                escapes += 1;
                if chars.peek() == Some(&'[') {
                    chars.next();
                    let mut params = String::new();
                    let mut fin = ' ';
                    for p in chars.by_ref() {
                        if p.is_ascii_alphabetic() {
                            fin = p;
                            break;
                        }
                        params.push(p);
                    }
                    if fin == 'm' {
                        sgr(&params, theme, &mut fg, &mut bg);
                    }
                }
                continue;
            }
            let (t, b) = match c {
                ' ' => (bg, bg),
                '\u{2580}' => (fg, bg),
                '\u{2584}' => (bg, fg),
                '\u{2588}' => (fg, fg),
                _ => {
                    other += 1;
                    (bg, bg)
                }
            };
            if c != ' ' && other == 0 {
                blocks += 1;
            }
            top.push(t);
            bottom.push(b);
        }
        // The code's lines: block characters and spaces only, with at least one block or
        // colour (the quiet zone's lines are coloured spaces).
        if (blocks > 0 || escapes > 0) && other == 0 && !top.is_empty() {
            rows.push(top);
            rows.push(bottom);
        }
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0) + 2 * MARGIN;
    let pad = |mut r: Vec<[u8; 3]>| {
        let mut out = vec![theme.default_bg; MARGIN];
        out.append(&mut r);
        out.resize(width, theme.default_bg);
        out
    };
    let mut image = vec![vec![theme.default_bg; width]; MARGIN * 2];
    image.extend(rows.into_iter().map(pad));
    image.extend(vec![vec![theme.default_bg; width]; MARGIN * 2]);
    image
}

fn sgr(params: &str, theme: &Theme, fg: &mut [u8; 3], bg: &mut [u8; 3]) {
    let nums: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params.split(';').map(|p| p.parse().unwrap_or(0)).collect()
    };
    let mut i = 0;
    while i < nums.len() {
        match nums[i] {
            0 => {
                *fg = theme.default_fg;
                *bg = theme.default_bg;
            }
            n @ 30..=37 => *fg = theme.basic[(n - 30) as usize],
            n @ 40..=47 => *bg = theme.basic[(n - 40) as usize],
            n @ 90..=97 => *fg = theme.basic[(n - 90 + 8) as usize],
            n @ 100..=107 => *bg = theme.basic[(n - 100 + 8) as usize],
            39 => *fg = theme.default_fg,
            49 => *bg = theme.default_bg,
            38 | 48 if nums.get(i + 1) == Some(&5) => {
                let c = theme.colour_256(nums.get(i + 2).copied().unwrap_or(0));
                if nums[i] == 38 {
                    *fg = c;
                } else {
                    *bg = c;
                }
                i += 2;
            }
            38 | 48 if nums.get(i + 1) == Some(&2) => {
                let v = |k: usize| nums.get(i + k).copied().unwrap_or(0).min(255) as u8;
                let c = [v(2), v(3), v(4)];
                if nums[i] == 38 {
                    *fg = c;
                } else {
                    *bg = c;
                }
                i += 4;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Writes `pixels` as a binary PPM image, each pixel `scale` × `scale`.
pub fn write_ppm(path: &Path, pixels: &[Vec<[u8; 3]>], scale: usize) {
    let height = pixels.len() * scale;
    let width = pixels.first().map_or(0, Vec::len) * scale;
    let mut data = format!("P6\n{width} {height}\n255\n").into_bytes();
    for row in pixels {
        let mut line = Vec::with_capacity(width * 3);
        for px in row {
            for _ in 0..scale {
                line.extend_from_slice(px);
            }
        }
        for _ in 0..scale {
            data.extend_from_slice(&line);
        }
    }
    fs::write(path, data).unwrap();
}

//! What the daemon reads about processes, from `/proc`: enough to tell a live session
//! leader from a dead one (the start time survives pid reuse), to walk a caller's
//! ancestry (the "current" session), and to find a session's terminal.

use std::path::{Path, PathBuf};

/// The fields of `/proc/PID/stat` the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process state (`R`, `S`, `Z`, …).
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Process group.
    pub pgrp: u32,
    /// Session id.
    pub sid: u32,
    /// Controlling terminal (device number), 0 when none.
    pub tty_nr: u32,
    /// Start time in clock ticks since boot: with the pid, it names one process.
    pub start: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): index = field number - 3.
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        tty_nr: f.get(4)?.parse::<i64>().ok()? as u32,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat` of a process, under `root` (`/proc` outside tests).
pub fn stat_in(root: &Path, pid: u32) -> Option<Stat> {
    if pid == 0 {
        return None;
    }
    let text = std::fs::read_to_string(root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text)
}

/// `/proc/PID/stat` of a process.
pub fn stat(pid: u32) -> Option<Stat> {
    stat_in(Path::new("/proc"), pid)
}

/// True while the process `pid` that started at `start` runs (a zombie has ended).
pub fn alive(pid: u32, start: u64) -> bool {
    stat(pid).is_some_and(|s| s.start == start && s.state != 'Z' && s.state != 'X')
}

/// Real and saved uid of a process, from `/proc/PID/status`: what kill(2) checks a
/// user's signal against (a user may signal a setuid program they started, not a root
/// process that merely set its effective uid to theirs).
pub fn uids(pid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_uids(&text)
}

/// The real and saved uid in the text of `/proc/PID/status` (`Uid: R E S FS`).
pub fn parse_uids(status: &str) -> Option<(u32, u32)> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let ids: Vec<&str> = line["Uid:".len()..].split_whitespace().collect();
    Some((ids.first()?.parse().ok()?, ids.get(2)?.parse().ok()?))
}

/// Every process now: pid and stat (a snapshot; each entry is checked again before use).
pub fn processes() -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// Where the kernel tells its boot id.
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";

/// Another file to read the boot id from (`--boot-id-file`, tests only).
static BOOT_ID_OVERRIDE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Makes [`boot_id`] read `path` (set once, before anything reads it).
pub fn use_boot_id_file(path: std::path::PathBuf) {
    let _ = BOOT_ID_OVERRIDE.set(path);
}

/// The kernel's boot id: a session recorded under another boot id ended with a reboot.
pub fn boot_id() -> String {
    let path = BOOT_ID_OVERRIDE
        .get()
        .map_or(std::path::Path::new(BOOT_ID_FILE), |p| p.as_path());
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `pid` and its ancestors as `(pid, start)`, nearest first, at most 64 of them.
pub fn ancestry(pid: u32) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut pid = pid;
    while pid > 1 && out.len() < 64 {
        let Some(s) = stat(pid) else { break };
        out.push((pid, s.start));
        pid = s.ppid;
    }
    out
}

/// The `/dev` path of a terminal device number: `/dev/pts/N` (Unix 98 ptys) or
/// `/dev/ttyN` (virtual consoles).
pub fn tty_path(tty_nr: u32) -> Option<PathBuf> {
    let major = (tty_nr >> 8) & 0xff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => Some(PathBuf::from(format!(
            "/dev/pts/{}",
            (major - 136) * 256 + minor
        ))),
        4 if minor < 64 => Some(PathBuf::from(format!("/dev/tty{minor}"))),
        _ => None,
    }
}

/// The terminal of a session: its own `PAM_TTY` when that names a device, else the
/// controlling terminal of a process below the leader (sshd allocates the pty after
/// the session opened). None when there is none.
pub fn session_tty(tty: &str, leader: u32) -> Option<PathBuf> {
    if let Some(path) = device_path(tty) {
        return Some(path);
    }
    let children = processes();
    // Breadth-first below the leader, at most a few levels and processes.
    let mut frontier = vec![leader];
    for _ in 0..4 {
        let mut next = Vec::new();
        for (pid, s) in &children {
            if frontier.contains(&s.ppid) {
                if s.tty_nr != 0 {
                    if let Some(path) = tty_path(s.tty_nr) {
                        return Some(path);
                    }
                }
                next.push(*pid);
            }
        }
        if next.is_empty() {
            break;
        }
        next.truncate(256);
        frontier = next;
    }
    None
}

/// `PAM_TTY` as a device path, when it names a terminal device (`/dev/pts/3`,
/// `pts/3`, `tty2`); None for "ssh", X displays and anything odd.
pub fn device_path(tty: &str) -> Option<PathBuf> {
    let name = tty.strip_prefix("/dev/").unwrap_or(tty);
    let ok = match name.strip_prefix("pts/") {
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => name
            .strip_prefix("tty")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    };
    ok.then(|| PathBuf::from("/dev").join(name))
}

/// Seconds since the terminal was last typed on (its access time), like `w`.
pub fn idle_seconds(tty: &Path, now: i64) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(tty).ok()?;
    Some((now - meta.atime()).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let text = "1234 (a) b (c)) S 1 1234 1234 34816 1234 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    98765 1000 100 18446744073709551615";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp, s.sid), (1, 1234, 1234));
        assert_eq!(s.tty_nr, 34816);
        assert_eq!(s.start, 98765);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_is_not() {
        let me = std::process::id();
        let s = stat(me).unwrap();
        assert!(alive(me, s.start));
        assert!(!alive(me, s.start + 1));
        assert!(ancestry(me).first() == Some(&(me, s.start)));
        assert!(!boot_id().is_empty());
    }

    #[test]
    fn uids_of_a_status_text_and_of_ourselves() {
        let text = "Name:\tsudo\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_uids(text), Some((1000, 0)));
        assert_eq!(parse_uids("Uid:\t0\t1000\t0\t1000\n"), Some((0, 0)));
        assert_eq!(parse_uids("Name:\tx\n"), None);
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(uids(std::process::id()).map(|u| u.0), Some(me));
        assert!(processes().iter().any(|(p, _)| *p == std::process::id()));
    }

    #[test]
    fn terminal_names() {
        assert_eq!(tty_path(136 << 8 | 5), Some(PathBuf::from("/dev/pts/5")));
        assert_eq!(tty_path(4 << 8 | 2), Some(PathBuf::from("/dev/tty2")));
        assert_eq!(tty_path(0), None);
        assert_eq!(device_path("/dev/pts/7"), Some(PathBuf::from("/dev/pts/7")));
        assert_eq!(device_path("pts/7"), Some(PathBuf::from("/dev/pts/7")));
        assert_eq!(device_path("tty1"), Some(PathBuf::from("/dev/tty1")));
        for bad in [
            "ssh",
            ":0",
            "/dev/pts/../sda",
            "/dev/pts/",
            "tty",
            "/etc/passwd",
        ] {
            assert_eq!(device_path(bad), None, "{bad}");
        }
    }
}

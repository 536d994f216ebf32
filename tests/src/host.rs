//! The machine the tests run on: built programs, root, users, time and TOTP codes,
//! processes.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Directory holding the built binaries (`target/debug`), found from the test binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of a built binary or library in the target directory.
pub fn built(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (tests/run.sh does)",
        path.display()
    );
    path
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// True when the test may run: as root. Outside CI a non-root run skips with a message;
/// under CI=true it fails, so that nothing is silently skipped there.
pub fn require_root(test: &str) -> bool {
    if nix_geteuid() == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} must run as root under CI");
    }
    eprintln!("SKIPPED {test}: needs root (run tests/run.sh as root)");
    false
}

/// The uid of user `name`, if there is one.
pub fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: getpwnam reads a NUL-terminated name; the result is copied out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    // SAFETY: a non-null result points to a valid passwd struct.
    (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
}

pub(crate) fn nix_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Unix time now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps, when needed, until at least `seconds` remain in the current 30-second step, so
/// that codes computed now stay in the window the test expects.
pub fn wait_for_fresh_step(seconds: u64) {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 30.0;
    if 30.0 - into < seconds as f64 {
        std::thread::sleep(Duration::from_secs_f64(30.0 - into + 0.2));
    }
}

/// `PRAGMA integrity_check` of the SQLite database at `db` by the sqlite3 CLI: "ok" when
/// sound.
pub fn sqlite_integrity(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("the sqlite3 CLI must be installed");
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The TOTP code of `secret` (base32) at the current step plus `offset` steps, computed
/// by oathtool, an independent implementation.
pub fn totp(secret: &str, offset: i64) -> String {
    let at = unix_now() as i64 + offset * 30;
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "--now", &format!("@{at}"), secret])
        .output()
        .expect("oathtool must be installed (tests/run.sh installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A six-digit code that `secret` gives at none of the steps around now (two either
/// way, wider than the daemon's window): a wrong code whatever the clock does.
pub fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = (-2..=2).map(|step| totp(secret, step)).collect();
    // Six candidates for five codes around now: one is always free.
    (0..=5)
        .map(|digit: u32| digit.to_string().repeat(6))
        .find(|candidate| !near.contains(candidate))
        .expect("six candidates, five codes around now")
}

/// The state letter of process `pid` (`R`, `S`, `T` for stopped…), from /proc.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (in parentheses) may hold spaces; the state follows it.
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Sends a signal to a process.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Runs `cmd` feeding `stdin`, collecting its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// A finished command's standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A finished command's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON on standard output of a command that must have succeeded.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// A command's failure: not a success, exactly one line on standard error (with
/// `--json`, one object with `error` and `code`) and no panic; returned as
/// `twofold: <message>\n`.
pub fn one_line_failure(out: &Output) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.ends_with('\n'), "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    if err.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&err).expect("a JSON error");
        assert!(v["code"].is_string(), "{err:?}");
        return format!("twofold: {}\n", v["error"].as_str().expect("error text"));
    }
    assert!(err.starts_with("twofold: "), "{err:?}");
    err
}

/// The `backup_codes` of a command's JSON answer (`enroll`, `backup-codes regenerate`).
pub fn backup_codes_of(answer: &serde_json::Value) -> Vec<String> {
    answer["backup_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no backup_codes in {answer}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// Checks that the program behind `out` failed, saying `says` on standard error.
pub fn assert_failed_saying(out: &Output, says: &str) {
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(out).contains(says), "{out:?}");
}

/// The first line `out` gives (with its newline).
pub fn first_line(out: impl Read) -> String {
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    line
}

/// A TCP port on 127.0.0.1 that nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Uid of the `nobody` user, for tests of unprivileged callers.
pub const NOBODY: u32 = 65534;

/// Waits up to `limit` for `f` to give Some.
pub fn wait_for<T>(limit: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(Duration::from_millis(100), limit, f)
}

/// Asks `f` every `interval` until it gives Some, for up to `limit`.
fn poll_every<T>(
    interval: Duration,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Waits up to `limit` for `child` to exit; past it, kills and reaps it and gives None.
pub fn exit_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let status = poll_every(Duration::from_millis(20), limit, || {
        child.try_wait().unwrap()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

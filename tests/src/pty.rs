//! Programs on a pseudo-terminal, driven as a person would: expect output, type lines.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A program on a pseudo-terminal (its controlling terminal), as a person would run it:
/// `expect` what it prints, `send_line` what a person types.
pub struct Pty {
    master: fs::File,
    child: Child,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// How much of the output `expect` has consumed.
    seen: usize,
}

impl Pty {
    /// Starts `cmd` on a new pseudo-terminal, as `as_uid` (uid and gid) when given, with
    /// `TERM=xterm-256color` and colours allowed.
    pub fn spawn(mut cmd: Command, as_uid: Option<u32>) -> Pty {
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new descriptors into the out-pointers; the name,
        // termios and winsize arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        if let Some(uid) = as_uid {
            // The program opens /dev/tty (hidden password input): let it own the terminal.
            std::os::unix::fs::fchown(&slave, Some(uid), Some(uid)).unwrap();
            cmd.uid(uid).gid(uid);
        }
        cmd.env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .env_remove("COLORTERM")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the pseudo-terminal");
        // Our copies of the terminal's end must go, or reading never ends.
        drop(cmd);
        let master = fs::File::from(master);
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let mut master = master.try_clone().unwrap();
            let output = output.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 4096];
                // EIO once the program and its children closed the terminal.
                while let Ok(n) = master.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Pty {
            master,
            child,
            output,
            reader: Some(reader),
            seen: 0,
        }
    }

    /// Everything the program printed so far (and the terminal echoed).
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output after the previous `expect` contains `needle`; returns that
    /// output up to and including it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let out = self.output.lock().unwrap();
                let text = String::from_utf8_lossy(&out[self.seen..]).into_owned();
                if let Some(i) = text.find(needle) {
                    let upto = &text[..i + needle.len()];
                    self.seen += upto.len();
                    return upto.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {timeout:?}; the terminal shows:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `prompt` (as [`Pty::expect`]), then types `answer` and Enter.
    pub fn answer(&mut self, prompt: &str, answer: &str, timeout: Duration) {
        self.expect(prompt, timeout);
        self.send_line(answer);
    }

    /// Types `line` and Enter.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Waits for the program to end (killing it after `timeout`); its exit status and
    /// the whole transcript.
    pub fn wait(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let s = self.child.wait().unwrap();
                panic!("killed after {timeout:?} ({s}):\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.transcript())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

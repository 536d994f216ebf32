//! The test environment: a private bus with a twofoldd on it ([`TestEnv`]), its daemon's
//! life, the CLI run against it, and the daemon's state on a small file system.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bus::{name_has_owner_on, owner_pid_on, private_bus_config_with, start_private_bus};
use crate::host::{
    backup_codes_of, built, exit_or_kill, process_state, run_with_stdin, signal, totp,
    wait_for_fresh_step,
};

/// What `twofold enroll --begin/--confirm` gave.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub secret: String,
    pub uri: String,
    pub backup_codes: Vec<String>,
}

impl Enrolled {
    /// The current code, once at least `seconds` of its 30-second step are left (waiting
    /// into the next step when fewer are), so that it is still current when it is sent.
    pub fn code_lasting(&self, seconds: u64) -> String {
        crate::wait_for_fresh_step(seconds);
        crate::totp(&self.secret, 0)
    }
}

/// A private bus with a twofoldd on it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub address: String,
    bus: Child,
    daemon: Option<Child>,
    pub db: PathBuf,
    pub key: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The daemon's direct socket (peer-to-peer D-Bus), in `DIR/run`.
    pub socket: PathBuf,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::with_config("")
    }
}

impl TestEnv {
    /// A bus and a daemon with default policy.
    pub fn new() -> TestEnv {
        Self::default()
    }

    /// A bus and a daemon (as [`TestEnv::new`]) with `user` enrolled.
    pub fn with_enrolled(user: &str) -> (TestEnv, Enrolled) {
        let env = TestEnv::new();
        let enrolled = env.enroll(user);
        (env, enrolled)
    }

    /// A bus and a daemon whose `twofoldd.toml` holds `config`.
    pub fn with_config(config: &str) -> TestEnv {
        let mut env = Self::without_daemon(config, false);
        env.start_daemon();
        env
    }

    /// A bus where twofoldd is not running but can be started by D-Bus activation (its
    /// service file is in the bus's service directory), with the arguments
    /// [`TestEnv::spawn_daemon`] gives it.
    pub fn activatable() -> TestEnv {
        Self::without_daemon("", true)
    }

    /// The pid of whatever owns org.twofold.Twofold1 on this bus, if anything does.
    pub fn owner_pid(&self) -> Option<i32> {
        owner_pid_on(&self.address)
    }

    fn without_daemon(config: &str, activatable: bool) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("twofold-e2e")
            .tempdir()
            .unwrap();
        // Other uids (the non-root tests) must reach the bus socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let services = dir.path().join("services");
        let extra = if activatable {
            format!("<servicedir>{}</servicedir>", services.display())
        } else {
            String::new()
        };
        let (bus, address) =
            start_private_bus(dir.path(), &private_bus_config_with(dir.path(), &extra))
                .unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        let config_path = dir.path().join("twofoldd.toml");
        fs::write(&config_path, config).unwrap();
        let env = TestEnv {
            db: state.join("twofold.db"),
            key: state.join("secret.key"),
            config: config_path,
            log: dir.path().join("twofoldd.log"),
            socket: dir.path().join("run/twofoldd.socket"),
            dir,
            address,
            bus,
            daemon: None,
        };
        if activatable {
            fs::create_dir(&services).unwrap();
            let exec: Vec<String> = [built("twofoldd").display().to_string()]
                .into_iter()
                .chain(
                    env.daemon_args()
                        .iter()
                        .map(|a| a.to_string_lossy().into_owned()),
                )
                .collect();
            let file = format!(
                "[D-BUS Service]\nName=org.twofold.Twofold1\nExec={}\nUser=root\n",
                exec.join(" ")
            );
            fs::write(services.join("org.twofold.Twofold1.service"), file).unwrap();
        }
        env
    }

    /// Starts twofoldd and waits until it owns its name.
    pub fn start_daemon(&mut self) {
        let child = self.spawn_daemon();
        self.adopt_daemon(child);
    }

    /// Starts twofoldd with extra arguments and waits until it owns its name.
    pub fn start_daemon_with(&mut self, extra: &[&std::ffi::OsStr]) {
        let child = self.spawn_daemon_with(extra);
        self.adopt_daemon(child);
    }

    /// Takes `child` as this environment's daemon and waits until it owns its name.
    pub(crate) fn adopt_daemon(&mut self, child: Child) {
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.name_has_owner() {
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("twofoldd exited with {status}; log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "twofoldd did not start; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Spawns twofoldd on this bus without waiting (for tests of refused starts).
    pub fn spawn_daemon(&self) -> Child {
        self.spawn_daemon_with(&[])
    }

    /// Pid of the running daemon.
    pub fn daemon_pid(&self) -> i32 {
        self.daemon.as_ref().expect("daemon running").id() as i32
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            signal(child.id() as i32, libc::SIGCONT);
            signal(child.id() as i32, libc::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Sends `sig` to the daemon.
    pub fn signal_daemon(&self, sig: i32) {
        signal(self.daemon_pid(), sig);
    }

    /// Runs `during` with the daemon stopped (SIGSTOP, seen in /proc before `during`
    /// starts), then continues it. `None` when the daemon was running again when `during`
    /// returned: something else continued it (a SIGCONT not ours), so what `during` saw
    /// says nothing about a frozen daemon.
    pub fn with_daemon_frozen<T>(&self, during: impl FnOnce() -> T) -> Option<T> {
        let pid = self.daemon_pid();
        signal(pid, libc::SIGSTOP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_state(pid) != Some('T') {
            assert!(Instant::now() < deadline, "twofoldd did not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
        let seen = during();
        let still_stopped = process_state(pid) == Some('T');
        signal(pid, libc::SIGCONT);
        still_stopped.then_some(seen)
    }

    /// Everything the daemon logged.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 5 s) until the daemon has logged `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        for _ in 0..100 {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{needle:?} not logged:\n{}", self.log_text());
    }

    /// Whether org.twofold.Twofold1 has an owner on this bus.
    pub fn name_has_owner(&self) -> bool {
        name_has_owner_on(&self.address)
    }

    /// Runs the `twofold` CLI on this bus (as root, or as `as_uid`), with `stdin`.
    pub fn cli(&self, args: &[&str], as_uid: Option<u32>, stdin: &str) -> Output {
        let mut cmd = Command::new(built("twofold"));
        cmd.arg("--bus").arg(&self.address).args(args);
        cmd.env_remove("TWOFOLD_BUS_ADDRESS");
        if let Some(uid) = as_uid {
            cmd.uid(uid).gid(uid);
        }
        run_with_stdin(cmd, stdin)
    }

    /// Whether `user` is enrolled, as `twofold status --json` says (asked as root).
    pub fn is_enrolled(&self, user: &str) -> bool {
        let out = self.cli(&["status", "--user", user, "--json"], None, "");
        assert!(out.status.success(), "{out:?}");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        status["enrolled"].as_bool().unwrap()
    }

    /// Enrolls `user` through the CLI (`--begin`, then `--confirm -` with the code of the
    /// previous step so that the current step's code is still unused for a login).
    pub fn enroll(&self, user: &str) -> Enrolled {
        wait_for_fresh_step(8);
        let out = self.cli(&["enroll", "--begin", "--json", "--user", user], None, "");
        assert!(out.status.success(), "enroll --begin: {out:?}");
        let begin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let secret = begin["secret"].as_str().unwrap().to_string();
        let uri = begin["uri"].as_str().unwrap().to_string();
        let code = totp(&secret, -1);
        let out = self.cli(
            &["enroll", "--confirm", "-", "--json", "--user", user],
            None,
            &format!("{code}\n"),
        );
        assert!(out.status.success(), "enroll --confirm: {out:?}");
        let confirm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Enrolled {
            secret,
            uri,
            backup_codes: backup_codes_of(&confirm),
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

impl TestEnv {
    /// A bus and a daemon (config `config`) whose account-password check — PAM service
    /// `twofold-password`, in a private directory passed with twofoldd's hidden
    /// `--pam-confdir` — accepts exactly `password`, for every user. The check is
    /// pam_exec with `expose_authtok` and a script comparing its standard input.
    pub fn with_password(config: &str, password: &str) -> TestEnv {
        let mut env = TestEnv::with_config(config);
        env.stop_daemon();
        let dir = env.dir.path().join("pam-password");
        fs::create_dir(&dir).unwrap();
        let expected = dir.join("expected");
        fs::write(&expected, password).unwrap();
        let script = dir.join("check-password");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n# pam_exec writes the password and a NUL on standard input.\n\
                 pw=$(tr -d '\\000')\n[ \"$pw\" = \"$(cat '{}')\" ]\n",
                expected.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            dir.join("twofold-password"),
            format!(
                "auth required pam_exec.so expose_authtok quiet {}\n\
                 account required pam_permit.so\n",
                script.display()
            ),
        )
        .unwrap();
        let child = env.spawn_daemon_with(&["--pam-confdir".as_ref(), dir.as_os_str()]);
        env.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !env.name_has_owner() {
            if let Some(status) = env.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("twofoldd exited with {status}; log:\n{}", env.log_text());
            }
            assert!(Instant::now() < deadline, "twofoldd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        env
    }

    /// [`TestEnv::spawn_daemon`] with extra arguments.
    pub fn spawn_daemon_with(&self, extra: &[&std::ffi::OsStr]) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Command::new(built("twofoldd"))
            .args(self.daemon_args())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn twofoldd")
    }

    /// twofoldd's arguments for this environment: [`TestEnv::daemon_place_args`], its
    /// SQLite database, logging to standard error.
    pub fn daemon_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = self.daemon_place_args();
        args.extend(["--db".into(), self.db.clone().into(), "--log-stderr".into()]);
        args
    }

    /// The arguments that place twofoldd in this environment, whatever its storage and
    /// logging: the bus, key, config, and its own direct socket (never the host's
    /// /run/twofold, nor another test's).
    pub fn daemon_place_args(&self) -> Vec<std::ffi::OsString> {
        let address = self.address.split(',').next().unwrap_or_default();
        [
            "--bus".as_ref(),
            address.as_ref(),
            "--key".as_ref(),
            self.key.as_os_str(),
            "--config".as_ref(),
            self.config.as_os_str(),
            "--socket".as_ref(),
            self.socket.as_os_str(),
        ]
        .iter()
        .map(|a: &&std::ffi::OsStr| a.to_os_string())
        .collect()
    }

    /// The `twofold` command on this bus, for [`Pty::spawn`].
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(built("twofold"));
        cmd.arg("--bus").arg(&self.address).args(args);
        cmd.env_remove("TWOFOLD_BUS_ADDRESS");
        cmd
    }
}

impl TestEnv {
    /// Starts the daemon on this environment's files, which must refuse to start within
    /// 20 s; returns what it logged meanwhile.
    pub fn expect_refusal(&self, case: &str) -> String {
        let before = self.log_text().len();
        let mut child = self.spawn_daemon();
        let Some(status) = exit_or_kill(&mut child, Duration::from_secs(20)) else {
            panic!("{case}: twofoldd started anyway:\n{}", self.log_text());
        };
        assert!(!status.success(), "{case}: exit status {status}");
        self.log_text()[before..].to_string()
    }
}

/// Unmounts a tmpfs when dropped (lazily, should a daemon still hold it).
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

impl TestEnv {
    /// Moves the state directory onto a 1 MiB tmpfs (the daemon stopped meanwhile; it
    /// runs again on return): the directory, and the mount to drop when done.
    pub fn state_on_a_small_tmpfs(&mut self) -> (PathBuf, Mounted) {
        self.stop_daemon();
        let state = self.db.parent().unwrap().to_path_buf();
        let saved = self.dir.path().join("saved-state");
        fs::rename(&state, &saved).unwrap();
        fs::create_dir(&state).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&state)
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs failed (needs root)");
        let mounted = Mounted(state.clone());
        for entry in fs::read_dir(&saved).unwrap() {
            let entry = entry.unwrap();
            let to = state.join(entry.file_name());
            fs::copy(entry.path(), &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).unwrap();
        }
        self.start_daemon();
        (state, mounted)
    }
}

/// Fills the file system of `dir` to the last byte; returns the filler file.
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    for chunk in [65536usize, 4096, 512, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).and_then(|()| f.flush()).is_ok() {}
    }
    filler
}

//! Test harness for twofold's end-to-end tests: a private `dbus-daemon` with its own
//! config (carrying the shipped bus policy), a real `twofoldd` on it with a temporary
//! database and key, the real libpam loading the built `pam_twofold.so` through
//! `pamdriver`, the real `twofold` CLI, and codes from `oathtool`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub use twofold_contract as contract;

/// PAM result codes the tests look for (Linux-PAM values).
pub mod pam {
    pub const SUCCESS: i32 = 0;
    pub const PERM_DENIED: i32 = 6;
    pub const AUTH_ERR: i32 = 7;
    pub const AUTHINFO_UNAVAIL: i32 = 9;
    pub const USER_UNKNOWN: i32 = 10;
    pub const MAXTRIES: i32 = 11;
    pub const CONV_ERR: i32 = 19;
    pub const IGNORE: i32 = 25;
}

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

fn nix_geteuid() -> u32 {
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

/// One `pam_authenticate` as reported by pamdriver.
#[derive(Debug, Clone, Deserialize)]
pub struct PamOutcome {
    pub result: i32,
    pub strerror: String,
    pub messages: Vec<PamMessage>,
    pub elapsed_ms: f64,
    pub threads_before: usize,
    pub threads_after: usize,
}

/// A message the module sent through the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct PamMessage {
    pub style: String,
    pub text: String,
}

impl PamOutcome {
    /// All non-prompt message texts, joined.
    pub fn texts(&self) -> String {
        self.messages
            .iter()
            .filter(|m| !m.style.starts_with("prompt"))
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Number of prompts shown.
    pub fn prompts(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.style.starts_with("prompt"))
            .count()
    }
}

/// A login attempt to run through pamdriver.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub user: String,
    pub user_hex: Option<String>,
    pub responses: Vec<String>,
    /// Extra module arguments (after `bus=`).
    pub module_args: String,
    /// Replace the `bus=` argument (None = this environment's bus).
    pub bus_arg: Option<String>,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    pub env: Vec<(String, String)>,
    /// Run as this uid/gid instead of root.
    pub as_uid: Option<u32>,
}

impl Login {
    pub fn new(user: &str, code: &str) -> Login {
        Login {
            user: user.into(),
            responses: vec![code.into()],
            ..Default::default()
        }
    }

    pub fn args(mut self, args: &str) -> Login {
        self.module_args = args.into();
        self
    }
}

/// What `twofold enroll --begin/--confirm` gave.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub secret: String,
    pub uri: String,
    pub backup_codes: Vec<String>,
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
}

fn private_bus_config(dir: &Path) -> String {
    let policy = repo_root().join("packaging/dbus/org.twofold.Twofold1.conf");
    assert!(policy.exists(), "{} missing", policy.display());
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>twofold-test</type>
  <listen>unix:path={dir}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <deny own="*"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"#,
        dir = dir.display(),
        policy = policy.display()
    )
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

    /// A bus and a daemon whose `twofoldd.toml` holds `config`.
    pub fn with_config(config: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("twofold-e2e")
            .tempdir()
            .unwrap();
        // Other uids (the non-root tests) must reach the bus socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let conf = dir.path().join("bus.conf");
        fs::write(&conf, private_bus_config(dir.path())).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.path().join("dbus-daemon.log")).unwrap())
            .spawn()
            .expect("dbus-daemon must be installed");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed {address:?}"
        );
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        let config_path = dir.path().join("twofoldd.toml");
        fs::write(&config_path, config).unwrap();
        let mut env = TestEnv {
            db: state.join("twofold.db"),
            key: state.join("secret.key"),
            config: config_path,
            log: dir.path().join("twofoldd.log"),
            dir,
            address,
            bus,
            daemon: None,
        };
        env.start_daemon();
        env
    }

    /// Starts twofoldd and waits until it owns its name.
    pub fn start_daemon(&mut self) {
        let child = self.spawn_daemon();
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
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Command::new(built("twofoldd"))
            .arg("--bus")
            .arg(&self.address)
            .arg("--db")
            .arg(&self.db)
            .arg("--key")
            .arg(&self.key)
            .arg("--config")
            .arg(&self.config)
            .arg("--log-stderr")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn twofoldd")
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

    /// Everything the daemon logged.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether org.twofold.Twofold1 has an owner on this bus.
    pub fn name_has_owner(&self) -> bool {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.twofold.Twofold1",
            ])
            .output()
            .expect("dbus-send");
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
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

    /// Enrolls `user` through the CLI (`--begin`, then `--confirm` with the code of the
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
            &["enroll", "--confirm", &code, "--json", "--user", user],
            None,
            "",
        );
        assert!(out.status.success(), "enroll --confirm: {out:?}");
        let confirm: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let backup_codes = confirm["backup_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        Enrolled {
            secret,
            uri,
            backup_codes,
        }
    }

    /// Writes a PAM service file for `login` and runs pamdriver on it.
    pub fn pam(&self, login: &Login) -> PamOutcome {
        let confdir = self.pam_confdir(login);
        let mut cmd = Command::new(built("pamdriver"));
        cmd.arg("--confdir")
            .arg(&confdir)
            .args(["--service", "twofold-test"]);
        match &login.user_hex {
            Some(hex) => cmd.args(["--user-hex", hex]),
            None => cmd.args(["--user", &login.user]),
        };
        for r in &login.responses {
            cmd.args(["--response", r]);
        }
        if let Some(t) = &login.tty {
            cmd.args(["--tty", t]);
        }
        if let Some(h) = &login.rhost {
            cmd.args(["--rhost", h]);
        }
        cmd.env_clear().env("PATH", "/usr/bin:/bin");
        for (k, v) in &login.env {
            cmd.env(k, v);
        }
        if let Some(uid) = login.as_uid {
            cmd.uid(uid).gid(uid);
        }
        let out = cmd.output().expect("pamdriver");
        assert!(out.status.success(), "pamdriver crashed: {out:?}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("pamdriver output {out:?}: {e}"))
    }

    /// The private PAM config directory for `login` (world-readable for non-root runs).
    pub fn pam_confdir(&self, login: &Login) -> PathBuf {
        let confdir = tempfile::Builder::new()
            .prefix("pam.d")
            .tempdir_in(self.dir.path())
            .unwrap()
            .keep();
        fs::set_permissions(&confdir, fs::Permissions::from_mode(0o755)).unwrap();
        let bus = login
            .bus_arg
            .clone()
            .unwrap_or_else(|| format!("bus={}", self.address));
        let line = format!(
            "auth required {} {bus} {}\n",
            built("libpam_twofold.so").display(),
            login.module_args
        );
        fs::write(confdir.join("twofold-test"), line).unwrap();
        confdir
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
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

/// Uid of the `nobody` user, for tests of unprivileged callers.
pub const NOBODY: u32 = 65534;

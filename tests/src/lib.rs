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

pub mod pam_ffi;

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

/// Returns from the calling test unless it may run as root (see [`require_root`]).
#[macro_export]
macro_rules! root_only {
    () => {
        if !$crate::require_root(module_path!()) {
            return;
        }
    };
}

/// The uid of user `name`, if there is one.
pub fn uid_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: getpwnam reads a NUL-terminated name; the result is copied out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    // SAFETY: a non-null result points to a valid passwd struct.
    (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
}

/// D-Bus clients of the daemon for the end-to-end tests.
pub mod client {
    use super::totp;
    use crate::contract::{TwofoldError, TwofoldProxy};

    /// A single-threaded runtime for a test's D-Bus calls.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A connection to the bus at `address` and a proxy of the daemon on it.
    pub async fn connect(address: &str) -> (zbus::Connection, TwofoldProxy<'static>) {
        let conn = zbus::connection::Builder::address(address)
            .unwrap()
            .build()
            .await
            .expect("connect to the test bus");
        let proxy = TwofoldProxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        (conn, proxy)
    }

    /// Enrolls `user` over D-Bus (as the caller, usually root): (base32 secret, backup
    /// codes).
    pub async fn enroll_dbus(proxy: &TwofoldProxy<'_>, user: &str) -> (String, Vec<String>) {
        let e = proxy
            .enroll_begin(user, "hostile", "")
            .await
            .expect("EnrollBegin");
        for _ in 0..3 {
            let code = totp(&e.secret, -1);
            match proxy.enroll_confirm(user, &code).await {
                Ok(codes) => return (e.secret, codes),
                Err(TwofoldError::InvalidCode(_)) => continue, // a step boundary passed
                Err(err) => panic!("EnrollConfirm {user}: {err:?}"),
            }
        }
        panic!("EnrollConfirm {user}: no code accepted");
    }
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

/// One `pam_authenticate` as reported by pamdriver.
#[derive(Debug, Clone, Deserialize)]
pub struct PamOutcome {
    pub result: i32,
    pub strerror: String,
    pub messages: Vec<PamMessage>,
    pub elapsed_ms: f64,
    pub threads_before: usize,
    pub threads_after: usize,
    /// Descriptors and signal state of the driver process around the attempt.
    pub state_before: pam_ffi::ProcessState,
    pub state_after: pam_ffi::ProcessState,
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
    /// PAM lines after the module's (e.g. `auth required pam_permit.so`, which grants
    /// the login when the module steps aside).
    pub stack_after: String,
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
    /// The daemon's direct socket (peer-to-peer D-Bus), in `DIR/run`.
    pub socket: PathBuf,
}

/// A dbus-daemon configuration for a private bus at `DIR/bus` carrying the shipped bus
/// policy (also used by the bench).
pub fn private_bus_config(dir: &Path) -> String {
    private_bus_config_with(dir, "")
}

/// [`private_bus_config`] with `extra` elements (a `<servicedir>`, for activation).
pub fn private_bus_config_with(dir: &Path, extra: &str) -> String {
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
  <!-- Stand-ins for system services the daemon talks to (polkit, logind mocks). -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow own="org.freedesktop.login1"/>
  </policy>
  <include>{policy}</include>
  {extra}
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

    fn ask_bus_about_our_name(&self, method: &str) -> String {
        ask_bus_about_our_name(&self.address, method)
    }

    fn without_daemon(config: &str, activatable: bool) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("twofold-e2e")
            .tempdir()
            .unwrap();
        // Other uids (the non-root tests) must reach the bus socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let conf = dir.path().join("bus.conf");
        let services = dir.path().join("services");
        let extra = if activatable {
            format!("<servicedir>{}</servicedir>", services.display())
        } else {
            String::new()
        };
        fs::write(&conf, private_bus_config_with(dir.path(), &extra)).unwrap();
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
    fn adopt_daemon(&mut self, child: Child) {
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

    /// Whether org.twofold.Twofold1 has an owner on this bus.
    pub fn name_has_owner(&self) -> bool {
        self.ask_bus_about_our_name("NameHasOwner")
            .contains("boolean true")
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
        let mut runs = self.pam_repeated(login, 1);
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.remove(0)
    }

    /// `repeat` logins one after the other in one pamdriver process (one libpam handle
    /// each, the module loaded by each).
    pub fn pam_repeated(&self, login: &Login, repeat: usize) -> Vec<PamOutcome> {
        let confdir = self.pam_confdir(login);
        let mut cmd = Command::new(built("pamdriver"));
        cmd.arg("--confdir")
            .arg(&confdir)
            .args(["--service", "twofold-test"])
            .args(["--repeat", &repeat.to_string()]);
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
        serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter()
            .collect::<Result<_, _>>()
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
            "auth required {} {bus} {}\n{}",
            built("libpam_twofold.so").display(),
            login.module_args,
            login.stack_after
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

/// A copy of the host's /etc/shadow in which each `(user, password)` has that password
/// (SHA-512 crypt from `openssl passwd -6`), mode 0600, in `dir`. Bind it over
/// /etc/shadow with [`pamdriver_with_mounts`]: the real pam_unix then checks real
/// passwords and the host's accounts stay untouched.
pub fn private_shadow(dir: &Path, passwords: &[(&str, &str)]) -> PathBuf {
    let mut shadow = fs::read_to_string("/etc/shadow").expect("read /etc/shadow");
    for (user, password) in passwords {
        let out = Command::new("openssl")
            .args(["passwd", "-6", "-salt", "twofoldtestsalt", password])
            .output()
            .expect("openssl must be installed (tests/run.sh installs it)");
        assert!(out.status.success(), "openssl passwd: {out:?}");
        let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let prefix = format!("{user}:");
        let mut found = false;
        shadow = shadow
            .lines()
            .map(|line| match line.strip_prefix(&prefix) {
                Some(rest) => {
                    found = true;
                    let after_hash = rest.split_once(':').map_or("", |(_, r)| r);
                    format!("{user}:{hash}:{after_hash}\n")
                }
                None => format!("{line}\n"),
            })
            .collect();
        assert!(found, "{user} is not in /etc/shadow");
    }
    let path = dir.join("shadow");
    fs::write(&path, shadow).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `program` with `args`, to run in a private mount namespace (`unshare`) in which each
/// `(source, target)` of `binds` is bind-mounted over `target` first: what it changes
/// there (say /etc/pam.d) is the test's copy, never the host's.
pub fn with_private_mounts(
    binds: &[(&Path, &Path)],
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 97; shift 2; done
shift; exec "$@""#,
        )
        .arg("sh");
    for (source, target) in binds {
        cmd.arg(source).arg(target);
    }
    cmd.arg("--").arg(program).args(args);
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    cmd
}

/// One `pam_authenticate` of `service` in `confdir` by pamdriver, with `binds` mounted
/// as in [`with_private_mounts`] (a [`private_shadow`] over /etc/shadow, for pam_unix),
/// answering the prompts with `responses` in order.
pub fn pamdriver_with_mounts(
    binds: &[(&Path, &Path)],
    confdir: &Path,
    service: &str,
    user: &str,
    responses: &[&str],
) -> PamOutcome {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--confdir".as_ref(),
        confdir.as_os_str(),
        "--service".as_ref(),
        service.as_ref(),
        "--user".as_ref(),
        user.as_ref(),
    ];
    for r in responses {
        args.push("--response".as_ref());
        args.push(r.as_ref());
    }
    let out = with_private_mounts(binds, &built("pamdriver"), &args)
        .output()
        .expect("unshare (util-linux)");
    assert!(
        out.status.success(),
        "pamdriver in a mount namespace: {out:?}"
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("pamdriver output {out:?}: {e}"))
}

/// Sends a signal to a process.
/// The state letter of process `pid` (`R`, `S`, `T` for stopped…), from /proc.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (in parentheses) may hold spaces; the state follows it.
    stat.rsplit_once(") ")?.1.chars().next()
}

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

impl TestEnv {
    /// Runs `f` with a proxy to this environment's twofoldd, as the test process (root).
    pub fn with_proxy<T>(
        &self,
        f: impl for<'p> FnOnce(
            &'p contract::TwofoldProxy<'static>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'p>>,
    ) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conn = zbus::connection::Builder::address(self.address.as_str())
                .unwrap()
                .build()
                .await
                .unwrap();
            let proxy = contract::TwofoldProxy::new(&conn).await.unwrap();
            f(&proxy).await
        })
    }

    /// Calls a method of twofoldd with `dbus-send` as `uid`; (success, output).
    pub fn dbus_send_as(&self, uid: u32, method: &str, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("dbus-send");
        cmd.arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.twofold.Twofold1",
                "/org/twofold/Twofold1",
            ])
            .arg(format!("org.twofold.Twofold1.{method}"))
            .args(args)
            .uid(uid)
            .gid(uid);
        let out = cmd.output().expect("dbus-send");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A python-dbusmock polkitd on a test bus; killed on drop.
pub struct PolkitMock {
    child: Child,
    address: String,
}

/// python-dbusmock's `template` as a system service on `env`'s bus.
fn spawn_dbusmock(env: &TestEnv, template: &str) -> Child {
    Command::new("/usr/bin/python3")
        .args(["-m", "dbusmock", "--system", "--template", template])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &env.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3-dbusmock must be installed (tests/run.sh installs it)")
}

impl PolkitMock {
    /// Starts the mock on `env`'s bus; it allows nothing until [`PolkitMock::allow`].
    pub fn start(env: &TestEnv) -> PolkitMock {
        let child = spawn_dbusmock(env, "polkitd");
        let mock = PolkitMock {
            child,
            address: env.address.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mock.owned() {
            assert!(Instant::now() < deadline, "the polkit mock did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        mock
    }

    fn owned(&self) -> bool {
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.PolicyKit1",
            ])
            .output()
            .expect("dbus-send");
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// Makes the mock answer yes for `actions` (and no for every other).
    pub fn allow(&self, actions: &[&str]) {
        let list = format!("array:string:{}", actions.join(","));
        let out = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.PolicyKit1",
                "/org/freedesktop/PolicyKit1/Authority",
                "org.freedesktop.DBus.Mock.SetAllowed",
                &list,
            ])
            .output()
            .expect("dbus-send");
        assert!(out.status.success(), "SetAllowed: {out:?}");
    }
}

impl Drop for PolkitMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- Self-service (issue 3): account-password check, pseudo-terminals, QR images. ----

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

    /// twofoldd's arguments for this environment.
    pub fn daemon_args(&self) -> Vec<std::ffi::OsString> {
        let address = self.address.split(',').next().unwrap_or_default();
        [
            "--bus".as_ref(),
            address.as_ref(),
            "--db".as_ref(),
            self.db.as_os_str(),
            "--key".as_ref(),
            self.key.as_os_str(),
            "--config".as_ref(),
            self.config.as_os_str(),
            "--socket".as_ref(),
            self.socket.as_os_str(),
            "--log-stderr".as_ref(),
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

/// A writer of tiny MaxMind DB (GeoIP) files for the session tests.
pub mod mmdb;

// ---- Fleet mode (issue 8): a real PostgreSQL server, daemons sharing it. ----

/// A PostgreSQL server of the distribution's packages on 127.0.0.1 and a free port,
/// started with `initdb`/`pg_ctl` on a temporary data directory (as the `postgres` user
/// when run as root: the server refuses root), with TLS (a throwaway CA and a server
/// certificate for 127.0.0.1 made by `openssl`) and password authentication for TCP.
/// Stopped on drop.
pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Owner of the test databases (`twofold`), whose password is in `password_file`.
    pub user: String,
    /// 0600, owned by the test's uid: what `storage_password_file` names.
    pub password_file: PathBuf,
    /// The CA that signed the server's certificate (for `storage_sslrootcert`).
    pub ca_cert: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PgServer {
    /// Starts a server; `None` (with a SKIPPED message) when PostgreSQL is not installed,
    /// outside CI. Under CI=true a missing server fails the test.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = postgres_bin() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: PostgreSQL is not installed (tests/run.sh installs it)");
            }
            eprintln!("SKIPPED {test}: PostgreSQL is not installed (tests/run.sh installs it)");
            return None;
        };
        let as_postgres = nix_geteuid() == 0;
        let dir = tempfile::Builder::new()
            .prefix("twofold-pg")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        let server = dir.path().join("server");
        for d in [&data, &sockets, &server] {
            fs::create_dir(d).unwrap();
        }
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        // TLS: a CA and a certificate for 127.0.0.1 signed by it.
        let ca_key = dir.path().join("ca.key");
        let ca_cert = dir.path().join("ca.pem");
        let key = server.join("server.key");
        let csr = dir.path().join("server.csr");
        let cert = server.join("server.crt");
        let ext = dir.path().join("san.ext");
        fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run_checked(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "2", "-subj", "/CN=twofold test CA"])
                .args(ec)
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert),
        );
        run_checked(
            Command::new("openssl")
                .args(["req", "-subj", "/CN=127.0.0.1"])
                .args(ec)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        );
        run_checked(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-CAcreateserial")
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        if as_postgres {
            run_checked(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .arg(&sockets)
                    .arg(&server),
            );
        }
        let password = format!("pw{:016x}", {
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        });
        let password_file = dir.path().join("pg.pass");
        fs::write(&password_file, format!("{password}\n")).unwrap();
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
        let port = free_local_port();
        let pg = PgServer {
            port,
            user: "twofold".into(),
            password_file,
            ca_cert,
            bin,
            data,
            sockets,
            log: dir.path().join("server").join("postgres.log"),
            as_postgres,
            dir,
        };
        run_checked(pg.command("initdb").args([
            "-D",
            pg.data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        pg.start_server();
        pg.psql(
            "postgres",
            &format!("CREATE ROLE twofold LOGIN PASSWORD '{password}'"),
        );
        Some(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    /// (Re)starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={} -c max_connections=200",
            self.port,
            self.sockets.display(),
            self.dir.path().join("server/server.crt").display(),
            self.dir.path().join("server/server.key").display(),
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {out:?}\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected at once).
    pub fn stop_server(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL as the superuser (over the local socket); returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        run_checked(
            self.command("psql")
                .arg("-h")
                .arg(&self.sockets)
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
                .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql]),
        )
    }

    /// A new database owned by the test user.
    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {}", self.user),
        );
    }

    /// The URL of database `db` (no password: that is in `password_file`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{}@127.0.0.1:{}/{db}", self.user, self.port)
    }

    /// twofoldd.toml lines for a fleet host named `host` on database `db`, with TLS
    /// `sslmode` (`verify-full` and `verify-ca` trust the test CA).
    pub fn storage_config(&self, db: &str, host: &str, sslmode: &str) -> String {
        format!(
            "hostname = \"{host}\"\nstorage = \"{}\"\nstorage_password_file = \"{}\"\n\
             storage_sslmode = \"{sslmode}\"\nstorage_sslrootcert = \"{}\"\n",
            self.url(db),
            self.password_file.display(),
            self.ca_cert.display()
        )
    }
}

fn free_local_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl TestEnv {
    /// A fleet host: a bus and a daemon whose `config` names the shared PostgreSQL
    /// storage (see [`PgServer::storage_config`]), run without `--db` (which would mean
    /// SQLite), with the fleet's key file `key`.
    pub fn fleet_host(config: &str, key: &Path) -> TestEnv {
        let mut env = TestEnv::with_config("");
        env.stop_daemon();
        fs::write(&env.config, config).unwrap();
        env.key = key.to_path_buf();
        env.start_fleet_daemon();
        env
    }

    /// Starts twofoldd without `--db` and waits until it owns its name.
    pub fn start_fleet_daemon(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(built("twofoldd"))
            .arg("--bus")
            .arg(&self.address)
            .arg("--key")
            .arg(&self.key)
            .arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--log-stderr")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn twofoldd");
        self.adopt_daemon(child);
    }
}

/// Waits up to `limit` for `f` to give Some.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// python-dbusmock's logind template on `env`'s bus (the daemon asks logind on the bus
/// it serves on, as logind is on the system bus) with session `id` of `uid`/`user`.
/// Returns the mock and a `dbus-send` to its manager.
pub fn mock_logind_session<'a>(
    env: &'a TestEnv,
    id: &str,
    uid: u32,
    user: &str,
) -> (Child, impl Fn(&[&str]) -> Output + 'a) {
    let mock = spawn_dbusmock(env, "logind");
    let dbus_send = move |args: &[&str]| {
        Command::new("dbus-send")
            .arg(format!("--bus={}", env.address))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.login1",
                "/org/freedesktop/login1",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let up = wait_for(Duration::from_secs(20), || {
        dbus_send(&["org.freedesktop.DBus.Mock.GetCalls"])
            .status
            .success()
            .then_some(())
    });
    assert!(up.is_some(), "dbusmock logind did not start");
    let add = dbus_send(&[
        "org.freedesktop.DBus.Mock.AddSession",
        &format!("string:{id}"),
        "string:seat0",
        &format!("uint32:{uid}"),
        &format!("string:{user}"),
        "boolean:true",
    ]);
    assert!(add.status.success(), "{add:?}");
    (mock, dbus_send)
}

impl TestEnv {
    /// Starts the daemon on this environment's files, which must refuse to start within
    /// 20 s; returns what it logged meanwhile.
    pub fn expect_refusal(&self, case: &str) -> String {
        let before = self.log_text().len();
        let mut child = self.spawn_daemon();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{case}: twofoldd started anyway:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
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

/// The bus daemon at `address`'s reply (as `dbus-send --print-reply` prints it) to
/// `method` of org.freedesktop.DBus about org.twofold.Twofold1.
pub fn ask_bus_about_our_name(address: &str, method: &str) -> String {
    let out = Command::new("dbus-send")
        .arg(format!("--bus={address}"))
        .args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
        ])
        .arg(format!("org.freedesktop.DBus.{method}"))
        .arg("string:org.twofold.Twofold1")
        .output()
        .expect("dbus-send");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pid of whatever owns org.twofold.Twofold1 on the bus at `address`, if anything.
pub fn owner_pid_on(address: &str) -> Option<i32> {
    let text = ask_bus_about_our_name(address, "GetConnectionUnixProcessID");
    text.split_whitespace().last()?.parse().ok()
}

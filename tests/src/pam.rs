//! PAM through pamdriver: the result codes tests look for, a login attempt ([`Login`]),
//! what came of it ([`PamOutcome`]), and logins in a private mount namespace.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::Deserialize;

use crate::env::TestEnv;
use crate::host::{built, first_line};
use crate::process_state::ProcessState;

// PAM result codes the tests look for (Linux-PAM values).
pub const SUCCESS: i32 = 0;
pub const PERM_DENIED: i32 = 6;
pub const AUTH_ERR: i32 = 7;
pub const AUTHINFO_UNAVAIL: i32 = 9;
pub const USER_UNKNOWN: i32 = 10;
pub const MAXTRIES: i32 = 11;
pub const CONV_ERR: i32 = 19;
pub const IGNORE: i32 = 25;

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
    pub state_before: ProcessState,
    pub state_after: ProcessState,
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

impl TestEnv {
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

    /// A new private PAM config directory in this environment (world-readable for
    /// non-root runs) with a file for each `(service, stack)`.
    pub fn new_pam_dir(&self, services: &[(&str, &str)]) -> PathBuf {
        let confdir = tempfile::Builder::new()
            .prefix("pam.d")
            .tempdir_in(self.dir.path())
            .unwrap()
            .keep();
        fs::set_permissions(&confdir, fs::Permissions::from_mode(0o755)).unwrap();
        for (service, stack) in services {
            fs::write(confdir.join(service), stack).unwrap();
        }
        confdir
    }

    /// sessiondriver opening a session of `user` (then `args`) with a `twofold-session`
    /// service of `stack` in a new PAM directory; its standard input and output piped
    /// (it is the session leader until its standard input closes).
    pub fn session_driver(&self, stack: &str, user: &str, args: &[&str]) -> Command {
        let confdir = self.new_pam_dir(&[("twofold-session", stack)]);
        let mut cmd = Command::new(built("sessiondriver"));
        cmd.arg("--confdir")
            .arg(&confdir)
            .args(["--service", "twofold-session", "--user", user])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        cmd
    }

    /// The private PAM config directory for `login`.
    pub fn pam_confdir(&self, login: &Login) -> PathBuf {
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
        self.new_pam_dir(&[("twofold-test", &line)])
    }
}

/// Starts `driver` (a [`TestEnv::session_driver`]) and checks that it opened the session.
pub fn opened_session(driver: &mut Command) -> Child {
    let mut leader = driver.spawn().expect("sessiondriver");
    let line = first_line(leader.stdout.as_mut().unwrap());
    assert!(line.starts_with("open 0 "), "sessiondriver said {line:?}");
    leader
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

//! `twofold doctor`: one line per check (ok, warn or fail), or JSON; the exit status says
//! whether every check was ok.

pub mod clock;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};
use twofold_contract::{DeviceInfo, TwofoldError, UserStatus, CHECK_CONFIG_TRUSTED_NETWORKS};

use crate::bus::Daemon;
use crate::commands::backup_codes::low_warning;
use crate::commands::cx::Out;
use crate::context::Context;
use crate::error::Failure;
use crate::options::DoctorOptions;
use crate::output::Verdict;
use crate::pam_config::{self as pam, PAM_DIR};
use crate::prompt::is_root;
use crate::text::{one_line, suggest};
use crate::time::{human_duration, human_time, now};

const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
const SSHD_BINARIES: [&str; 3] = ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"];
/// Longest wait for `sshd -T`.
const SSHD_T_TIMEOUT: Duration = Duration::from_secs(5);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier: `daemon`, `server-clock`, `config`, `trusted-networks`,
    /// `pam-sshd`, `pam-sudo`, `sshd`, `account`, `phone-clock`.
    pub check: &'static str,
    pub status: Level,
    pub message: String,
    /// Facts behind the message (version, skew, files...).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Check {
    fn new(check: &'static str, status: Level, message: impl Into<String>) -> Check {
        Check {
            check,
            status,
            message: one_line(&message.into()),
            details: Map::new(),
        }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Check {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    fn label(&self) -> &'static str {
        match self.check {
            "server-clock" => "server clock",
            "pam-sshd" => "PAM sshd",
            "pam-sudo" => "PAM sudo",
            "phone-clock" => "phone clock",
            "trusted-networks" => "trusted nets",
            other => other,
        }
    }
}

/// `doctor --json`.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Every check is ok.
    pub ok: bool,
    pub checks: &'a [Check],
}

/// The report for people: one line per check, then a summary line.
pub fn human(checks: &[Check]) -> String {
    let mut t = String::new();
    for c in checks {
        t.push_str(&format!(
            "{:<5} {:<13} {}\n",
            c.status.word(),
            c.label(),
            c.message
        ));
    }
    let bad = checks.iter().filter(|c| c.status != Level::Ok).count();
    match bad {
        0 => t.push_str("\nEverything looks right.\n"),
        1 => t.push_str("\n1 thing needs attention (see the warn or fail line above).\n"),
        n => t.push_str(&format!(
            "\n{n} things need attention (see the warn and fail lines above).\n"
        )),
    }
    t
}

/// Runs `twofold doctor`: the worst outcome of its checks.
pub async fn run(
    ctx: Context<'_>,
    opts: &DoctorOptions,
    out: &mut Out<'_>,
) -> Result<Verdict, Failure> {
    let mut checks = Vec::new();
    let daemon = match Daemon::connect(ctx).await {
        Ok(d) => {
            checks.push(daemon_check(&d).await);
            Some(d)
        }
        Err(f) => {
            checks.push(Check::new("daemon", Level::Fail, f.message()));
            None
        }
    };
    checks.push(server_clock_check(opts).await);
    checks.extend(config_checks(opts));
    let pam_dir = opts
        .pam_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(PAM_DIR));
    let (sshd_pam, sshd_uses_twofold) = pam_check(&pam_dir, "sshd");
    checks.push(sshd_pam);
    checks.push(pam_check(&pam_dir, "sudo").0);
    checks.push(sshd_check(opts, sshd_uses_twofold));
    let demanding = demanding_services(&checks);
    match &daemon {
        Some(d) => checks.extend(user_checks(d, &demanding).await),
        None => {
            for id in ["account", "phone-clock"] {
                checks.push(Check::new(
                    id,
                    Level::Warn,
                    "not checked: the daemon did not answer",
                ));
            }
        }
    }
    let ok = checks.iter().all(|c| c.status == Level::Ok);
    let report = Report {
        ok,
        checks: &checks,
    };
    out.answer(&report, || human(&checks))?;
    Ok(verdict(&checks))
}

/// Any failed check fails the whole; else any warning warns.
fn verdict(checks: &[Check]) -> Verdict {
    if checks.iter().any(|c| c.status == Level::Fail) {
        Verdict::Failed
    } else if checks.iter().any(|c| c.status == Level::Warn) {
        Verdict::Warned
    } else {
        Verdict::Done
    }
}

async fn daemon_check(daemon: &Daemon<'_>) -> Check {
    let bus = daemon.context().bus.to_string();
    let version = daemon
        .call(async { daemon.proxy().version().await.map_err(TwofoldError::ZBus) })
        .await;
    match version {
        Ok(Ok(v)) => Check::new(
            "daemon",
            Level::Ok,
            format!("twofoldd {} answers on {bus}", one_line(&v)),
        )
        .with("version", one_line(&v)),
        Ok(Err(e)) => Check::new(
            "daemon",
            Level::Fail,
            daemon.context().failure(&e).message(),
        ),
        Err(f) => Check::new("daemon", Level::Fail, f.message()),
    }
}

async fn server_clock_check(opts: &DoctorOptions) -> Check {
    let state = match opts.assume_ntp_synced {
        Some(true) => clock::Ntp::Synced {
            source: "--assume-ntp-synced",
        },
        Some(false) => clock::Ntp::Unsynced {
            source: "--assume-ntp-synced",
            ntp_enabled: None,
        },
        None => clock::server_ntp().await,
    };
    match state {
        clock::Ntp::Synced { source } => Check::new(
            "server-clock",
            Level::Ok,
            format!("synchronized with network time (according to {source})"),
        )
        .with("synchronized", true)
        .with("source", source),
        clock::Ntp::Unsynced {
            source,
            ntp_enabled,
        } => {
            let fix = match ntp_enabled {
                Some(false) => "network time is turned off: `timedatectl set-ntp true`",
                _ => "check the time service (`timedatectl timesync-status`, chronyc or ntpq)",
            };
            Check::new(
                "server-clock",
                Level::Fail,
                format!(
                    "not synchronized with network time (according to {source}), so good \
                     codes may be refused; {fix}"
                ),
            )
            .with("synchronized", false)
            .with("source", source)
        }
        clock::Ntp::Unknown { reason } => Check::new(
            "server-clock",
            Level::Warn,
            format!("could not tell whether the clock is synchronized ({reason})"),
        )
        .with("synchronized", Value::Null),
    }
}

/// The check of `/etc/pam.d/<service>`, and whether it runs pam_twofold.so.
fn pam_check(dir: &Path, service: &'static str) -> (Check, bool) {
    let id = if service == "sshd" {
        "pam-sshd"
    } else {
        "pam-sudo"
    };
    let file = dir.join(service);
    let shown = file.display().to_string();
    let check = match pam::check_service(dir, service) {
        pam::Finding::Missing => {
            return (
                Check::new(
                    id,
                    Level::Ok,
                    format!("no {shown}: {service} is not installed, nothing to check"),
                )
                .with("file", shown)
                .with("uses_twofold", false),
                false,
            )
        }
        pam::Finding::Unreadable(e) => {
            return (
                Check::new(
                    id,
                    Level::Warn,
                    format!("cannot read the PAM configuration ({e}); run as root to check it"),
                )
                .with("file", shown),
                false,
            )
        }
        pam::Finding::NotUsed => {
            return (
                Check::new(
                    id,
                    Level::Warn,
                    format!(
                        "{service} does not ask for a code: add `auth required \
                         pam_twofold.so` to {shown}, after the password step"
                    ),
                )
                .with("file", shown)
                .with("uses_twofold", false),
                false,
            )
        }
        pam::Finding::Used(found) => found,
    };
    let via = if check.file == file {
        String::new()
    } else {
        format!(" (through {})", check.file.display())
    };
    let result = match check.weak_control() {
        Some("optional") => Check::new(
            id,
            Level::Warn,
            format!(
                "{service} runs pam_twofold.so as `optional`{via}, so a wrong code does \
                 not stop a login: use `required`"
            ),
        ),
        Some(control) => Check::new(
            id,
            Level::Warn,
            format!(
                "{service} runs pam_twofold.so as `{control}`{via}, so a code alone may \
                 let people in without the rest of the stack: use `required`"
            ),
        ),
        None => {
            let nullok = if check.nullok() {
                "; with nullok, users who have not enrolled get in without a code"
            } else {
                ""
            };
            Check::new(
                id,
                Level::Ok,
                format!("{service} asks for a code{via}{nullok}"),
            )
        }
    };
    (
        result
            .with("file", check.file.display().to_string())
            .with("uses_twofold", true)
            .with("control", check.control.clone())
            .with("nullok", check.nullok()),
        true,
    )
}

/// `sshd -T`'s output, when root and sshd is installed and agrees to print it.
fn sshd_effective() -> Option<String> {
    let binary = SSHD_BINARIES.iter().find(|b| Path::new(b).exists())?;
    let mut child = Command::new(binary)
        .arg("-T")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + SSHD_T_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut text).ok()?;
    Some(text)
}

/// The daemon's configuration file in force by default.
const DAEMON_CONFIG: &str = "/etc/twofold/twofoldd.toml";

/// twofoldd beside this program (a build tree), else where the packages put it.
fn twofoldd_binary() -> Option<PathBuf> {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("twofoldd")));
    sibling
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/twofoldd")])
        .find(|p| p.is_file())
}

/// The configuration check, and the trusted networks that twofoldd found in it.
fn config_checks(opts: &DoctorOptions) -> [Check; 2] {
    let (config, trusted) = config_check(opts);
    let check = match trusted.as_deref() {
        Some("off") => Check::new("trusted-networks", Level::Ok, "off"),
        Some(networks) => Check::new(
            "trusted-networks",
            Level::Ok,
            format!("{networks} (logins from there are not asked for a code)"),
        ),
        None => Check::new(
            "trusted-networks",
            Level::Warn,
            "not known: twofoldd did not check its configuration",
        ),
    };
    [config, check.with("networks", trusted)]
}

/// The same check as `twofoldd --check-config`, by twofoldd itself: one parser. With it,
/// the trusted networks (`off` when none) when known.
fn config_check(opts: &DoctorOptions) -> (Check, Option<String>) {
    let path = opts
        .daemon_config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DAEMON_CONFIG));
    let file = path.display().to_string();
    if !path.exists() {
        let check = Check::new(
            "config",
            Level::Ok,
            format!("{file} absent: built-in defaults"),
        );
        return (check.with("file", file), Some("off".into()));
    }
    let Some(twofoldd) = twofoldd_binary() else {
        let check = Check::new(
            "config",
            Level::Warn,
            "not checked: twofoldd is not installed",
        );
        return (check.with("file", file), None);
    };
    let out = Command::new(&twofoldd)
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let check = Check::new("config", Level::Warn, format!("not checked: {e}"));
            return (check.with("file", file), None);
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim_start_matches("twofoldd: "))
        .collect();
    let (level, message) = if !out.status.success() {
        (Level::Fail, said.join("; "))
    } else if !said.is_empty() {
        (Level::Warn, said.join("; "))
    } else {
        (Level::Ok, format!("{file} is valid"))
    };
    let trusted = out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(CHECK_CONFIG_TRUSTED_NETWORKS))
            .map(one_line)
    });
    (
        Check::new("config", level, message).with("file", file),
        trusted.flatten(),
    )
}

fn sshd_check(opts: &DoctorOptions, twofold_in_pam: bool) -> Check {
    let (settings, source) = match &opts.sshd_config {
        Some(path) => match sshd::parse_config(path) {
            Ok(s) => (s, path.display().to_string()),
            Err(e) => {
                return Check::new(
                    "sshd",
                    Level::Warn,
                    format!("cannot read {}: {e}", path.display()),
                )
            }
        },
        None => {
            let effective = if is_root() { sshd_effective() } else { None };
            match effective {
                Some(text) => (sshd::parse_effective(&text), "sshd -T".to_owned()),
                None => match sshd::parse_config(Path::new(SSHD_CONFIG)) {
                    Ok(s) => (s, SSHD_CONFIG.to_owned()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Check::new(
                            "sshd",
                            Level::Ok,
                            format!("no {SSHD_CONFIG}: sshd is not installed, nothing to check"),
                        )
                    }
                    Err(e) => {
                        return Check::new(
                            "sshd",
                            Level::Warn,
                            format!("cannot read {SSHD_CONFIG}: {e}"),
                        )
                    }
                },
            }
        }
    };
    let (level, message) = match sshd::judge(&settings, twofold_in_pam) {
        sshd::Verdict::Ok(m) => (Level::Ok, m),
        sshd::Verdict::Warn(m) => (Level::Warn, m),
        sshd::Verdict::Fail(m) => (Level::Fail, m),
    };
    Check::new("sshd", level, format!("{message} (from {source})"))
        .with("source", source)
        .with("use_pam", settings.use_pam())
        .with("kbd_interactive", settings.kbd_interactive())
        .with(
            "authentication_methods",
            settings.authentication_methods().to_owned(),
        )
}

/// The services whose PAM stack asks every user for a code (pam_twofold.so without
/// nullok): a user who has not enrolled cannot log in there.
fn demanding_services(checks: &[Check]) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|c| c.details.get("uses_twofold") == Some(&Value::Bool(true)))
        .filter(|c| c.details.get("nullok") == Some(&Value::Bool(false)))
        .map(|c| match c.check {
            "pam-sshd" => "sshd",
            _ => "sudo",
        })
        .collect()
}

async fn user_checks(daemon: &Daemon<'_>, demanding: &[&str]) -> Vec<Check> {
    let ctx = daemon.context();
    match daemon.call(daemon.proxy().status(daemon.user_arg())).await {
        Ok(Ok(s)) => {
            // Without the list (an older daemon), the user's clock is judged as one.
            let devices = match s.enrolled {
                true => daemon
                    .call(daemon.proxy().list_devices(daemon.user_arg()))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                false => Vec::new(),
            };
            vec![
                account_check(&s, ctx.user, now(), demanding),
                phone_clock_check(&s, &devices),
            ]
        }
        Ok(Err(e)) => {
            let m = ctx.failure(&e).message().to_owned();
            vec![
                Check::new("account", Level::Fail, m),
                Check::new(
                    "phone-clock",
                    Level::Warn,
                    "not checked: the daemon did not give the account's state",
                ),
            ]
        }
        Err(f) => vec![
            Check::new("account", Level::Fail, f.message()),
            Check::new(
                "phone-clock",
                Level::Warn,
                "not checked: the daemon did not answer",
            ),
        ],
    }
}

/// Enrollment, lockout and backup codes of the user; `demanding`: the services that ask
/// every user for a code.
pub fn account_check(s: &UserStatus, user: Option<&str>, now: i64, demanding: &[&str]) -> Check {
    let who = match user {
        Some(u) => format!("user {u}"),
        None => "your account".to_owned(),
    };
    let check = if !s.enrolled && !demanding.is_empty() {
        Check::new(
            "account",
            Level::Warn,
            format!(
                "two-factor authentication is not set up for {who}, but {} asks every user \
                 for a code (no nullok): {who} cannot log in there until `{}` (see \
                 \"Locked out?\" in the README)",
                demanding.join(" and "),
                suggest("enroll", user)
            ),
        )
    } else if !s.enrolled {
        Check::new(
            "account",
            Level::Ok,
            format!(
                "two-factor authentication is not set up for {who} (`{}`)",
                suggest("enroll", user)
            ),
        )
    } else if s.locked_until > now {
        Check::new(
            "account",
            Level::Warn,
            format!(
                "{who} is locked until {} (in {}) after too many wrong codes",
                human_time(s.locked_until),
                human_duration(s.locked_until - now),
            ),
        )
    } else if let Some(w) = low_warning(s.backup_codes_left, user) {
        Check::new("account", Level::Warn, w)
    } else {
        Check::new(
            "account",
            Level::Ok,
            format!(
                "two-factor authentication is on for {who}, {} backup codes left",
                s.backup_codes_left
            ),
        )
    };
    check
        .with("user", s.user.clone())
        .with("enrolled", s.enrolled)
        .with("backup_codes_left", s.backup_codes_left)
        .with("locked", s.locked_until > now)
}

/// The devices' clocks, each judged from the step offsets of its recent logins (one
/// device: the user's, older entries included); a counter-based token has none.
pub fn phone_clock_check(s: &UserStatus, devices: &[DeviceInfo]) -> Check {
    let check = if !s.enrolled {
        Check::new("phone-clock", Level::Ok, "not enrolled: nothing to check")
    } else if let [device] = devices {
        let (level, message) = clock_verdict(&s.recent_step_offsets, device.period);
        Check::new("phone-clock", level, message)
    } else if devices.is_empty() {
        let (level, message) = clock_verdict(&s.recent_step_offsets, 30);
        Check::new("phone-clock", level, message)
    } else {
        let verdicts: Vec<(Level, String)> = devices
            .iter()
            .map(|d| {
                let (level, message) = clock_verdict(&d.recent_step_offsets, d.period);
                (level, format!("device {}: {message}", one_line(&d.name)))
            })
            .collect();
        let level = if verdicts.iter().any(|(l, _)| *l == Level::Warn) {
            Level::Warn
        } else {
            Level::Ok
        };
        let messages: Vec<String> = verdicts.into_iter().map(|(_, m)| m).collect();
        Check::new("phone-clock", level, messages.join("; "))
    };
    let skew = clock::device_skew(&s.recent_step_offsets);
    let per_device: Vec<Value> = devices
        .iter()
        .map(|d| {
            let skew = clock::device_skew(&d.recent_step_offsets).filter(|_| d.period > 0);
            json!({
                "name": d.name,
                "period": d.period,
                "skew_steps": skew,
                "skew_seconds": skew.map(|v| i64::from(v) * i64::from(d.period)),
                "samples": d.recent_step_offsets,
            })
        })
        .collect();
    check
        .with("skew_steps", skew.map_or(Value::Null, Value::from))
        .with(
            "skew_seconds",
            skew.map_or(Value::Null, |v| Value::from(i64::from(v) * 30)),
        )
        .with("samples", json!(s.recent_step_offsets))
        .with("devices", Value::Array(per_device))
}

/// What the step `offsets` (newest first) of a device with `period`-second steps (0: a
/// counter) say about its clock.
fn clock_verdict(offsets: &[i32], period: u32) -> (Level, String) {
    if period == 0 {
        return (
            Level::Ok,
            "a counter-based token: no clock to check".to_owned(),
        );
    }
    let samples = offsets.len().min(5);
    match clock::device_skew(offsets) {
        None => (
            Level::Ok,
            "no login with a code from the app yet: nothing to judge your phone's clock by"
                .to_owned(),
        ),
        Some(0) => (
            Level::Ok,
            format!(
                "your phone's clock agrees with the server's (last {samples} {})",
                if samples == 1 { "login" } else { "logins" }
            ),
        ),
        // The hint counts in 30-second steps.
        Some(steps) => (
            Level::Warn,
            clock::skew_hint(steps * (period / 30).max(1) as i32),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that the check's message holds `words`.
    fn assert_says(check: &Check, words: &str) {
        assert!(check.message.contains(words), "{}", check.message);
    }

    fn enrolled() -> UserStatus {
        UserStatus {
            user: "alice".into(),
            enrolled: true,
            backup_codes_left: 10,
            ..UserStatus::default()
        }
    }

    #[test]
    fn the_worst_check_decides_the_verdict() {
        let of = |levels: &[Level]| {
            let checks: Vec<Check> = levels.iter().map(|l| Check::new("x", *l, "m")).collect();
            verdict(&checks)
        };
        assert_eq!(of(&[Level::Ok, Level::Ok]), Verdict::Done);
        assert_eq!(of(&[Level::Ok, Level::Warn]), Verdict::Warned);
        assert_eq!(of(&[Level::Warn, Level::Fail, Level::Ok]), Verdict::Failed);
    }

    #[test]
    fn phone_behind_by_one_step() {
        let s = UserStatus {
            recent_step_offsets: vec![-1, -1, 0],
            ..enrolled()
        };
        let c = phone_clock_check(&s, &[]);
        assert_eq!(c.status, Level::Warn);
        assert!(
            c.message.starts_with(
                "your phone's clock seems about 30 s behind; set it to automatic time"
            ),
            "{}",
            c.message
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["check"], "phone-clock");
        assert_eq!(v["status"], "warn");
        assert_eq!(v["skew_steps"], -1);
        assert_eq!(v["skew_seconds"], -30);
        assert_eq!(v["samples"], json!([-1, -1, 0]));
    }

    #[test]
    fn each_devices_clock_is_judged_by_its_own_codes() {
        let device = |name: &str, period: u32, offsets: Vec<i32>| DeviceInfo {
            name: name.into(),
            period,
            recent_step_offsets: offsets,
            ..DeviceInfo::default()
        };
        let s = UserStatus {
            recent_step_offsets: vec![0, -1, 0, -1, -1],
            ..enrolled()
        };
        let devices = [
            device("default", 30, vec![0, 0]),
            device("spare", 60, vec![-1, -1, -1]),
            device("fob", 0, vec![]),
        ];
        let c = phone_clock_check(&s, &devices);
        assert_eq!(c.status, Level::Warn);
        assert_eq!(
            c.message.split("; ").next().unwrap(),
            "device default: your phone's clock agrees with the server's (last 2 logins)"
        );
        assert_says(
            &c,
            "device spare: your phone's clock seems about 60 s behind",
        );
        assert!(
            c.message
                .ends_with("device fob: a counter-based token: no clock to check"),
            "{}",
            c.message
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["devices"][1]["skew_seconds"], -60);
        assert_eq!(v["devices"][2]["skew_steps"], Value::Null);
        // One device: the user's samples, older ones included, in its own steps.
        let one = phone_clock_check(&s, &devices[1..2]);
        assert_says(&one, "about 60 s behind");
    }

    #[test]
    fn phone_clock_ok_or_unknown() {
        let s = UserStatus {
            recent_step_offsets: vec![0],
            ..enrolled()
        };
        assert_eq!(phone_clock_check(&s, &[]).status, Level::Ok);
        assert_eq!(phone_clock_check(&enrolled(), &[]).status, Level::Ok);
        let v = serde_json::to_value(phone_clock_check(&enrolled(), &[])).unwrap();
        assert_eq!(v["skew_steps"], Value::Null);
    }

    #[test]
    fn account_states() {
        assert_eq!(account_check(&enrolled(), None, 0, &[]).status, Level::Ok);
        let low = UserStatus {
            backup_codes_left: 2,
            ..enrolled()
        };
        let c = account_check(&low, None, 0, &[]);
        assert_eq!(c.status, Level::Warn);
        assert_says(&c, "Only 2 backup codes");
        let locked = UserStatus {
            locked_until: 100,
            failures: 5,
            ..enrolled()
        };
        assert_eq!(account_check(&locked, None, 50, &[]).status, Level::Warn);
        assert_eq!(account_check(&locked, None, 150, &[]).status, Level::Ok);
        assert_eq!(
            account_check(&UserStatus::default(), None, 0, &[]).status,
            Level::Ok
        );
        // Not enrolled while sudo asks everyone for a code: a warning that says so.
        let c = account_check(&UserStatus::default(), Some("root"), 0, &["sudo"]);
        assert_eq!(c.status, Level::Warn);
        assert_says(&c, "user root cannot log in there");
        assert_says(&c, "sudo");
        let locked = account_check(&locked, None, 50, &[]);
        assert_says(&locked, "too many wrong codes");
    }

    #[test]
    fn pam_checks_from_a_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("common-auth"),
            "auth required pam_twofold.so\n",
        )
        .unwrap();
        std::fs::write(d.path().join("sshd"), "@include common-auth\n").unwrap();
        let (c, used) = pam_check(d.path(), "sshd");
        assert!(used);
        assert_eq!(c.status, Level::Ok);
        assert_says(&c, "through");
        let (c, used) = pam_check(d.path(), "sudo");
        assert!(!used);
        assert_eq!(c.status, Level::Ok, "{}", c.message);
        std::fs::write(d.path().join("sudo"), "auth required pam_unix.so\n").unwrap();
        let (c, _) = pam_check(d.path(), "sudo");
        assert_eq!(c.status, Level::Warn);
        assert_says(&c, "does not ask for a code");
    }

    #[test]
    fn human_lines() {
        let checks = vec![
            Check::new("daemon", Level::Ok, "twofoldd 1 answers"),
            Check::new("phone-clock", Level::Warn, "behind"),
        ];
        let t = human(&checks);
        assert!(
            t.starts_with("ok    daemon        twofoldd 1 answers\n"),
            "{t}"
        );
        assert!(t.contains("warn  phone clock   behind\n"), "{t}");
        assert!(t.contains("1 thing needs attention"), "{t}");
    }
}

//! Packaging end to end: the .deb built with cargo-deb is installed with dpkg in a
//! throwaway root, turned on with `pam-auth-update --enable twofold`, a user enrolls with
//! the installed CLI (twofoldd started by D-Bus activation), logs in through a real sshd
//! (the system's /etc/pam.d/sshd, as the package changed it) and a real `sudo -S`, then
//! the package is purged and /etc/pam.d must be byte for byte as before. The .rpm built
//! by rpmbuild from packaging/rpm/twofold.spec is checked for what it owns and flags,
//! and its scriptlets run.
//!
//! The throwaway root is an overlay of the machine's own root (`/` as the read-only lower
//! layer, a tmpfs as the upper layer) in a private mount and pid namespace: dpkg, rpm and
//! pam-auth-update change only the tmpfs, every process started there (its own system
//! dbus-daemon, twofoldd, sshd) dies with the namespace, and nothing on the machine
//! changes even when a test fails half-way. sshd listens on 127.0.0.1 only.
//!
//! Without root or packages: the DEP-5 copyright lists every crate the programs link.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use twofold_tests::{built, exit_or_kill, free_port, repo_root, require_root, target_dir};

const USER: &str = "tfpkg";
const PASSWORD: &str = "Pkg-test-pw-1";

/// Where the .deb puts the PAM module: /usr/lib/<multiarch>/security/.
fn module_path() -> String {
    let out = Command::new("dpkg-architecture")
        .arg("-qDEB_HOST_MULTIARCH")
        .output()
        .expect("dpkg-architecture (dpkg-dev)");
    assert!(out.status.success(), "dpkg-architecture: {out:?}");
    format!(
        "/usr/lib/{}/security/pam_twofold.so",
        text(&out.stdout).trim()
    )
}

// ---------------------------------------------------------------------------------------
// Preconditions and the packages under test

/// True when `test` may run: as root, with the tools that build the packages
/// (cargo-deb, rpmbuild: see [`packages`]) and the other `tools` it needs installed.
/// Outside CI a missing tool skips the test with a message; under CI=true it fails
/// (tests/run.sh installs them).
fn may_build_packages(test: &str, tools: &[&str]) -> bool {
    if !require_root(test) {
        return false;
    }
    let missing: Vec<&str> = ["cargo-deb", "rpmbuild"]
        .iter()
        .chain(tools)
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: missing {missing:?} under CI (tests/run.sh installs them)");
    }
    eprintln!("SKIPPED {test}: needs {missing:?} (tests/run.sh installs them)");
    false
}

struct Packages {
    deb: PathBuf,
    rpm: PathBuf,
}

/// The .deb and the .rpm of what this test run built (the dev profile, so that nothing
/// is compiled twice), made once per test binary by packaging/build-packages.sh.
fn packages() -> &'static Packages {
    static PACKAGES: OnceLock<Packages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        for f in ["twofoldd", "twofold", "libpam_twofold.so"] {
            built(f);
        }
        let out_dir = target_dir().parent().unwrap().join("package-tests");
        let _ = fs::remove_dir_all(&out_dir);
        fs::create_dir_all(&out_dir).unwrap();
        let out = Command::new(repo_root().join("packaging/build-packages.sh"))
            .args(["--profile", "dev", "--no-build", "--out"])
            .arg(&out_dir)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .output()
            .expect("run packaging/build-packages.sh");
        assert!(
            out.status.success(),
            "build-packages.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let paths: Vec<PathBuf> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect();
        let find = |ext: &str| {
            paths
                .iter()
                .find(|p| p.extension().is_some_and(|e| e == ext) && p.exists())
                .unwrap_or_else(|| panic!("no .{ext} in build-packages.sh output {paths:?}"))
                .clone()
        };
        Packages {
            deb: find("deb"),
            rpm: find("rpm"),
        }
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------
// The throwaway root

/// A copy-on-write copy of this machine's root in private mount and pid namespaces.
struct ThrowawayRoot {
    dir: tempfile::TempDir,
    /// `unshare`; its child (pid 1 of the namespace) holds the mounts.
    holder: Child,
    /// Host pid of the namespace's init, for nsenter and /proc/PID/root.
    init: u32,
    /// The overlay's mount point, as seen inside the namespace.
    root: PathBuf,
    background: Vec<Child>,
    counter: std::cell::Cell<u32>,
}

const HOLDER: &str = r#"set -e
T=$1
mount -t tmpfs -o mode=0755 tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
echo ready
# The namespace's init: bash reaps the orphans reparented to it, and it is bounded,
# whatever happens to the test: the namespace and all in it end with it.
exec bash -c 'i=0; while [ "$i" -lt 600 ]; do sleep 1 & wait $!; i=$((i + 1)); done'
"#;

impl ThrowawayRoot {
    fn new() -> ThrowawayRoot {
        let dir = tempfile::Builder::new()
            .prefix("twofold-pkgroot")
            .tempdir()
            .unwrap();
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let mut holder = Command::new("unshare");
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of the child; it allocates
        // nothing and is async-signal-safe. If this test process dies without running
        // Drop, unshare gets SIGKILL, and with it (--kill-child) the whole namespace.
        unsafe {
            holder.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut holder = holder
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                HOLDER,
                "sh",
            ])
            .arg(&mnt)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.path().join("holder.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "throwaway root not set up: {}",
            fs::read_to_string(dir.path().join("holder.log")).unwrap_or_default()
        );
        let children = fs::read_to_string(format!(
            "/proc/{pid}/task/{pid}/children",
            pid = holder.id()
        ))
        .unwrap();
        let init: u32 = children.trim().parse().expect("namespace init pid");
        ThrowawayRoot {
            root: mnt.join("root"),
            dir,
            holder,
            init,
            background: Vec::new(),
            counter: std::cell::Cell::new(0),
        }
    }

    /// Path, from this process, of `path` inside the throwaway root.
    fn path(&self, path: &str) -> PathBuf {
        let inside = self.root.join(path.trim_start_matches('/'));
        PathBuf::from(format!("/proc/{}/root", self.init)).join(inside.strip_prefix("/").unwrap())
    }

    fn write(&self, path: &str, contents: &[u8], mode: u32) {
        let p = self.path(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.init.to_string())
            .args(["-m", "-p", "chroot"])
            .arg(&self.root)
            .args([
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "LANG=C.UTF-8",
                "DEBIAN_FRONTEND=noninteractive",
                "sh",
                "-c",
                script,
            ]);
        cmd
    }

    /// Runs a shell script as root inside the root, feeding `stdin`, within `timeout`.
    fn run(&self, script: &str, stdin: &str, timeout: Duration) -> Output {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        // Files, not pipes: a daemon started by the script must not hold our output open.
        let out_path = self.dir.path().join(format!("run{n}.out"));
        let err_path = self.dir.path().join(format!("run{n}.err"));
        let mut child = self
            .command(script)
            .stdin(Stdio::piped())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("nsenter (util-linux)");
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let Some(status) = exit_or_kill(&mut child, timeout) else {
            panic!(
                "timed out after {timeout:?}: {script}\n--- stdout\n{}\n--- stderr\n{}",
                fs::read_to_string(&out_path).unwrap_or_default(),
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        };
        Output {
            status,
            stdout: fs::read(&out_path).unwrap(),
            stderr: fs::read(&err_path).unwrap(),
        }
    }

    /// Runs `script` and requires it to succeed; returns its stdout.
    fn sh(&self, script: &str) -> String {
        let out = self.run(script, "", Duration::from_secs(120));
        assert!(out.status.success(), "{script}\n{}", show(&out));
        text(&out.stdout)
    }

    /// Starts `script` in the background; it ends with the namespace. Output goes to `log`
    /// (a path on this side, for failure messages).
    fn spawn(&mut self, script: &str, log: &Path) {
        let child = self
            .command(script)
            .stdin(Stdio::null())
            .stdout(fs::File::create(log).unwrap())
            .stderr(fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("nsenter");
        self.background.push(child);
    }

    /// Every file under `dir` (relative name → mode and contents; symlinks by target).
    fn snapshot(&self, dir: &str) -> BTreeMap<String, (u32, Vec<u8>)> {
        snapshot(&self.path(dir))
    }
}

impl Drop for ThrowawayRoot {
    fn drop(&mut self) {
        // unshare --kill-child: its death kills the namespace's init, and with it every
        // process in the namespace; the mounts go with the namespace.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for child in &mut self.background {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.strip_prefix(base).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(
                    name,
                    (0o120000, target.into_os_string().into_encoded_bytes()),
                );
            } else if meta.is_dir() {
                out.insert(format!("{name}/"), (meta.mode(), Vec::new()));
                walk(base, &path, out);
            } else {
                out.insert(name, (meta.mode(), fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names of the entries that differ between two snapshots, for failure messages.
fn differences(
    a: &BTreeMap<String, (u32, Vec<u8>)>,
    b: &BTreeMap<String, (u32, Vec<u8>)>,
) -> Vec<String> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| match (a.get(n), b.get(n)) {
            (Some(_), None) => format!("{n}: removed"),
            (None, Some((_, c))) => format!("{n}: added:\n{}", text(c)),
            (Some((ma, ca)), Some((mb, cb))) => format!(
                "{n}: mode {ma:o} -> {mb:o}; before:\n{}\nafter:\n{}",
                text(ca),
                text(cb)
            ),
            (None, None) => unreachable!(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Codes, logins

/// The TOTP code of `secret` for the 30-second step `step`, from oathtool.
fn code_at_step(secret: &str, step: u64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "--now",
            &format!("@{}", step * 30 + 1),
            secret,
        ])
        .output()
        .expect("oathtool");
    assert!(out.status.success(), "oathtool: {out:?}");
    text(&out.stdout).trim().to_string()
}

fn now_step() -> (u64, f64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    ((now / 30.0) as u64, 30.0 - now % 30.0)
}

/// Waits until at least `seconds` remain in the current step; returns the step.
fn fresh_step(seconds: f64) -> u64 {
    let (step, left) = now_step();
    if left >= seconds {
        return step;
    }
    std::thread::sleep(Duration::from_secs_f64(left + 0.2));
    now_step().0
}

const ASKPASS: &str = r#"#!/bin/sh
# ssh's askpass for keyboard-interactive prompts: records each prompt, answers from files.
printf '%s\n' "$1" >> /tmp/ask/prompts
case "$1" in
    *assword*) cat /tmp/ask/password ;;
    *erification*) cat /tmp/ask/code ;;
    *) echo "askpass: unexpected prompt: $1" >&2; exit 1 ;;
esac
"#;

/// One `ssh` login with the key, answering keyboard-interactive prompts with `password`
/// and `code`. Returns the command's output and the prompts the server sent.
fn ssh_login(root: &ThrowawayRoot, port: u16, code: &str) -> (Output, Vec<String>) {
    root.write(
        "/tmp/ask/password",
        format!("{PASSWORD}\n").as_bytes(),
        0o600,
    );
    root.write("/tmp/ask/code", format!("{code}\n").as_bytes(), 0o600);
    root.write("/tmp/ask/prompts", b"", 0o600);
    let out = root.run(
        &format!(
            "SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
             ssh -F /dev/null -T -n -o BatchMode=no -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ConnectTimeout=10 \
             -o PreferredAuthentications=publickey,keyboard-interactive \
             -o NumberOfPasswordPrompts=1 -o LogLevel=ERROR \
             -i /root/.ssh/tfpkg_key -p {port} {USER}@127.0.0.1 'id -un'"
        ),
        "",
        Duration::from_secs(60),
    );
    let prompts = fs::read_to_string(root.path("/tmp/ask/prompts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (out, prompts)
}

/// `sudo -S -k id -u` as the test user, with `stdin` (password, then the code).
fn sudo(root: &ThrowawayRoot, stdin: &str) -> Output {
    root.run(
        &format!("su {USER} -c 'sudo -S -k id -u'"),
        stdin,
        Duration::from_secs(60),
    )
}

fn assert_file(root: &ThrowawayRoot, path: &str, mode: u32) {
    let meta = fs::metadata(root.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(meta.mode() & 0o7777, mode, "{path}: mode");
    assert_eq!(meta.uid(), 0, "{path}: owner");
}

/// The Primary block of a directory account stand-in (as pam_sss or pam_ldap would add):
/// pam_exec checks the password of the user tfldap, who has no password in /etc/shadow.
const DIRECTORY_PROFILE: &str = "Name: directory accounts (test stand-in for sssd)
Default: yes
Priority: 128
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_exec.so quiet expose_authtok /usr/local/sbin/directory-check
";

const DIRECTORY_CHECK: &str = r#"#!/bin/sh
# The password arrives on stdin (pam_exec expose_authtok), NUL-terminated.
password=$(head -c 512 | tr -d '\000\n')
[ "$PAM_USER" = tfldap ] && [ "$password" = "Ldap-pw-1" ]
"#;

/// twofold-password accepts every password that logins accept: a user known only to a
/// directory (a Primary pam-auth-update profile, here pam_exec standing in for pam_sss)
/// passes with that password, and with the twofold profile on, no code is asked for.
fn twofold_password_takes_directory_accounts(root: &ThrowawayRoot) {
    root.write(
        "/usr/local/sbin/directory-check",
        DIRECTORY_CHECK.as_bytes(),
        0o755,
    );
    root.write(
        "/usr/share/pam-configs/directory",
        DIRECTORY_PROFILE.as_bytes(),
        0o644,
    );
    root.sh("useradd -M -s /bin/sh tfldap && pam-auth-update --enable directory");
    let check = |user: &str, password: &str| {
        root.run(
            &format!("pamtester -v twofold-password {user} authenticate"),
            &format!("{password}\n"),
            Duration::from_secs(30),
        )
    };
    let out = check("tfldap", "Ldap-pw-1");
    assert!(
        out.status.success(),
        "twofold-password, directory account: {}",
        show(&out)
    );
    assert!(!show(&out).contains("Verification"), "{}", show(&out));
    let out = check("tfldap", "wrong");
    assert!(!out.status.success(), "{}", show(&out));
    // Local accounts still pass, without a code, though the profile is on.
    let out = check(USER, PASSWORD);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!show(&out).contains("Verification"), "{}", show(&out));
    root.sh("pam-auth-update --package --remove directory && rm /usr/share/pam-configs/directory && userdel tfldap");
}

/// Removes what an earlier install on the machine left (packaging/install.sh, an
/// installed twofold package), so that the test starts from a machine without twofold.
const FORGET_TWOFOLD: &str = r#"set -e
if dpkg-query -W -f='${db:Status-Abbrev}' twofold 2>/dev/null | grep -q '^[a-z]'; then
    TWOFOLD_PURGE_STATE=yes dpkg --purge twofold >/dev/null
fi
rm -rf /etc/twofold /var/lib/twofold /usr/sbin/twofoldd /usr/bin/twofold \
    /usr/lib/*/security/pam_twofold.so /lib/systemd/system/twofoldd.service \
    /lib/systemd/system/twofoldd.socket \
    /usr/share/dbus-1/system.d/org.twofold.Twofold1.conf \
    /usr/share/dbus-1/system-services/org.twofold.Twofold1.service
! grep -rqs pam_twofold /etc/pam.d || { echo "/etc/pam.d names pam_twofold.so by hand" >&2; exit 1; }
"#;

// ---------------------------------------------------------------------------------------
// The tests

#[test]
fn deb_installs_enables_logs_in_through_sshd_and_sudo_and_purges_cleanly() {
    let test = "deb_end_to_end";
    if !may_build_packages(
        test,
        &[
            "unshare",
            "nsenter",
            "dpkg",
            "dpkg-architecture",
            "sshd",
            "ssh",
            "sudo",
            "oathtool",
            "pamtester",
            "dbus-daemon",
        ],
    ) {
        return;
    }
    let host_pam_before = snapshot(Path::new("/etc/pam.d"));
    let deb = &packages().deb;
    {
        let mut root = ThrowawayRoot::new();
        root.sh(FORGET_TWOFOLD);
        let pam_before = root.snapshot("/etc/pam.d");
        root.write("/tmp/twofold.deb", &fs::read(deb).unwrap(), 0o644);
        // A machine without systemd: the system bus runs, started by hand.
        root.sh("mkdir -p /run/dbus && dbus-uuidgen --ensure && dbus-daemon --system --fork");

        // Install: every file in its place, /etc/pam.d untouched but for the
        // twofold-password service (the profile is "Default: no").
        let out = root.sh("dpkg -i /tmp/twofold.deb 2>&1");
        assert!(out.contains("Setting up twofold"), "{out}");
        assert_file(&root, &module_path(), 0o644);
        assert_file(&root, "/usr/bin/twofold", 0o755);
        assert_file(&root, "/usr/sbin/twofoldd", 0o755);
        for f in [
            "/usr/share/dbus-1/system.d/org.twofold.Twofold1.conf",
            "/usr/share/dbus-1/system-services/org.twofold.Twofold1.service",
            "/lib/systemd/system/twofoldd.service",
            "/lib/systemd/system/twofoldd.socket",
            "/usr/share/polkit-1/actions/org.twofold.policy",
            "/usr/share/pam-configs/twofold",
            "/etc/pam.d/twofold-password",
            "/etc/twofold/twofoldd.toml",
        ] {
            assert_file(&root, f, 0o644);
        }
        assert_file(&root, "/var/lib/twofold", 0o700);
        // md5sums (build-packages.sh adds them): dpkg can verify every installed file.
        let verify = root.sh("dpkg --verify twofold 2>&1");
        assert_eq!(verify, "", "dpkg --verify twofold");
        let mut expected = pam_before.clone();
        expected.insert(
            "twofold-password".into(),
            (
                0o100644,
                fs::read(repo_root().join("packaging/pam.d/twofold-password")).unwrap(),
            ),
        );
        let installed = root.snapshot("/etc/pam.d");
        assert!(
            installed == expected,
            "installing changed /etc/pam.d: {:#?}",
            differences(&expected, &installed)
        );

        // One pam-auth-update choice turns it on: auth (required, after the password)
        // and the interactive session stack, after pam_systemd (cron, atd and
        // `systemd --user` sessions are not recorded).
        root.sh("pam-auth-update --enable twofold");
        let auth = fs::read_to_string(root.path("/etc/pam.d/common-auth")).unwrap();
        assert!(
            auth.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["auth", "required", "pam_twofold.so"]),
            "{auth}"
        );
        let unix = auth.find("pam_unix.so").expect("pam_unix in common-auth");
        assert!(auth.find("pam_twofold.so").unwrap() > unix, "{auth}");
        let session = fs::read_to_string(root.path("/etc/pam.d/common-session")).unwrap();
        let twofold = session
            .find("optional\tpam_twofold.so")
            .unwrap_or_else(|| panic!("{session}"));
        if let Some(systemd) = session.find("pam_systemd.so") {
            assert!(twofold > systemd, "after pam_systemd:\n{session}");
        }
        let noninteractive =
            fs::read_to_string(root.path("/etc/pam.d/common-session-noninteractive")).unwrap();
        assert!(
            !noninteractive.contains("pam_twofold.so"),
            "{noninteractive}"
        );

        // A user with a password who may use sudo, and an ssh key for them.
        root.sh(&format!(
            "useradd -m -s /bin/sh {USER} && echo '{USER}:{PASSWORD}' | chpasswd && \
             echo '{USER} ALL=(ALL) ALL' > /etc/sudoers.d/{USER} && chmod 0440 /etc/sudoers.d/{USER} && \
             mkdir -p /root/.ssh /etc/twofold-test /run/sshd && \
             ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/tfpkg_key && \
             ssh-keygen -q -t ed25519 -N '' -f /etc/twofold-test/host_key && \
             install -d -m 0700 -o {USER} -g {USER} /home/{USER}/.ssh && \
             install -m 0600 -o {USER} -g {USER} /root/.ssh/tfpkg_key.pub /home/{USER}/.ssh/authorized_keys"
        ));
        root.write("/tmp/askpass", ASKPASS.as_bytes(), 0o755);

        // The twofold-password service checks the account password, and only that.
        let check = |password: &str| {
            root.run(
                &format!("pamtester twofold-password {USER} authenticate acct_mgmt"),
                &format!("{password}\n"),
                Duration::from_secs(30),
            )
        };
        let out = check(PASSWORD);
        assert!(
            out.status.success(),
            "twofold-password, right password: {}",
            show(&out)
        );
        let out = check("wrong");
        assert!(
            !out.status.success(),
            "twofold-password, wrong password: {}",
            show(&out)
        );
        twofold_password_takes_directory_accounts(&root);

        // Enroll with the installed CLI; twofoldd starts by D-Bus activation, as root.
        let step = fresh_step(25.0);
        let begin = root.sh(&format!("twofold enroll --begin --json --user {USER}"));
        let begin: serde_json::Value = serde_json::from_str(&begin).unwrap();
        let secret = begin["secret"].as_str().unwrap().to_string();
        let confirm = root.sh(&format!(
            "echo {} | twofold enroll --confirm - --json --user {USER}",
            code_at_step(&secret, step - 1)
        ));
        let confirm: serde_json::Value = serde_json::from_str(&confirm).unwrap();
        assert_eq!(confirm["backup_codes"].as_array().unwrap().len(), 10);
        let daemon = root.sh("ps -o user=,args= -C twofoldd");
        assert!(daemon.trim().starts_with("root"), "{daemon}");
        assert_file(&root, "/etc/twofold/secret.key", 0o600);
        assert_file(&root, "/var/lib/twofold/twofold.db", 0o600);

        // sshd with the system's /etc/pam.d/sshd: key, then password and code.
        let port = free_port();
        let sshd_config = "ListenAddress 127.0.0.1\n\
            HostKey /etc/twofold-test/host_key\n\
            UsePAM yes\n\
            PubkeyAuthentication yes\n\
            PasswordAuthentication no\n\
            KbdInteractiveAuthentication yes\n\
            AuthenticationMethods publickey,keyboard-interactive\n\
            AuthorizedKeysFile .ssh/authorized_keys\n\
            PermitRootLogin no\n\
            UseDNS no\n\
            PidFile none\n\
            LogLevel VERBOSE\n";
        root.write(
            "/etc/twofold-test/sshd_config",
            sshd_config.as_bytes(),
            0o644,
        );
        let sshd_log = root.dir.path().join("sshd.log");
        root.spawn(
            &format!("exec /usr/sbin/sshd -D -e -f /etc/twofold-test/sshd_config -p {port}"),
            &sshd_log,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                fs::read_to_string(sshd_log.with_extension("err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // ssh with key, password and `code` gets in (`what` says when); the prompts it saw.
        let ssh_gets_in = |code: &str, what: &str| {
            let (out, prompts) = ssh_login(&root, port, code);
            assert!(
                out.status.success() && text(&out.stdout).trim() == USER,
                "{what}: {}\nprompts {prompts:?}\nsshd:\n{}",
                show(&out),
                fs::read_to_string(sshd_log.with_extension("err")).unwrap_or_default()
            );
            prompts
        };
        // sudo -S with `input` runs the command as root (`what` says when).
        let sudo_runs = |input: &str, what: &str| {
            let out = sudo(&root, input);
            assert!(
                out.status.success() && text(&out.stdout).trim() == "0",
                "{what}: {}",
                show(&out)
            );
            out
        };
        // `twofold status` as root still knows USER.
        let assert_still_enrolled = || {
            let status = root.sh(&format!("twofold status --json --user {USER}"));
            let status: serde_json::Value = serde_json::from_str(&status).unwrap();
            assert_eq!(
                status["enrolled"],
                serde_json::Value::Bool(true),
                "{status}"
            );
        };
        // /etc/pam.d is as before the install (`when`: after which purge).
        let assert_pam_as_before = |when: &str| {
            let purged = root.snapshot("/etc/pam.d");
            assert!(
                purged == pam_before,
                "/etc/pam.d differs after {when}: {:#?}",
                differences(&pam_before, &purged)
            );
        };

        let prompts = ssh_gets_in(
            &code_at_step(&secret, step),
            "ssh with key, password and code",
        );
        assert!(
            prompts.iter().any(|p| p.contains("Verification code")),
            "{prompts:?}"
        );

        // A wrong code is refused.
        let (out, _) = ssh_login(&root, port, "000000");
        assert!(
            !out.status.success(),
            "ssh with a wrong code got in: {}",
            show(&out)
        );

        // sudo -S: password, then code.
        let next = code_at_step(&secret, step + 1);
        let out = sudo_runs(
            &format!("{PASSWORD}\n{next}\n"),
            "sudo with password and code",
        );
        assert!(
            text(&out.stderr).contains("Verification code"),
            "{}",
            show(&out)
        );
        // The same code again is refused (accepted once).
        let out = sudo(&root, &format!("{PASSWORD}\n{next}\n"));
        assert!(
            !out.status.success(),
            "sudo accepted a used code: {}",
            show(&out)
        );

        // Reinstalling (dpkg's upgrade path) replaces the running daemon; the next call
        // starts the new binary by D-Bus activation, and the enrollment is still there.
        let pid =
            |root: &ThrowawayRoot| root.sh("ps -C twofoldd -o pid= || true").trim().to_string();
        let old_pid = pid(&root);
        assert!(!old_pid.is_empty(), "twofoldd is not running");
        root.sh("dpkg -i /tmp/twofold.deb >/dev/null 2>&1");
        assert!(
            pid(&root).is_empty(),
            "the upgrade left twofoldd {old_pid} running"
        );
        assert_still_enrolled();
        assert_ne!(pid(&root), old_pid);

        // Purge: the profile leaves /etc/pam.d before the module goes, everything is as
        // before, the daemon is gone; the enrollments are kept unless asked.
        let out = root.sh("dpkg --purge twofold 2>&1");
        assert!(out.contains("kept the enrollments"), "{out}");
        assert_pam_as_before("purge");
        let module = module_path();
        for gone in [
            module.as_str(),
            "/usr/sbin/twofoldd",
            "/usr/bin/twofold",
            "/etc/twofold/twofoldd.toml",
        ] {
            assert!(!root.path(gone).exists(), "{gone} still there after purge");
        }
        assert!(root.path("/var/lib/twofold/twofold.db").exists());
        assert!(root.path("/etc/twofold/secret.key").exists());
        let ps = root.sh("ps -C twofoldd -o pid=,args= || true");
        assert!(ps.trim().is_empty(), "twofoldd still runs: {ps}");

        // Nobody is locked out: sudo with the password alone, ssh with key and password.
        sudo_runs(&format!("{PASSWORD}\n"), "sudo after purge");
        let prompts = ssh_gets_in("unused", "ssh after purge");
        assert!(
            !prompts.iter().any(|p| p.contains("Verification")),
            "{prompts:?}"
        );

        // Reinstalled, the kept state still knows the user; purged with
        // TWOFOLD_PURGE_STATE=yes, the state goes too.
        root.sh("dpkg -i /tmp/twofold.deb >/dev/null");
        assert_still_enrolled();
        // A line added by hand stays (pam-auth-update removes only its own): prerm names
        // the file.
        root.sh("cp /etc/pam.d/login /tmp/login.orig && echo 'auth required pam_twofold.so' >> /etc/pam.d/login");
        let out = root.sh("TWOFOLD_PURGE_STATE=yes dpkg --purge twofold 2>&1");
        assert!(
            out.lines()
                .any(|l| l.contains("twofold:") && l.trim_end().ends_with("/etc/pam.d/login")),
            "prerm does not name the hand-edited file:\n{out}"
        );
        assert!(
            !out.contains("/etc/pam.d/common-auth"),
            "prerm names the profile's own file:\n{out}"
        );
        root.sh("cp /tmp/login.orig /etc/pam.d/login");
        assert!(!root.path("/var/lib/twofold").exists());
        assert!(!root.path("/etc/twofold").exists());
        assert_pam_as_before("the second purge");
    }
    let host_pam_after = snapshot(Path::new("/etc/pam.d"));
    assert!(
        host_pam_after == host_pam_before,
        "the machine's /etc/pam.d changed: {:#?}",
        differences(&host_pam_before, &host_pam_after)
    );
}

#[test]
fn deb_has_no_lintian_errors_or_warnings() {
    let test = "deb_lintian";
    if !may_build_packages(test, &["lintian"]) {
        return;
    }
    let out = Command::new("lintian")
        .args(["--tag-display-limit", "0", "--show-overrides"])
        .arg(&packages().deb)
        .output()
        .expect("lintian");
    let report = text(&out.stdout);
    let flagged: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        flagged.is_empty() && out.status.code().is_some_and(|c| c == 0 || c == 1),
        "lintian errors or warnings:\n{report}\n{}",
        text(&out.stderr)
    );
    // Every override still matches a tag (an unused one would hide nothing, or a typo).
    let overrides =
        fs::read_to_string(repo_root().join("packaging/debian/lintian-overrides")).unwrap();
    for tag in overrides
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let tag = tag.split_whitespace().nth(1).expect("package: tag");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("O:") && l.contains(tag)),
            "override {tag} is not used:\n{report}"
        );
    }
}

/// A file of the .deb, read without installing it.
fn deb_file(deb: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("dpkg-deb --fsys-tarfile \"$0\" | tar -xO .{path}"))
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{path} in the .deb: {}", show(&out));
    out.stdout
}

fn gunzip(bytes: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    text(&out.stdout)
}

#[test]
fn deb_relations_docs_and_copyright() {
    let test = "deb_docs";
    if !may_build_packages(test, &["dpkg-deb"]) {
        return;
    }
    let deb = &packages().deb;
    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .arg(name)
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    };
    let depends = field("Depends");
    let names: Vec<&str> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        names.len(),
        unique.len(),
        "a package twice in Depends: {depends}"
    );
    for needed in ["libpam0g", "libpam-runtime", "dbus"] {
        assert!(names.contains(&needed), "Depends lacks {needed}: {depends}");
    }
    // Debian 12 and 13 call polkit's daemon polkitd.
    assert_eq!(field("Recommends"), "polkitd");

    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    let docs: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| p.starts_with("./usr/share/doc/twofold/") && !p.ends_with('/'))
        .collect();
    let mut docs = docs.clone();
    docs.sort();
    assert_eq!(
        docs,
        [
            "./usr/share/doc/twofold/README.Debian.gz",
            "./usr/share/doc/twofold/README.md.gz",
            "./usr/share/doc/twofold/changelog.Debian.gz",
            "./usr/share/doc/twofold/copyright",
        ],
        "{listing}"
    );
    let readme = gunzip(&deb_file(deb, "/usr/share/doc/twofold/README.Debian.gz"));
    for step in [
        "twofold enroll",
        "sudo pam-auth-update --enable twofold",
        "pam-auth-update --disable twofold",
        "twofold admin unlock",
        "twofold admin reset",
        "twofoldd --check-config",
    ] {
        assert!(readme.contains(step), "README.Debian lacks {step:?}");
    }
    let copyright = deb_file(deb, "/usr/share/doc/twofold/copyright");
    assert!(
        copyright == fs::read(repo_root().join("packaging/debian/copyright")).unwrap(),
        "the .deb's copyright is not packaging/debian/copyright"
    );
    let control = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --ctrl-tarfile \"$0\" | tar -xO ./md5sums")
        .arg(deb)
        .output()
        .unwrap();
    let md5sums = text(&control.stdout);
    for file in ["usr/sbin/twofoldd", "usr/bin/twofold", &module_path()[1..]] {
        assert!(
            md5sums.lines().any(|l| l.ends_with(&format!("  {file}"))),
            "{file} not in md5sums:\n{md5sums}"
        );
    }
    assert!(!md5sums.contains("  etc/"), "a conffile in md5sums");
    let overrides = deb_file(deb, "/usr/share/lintian/overrides/twofold");
    assert_eq!(
        overrides,
        fs::read(repo_root().join("packaging/debian/lintian-overrides")).unwrap()
    );
}

/// `name version` of every crate the shipped programs link, from `cargo tree`.
fn linked_crates() -> BTreeMap<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}",
            "-p",
            "twofoldd",
            "-p",
            "twofold-cli",
            "-p",
            "pam_twofold",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo tree");
    assert!(out.status.success(), "cargo tree: {}", show(&out));
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((format!("{name} {version}"), l.to_string()))
        })
        .collect()
}

#[test]
fn copyright_lists_every_crate_the_programs_link() {
    let path = repo_root().join("packaging/debian/copyright");
    let copyright = fs::read_to_string(&path).unwrap();
    let regenerate = "regenerate it: packaging/debian/gen-copyright > packaging/debian/copyright";
    assert!(copyright.starts_with(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
    ));
    let paragraphs: Vec<&str> = copyright.split("\n\n").collect();
    let field = |p: &str, name: &str| {
        p.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    // Each crate: a Files stanza naming it and its version, with its copyright and licence.
    let mut listed = BTreeMap::new();
    for p in &paragraphs {
        if let (Some(files), Some(comment)) = (field(p, "Files"), field(p, "Comment")) {
            let list = comment
                .strip_prefix("twofold's own crates: ")
                .or_else(|| comment.strip_prefix("Crate "));
            if let Some(list) = list {
                let list = list.split(';').next().unwrap().trim_end_matches('.');
                for crate_ in list.split(", ") {
                    listed.insert(crate_.trim().to_string(), files.clone());
                }
            }
            assert!(field(p, "Copyright").is_some(), "no Copyright in:\n{p}");
            assert!(field(p, "License").is_some(), "no License in:\n{p}");
        }
    }
    let linked = linked_crates();
    let missing: Vec<&String> = linked.keys().filter(|c| !listed.contains_key(*c)).collect();
    assert!(
        missing.is_empty(),
        "packaging/debian/copyright lacks {missing:?}; {regenerate}"
    );
    // Every licence named has its paragraph (the text, or Debian's common-licenses).
    let standalone: Vec<String> = paragraphs
        .iter()
        .filter(|p| p.starts_with("License: "))
        .map(|p| field(p, "License").unwrap())
        .collect();
    for p in &paragraphs {
        if p.starts_with("Files: ") {
            let expression = field(p, "License").unwrap();
            let has_text = p
                .lines()
                .skip_while(|l| !l.starts_with("License: "))
                .nth(1)
                .is_some_and(|l| l.starts_with(' '));
            for name in expression
                .split(['(', ')'])
                .flat_map(|part| part.split(" or "))
                .flat_map(|part| part.split(" and "))
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                assert!(
                    has_text || standalone.iter().any(|s| s == name),
                    "no licence paragraph for {name}"
                );
            }
        }
    }
    // The SQLite that libsqlite3-sys bundles into twofoldd is public domain.
    if linked.keys().any(|c| c.starts_with("libsqlite3-sys ")) {
        let sqlite = paragraphs
            .iter()
            .find(|p| field(p, "Files").is_some_and(|f| f.ends_with("/sqlite3/*")))
            .expect("no stanza for the bundled SQLite");
        assert_eq!(field(sqlite, "License").as_deref(), Some("public-domain"));
        assert!(sqlite.contains("The author disclaims copyright to this source code."));
    }
}

/// What rpm printed, less the warning of Debian's rpm that it is not dpkg.
fn scriptlet_output(out: &str) -> String {
    out.lines()
        .filter(|l| !(l.starts_with("rpm: ") && (l.contains("Alien") || l.contains("assuming"))))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn rpm_puts_files_in_place_and_its_scriptlets_guard_pam() {
    let test = "rpm_scriptlets";
    if !may_build_packages(test, &["rpm", "unshare", "nsenter"]) {
        return;
    }
    let rpm = &packages().rpm;
    let query = |fmt: &str| {
        let out = Command::new("rpm")
            .args(["-qp", "--nosignature", "--qf", fmt])
            .arg(rpm)
            .output()
            .unwrap();
        assert!(out.status.success(), "rpm -qp: {}", show(&out));
        text(&out.stdout)
    };
    let files = query("[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]");
    for (perms, path) in [
        ("-rwxr-xr-x", "/usr/lib64/security/pam_twofold.so"),
        ("-rwxr-xr-x", "/usr/sbin/twofoldd"),
        ("-rwxr-xr-x", "/usr/bin/twofold"),
        (
            "-rw-r--r--",
            "/usr/share/dbus-1/system.d/org.twofold.Twofold1.conf",
        ),
        (
            "-rw-r--r--",
            "/usr/share/dbus-1/system-services/org.twofold.Twofold1.service",
        ),
        ("-rw-r--r--", "/usr/lib/systemd/system/twofoldd.service"),
        ("-rw-r--r--", "/usr/lib/systemd/system/twofoldd.socket"),
        (
            "-rw-r--r--",
            "/usr/share/polkit-1/actions/org.twofold.policy",
        ),
        // The package owns its directories (state 0700).
        ("drwxr-xr-x", "/etc/twofold"),
        ("drwx------", "/var/lib/twofold"),
        ("drwxr-xr-x", "/usr/share/authselect/vendor/twofold"),
    ] {
        assert!(
            files
                .lines()
                .any(|l| l.starts_with(perms) && l.ends_with(&format!(" {path}"))),
            "{perms} {path} not in (or not owned by) the rpm:\n{files}"
        );
    }
    for conf in ["/etc/pam.d/twofold-password", "/etc/twofold/twofoldd.toml"] {
        assert!(
            files.lines().any(|l| l.ends_with(&format!(" cn {conf}"))),
            "{conf} is not %config(noreplace):\n{files}"
        );
    }
    // The licences are marked %license.
    for license in ["LICENSE", "LICENSE.dependencies"] {
        assert!(
            files
                .lines()
                .any(|l| l.contains(" l /usr/share/licenses/twofold/")
                    && l.ends_with(&format!("/{license}"))),
            "{license} is not %license:\n{files}"
        );
    }
    assert!(
        files
            .lines()
            .any(|l| l.ends_with(" d /usr/share/doc/twofold/README.md")),
        "{files}"
    );
    // The authselect profiles: the checked PAM templates as they are, the rest the stock
    // profile's own files (local, sssd).
    let links = query("[%{FILELINKTOS} %{FILENAMES}\n]");
    for (profile, based_on) in [("twofold", "local"), ("twofold-sssd", "sssd")] {
        let dir = format!("/usr/share/authselect/vendor/{profile}");
        for file in [
            "README",
            "REQUIREMENTS",
            "system-auth",
            "password-auth",
            "fingerprint-auth",
            "smartcard-auth",
        ] {
            assert!(
                files
                    .lines()
                    .any(|l| l.starts_with("-rw-r--r--") && l.ends_with(&format!(" {dir}/{file}"))),
                "{dir}/{file} not in the rpm:\n{files}"
            );
        }
        for file in ["nsswitch.conf", "dconf-db", "dconf-locks", "postlogin"] {
            assert!(
                links
                    .lines()
                    .any(|l| l == format!("../../default/{based_on}/{file} {dir}/{file}")),
                "{dir}/{file} is not a link to the {based_on} profile's:\n{links}"
            );
        }
    }
    // Fedora's scriptlet rules: the systemd macros (the socket by preset, a restart on
    // upgrade), and nothing printed unless a removal is refused.
    let scripts = query("%{POSTIN}\n--\n%{PREUN}\n--\n%{POSTUN}\n");
    for call in [
        "systemd-update-helper install-system-units twofoldd.socket",
        "systemd-update-helper remove-system-units twofoldd.socket twofoldd.service",
        "systemd-update-helper mark-restart-system-units twofoldd.service",
    ] {
        assert!(
            scripts.contains(call),
            "{call} not in the scriptlets:\n{scripts}"
        );
    }
    for line in scripts
        .lines()
        .filter(|l| l.trim_start().starts_with("echo "))
    {
        assert!(line.ends_with(">&2"), "a scriptlet prints: {line}");
    }
    assert!(!scripts.contains("enable --now"), "{scripts}");
    assert!(
        files
            .lines()
            .any(|l| l.ends_with(" /usr/lib/systemd/system-preset/80-twofold.preset")),
        "{files}"
    );

    // rpm -i into an empty test root puts every file in place.
    let dir = tempfile::tempdir().unwrap();
    let ok = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(out.status.success(), "{c:?}: {}", show(&out));
    };
    let mut c = Command::new("rpm");
    c.arg("--root").arg(dir.path()).arg("--initdb");
    ok(c);
    let mut c = Command::new("rpm");
    c.arg("--root")
        .arg(dir.path())
        .args(["-i", "--nodeps", "--noscripts", "--nosignature"])
        .arg(rpm);
    ok(c);
    for f in [
        "usr/lib64/security/pam_twofold.so",
        "usr/sbin/twofoldd",
        "usr/bin/twofold",
        "etc/pam.d/twofold-password",
        "usr/share/doc/twofold/README.md",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} not installed");
    }
    // Without scriptlets: the directories come from the package itself.
    let state = fs::metadata(dir.path().join("var/lib/twofold")).unwrap();
    assert!(state.is_dir() && state.mode() & 0o7777 == 0o700);
    assert!(dir.path().join("etc/twofold").is_dir());
    assert_eq!(
        fs::read(dir.path().join("etc/pam.d/twofold-password")).unwrap(),
        fs::read(repo_root().join("packaging/rpm/twofold-password")).unwrap(),
        "the rpm's twofold-password (password-auth, not Debian's common-auth)"
    );
    for profile in ["twofold", "twofold-sssd"] {
        for file in [
            "system-auth",
            "password-auth",
            "fingerprint-auth",
            "smartcard-auth",
        ] {
            assert_eq!(
                fs::read(
                    dir.path()
                        .join("usr/share/authselect/vendor")
                        .join(profile)
                        .join(file)
                )
                .unwrap(),
                fs::read(
                    repo_root()
                        .join("packaging/authselect")
                        .join(profile)
                        .join(file)
                )
                .unwrap(),
                "{profile}/{file}"
            );
        }
    }

    // The scriptlets, run by rpm in a throwaway copy of this machine: silent on success;
    // %preun refuses to remove the module while a PAM file names it.
    let root = ThrowawayRoot::new();
    root.sh(FORGET_TWOFOLD);
    root.write("/tmp/twofold.rpm", &fs::read(rpm).unwrap(), 0o644);
    let out = root.sh("rpm --initdb && rpm -i --nodeps --nosignature /tmp/twofold.rpm 2>&1");
    assert_eq!(scriptlet_output(&out), "", "rpm -i printed");
    assert_file(&root, "/var/lib/twofold", 0o700);
    assert_file(&root, "/etc/twofold", 0o755);
    assert_file(&root, "/usr/lib64/security/pam_twofold.so", 0o755);
    root.sh("cp /etc/pam.d/sudo /tmp/sudo.orig && echo 'auth required pam_twofold.so' >> /etc/pam.d/sudo");
    let out = root.run("rpm -e twofold", "", Duration::from_secs(60));
    assert!(!out.status.success(), "rpm -e went ahead: {}", show(&out));
    assert!(
        text(&out.stderr).contains("/etc/pam.d/sudo"),
        "{}",
        show(&out)
    );
    assert!(root.path("/usr/lib64/security/pam_twofold.so").exists());
    let out = root.sh("cp /tmp/sudo.orig /etc/pam.d/sudo && rpm -e twofold 2>&1");
    assert_eq!(scriptlet_output(&out), "", "rpm -e printed");
    assert!(!root.path("/usr/lib64/security/pam_twofold.so").exists());
    assert!(!root.path("/usr/sbin/twofoldd").exists());
}

/// `text` (`what`, for the message) has `line` as a whole line.
fn assert_has_line(what: &str, text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "{what} lacks the line {line:?}"
    );
}

/// The whole lines each packaging file must carry: what the file is (for the message),
/// its path under packaging/, the lines.
const PROMISED_LINES: &[(&str, &str, &[&str])] = &[
    (
        "the unit",
        "systemd/twofoldd.service",
        &[
            "Type=dbus",
            "BusName=org.twofold.Twofold1",
            "ExecStart=/usr/sbin/twofoldd",
            "StateDirectory=twofold",
            "StateDirectoryMode=0700",
            "ReadWritePaths=/etc/twofold",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "NoNewPrivileges=yes",
            "SystemCallFilter=@system-service",
            "CapabilityBoundingSet=CAP_KILL",
            "RuntimeDirectory=twofold",
            "RuntimeDirectoryMode=0755",
            "RuntimeDirectoryPreserve=yes",
            "Sockets=twofoldd.socket",
        ],
    ),
    // The direct socket: root's alone, in a directory others may list but not write.
    (
        "the socket unit",
        "systemd/twofoldd.socket",
        &[
            "ListenStream=/run/twofold/twofoldd.socket",
            "SocketUser=root",
            "SocketMode=0600",
            "DirectoryMode=0755",
            "Accept=no",
            "WantedBy=sockets.target",
        ],
    ),
    (
        "the activation file",
        "dbus/org.twofold.Twofold1.service",
        &[
            "Name=org.twofold.Twofold1",
            "Exec=/usr/sbin/twofoldd",
            "User=root",
            "SystemdService=twofoldd.service",
        ],
    ),
    (
        "the profile",
        "pam-configs/twofold",
        &[
            "Default: no",
            "Auth-Type: Additional",
            "Session-Type: Additional",
            // Interactive sessions only, and after pam_systemd (Priority 0;
            // pam-auth-update sorts by descending priority, then descending name, so 0
            // would put twofold first).
            "Session-Interactive-Only: yes",
            "Priority: -1",
        ],
    ),
    // twofold-password takes every password logins take (common-auth); the profile
    // skips the code for it, on the line right before the module's.
    (
        "twofold-password",
        "pam.d/twofold-password",
        &["@include common-auth"],
    ),
];

#[test]
fn packaging_files_carry_what_the_package_promises() {
    let read = |p: &str| fs::read_to_string(repo_root().join("packaging").join(p)).unwrap();
    for (what, file, lines) in PROMISED_LINES {
        let text = read(file);
        for line in *lines {
            assert_has_line(what, &text, line);
        }
    }
    let unit = read("systemd/twofoldd.service");
    let socket = read("systemd/twofoldd.socket");
    assert!(socket.contains(twofold_contract::DIRECT_SOCKET));
    assert!(unit
        .lines()
        .any(|l| l.starts_with("RestrictAddressFamilies=AF_UNIX")));
    let policy = read("polkit/org.twofold.policy");
    // Self-service is decided by uid and proof, not polkit: no action that nothing checks.
    assert!(
        !policy.contains("manage-own"),
        "an unchecked polkit action is listed"
    );
    let action = "org.twofold.administer";
    let start = policy
        .find(&format!("<action id=\"{action}\">"))
        .unwrap_or_else(|| panic!("no {action}"));
    let body = &policy[start..start + policy[start..].find("</action>").unwrap()];
    assert!(body.contains("<allow_any>"), "{action} lacks allow_any");
    let profile = read("pam-configs/twofold");
    assert!(profile.contains("\trequired\tpam_twofold.so"));
    assert!(profile.contains("\toptional\tpam_twofold.so"));
    let auth: Vec<&str> = profile
        .lines()
        .skip_while(|l| *l != "Auth:")
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .collect();
    assert_eq!(
        auth,
        [
            "\t[success=1 default=ignore]\tpam_succeed_if.so service = twofold-password quiet",
            "\trequired\tpam_twofold.so"
        ]
    );
    for script in ["debian/postinst", "debian/prerm", "debian/postrm"] {
        let body = read(script);
        assert!(
            body.starts_with("#!/bin/sh\n") && body.contains("\nset -e\n"),
            "{script}"
        );
    }
    assert!(read("debian/prerm").contains("pam-auth-update --package --remove twofold"));
    assert!(read("debian/postinst").contains("pam-auth-update --package\n"));
}

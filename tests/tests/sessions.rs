//! Login sessions end to end: a real sshd on 127.0.0.1 (in a private mount namespace
//! whose /etc/pam.d is the test's own) with the real OpenSSH client, real sudo in
//! terminals, python-dbusmock's logind on the private bus, and the `twofold` CLI.
//!
//! Every test starts its own bus, daemon and (where needed) sshd and throwaway user, and
//! is bounded in time. Nothing of the host's /etc/pam.d, /etc/ssh or /etc/sudoers is
//! touched: they are replaced inside `unshare -m` only.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use twofold_tests::root_only;
use twofold_tests::wait_for;
use twofold_tests::{
    built, free_port, mmdb, signal, totp, wait_for_fresh_step, Enrolled, TestEnv, NOBODY,
};

// ------------------------------------------------------------------ helpers

/// useradd/userdel take a lock on /etc/passwd: one at a time, with retries.
static ACCOUNTS: Mutex<()> = Mutex::new(());
static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// A throwaway local user with a home and a shell; removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    _home: tempfile::TempDir,
}

fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    out
}

impl TestUser {
    fn new() -> TestUser {
        let name = format!(
            "tfs{}x{}",
            std::process::id(),
            NEXT_USER.fetch_add(1, Ordering::SeqCst)
        );
        let home = tempfile::Builder::new()
            .prefix("twofold-home")
            .tempdir()
            .unwrap();
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = None;
        for _ in 0..20 {
            let out = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-d"])
                .arg(home.path())
                .arg(&name)
                .output()
                .expect("useradd");
            if out.status.success() {
                last = None;
                break;
            }
            last = Some(out);
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(last.is_none(), "useradd failed: {last:?}");
        // A usable (non-locked) account without a password.
        run_ok(Command::new("usermod").args(["-p", "*", &name]));
        let id = run_ok(Command::new("id").args(["-u", &name]));
        let uid: u32 = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        run_ok(Command::new("chown").arg(format!("{uid}")).arg(home.path()));
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
        TestUser {
            name,
            uid,
            _home: home,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Processes of the throwaway user may linger a moment (ssh sessions being torn
        // down); end them, by pid, before removing the user.
        for pid in pids_of_uid(self.uid) {
            signal(pid, libc::SIGKILL);
        }
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..20 {
            let ok = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success() || s.code() == Some(6));
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Pids of the processes running as `uid` (real uid), from /proc.
fn pids_of_uid(uid: u32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|st| {
                    st.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
                })
                == Some(uid)
        })
        .collect()
}

/// Waits up to `limit` for the child to exit.
fn exited_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    wait_for(limit, || child.try_wait().ok().flatten())
}

/// The PAM lines of pam_twofold.so for this environment.
fn module_line(env: &TestEnv, kind: &str, control: &str, extra: &str) -> String {
    format!(
        "{kind} {control} {} bus={} daemon_uid=0 timeout=3 {extra}\n",
        built("libpam_twofold.so").display(),
        env.address
    )
}

/// `twofold sessions ... --json` as root for `user` (or as `as_uid` for themselves).
fn sessions_json(env: &TestEnv, args: &[&str], as_uid: Option<u32>) -> Vec<Value> {
    let mut all = vec!["sessions"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = env.cli(&all, as_uid, "");
    assert!(out.status.success(), "twofold {all:?}: {out:?}");
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("sessions --json: {e}: {out:?}"))
}

fn live_sessions(env: &TestEnv, user: &str) -> Vec<Value> {
    sessions_json(env, &["--user", user], None)
}

fn all_sessions(env: &TestEnv, user: &str) -> Vec<Value> {
    sessions_json(env, &["--all", "--user", user], None)
}

/// A real sshd on 127.0.0.1 whose /etc/pam.d is the test's own (private mount
/// namespace); stopped on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    key: PathBuf,
}

impl Sshd {
    fn start(env: &TestEnv, user: &TestUser, auth_extra: &str) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("twofold-sshd")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::create_dir_all("/run/sshd").unwrap();
        for key in ["hostkey", "userkey"] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        fs::copy(d.join("userkey.pub"), d.join("authorized_keys")).unwrap();
        fs::set_permissions(d.join("authorized_keys"), fs::Permissions::from_mode(0o644)).unwrap();
        let pamd = d.join("pam.d");
        fs::create_dir(&pamd).unwrap();
        let stack = module_line(env, "auth", "required", auth_extra)
            + "account required pam_permit.so\n"
            + &module_line(env, "session", "optional", "")
            + "session required pam_permit.so\n"
            + "password required pam_deny.so\n";
        fs::write(pamd.join("sshd"), stack).unwrap();
        fs::write(
            pamd.join("other"),
            "auth required pam_deny.so\naccount required pam_deny.so\n",
        )
        .unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n\
             UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
             PubkeyAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin no\n\
             UseDNS no\nAllowUsers {user}\nLogLevel VERBOSE\nPrintMotd no\nX11Forwarding no\n",
            d = d.display(),
            user = user.name
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        run_ok(
            Command::new("/usr/sbin/sshd")
                .arg("-t")
                .arg("-f")
                .arg(d.join("sshd_config")),
        );
        let script = format!(
            "mount --bind {pamd} /etc/pam.d && exec /usr/sbin/sshd -D -e -f {d}/sshd_config",
            pamd = pamd.display(),
            d = d.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("unshare + sshd");
        let mut sshd = Sshd {
            key: d.join("userkey"),
            dir,
            port,
            child,
        };
        let up = wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        if up.is_none() || sshd.child.try_wait().unwrap().is_some() {
            panic!("sshd did not start: {}", sshd.log());
        }
        sshd
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Starts `ssh USER@127.0.0.1 COMMAND`, answering the code prompt with `code` (an
    /// SSH_ASKPASS script: no terminal), with a pty on the server when `tty`.
    fn connect(&self, user: &TestUser, code: &str, tty: bool, command: &str) -> SshClient {
        let d = self.dir.path();
        let n = NEXT_USER.fetch_add(1, Ordering::SeqCst);
        let code_file = d.join(format!("code{n}"));
        fs::write(&code_file, format!("{code}\n")).unwrap();
        let askpass = d.join(format!("askpass{n}"));
        fs::write(
            &askpass,
            format!("#!/bin/sh\ncat {}\n", code_file.display()),
        )
        .unwrap();
        fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=no",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ServerAliveInterval=1",
                "-o",
                "ServerAliveCountMax=5",
                "-o",
                "LogLevel=ERROR",
            ]);
        if tty {
            cmd.arg("-tt");
        }
        cmd.arg(format!("{}@127.0.0.1", user.name))
            .arg(command)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // No controlling terminal: the prompt goes to SSH_ASKPASS.
        let mut setsid = Command::new("setsid");
        setsid.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                setsid.env(k, v);
            }
        }
        setsid
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = setsid.spawn().expect("ssh");
        let lines = spawn_reader(child.stdout.take().unwrap());
        SshClient {
            child,
            lines,
            seen: String::new(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        signal(self.child.id() as i32, libc::SIGTERM);
        if exited_within(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_reader(mut out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// A running `ssh` client.
struct SshClient {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl SshClient {
    /// Waits until the output contains `needle`; false on timeout or end of output.
    fn expect(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&chunk),
                Err(_) => return self.seen.contains(needle),
            }
        }
        true
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Waits for the client to see the connection end.
    fn closed_within(&mut self, limit: Duration) -> bool {
        let done = exited_within(&mut self.child, limit).is_some();
        while let Ok(chunk) = self.lines.try_recv() {
            self.seen.push_str(&chunk);
        }
        done
    }
}

impl Drop for SshClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `user` in over SSH with a fresh code; returns the client once the remote
/// command printed READY, and the session as the daemon lists it.
fn ssh_login(
    env: &TestEnv,
    sshd: &Sshd,
    user: &TestUser,
    secret: &str,
    tty: bool,
    command: &str,
) -> (SshClient, Value) {
    wait_for_fresh_step(10);
    let mut client = sshd.connect(user, &totp(secret, 0), tty, command);
    if !client.expect("READY", Duration::from_secs(20)) {
        let err = client.stderr();
        panic!(
            "ssh login failed: out={:?} err={err:?}\nsshd log:\n{}\ndaemon log:\n{}",
            client.seen,
            sshd.log(),
            env.log_text()
        );
    }
    let session = wait_for(Duration::from_secs(10), || {
        live_sessions(env, &user.name)
            .into_iter()
            .find(|s| s["service"] == "sshd")
    })
    .unwrap_or_else(|| panic!("no sshd session listed; daemon log:\n{}", env.log_text()));
    (client, session)
}

/// A tiny GeoIP database: 127.0.0.0/8 is in Loopville, Testland.
fn geoip_db(dir: &Path) -> PathBuf {
    let path = dir.join("geo.mmdb");
    let db = mmdb::build(&[mmdb::Network {
        address: [127, 0, 0, 0],
        prefix: 8,
        city: "Loopville".into(),
        country: "Testland".into(),
        iso_code: "TL".into(),
    }]);
    fs::write(&path, db).unwrap();
    path
}

/// Runs sessiondriver (as root, or `as_uid`) with a `session` stack of `lines`; returns
/// the child (the session leader, alive until its stdin closes) and its "open" line.
fn open_driver_session(
    env: &TestEnv,
    lines: &str,
    user: &str,
    extra: &[&str],
    as_uid: Option<u32>,
) -> (Child, String, BufReader<ChildStdout>) {
    let mut cmd = env.session_driver(lines, user, extra);
    if let Some(uid) = as_uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().expect("sessiondriver");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("open "), "sessiondriver said {line:?}");
    (child, line, out)
}

/// A new test user on an environment whose twofoldd.toml holds `config`, enrolled, and
/// an sshd for them.
fn enrolled_user_with_sshd(config: &str) -> (TestEnv, TestUser, Enrolled, Sshd) {
    let env = TestEnv::with_config(config);
    let user = TestUser::new();
    let enrolled = env.enroll(&user.name);
    let sshd = Sshd::start(&env, &user, "");
    (env, user, enrolled, sshd)
}

fn open_rc(line: &str) -> i32 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// ------------------------------------------------------------------ tests

#[test]
fn ssh_session_is_listed_with_its_origin_and_revoke_closes_the_connection() {
    root_only!();
    let geo = tempfile::tempdir().unwrap();
    let db = geoip_db(geo.path());
    let (env, user, enrolled, sshd) =
        enrolled_user_with_sshd(&format!("geoip_db = \"{}\"\n", db.display()));
    // Inside the session, the user's own `twofold sessions` marks it as current.
    let inside = format!(
        "{} --bus {} sessions --json; echo READY; exec sleep 600",
        built("twofold").display(),
        env.address
    );
    let (mut client, _) = ssh_login(&env, &sshd, &user, &enrolled.secret, false, &inside);

    let session = wait_for(Duration::from_secs(10), || {
        live_sessions(&env, &user.name)
            .into_iter()
            .find(|s| s["service"] == "sshd" && s["location"] != "")
    })
    .unwrap_or_else(|| panic!("no location; daemon log:\n{}", env.log_text()));
    assert_eq!(session["rhost"], "127.0.0.1", "{session}");
    assert_eq!(session["user"], user.name.as_str());
    assert_eq!(session["location"], "Loopville, Testland", "{session}");
    assert_eq!(session["country_code"], "TL");
    assert_eq!(session["rhost_name"], "localhost", "{session}");
    assert_eq!(
        session["auth_method"], "totp",
        "how the login passed: {session}"
    );
    assert!(session["leader_pid"].as_u64().unwrap() > 1);
    let id = session["id"].as_str().unwrap().to_string();

    // What the user saw inside: the same session, marked current.
    let json_start = client.seen.find('[').expect("sessions --json inside ssh");
    let json_end = client.seen.rfind(']').unwrap();
    let inside: Vec<Value> = serde_json::from_str(&client.seen[json_start..=json_end]).unwrap();
    let me = inside
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("listed inside");
    assert_eq!(me["current"], true, "{me}");

    // The user's own table (not JSON) shows where it comes from.
    let table = env.cli(&["sessions"], Some(user.uid), "");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&id) && text.contains("127.0.0.1 (localhost, Loopville, Testland)"),
        "{text}"
    );

    // The user revokes it: the SSH client sees the connection closed.
    let out = env.cli(&["sessions", "revoke", &id], Some(user.uid), "");
    assert!(out.status.success(), "revoke: {out:?}\n{}", env.log_text());
    assert!(
        client.closed_within(Duration::from_secs(15)),
        "the ssh client still runs after revoke; sshd log:\n{}",
        sshd.log()
    );
    assert!(live_sessions(&env, &user.name).is_empty());
    let ended = all_sessions(&env, &user.name);
    let ended = ended.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert!(
        ended["end_reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("revoked by uid {}", user.uid)),
        "{ended}"
    );
}

#[test]
fn session_timeout_warns_on_the_terminal_and_ends_the_session() {
    root_only!();
    let (env, user, enrolled, sshd) = enrolled_user_with_sshd("");
    let out = env.cli(&["sessions", "timeout", "8s"], Some(user.uid), "");
    assert!(out.status.success(), "timeout: {out:?}");
    // It promises what happens below: a warning at once (not "a minute before").
    let promise = String::from_utf8_lossy(&out.stdout);
    assert!(
        promise.contains("8 seconds after they start")
            && promise.contains("comes as soon as twofoldd sees the session")
            && !promise.contains("before"),
        "{promise}"
    );
    let started = Instant::now();
    let (mut client, session) = ssh_login(
        &env,
        &sshd,
        &user,
        &enrolled.secret,
        true,
        "echo READY; exec sleep 600",
    );
    assert!(session["expires"].is_string(), "{session}");
    assert!(
        client.expect("time limit", Duration::from_secs(10)),
        "no warning on the session's terminal: {:?}\n{}",
        client.seen,
        env.log_text()
    );
    assert!(
        client.closed_within(Duration::from_secs(25)),
        "the session outlived its timeout\n{}",
        env.log_text()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "ended too early"
    );
    let ended = wait_for(Duration::from_secs(10), || {
        let all = all_sessions(&env, &user.name);
        all.iter()
            .any(|s| {
                s["end_reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("timeout")
            })
            .then_some(all)
    });
    assert!(ended.is_some(), "{:?}", all_sessions(&env, &user.name));
    // Back to no timeout.
    let out = env.cli(&["sessions", "timeout", "off"], Some(user.uid), "");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_session_timeout_promises_only_what_the_daemon_does() {
    root_only!();
    let env = TestEnv::with_config("session_timeout = 3600\n");
    let said = |duration: &str| {
        let out = env.cli(
            &["sessions", "timeout", duration, "--user", "daemon"],
            None,
            "",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Longer than the administrator's hour: the hour applies, and says so.
    let long = said("8h");
    assert!(
        long.contains("of user daemon 60 minutes after they start")
            && long.contains("The administrator's limit, 60 minutes, is shorter and applies.")
            && long.contains("60 seconds before, it writes a warning"),
        "{long}"
    );
    // Shorter than the warning's minute: no "minute before".
    let short = said("20s");
    assert!(
        short.contains("20 seconds after they start")
            && !short.contains("before")
            && short.contains("as soon as twofoldd sees the session"),
        "{short}"
    );
}

#[test]
fn remembered_logins_are_shown_only_where_a_grace_window_is_configured() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled("daemon");
    let login = twofold_tests::Login::new("daemon", &totp(&enrolled.secret, 0));
    let out = env.pam(&login);
    assert_eq!(out.result, twofold_tests::pam::SUCCESS, "{out:?}");
    let pam_dir = env.dir.path().join("pam.d-grace");
    fs::create_dir(&pam_dir).unwrap();
    // What `twofold sessions` shows once `file` in pam_dir holds `stack`.
    let listed_after = |file: &str, stack: &str| {
        fs::write(pam_dir.join(file), stack).unwrap();
        let dir = pam_dir.to_str().unwrap();
        let out = env.cli(
            &["sessions", "--user", "daemon", "--pam-dir", dir],
            None,
            "",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let without = listed_after(
        "common-auth",
        "auth required pam_unix.so\nauth required pam_twofold.so nullok\n",
    );
    assert!(
        !without.contains("Remembered"),
        "no grace= anywhere:\n{without}"
    );
    let with = listed_after(
        "sudo",
        "@include common-auth\nauth required pam_twofold.so grace=300\n",
    );
    assert!(
        with.contains("Remembered logins") && with.contains("twofold-test locally"),
        "grace=300 in sudo:\n{with}"
    );
}

#[test]
fn kill_9_of_the_sessions_sshd_leaves_no_stale_record() {
    root_only!();
    let (env, user, enrolled, sshd) = enrolled_user_with_sshd("");
    let (client, session) = ssh_login(
        &env,
        &sshd,
        &user,
        &enrolled.secret,
        false,
        "echo READY; exec sleep 600",
    );
    let leader = session["leader_pid"].as_i64().unwrap() as i32;
    signal(leader, libc::SIGKILL);
    let gone = wait_for(Duration::from_secs(10), || {
        live_sessions(&env, &user.name).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "stale session after kill -9 of sshd {leader}\n{}",
        env.log_text()
    );
    let ended = all_sessions(&env, &user.name);
    assert!(
        ended[0]["end_reason"]
            .as_str()
            .unwrap()
            .starts_with("leader gone"),
        "{ended:?}"
    );
    // (sshd's unprivileged child may keep the connection up a while; not our concern.)
    drop(client);
}

#[test]
fn sudo_grace_window_spares_the_code_on_the_same_terminal_only() {
    root_only!();
    let env = TestEnv::new();
    let user = TestUser::new();
    let enrolled = env.enroll(&user.name);
    let dir = tempfile::Builder::new()
        .prefix("twofold-sudo")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let pamd = d.join("pam.d");
    fs::create_dir(&pamd).unwrap();
    let stack = module_line(&env, "auth", "required", "grace=300")
        + "account required pam_permit.so\n"
        + &module_line(&env, "session", "optional", "")
        + "session required pam_permit.so\n";
    fs::write(pamd.join("sudo"), stack).unwrap();
    fs::write(
        pamd.join("other"),
        "auth required pam_deny.so\naccount required pam_deny.so\n",
    )
    .unwrap();
    let sudoers = d.join("sudoers");
    fs::write(
        &sudoers,
        format!(
            "Defaults !lecture, timestamp_timeout=0, !fqdn, !use_pty\n\
             root ALL=(ALL:ALL) ALL\n{} ALL=(ALL:ALL) ALL\n",
            user.name
        ),
    )
    .unwrap();
    fs::set_permissions(&sudoers, fs::Permissions::from_mode(0o440)).unwrap();
    // Two terminals: two sudos on the first, one on the second.
    let driver = d.join("terminals.py");
    fs::write(&driver, TERMINALS_PY).unwrap();
    wait_for_fresh_step(20);
    let (code1, code2) = (totp(&enrolled.secret, 0), totp(&enrolled.secret, 1));
    let script = format!(
        "mount --bind {pamd} /etc/pam.d && mount --bind {sudoers} /etc/sudoers && \
         exec /usr/bin/python3 {driver} {uid} {code1} {code2}",
        pamd = pamd.display(),
        sudoers = sudoers.display(),
        driver = driver.display(),
        uid = user.uid
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exited_within(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "terminal driver failed: {out:?}\ndaemon log:\n{}",
                env.log_text()
            )
        });
    assert_eq!(report["first"]["prompted"], true, "{report}");
    assert_eq!(report["first"]["ok"], true, "{report}\n{}", env.log_text());
    assert_eq!(
        report["second"]["prompted"],
        false,
        "same terminal within grace= must not ask: {report}\n{}",
        env.log_text()
    );
    assert_eq!(report["second"]["ok"], true, "{report}");
    assert_eq!(
        report["other_tty"]["prompted"], true,
        "another terminal must ask: {report}"
    );
    assert_eq!(report["other_tty"]["ok"], true, "{report}");

    // The user sees the remembered login (the PAM directory has grace=), and can forget
    // it.
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let with_grace = ["sessions", "--pam-dir", pamd.to_str().unwrap()];
    let out = env.cli(&with_grace, Some(user.uid), "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Remembered") && text.contains("sudo on /dev/pts/"),
        "{text}"
    );
    let out = env.cli(&["sessions", "forget"], Some(user.uid), "");
    assert!(out.status.success(), "{out:?}");
    let out = env.cli(&with_grace, Some(user.uid), "");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Remembered"));

    // sudo opened sessions for root (ruser = the user), and they tell how each passed.
    let root_sessions = all_sessions(&env, "root");
    let methods: Vec<&str> = root_sessions
        .iter()
        .filter(|s| s["service"] == "sudo" && s["ruser"] == user.name.as_str())
        .map(|s| s["auth_method"].as_str().unwrap())
        .collect();
    let mut sorted = methods.clone();
    sorted.sort();
    assert_eq!(sorted, ["grace", "totp", "totp"], "{root_sessions:?}");
    assert!(
        root_sessions
            .iter()
            .filter(|s| s["service"] == "sudo")
            .all(|s| s["end_reason"] == "closed"),
        "{root_sessions:?}"
    );
}

/// Runs sudo as the test user in real terminals (ptys), answering the code prompt.
/// Prints one JSON line: for each run, whether it prompted and whether sudo succeeded.
const TERMINALS_PY: &str = r#"
import json, os, pty, select, sys, time
uid, code1, code2 = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def child(cmd):
    os.setgid(uid); os.setgroups([]); os.setuid(uid)
    os.execve("/bin/sh", ["sh", "-c", cmd], {"PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "dumb"})

def run(fd, marker, code, limit=20):
    out, prompted, deadline = b"", False, time.time() + limit
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"Verification code:" in chunk:
            prompted = True
            os.write(fd, (code if code else "000000").encode() + b"\n")
        if (marker + "-OK").encode() in out or (marker + "-FAIL").encode() in out:
            break
    return {"prompted": prompted, "ok": (marker + "-OK").encode() in out,
            "output": out.decode("utf-8", "replace")[-400:]}

two = "sudo -k true && echo ONE-OK || echo ONE-FAIL; read x; sudo -k true && echo TWO-OK || echo TWO-FAIL; read y"
pid1, fd1 = pty.fork()
if pid1 == 0:
    child(two)
first = run(fd1, "ONE", code1)
os.write(fd1, b"\n")
second = run(fd1, "TWO", None)
pid2, fd2 = pty.fork()
if pid2 == 0:
    child("sudo -k true && echo THREE-OK || echo THREE-FAIL; read z")
other = run(fd2, "THREE", code2)
for fd in (fd1, fd2):
    try:
        os.write(fd, b"\n")
    except OSError:
        pass
for p in (pid1, pid2):
    try:
        os.waitpid(p, 0)
    except ChildProcessError:
        pass
print(json.dumps({"first": first, "second": second, "other_tty": other}))
"#;

/// python-dbusmock's logind template on the test's bus (the daemon asks logind on the bus
/// it serves on, as logind is on the system bus), with `GetSessionByPID` answering
/// session `id` of `uid`, whose leader becomes the pid asked about. Returns the mock and
/// a `dbus-send` to it.
fn mock_logind<'a>(
    env: &'a TestEnv,
    id: &str,
    uid: u32,
    user: &str,
) -> (Child, impl Fn(&[&str]) -> std::process::Output + 'a) {
    let (mock, dbus_send) = twofold_tests::mock_logind_session(env, id, uid, user);
    let path = format!("/org/freedesktop/login1/session/{id}");
    let code = format!(
        "objects['{path}'].Set('org.freedesktop.login1.Session', 'Leader', \
         dbus.UInt32(args[0])); ret = '{path}'"
    );
    let add = dbus_send(&[
        "org.freedesktop.DBus.Mock.AddMethod",
        "string:org.freedesktop.login1.Manager",
        "string:GetSessionByPID",
        "string:u",
        "string:o",
        &format!("string:{code}"),
    ]);
    assert!(add.status.success(), "{add:?}");
    (mock, dbus_send)
}

#[test]
fn revoke_goes_through_logind_when_the_session_has_a_logind_id() {
    root_only!();
    let env = TestEnv::new();
    // logind says the leader leads its session c7 of daemon (uid 1); the PAM
    // environment's XDG_SESSION_ID (c42, which a user can set) is not asked about.
    let (mut mock, dbus_send) = mock_logind(&env, "c7", 1, "daemon");
    let lines = module_line(&env, "session", "optional", "") + "session required pam_permit.so\n";
    let (mut leader, line, _stdout) = open_driver_session(
        &env,
        &lines,
        "daemon",
        &["--tty", "tty3", "--env", "XDG_SESSION_ID=c42"],
        None,
    );
    assert_eq!(open_rc(&line), 0, "{line}");
    // logind's TerminateSession ends the session's processes: the mock does it too.
    let code = format!(
        "import os, signal; os.kill({}, signal.SIGTERM)",
        leader.id()
    );
    let add = dbus_send(&[
        "org.freedesktop.DBus.Mock.AddMethod",
        "string:org.freedesktop.login1.Manager",
        "string:TerminateSession",
        "string:s",
        "string:",
        &format!("string:{code}"),
    ]);
    assert!(add.status.success(), "{add:?}");
    let session = wait_for(Duration::from_secs(5), || {
        live_sessions(&env, "daemon").into_iter().next()
    })
    .unwrap_or_else(|| panic!("no session; daemon log:\n{}", env.log_text()));
    assert_eq!(session["logind_session"], "c7");
    assert_eq!(session["location"], "local");
    let out = env.cli(
        &["sessions", "revoke", session["id"].as_str().unwrap()],
        None,
        "",
    );
    assert!(out.status.success(), "{out:?}\n{}", env.log_text());
    let calls = dbus_send(&["org.freedesktop.DBus.Mock.GetCalls"]);
    let calls = String::from_utf8_lossy(&calls.stdout);
    assert!(
        calls.contains("TerminateSession") && calls.contains("c7") && !calls.contains("c42"),
        "{calls}"
    );
    assert!(exited_within(&mut leader, Duration::from_secs(5)).is_some());
    let ended = all_sessions(&env, "daemon");
    assert_eq!(
        ended[0]["end_reason"], "revoked by uid 0 (logind)",
        "{ended:?}"
    );
    let _ = mock.kill();
    let _ = mock.wait();
}

#[test]
fn users_cannot_see_or_end_other_users_sessions_nor_register_any() {
    root_only!();
    let env = TestEnv::new();
    let lines = module_line(&env, "session", "optional", "") + "session required pam_permit.so\n";
    let (mut leader, line, driver_out) =
        open_driver_session(&env, &lines, "daemon", &["--tty", "tty4"], None);
    assert_eq!(open_rc(&line), 0);
    let session = wait_for(Duration::from_secs(5), || {
        live_sessions(&env, "daemon").into_iter().next()
    })
    .expect("session registered");
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        session["leader_pid"].as_u64().unwrap(),
        u64::from(leader.id())
    );

    // nobody can neither list daemon's sessions nor end them.
    let out = env.cli(&["sessions", "--user", "daemon"], Some(NOBODY), "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = env.cli(&["sessions", "revoke", id], Some(NOBODY), "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no session"),
        "{out:?}"
    );
    let out = env.cli(
        &["sessions", "revoke", "--others", "--user", "daemon"],
        Some(NOBODY),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = env.cli(&["sessions", "--json"], Some(NOBODY), "");
    assert!(out.status.success(), "{out:?}");
    let own: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(own.is_empty(), "{own:?}");
    assert!(
        leader.try_wait().unwrap().is_none(),
        "the session must survive"
    );
    assert_eq!(live_sessions(&env, "daemon").len(), 1);

    // A non-root process cannot register a session (the module then steps aside).
    let (mut fake, line, _o) = open_driver_session(&env, &lines, "nobody", &[], Some(NOBODY));
    assert_eq!(
        open_rc(&line),
        0,
        "session lines must never break a login: {line}"
    );
    assert!(live_sessions(&env, "nobody").is_empty());
    assert!(
        env.log_text().contains("RegisterSession"),
        "the denial is logged"
    );
    drop(fake.stdin.take());
    let _ = fake.wait();

    // The leader closes its session: gone from the list, ended as "closed".
    drop(leader.stdin.take());
    let mut rest = String::new();
    let _ = driver_out.into_inner().read_to_string(&mut rest);
    leader.wait().unwrap();
    assert!(rest.starts_with("close 0"), "{rest}");
    assert!(live_sessions(&env, "daemon").is_empty());
    assert_eq!(all_sessions(&env, "daemon")[0]["end_reason"], "closed");
}

#[test]
fn session_hooks_ignore_an_absent_daemon_within_the_timeout() {
    root_only!();
    let env = TestEnv::new();
    let lines = format!(
        "session optional {} bus=unix:path={}/nothing-here timeout=1\nsession required pam_permit.so\n",
        built("libpam_twofold.so").display(),
        env.dir.path().display()
    );
    let started = Instant::now();
    let (mut leader, line, _stdout) = open_driver_session(&env, &lines, "daemon", &[], None);
    assert_eq!(open_rc(&line), 0, "{line}");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "no thread may outlive the hook: {line}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(leader.stdin.take());
    leader.wait().unwrap();
}

//! The bench's world: a private mount namespace whose `/etc/passwd` holds the bench
//! users (the daemon and the anchors resolve names through NSS; nothing on the host
//! changes), a private `dbus-daemon` carrying the shipped bus policy, and `twofoldd`.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First uid given to bench users.
pub const FIRST_UID: u32 = 200_000;

/// Name of the `i`th bench user.
pub fn user_name(i: usize) -> String {
    format!("tfb{i:06}")
}

/// Names of the first `count` bench users.
pub fn user_names(count: usize) -> Vec<String> {
    (0..count).map(user_name).collect()
}

/// Runs `command` to its end; an error names `what` (when it cannot start), or `what`
/// and `target` with the exit status (when it fails).
pub fn run(command: &mut Command, what: &str, target: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{what}: {e}"))?;
    if !status.success() {
        return Err(format!("{what} {target}: {status}"));
    }
    Ok(())
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Enters a private mount namespace whose `/etc` is a copy of the host's with `users`
/// extra accounts in `passwd`. The whole directory is bind-mounted, not the file: the
/// kernel detaches a mount whose mount point is renamed over in any namespace, and
/// `useradd` & co. replace `/etc/passwd` by rename. Must run before any thread starts.
pub fn enter_namespace(dir: &Path, users: usize, private_log: bool) -> Result<(), String> {
    let etc = dir.join("etc");
    run(
        Command::new("cp").arg("-a").arg("/etc").arg(&etc),
        "cp -a /etc",
        &etc.display().to_string(),
    )?;
    let passwd = etc.join("passwd");
    let mut out = fs::OpenOptions::new()
        .append(true)
        .open(&passwd)
        .map_err(|e| e.to_string())?;
    let mut buf = String::with_capacity(users * 64);
    for i in 0..users {
        let uid = FIRST_UID + i as u32;
        buf.push_str(&format!(
            "{}:x:{uid}:{uid}:twofold bench:/nonexistent:/usr/sbin/nologin\n",
            user_name(i)
        ));
    }
    out.write_all(buf.as_bytes()).map_err(|e| e.to_string())?;
    drop(out);
    fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    let hashed = hashed_passwd(dir, &etc)?;

    // SAFETY: unshare has no memory preconditions; the process is single-threaded here.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNS): {} (the bench needs root)",
            std::io::Error::last_os_error()
        ));
    }
    let root = cstr("/");
    // SAFETY: valid C strings; null source/type/data are allowed for a propagation change.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "make / private: {}",
            std::io::Error::last_os_error()
        ));
    }
    bind(&etc, Path::new("/etc"))?;
    if let Some(misc) = hashed {
        bind(&misc, Path::new(NSS_DB_DIR))?;
    }
    if private_log {
        private_dev()?;
    }
    Ok(())
}

/// Where libnss-db looks for its databases.
const NSS_DB_DIR: &str = "/var/lib/misc";

/// Whether `passwd` lookups in the namespace go through libnss-db's hashed database.
pub fn passwd_is_hashed() -> bool {
    Path::new("/usr/bin/makedb").exists() && Path::new(NSS_DB_DIR).is_dir()
}

/// With libnss-db installed, builds a hashed `passwd.db` of the namespace's passwd (the
/// way its /var/lib/misc/Makefile does) and puts `db` first for passwd in the private
/// nsswitch.conf: with 100,000 accounts, glibc's `files` backend reads the whole file
/// for each lookup of a late line (as much for any PAM module as for twofoldd), which a
/// site that size avoids with a hashed or cached NSS source (sssd, nscd, libnss-db).
/// Returns the directory to mount on /var/lib/misc.
fn hashed_passwd(dir: &Path, etc: &Path) -> Result<Option<PathBuf>, String> {
    if !passwd_is_hashed() {
        return Ok(None);
    }
    let misc = dir.join("nss-db");
    fs::create_dir_all(&misc).map_err(|e| e.to_string())?;
    let script = r#"awk 'BEGIN { FS=":"; OFS=":"; cnt=0 }
        /^[ \t]*$/ { next } /^[ \t]*#/ { next }
        { printf "0%u ", cnt++; print }
        /^[^#]/ { printf ".%s ", $1; print; printf "=%s ", $3; print }' "$1" |
        makedb --quiet -o "$2" -"#;
    run(
        Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(etc.join("passwd"))
            .arg(misc.join("passwd.db")),
        "makedb",
        "passwd.db",
    )?;
    let nsswitch = etc.join("nsswitch.conf");
    let conf = fs::read_to_string(&nsswitch).unwrap_or_default();
    let mut out: String = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with("passwd:"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str("passwd: db files\n");
    fs::write(&nsswitch, out).map_err(|e| e.to_string())?;
    Ok(Some(misc))
}

fn bind(src: &Path, dst: &Path) -> Result<(), String> {
    let (s, d) = (cstr(src.to_str().unwrap()), cstr(dst.to_str().unwrap()));
    // SAFETY: valid C strings; a bind mount takes no type or data.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "bind-mount {} on {}: {}",
            src.display(),
            dst.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Mounts a small private `/dev` (null, zero, full, random, urandom, tty) so that the
/// bench can serve `/dev/log`: on a machine without a syslog socket, glibc's `syslog`
/// falls back to writing `/dev/console` once any module has opened the log with
/// `LOG_CONS` (pam_google_authenticator does), which costs milliseconds per line.
fn private_dev() -> Result<(), String> {
    tmpfs("/dev", libc::MS_NOSUID, "mode=0755,size=1m")?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = cstr(&format!("/dev/{name}"));
        // SAFETY: valid C string; mknod of a character device as root.
        let rc = unsafe {
            libc::mknod(
                path.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mknod /dev/{name}: {}",
                std::io::Error::last_os_error()
            ));
        }
        fs::set_permissions(format!("/dev/{name}"), fs::Permissions::from_mode(0o666))
            .map_err(|e| e.to_string())?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, format!("/dev/{link}")).map_err(|e| e.to_string())?;
    }
    fs::create_dir("/dev/shm").map_err(|e| e.to_string())?;
    // A tmpfs of its own, as on a real host: the 1 MiB /dev above is too small for
    // PostgreSQL's dynamic shared memory (the fleet-mode phase).
    tmpfs(
        "/dev/shm",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777,size=256m",
    )?;
    fs::set_permissions("/dev/shm", fs::Permissions::from_mode(0o1777))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Mounts a private tmpfs (mode 0700, root's) on `path`, creating the directory; in the
/// bench's mount namespace, so that nothing outside sees it.
pub fn mount_tmpfs(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    tmpfs(
        path.to_str().unwrap(),
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0700,size=4g",
    )
}

/// Mounts a tmpfs on `target` with mount `flags` and `options` (its mode and size).
fn tmpfs(target: &str, flags: libc::c_ulong, options: &str) -> Result<(), String> {
    let (tmpfs, target_c, options) = (cstr("tmpfs"), cstr(target), cstr(options));
    // SAFETY: valid C strings for source, target, type and data.
    let rc = unsafe {
        libc::mount(
            tmpfs.as_ptr(),
            target_c.as_ptr(),
            tmpfs.as_ptr(),
            flags,
            options.as_ptr() as *const libc::c_void,
        )
    };
    if rc != 0 {
        return Err(format!(
            "tmpfs on {target}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Unmounts what [`mount_tmpfs`] mounted on `path` (its contents go with it).
pub fn unmount(path: &Path) {
    let target = cstr(path.to_str().unwrap());
    // SAFETY: a valid C string.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
}

/// Serves `/dev/log` (in the private `/dev`) like a syslog daemon that keeps up: every
/// datagram is read and counted.
pub fn syslog_sink() -> Result<std::sync::Arc<std::sync::atomic::AtomicU64>, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let sock =
        std::os::unix::net::UnixDatagram::bind("/dev/log").map_err(|e| format!("/dev/log: {e}"))?;
    fs::set_permissions("/dev/log", fs::Permissions::from_mode(0o666))
        .map_err(|e| e.to_string())?;
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while sock.recv(&mut buf).is_ok() {
            c.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(count)
}

/// A private bus with twofoldd on it.
pub struct World {
    pub dir: PathBuf,
    pub address: String,
    pub socket: PathBuf,
    bus: Option<Child>,
    daemon: Option<Child>,
    pub bin_dir: PathBuf,
    daemon_env: Vec<(String, String)>,
    /// twofoldd.toml's text; with a `storage = "postgres://…"` line the daemon runs
    /// without `--db` (fleet mode).
    config: String,
}

impl World {
    /// Starts the bus and the daemon; `policy` is the shipped bus policy file.
    pub fn start(
        dir: &Path,
        daemon_env: &[(String, String)],
        bin_dir: &Path,
    ) -> Result<World, String> {
        World::start_with_config(dir, daemon_env, bin_dir, "")
    }

    /// Like [`World::start`], with `config` as twofoldd.toml (a PostgreSQL `storage`
    /// line in it means fleet mode: no `--db`).
    pub fn start_with_config(
        dir: &Path,
        daemon_env: &[(String, String)],
        bin_dir: &Path,
        config: &str,
    ) -> Result<World, String> {
        let (bus, address) =
            twofold_tests::start_private_bus(dir, &twofold_tests::private_bus_config(dir))?;
        let state = dir.join("state");
        fs::create_dir_all(&state).map_err(|e| e.to_string())?;
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let mut world = World {
            dir: dir.to_path_buf(),
            address,
            socket: dir.join("bus"),
            bus: Some(bus),
            daemon: None,
            bin_dir: bin_dir.to_path_buf(),
            daemon_env: daemon_env.to_vec(),
            config: config.to_string(),
        };
        world.start_daemon()?;
        Ok(world)
    }

    /// The SQLite database twofoldd serves (`--db`).
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("state").join("twofold.db")
    }

    /// The at-rest key file twofoldd uses (`--key`).
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("state").join("secret.key")
    }

    /// Starts twofoldd and waits until it owns its name.
    pub fn start_daemon(&mut self) -> Result<(), String> {
        let config = self.dir.join("twofoldd.toml");
        fs::write(&config, &self.config).map_err(|e| e.to_string())?;
        let fleet = self
            .config
            .lines()
            .any(|l| l.trim_start().starts_with("storage") && l.contains("postgres"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("twofoldd.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(self.bin_dir.join("twofoldd"))
            .args(self.daemon_args(&self.address, fleet))
            .envs(self.daemon_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("twofoldd: {e}"))?;
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.name_has_owner() {
            let exited = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "twofoldd did not start ({exited:?}); its log:\n{}\ndbus-daemon's log:\n{}",
                    fs::read_to_string(self.dir.join("twofoldd.log")).unwrap_or_default(),
                    fs::read_to_string(self.dir.join("dbus-daemon.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// twofoldd's arguments on the bus at `bus`.
    fn daemon_args(&self, bus: &str, fleet: bool) -> Vec<String> {
        let mut args = vec![
            "--bus".to_string(),
            bus.to_string(),
            "--socket".to_string(),
            self.direct_socket().display().to_string(),
        ];
        if !fleet {
            args.extend(["--db".to_string(), self.db_path().display().to_string()]);
        }
        args.extend([
            "--key".to_string(),
            self.key_path().display().to_string(),
            "--config".to_string(),
            self.dir.join("twofoldd.toml").display().to_string(),
            "--log-stderr".to_string(),
        ]);
        args
    }

    /// twofoldd's direct socket (D-Bus peer to peer).
    pub fn direct_socket(&self) -> PathBuf {
        self.dir.join("run/twofoldd.socket")
    }

    /// A second bus (in `DIR/activation`) that starts this world's twofoldd, on the
    /// same database and direct socket, when a client asks for its name. Only while the
    /// world's own daemon is stopped (one daemon per database).
    pub fn activation_bus(&self) -> Result<ActivationBus, String> {
        assert!(self.daemon.is_none(), "stop the daemon first");
        let dir = self.dir.join("activation");
        let services = dir.join("services");
        fs::create_dir_all(&services).map_err(|e| e.to_string())?;
        let address = format!("unix:path={}", dir.join("bus").display());
        let exec = std::iter::once(self.bin_dir.join("twofoldd").display().to_string())
            .chain(self.daemon_args(&address, false))
            .collect::<Vec<_>>()
            .join(" ");
        fs::write(
            services.join("org.twofold.Twofold1.service"),
            format!("[D-BUS Service]\nName=org.twofold.Twofold1\nExec={exec}\nUser=root\n"),
        )
        .map_err(|e| e.to_string())?;
        let extra = format!("<servicedir>{}</servicedir>", services.display());
        let config = twofold_tests::private_bus_config_with(&dir, &extra);
        let (bus, _) = twofold_tests::start_private_bus(&dir, &config)?;
        Ok(ActivationBus {
            bus,
            address,
            socket: dir.join("bus"),
        })
    }

    /// Pid of twofoldd.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    fn name_has_owner(&self) -> bool {
        twofold_tests::name_has_owner_on(&self.address)
    }

    /// Stops twofoldd (SIGTERM) and waits.
    pub fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Stops the bus (SIGTERM) and waits.
    pub fn stop_bus(&mut self) {
        if let Some(mut child) = self.bus.take() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// A bus that starts twofoldd on demand (see [`World::activation_bus`]); dropping it
/// stops whatever twofoldd it started, then the bus.
pub struct ActivationBus {
    bus: Child,
    pub address: String,
    /// The bus's socket (for `bus=unix:path=…`).
    pub socket: PathBuf,
}

impl ActivationBus {
    /// The pid of the owner of org.twofold.Twofold1 on this bus, if it has one.
    pub fn owner_pid(&self) -> Option<i32> {
        twofold_tests::owner_pid_on(&self.address)
    }
}

impl Drop for ActivationBus {
    fn drop(&mut self) {
        if let Some(pid) = self.owner_pid() {
            // SAFETY: kill has no memory preconditions; pid is the daemon the bus started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            // Not our child (the bus's): wait until it is gone, a few seconds at most.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.bus.id() as i32, libc::SIGTERM) };
        let _ = self.bus.wait();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_daemon();
        self.stop_bus();
    }
}

/// What the resident memory of `pid` is made of, and its thread count (for the log).
pub fn memory_breakdown(pid: u32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["RssAnon:", "RssFile:", "RssShmem:", "Threads:"]
        .iter()
        .filter_map(|name| {
            let line = status.lines().find(|l| l.starts_with(name))?;
            Some(line.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect::<Vec<_>>()
        .join(", ")
        + &largest_mappings(pid)
}

/// The five mappings of `pid` with the most resident memory, summed by file.
fn largest_mappings(pid: u32) -> String {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut by_name: std::collections::HashMap<String, u64> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            current = fields.get(5).map_or("[anon]".into(), |s| s.to_string());
        } else if fields.first() == Some(&"Rss:") {
            *by_name.entry(current.clone()).or_default() += fields
                .get(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    let mut top: Vec<_> = by_name.into_iter().collect();
    top.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    top.truncate(5);
    let list: Vec<String> = top
        .iter()
        .map(|(name, kib)| format!("{name} {kib} kB"))
        .collect();
    format!("; largest: {}", list.join(", "))
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Run time of each thread of `pid` (ns, from `/proc/PID/task/*/schedstat`).
pub fn thread_times(pid: u32) -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let ns = fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            out.insert(tid, ns);
        }
    }
    out
}

/// CPU seconds the threads of `pid` ran since `before` (threads that exited meanwhile
/// were idle: tokio retires blocking threads after 10 s without work).
pub fn cpu_since(pid: u32, before: &std::collections::HashMap<u32, u64>) -> f64 {
    thread_times(pid)
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(*before.get(tid).unwrap_or(&0)))
        .sum::<u64>() as f64
        / 1e9
}

//! The private bus: its configuration, D-Bus clients of the daemon, calls as other
//! users, what the bus says about twofold's name, and a logind stand-in on it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::contract;
use crate::env::TestEnv;
use crate::host::{repo_root, wait_for};
use crate::polkit::spawn_dbusmock;

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

/// Starts a private dbus-daemon with `config` (written to DIR/bus.conf, its log in
/// DIR/dbus-daemon.log); returns it and the address it printed (also used by the bench).
pub fn start_private_bus(dir: &Path, config: &str) -> Result<(Child, String), String> {
    let conf = dir.join("bus.conf");
    fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
    let log = fs::File::create(dir.join("dbus-daemon.log")).map_err(|e| e.to_string())?;
    let mut bus = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("dbus-daemon (must be installed): {e}"))?;
    let mut line = String::new();
    BufReader::new(bus.stdout.take().expect("piped"))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let address = line.trim().to_string();
    if !address.starts_with("unix:") {
        return Err(format!("dbus-daemon printed {address:?}"));
    }
    Ok((bus, address))
}

/// D-Bus clients of the daemon for the end-to-end tests.
pub mod client {
    use crate::contract::{OathParams, TwofoldError, TwofoldProxy};
    use crate::totp;

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
            .enroll_begin(user, "hostile", "", &OathParams::app())
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
                .build()
                .await
                .unwrap();
            let proxy = contract::TwofoldProxy::new(&conn).await.unwrap();
            f(&proxy).await
        })
    }

    /// Calls a method of twofoldd with `dbus-send` as `uid`; (success, output).
    pub fn dbus_send_as(&self, uid: u32, method: &str, args: &[&str]) -> (bool, String) {
        let mut cmd = dbus_send_to(&self.address, "org.twofold.Twofold1");
        cmd.arg("/org/twofold/Twofold1")
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
        dbus_send_to(&env.address, "org.freedesktop.login1")
            .arg("/org/freedesktop/login1")
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

/// `dbus-send --print-reply` to `dest` on the bus at `address`; the caller adds any
/// other option, then the object path, the method and its arguments.
pub fn dbus_send_to(address: &str, dest: &str) -> Command {
    let mut cmd = Command::new("dbus-send");
    cmd.arg(format!("--bus={address}"))
        .arg("--print-reply")
        .arg(format!("--dest={dest}"));
    cmd
}

/// The bus daemon at `address`'s reply (as `dbus-send --print-reply` prints it) to
/// `method` of org.freedesktop.DBus about org.twofold.Twofold1.
pub fn ask_bus_about_our_name(address: &str, method: &str) -> String {
    let out = dbus_send_to(address, "org.freedesktop.DBus")
        .arg("/org/freedesktop/DBus")
        .arg(format!("org.freedesktop.DBus.{method}"))
        .arg("string:org.twofold.Twofold1")
        .output()
        .expect("dbus-send");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether org.twofold.Twofold1 has an owner on the bus at `address`.
pub fn name_has_owner_on(address: &str) -> bool {
    ask_bus_about_our_name(address, "NameHasOwner").contains("boolean true")
}

/// The pid of whatever owns org.twofold.Twofold1 on the bus at `address`, if anything.
pub fn owner_pid_on(address: &str) -> Option<i32> {
    let text = ask_bus_about_our_name(address, "GetConnectionUnixProcessID");
    text.split_whitespace().last()?.parse().ok()
}

//! A python-dbusmock polkitd on the test bus, granting what a test allows.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bus::dbus_send_to;
use crate::env::TestEnv;

/// A python-dbusmock polkitd on a test bus; killed on drop.
pub struct PolkitMock {
    child: Child,
    address: String,
}

/// python-dbusmock's `template` as a system service on `env`'s bus.
pub(crate) fn spawn_dbusmock(env: &TestEnv, template: &str) -> Child {
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
        let out = dbus_send_to(&self.address, "org.freedesktop.DBus")
            .args([
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
        let out = dbus_send_to(&self.address, "org.freedesktop.PolicyKit1")
            .args([
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

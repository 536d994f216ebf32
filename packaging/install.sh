#!/usr/bin/env bash
# Builds twofold's .deb from this checkout and installs it on this machine (Debian or
# Ubuntu) with dpkg, like any package: twofoldd, the twofold CLI, pam_twofold.so, the bus
# policy and activation file, the systemd unit, polkit actions and the pam-auth-update
# profile. Then it makes sure the system bus runs (it starts dbus-daemon itself on
# machines without systemd, such as containers) and that twofoldd answers, started by
# D-Bus activation. /etc/pam.d is not changed: the profile is off until you enable it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install.sh: $*"; }
[ "$(id -u)" -eq 0 ] || { say "run as root (sudo packaging/install.sh)" >&2; exit 1; }
if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
    say "this installs a .deb (Debian/Ubuntu). On RPM systems build an .rpm with" >&2
    say "packaging/build-packages.sh --rpm and see \"Packages\" in README.md" >&2
    exit 1
fi

# What building needs (dpkg-dev: cargo-deb computes the package's dependencies with
# dpkg-shlibdeps), and what the package depends on.
. packaging/build-env.sh
need_packages install.sh libpam0g-dev gcc pkg-config binutils dpkg-dev dbus dbus-daemon dbus-bin libpam-runtime
need_cargo install.sh
need_cargo_deb install.sh

say "building the .deb (release)"
deb=$(packaging/build-packages.sh --deb)
say "installing $deb"
# --force-confold: a config file you changed (or one an older install.sh left) is kept;
# the packaged version lands next to it as *.dpkg-dist.
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confdef --force-confold "$deb"

bus_answers() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetId >/dev/null 2>&1
}
if ! bus_answers; then
    if [ -d /run/systemd/system ]; then
        systemctl start dbus.service
    else
        # No systemd (containers): run the system bus ourselves.
        rm -f /run/dbus/pid
        mkdir -p /run/dbus
        dbus-uuidgen --ensure
        dbus-daemon --system --fork
        say "started the system bus (dbus-daemon --system)"
    fi
fi

# A configuration error stops here, with the file, line and key, rather than at the
# daemon's start.
if ! /usr/sbin/twofoldd --check-config; then
    say "fix /etc/twofold/twofoldd.toml (twofoldd --check-config says what), then run this again"
    exit 1
fi

# A twofoldd still running a binary this install replaced (for example one started
# from an earlier install.sh; package upgrades restart it themselves) is stopped, so
# that D-Bus activation starts the new one.
owner_pid=$(dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.twofold.Twofold1 2>/dev/null |
    awk '/uint32/ {print $2}') || true
if [ -n "${owner_pid:-}" ] && [ "$(readlink "/proc/$owner_pid/exe" 2>/dev/null)" != /usr/sbin/twofoldd ]; then
    say "stopping twofoldd (pid $owner_pid), which runs an older binary"
    if [ -d /run/systemd/system ]; then
        systemctl restart twofoldd.service
    else
        kill -TERM "$owner_pid"
        for _ in $(seq 50); do [ -d "/proc/$owner_pid" ] || break; sleep 0.1; done
    fi
fi

# Start twofoldd through D-Bus activation, as any client would, and ask it something.
dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.StartServiceByName string:org.twofold.Twofold1 uint32:0 >/dev/null
twofold status >/dev/null
say "twofold is installed and twofoldd answers on the system bus (D-Bus activation)."
cat <<'NEXT'

Next steps:
  1. Each user who will log in with 2FA, as that user (not as root):
         twofold enroll
  2. Then turn the module on for every login that includes common-auth
     (sudo, su, sshd, console), keeping a root shell open while you try it:
         sudo pam-auth-update --enable twofold
     Users who have not enrolled are then refused; see README.md, "Packages".
  3. For sshd, also allow keyboard-interactive in /etc/ssh/sshd_config (a key,
     then password and code), then reload sshd:
         UsePAM yes
         KbdInteractiveAuthentication yes
         AuthenticationMethods publickey,keyboard-interactive
  Locked out? See README.md, "Locked out?".
  To turn it off again: sudo pam-auth-update --disable twofold
  To uninstall: sudo apt-get purge twofold (keeps the enrollments unless
  TWOFOLD_PURGE_STATE=yes is set; see README.md).
NEXT

#!/usr/bin/env bash
# Builds twofold from this checkout and installs it on this machine (Debian/Ubuntu),
# then makes sure the system bus runs and twofoldd answers on it (D-Bus activation).
# PAM is not touched: add the pam_twofold.so line yourself once you have enrolled.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo packaging/install.sh)" >&2; exit 1; }

need=()
for p in libpam0g-dev dbus dbus-daemon dbus-bin gcc pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    echo "install.sh: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo >/dev/null || { echo "install.sh: cargo not found; install Rust >= 1.85 (rustup.rs)" >&2; exit 1; }

cargo build --release --locked -p twofoldd -p twofold-cli -p pam_twofold

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
pamdir=/usr/lib/$multiarch/security
[ -d "$pamdir" ] || pamdir=$(dirname "$(find /usr/lib /lib -name pam_unix.so -print -quit)")

install -D -m 0755 target/release/twofoldd /usr/sbin/twofoldd
install -D -m 0755 target/release/twofold /usr/bin/twofold
install -D -m 0644 target/release/libpam_twofold.so "$pamdir/pam_twofold.so"
install -D -m 0644 packaging/dbus/org.twofold.Twofold1.conf /usr/share/dbus-1/system.d/org.twofold.Twofold1.conf
install -D -m 0644 packaging/dbus/org.twofold.Twofold1.service /usr/share/dbus-1/system-services/org.twofold.Twofold1.service
install -d -m 0755 /etc/twofold
[ -e /etc/twofold/twofoldd.toml ] || install -m 0644 packaging/twofoldd.toml /etc/twofold/twofoldd.toml
install -d -m 0700 /var/lib/twofold

if [ -d /run/systemd/system ]; then
    install -D -m 0644 packaging/systemd/twofoldd.service /lib/systemd/system/twofoldd.service
    systemctl daemon-reload
    systemctl reload dbus 2>/dev/null || systemctl restart dbus
else
    # No systemd (containers): run the system bus ourselves if nobody does.
    if ! dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1; then
        rm -f /run/dbus/pid
        mkdir -p /run/dbus
        dbus-uuidgen --ensure
        dbus-daemon --system --fork
        echo "install.sh: started the system bus (dbus-daemon --system)"
    else
        dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig >/dev/null
    fi
fi

# A twofoldd from an earlier install keeps the old binary: replace it.
if dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
        string:org.twofold.Twofold1 2>/dev/null | grep -q 'boolean true'; then
    if [ -d /run/systemd/system ]; then systemctl restart twofoldd; else pkill -x twofoldd || true; sleep 0.5; fi
fi
# Start twofoldd through D-Bus activation, as any client would.
dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.StartServiceByName \
    string:org.twofold.Twofold1 uint32:0 >/dev/null
twofold status >/dev/null
echo "twofold is installed and twofoldd answers on the system bus."
cat <<'NEXT'

Next steps:
  1. As each user who will log in with 2FA:   twofold enroll
  2. Then require a code, e.g. for sudo: add this line to /etc/pam.d/sudo after
     "@include common-auth":
         auth required pam_twofold.so
     (for sshd, see README.md: keyboard-interactive must be on).
Keep a root shell open while you try it, so that a mistake cannot lock you out.
NEXT

# twofold %post ($1: 1 on first install, 2 on upgrade). rpm runs this with /bin/sh.
install -d -m 0755 -o root -g root /etc/twofold
install -d -m 0700 -o root -g root /var/lib/twofold
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # Fedora/RHEL: dbus.service is an alias of dbus-broker.service; both reload.
    systemctl reload dbus.service >/dev/null 2>&1 || :
    # The direct socket (pam_twofold.so tries it before the bus): on at boot, and now.
    systemctl enable --now twofoldd.socket >/dev/null 2>&1 || :
    if [ "$1" -ge 2 ]; then
        systemctl try-restart twofoldd.service >/dev/null 2>&1 || :
    fi
elif [ -S /run/dbus/system_bus_socket ] && command -v dbus-send >/dev/null 2>&1; then
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    echo "twofold: installed. Each user enrolls with 'twofold enroll'; then turn the module on"
    echo "twofold: with an authselect custom profile, see /usr/share/doc/twofold/README.md."
fi
exit 0

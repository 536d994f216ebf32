# twofold %preun ($1: 0 when the package is erased, 1 on upgrade).
# Erasing the package while a PAM stack still names pam_twofold.so would leave a
# "required" line pointing at a missing module, which fails every login it guards.
# authselect profiles belong to the administrator, so refuse and say what to do instead.
if [ "$1" -eq 0 ]; then
    users=$(grep -lsE '^[[:space:]]*[^#[:space:]].*pam_twofold\.so' /etc/pam.d/* 2>/dev/null || :)
    if [ -n "$users" ]; then
        echo "twofold: these PAM files still use pam_twofold.so:" $users >&2
        echo "twofold: switch back first (e.g. 'authselect select local --force', or your previous" >&2
        echo "twofold: profile from 'authselect current'), then remove twofold again." >&2
        exit 1
    fi
    if [ -d /run/systemd/system ]; then
        systemctl disable --now twofoldd.socket >/dev/null 2>&1 || :
        systemctl stop twofoldd.service >/dev/null 2>&1 || :
    else
        pid=$(pidof -s /usr/sbin/twofoldd 2>/dev/null || :)
        [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || :
    fi
fi
exit 0

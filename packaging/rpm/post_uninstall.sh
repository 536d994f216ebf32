# twofold %postun ($1: 0 when the package is erased, 1 on upgrade).
# The enrollment database and its key stay unless TWOFOLD_PURGE_STATE=yes is set in the
# environment of `rpm -e`/`dnf remove` (or /etc/twofold/purge-state exists): without them
# every user must enroll again.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || :
    fi
    if [ "${TWOFOLD_PURGE_STATE:-}" = yes ] || [ -e /etc/twofold/purge-state ]; then
        rm -rf /var/lib/twofold
        rm -f /etc/twofold/secret.key /etc/twofold/purge-state
    fi
    rmdir /etc/twofold 2>/dev/null || :
fi
exit 0

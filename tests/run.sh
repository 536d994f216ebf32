#!/usr/bin/env bash
# Runs every twofold test: installs the system packages the tests need when they are
# missing (Debian/Ubuntu), builds the whole workspace, then runs unit and end-to-end
# tests. End-to-end tests need root (a private dbus-daemon, libpam, other uids); run as
# a normal user they are skipped with a message, under CI=true they must run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libpam0g-dev dbus dbus-daemon dbus-bin pamtester oathtool openssh-server openssh-client
          sudo zbar-tools bubblewrap util-linux pkg-config gcc python3-dbusmock groff-base)
# tests/tests/package.rs: cargo-deb (dpkg-shlibdeps, strip), rpmbuild and rpm (package rpm),
# dpkg and rpm in a throwaway root,
# lintian, ps and useradd there.
packages+=(procps passwd libpam-runtime lintian rpm dpkg-dev binutils)
# tests/tests/units.rs: systemd-analyze verify and security --offline of the units.
packages+=(systemd)
# tests/tests/fleet.rs: a real PostgreSQL server (started with pg_ctl on a temporary data
# directory, TLS with a certificate made by openssl); the daemon links OpenSSL for TLS.
packages+=(postgresql postgresql-client openssl libssl-dev)
# tests/tests/logging.rs: fail2ban-regex checks packaging/fail2ban/twofold.conf.
packages+=(fail2ban)
. packaging/build-env.sh
need_packages tests/run.sh "${packages[@]}"
need_cargo tests/run.sh
# The package tests build the .deb with cargo-deb (pinned: its output is tested); the
# .rpm with rpmbuild (package rpm).
need_cargo_deb tests/run.sh

cargo build --workspace --all-targets --locked
# The SQLite-only daemon (no PostgreSQL, GeoIP or reverse DNS: no OpenSSL) builds and
# passes its own tests too.
cargo clippy -p twofoldd --no-default-features --all-targets --locked --quiet -- -D warnings
cargo test -p twofoldd --no-default-features --locked --quiet --lib
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# End-to-end tests mostly wait (on daemons, on TOTP steps): run more of them than cores.
status=0
cargo test --workspace --locked --no-fail-fast --lib --bins --tests -- --test-threads=6 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
skipped=$(grep -c '^SKIPPED' "$log" || true)
echo "tests: $passed passed, $failed failed, $skipped skipped" | tee "${TWOFOLD_SUMMARY_FILE:-/dev/null}"
exit "$status"

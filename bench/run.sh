#!/usr/bin/env bash
# twofold's benchmark: pam_twofold.so + twofoldd against pam_google_authenticator.so and
# pam_oath.so, in one run (see README "Benchmarks"): logins, module load, 32-process
# throughput, the bus-fallback path, an absent and an activatable daemon. Needs root: it
# enters a private mount namespace (bench users in a bind-mounted /etc/passwd; the
# host's files are not changed) and runs a root daemon on a private bus and socket.
#   sudo bench/run.sh [--users N] [--small N] [--fleet-users N] [--steps S] [--big-users M]
#                     [--seed-in-place] [--clients C]
# --big-users M (default 100000; any value <= --users skips it): after the side-by-side
# run the bench stops twofoldd, seeds users up to M straight into its database through
# the daemon's own store code (every seeded user shares one set of 10 backup-code
# hashes: Argon2 for a million codes would take hours; the transactions are committed
# on a tmpfs copy that then replaces the database, unless --seed-in-place), restarts it,
# and measures the login p50, the daemon's RSS and the throughput with M users enrolled.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql: the fleet-mode figure (twofoldd on a PostgreSQL store, started by the bench).
# libnss-db: hashed passwd lookups for the 100,000 bench accounts (see bench/src/env.rs).
packages=(libpam0g-dev dbus-daemon dbus-bin oathtool libpam-google-authenticator libpam-oath
    postgresql libnss-db)
. packaging/build-env.sh
need_packages bench/run.sh "${packages[@]}"
need_cargo bench/run.sh
cargo build --release --locked -p twofoldd -p twofold-bench
# The module on its own, as the packages build it (packaging/build-packages.sh): its zbus
# is then only the wire format.
cargo build --release --locked -p pam_twofold
target=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
exec "$target/release/twofold-bench" --bin-dir "$target/release" "$@"

# Sourced by packaging/install.sh, tests/run.sh and bench/run.sh: what building twofold
# needs on this machine, each step written once. `need_packages WHO PKG...` installs the
# Debian packages that are missing (through sudo unless root); `need_cargo WHO` stops with
# one line when there is no Rust toolchain; `need_cargo_deb WHO` installs the pinned
# cargo-deb (the package tests check its output).

need_packages() {
    local who=$1 p
    shift
    local missing=() sudo=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    echo "$who: installing ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

need_cargo() {
    command -v cargo >/dev/null || { echo "$1: cargo not found; install Rust >= 1.89 (rustup.rs)" >&2; exit 1; }
}

need_cargo_deb() {
    local pinned=cargo-deb@3.8.0
    command -v cargo-deb >/dev/null && return 0
    echo "$1: installing $pinned (cargo install --locked)"
    cargo install --locked --quiet "$pinned"
}

# The Rust toolchain: under sudo, the
# secure_path hides the invoking user's rustup toolchain (~/.cargo/bin): use that
# toolchain read-only (RUSTUP_HOME), while cargo's own downloads and installed tools stay
# in root's CARGO_HOME, so nothing root-owned lands in the user's home.
if ! command -v cargo >/dev/null 2>&1; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ]; then
        sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        if [ -n "$sudo_home" ] && [ -x "$sudo_home/.cargo/bin/cargo" ]; then
            PATH="$PATH:$sudo_home/.cargo/bin"
            export RUSTUP_HOME="${RUSTUP_HOME:-$sudo_home/.rustup}"
        fi
    fi
    export PATH
fi

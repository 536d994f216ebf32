# Sourced by packaging/install.sh, tests/run.sh and bench/run.sh. Under sudo, the
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

#!/usr/bin/env bash
# Builds twofold's packages from this checkout: the .deb (cargo-deb) and/or the .rpm
# (cargo-generate-rpm). Prints the path of each package built, one per line, on stdout.
#
#   packaging/build-packages.sh [--deb] [--rpm] [--profile NAME] [--no-build] [--out DIR]
#
# Neither --deb nor --rpm: both. --profile: the Cargo profile (default release; the tests
# use dev with --no-build to package what they already built). --out: where the packages
# go (default target/packages). Needs cargo-deb / cargo-generate-rpm:
#   cargo install cargo-deb cargo-generate-rpm --locked
set -euo pipefail
cd "$(dirname "$0")/.."

deb=0 rpm=0 profile=release build=1 out=
while (($#)); do
    case "$1" in
        --deb) deb=1 ;;
        --rpm) rpm=1 ;;
        --profile) profile=$2; shift ;;
        --no-build) build=0 ;;
        --out) out=$2; shift ;;
        *) echo "build-packages.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
((deb || rpm)) || deb=1 rpm=1

target=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || { echo "build-packages.sh: cannot find cargo's target directory" >&2; exit 1; }
case "$profile" in dev|debug) profdir=debug ;; *) profdir=$profile ;; esac
built=$target/$profdir
out=${out:-$target/packages}
mkdir -p "$out"

if ((build)); then
    cargo build --locked --profile "$profile" -p twofoldd -p twofold-cli -p pam_twofold >&2
fi
for f in twofoldd twofold libpam_twofold.so; do
    [ -f "$built/$f" ] || { echo "build-packages.sh: $built/$f is missing (build first)" >&2; exit 1; }
done

# Files under /usr/share, staged with their final layout: the README always; man pages
# and shell completions when packaging/man and packaging/completions provide them.
share=$built/twofold-share
rm -rf "$share"
install -D -m 0644 README.md "$share/doc/twofold/README.md"
if [ -d packaging/man ]; then
    for page in packaging/man/*; do
        [ -f "$page" ] || continue
        name=$(basename "$page" .gz)
        section=${name##*.}
        case "$section" in [1-8]) ;; *) continue ;; esac
        mkdir -p "$share/man/man$section"
        # Compressed, as Debian policy wants (cargo-deb leaves staged files alone);
        # -n: no name or time stamp inside, so that builds are reproducible.
        case "$page" in
            *.gz) install -m 0644 "$page" "$share/man/man$section/$name.gz" ;;
            *) gzip -9n -c "$page" > "$share/man/man$section/$name.gz"; chmod 0644 "$share/man/man$section/$name.gz" ;;
        esac
    done
fi
if [ -d packaging/completions ]; then
    for file in packaging/completions/*; do
        [ -f "$file" ] || continue
        case "$(basename "$file")" in
            _*) install -D -m 0644 "$file" "$share/zsh/vendor-completions/$(basename "$file")" ;;
            *.fish) install -D -m 0644 "$file" "$share/fish/vendor_completions.d/$(basename "$file")" ;;
            *.bash|*.bash-completion) n=$(basename "$file"); install -D -m 0644 "$file" "$share/bash-completion/completions/${n%%.*}" ;;
            *.*) ;; # other shells: not packaged
            *) install -D -m 0644 "$file" "$share/bash-completion/completions/$(basename "$file")" ;;
        esac
    done
fi

if ((deb)); then
    command -v cargo-deb >/dev/null || { echo "build-packages.sh: cargo-deb missing: cargo install cargo-deb --locked" >&2; exit 1; }
    variant=()
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    case "$arch" in
        amd64) ;;
        arm64) variant=(--variant arm64) ;;
        *) echo "build-packages.sh: no .deb layout for $arch yet (see [package.metadata.deb] in daemon/Cargo.toml)" >&2; exit 1 ;;
    esac
    # The tests package an unoptimized build: compress it quickly.
    fast=(); [ "$profdir" = debug ] && fast=(--fast)
    # cargo-deb prints the path of the package it wrote.
    cargo deb --locked -p twofoldd --no-build --profile "$profile" "${variant[@]}" "${fast[@]}" \
        --output "$out" -q | tail -n 1
fi

if ((rpm)); then
    command -v cargo-generate-rpm >/dev/null || { echo "build-packages.sh: cargo-generate-rpm missing: cargo install cargo-generate-rpm --locked" >&2; exit 1; }
    # cargo-generate-rpm packs binaries as they are: strip copies (not the build outputs).
    stripped=$built/twofold-stripped
    rm -rf "$stripped" && mkdir -p "$stripped"
    for f in twofoldd twofold libpam_twofold.so; do
        cp "$built/$f" "$stripped/$f"
        strip --strip-unneeded "$stripped/$f"
    done
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
    rpmfile=$out/twofold-$version.$(uname -m).rpm
    cargo generate-rpm -p daemon --profile "$profile" --output "$rpmfile" >&2
    echo "$rpmfile"
fi

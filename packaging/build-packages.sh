#!/usr/bin/env bash
# Builds twofold's packages from this checkout: the .deb (cargo-deb) and/or the .rpm
# (rpmbuild with packaging/rpm/twofold.spec). Prints the path of each package built, one
# per line, on stdout.
#
#   packaging/build-packages.sh [--deb] [--rpm] [--profile NAME] [--no-build] [--out DIR]
#
# Neither --deb nor --rpm: both. --profile: the Cargo profile (default release; the tests
# use dev with --no-build to package what they already built). --out: where the packages
# go (default target/packages). Needs cargo-deb (cargo install cargo-deb --locked) and
# rpmbuild (Debian: apt-get install rpm).
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
    cargo build --locked --profile "$profile" -p twofoldd -p twofold-cli >&2
    # The module on its own: its zbus is then only the wire format, where one build with
    # the daemon would unify it with the daemon's zbus and its D-Bus connection code.
    cargo build --locked --profile "$profile" -p pam_twofold >&2
fi
for f in twofoldd twofold libpam_twofold.so; do
    [ -f "$built/$f" ] || { echo "build-packages.sh: $built/$f is missing (build first)" >&2; exit 1; }
done

# Files under /usr/share, staged with their final layout: man pages and shell
# completions when packaging/man and packaging/completions provide them.
share=$built/twofold-share
rm -rf "$share"
mkdir -p "$share"
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

# "a (>= 1), b, a (>= 2)" -> "a (>= 2), b": one entry per package, the strictest.
merge_depends() {
    local -a names=() versions=() entries=()
    local dep name version i found
    IFS=',' read -ra deps <<< "$1"
    for dep in "${deps[@]}"; do
        dep=$(echo "$dep" | xargs)
        name=${dep%% *}
        version=
        if [[ $dep == *"(>= "* ]]; then version=${dep#*(>= }; version=${version%)}; fi
        found=-1
        for i in "${!names[@]}"; do [ "${names[$i]}" = "$name" ] && found=$i; done
        if ((found < 0)); then
            names+=("$name"); versions+=("$version"); entries+=("$dep")
        elif [ -n "$version" ] && { [ -z "${versions[$found]}" ] ||
                dpkg --compare-versions "$version" gt "${versions[$found]}"; }; then
            versions[found]=$version; entries[found]=$dep
        fi
    done
    local IFS=,
    echo "${entries[*]}" | sed 's/,/, /g'
}

# Rewrites the .deb's control member, leaving its data member as it is:
# - cargo-deb runs dpkg-shlibdeps on each program apart and lists a library once per
#   program (libpam0g (>= 0.99.7.1), libpam0g (>= 1.4.0)): each package once;
# - cargo-deb writes no md5sums: add them (all files but conffiles, as dh_md5sums), so
#   that `dpkg --verify twofold` can tell a changed module or daemon.
fix_deb_control() {
    local deb work control data mtime compress
    deb=$(realpath "$1")
    work=$(mktemp -d)
    (cd "$work" && ar x "$deb")
    control=$(cd "$work" && ls control.tar.*)
    data=$(cd "$work" && ls data.tar.*)
    mkdir "$work/c" "$work/d"
    tar -xf "$work/$control" -C "$work/c"
    tar -xf "$work/$data" -C "$work/d"
    mtime=$(stat -c %Y "$work/c/control")
    sed -i "s/^Depends: .*/Depends: $(merge_depends "$(sed -n 's/^Depends: //p' "$work/c/control")")/" \
        "$work/c/control"
    (cd "$work/d" && find . -type f -printf '%P\n' | LC_ALL=C sort |
        grep -vxF -f <(sed 's|^/||' "$work/c/conffiles" 2>/dev/null || true) |
        xargs -r -d '\n' md5sum) > "$work/c/md5sums"
    chmod 0644 "$work/c/md5sums"
    touch -d "@$mtime" "$work/c/control" "$work/c/md5sums"
    case "$control" in
        *.xz) compress=--xz ;; *.gz) compress=--gzip ;; *.zst) compress=--zstd ;;
        *) echo "build-packages.sh: unknown $control" >&2; exit 1 ;;
    esac
    tar -C "$work/c" --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$mtime" \
        "$compress" -cf "$work/$control" .
    (cd "$work" && ar rD "$deb" "$control")
    rm -rf "$work"
}

if ((deb)); then
    # /usr/share/doc/twofold: the READMEs compressed, as Debian policy wants (-n:
    # reproducible). The copyright is packaging/debian/copyright (license-file).
    doc=$built/twofold-doc
    rm -rf "$doc" && mkdir -p "$doc"
    gzip -9n -c README.md > "$doc/README.md.gz"
    gzip -9n -c packaging/debian/README.Debian > "$doc/README.Debian.gz"
    chmod 0644 "$doc"/*.gz
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
    debfile=$(cargo deb --locked -p twofoldd --no-build --profile "$profile" "${variant[@]}" "${fast[@]}" \
        --output "$out" -q | tail -n 1)
    fix_deb_control "$debfile"
    echo "$debfile"
fi

if ((rpm)); then
    command -v rpmbuild >/dev/null || { echo "build-packages.sh: rpmbuild missing (Debian: apt-get install rpm)" >&2; exit 1; }
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
    top=$(mktemp -d)
    trap 'rm -rf "$top"' EXIT
    # rpmbuild strips the programs (brp-strip) and finds their library dependencies.
    rpmbuild -bb --quiet \
        --define "_topdir $top" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "__os_install_post /usr/lib/rpm/brp-strip %{__strip}" \
        --define "twofold_version $version" \
        --define "twofold_src $PWD" \
        --define "twofold_built $built" \
        packaging/rpm/twofold.spec >&2
    ls "$out"/twofold-"$version"-1.*.rpm
fi

#!/usr/bin/env bash
# Installs certreload, make-install style: the binary, the systemd units, the example
# configuration, a man page and shell completions, under DESTDIR and PREFIX.
#
#   Packaging/install.sh                          # into /usr/local (PREFIX), as root
#   Packaging/install.sh --with-certbot-hook      # also certbot's deploy hook
#   DESTDIR=/tmp/stage PREFIX=/usr Packaging/install.sh   # staging for a package
#
# Options (each also an environment variable, the option wins):
#   --prefix DIR          PREFIX, default /usr/local
#   --destdir DIR         DESTDIR, default empty (the live system)
#   --unitdir DIR         SYSTEMD_UNIT_DIR, where the units go; default by prefix:
#                         /usr: systemd's own (pkg-config systemdsystemunitdir, else
#                         /lib/systemd/system); /usr/local: /usr/local/lib/systemd/system;
#                         anything else: /etc/systemd/system (the only places systemd looks)
#   --binary FILE         CERTRELOAD_BINARY, the binary to install; default
#                         .build/release/certreload, built with `swift build -c release --static-swift-stdlib`
#                         when missing
#   --with-certbot-hook   also install /etc/letsencrypt/renewal-hooks/deploy/certreload-deploy-hook.
#                         Not by default: certbot then runs certreload after every renewal.
#   --without-man         skip the man page
#
# The man page and the completions are generated from the installed binary's own
# command table (certreload --generate-manual, --generate-completion-script), so they always match it.
# Files under /etc are never overwritten except the example configuration and the hook;
# the real configuration, /etc/certreload/certreload.toml, is left to the administrator.
# Prints every file it installs. Does not enable or start anything.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
unitdir=${SYSTEMD_UNIT_DIR:-}
binary=${CERTRELOAD_BINARY:-}
with_hook=0
with_man=1

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "install.sh: $*" >&2; exit 2; }

while (($# > 0)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
        --prefix=*) prefix=${1#*=} ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift ;;
        --destdir=*) destdir=${1#*=} ;;
        --unitdir) unitdir=${2:?--unitdir needs a directory}; shift ;;
        --unitdir=*) unitdir=${1#*=} ;;
        --binary) binary=${2:?--binary needs a file}; shift ;;
        --binary=*) binary=${1#*=} ;;
        --with-certbot-hook) with_hook=1 ;;
        --without-man) with_man=0 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

[[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$prefix'"
[[ -z $destdir || $destdir == /* ]] || destdir="$PWD/$destdir"
prefix=${prefix%/}
[[ -n $prefix ]] || die "PREFIX must not be /"
destdir=${destdir%/}

bindir=$prefix/bin
mandir=$prefix/share/man/man1
bashcompdir=$prefix/share/bash-completion/completions
zshcompdir=$prefix/share/zsh/site-functions
sysconfdir=/etc/certreload
hookdir=/etc/letsencrypt/renewal-hooks/deploy
if [[ -z $unitdir ]]; then
    case $prefix in
        /usr) unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
              unitdir=${unitdir:-/lib/systemd/system} ;;
        /usr/local) unitdir=/usr/local/lib/systemd/system ;;
        *) unitdir=/etc/systemd/system ;;
    esac
fi

# --- the binary ---------------------------------------------------------------------------
if [[ -z $binary ]]; then
    binary=$root/.build/release/certreload
    if [[ ! -x $binary ]]; then
        command -v swift >/dev/null || die "no $binary and no swift to build it (scripts/install-deps; or --binary FILE)"
        echo "building certreload (swift build -c release --static-swift-stdlib) ..." >&2
        (cd "$root" && swift build -c release --static-swift-stdlib >&2)
    fi
fi
[[ -x $binary ]] || die "not an executable: $binary"

put() { # put MODE SOURCE DEST (DEST without DESTDIR)
    install -D -m "$1" "$2" "$destdir$3"
    echo "$destdir$3"
}

# Copies a text file, replacing @bindir@ with the installed binary's directory.
put_substituted() { # put_substituted MODE SOURCE DEST
    local tmp
    tmp=$(mktemp)
    sed "s|@bindir@|$bindir|g" "$2" >"$tmp"
    put "$1" "$tmp" "$3"
    rm -f "$tmp"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

put 0755 "$binary" "$bindir/certreload"

# --- systemd units ------------------------------------------------------------------------
for unit in certreload.service certreload@.service certreload@.path; do
    put_substituted 0644 "$here/$unit" "$unitdir/$unit"
done

# --- configuration example (never the configuration itself) -------------------------------
put 0644 "$here/certreload.toml.example" "$sysconfdir/certreload.toml.example"

# --- certbot deploy hook, only when asked -------------------------------------------------
if ((with_hook)); then
    put_substituted 0755 "$here/certbot/certreload-deploy-hook" "$hookdir/certreload-deploy-hook"
fi

# --- completions, from the binary's own definitions ---------------------------------------
"$binary" --generate-completion-script bash >"$work/certreload.bash"
"$binary" --generate-completion-script zsh >"$work/_certreload"
put 0644 "$work/certreload.bash" "$bashcompdir/certreload"
put 0644 "$work/_certreload" "$zshcompdir/_certreload"

# --- man page, from the binary's own command table ----------------------------------------
if ((with_man)); then
    # A reproducible date: SOURCE_DATE_EPOCH, else the last commit's, else today.
    if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
        date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)
    else
        date=$(git -C "$root" log -1 --format=%cs 2>/dev/null || date -u +%F)
    fi
    "$binary" --generate-manual "$date" >"$work/certreload.1"
    [[ -s $work/certreload.1 ]] || die "certreload --generate-manual wrote no page"
    put 0644 "$work/certreload.1" "$mandir/certreload.1"
fi

if [[ -z $destdir ]]; then
    {
        echo
        echo "installed. Next: cp $sysconfdir/certreload.toml.example $sysconfdir/certreload.toml, edit it,"
        echo "  certreload config check, then ONE of:"
        echo "  systemctl daemon-reload && systemctl enable --now certreload.service        (watch daemon)"
        echo "  systemctl daemon-reload && systemctl enable --now certreload@NAME.path      (per lineage)"
        ((with_hook)) && echo "  (certbot's deploy hook is installed: $hookdir/certreload-deploy-hook)"
        true
    } >&2
fi

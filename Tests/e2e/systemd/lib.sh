# shellcheck shell=bash
# Real systemd as PID 1 for the e2e tests: a cached Debian bookworm root (build-root), booted
# in its own PID, mount, UTS and IPC namespaces over a throw-away overlay, driven with
# nsenter. Source it after Tests/e2e/lib.sh and e2e_init:
#
#   source "$here/systemd/lib.sh"
#   sd_boot                       # builds the root if its recipe changed; waits for `running`
#   sd_exec systemctl status certreload.service
#   sd_put FILE /etc/certreload/certreload.toml 0600
#   ...                           # sd_stop runs at exit (e2e_defer): no process or mount stays
#
# The network namespace is the host's: units inside reach pebble and stand-ins on 127.0.0.1.
# The cached root is never written: each boot writes to an overlay upper dir in $E2E_TMP.
# Why not systemd-nspawn: it needs a host system bus, which these machines do not have.

SD_CACHE=${CERTRELOAD_E2E_CACHE:-/var/cache/certreload-e2e}
SD_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SD_PID=
SD_UNSHARE_PID=

# sd_root: the cached root for the current recipe, built when missing (under a lock, so
# two test scripts never build it twice). Prints its path.
sd_root() {
    local hash dir
    hash=$(sha256sum "$SD_HERE/build-root" | cut -c1-16)
    dir=$SD_CACHE/root-$hash
    mkdir -p "$SD_CACHE"
    (
        flock 9
        if [[ ! -f $dir/.complete ]]; then
            rm -rf "$dir" "$dir.building"
            local start=$SECONDS
            echo "building the systemd test root $dir (recipe changed or missing) ..." >&2
            "$SD_HERE/build-root" "$dir.building" >"$SD_CACHE/build-$hash.log" 2>&1 || {
                tail -n 30 "$SD_CACHE/build-$hash.log" >&2
                rm -rf "$dir.building"
                exit 1
            }
            touch "$dir.building/.complete"
            mv "$dir.building" "$dir"
            echo "built the systemd test root in $((SECONDS - start)) s" >&2
        fi
    ) 9>"$SD_CACHE/.lock" || return 1
    echo "$dir"
}

# The script that runs inside the new namespaces: an overlay over the cached root, the
# API file systems, a private /dev, then systemd as PID 1. /sys and /proc/sys are read-only
# (as in a container: udev, sysctl and module loading skip themselves and leave the host
# alone); /sys/fs/cgroup is the host's, writable, for systemd's own hierarchy.
sd_boot_script() {
    cat <<'SCRIPT'
set -euo pipefail
lower=$1 upper=$2 work=$3 root=$4 console=$5
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount -t sysfs -o ro sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
touch "$root/dev/console"
mount --bind "$console" "$root/dev/console"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
# Shared propagation, as systemd makes it on a host and nspawn for a container (systemd
# leaves it alone when it sees a container): without it LoadCredential='s ramfs, mounted in
# a child namespace and moved into /run/credentials/UNIT, never reaches the service, which
# finds $CREDENTIALS_DIRECTORY empty. New peer groups inside this namespace only.
mount --make-rshared "$root"
exec env -i container=certreload-e2e TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/chroot "$root" /lib/systemd/systemd --system \
    --show-status=false --log-target=journal-or-kmsg
SCRIPT
}

# Top-level cgroups present before the boot, per hierarchy, so sd_stop removes only the
# ones this systemd made.
sd_cgroup_dirs() {
    local h
    for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        [[ -d $h ]] && find "$h" -mindepth 1 -maxdepth 1 -type d
    done | sort
}

# sd_boot: boots the cached root; sets SD_PID (systemd, as the host sees it) and SD_ROOT
# (its root directory, reachable from the host as /proc/SD_PID/root). Fails after 90 s.
sd_boot() {
    e2e_require unshare nsenter debootstrap
    local lower
    lower=$(sd_root) || e2e_die "could not build the systemd test root"
    SD_DIR=$E2E_TMP/systemd
    mkdir -p "$SD_DIR/upper" "$SD_DIR/work" "$SD_DIR/merged"
    : >"$SD_DIR/console.log"
    sd_boot_script >"$SD_DIR/boot.sh"
    # Settings of the harness, not of the root (they go into the overlay, so changing them
    # does not rebuild the root). systemd uses only its own cgroup hierarchy: no controller
    # accounting, so no unit is moved in the host's memory/cpu/pids hierarchies.
    mkdir -p "$SD_DIR/upper/etc/systemd/system.conf.d"
    printf '[Manager]\nDefaultCPUAccounting=no\nDefaultMemoryAccounting=no\nDefaultTasksAccounting=no\nDefaultIOAccounting=no\nDefaultBlockIOAccounting=no\n' \
        >"$SD_DIR/upper/etc/systemd/system.conf.d/certreload-e2e.conf"
    sd_cgroup_dirs >"$SD_DIR/cgroups.before"
    unshare --pid --fork --mount --uts --ipc --propagation private \
        bash "$SD_DIR/boot.sh" "$lower" "$SD_DIR/upper" "$SD_DIR/work" "$SD_DIR/merged" "$SD_DIR/console.log" \
        >"$SD_DIR/boot.log" 2>&1 &
    SD_UNSHARE_PID=$!
    e2e_defer "sd_stop"
    e2e_wait_until 20 "systemd to start as PID 1 of the new namespace" sd_find_pid ||
        { cat "$SD_DIR/boot.log" >&2; e2e_die "systemd did not start"; }
    SD_ROOT=/proc/$SD_PID/root
    if ! e2e_wait_until 90 "the booted system to reach running or degraded" sd_booted; then
        sd_exec systemctl --no-pager list-jobs >&2 || true
        sd_exec systemctl --no-pager --failed >&2 || true
        e2e_die "the booted system did not settle: $(sd_exec systemctl is-system-running 2>&1)"
    fi
    e2e_log "systemd $(sd_exec systemctl --version | head -n1 | awk '{print $2}') is PID 1 (host pid $SD_PID): $(sd_exec systemctl is-system-running)"
}

sd_find_pid() {
    kill -0 "$SD_UNSHARE_PID" 2>/dev/null || { cat "$SD_DIR/boot.log" >&2; e2e_die "the boot script exited"; }
    local child
    child=$(cat "/proc/$SD_UNSHARE_PID/task/$SD_UNSHARE_PID/children" 2>/dev/null) || return 1
    child=${child%% *}
    [[ -n $child && $(readlink "/proc/$child/exe" 2>/dev/null) == */systemd ]] || return 1
    SD_PID=$child
}

sd_booted() {
    local state
    state=$(sd_exec systemctl is-system-running 2>/dev/null) || true
    [[ $state == running || $state == degraded ]]
}

# sd_exec CMD...: runs CMD inside the booted system (its namespaces and root), with a clean
# environment. stdin passes through.
sd_exec() {
    nsenter -t "$SD_PID" -p -m -u -i -r -w \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
        SYSTEMD_LOG_COLOR=0 TERM=dumb "$@"
}

# sd_put SOURCE DEST [MODE]: copies a host file into the booted system.
sd_put() {
    install -D -m "${3:-0644}" "$1" "$SD_ROOT$2"
}

# sd_unit_prop UNIT PROPERTY: one property's value (systemctl show --value).
sd_unit_prop() { sd_exec systemctl show --value -p "$2" "$1"; }

# sd_journal ARGS...: journalctl inside, no pager, after syncing the journal.
sd_journal() {
    sd_exec journalctl --sync >/dev/null 2>&1 || true
    sd_exec journalctl --no-pager -q "$@"
}

# sd_stop: SIGKILL to the namespace's PID 1 (the kernel then kills everything in it, and the
# mount namespace with its overlay goes with the last process), then the cgroups it made.
sd_stop() {
    [[ -n ${SD_UNSHARE_PID:-} ]] || return 0
    if [[ -n ${SD_PID:-} ]]; then
        local pidns
        pidns=$(readlink "/proc/$SD_PID/ns/pid" 2>/dev/null) || true
        kill -KILL "$SD_PID" 2>/dev/null || true
        if [[ -n $pidns ]]; then
            e2e_wait_until 30 "every process of the booted system to exit" sd_ns_empty "$pidns" || true
        fi
    fi
    wait "$SD_UNSHARE_PID" 2>/dev/null || true
    SD_UNSHARE_PID=
    local dir
    sd_cgroup_dirs >"$SD_DIR/cgroups.after"
    comm -13 "$SD_DIR/cgroups.before" "$SD_DIR/cgroups.after" | while read -r dir; do
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    SD_PID=
}

# No process left in the PID namespace whose /proc/PID/ns/pid reads $1.
sd_ns_empty() {
    local ns
    for ns in /proc/[0-9]*/ns/pid; do
        [[ $(readlink "$ns" 2>/dev/null) == "$1" ]] && return 1
    done
    return 0
}

# --- certreload's package and certbot inside the booted system ------------------------------

# sd_install_certreload: builds the .deb from $CERTRELOAD (Packaging/build-deb, into
# $E2E_TMP/dist) and installs it inside the way an administrator would:
# `apt-get install ./certreload_VERSION_ARCH.deb`. Sets SD_DEB (the host path).
sd_install_certreload() {
    SD_DEB=$("$E2E_ROOT/Packaging/build-deb" --binary "$CERTRELOAD" --output "$E2E_TMP/dist" 2>"$E2E_OUT/build-deb.log") ||
        { tail -n 20 "$E2E_OUT/build-deb.log" >&2; e2e_die "Packaging/build-deb failed"; }
    sd_put "$SD_DEB" "/root/${SD_DEB##*/}"
    sd_exec sh -c "cd /root && apt-get install -y -o Dpkg::Use-Pty=0 ./${SD_DEB##*/}" \
        >"$E2E_OUT/apt-install.log" 2>&1 ||
        { tail -n 20 "$E2E_OUT/apt-install.log" >&2; e2e_die "apt-get install ./${SD_DEB##*/} failed inside"; }
}

# sd_certbot_setup: pebble's CA inside, so certbot inside trusts pebble on the host.
SD_PEBBLE_CA=/etc/certreload-e2e/pebble-ca.pem
sd_certbot_setup() { sd_put "$PEBBLE_CA" "$SD_PEBBLE_CA"; }

# sd_certbot ARGS...: certbot inside the booted system (its /etc/letsencrypt) against pebble.
sd_certbot() {
    sd_exec env REQUESTS_CA_BUNDLE="$SD_PEBBLE_CA" timeout --kill-after=5 180 certbot "$@" \
        --non-interactive --server "$PEBBLE_URL" >>"$E2E_OUT/certbot.log" 2>&1 ||
        { tail -n 20 "$E2E_OUT/certbot.log" | sed 's/^/    certbot| /' >&2; return 1; }
}

# sd_issue NAME -d DOMAIN...: a new lineage in the booted system's /etc/letsencrypt.
sd_issue() {
    local name=$1
    shift
    sd_certbot certonly --agree-tos --email e2e@example.org --no-eff-email --manual \
        --preferred-challenges dns --manual-auth-hook /bin/true --cert-name "$name" "$@"
}

# sd_renew NAME: `certbot renew --force-renewal` of that lineage, inside.
sd_renew() { sd_certbot renew --force-renewal --no-random-sleep-on-renew --cert-name "$1"; }

# sd_cert_sha NAME: SHA-256 of live/NAME/cert.pem inside.
sd_cert_sha() { cert_sha256 "$SD_ROOT/etc/letsencrypt/live/$1/cert.pem"; }

# sd_grant_group USER: certbot's directories and the current keys readable by USER's group
# (the lasting fix the README describes: certbot carries the key's group over on renewal).
sd_grant_group() {
    local group=$1
    sd_exec sh -c "chgrp $group /etc/letsencrypt/live /etc/letsencrypt/archive &&
        chmod 0750 /etc/letsencrypt/live /etc/letsencrypt/archive &&
        for key in /etc/letsencrypt/archive/*/privkey*.pem; do chgrp $group \"\$key\"; chmod 0640 \"\$key\"; done"
}

# sd_nginx NAME SERVER_NAME: nginx inside as its real unit (Debian's nginx.service), serving
# live/NAME on a free loopback port. Sets SD_NGINX_PORT.
sd_nginx() {
    local name=$1 server=$2
    SD_NGINX_PORT=$(e2e_free_port)
    cat >"$E2E_TMP/nginx-site" <<NGINX
server {
    listen 127.0.0.1:$SD_NGINX_PORT ssl;
    server_name $server;
    ssl_certificate /etc/letsencrypt/live/$name/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/$name/privkey.pem;
    location / { return 200 "certreload e2e nginx inside systemd\n"; }
}
NGINX
    sd_put "$E2E_TMP/nginx-site" /etc/nginx/sites-enabled/e2e
    sd_exec systemctl start nginx.service || { sd_journal -u nginx.service | tail -n 20 >&2; e2e_die "nginx.service did not start"; }
    e2e_wait_until 20 "nginx inside on :$SD_NGINX_PORT" port_open "$SD_NGINX_PORT" || e2e_die "nginx does not listen"
}

# sd_nginx_serves SNI SHA: the leaf nginx presents (openssl s_client from the host) is SHA,
# three probes in a row (an old worker may answer for a moment after a graceful reload).
sd_nginx_serves() {
    local i
    for i in 1 2 3; do serves "$SD_NGINX_PORT" "$1" "$2" || return 1; done
}

# sd_stalwart SECRET: the Stalwart stand-in (Tests/Support/stalwart_standin.py, simulating 1.0)
# on a free host loopback port, with one API key "certreload" made from SECRET holding the two
# permissions a reload needs. Sets SD_STALWART_URL, SD_STALWART_RECORD and SD_STALWART_TOKEN
# (the key as Stalwart shows it once, API_…).
sd_stalwart() {
    SD_STALWART_RECORD=$E2E_TMP/stalwart-requests.jsonl
    : >"$SD_STALWART_RECORD"
    coproc SD_STALWART { exec python3 "$E2E_ROOT/Tests/Support/stalwart_standin.py" --version 1.0 \
        --api-key "certreload:$1:sysActionCreate,actionReloadTlsCertificates" \
        --record "$SD_STALWART_RECORD" --lifetime "${2:-540}" 2>"$E2E_OUT/stalwart_standin.err"; }
    SD_STALWART_PROC=$SD_STALWART_PID
    e2e_defer "kill $SD_STALWART_PROC"
    local port keys
    read -r -t 10 port <&"${SD_STALWART[0]}" || e2e_die "the Stalwart stand-in printed no port"
    read -r -t 10 keys <&"${SD_STALWART[0]}" || e2e_die "the Stalwart stand-in printed no API keys"
    SD_STALWART_URL=http://127.0.0.1:$port
    SD_STALWART_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["certreload"].split(" ",1)[1])' "$keys")
}

# sd_stalwart_reloads: how many JMAP ReloadTlsCertificates the stand-in received.
sd_stalwart_reloads() {
    grep -c 'ReloadTlsCertificates' "$SD_STALWART_RECORD" || true
}

# sd_assert_has WHAT NEEDLE TEXT / sd_assert_lacks WHAT NEEDLE TEXT: fixed strings in text.
sd_assert_has() {
    if grep -qF -- "$2" <<<"$3"; then e2e_pass "$1"; else e2e_fail "$1" "text containing '$2'" "$(tail -c 600 <<<"$3" | tr '\n' '|')"; fi
}
sd_assert_lacks() {
    if ! grep -qF -- "$2" <<<"$3"; then e2e_pass "$1"; else e2e_fail "$1" "no '$2'" "$(grep -F -- "$2" <<<"$3" | head -n 3 | tr '\n' '|')"; fi
}

# sd_json_entries ARGS...: the matching journal entries as JSON lines (journalctl -o json).
sd_json_entries() { sd_journal -o json "$@"; }

# sd_field_check JSON_LINES FIELD=VALUE...: prints "ok" when some entry has every FIELD=VALUE
# (VALUE * means present), and every entry has MESSAGE_ID and CODE_FILE once and CODE_FILE
# relative; else what is wrong.
sd_field_check() {
    local entries=$1
    shift
    python3 - "$@" <<'PY' 3<<<"$entries"
import json, sys
want = [a.split("=", 1) for a in sys.argv[1:]]
entries = [json.loads(l) for l in open(3) if l.strip()]
if not entries:
    print("no entry"); sys.exit()
problems = []
for e in entries:
    for f in ("MESSAGE_ID", "CODE_FILE", "CODE_LINE", "CODE_FUNC"):
        if isinstance(e.get(f), list): problems.append(f + " twice")
    if "META_MESSAGE_ID" in e: problems.append("META_MESSAGE_ID present")
    if str(e.get("CODE_FILE", "")).startswith("/"): problems.append("absolute CODE_FILE " + e["CODE_FILE"])
def match(e):
    return all(k in e and (v == "*" or e[k] == v) for k, v in want)
if not any(match(e) for e in entries):
    problems.append("no entry with " + " ".join("=".join(w) for w in want) + "; seen: " +
                    " | ".join(" ".join(k + "=" + str(e.get(k)) for k in sorted(e) if k.startswith("CERTRELOAD_")) for e in entries[:3]))
print("; ".join(sorted(set(problems))) or "ok")
PY
}

#!/usr/bin/env bash
# Faults in certreload's own life: SIGKILL at random points of `certreload reload` (before
# the reload, during the reload command, during the state write, after it), over
# FAULTS_KILL_RUNS runs (default 200). After every kill the state file must be the old one
# or the new one, never torn, and the next run must deploy what is pending. Then the state
# directory read-only, full and deleted: a clear state-unwritable, and the next run once it is
# writable records the deployment. Real certbot and pebble; bounded in time.
#
#   sudo Tests/e2e/faults-kill.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init faults-kill
e2e_require python3 timeout mount
RUNS=${FAULTS_KILL_RUNS:-200}

e2e_section "setup: a lineage with two versions"
pebble_start
C=$E2E_TMP/letsencrypt
certbot_issue kill.test -d kill.test || e2e_die "certbot could not issue kill.test"
certbot_renew kill.test >/dev/null || e2e_die "certbot could not renew kill.test"
[[ -f $C/archive/kill.test/cert2.pem ]] || e2e_die "no version 2 after renewal"
sha_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
SHA1=$(sha_of "$C/archive/kill.test/cert1.pem")
SHA2=$(sha_of "$C/archive/kill.test/cert2.pem")
point_at() { # point_at N: the four links at version N, as certbot does (unlink + symlink)
    local f
    for f in cert chain fullchain privkey; do ln -sfn "../../archive/kill.test/${f}$1.pem" "$C/live/kill.test/$f.pem"; done
}

STATE=$E2E_TMP/state
COUNTER=$E2E_TMP/reloads
: >"$COUNTER"
# The reload command records each reload and takes 0-40 ms, so kills land inside it too.
cat >"$E2E_TMP/reload.sh" <<'SH'
#!/bin/sh
echo x >> "$1"
sleep "0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 5 ))"
SH
chmod 0755 "$E2E_TMP/reload.sh"
cat >"$E2E_TMP/certreload.toml" <<TOML
certbot-dir = "$C"
state-dir = "$STATE"
[target.web]
lineages = ["kill.test"]
reload = { command = ["$E2E_TMP/reload.sh", "$COUNTER"], timeout = 10 }
TOML
CONFIG=$E2E_TMP/certreload.toml
deployed() { sed -n 's/^deployed-sha256 = //p' "$STATE/web.state" 2>/dev/null || true; }
reloads() { wc -l <"$COUNTER"; }

e2e_section "1. SIGKILL at random points, $RUNS runs"
point_at 1
timeout 60 "$CERTRELOAD" reload web --config "$CONFIG" --force >/dev/null
assert_eq "baseline: version 1 deployed" "$SHA1" "$(deployed)"
# How long a whole run takes: the kills are spread over 0..1.3x of it.
start=$(date +%s%N)
timeout 60 "$CERTRELOAD" reload web --config "$CONFIG" --force >/dev/null
span=$((($(date +%s%N) - start) / 1000000 * 13 / 10 + 1))
e2e_log "a reload run takes about $((span * 10 / 13)) ms; kills at random 0..$span ms"
before_reload=0 during_reload=0 after_state=0 completed=0 torn=0 lost=0 leftovers=0
version=1
for ((i = 1; i <= RUNS; i++)); do
    version=$((3 - version))
    point_at "$version"
    new_sha=$([[ $version == 1 ]] && echo "$SHA1" || echo "$SHA2")
    old_state=$(cat "$STATE/web.state" 2>/dev/null || true)
    old_reloads=$(reloads)
    "$CERTRELOAD" reload web --config "$CONFIG" --force >/dev/null 2>&1 &
    pid=$!
    delay=$((RANDOM % span))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    if kill -9 "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; else wait "$pid" 2>/dev/null || true; completed=$((completed + 1)); fi
    # Its reload command may still be finishing (own process group): let it.
    e2e_wait_until 5 "the reload command to finish" bash -c "! pgrep -f '^/bin/sh $E2E_TMP/reload.sh' >/dev/null" || true
    now_state=$(cat "$STATE/web.state" 2>/dev/null || true)
    if [[ $now_state == "$old_state" ]]; then
        if (($(reloads) > old_reloads)); then during_reload=$((during_reload + 1)); else before_reload=$((before_reload + 1)); fi
    elif [[ $(deployed) == "$new_sha" ]] && grep -q '^deployed-at = [0-9]*$' "$STATE/web.state"; then
        after_state=$((after_state + 1))
    else
        torn=$((torn + 1))
        e2e_log "run $i: torn state: $(tr '\n' '|' <"$STATE/web.state")"
    fi
    # The restart: a plain reload (no --force) deploys what is pending.
    timeout 60 "$CERTRELOAD" reload web --config "$CONFIG" >/dev/null 2>&1 || true
    [[ $(deployed) == "$new_sha" ]] || { lost=$((lost + 1)); e2e_log "run $i: pending deployment of version $version not done on restart"; }
done
leftovers=$(find "$STATE" -name '*.tmp.*' | wc -l)
e2e_log "kills: $RUNS runs: $before_reload before the reload, $during_reload during the reload or before the state write, $after_state after the state write, $completed finished before the kill"
assert_eq "no torn state file in $RUNS kills" "0" "$torn"
assert_eq "every pending deployment happened on restart" "0" "$lost"
assert_eq "no temporary state files left behind" "0" "$leftovers"
assert_ne "kills landed before the state write" "0" "$((before_reload + during_reload))"
assert_ne "kills landed after the state write" "0" "$after_state"
printf 'certreload\tSIGKILL x%d\tbefore reload %d, during reload %d, after state write %d, finished %d; torn %d, lost %d\n' \
    "$RUNS" "$before_reload" "$during_reload" "$after_state" "$completed" "$torn" "$lost" >>"${CERTRELOAD_FAULT_LEDGER:-/dev/null}"

e2e_section "2. the state directory read-only, full, deleted, a file"
check_unwritable() { # check_unwritable WHAT: a reload now reports state-unwritable, exit 0 (deployed)
    local out rc=0
    out=$(timeout 60 "$CERTRELOAD" reload web --config "$CONFIG" --force 2>&1) || rc=$?
    assert_eq "$1: state-unwritable reported" "yes" "$(grep -q "warning \[state-unwritable\]" <<<"$out" && echo yes || echo no)"
    assert_eq "$1: the reload itself succeeded (exit 0)" "0" "$rc"
    printf 'state dir\t%s\tstate-unwritable, reload done, recorded on the next run\n' "$1" >>"${CERTRELOAD_FAULT_LEDGER:-/dev/null}"
}
recorded_after_repair() { # the next run, once writable, records the deployment
    timeout 60 "$CERTRELOAD" reload web --config "$CONFIG" >/dev/null 2>&1 || true
    assert_eq "$1: recorded once writable again" "$new_sha" "$(deployed)"
}
point_at 2; new_sha=$SHA2
mount -t tmpfs -o size=64k tmpfs "$STATE" && e2e_defer "umount '$STATE' 2>/dev/null"
mount -o remount,ro "$STATE"
check_unwritable "read-only"
mount -o remount,rw "$STATE"
recorded_after_repair "read-only"
point_at 1; new_sha=$SHA1
dd if=/dev/zero of="$STATE/filler" bs=4k count=100 2>/dev/null || true
check_unwritable "full"
rm -f "$STATE/filler"
recorded_after_repair "full"
umount "$STATE"
point_at 2; new_sha=$SHA2
rm -rf "$STATE"
touch "$STATE"
check_unwritable "a regular file"
rm -f "$STATE"
recorded_after_repair "deleted (recreated by the next run)"

e2e_finish faults-kill

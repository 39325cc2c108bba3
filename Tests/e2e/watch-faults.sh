#!/usr/bin/env bash
# Faults in `certreload watch`'s own life (issue 11). Real certbot renewals from a real
# pebble on loopback, a counting reload command, the daemon's log on stderr.
#   1. inotify's watch limit reached: the daemon runs in a user namespace of its own
#      (unshare -U -r) whose user.max_inotify_watches is lowered to 4 (it needs 6); the
#      host's fs.inotify sysctls are never written. The log names the sysctl, its value and
#      the watches needed; a renewal is noticed by polling and reloaded exactly once; the
#      limit raised in the namespace: the watches are added at the next poll and the next
#      renewal is reloaded once, through inotify.
#   2. no inotify instance at all (user.max_inotify_instances = 0 in the namespace): the log
#      names max_inotify_instances; a renewal is noticed by polling, reloaded once.
#   3. the wall clock set back 1 day, then forward 60 days, while watching (the daemon's
#      wall clock only, through Tests/Support/wallclock_shift.c; monotonic clocks and timers
#      real; certificates live 70 days, warn-days 14):
#      a renewal while the clock is a day behind is not-yet-valid and not reloaded; after the
#      jump forward it is reloaded exactly once and expiring-soon is logged; a renewal at +60
#      days is reloaded once; the clock set right again reloads nothing.
#   4. the state directory read-only, full (a 64 KiB tmpfs) and deleted while watching: a
#      renewal is reloaded once, state-unwritable names the path and the cause; once writable
#      the record is written (state-recorded) and nothing is reloaded again; deleted: the
#      record is written again from memory (state-missing), nothing reloaded.
# Every fault goes to $CERTRELOAD_FAULT_LEDGER ("watch daemon" in RELIABILITY.md).
#
#   sudo Tests/e2e/watch-faults.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init watch-faults
e2e_require python3 timeout unshare nsenter mount openssl
NAME=faults.test
LEDGER=${CERTRELOAD_FAULT_LEDGER:-/dev/null}
ledger() { printf 'watch daemon\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$LEDGER"; }

e2e_section "setup: pebble (certificates live 70 days), lineage $NAME, a counting reload command"
PEBBLE_CERT_VALIDITY=$((70 * 86400)) pebble_start
C=$E2E_TMP/letsencrypt
certbot_issue "$NAME" -d faults.test || e2e_die "certbot could not issue $NAME"
LIVE=$C/live/$NAME
MARKER=$E2E_TMP/reloads
: >"$MARKER"
cat >"$E2E_TMP/reload.sh" <<EOF
#!/bin/sh
echo "\$(readlink '$LIVE/cert.pem')" >>'$MARKER'
EOF
chmod 0755 "$E2E_TMP/reload.sh"
CONF=$E2E_TMP/certreload.toml
write_config() { # write_config STATE_DIR
    cat >"$CONF" <<EOF
certbot-dir = "$C"
state-dir = "$1"
settle = 1
settle-max = 30
recheck = 3
poll-interval = 2
warn-days = 14

[target.web]
lineages = ["$NAME"]
reload = { command = ["$E2E_TMP/reload.sh"], timeout = 20 }
EOF
}
reloads() { wc -l <"$MARKER" | tr -dc '0-9'; }
reloads_are() { [[ $(reloads) == "$1" ]]; }
reloads_at_least() { (($(reloads) >= $1)); }
current_cert() { readlink "$LIVE/cert.pem"; }
sha_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
deployed_in() { sed -n 's/^deployed-sha256 = //p' "$1/web.state" 2>/dev/null || true; }
deployed_is() { [[ $(deployed_in "$1") == "$2" ]]; }
# assert_has WHAT NEEDLE TEXT: the fixed string NEEDLE is in TEXT.
assert_has() {
    if [[ $3 == *"$2"* ]]; then e2e_pass "$1"; else e2e_fail "$1" "'$2' in the line" "${3:0:600}"; fi
}
# hold SECONDS WHAT COMMAND...: COMMAND keeps succeeding for SECONDS (polled every 0.1 s).
hold() {
    local seconds=$1 what=$2 start end now
    shift 2
    # bash's own clock (no fork per poll: a failed `date` must not end the script)
    start=${EPOCHREALTIME/./}
    end=$((start + seconds * 1000000))
    now=$start
    while ((now < end)); do
        if ! "$@" >/dev/null 2>&1; then
            e2e_fail "$what (held for ${seconds}s)" "true throughout" "false after $(((now - start) / 1000)) ms"
            return 1
        fi
        sleep 0.1
        now=${EPOCHREALTIME/./}
    done
    e2e_pass "$what (held for ${seconds}s)"
}

# The daemon: `daemon_start NAME [WRAPPER...]` runs WRAPPER... certreload watch, its stderr
# (where it logs without systemd) in $DLOG.
DPID=
daemon_start() {
    local name=$1
    shift
    DLOG=$E2E_OUT/watch-$name.log
    : >"$DLOG"
    "$@" "$CERTRELOAD" watch --config "$CONF" >"$DLOG" 2>&1 &
    DPID=$!
    e2e_defer "e2e_stop_pid $DPID 15"
    e2e_log "certreload watch ($name) pid $DPID, log ${DLOG##*/}"
}
daemon_stop() {
    kill -TERM "$DPID" 2>/dev/null || true
    e2e_wait_until 20 "certreload watch ($DPID) to exit" pid_gone "$DPID" || kill -9 "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
}
log_has() { grep -qF -- "$1" "$DLOG"; }
log_count() { grep -cF -- "$1" "$DLOG" || true; }
log_count_above() { (($(log_count "$1") > $2)); }
log_line() { grep -F -- "$1" "$DLOG" | head -n 1; }
show_daemon() { show_log "watch" "$DLOG"; }
# renew: a real `certbot renew`; sets NEW_SHA, RENEWED_MS (when certbot returned).
renew() {
    certbot_renew "$NAME" >/dev/null || e2e_die "certbot renew failed"
    RENEWED_MS=$(e2e_now_ms)
    NEW_SHA=$(sha_of "$LIVE/cert.pem")
}
# in_userns WATCHES INSTANCES: a wrapper that runs the daemon in a user namespace of its own
# (root mapped to root) with these inotify limits; only that namespace's limits are written.
in_userns() {
    printf '%s\n' unshare -U -r sh -c \
        'echo "$1" >/proc/sys/user/max_inotify_watches && echo "$2" >/proc/sys/user/max_inotify_instances && shift 2 && exec "$@"' sh "$1" "$2"
}
HOST_WATCHES=$(cat /proc/sys/fs/inotify/max_user_watches)
HOST_INSTANCES=$(cat /proc/sys/fs/inotify/max_user_instances)

# ---------------------------------------------------------------------------------------------
e2e_section "1. inotify's watch limit: 4 in the daemon's own user namespace (it needs 6)"
if ! unshare -U -r sh -c 'echo 4 >/proc/sys/user/max_inotify_watches' 2>/dev/null; then
    e2e_skip "the watch-limit and instance-limit runs" "unshare -U -r cannot set user.max_inotify_watches here (kernel before 5.11, or user namespaces off)"
else
    S1=$E2E_TMP/state-limit
    write_config "$S1"
    B=$(reloads)
    mapfile -t wrap < <(in_userns 4 "$HOST_INSTANCES")
    daemon_start watch-limit "${wrap[@]}"
    e2e_wait_until 30 "the first pass (a reload: no record yet)" reloads_at_least $((B + 1)) || show_daemon
    e2e_wait_until 10 "the watch-limit message" log_has "certreload_code=inotify-watch-limit" || show_daemon
    line=$(log_line "certreload_code=inotify-watch-limit")
    e2e_log "the daemon said: ${line:0:900}"
    assert_has "names the sysctl in effect and its value" "user.max_inotify_watches is 4" "$line"
    assert_has "names the host's sysctl and value" "fs.inotify.max_user_watches is $HOST_WATCHES" "$line"
    assert_has "says how many watches it needed and has" "needs 6 watch(es) and has 4" "$line"
    assert_has "names a directory it could not watch" "could not watch $C/" "$line"
    assert_has "says it polls the lineage instead" "Polling 1 lineage(s) instead, every 2 s (poll-interval): $NAME" "$line"
    assert_has "gives the fix" "Fix: raise it in the user namespace" "$line"
    assert_eq "the host's fs.inotify.max_user_watches is untouched" "$HOST_WATCHES" "$(cat /proc/sys/fs/inotify/max_user_watches)"
    B=$(reloads)
    renew
    e2e_wait_until 30 "the renewal seen by polling: a reload" reloads_at_least $((B + 1)) || show_daemon
    noticed=$(($(e2e_now_ms) - RENEWED_MS))
    e2e_log "polling (every 2 s, settle 1 s): reload $noticed ms after certbot returned"
    assert_eq "the renewal, seen by polling only, is reloaded once" "$((B + 1))" "$(reloads)"
    e2e_wait_until 10 "the record of the renewal" deployed_is "$S1" "$NEW_SHA" || true
    assert_eq "the record names the renewed certificate" "$NEW_SHA" "$(deployed_in "$S1")"
    hold 5 "still one reload through two polls and a recheck" reloads_are $((B + 1)) || true
    polled_reloads=$(($(reloads) - B))
    ledger "inotify watch limit (user.max_inotify_watches=4, needs 6)" "inotify-watch-limit logged; renewal polled, reloaded x$polled_reloads" "$(awk "BEGIN{printf \"%.1f\", $noticed/1000}")"
    # The limit raised (in that namespace): the missing watches are added at the next poll.
    nsenter -U -t "$DPID" sh -c 'echo 100 >/proc/sys/user/max_inotify_watches'
    e2e_wait_until 10 "the watches to be added at the next poll" log_has "certreload_code=inotify-watches-restored" || show_daemon
    assert_eq "the limit raised: the daemon says its watches are in place again" "yes" "$(log_has 'inotify watches are in place for every lineage again' && echo yes || echo no)"
    B=$(reloads)
    renew
    e2e_wait_until 30 "the renewal seen by inotify again" reloads_at_least $((B + 1)) || show_daemon
    e2e_log "inotify again: reload $(($(e2e_now_ms) - RENEWED_MS)) ms after certbot returned"
    hold 3 "one reload for that renewal" reloads_are $((B + 1)) || true
    assert_eq "the daemon still runs" "yes" "$(pid_alive "$DPID" && echo yes || echo no)"
    daemon_stop

    # -----------------------------------------------------------------------------------------
    e2e_section "2. no inotify instance at all: user.max_inotify_instances = 0 in its namespace"
    S2=$E2E_TMP/state-instances
    write_config "$S2"
    B=$(reloads)
    mapfile -t wrap < <(in_userns "$HOST_WATCHES" 0)
    daemon_start instance-limit "${wrap[@]}"
    e2e_wait_until 30 "the first pass (a reload: no record yet)" reloads_at_least $((B + 1)) || show_daemon
    e2e_wait_until 10 "the instance-limit message" log_has "certreload_code=inotify-instance-limit" || show_daemon
    line=$(log_line "certreload_code=inotify-instance-limit")
    e2e_log "the daemon said: ${line:0:700}"
    assert_has "names the sysctl in effect and its value" "user.max_inotify_instances is 0" "$line"
    assert_has "names the kernel's refusal" "Too many open files" "$line"
    assert_has "polls every lineage" "Polling all 1 lineage(s) every 2 s" "$line"
    assert_has "says a restart is needed after the fix" "restart certreload" "$line"
    B=$(reloads)
    renew
    e2e_wait_until 30 "the renewal seen by polling: a reload" reloads_at_least $((B + 1)) || show_daemon
    noticed=$(($(e2e_now_ms) - RENEWED_MS))
    e2e_log "polling only: reload $noticed ms after certbot returned"
    hold 5 "one reload for that renewal" reloads_are $((B + 1)) || true
    ledger "inotify instance limit (user.max_inotify_instances=0)" "inotify-instance-limit logged; all lineages polled, renewal reloaded x$(($(reloads) - B))" "$(awk "BEGIN{printf \"%.1f\", $noticed/1000}")"
    daemon_stop
fi

# ---------------------------------------------------------------------------------------------
e2e_section "3. the wall clock set back 1 day, then forward 60 days, while watching"
SHIFT_LIB=$E2E_TMP/wallclock_shift.so
if ! command -v gcc >/dev/null 2>&1 || ! gcc -shared -fPIC -O2 -o "$SHIFT_LIB" "$E2E_ROOT/Tests/Support/wallclock_shift.c" -ldl 2>"$E2E_OUT/gcc.err"; then
    e2e_skip "the clock-jump run" "cannot build Tests/Support/wallclock_shift.c (scripts/install-deps --test installs gcc): $(head -c 300 "$E2E_OUT/gcc.err" 2>/dev/null)"
else
    S3=$E2E_TMP/state-clock
    write_config "$S3"
    CLOCK=$E2E_TMP/wallclock-shift
    echo 0 >"$CLOCK"
    # The daemon's wall clock (time, gettimeofday, CLOCK_REALTIME) is shifted by the seconds in
    # $CLOCK, read at every call; its monotonic clocks and timers (settle window, backoff,
    # recheck) stay real, as when an administrator sets the system clock. libfaketime cannot
    # do this to certreload: Tests/Support/wallclock_shift.c says why.
    B=$(reloads)
    daemon_start clock env LD_PRELOAD="$SHIFT_LIB" WALLCLOCK_SHIFT_FILE="$CLOCK"
    # $DPID is the shell's child until it has exec'd env and then certreload: wait for the library
    # to be mapped rather than look once (a look right after the fork saw bash's maps, CI 16:34).
    shift_mapped() { grep -q "wallclock_shift.so" "/proc/$DPID/maps" 2>/dev/null; }
    e2e_wait_until 10 "the preloaded clock library in certreload's maps" shift_mapped || true
    assert_eq "the shifted clock reaches the daemon" "yes" "$(shift_mapped && echo yes || echo no)"
    e2e_wait_until 30 "the first pass (a reload: no record yet)" reloads_at_least $((B + 1)) || show_daemon
    assert_eq "the first pass: one reload" "$((B + 1))" "$(reloads)"
    assert_eq "70 days left at the real time: no expiry warning" "0" "$(log_count "certreload_code=expiring-soon")"
    # Back one day: certbot (at the real time) renews; to the daemon the new certificate's
    # notBefore is a day in the future.
    echo $((-86400)) >"$CLOCK"
    B=$(reloads)
    renew
    V2_SHA=$NEW_SHA
    e2e_wait_until 30 "the daemon to find the renewed certificate not yet valid" log_has "web: [not-yet-valid]" || show_daemon
    line=$(log_line "web: [not-yet-valid]")
    e2e_log "the daemon said: ${line:0:400}"
    hold 4 "a day behind: the not-yet-valid certificate is not reloaded" reloads_are "$B" || true
    back_reloads=$(($(reloads) - B))
    assert_eq "the record still names the previous certificate" "no" "$(deployed_is "$S3" "$V2_SHA" && echo yes || echo no)"
    # Forward 60 days (61 from the moment before): the pending certificate is valid again, and
    # now within warn-days (70 - 60 = 10 days left).
    echo $((60 * 86400)) >"$CLOCK"
    T=$(e2e_now_ms)
    e2e_wait_until 30 "the pending renewal to be reloaded after the jump forward" reloads_at_least $((B + 1)) || show_daemon
    e2e_log "jump forward: pending renewal reloaded $(($(e2e_now_ms) - T)) ms later"
    e2e_wait_until 15 "an expiring-soon warning" log_has "certreload_code=expiring-soon" || show_daemon
    line=$(log_line "certreload_code=expiring-soon")
    e2e_log "the daemon said: ${line:0:300}"
    assert_eq "the warning counts from the jumped clock (70 - 60 days: 9 whole days left)" "yes" \
        "$([[ $line =~ in\ (9|10)\ day\(s\)\ \(warning\ threshold\ 14\ days\) ]] && echo yes || echo "no: ${line:0:300}")"
    hold 4 "after the jump forward: exactly one reload for the pending renewal" reloads_are $((B + 1)) || true
    forward_reloads=$(($(reloads) - B))
    assert_eq "the record names the renewed certificate" "$V2_SHA" "$(deployed_in "$S3")"
    # A renewal at +60 days: one reload.
    B=$(reloads)
    renew
    e2e_wait_until 30 "the renewal at +60 days to be reloaded" reloads_at_least $((B + 1)) || show_daemon
    hold 4 "one reload for the renewal at +60 days" reloads_are $((B + 1)) || true
    at60_reloads=$(($(reloads) - B))
    # The clock set right again: nothing to reload.
    echo 0 >"$CLOCK"
    B=$(reloads)
    hold 7 "the clock set right again (two rechecks): no reload" reloads_are "$B" || true
    back_again=$(($(reloads) - B))
    assert_eq "the daemon still runs" "yes" "$(pid_alive "$DPID" && echo yes || echo no)"
    daemon_stop
    ledger "wall clock -1 day, renewal" "not-yet-valid, reloaded x$back_reloads (kept pending)"
    ledger "wall clock +60 days" "pending renewal reloaded x$forward_reloads; expiring-soon logged; next renewal reloaded x$at60_reloads"
    ledger "wall clock set right again" "reloaded x$back_again"
fi

# ---------------------------------------------------------------------------------------------
e2e_section "4. the state directory read-only, full and deleted while watching"
S4=$E2E_TMP/state-tmpfs
mkdir -p "$S4"
mount -t tmpfs -o size=64k,mode=0750 tmpfs "$S4"
e2e_defer "umount '$S4' 2>/dev/null"
write_config "$S4"
B=$(reloads)
daemon_start state
e2e_wait_until 30 "the first pass (a reload: no record yet)" reloads_at_least $((B + 1)) || show_daemon
e2e_wait_until 10 "the first record" test -s "$S4/web.state" || show_daemon
# state_fault WHAT BREAK REPAIR CAUSE: break the directory, renew, check, repair, check.
state_fault() {
    local what=$1 break_it=$2 repair=$3 cause=$4 before_unwritable before_recorded t
    before_unwritable=$(log_count "certreload_code=state-unwritable")
    before_recorded=$(log_count "certreload_code=state-recorded")
    eval "$break_it"
    B=$(reloads)
    renew
    e2e_wait_until 30 "$what: the renewal to be reloaded" reloads_at_least $((B + 1)) || show_daemon
    e2e_wait_until 10 "$what: state-unwritable in the log" log_count_above "certreload_code=state-unwritable" "$before_unwritable" || show_daemon
    line=$(grep -F "certreload_code=state-unwritable" "$DLOG" | tail -n 1)
    assert_has "$what: state-unwritable names the file" "$S4/web.state" "$line"
    assert_has "$what: state-unwritable names the cause" "$cause" "$line"
    assert_has "$what: state-unwritable says the record is kept" "keeps the record in memory" "$line"
    hold 4 "$what: no second reload while it stays unwritable (a recheck included)" reloads_are $((B + 1)) || true
    eval "$repair"
    t=$(e2e_now_ms)
    e2e_wait_until 30 "$what: the record written once writable" log_count_above "certreload_code=state-recorded" "$before_recorded" || show_daemon
    t=$(($(e2e_now_ms) - t))
    e2e_log "$what: recorded $t ms after the repair"
    assert_eq "$what: the record names the renewed certificate" "$NEW_SHA" "$(deployed_in "$S4")"
    hold 4 "$what: no reload for it after the repair" reloads_are $((B + 1)) || true
    ledger "state dir $what during a renewal" "state-unwritable ($cause); reloaded x$(($(reloads) - B)); recorded once writable (seconds: after the repair), no second reload" "$(awk "BEGIN{printf \"%.1f\", $t/1000}")"
}
state_fault "read-only" "mount -o remount,ro '$S4'" "mount -o remount,rw '$S4'" "Read-only file system"
state_fault "full" "dd if=/dev/zero of='$S4/filler' bs=4k count=100 2>/dev/null || true" "rm -f '$S4/filler'" "No space left on device"
# Deleted while running: written again from memory at the next recheck, nothing reloaded.
before=$(log_count "certreload_code=state-missing")
umount "$S4"
rm -rf "$S4"
B=$(reloads)
e2e_wait_until 15 "the deleted state directory to be noticed" log_count_above "certreload_code=state-missing" "$before" || show_daemon
assert_eq "deleted: the directory is created again with the record" "$NEW_SHA" "$(deployed_in "$S4")"
assert_eq "deleted: created again with mode 0750" "750" "$(stat -c %a "$S4" 2>/dev/null || echo none)"
hold 4 "deleted: nothing reloaded" reloads_are "$B" || true
deleted_reloads=$(($(reloads) - B))
renew
e2e_wait_until 30 "a renewal after that to be reloaded" reloads_at_least $((B + 1)) || show_daemon
hold 3 "one reload for it" reloads_are $((B + 1)) || true
e2e_wait_until 10 "its record" deployed_is "$S4" "$NEW_SHA" || true
ledger "state dir deleted while watching" "state-missing; recreated (0750) from memory, reloaded x$deleted_reloads; next renewal reloaded x$(($(reloads) - B))"
assert_eq "the daemon still runs" "yes" "$(pid_alive "$DPID" && echo yes || echo no)"
daemon_stop
assert_file_lacks "no private key material in the daemon's logs" "PRIVATE KEY" "$E2E_OUT"/watch-*.log

e2e_finish watch-faults

#!/usr/bin/env bash
# certreload.service's watchdog under real systemd as PID 1 (Tests/e2e/systemd/lib.sh),
# WatchdogSec= as shipped (60 s: the daemon pings every 30 s): two targets whose reload
# commands block for longer than the watchdog interval must not get the daemon killed or
# restarted, a third, fast target on another lineage is still deployed on time, and
# `systemctl stop` ends within TimeoutStopSec while the slow reloads are still blocking.
#
#   sudo Tests/e2e/systemd-watchdog.sh    # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# e2e-scope: package  (tests the installed package: skipped by run-all.sh --binary-only)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=systemd/lib.sh
source "$here/systemd/lib.sh"

e2e_init systemd-watchdog
e2e_require openssl python3 curl unshare nsenter dpkg-deb
SLOW=slow.test
FAST=fast.test

e2e_section "setup: pebble, the booted system, the package, two lineages"
pebble_start
sd_boot
sd_install_certreload
sd_certbot_setup
sd_issue "$SLOW" -d "$SLOW" || e2e_die "certbot could not issue $SLOW"
sd_issue "$FAST" -d "$FAST" || e2e_die "certbot could not issue $FAST"
# The slow reload: would block 75 s (> WatchdogSec) and leaves a line in the state directory
# (the only place the sandbox lets it write); the fast one only leaves its line. The daemon
# cuts any reload at 30 s (TargetPipeline.reloadTimeout, whatever the target's `timeout`) and
# retries it, so the two slow targets stay in blocked reloads, one after the other, for as
# long as the test watches.
cat >"$E2E_TMP/slow-reload" <<'SH'
#!/bin/sh
echo "start $1 $(date +%s)" >>/var/lib/certreload/reloads.log
sleep 75
echo "end $1 $(date +%s)" >>/var/lib/certreload/reloads.log
SH
cat >"$E2E_TMP/fast-reload" <<'SH'
#!/bin/sh
echo "fast $(date +%s)" >>/var/lib/certreload/reloads.log
SH
sd_put "$E2E_TMP/slow-reload" /usr/local/bin/certreload-e2e-slow 0755
sd_put "$E2E_TMP/fast-reload" /usr/local/bin/certreload-e2e-fast 0755
cat >"$E2E_TMP/certreload.toml" <<TOML
settle = 1
settle-max = 30

[target.slow1]
lineages = ["$SLOW"]
user = "root"
reload = { command = ["/usr/local/bin/certreload-e2e-slow", "slow1"], timeout = 100 }

[target.slow2]
lineages = ["$SLOW"]
user = "root"
reload = { command = ["/usr/local/bin/certreload-e2e-slow", "slow2"], timeout = 100 }

[target.fast]
lineages = ["$FAST"]
user = "root"
reload = { command = ["/usr/local/bin/certreload-e2e-fast"] }
TOML
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
LOG=$SD_ROOT/var/lib/certreload/reloads.log
fast_count() { grep -c '^fast ' "$LOG" 2>/dev/null || true; }
slow_started() { (($(grep -c '^start ' "$LOG" 2>/dev/null || true) >= $1)); }

e2e_section "1. start: the slow targets block in their reloads"
sd_exec systemctl start certreload.service || e2e_die "certreload.service did not start"
MAINPID=$(sd_unit_prop certreload.service MainPID)
# WatchdogUSec is the running service's (infinity before it starts).
WATCHDOG=$(sd_unit_prop certreload.service WatchdogUSec)
TIMEOUT_STOP=$(sd_exec systemctl show -p TimeoutStopUSec --value certreload.service)
e2e_log "as shipped: WatchdogSec=$WATCHDOG TimeoutStopSec=$TIMEOUT_STOP"
assert_eq "WatchdogSec as shipped" "1min" "$WATCHDOG"
e2e_wait_until 30 "both slow reloads to be running" slow_started 2 || true
assert_eq "both slow reloads started" "2" "$(grep -c '^start ' "$LOG" 2>/dev/null || true)"
fast_once() { grep -q '^fast ' "$LOG" 2>/dev/null; }
e2e_wait_until 30 "the fast target's first deployment" fast_once || true
F0=$(fast_count)
BLOCK_START=$SECONDS

e2e_section "2. while they block: a renewal of $FAST is deployed on time"
RENEW_DONE_MS=0
sd_renew "$FAST" || e2e_die "certbot renew $FAST failed"
RENEW_DONE_MS=$(e2e_now_ms)
fast_deployed() { (($(fast_count) > F0)); }
if e2e_wait_until 20 "the fast target to be deployed after the renewal" fast_deployed; then
    e2e_pass "fast target deployed $(($(e2e_now_ms) - RENEW_DONE_MS)) ms after certbot renew returned (slow reloads still blocking)"
else
    e2e_fail "fast target deployed while the slow reloads block" "a deployment within 20 s" "none"
fi

e2e_section "3. past the watchdog interval: not killed, not restarted"
WD0=$(sd_exec systemctl show -p WatchdogTimestampMonotonic --value certreload.service)
past_watchdog() { ((SECONDS - BLOCK_START >= 65)); }
# Wait on the clock for the watchdog interval to pass (what is tested is that nothing
# happens in it), polling the unit so a kill would show at once.
unit_changed() { [[ $(sd_unit_prop certreload.service MainPID) != "$MAINPID" ]]; }
while ! past_watchdog; do
    if unit_changed; then break; fi
    sleep 1
done
assert_eq "same main pid after $((SECONDS - BLOCK_START)) s of blocked reloads" "$MAINPID" "$(sd_unit_prop certreload.service MainPID)"
assert_eq "NRestarts=0" "0" "$(sd_unit_prop certreload.service NRestarts)"
assert_eq "still active (running)" "active running" "$(sd_unit_prop certreload.service ActiveState) $(sd_unit_prop certreload.service SubState)"
assert_ne "the watchdog was pinged while the reloads blocked" "$WD0" \
    "$(sd_exec systemctl show -p WatchdogTimestampMonotonic --value certreload.service)"
assert_eq "no watchdog timeout in the journal" "" \
    "$(sd_journal -u certreload.service -o cat | grep -i 'watchdog timeout' || true)"

e2e_section "4. systemctl stop while slow reloads block again"
S0=$(grep -c '^start ' "$LOG" || true)
sd_renew "$SLOW" || e2e_die "certbot renew $SLOW failed"
e2e_wait_until 40 "the slow reloads to start again" slow_started $((S0 + 2)) || true
slow_running() { sd_exec pgrep -f certreload-e2e-slow >/dev/null; }
assert_eq "slow reload commands are running when stop is asked" "yes" "$(slow_running && echo yes || echo no)"
STOP_MS=$(e2e_now_ms)
sd_exec systemctl stop certreload.service || true
STOP_TOOK=$(($(e2e_now_ms) - STOP_MS))
e2e_log "systemctl stop took $STOP_TOOK ms (TimeoutStopSec=$TIMEOUT_STOP)"
assert_lt "systemctl stop within TimeoutStopSec (30 s)" 30000 "$STOP_TOOK"
assert_eq "stopped with Result=success (not killed by the stop timeout)" "success" "$(sd_unit_prop certreload.service Result)"
assert_eq "no process left in the unit (the blocked reload commands included)" "no" "$(slow_running && echo yes || echo no)"
sd_journal -u certreload.service >"$E2E_OUT/certreload.journal" || true
e2e_finish "systemd-watchdog.sh"

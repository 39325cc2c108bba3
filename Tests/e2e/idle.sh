#!/usr/bin/env bash
# End-to-end test that `certreload watch` is idle when nothing changes: a real-shaped
# configuration (one target with an `http` reload endpoint on loopback, two verify URLs over
# STARTTLS — smtp:// and imap:// against real OpenSSL servers — a service user, a private CA,
# systemd's notify socket), a first pass that really reloads and verifies, then a measured
# idle window in which the daemon's wake-ups are counted from /proc (voluntary context
# switches of every thread, threads appearing or exiting; Tests/bench/idle_probe.py).
#   1. start with no state: READY=1, the servers already serve the lineage (no reload); then
#      a renewal in certbot's order (Tests/bench/renew.py): exactly one reload request reaches
#      the endpoint and both verify URLs see version 2 (the servers switch to it after their
#      first connection, as if reloaded then); the state file records it as verified;
#   2. idle for IDLE_SECONDS: no thread appears, and at most 2 wake-ups in all — none is
#      expected: certreload's pool threads wait without a timeout and its timer thread only
#      for a due deadline (Sources/CCertReloadShims/executor.c), which replaced libdispatch's
#      pool and its 1 s monitor timer (swift-corelibs-libdispatch src/event/workqueue.c,
#      _dispatch_workq_init_once); a loop of certreload's own at any period up to
#      IDLE_SECONDS/3 breaks the bound;
#   3. control: the same daemon with WATCHDOG_USEC=1000000 (WATCHDOG=1 every 0.5 s) — the
#      probe must see those wake-ups, so that step 2 cannot pass because it sees nothing.
#
#   sudo Tests/e2e/idle.sh        # CERTRELOAD=path/to/binary; IDLE_SECONDS=20
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init idle
e2e_require openssl python3
python3 -c 'import cryptography' 2>/dev/null || e2e_die "needs python3-cryptography (apt-get install python3-cryptography; certbot pulls it in)"
BENCH=$E2E_ROOT/Tests/bench
SUPPORT=$E2E_ROOT/Tests/Support
IDLE=${IDLE_SECONDS:-20}
SVC=nobody
SVC_GROUP=$(id -gn nobody)
NAME=lineage00001.bench.test
HOST=mx.bench.test

e2e_section "setup: one lineage, two STARTTLS servers, a reload endpoint, a notify socket"
TREE=$(python3 "$BENCH/make_trees.py" --key-cycle ec256 --group "$SVC_GROUP" "$E2E_TMP/trees" 1 | awk '{print $2}')
LIVE=$TREE/live/$NAME
CA=$E2E_TMP/trees/pki/root.pem
# Version 2 written into archive/ now (certbot writes archive files before any link), so the
# servers can switch to it after their first connection.
V2=$(python3 "$BENCH/renew.py" prepare "$TREE" "$NAME")
ARCH=$TREE/archive/$NAME
start_server() { # start_server PROTOCOL: prints its port; version 1 to the first connection, then $V2
    local out=$E2E_OUT/$1.out
    python3 "$SUPPORT/starttls_server.py" --protocol "$1" --cert "$LIVE/fullchain.pem" --key "$LIVE/privkey.pem" \
        --renewed-cert "$ARCH/fullchain$V2.pem" --renewed-key "$ARCH/privkey$V2.pem" --renew-after 1 \
        --lifetime 300 >"$out" 2>"$E2E_OUT/$1.err" &
    e2e_defer "e2e_stop_pid $! 5"
    e2e_wait_until 10 "the $1 server" grep -q '^READY' "$out" || e2e_die "$1 server: $(cat "$E2E_OUT/$1.err")"
    awk '/^READY/ {print $2}' "$out"
}
SMTP_PORT=$(start_server smtp)
IMAP_PORT=$(start_server imap)
RECORD=$E2E_OUT/reloads.jsonl
: >"$RECORD"
python3 "$BENCH/reload_endpoint.py" --record "$RECORD" --lifetime 300 >"$E2E_OUT/endpoint.out" 2>"$E2E_OUT/endpoint.err" &
e2e_defer "e2e_stop_pid $! 5"
e2e_wait_until 10 "the reload endpoint" test -s "$E2E_OUT/endpoint.out" || e2e_die "endpoint: $(cat "$E2E_OUT/endpoint.err")"
HTTP_PORT=$(head -n 1 "$E2E_OUT/endpoint.out")
NSOCK=$E2E_TMP/notify.sock
NOTIFY_LOG=$E2E_OUT/notify.log
: >"$NOTIFY_LOG"
python3 - "$NSOCK" "$NOTIFY_LOG" <<'PY' 2>"$E2E_OUT/notify.err" &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    f.write("listening\n")
    while True:
        f.write(s.recv(65536).decode("utf-8", "replace").strip().replace("\n", "|") + "\n")
PY
e2e_defer "e2e_stop_pid $! 5"
e2e_wait_until 10 "the notify listener" grep -q '^listening$' "$NOTIFY_LOG" || e2e_die "notify listener: $(cat "$E2E_OUT/notify.err")"
CONF=$E2E_TMP/certreload.toml
cat >"$CONF" <<EOF
certbot-dir = "$TREE"
state-dir = "$E2E_TMP/state"
settle = 0.5

[target.mail]
lineages = ["$NAME"]
user = "$SVC"
hostnames = ["$HOST"]
reload = { http = "http://127.0.0.1:$HTTP_PORT/reload" }
verify = ["smtp://$HOST:$SMTP_PORT", "imap://$HOST:$IMAP_PORT"]
connect = "127.0.0.1"
ca-file = "$CA"
EOF

# run_daemon TAG [ENV...]: starts the daemon with the notify socket (and ENV), waits for READY=1.
run_daemon() {
    local tag=$1
    shift
    env NOTIFY_SOCKET="$NSOCK" "$@" "$CERTRELOAD" watch --config "$CONF" >"$E2E_OUT/$tag.out" 2>"$E2E_OUT/$tag.err" &
    DAEMON=$!
    e2e_defer "e2e_stop_pid $DAEMON 10"
    READY=no
    e2e_wait_until 30 "READY=1 from certreload watch ($tag)" grep -q "READY=1" "$NOTIFY_LOG" && READY=yes
    [[ $READY == yes ]] || sed 's/^/    | /' "$E2E_OUT/$tag.err"
}
# probe TAG: idle_probe over IDLE seconds; sets WAKEUPS, NEW_THREADS, CPU_MS and prints the per-thread counts.
probe() {
    python3 "$BENCH/idle_probe.py" "$DAEMON" "$IDLE" >"$E2E_OUT/$1.probe.json"
    WAKEUPS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wakeups"])' "$E2E_OUT/$1.probe.json")
    NEW_THREADS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["new_threads"])' "$E2E_OUT/$1.probe.json")
    CPU_MS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_ms"])' "$E2E_OUT/$1.probe.json")
    e2e_log "$1: $WAKEUPS wake-ups, $NEW_THREADS new thread(s), $CPU_MS ms CPU in ${IDLE} s; per thread: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["per_thread"])' "$E2E_OUT/$1.probe.json")"
}

reloads() { grep -c '"method": "POST"' "$RECORD" || true; }
verified_v2() { grep -qF "verified-sha256 = $SHA2" "$E2E_TMP/state/mail.state" 2>/dev/null; }
SHA2=$(cert_sha256 "$ARCH/cert$V2.pem")

e2e_section "1. first pass, then a renewal: reload over http, verify over smtp and imap STARTTLS"
run_daemon first
assert_eq "READY=1 after the first pass" "yes" "$READY"
assert_eq "first pass: the servers already serve version 1, no reload" "0" "$(reloads)"
python3 "$BENCH/renew.py" link "$TREE" "$NAME" "$V2" >/dev/null
e2e_wait_until 30 "version $V2 recorded as verified" verified_v2 || true
assert_eq "renewal: version $V2 reloaded and verified on both URLs (state file)" "yes" "$(verified_v2 && echo yes || echo no)"
assert_eq "renewal: exactly one reload request reached the endpoint" "1" "$(reloads)"

e2e_section "2. idle for ${IDLE} s"
probe idle
assert_eq "no thread appears while idle" "0" "$NEW_THREADS"
assert_lt "wake-ups in ${IDLE} s: none expected, at most 2" "3" "$WAKEUPS"
assert_eq "no further reload while idle" "1" "$(reloads)"
e2e_stop_pid "$DAEMON" 10

e2e_section "3. control: the same daemon with the watchdog at 0.5 s must be seen waking"
: >"$NOTIFY_LOG"
echo listening >"$NOTIFY_LOG"
run_daemon control WATCHDOG_USEC=1000000
assert_eq "READY=1 (control)" "yes" "$READY"
probe control
assert_lt "the probe sees the watchdog: more than one extra wake-up a second" "$WAKEUPS" "$((2 * IDLE))"
e2e_stop_pid "$DAEMON" 10

e2e_finish "idle.sh"

#!/usr/bin/env bash
# End-to-end test of the long-running `certreload watch` daemon: a lineage issued by real
# certbot from a real pebble, a real nginx on loopback (its own nginx.conf and pid file),
# one target whose user is a service user with group access, reloaded by a `command` (a
# small script that appends a line to a marker file, then SIGHUPs nginx's master) and
# verified over https with connect = 127.0.0.1. The daemon runs with NOTIFY_SOCKET set to a
# datagram socket read by a python3 helper, so the test knows when READY=1, RELOADING=1,
# STOPPING=1 and STATUS= arrive instead of sleeping.
#   0. start: READY=1 after the first pass; a server already serving is not reloaded; an
#      attribute change with no renewal does not reload it either;
#   1. certbot renew (no hook): exactly one reload, nginx serves the new certificate, and
#      the count stays at one through a further settle window;
#   2. SIGTERM: STOPPING=1, exit 0; a renewal while it is down is deployed on the next start;
#   3. archive/NAME made untraversable for the target's user, renew: the daemon names
#      not-traversable and the path, STATUS= shows the target failing, no reload, nginx keeps
#      the previous certificate; access restored: it deploys;
#   4. an invalid configuration written over the file, then SIGHUP: RELOADING=1 then READY=1,
#      refused, the daemon keeps running on the old configuration (a renewal is still
#      deployed); the good configuration restored: taken, and a last SIGTERM exits 0.
#
#   sudo Tests/e2e/watch.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init watch
e2e_require openssl python3 curl timeout
if ! command -v nginx >/dev/null 2>&1; then
    e2e_skip "every watch test" "nginx is not installed (scripts/install-deps --test installs nginx-light)"
    e2e_finish "watch.sh"
    exit
fi
SVC=${E2E_SERVICE_USER:-certreload-e2e-watch}
NAME=example.test
HOST=www.example.test
SETTLE=1

e2e_section "setup: pebble, lineage $NAME, service user $SVC"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$NAME" -d example.test -d '*.example.test' || e2e_die "certbot could not issue $NAME"
e2e_service_user "$SVC"
grant_group "$C" "$SVC"
LIVE=$C/live/$NAME
ARCH=$C/archive/$NAME
V1=$(cert_sha256 "$LIVE/cert.pem")
e2e_log "issued $NAME: cert sha256 $V1"

e2e_section "setup: nginx on loopback"
nginx_start "$LIVE" "$HOST"
PORT=$NGINX_PORT
PIDFILE=$NGINX_PIDFILE
assert_eq "before renewal: nginx serves cert version 1 (openssl s_client)" "$V1" "$(served_sha256 "$PORT" "$HOST")"

e2e_section "setup: certreload configuration, counting reload command, notify socket"
CONF=$E2E_TMP/certreload.toml
STATE=$E2E_TMP/state
MARKER=$E2E_TMP/reloads
RELOAD_CMD=$E2E_TMP/reload-nginx-counting.sh
cat >"$RELOAD_CMD" <<EOF
#!/bin/sh
# The target's reload command (run as argv, no shell string in the config): one line per
# reload in the marker file, then SIGHUP to nginx's master.
echo "\$(date +%s.%N) \$(readlink '$LIVE/cert.pem')" >>'$MARKER'
exec kill -HUP "\$(cat '$PIDFILE')"
EOF
chmod 0755 "$RELOAD_CMD"
cat >"$CONF" <<EOF
certbot-dir = "$C"
state-dir = "$STATE"
settle = $SETTLE
settle-max = 30

[target.web]
lineages = ["$NAME"]
user = "$SVC"
hostnames = ["$HOST"]
reload = { command = ["$RELOAD_CMD"], timeout = 20 }
verify = ["https://$HOST:$PORT"]
connect = "127.0.0.1"
verify-timeout = 15
EOF
cp "$CONF" "$E2E_TMP/certreload.toml.good"
cr_show config-check config check --config "$CONF"
assert_eq "config check accepts the watch configuration (exit 0)" "0" "$CR_RC"
# A target naming thousands of lineages is summarised on one short line, not listed whole.
MANY=$E2E_TMP/many.toml
{ printf 'certbot-dir = "%s"\nstate-dir = "%s"\n[target.many]\nreload = { command = ["/bin/true"] }\nlineages = [' "$C" "$STATE"
  seq -f '"lineage-%g.example"' 1 3000 | paste -sd, -; printf ']\n'; } >"$MANY"
cr_show config-check-many config check --config "$MANY"
assert_eq "config check accepts a target of 3,000 lineages (exit 0)" "0" "$CR_RC"
LINEAGES_LINE=$(grep '^  lineages' "$CR_OUT" || true)
assert_eq "it names the first 8 and counts the rest" \
    "  lineages  lineage-1.example, lineage-2.example, lineage-3.example, lineage-4.example, lineage-5.example, lineage-6.example, lineage-7.example, lineage-8.example and 2992 more (3000 in all)" \
    "$LINEAGES_LINE"

# The notify socket: a python3 helper binds a datagram socket with SO_PASSCRED and writes one
# line per datagram, "pid=PID FIELD|FIELD...", to $NOTIFY_LOG (flushed at once).
NSOCK=$E2E_TMP/notify.sock
NOTIFY_LOG=$E2E_OUT/notify.log
cat >"$E2E_TMP/listen.py" <<'PY'
# listen.py notify|journal SOCKET OUT: one line per datagram received on SOCKET, appended to OUT.
#   notify:  "pid=PID FIELD|FIELD..." (sd_notify; the sender's pid from SO_PASSCRED)
#   journal: "pid=PID PRIORITY=p CERTRELOAD_CODE=c CERTRELOAD_PATH=x MESSAGE=m" (journald's
#            native protocol, as sd_journal_sendv writes it; other fields left out)
import socket, struct, sys
mode, path, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
def journal_fields(data):
    fields, i = {}, 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0: break
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1); i = nl + 1
        else:
            k = line; n = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            v = data[nl + 9:nl + 9 + n]; i = nl + 9 + n + 1
        fields[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace").replace("\n", " ")
    return fields
with open(out, "a", buffering=1) as f:
    f.write("listening\n")
    while True:
        data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(12))
        pid = "?"
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = str(struct.unpack("iII", value[:12])[0])
        if mode == "notify":
            text = data.decode("utf-8", "replace").strip().replace("\n", "|")
        else:
            d = journal_fields(data)
            keys = ["PRIORITY", "CERTRELOAD_CODE", "CERTRELOAD_PATH", "CERTRELOAD_TARGET", "MESSAGE"]
            text = " ".join("%s=%s" % (k, d[k]) for k in keys if k in d)
        f.write("pid=%s %s\n" % (pid, text))
PY
: >"$NOTIFY_LOG"
python3 "$E2E_TMP/listen.py" notify "$NSOCK" "$NOTIFY_LOG" 2>"$E2E_OUT/notify-listen.err" &
NOTIFY_PID=$!
e2e_defer "e2e_stop_pid $NOTIFY_PID 5"
e2e_wait_until 10 "the notify listener" grep -q '^listening$' "$NOTIFY_LOG" || e2e_die "notify listener did not start: $(cat "$E2E_OUT/notify-listen.err")"

# With NOTIFY_SOCKET set, certreload logs to journald (sd_journal_sendv), and libsystemd drops
# entries silently when journald's socket is absent. So that the test reads the daemon's own
# log wherever it runs, the daemon gets a private mount namespace (unshare -m) in which a
# socket of ours, read by the same helper, is /run/systemd/journal/socket. Without unshare the
# log checks fall back to journalctl (journald running) or stderr.
JOURNAL_LOG=$E2E_OUT/journal.log
: >"$JOURNAL_LOG"
JOURNAL_MODE=none
if unshare --mount --propagation private true 2>/dev/null; then
    if [[ -d /run/systemd/journal ]]; then FAKE_AT=/run/systemd/journal; FAKE_DIR=$E2E_TMP/fakerun/systemd/journal
    elif [[ -d /run/systemd ]]; then FAKE_AT=/run/systemd; FAKE_DIR=$E2E_TMP/fakerun/systemd
    else FAKE_AT=/run; FAKE_DIR=$E2E_TMP/fakerun; fi
    JSOCK_DIR=$E2E_TMP/fakerun/systemd/journal
    mkdir -p "$JSOCK_DIR"
    python3 "$E2E_TMP/listen.py" journal "$JSOCK_DIR/socket" "$JOURNAL_LOG" 2>"$E2E_OUT/journal-listen.err" &
    JOURNAL_PID=$!
    e2e_defer "e2e_stop_pid $JOURNAL_PID 5"
    e2e_wait_until 10 "the journal listener" grep -q '^listening$' "$JOURNAL_LOG" || e2e_die "journal listener did not start: $(cat "$E2E_OUT/journal-listen.err")"
    JOURNAL_MODE=private
elif [[ -S /run/systemd/journal/socket ]] && command -v journalctl >/dev/null 2>&1; then
    JOURNAL_MODE=journald
fi
e2e_log "daemon log: $JOURNAL_MODE (private: a socket of ours in a mount namespace; journald: journalctl; none: stderr only)"

# --- helpers over the daemon ---------------------------------------------------------------

reloads() { if [[ -f $MARKER ]]; then wc -l <"$MARKER" | tr -dc '0-9'; else echo 0; fi; }
reloads_are() { [[ $(reloads) == "$1" ]]; }
reloads_at_least() { (($(reloads) >= $1)); }
# The notify log's line count: a mark, so that later checks look only at what came after it.
notify_mark() { wc -l <"$NOTIFY_LOG" | tr -dc '0-9'; }
# notify_after MARK FIELD: a datagram from the current daemon, after MARK, carries FIELD (fixed).
notify_after() {
    awk -v m="$1" -v p="pid=$DPID " -v f="$2" 'NR > m && index($0, p) == 1 && index($0, f) { ok = 1 } END { exit !ok }' "$NOTIFY_LOG"
}
# notify_sequence MARK A B: after MARK, a datagram with A, then a later one with B.
notify_sequence() {
    awk -v m="$1" -v p="pid=$DPID " -v a="$2" -v b="$3" '
        NR > m && index($0, p) == 1 { if (index($0, a)) seen = 1; else if (seen && index($0, b)) ok = 1 }
        END { exit !ok }' "$NOTIFY_LOG"
}
# The last STATUS= the current daemon sent.
last_status() { grep -F "pid=$DPID STATUS=" "$NOTIFY_LOG" | tail -n 1 | sed 's/^pid=[0-9]* STATUS=//' || true; }
status_has() { [[ $(last_status) == *"$1"* ]]; }
status_lacks() { [[ $(last_status) != *"$1"* ]]; }
# Everything the daemons logged: the private journal socket's entries, or journalctl's, plus
# stderr (where certreload writes when sending to journald fails).
daemon_log() {
    cat "$E2E_OUT"/watch-*.log 2>/dev/null || true
    case $JOURNAL_MODE in
        private) cat "$JOURNAL_LOG" ;;
        journald)
            local pid
            for pid in "${DPIDS[@]}"; do journalctl --no-pager -o cat "_PID=$pid" 2>/dev/null || true; done
            ;;
    esac
}
daemon_log_count() { daemon_log | grep -cF -- "$1" || true; }
daemon_log_has() { daemon_log | grep -qF -- "$1"; }
log_count_above() { (($(daemon_log_count "$1") > $2)); }
# state_has KEY SHA: the target's state file records SHA under KEY (deployed-sha256 / verified-sha256).
state_has() { grep -qx "$1 = $2" "$STATE/web.state" 2>/dev/null; }
# hold SECONDS WHAT COMMAND...: COMMAND keeps succeeding for SECONDS (polled every 0.1 s).
hold() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$(($(e2e_now_ms) + seconds * 1000))
    while (($(e2e_now_ms) < deadline)); do
        if ! "$@" >/dev/null 2>&1; then
            e2e_fail "$what (held for ${seconds}s)" "true throughout" "false after $(((seconds * 1000 - (deadline - $(e2e_now_ms))) / 1000))s"
            return 0
        fi
        sleep 0.1
    done
    e2e_pass "$what (held for ${seconds}s)"
}
# Each run of the daemon: its own log file; every pid is stopped at exit.
DPIDS=()
RUN=0
daemon_start() {
    RUN=$((RUN + 1))
    DLOG=$E2E_OUT/watch-$RUN.log
    if [[ $JOURNAL_MODE == private ]]; then
        # sh mounts our directory at $FAKE_AT, then execs certreload: the same pid throughout.
        NOTIFY_SOCKET=$NSOCK unshare --mount --propagation private \
            sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$FAKE_DIR" "$FAKE_AT" \
            "$CERTRELOAD" watch --config "$CONF" >"$DLOG" 2>&1 &
    else
        NOTIFY_SOCKET=$NSOCK "$CERTRELOAD" watch --config "$CONF" >"$DLOG" 2>&1 &
    fi
    DPID=$!
    DPIDS+=("$DPID")
    e2e_defer "e2e_stop_pid $DPID 15"
    e2e_log "certreload watch (run $RUN) pid $DPID, log ${DLOG##*/}"
}
daemon_alive() { pid_alive "$DPID"; }
# daemon_stop: SIGTERM; sets DRC (exit status, or 'timeout' after 20 s and a SIGKILL).
daemon_stop() {
    kill -TERM "$DPID"
    if e2e_wait_until 20 "certreload watch ($DPID) to exit after SIGTERM" pid_gone "$DPID"; then
        set +e
        wait "$DPID"
        DRC=$?
        set -e
    else
        kill -9 "$DPID" 2>/dev/null || true
        wait "$DPID" 2>/dev/null || true
        DRC=timeout
    fi
}
show_daemon() { show_log "watch-$RUN" "$DLOG"; show_log journal "$JOURNAL_LOG"; show_log notify "$NOTIFY_LOG"; }

# ---------------------------------------------------------------------------------------------
e2e_section "0. start: READY=1 after the first pass; a server already serving is left alone"
MARK=$(notify_mark)
T0=$(e2e_now_ms)
daemon_start
if e2e_wait_until 30 "READY=1 from certreload watch" notify_after "$MARK" READY=1; then
    e2e_pass "READY=1 arrived ($(($(e2e_now_ms) - T0)) ms after start)"
else
    e2e_fail "READY=1 arrives within 30 s" "READY=1" "$(tail -n 5 "$NOTIFY_LOG" | tr '\n' '|')"
    show_daemon
fi
assert_eq "the daemon runs" "yes" "$(daemon_alive && echo yes || echo no)"
assert_eq "STATUS= says 1 lineage, 1 target, no problems" "yes" \
    "$(status_has "watching 1 lineage for 1 target" && status_has "no problems" && echo yes || echo "no: $(last_status)")"
assert_eq "at start nginx already serves the certificate: no reload" "0" "$(reloads)"
assert_eq "the first pass recorded version 1 as verified" "yes" "$(state_has verified-sha256 "$V1" && echo yes || echo "no: $(tr '\n' ' ' <"$STATE/web.state" 2>/dev/null)")"
# An attribute change on the lineage with no renewal (same mode written again): IN_ATTRIB,
# (Known to fail at 56a9804: the first pass's already-serving records only verified-sha256,
# so the next wake-up takes deployed-sha256 = none as "changed" and reloads unchanged cert1.)
# a check, no reload: the certificate on disk is the one nginx serves.
chmod "$(stat -c %a "$LIVE")" "$LIVE"
chmod "$(stat -c %a "$ARCH")" "$ARCH"
hold $((SETTLE + 3)) "an attribute change without a renewal does not reload" reloads_are 0

# ---------------------------------------------------------------------------------------------
e2e_section "1. certbot renew (no deploy hook): exactly one reload, nginx serves the new certificate"
B=$(reloads)  # the baseline: each step counts from here, so that one extra reload fails one step only
certbot_renew "$NAME" || e2e_die "certbot renew failed"
V2=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal wrote a new certificate (version 2)" "$V1" "$V2"
T1=$(e2e_now_ms)
e2e_wait_until 30 "a reload after the renewal" reloads_at_least $((B + 1)) || show_daemon
e2e_log "first reload $(($(e2e_now_ms) - T1)) ms after certbot returned"
assert_eq "one reload after the renewal" "$((B + 1))" "$(reloads)"
e2e_wait_until 20 "the daemon to record version 2 as verified" state_has verified-sha256 "$V2" || show_daemon
assert_eq "state records version 2 deployed and verified" "yes yes" \
    "$(state_has deployed-sha256 "$V2" && echo yes || echo no) $(state_has verified-sha256 "$V2" && echo yes || echo no)"
e2e_wait_until 20 "nginx to serve version 2" nginx_settled_serves "$HOST" "$V2" || true
assert_eq "nginx serves version 2 (openssl s_client vs live/$NAME/cert.pem)" "$V2" "$(served_sha256 "$PORT" "$HOST")"
cr_show verify-v2 verify --config "$CONF"
assert_eq "certreload verify: exit 0" "0" "$CR_RC"
assert_eq "STATUS= names the last reload and no problems" "yes" \
    "$(status_has "last reload: web at" && status_has "no problems" && echo yes || echo "no: $(last_status)")"
hold $((SETTLE + 3)) "the count stays at one reload after the settle window" reloads_are $((B + 1))
assert_eq "the daemon still runs" "yes" "$(daemon_alive && echo yes || echo no)"

# ---------------------------------------------------------------------------------------------
e2e_section "2. SIGTERM; a renewal while the daemon is down is deployed on the next start"
B=$(reloads)
MARK=$(notify_mark)
daemon_stop
assert_eq "SIGTERM: the daemon exits 0 within 20 s" "0" "$DRC"
assert_eq "SIGTERM: it sent STOPPING=1" "yes" "$(notify_after "$MARK" STOPPING=1 && echo yes || echo no)"
certbot_renew "$NAME" || e2e_die "certbot renew failed"
V3=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal while down wrote version 3" "$V2" "$V3"
assert_eq "nobody reloaded nginx while the daemon was down (still version 2, one reload)" "$V2 $B" "$(served_sha256 "$PORT" "$HOST") $(reloads)"
MARK=$(notify_mark)
daemon_start
e2e_wait_until 40 "READY=1 from the restarted daemon" notify_after "$MARK" READY=1 || show_daemon
assert_eq "restarted daemon: READY=1" "yes" "$(notify_after "$MARK" READY=1 && echo yes || echo no)"
# READY=1 comes after the first pass, which deploys what was missed.
assert_eq "at READY=1 the missed renewal was already reloaded (one more reload)" "$((B + 1))" "$(reloads)"
e2e_wait_until 20 "the reload of the missed renewal" reloads_at_least $((B + 1)) || show_daemon
e2e_wait_until 20 "nginx to serve version 3" nginx_settled_serves "$HOST" "$V3" || true
assert_eq "restart: nginx serves version 3" "$V3" "$(served_sha256 "$PORT" "$HOST")"
e2e_wait_until 20 "the daemon to record version 3 as verified" state_has verified-sha256 "$V3" || show_daemon
cr_show verify-v3 verify --config "$CONF"
assert_eq "certreload verify after the restart: exit 0" "0" "$CR_RC"
hold $((SETTLE + 2)) "the count stays at one more reload" reloads_are $((B + 1))

# ---------------------------------------------------------------------------------------------
e2e_section "3. archive/$NAME untraversable for $SVC: reported, no reload; access restored: deployed"
NT_BEFORE=$(daemon_log_count "not-traversable")
B=$(reloads)
chown root:root "$ARCH"
chmod 0700 "$ARCH"
e2e_log "archive/$NAME: $(stat -c '%A %U:%G' "$ARCH")"
certbot_renew "$NAME" || e2e_die "certbot renew failed"
V4=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal wrote version 4" "$V3" "$V4"
if e2e_wait_until 30 "the daemon to report not-traversable" log_count_above "not-traversable" "$NT_BEFORE"; then
    e2e_pass "the daemon's log names not-traversable"
else
    e2e_fail "the daemon's log names not-traversable" "[not-traversable]" "$(daemon_log | tail -n 5 | tr '\n' '|')"
fi
assert_eq "the not-traversable report names $ARCH" "yes" \
    "$(daemon_log | grep -F 'not-traversable' | grep -qF "$ARCH" && echo yes || echo "no: $(daemon_log | grep -F 'not-traversable' | head -n 2 | tr '\n' '|')")"
e2e_wait_until 20 "STATUS= to show the target failing" status_has "failing: web" || true
assert_eq "STATUS= shows the problem" "yes" "$(status_has "problems: failing: web" && echo yes || echo "no: $(last_status)")"
assert_eq "the daemon logs the target failing on not-traversable and retrying" "yes" \
    "$(daemon_log | grep -F 'web: [not-traversable]' | grep -qF 'retrying in' && echo yes || echo no)"
hold $((SETTLE + 3)) "no reload while the archive is blocked (count unchanged)" reloads_are "$B"
assert_eq "nginx still serves the previous certificate (version 3)" "$V3" "$(served_sha256 "$PORT" "$HOST")"
assert_eq "the state still records version 3 as deployed" "yes" "$(state_has deployed-sha256 "$V3" && echo yes || echo no)"
chgrp "$SVC" "$ARCH"
chmod 0750 "$ARCH"
T3=$(e2e_now_ms)
e2e_wait_until 30 "the deploy once access is restored" reloads_at_least $((B + 1)) || show_daemon
e2e_log "reload $(($(e2e_now_ms) - T3)) ms after access was restored"
assert_eq "access restored: one more reload" "$((B + 1))" "$(reloads)"
e2e_wait_until 20 "nginx to serve version 4" nginx_settled_serves "$HOST" "$V4" || true
assert_eq "access restored: nginx serves version 4" "$V4" "$(served_sha256 "$PORT" "$HOST")"
e2e_wait_until 20 "the daemon to record version 4 as verified" state_has verified-sha256 "$V4" || show_daemon
e2e_wait_until 10 "STATUS= without problems" status_has "no problems" || true
assert_eq "access restored: STATUS= has no problems" "yes" "$(status_has "no problems" && echo yes || echo "no: $(last_status)")"
assert_eq "access restored: the daemon says it is readable again" "yes" "$(daemon_log_has "readable to $SVC again" && echo yes || echo no)"
cr_show verify-v4 verify --config "$CONF"
assert_eq "certreload verify after access restored: exit 0" "0" "$CR_RC"
hold $((SETTLE + 2)) "the count stays at that one more reload" reloads_are $((B + 1))

# ---------------------------------------------------------------------------------------------
e2e_section "4. SIGHUP with an invalid configuration: refused, the old one keeps running"
REFUSED_BEFORE=$(daemon_log_count "configuration reload refused")
printf '# broken on purpose\ncertbot-dir = "%s"\n[target.web\nlineages = [\n' "$C" >"$CONF"
# Writing the file is itself seen (inotify on its directory): wait for that refusal first, so
# that the SIGHUP below is tested on its own.
e2e_wait_until 20 "the daemon to refuse the changed file" log_count_above "configuration reload refused" "$REFUSED_BEFORE" || show_daemon
MARK=$(notify_mark)
REFUSED_BEFORE=$(daemon_log_count "configuration reload refused")
kill -HUP "$DPID"
if e2e_wait_until 20 "RELOADING=1 then READY=1 after SIGHUP" notify_sequence "$MARK" RELOADING=1 READY=1; then
    e2e_pass "SIGHUP: RELOADING=1 then READY=1 on the notify socket"
else
    e2e_fail "SIGHUP: RELOADING=1 then READY=1 on the notify socket" "RELOADING=1, READY=1" "$(tail -n +"$((MARK + 1))" "$NOTIFY_LOG" | tr '\n' '|')"
fi
e2e_wait_until 10 "the refusal in the log" log_count_above "configuration reload refused" "$REFUSED_BEFORE" || true
assert_eq "SIGHUP: the log says the new configuration was refused" "yes" \
    "$(log_count_above "configuration reload refused" "$REFUSED_BEFORE" && echo yes || echo no)"
assert_eq "the refusal names the file" "yes" "$(daemon_log | grep -F 'configuration reload refused' | grep -qF "$CONF" && echo yes || echo no)"
assert_eq "the daemon keeps running after the refused SIGHUP" "yes" "$(daemon_alive && echo yes || echo no)"
# The old configuration still works: a renewal is deployed.
B=$(reloads)
certbot_renew "$NAME" || e2e_die "certbot renew failed"
V5=$(cert_sha256 "$LIVE/cert.pem")
e2e_wait_until 30 "a reload with the old configuration" reloads_at_least $((B + 1)) || show_daemon
assert_eq "with the invalid file in place, the old configuration deploys a renewal (one reload)" "$((B + 1))" "$(reloads)"
e2e_wait_until 20 "nginx to serve version 5" nginx_settled_serves "$HOST" "$V5" || true
assert_eq "nginx serves version 5" "$V5" "$(served_sha256 "$PORT" "$HOST")"
e2e_wait_until 20 "the daemon to record version 5 as verified" state_has verified-sha256 "$V5" || show_daemon
# Restore the good configuration: the file watch takes it (READY=1 again, "configuration reloaded").
MARK=$(notify_mark)
cp "$E2E_TMP/certreload.toml.good" "$CONF"
e2e_wait_until 20 "the restored configuration to be taken" daemon_log_has "configuration reloaded from $CONF" || show_daemon
assert_eq "the restored configuration is taken (log)" "yes" "$(daemon_log_has "configuration reloaded from $CONF" && echo yes || echo no)"
e2e_wait_until 10 "READY=1 after the restored configuration" notify_after "$MARK" READY=1 || true
assert_eq "the restored configuration: RELOADING=1 then READY=1" "yes" "$(notify_sequence "$MARK" RELOADING=1 READY=1 && echo yes || echo no)"
hold $((SETTLE + 2)) "taking the same configuration again does not reload" reloads_are $((B + 1))
MARK=$(notify_mark)
daemon_stop
assert_eq "final SIGTERM: exit 0 and STOPPING=1" "0 yes" "$DRC $(notify_after "$MARK" STOPPING=1 && echo yes || echo no)"
assert_file_lacks "no private key material in the daemon's output" "PRIVATE KEY" "$E2E_OUT"/watch-*.log "$NOTIFY_LOG"

if ((E2E_FAILED > 0)); then
    e2e_log ""
    e2e_log "the daemons' log (last 40 lines):"
    daemon_log | tail -n 40 | sed 's/^/    | /'
fi
e2e_finish "watch.sh"

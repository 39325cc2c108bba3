#!/usr/bin/env bash
# End-to-end test of `certreload deploy` and `reload` with a real nginx on loopback (its own
# nginx.conf, pid file and error log in the temp dir), a lineage issued by real certbot from
# a real pebble:
#   1. renew + deploy hook, reload by SIGHUP to the pid file: nginx serves the new certificate;
#   2. safety: the archive made untraversable for the target's user: deploy refuses, names
#      the blocking directory, skips the reload, and nginx keeps serving the old certificate;
#   3. reload without --force on a server that already serves the on-disk certificate does
#      not run the reload command; with --force it does.
#
#   sudo Tests/e2e/reload-nginx.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init reload-nginx
e2e_require openssl python3 curl timeout
if ! command -v nginx >/dev/null 2>&1; then
    e2e_skip "every nginx test" "nginx is not installed (scripts/install-deps --test installs nginx-light)"
    e2e_finish "reload-nginx.sh"
    exit
fi
SVC=${E2E_SERVICE_USER:-certreload-e2e-nginx}
NAME=example.test
HOST=www.example.test

e2e_section "setup: pebble, lineage $NAME, service user $SVC"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$NAME" -d example.test -d '*.example.test' || e2e_die "certbot could not issue $NAME"
e2e_service_user "$SVC"
grant_group "$C" "$SVC"
LIVE=$C/live/$NAME
V1=$(cert_sha256 "$LIVE/cert.pem")
e2e_log "issued $NAME: cert sha256 $V1"

e2e_section "setup: nginx on loopback"
nginx_start "$LIVE" "$HOST"
PORT=$NGINX_PORT
PIDFILE=$NGINX_PIDFILE
MASTER=$NGINX_MASTER
# The worker pids: a SIGHUP starts new workers, so unchanged workers mean no reload happened.
workers() { pgrep -P "$MASTER" | sort | tr '\n' ' '; }
assert_eq "before renewal: nginx serves cert version 1 (openssl s_client)" "$V1" "$(served_sha256 "$PORT" "$HOST")"

CONF=$E2E_TMP/certreload.toml
MARKER=$E2E_TMP/reload-command-ran
cat >"$E2E_TMP/reload-nginx-command.sh" <<EOF
#!/bin/sh
# The reload command of target 'cmd': leaves a marker, then reloads nginx.
date +%s.%N >>'$MARKER'
exec kill -HUP "\$(cat '$PIDFILE')"
EOF
chmod 0755 "$E2E_TMP/reload-nginx-command.sh"
cat >"$CONF" <<EOF
certbot-dir = "$C"
state-dir = "$E2E_TMP/state"

[target.web]
lineages = ["$NAME"]
user = "$SVC"
hostnames = ["$HOST"]
reload = { signal = "HUP", pidfile = "$PIDFILE" }
verify = ["https://$HOST:$PORT"]
connect = "127.0.0.1"
verify-timeout = 15
EOF
# A second configuration for the same server, reloaded by a command that leaves a marker.
CMDCONF=$E2E_TMP/certreload-cmd.toml
cat >"$CMDCONF" <<EOF
certbot-dir = "$C"
state-dir = "$E2E_TMP/state-cmd"

[target.cmd]
lineages = ["$NAME"]
user = "$SVC"
reload = { command = ["$E2E_TMP/reload-nginx-command.sh"] }
verify = ["tls://$HOST:$PORT"]
connect = "127.0.0.1"
verify-timeout = 15
EOF
cr_show config-check config check --config "$CONF"
assert_eq "config check accepts the signal configuration (exit 0)" "0" "$CR_RC"
cr_show config-check-cmd config check --config "$CMDCONF"
assert_eq "config check accepts the command configuration (exit 0)" "0" "$CR_RC"

# ---------------------------------------------------------------------------------------------
e2e_section "1. certbot renew --deploy-hook 'certreload deploy': SIGHUP, nginx serves the new certificate"
HOOK=$(deploy_hook_script "$CONF")
W_BEFORE=$(workers)
certbot_renew_with_hook "$NAME" "$HOOK" || e2e_fail "certbot renew with the deploy hook succeeds" "exit 0" "certbot failed (see above)"
V2=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal wrote a new certificate" "$V1" "$V2"
sed 's/^/    hook| /' "$E2E_OUT/hook.out" 2>/dev/null || true
assert_eq "the deploy hook exited 0" "0" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'no hook.rc: hook did not run')"
assert_contains "hook output: SIGHUP sent to nginx's master" "[web] reloaded SIGHUP to the process in $PIDFILE: sent SIGHUP to process $MASTER" "$E2E_OUT/hook.out"
assert_contains "hook output: OK: deployed" "[web] OK: deployed" "$E2E_OUT/hook.out"
assert_contains "certbot's log records the hook's 'OK: deployed'" "[web] OK: deployed" "$(certbot_log)"
# nginx reloads gracefully: an old worker may answer a new connection for a moment.
e2e_wait_until 20 "nginx to serve the new certificate from every worker" nginx_settled_serves "$HOST" "$V2" || true
assert_eq "after deploy: nginx serves the renewed cert (openssl s_client vs live/$NAME/cert.pem)" "$V2" "$(served_sha256 "$PORT" "$HOST")"
assert_eq "after deploy: same nginx master" "$MASTER" "$(tr -dc '0-9' <"$PIDFILE")"
assert_ne "after deploy: new worker processes (the HUP was a real reload)" "$W_BEFORE" "$(workers)"
cr_show verify-v2 verify --config "$CONF"
assert_eq "certreload verify after deploy: exit 0" "0" "$CR_RC"
assert_contains "certreload verify after deploy: OK: verified" "[web] OK: verified" "$CR_OUT"

# ---------------------------------------------------------------------------------------------
e2e_section "2. safety: the archive untraversable for $SVC: deploy refuses and does not reload"
# certbot saved the --deploy-hook in renewal/$NAME.conf: forget it, or this renewal runs it too.
certbot_forget_hook "$NAME"
rm -f "$E2E_OUT/hook.rc"
certbot_renew "$NAME" || e2e_die "certbot renew (no hook) failed"
assert_eq "the renewal without the hook did not run the deploy hook" "absent" "$([[ -e $E2E_OUT/hook.rc ]] && echo "present: it ran" || echo absent)"
V3=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal (no hook) wrote version 3" "$V2" "$V3"
ARCH=$C/archive/$NAME
chown root:root "$ARCH"
chmod 0700 "$ARCH"
e2e_log "archive/$NAME: $(stat -c '%A %U:%G' "$ARCH")"
# The workers' pids before: unchanged afterwards means nginx got no SIGHUP.
e2e_wait_until 10 "the old workers to finish after the previous reload" bash -c "[[ \$(pgrep -P $MASTER | wc -l) -eq 1 ]]" || true
W_BEFORE=$(workers)
RENEWED_LINEAGE=$LIVE RENEWED_DOMAINS="example.test *.example.test" cr_show deploy-blocked deploy --config "$CONF"
assert_eq "deploy with the archive blocked: exit 1" "1" "$CR_RC"
assert_contains "deploy names not-traversable" "[not-traversable]" "$CR_OUT"
assert_contains "deploy names the blocking directory $ARCH" "$ARCH" "$CR_OUT"
assert_eq "the not-traversable line names $ARCH" "yes" "$(grep -F '[not-traversable]' "$CR_OUT" | grep -qF "$ARCH" && echo yes || echo "no: $(grep -F '[not-traversable]' "$CR_OUT")")"
assert_contains "deploy prints reload-skipped" "[reload-skipped]" "$CR_OUT"
assert_not_contains "deploy did not reload" "[web] reloaded" "$CR_OUT"
assert_contains "deploy: FAILED: failed" "[web] FAILED: failed" "$CR_OUT"
assert_eq "nginx got no SIGHUP (same worker pids)" "$W_BEFORE" "$(workers)"
assert_eq "nginx still serves the previous, working certificate (version 2)" "$V2" "$(served_sha256 "$PORT" "$HOST")"
assert_eq "nginx still answers HTTPS requests" "certreload e2e nginx" "$(curl -sk --max-time 5 --resolve "$HOST:$PORT:127.0.0.1" "https://$HOST:$PORT/" || echo 'no answer')"
cr_show reload-blocked reload --config "$CONF"
assert_eq "reload by hand with the archive blocked: exit 1, reload-skipped" "1 yes" "$CR_RC $(grep -qF '[reload-skipped]' "$CR_OUT" && echo yes || echo no)"
assert_eq "after the refused reload: still version 2 served" "$V2" "$(served_sha256 "$PORT" "$HOST")"
chmod 0750 "$ARCH"
chgrp "$SVC" "$ARCH"
cr_show reload-unblocked reload --config "$CONF"
assert_eq "archive opened again: reload exit 0" "0" "$CR_RC"
assert_contains "archive opened again: OK: deployed" "[web] OK: deployed" "$CR_OUT"
# nginx reloads gracefully: an old worker may answer a new connection for a moment.
e2e_wait_until 20 "nginx to serve the new certificate from every worker" nginx_settled_serves "$HOST" "$V3" || true
assert_eq "archive opened again: nginx serves version 3" "$V3" "$(served_sha256 "$PORT" "$HOST")"

# ---------------------------------------------------------------------------------------------
e2e_section "3. reload without --force on a server that already serves the on-disk certificate"
rm -f "$MARKER"
cr_show reload-current reload --config "$CMDCONF"
assert_eq "reload (no --force), server current: exit 0" "0" "$CR_RC"
assert_contains "reload (no --force): OK: already-serving" "[cmd] OK: already-serving" "$CR_OUT"
assert_not_contains "reload (no --force): no 'reloaded' line" "[cmd] reloaded" "$CR_OUT"
assert_eq "reload (no --force): the reload command did not run (no marker)" "absent" "$([[ -e $MARKER ]] && echo present || echo absent)"
cr_show reload-dry reload --dry-run --force --config "$CMDCONF"
assert_eq "reload --dry-run --force: exit 0, would-reload, command not run" "0 yes absent" \
    "$CR_RC $(grep -qF '[cmd] OK: would-reload' "$CR_OUT" && echo yes || echo no) $([[ -e $MARKER ]] && echo present || echo absent)"
W_BEFORE=$(workers)
cr_show reload-force reload --force --config "$CMDCONF"
assert_eq "reload --force: exit 0" "0" "$CR_RC"
assert_contains "reload --force: the command ran (its line)" "[cmd] reloaded command $E2E_TMP/reload-nginx-command.sh" "$CR_OUT"
assert_contains "reload --force: OK: deployed" "[cmd] OK: deployed" "$CR_OUT"
assert_eq "reload --force: the reload command ran once (marker has one line)" "1" "$(wc -l <"$MARKER" 2>/dev/null || echo 0)"
assert_ne "reload --force: nginx really reloaded (new workers)" "$W_BEFORE" "$(workers)"
# nginx reloads gracefully: an old worker may answer a new connection for a moment.
e2e_wait_until 20 "nginx to serve the new certificate from every worker" nginx_settled_serves "$HOST" "$V3" || true
assert_eq "reload --force: nginx serves version 3" "$V3" "$(served_sha256 "$PORT" "$HOST")"

# ---------------------------------------------------------------------------------------------
e2e_section "4. a stale pid file: the signal reload fails loudly, nothing else is signalled"
/bin/true &
DEADPID=$!
wait "$DEADPID" || true
echo "$DEADPID" >"$E2E_TMP/stale.pid"
sed "s|pidfile = \"$PIDFILE\"|pidfile = \"$E2E_TMP/stale.pid\"|" "$CONF" >"$CONF.stale"
e2e_wait_until 10 "the old workers to finish after the forced reload" bash -c "[[ \$(pgrep -P $MASTER | wc -l) -eq 1 ]]" || true
W_BEFORE=$(workers)
cr_show reload-stale-pid reload --force --config "$CONF.stale"
assert_eq "reload --force with a stale pid file: exit 1" "1" "$CR_RC"
assert_contains "reload --force with a stale pid file: reload-failed" "[reload-failed]" "$CR_OUT"
assert_contains "reload --force with a stale pid file: says the process is not running" "process $DEADPID from pid file $E2E_TMP/stale.pid is not running" "$CR_OUT"
assert_eq "nginx was not signalled (same workers)" "$W_BEFORE" "$(workers)"

e2e_finish "reload-nginx.sh"

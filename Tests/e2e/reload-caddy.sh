#!/usr/bin/env bash
# End-to-end test of `certreload deploy` and `verify` with a real Caddy: a lineage issued by
# real certbot from a real pebble on loopback, Caddy serving it over HTTPS (tls cert_file
# key_file on the live/ paths) with its admin API on a free port, and a forced
# `certbot renew` whose deploy hook is `certreload deploy`. Afterwards Caddy must serve the
# new certificate, proven by certreload's own verify and by openssl s_client.
#
#   sudo Tests/e2e/reload-caddy.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init reload-caddy
e2e_require openssl python3 curl timeout
if ! command -v caddy >/dev/null 2>&1; then
    e2e_skip "every caddy test" "caddy is not installed (scripts/install-deps --test installs caddy)"
    e2e_finish "reload-caddy.sh"
    exit
fi
SVC=${E2E_SERVICE_USER:-certreload-e2e-caddy}
NAME=example.test
HOST=example.test

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

e2e_section "setup: Caddy on loopback"
CD=$E2E_TMP/caddy
mkdir -p "$CD/data" "$CD/config"
ADMIN=$(e2e_free_port)
HTTPS=$(e2e_free_port)
while [[ $HTTPS == "$ADMIN" ]]; do HTTPS=$(e2e_free_port); done
cat >"$CD/Caddyfile" <<EOF
{
	admin 127.0.0.1:$ADMIN
	auto_https off
	storage file_system $CD/data
	servers {
		protocols h1 h2
	}
}

https://$HOST:$HTTPS {
	bind 127.0.0.1
	tls $LIVE/fullchain.pem $LIVE/privkey.pem
	respond "certreload e2e caddy"
}
EOF
HOME=$CD XDG_DATA_HOME=$CD/data XDG_CONFIG_HOME=$CD/config \
    caddy run --config "$CD/Caddyfile" --adapter caddyfile >"$CD/caddy.log" 2>&1 &
CADDY_PID=$!
e2e_defer "e2e_stop_pid $CADDY_PID"
caddy_up() {
    pid_alive "$CADDY_PID" || e2e_die "Caddy exited: $(tail -n 5 "$CD/caddy.log")"
    port_open "$HTTPS" && port_open "$ADMIN"
}
if ! e2e_wait_until 30 "Caddy (admin :$ADMIN, https :$HTTPS)" caddy_up; then
    sed 's/^/    caddy| /' "$CD/caddy.log" | tail -n 30
    e2e_die "Caddy did not start"
fi
e2e_log "caddy pid $CADDY_PID: admin 127.0.0.1:$ADMIN, https 127.0.0.1:$HTTPS"
e2e_wait_until 15 "Caddy to serve version 1" serves "$HTTPS" "$HOST" "$V1" || true
assert_eq "before renewal: Caddy serves cert version 1 (openssl s_client)" "$V1" "$(served_sha256 "$HTTPS" "$HOST")"

CONF=$E2E_TMP/certreload.toml
cat >"$CONF" <<EOF
certbot-dir = "$C"
state-dir = "$E2E_TMP/state"

[target.web]
lineages = ["$NAME"]
user = "$SVC"
hostnames = ["$HOST"]
reload = { caddy = "http://127.0.0.1:$ADMIN" }
verify = ["https://$HOST:$HTTPS"]
connect = "127.0.0.1"
verify-timeout = 15
EOF
cr_show config-check config check --config "$CONF"
assert_eq "config check accepts the configuration (exit 0)" "0" "$CR_RC"

cr_show verify-v1 verify --config "$CONF"
assert_eq "certreload verify before renewal: exit 0 (Caddy serves what is on disk)" "0" "$CR_RC"
assert_contains "certreload verify before renewal: OK: verified" "[web] OK: verified" "$CR_OUT"

# ---------------------------------------------------------------------------------------------
e2e_section "1. certbot renew --deploy-hook 'certreload deploy'"
HOOK=$(deploy_hook_script "$CONF")
certbot_renew_with_hook "$NAME" "$HOOK" || e2e_fail "certbot renew with the deploy hook succeeds" "exit 0" "certbot failed (see above)"
V2=$(cert_sha256 "$LIVE/cert.pem")
e2e_log "renewed $NAME: cert sha256 $V2 (version $(basename "$(real_of "$LIVE/cert.pem")"))"
assert_ne "renewal wrote a new certificate" "$V1" "$V2"
sed 's/^/    hook| /' "$E2E_OUT/hook.out" 2>/dev/null || true
assert_eq "the deploy hook ran once and exited 0" "0" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'no hook.rc: hook did not run')"
assert_contains "hook output: RENEWED_LINEAGE is live/$NAME" "RENEWED_LINEAGE=$LIVE " "$E2E_OUT/hook.out"
assert_contains "hook output: reloaded through Caddy's admin API" "[web] reloaded Caddy admin API at" "$E2E_OUT/hook.out"
assert_contains "hook output: verified https://$HOST:$HTTPS" "[web] verified" "$E2E_OUT/hook.out"
assert_contains "hook output: OK: deployed" "[web] OK: deployed" "$E2E_OUT/hook.out"
assert_contains "certbot's log records the hook's 'OK: deployed'" "[web] OK: deployed" "$(certbot_log)"

SEEN=$(served_sha256 "$HTTPS" "$HOST")
assert_eq "after deploy: Caddy serves the renewed cert (openssl s_client vs live/$NAME/cert.pem)" "$V2" "$SEEN"
assert_ne "after deploy: Caddy no longer serves version 1" "$V1" "$SEEN"
assert_eq "Caddy kept running through the reload (same pid)" "yes" "$(pid_alive "$CADDY_PID" && echo yes || echo no)"

cr_show verify-v2 verify --config "$CONF"
assert_eq "certreload verify after deploy: exit 0" "0" "$CR_RC"
assert_contains "certreload verify after deploy: OK: verified" "[web] OK: verified" "$CR_OUT"
assert_contains "certreload verify names the new certificate's sha256 prefix" "${V2:0:16}" "$CR_OUT"

# verify needs no trust (it compares the leaf with cert.pem) but says when the chain is
# untrusted; with ca-file = pebble's root the warning goes away.
assert_contains "verify without ca-file: warns verify-untrusted (pebble's root is not in the system store)" "[verify-untrusted]" "$CR_OUT"
if curl -sf --max-time 5 --cacert "$PEBBLE_CA" "$PEBBLE_MGMT_URL/roots/0" -o "$E2E_TMP/pebble-root.pem" && [[ -s $E2E_TMP/pebble-root.pem ]]; then
    sed "s|^connect = \"127.0.0.1\"|connect = \"127.0.0.1\"\nca-file = \"$E2E_TMP/pebble-root.pem\"|" "$CONF" >"$CONF.ca"
    cr_show verify-ca verify --config "$CONF.ca"
    assert_eq "verify with ca-file = pebble's root: exit 0, OK: verified" "0 yes" "$CR_RC $(grep -qF '[web] OK: verified' "$CR_OUT" && echo yes || echo no)"
    assert_not_contains "verify with ca-file = pebble's root: no verify-untrusted" "[verify-untrusted]" "$CR_OUT"
else
    e2e_skip "verify with ca-file" "could not fetch pebble's root from $PEBBLE_MGMT_URL/roots/0"
fi

# ---------------------------------------------------------------------------------------------
e2e_section "2. renewal without the hook: verify sees the stale certificate, deploy fixes it"
# certbot saved the --deploy-hook in renewal/$NAME.conf: forget it, or this renewal runs it too.
certbot_forget_hook "$NAME"
rm -f "$E2E_OUT/hook.rc"
certbot_renew "$NAME" || e2e_die "certbot renew (no hook) failed"
assert_eq "the renewal without the hook did not run the deploy hook" "absent" "$([[ -e $E2E_OUT/hook.rc ]] && echo "present: it ran" || echo absent)"
V3=$(cert_sha256 "$LIVE/cert.pem")
assert_eq "without a reload Caddy still serves version 2" "$V2" "$(served_sha256 "$HTTPS" "$HOST")"
# verify-timeout is 15 s; one quick target in a copy of the config keeps this fast.
sed 's/^verify-timeout = 15/verify-timeout = 2/' "$CONF" >"$CONF.quick"
cr_show verify-stale verify --config "$CONF.quick"
assert_eq "certreload verify on a stale server: exit 1" "1" "$CR_RC"
assert_contains "certreload verify on a stale server: verify-stale" "[verify-stale]" "$CR_OUT"
assert_contains "certreload verify on a stale server: FAILED: failed" "[web] FAILED: failed" "$CR_OUT"
RENEWED_LINEAGE=$LIVE RENEWED_DOMAINS="example.test *.example.test" cr_show deploy-by-hand deploy --config "$CONF"
assert_eq "certreload deploy (RENEWED_LINEAGE set by hand): exit 0" "0" "$CR_RC"
assert_contains "certreload deploy by hand: OK: deployed" "[web] OK: deployed" "$CR_OUT"
assert_eq "after deploy by hand: Caddy serves version 3" "$V3" "$(served_sha256 "$HTTPS" "$HOST")"

# ---------------------------------------------------------------------------------------------
e2e_section "3. a reload that fails, and deploy's invocation errors"
certbot_renew "$NAME" || e2e_die "certbot renew (no hook) failed"
V4=$(cert_sha256 "$LIVE/cert.pem")
DEAD=$(e2e_free_port)
while [[ $DEAD == "$ADMIN" || $DEAD == "$HTTPS" ]]; do DEAD=$(e2e_free_port); done
sed "s|http://127.0.0.1:$ADMIN|http://127.0.0.1:$DEAD|" "$CONF" >"$CONF.dead"
RENEWED_LINEAGE=$LIVE cr_show deploy-dead-admin deploy --config "$CONF.dead"
assert_eq "deploy with Caddy's admin API unreachable: exit 1" "1" "$CR_RC"
assert_contains "deploy with Caddy's admin API unreachable: reload-unreachable" "[reload-unreachable]" "$CR_OUT"
assert_contains "deploy with Caddy's admin API unreachable: FAILED: failed" "[web] FAILED: failed" "$CR_OUT"
assert_eq "after the failed reload Caddy still serves version 3" "$V3" "$(served_sha256 "$HTTPS" "$HOST")"
cr_show reload-after-dead reload --config "$CONF"
assert_eq "reload (no --force) on the stale server: exit 0, OK: deployed" "0 yes" "$CR_RC $(grep -qF '[web] OK: deployed' "$CR_OUT" && echo yes || echo no)"
assert_eq "after reload Caddy serves version 4" "$V4" "$(served_sha256 "$HTTPS" "$HOST")"

(unset RENEWED_LINEAGE; cr_show deploy-no-lineage deploy --config "$CONF"; echo "$CR_RC" >"$E2E_OUT/deploy-no-lineage.rc")
assert_eq "deploy without RENEWED_LINEAGE: exit 2" "2" "$(cat "$E2E_OUT/deploy-no-lineage.rc")"
RENEWED_LINEAGE=$E2E_TMP cr_show deploy-outside deploy --config "$CONF"
assert_eq "deploy with a lineage outside <certbot-dir>/live: exit 2" "2" "$CR_RC"
cr_show deploy-other deploy --config "$CONF" --lineage "$C/live/other.test"
assert_eq "deploy of a lineage no target uses: exit 0, nothing to do" "0 yes" "$CR_RC $(grep -qF 'nothing to do' "$CR_OUT" && echo yes || echo no)"

e2e_finish "reload-caddy.sh"

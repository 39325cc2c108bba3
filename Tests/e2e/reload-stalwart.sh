#!/usr/bin/env bash
# End-to-end test of certreload against Stalwart's STAND-IN (Tests/Support/stalwart_standin.py:
# Stalwart cannot run here; the stand-in answers only what Stalwart's source answers, per
# version). Real parts: pebble, certbot issuing and renewing a lineage, certbot running
# `certreload deploy` as its deploy hook, and certreload's probe of the stand-in's SMTP
# listener (STARTTLS, SNI), which serves what the stand-in loaded at its last reload.
#
# Scenarios, one renewal each:
#   1. 1.0 (0.16.11+): File certificate object on live/NAME, API key: reloaded over JMAP,
#      verified, the registry view matches the object to the lineage.
#   2. 0.16.10: the same, but the stored notValidAfter stays: stalwart-metadata-stale (error).
#   3. 0.15: Basic credentials, api = auto: 400 notRequest on /jmap/, reloaded over REST.
#   4. 1.0: an inline Text certificate object and a listener with useTls false behind the
#      verify URL: stalwart-certificate-inline, starttls-not-offered explained by
#      stalwart-listener-tls-off.
#
#   sudo Tests/e2e/reload-stalwart.sh        # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init reload-stalwart
e2e_require openssl python3 curl timeout
SVC=${E2E_SERVICE_USER:-certreload-e2e-stalwart}
NAME=mail.example.test
HOST=mail.example.test
STANDIN=$E2E_ROOT/Tests/Support/stalwart_standin.py

e2e_section "setup: pebble, lineage $NAME, service user $SVC"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$NAME" -d "$HOST" || e2e_die "certbot could not issue $NAME"
e2e_service_user "$SVC"
grant_group "$C" "$SVC"
LIVE=$C/live/$NAME

# standin_start TAG VERSION ARGS...: starts the stand-in; sets SA_URL, SA_SMTP (the port of its
# listener named smtp, if any) and SA_CRED (a file with its announced credentials as JSON).
standin_start() {
    local tag=$1 version=$2
    shift 2
    local out=$E2E_OUT/standin-$tag
    python3 "$STANDIN" --version "$version" --record "$out.requests" --lifetime 600 "$@" >"$out.out" 2>"$out.err" &
    local pid=$!
    e2e_defer "e2e_stop_pid $pid"
    standin_up() { [[ $(wc -l <"$out.out") -ge 2 ]] || { pid_alive "$pid" || e2e_die "stand-in exited: $(cat "$out.err")"; false; }; }
    e2e_wait_until 15 "the Stalwart stand-in ($version)" standin_up || e2e_die "the stand-in did not start"
    SA_URL=http://127.0.0.1:$(head -n 1 "$out.out")
    SA_CRED=$out.credentials
    sed -n 2p "$out.out" >"$SA_CRED"
    SA_SMTP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("@listener:smtp", ""))' "$SA_CRED")
    SA_REQUESTS=$out.requests
    e2e_log "stand-in $tag: Stalwart $version at $SA_URL${SA_SMTP:+, SMTP on 127.0.0.1:$SA_SMTP}"
}

# secret_file NAME VALUE: a 0600 file holding VALUE (a token or a password).
secret_file() {
    local file=$E2E_TMP/$1
    e2e_secret "$2"
    (umask 077 && printf '%s\n' "$2" >"$file")
    echo "$file"
}

# api_key NAME: the key the stand-in created for NAME (without "Bearer ").
api_key() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]].split(" ", 1)[1])' "$SA_CRED" "$1"; }

# config FILE RELOAD [VERIFY]: a certreload configuration with one target, mail.
config() {
    cat >"$1" <<EOF
certbot-dir = "$C"
state-dir = "$E2E_TMP/state-${1##*/}"

[target.mail]
lineages = ["$NAME"]
user = "$SVC"
hostnames = ["$HOST"]
reload = $2
verify = [${3:-}]
connect = "127.0.0.1"
verify-timeout = 10
EOF
}

RELOAD_PERMS=sysActionCreate,actionReloadTlsCertificates
READ_PERMS=sysCertificateGet,sysNetworkListenerGet,sysSystemSettingsGet

# renew_with_hook CONF: a forced certbot renewal whose deploy hook is `certreload deploy --config CONF`.
renew_with_hook() {
    rm -f "$E2E_OUT/hook.out" "$E2E_OUT/hook.rc"
    local hook
    hook=$(deploy_hook_script "$1")
    certbot_renew_with_hook "$NAME" "$hook" || e2e_fail "certbot renew with the deploy hook succeeds" "exit 0" "certbot failed"
    certbot_forget_hook "$NAME"
    sed 's/^/    hook| /' "$E2E_OUT/hook.out" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
e2e_section "1. Stalwart 1.0: File certificate object, API key, JMAP reload, verified"
standin_start v10 1.0 --api-key "certreload:s3cret:$RELOAD_PERMS,$READ_PERMS" \
    --certificate "c1:file:$LIVE/fullchain.pem:$LIVE/privkey.pem" --default-certificate c1 \
    --listener "smtp,smtp,127.0.0.1:0,true,false"
TOKEN=$(secret_file token-v10 "$(api_key certreload)")
CONF=$E2E_TMP/v10.toml
config "$CONF" "{ stalwart = \"$SA_URL\", token-file = \"$TOKEN\" }" "\"smtp://$HOST:$SA_SMTP\""
V1=$(cert_sha256 "$LIVE/cert.pem")
cr_show check-v10 check --config "$CONF"
assert_eq "check --config: exit 0" "0" "$CR_RC"
assert_contains "check --config names the certificate object behind the lineage" "certificate object c1 reads $LIVE/fullchain.pem → lineage $NAME" "$CR_OUT"
assert_contains "check --config names the listener behind the verify URL" "smtp://$HOST:$SA_SMTP → Stalwart listener smtp" "$CR_OUT"
cr_show verify-v10 verify --config "$CONF"
assert_contains "verify before renewal: OK: verified" "[mail] OK: verified" "$CR_OUT"

renew_with_hook "$CONF"
V2=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal wrote a new certificate" "$V1" "$V2"
assert_eq "the deploy hook exited 0" "0" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'did not run')"
assert_contains "hook: reloaded over JMAP" "reloaded its TLS certificates (JMAP)" "$E2E_OUT/hook.out"
assert_contains "hook: verified the renewed certificate" "${V2:0:16}" "$E2E_OUT/hook.out"
assert_contains "hook: OK: deployed" "[mail] OK: deployed" "$E2E_OUT/hook.out"
assert_not_contains "hook: no stale metadata on 1.0" "stalwart-metadata-stale" "$E2E_OUT/hook.out"
assert_not_contains "the API key is in no output" "$(api_key certreload)" "$E2E_OUT/hook.out"

# ---------------------------------------------------------------------------------------------
e2e_section "2. Stalwart 0.16.10: reloaded and serving, but its stored notValidAfter is stale"
standin_start v1610 0.16.10 --api-key "certreload:s3cret:$RELOAD_PERMS,$READ_PERMS" \
    --certificate "c1:file:$LIVE/fullchain.pem:$LIVE/privkey.pem" --default-certificate c1 \
    --listener "smtp,smtp,127.0.0.1:0,true,false"
TOKEN=$(secret_file token-v1610 "$(api_key certreload)")
CONF=$E2E_TMP/v1610.toml
config "$CONF" "{ stalwart = \"$SA_URL\", api = \"jmap\", token-file = \"$TOKEN\" }" "\"smtp://$HOST:$SA_SMTP\""
renew_with_hook "$CONF"
V3=$(cert_sha256 "$LIVE/cert.pem")
assert_eq "the deploy hook exited 1 (an error was found)" "1" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'did not run')"
assert_contains "hook: reloaded over JMAP" "reloaded its TLS certificates (JMAP)" "$E2E_OUT/hook.out"
assert_contains "hook: the renewed certificate is served (0.16.10 does re-read the file)" "${V3:0:16}" "$E2E_OUT/hook.out"
assert_contains "hook: stalwart-metadata-stale" "error [stalwart-metadata-stale]" "$E2E_OUT/hook.out"
assert_contains "hook: the fix names 0.16.11" "upgrade Stalwart to 0.16.11" "$E2E_OUT/hook.out"

# ---------------------------------------------------------------------------------------------
e2e_section "3. Stalwart 0.15: Basic credentials, auto: 400 notRequest on /jmap/, then REST"
standin_start v015 0.15 --user "admin:pa55word:settings-reload" \
    --certificate "default:file:$LIVE/fullchain.pem:$LIVE/privkey.pem" --default-certificate default \
    --listener "smtp,smtp,127.0.0.1:0,true,false"
PASSWORD=$(secret_file password-v015 pa55word)
CONF=$E2E_TMP/v015.toml
config "$CONF" "{ stalwart = \"$SA_URL\", username = \"admin\", password-file = \"$PASSWORD\" }" "\"smtp://$HOST:$SA_SMTP\""
renew_with_hook "$CONF"
V4=$(cert_sha256 "$LIVE/cert.pem")
assert_eq "the deploy hook exited 0" "0" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'did not run')"
assert_contains "hook: reloaded over REST" "reloaded its TLS certificates (REST)" "$E2E_OUT/hook.out"
assert_contains "hook: verified the renewed certificate" "${V4:0:16}" "$E2E_OUT/hook.out"
assert_contains "hook: 0.15 has no registry to read" "no certificate registry" "$E2E_OUT/hook.out"
assert_contains "the stand-in saw /jmap/, then /api/reload/certificate" "/api/reload/certificate" "$SA_REQUESTS"
assert_eq "the stand-in's first request was POST /jmap/" "/jmap/" "$(head -n 1 "$SA_REQUESTS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"

# ---------------------------------------------------------------------------------------------
e2e_section "4. Stalwart 1.0: inline Text certificate object, listener with useTls false"
standin_start text 1.0 --api-key "certreload:s3cret:$RELOAD_PERMS,$READ_PERMS" \
    --certificate "migrated:text:$LIVE/fullchain.pem:$LIVE/privkey.pem" --default-certificate migrated \
    --listener "smtp,smtp,127.0.0.1:0,false,false"
TOKEN=$(secret_file token-text "$(api_key certreload)")
CONF=$E2E_TMP/text.toml
config "$CONF" "{ stalwart = \"$SA_URL\", token-file = \"$TOKEN\" }" "\"smtp://$HOST:$SA_SMTP\""
renew_with_hook "$CONF"
assert_eq "the deploy hook exited 1" "1" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'did not run')"
assert_contains "hook: starttls-not-offered" "[starttls-not-offered]" "$E2E_OUT/hook.out"
assert_contains "hook: explained by the listener's TLS switch" "error [stalwart-listener-tls-off] Stalwart listener smtp" "$E2E_OUT/hook.out"
assert_contains "hook: the inline certificate object is named" "warning [stalwart-certificate-inline]" "$E2E_OUT/hook.out"
assert_contains "hook: the renewed lineage is used by no object" "[stalwart-lineage-unused]" "$E2E_OUT/hook.out"
assert_not_contains "hook: no certificate body in the output" "BEGIN CERTIFICATE" "$E2E_OUT/hook.out"
cr_show check-text check --config "$CONF" --format json
assert_contains "check --config --format json carries the server's findings" '"code": "stalwart-certificate-inline"' "$CR_OUT"

e2e_finish "reload-stalwart.sh"

#!/usr/bin/env bash
# End-to-end test of `certreload doctor` and `certreload grant` against real certbot lineages
# from a real pebble, real nginx, Postfix and Dovecot on loopback, and a Stalwart STAND-IN
# (Stalwart cannot run here: Tests/Support/stalwart_listener_standin.py, running as its own
# account `stalwart`).
# Runs as root; bounded in time; cleans up on every exit.
#
#   sudo Tests/e2e/doctor.sh            # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init doctor
e2e_require python3 nginx openssl setpriv curl
HOST=mail.example.test
LIN=example.test          # example.test + *.example.test: covers HOST through its wildcard
OTHER=other.test          # does not cover HOST
SVC=stalwart
SVC2=${E2E_SECOND_USER:-certreload-e2e-mail2}

e2e_section "setup: pebble, two lineages, the accounts"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$LIN" -d example.test -d '*.example.test' || e2e_die "certbot could not issue $LIN"
certbot_issue "$OTHER" -d other.test || e2e_die "certbot could not issue $OTHER"
e2e_service_user "$SVC"
e2e_service_user "$SVC2"
getent group certreload-certs >/dev/null || e2e_defer "groupdel certreload-certs"
curl -sf --max-time 5 --cacert "$PEBBLE_CA" "$PEBBLE_MGMT_URL/roots/0" >"$E2E_TMP/pebble-root.pem" || e2e_die "no pebble root"
ROOT_CA=$E2E_TMP/pebble-root.pem
e2e_log "live/ $(stat -c '%A %U:%G' "$C/live"), archive/ $(stat -c '%A %U:%G' "$C/archive")"

# --- servers --------------------------------------------------------------------------------
SMTP=$(e2e_free_port)
IMAPS=$(e2e_free_port)
HTTPS=$(e2e_free_port)
HTTPS2=$(e2e_free_port)
CLOSED=$(e2e_free_port)
cp "$E2E_ROOT/Tests/Support/stalwart_listener_standin.py" "$E2E_TMP/standin.py"
chmod 0755 "$E2E_TMP/standin.py"
mkdir -p "$E2E_TMP/stalwart-state"
chown "$SVC:" "$E2E_TMP/stalwart-state"
STANDIN_PID=
e2e_defer 'e2e_stop_pid "$STANDIN_PID"'

# standin_start USE_TLS: the stand-in as account stalwart (groups from the user database).
standin_start() {
    e2e_stop_pid "$STANDIN_PID"
    : >"$E2E_OUT/standin.out"
    setpriv --reuid "$SVC" --regid "$SVC" --init-groups /usr/bin/python3 "$E2E_TMP/standin.py" \
        --smtp "$SMTP" --use-tls "$1" --implicit "$IMAPS" --hostname "$HOST" \
        --cert "$C/live/$LIN/fullchain.pem" --key "$C/live/$LIN/privkey.pem" \
        --state "$E2E_TMP/stalwart-state" --lifetime 400 >"$E2E_OUT/standin.out" 2>>"$E2E_OUT/standin.err" &
    STANDIN_PID=$!
    e2e_wait_until 20 "the Stalwart stand-in" grep -q READY "$E2E_OUT/standin.out" || { show_log standin "$E2E_OUT/standin.err"; e2e_die "stand-in did not start"; }
    e2e_log "stalwart stand-in pid $STANDIN_PID (useTls $1): $(tail -n 1 "$E2E_OUT/standin.err")"
}

ND=$E2E_TMP/nginx
mkdir -p "$ND/logs" "$ND/tmp"
NGINX_PIDFILE=$ND/nginx.pid
NGINX_PORT=$HTTPS
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=nginx default" \
    -keyout "$ND/default.key" -out "$ND/default.pem" 2>/dev/null
# nginx_config MODE: "broken" (a self-signed default server, lineage other.test's cert.pem on
# HTTPS2) or "healthy" (the lineage everywhere, on HTTPS and the extra ports in $EXTRA).
nginx_config() {
    local mode=$1 extra="" port
    for port in ${EXTRA:-}; do extra+="        listen 127.0.0.1:$port ssl;"$'\n'; done
    {
        cat <<EOF
daemon on;
master_process on;
worker_processes 1;
pid $NGINX_PIDFILE;
error_log $ND/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $ND/tmp/body;
    proxy_temp_path $ND/tmp/proxy;
    fastcgi_temp_path $ND/tmp/fastcgi;
    uwsgi_temp_path $ND/tmp/uwsgi;
    scgi_temp_path $ND/tmp/scgi;
EOF
        if [[ $mode == broken ]]; then
            cat <<EOF
    server { listen 127.0.0.1:$HTTPS ssl default_server; server_name _;
             ssl_certificate $ND/default.pem; ssl_certificate_key $ND/default.key; return 200 "default\n"; }
    server { listen 127.0.0.1:$HTTPS ssl; server_name $HOST;
             ssl_certificate $C/live/$LIN/fullchain.pem; ssl_certificate_key $C/live/$LIN/privkey.pem; return 200 "ok\n"; }
    server { listen 127.0.0.1:$HTTPS2 ssl; server_name $HOST;
             ssl_certificate $C/live/$OTHER/cert.pem; ssl_certificate_key $C/live/$OTHER/privkey.pem; return 200 "other\n"; }
}
EOF
        else
            cat <<EOF
    server { listen 127.0.0.1:$HTTPS ssl default_server;
$extra        server_name $HOST;
             ssl_certificate $C/live/$LIN/fullchain.pem; ssl_certificate_key $C/live/$LIN/privkey.pem; return 200 "ok\n"; }
}
EOF
        fi
    } >"$ND/nginx.conf"
    nginx -t -q -p "$ND" -e "$ND/logs/error.log" -c "$ND/nginx.conf" || e2e_die "nginx -t refused $ND/nginx.conf"
}
nginx_up() { [[ -s $NGINX_PIDFILE ]] && port_open "$HTTPS"; }
nginx_reload() {
    kill -HUP "$(tr -dc '0-9' <"$NGINX_PIDFILE")"
    # Settled: one worker left and three probes in a row serve the current leaf.
    NGINX_MASTER=$(tr -dc '0-9' <"$NGINX_PIDFILE")
    e2e_wait_until 20 "nginx to serve the current $LIN" nginx_settled_serves "$HOST" "$(cert_sha256 "$C/live/$LIN/cert.pem")"
}

# listing: every path under certbot's directory with its mode, group and owner.
listing() { find "$C" -printf '%p %m %g %u\n' | sort; }
# other_bits LISTING_FILE: path and the "other" digit of each mode.
other_bits() { awk '{ print $1, substr($2, length($2), 1) }' "$1"; }

# --- 1. every cause in one run ----------------------------------------------------------------
e2e_section "1. broken: STARTTLS off on Stalwart's port 25, archive/ unreadable by stalwart, nginx stale + SNI default + wrong lineage"
standin_start false
nginx_config broken
e2e_defer "e2e_stop_pidfile '$NGINX_PIDFILE'"
nginx -p "$ND" -e "$ND/logs/error.log" -c "$ND/nginx.conf" || e2e_die "nginx did not start"
e2e_wait_until 20 "nginx on :$HTTPS" nginx_up || e2e_die "nginx did not start"
V1=$(cert_sha256 "$C/live/$LIN/cert.pem")
certbot_renew "$LIN" || e2e_die "certbot renew failed"
assert_ne "certbot renewed $LIN (a new leaf on disk)" "$V1" "$(cert_sha256 "$C/live/$LIN/cert.pem")"

PORTS=(--port "smtp=$SMTP" --port "imaps=$IMAPS" --port "https=$HTTPS" --port "https=$HTTPS2" --port "pop3s=$CLOSED")
DARGS=("$HOST" --connect 127.0.0.1 "${PORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA")
cr_show d1.text doctor "${DARGS[@]}"
cr_run d1 doctor "${DARGS[@]}" --format json
J=$CR_OUT
pcodes() { json_eval "$J" "sorted(set(p['code'] for p in d['problems']))"; }
P() { json_eval "$J" "next((p for p in d['problems'] if p['code']=='$1'), None)$2"; }
R() { json_eval "$J" "(lambda r: (r$2))(next(x for x in d['ports'] if x['port']==$1))"; }
assert_eq "doctor, broken: exit 1" "1" "$CR_RC"
for code in starttls-not-offered verify-wrong-certificate verify-stale sni-default-differs hostname-not-covered verify-untrusted not-traversable verify-connect-failed; do
    assert_word "doctor, broken: names $code" "$code" "$(pcodes)"
done
assert_eq "port $SMTP: served by the stalwart stand-in as stalwart" "stalwart stalwart $STANDIN_PID" "$(R "$SMTP" "['owner']['process'], r['owner']['user'], r['owner']['pid']")"
assert_eq "port $SMTP: plaintext, STARTTLS not offered" "plaintext false" "$(R "$SMTP" "['transport'], r['starttls_offered']")"
assert_word "port $SMTP: the server's words quoted" "Stalwart" "$(P starttls-not-offered "['message']")"
assert_word "starttls fix names Stalwart's listener TLS switch useTls" '`useTls`' "$(P starttls-not-offered "['fix']")"
assert_word "starttls fix names 0.15's tls.enable" '`server.listener.<id>.tls.enable' "$(P starttls-not-offered "['fix']")"
assert_eq "port $IMAPS: self-signed, matches nothing on disk" "true none" "$(R "$IMAPS" "['sni']['self_signed'], r['sni']['disk']['match']")"
assert_word "verify-wrong-certificate explained by access" "explained" "$(P verify-wrong-certificate "['message']")"
assert_eq "verify-wrong-certificate names user stalwart" "$SVC" "$(P verify-wrong-certificate "['user']")"
assert_word "verify-wrong-certificate fix: certreload grant" "grant" "$(P verify-wrong-certificate "['fix']")"
assert_eq "port $HTTPS: nginx (root) serves version 1 of $LIN" "older 1 2 nginx root" "$(R "$HTTPS" "['sni']['disk']['match'], r['sni']['disk']['version'], r['sni']['disk']['current_version'], r['owner']['process'], r['owner']['user']")"
assert_word "verify-stale says the server was not reloaded" "reloaded" "$(P verify-stale "['message']")"
assert_eq "port $HTTPS: without SNI nginx's self-signed default" "true" "$(R "$HTTPS" "['no_sni']['self_signed']")"
assert_eq "port $HTTPS2: other.test, does not cover $HOST, untrusted (no intermediate)" "false false" "$(R "$HTTPS2" "['sni']['covers_host'], r['sni']['trusted']")"
assert_eq "port $CLOSED: closed" "closed" "$(R "$CLOSED" "['state']")"
assert_eq "lineage covering $HOST: $LIN through its wildcard" "$LIN true" "$(json_eval "$J" "d['covering'][0]['lineage'], d['covering'][0]['wildcard']")"
assert_word "checked as stalwart (the account serving port $SMTP)" "$SVC" "$(json_eval "$J" "[c['user'] for c in d['checks']]")"
assert_eq "the check as stalwart was tried" "tried" "$(json_eval "$J" "next(c['method'] for c in d['checks'] if c['user']=='$SVC')")"
FIXPLAN=$(json_eval "$J" "[' '.join(a) for a in next(c['fix_plan'] for c in d['checks'] if c['user']=='$SVC')]")
for path in "$C/live" "$C/archive" "$C/archive/$LIN/privkey1.pem" "$C/archive/$LIN/privkey2.pem"; do
    assert_word "fix_plan (argv lists) covers $path" "$path" "$FIXPLAN"
done
assert_word "the plan ends with the command that proves it" "prove" "$(json_eval "$J" "d['plan'][-1].split(':')[0]")"

# The two reports this project was born from, each on its own (README shows these outputs).
cr_show seed1 doctor "$HOST" --connect 127.0.0.1 --port "smtp=$SMTP" --certbot-dir "$C" --ca-file "$ROOT_CA"
assert_eq "seed 1 (STARTTLS not offered on Stalwart's port 25): exit 1" "1" "$CR_RC"
assert_contains "seed 1: starttls-not-offered with Stalwart's useTls" "[starttls-not-offered]" "$CR_OUT"
cr_show seed2 doctor "$HOST" --connect 127.0.0.1 --port "imaps=$IMAPS" --certbot-dir "$C" --ca-file "$ROOT_CA"
assert_eq "seed 2 (self-signed certificate): exit 1" "1" "$CR_RC"
assert_contains "seed 2: verify-wrong-certificate" "[verify-wrong-certificate]" "$CR_OUT"
assert_contains "seed 2: the access problem as stalwart" "[not-traversable]" "$CR_OUT"

# Default ports: a closed one is reported, not an error.
cr_run d-default doctor "$HOST" --connect 127.0.0.1 --certbot-dir "$C" --format json
assert_eq "default ports: no verify-connect-failed for closed default ports" "" "$(json_eval "$CR_OUT" "[p['code'] for p in d['problems'] if p['code']=='verify-connect-failed']")"
assert_eq "default ports: eight rows" "8" "$(json_eval "$CR_OUT" "len(d['ports'])")"

# check without --user, with a configuration: each target as its own user, and it says which.
printf 'certbot-dir = "%s"\nstate-dir = "%s"\n\n[target.mail]\nlineages = ["%s"]\nuser = "%s"\nreload = { command = ["/bin/true"], timeout = 5 }\n' \
    "$C" "$E2E_TMP/state" "$LIN" "$SVC" >"$E2E_TMP/certreload.toml"
CERTRELOAD_CONFIG=$E2E_TMP/certreload.toml cr_show c-config check
assert_eq "check with a configuration and no --user: exit 1 (stalwart cannot read)" "1" "$CR_RC"
assert_contains "check with a configuration: says it checks each target as its own user" "checking each target of $E2E_TMP/certreload.toml as its own user" "$CR_OUT"
assert_contains "check with a configuration: names the target's user" "== target mail (user $SVC)" "$CR_OUT"

# --- 2. one grant, dry run and second run change nothing ---------------------------------------
e2e_section "2. grant: dry run, the grant, a second run"
cr_check c-before --certbot-dir "$C" --user "$SVC" "$LIN"
assert_eq "check lists the whole fix (fix_plan) for $SVC" "true" "$(json_eval "$CR_OUT" "len(L('$LIN')['fix_plan']) >= 6")"
listing >"$E2E_OUT/list0"
cr_show g-dry grant "$SVC" "$LIN" --certbot-dir "$C" --dry-run
listing >"$E2E_OUT/list1"
assert_eq "dry run: exit 0" "0" "$CR_RC"
assert_eq "dry run: nothing changed (every path's mode and group)" "" "$(diff "$E2E_OUT/list0" "$E2E_OUT/list1" || true)"
cr_show g1 grant "$SVC" "$LIN" --certbot-dir "$C"
listing >"$E2E_OUT/list2"
assert_eq "grant: exit 0 (re-checked as $SVC)" "0" "$CR_RC"
assert_contains "grant: tried as $SVC" "tried as $SVC" "$CR_OUT"
assert_eq "grant: renewal/ and accounts/ untouched" "" "$(diff <(grep -E "^$C/(renewal|accounts)" "$E2E_OUT/list0") <(grep -E "^$C/(renewal|accounts)" "$E2E_OUT/list2") || true)"
assert_eq "grant: no 'other' bit added anywhere" "" "$(diff <(other_bits "$E2E_OUT/list0") <(other_bits "$E2E_OUT/list2") || true)"
cr_show g2 grant "$SVC" "$LIN" --certbot-dir "$C"
listing >"$E2E_OUT/list3"
assert_eq "second grant: exit 0" "0" "$CR_RC"
assert_contains "second grant: says nothing to change" "Nothing to change" "$CR_OUT"
assert_eq "second grant: nothing changed" "" "$(diff "$E2E_OUT/list2" "$E2E_OUT/list3" || true)"
cr_check c-after --certbot-dir "$C" --user "$SVC" "$LIN"
assert_eq "check as $SVC after grant: usable, no access problem, no renewal forecast" "true " "$(json_eval "$CR_OUT" "L('$LIN')['usable']") $(json_eval "$CR_OUT" "access_codes('$LIN')")"

# The remaining plan: Stalwart's TLS switch on (restart: it also gets its group), nginx fixed and reloaded.
standin_start true
EXTRA="$(e2e_free_port) $(e2e_free_port) $(e2e_free_port) $(e2e_free_port) $(e2e_free_port)"
nginx_config healthy
nginx_reload
HPORTS=(--port "smtp=$SMTP" --port "imaps=$IMAPS" --port "https=$HTTPS")
cr_show d2.text doctor "$HOST" --connect 127.0.0.1 "${HPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA"
cr_run d2 doctor "$HOST" --connect 127.0.0.1 "${HPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA" --format json
assert_eq "doctor after grant and the plan: exit 0, healthy" "0 true" "$CR_RC $(json_eval "$CR_OUT" "d['healthy']")"
assert_eq "doctor after grant: stalwart serves the current $LIN on $IMAPS" "current" "$(json_eval "$CR_OUT" "next(r for r in d['ports'] if r['port']==$IMAPS)['sni']['disk']['match']")"

# Eight open ports: the run time (a number printed, not a timed assertion).
EPORTS=(--port "smtp=$SMTP" --port "imaps=$IMAPS" --port "https=$HTTPS")
for port in $EXTRA; do EPORTS+=(--port "https=$port"); done
cr_run d8 doctor "$HOST" --connect 127.0.0.1 "${EPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA" --format json
assert_eq "eight open ports: all open, healthy" "8 true" "$(json_eval "$CR_OUT" "len([r for r in d['ports'] if r['state']=='open'])") $(json_eval "$CR_OUT" "d['healthy']")"
e2e_log "BENCHMARK doctor, eight open loopback ports: ${CR_MS} ms wall (doctor's own count: $(json_eval "$CR_OUT" "d['elapsed_seconds']"))"

# --- 3. a second service on the same lineage; renewals keep both ---------------------------------
e2e_section "3. a second account on $LIN: shared group; renewals keep both"
cr_show g3 grant "$SVC2" "$LIN" --certbot-dir "$C"
assert_eq "grant $SVC2: exit 0" "0" "$CR_RC"
assert_contains "grant $SVC2: uses the shared group certreload-certs" "certreload-certs" "$CR_OUT"
assert_contains "grant $SVC2: says $SVC keeps access" "$SVC already read" "$CR_OUT"
for user in "$SVC" "$SVC2"; do
    cr_check "c3-$user" --certbot-dir "$C" --user "$user" "$LIN"
    assert_eq "after the shared grant: $user can read $LIN, no forecast warning" "true " "$(json_eval "$CR_OUT" "L('$LIN')['usable']") $(json_eval "$CR_OUT" "access_codes('$LIN')")"
done
# The stand-in still runs with the groups it started with: doctor says it must be restarted.
cr_run d-groups doctor "$HOST" --connect 127.0.0.1 "${HPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA" --format json
assert_word "doctor: the running stalwart lacks group certreload-certs (group-not-in-process)" group-not-in-process "$(json_eval "$CR_OUT" "[p['code'] for p in d['problems']]")"
for round in 1 2; do
    certbot_renew "$LIN" || e2e_die "certbot renew failed"
    for user in "$SVC" "$SVC2"; do
        cr_check "c4-$round-$user" --certbot-dir "$C" --user "$user" "$LIN"
        assert_eq "renewal $round: $user still reads the new key (tried)" "true tried" "$(json_eval "$CR_OUT" "L('$LIN')['usable']") $(json_eval "$CR_OUT" "d['access']['method']")"
    done
done
assert_eq "the newest key keeps group certreload-certs and g+r" "certreload-certs 640" "$(stat -c '%G %a' "$(real_of "$C/live/$LIN/privkey.pem")")"
listing >"$E2E_OUT/list4"
cr_show g4 grant "$SVC2" "$LIN" --certbot-dir "$C"
listing >"$E2E_OUT/list5"
assert_contains "grant after renewals: nothing to change" "Nothing to change" "$CR_OUT"
assert_eq "grant after renewals: nothing changed" "" "$(diff "$E2E_OUT/list4" "$E2E_OUT/list5" || true)"
standin_start true
nginx_reload
cr_run d3 doctor "$HOST" --connect 127.0.0.1 "${HPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA" --format json
assert_eq "doctor after renewals (servers restarted/reloaded): healthy" "0 true" "$CR_RC $(json_eval "$CR_OUT" "d['healthy']")"

# --- 4. real Postfix and Dovecot on the lineage: who serves, stale after a renewal, reloaded ------
e2e_section "4. Postfix and Dovecot serving $LIN: doctor names them; stale after a renewal; healthy after their reload"
mail_skip_reasons
MPORTS=()
if [[ -z $SKIP_POSTFIX ]]; then
    postfix_start "$C/live/$LIN" "$HOST"
    MPORTS+=(--port "smtp=$POSTFIX_PORT")
else
    e2e_skip "doctor with Postfix (smtp)" "$SKIP_POSTFIX"
fi
if [[ -z $SKIP_DOVECOT ]]; then
    dovecot_start "$C/live/$LIN"
    MPORTS+=(--port "imap=$DOVECOT_IMAP_PORT" --port "imaps=$DOVECOT_IMAPS_PORT")
else
    e2e_skip "doctor with Dovecot (imap, imaps)" "$SKIP_DOVECOT"
fi
# lineage_version: the number of the archive version live/$LIN/cert.pem points at.
lineage_version() {
    local file
    file=$(real_of "$C/live/$LIN/cert.pem")
    file=${file##*/cert}
    echo "${file%.pem}"
}
# mail_ports_serve SHA: every mail port presents that leaf to openssl s_client (SNI = $HOST).
mail_ports_serve() {
    if [[ -z $SKIP_POSTFIX ]]; then serves "$POSTFIX_PORT" "$HOST" "$1" smtp || return 1; fi
    if [[ -z $SKIP_DOVECOT ]]; then
        serves "$DOVECOT_IMAP_PORT" "$HOST" "$1" imap || return 1
        serves "$DOVECOT_IMAPS_PORT" "$HOST" "$1" || return 1
    fi
}
# mail_doctor TAG: doctor on the mail ports, text shown in the log, JSON in $J.
mail_doctor() {
    local margs=("$HOST" --connect 127.0.0.1 "${MPORTS[@]}" --certbot-dir "$C" --ca-file "$ROOT_CA")
    cr_show "$1.text" doctor "${margs[@]}"
    MTEXT=$CR_OUT
    MTEXT_RC=$CR_RC
    cr_run "$1" doctor "${margs[@]}" --format json
    J=$CR_OUT
}
# mail_rows: "PORT MASTER_PID PROCESS TRANSPORT" for each mail port doctor probed.
mail_rows() {
    if [[ -z $SKIP_POSTFIX ]]; then echo "$POSTFIX_PORT $POSTFIX_MASTER master STARTTLS"; fi
    if [[ -z $SKIP_DOVECOT ]]; then
        echo "$DOVECOT_IMAP_PORT $DOVECOT_MASTER dovecot STARTTLS"
        echo "$DOVECOT_IMAPS_PORT $DOVECOT_MASTER dovecot implicit_TLS"
    fi
}
if ((${#MPORTS[@]} > 0)); then
    VN=$(lineage_version)
    SHA_N=$(cert_sha256 "$C/live/$LIN/cert.pem")
    e2e_wait_until 20 "the mail servers to serve version $VN of $LIN" mail_ports_serve "$SHA_N" || true
    mail_doctor m1
    assert_eq "doctor, Postfix and Dovecot fresh: exit 0 (text and JSON), healthy" "0 0 true" "$MTEXT_RC $CR_RC $(json_eval "$J" "d['healthy']")"
    while read -r port master process transport; do
        transport=${transport/_/ }
        assert_eq "port $port: open, $transport$([[ $transport == STARTTLS ]] && echo ', STARTTLS offered')" \
            "open $transport $([[ $transport == STARTTLS ]] && echo true || echo null)" \
            "$(R "$port" "['state'], r['transport'], r['starttls_offered']")"
        assert_eq "port $port: the leaf with SNI $HOST is version $VN of $LIN, the current one on disk" \
            "$SHA_N current $LIN $VN true" \
            "$(R "$port" "['sni']['sha256'], r['sni']['disk']['match'], r['sni']['disk']['lineage'], r['sni']['disk']['version'], r['sni']['covers_host']")"
        assert_eq "port $port: served by $process (master pid $master among the socket's holders) as root" \
            "$process root True" \
            "$(R "$port" "['owner']['process'], r['owner']['user'], str($master in r['owner']['pids'])")"
        assert_contains "doctor text, port $port: the owner column names $process as root" \
            "$process (pid $(R "$port" "['owner']['pid']")) as root" "$MTEXT"
    done < <(mail_rows)
    assert_eq "doctor, mail fresh: no problem" "" "$(json_eval "$J" "[p['code'] for p in d['problems'] if p['severity']=='error']")"

    # A real renewal, the servers not reloaded: each port serves version N, N+1 is on disk.
    certbot_renew "$LIN" || e2e_die "certbot renew failed"
    VN1=$(lineage_version)
    SHA_N1=$(cert_sha256 "$C/live/$LIN/cert.pem")
    assert_eq "certbot renew --force-renewal: version $((VN + 1)) of $LIN on disk, a new leaf" "$((VN + 1)) yes" "$VN1 $([[ $SHA_N1 != "$SHA_N" ]] && echo yes || echo no)"
    mail_doctor m2
    assert_eq "doctor, mail servers not reloaded: exit 1 (text and JSON)" "1 1" "$MTEXT_RC $CR_RC"
    while read -r port master process transport; do
        url=$(R "$port" "['url']")
        assert_eq "port $port: still serves version $VN; version $VN1 is current on disk" "older $VN $VN1" \
            "$(R "$port" "['sni']['disk']['match'], r['sni']['disk']['version'], r['sni']['disk']['current_version']")"
        msg=$(json_eval "$J" "next((p['message'] for p in d['problems'] if p['code']=='verify-stale' and p['path']=='$url'), 'no verify-stale for $url')")
        case $msg in
            *"serves version $VN of $LIN; version $VN1 is on disk since "*": the server was not reloaded") e2e_pass "verify-stale for $url: serves version $VN … version $VN1 is on disk … not reloaded" ;;
            *) e2e_fail "verify-stale for $url: serves version $VN … version $VN1 is on disk … not reloaded" "serves version $VN of $LIN; version $VN1 is on disk since …: the server was not reloaded" "$msg" ;;
        esac
        assert_contains "doctor text: [verify-stale] $url" "$url ($process" "$MTEXT"
        want=$([[ $process == master ]] && echo "postfix reload" || echo "doveadm reload")
        fix=$(json_eval "$J" "next((p['fix'] for p in d['problems'] if p['code']=='verify-stale' and p['path']=='$url'), '')")
        if [[ $fix == "$want, then check: "* ]]; then e2e_pass "verify-stale fix for $url: $want, then check"; else e2e_fail "verify-stale fix for $url" "$want, then check: …" "$fix"; fi
    done < <(mail_rows)
    assert_contains "doctor text: names verify-stale" "[verify-stale]" "$MTEXT"

    # Their reload, as the fix says: healthy again.
    if [[ -z $SKIP_POSTFIX ]]; then
        postfix_reload || e2e_fail "postfix -c DIR reload" "exit 0" "$(tail -n 5 "$E2E_OUT/postfix-reload.out")"
    fi
    if [[ -z $SKIP_DOVECOT ]]; then
        doveadm -c "$DOVECOT_CONF" reload >"$E2E_OUT/doveadm-reload.out" 2>&1 ||
            e2e_fail "doveadm -c CONF reload" "exit 0" "$(tail -n 5 "$E2E_OUT/doveadm-reload.out")"
    fi
    e2e_wait_until 30 "the mail servers to serve version $VN1 of $LIN" mail_ports_serve "$SHA_N1" || true
    mail_doctor m3
    assert_eq "doctor after postfix reload / doveadm reload: exit 0 (text and JSON), healthy" "0 0 true" "$MTEXT_RC $CR_RC $(json_eval "$J" "d['healthy']")"
    while read -r port master process transport; do
        assert_eq "port $port ($process): serves version $VN1, the current one" "current $VN1" "$(R "$port" "['sni']['disk']['match'], r['sni']['disk']['version']")"
    done < <(mail_rows)
    assert_not_contains "doctor text after the reload: no verify-stale" "[verify-stale]" "$MTEXT"
fi

e2e_finish doctor

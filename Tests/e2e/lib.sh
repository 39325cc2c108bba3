# shellcheck shell=bash
# Shared helpers for certreload's end-to-end tests. Source it from a test script:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_init check            # temp dir, cleanup trap, counters, $CERTRELOAD
#   pebble_start              # real pebble on loopback with its own CA
#   certbot_issue example.test -d example.test -d '*.example.test'
#   ...
#   e2e_finish                # summary line; exit status 1 if anything failed
#
# Everything runs inside one temp dir ($E2E_TMP) that is removed on exit (keep it with
# E2E_KEEP=1). Every wait polls with a deadline (e2e_wait_until); nothing sleeps a fixed
# time to synchronise. Cleanup actions registered with e2e_defer run in reverse order on
# exit, whatever the exit path.

# --- basics ------------------------------------------------------------------------------

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()
E2E_CLEANUP=()
E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

e2e_log() { printf '%s\n' "$*"; }
e2e_section() { printf '\n== %s\n' "$*"; }
e2e_die() {
    printf 'FATAL: %s\n' "$*" >&2
    exit 3
}

# Runs the registered cleanup actions, newest first. Installed as the EXIT trap.
e2e_cleanup() {
    local status=$?
    set +e
    local i
    for ((i = ${#E2E_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${E2E_CLEANUP[$i]}" >/dev/null 2>&1
    done
    E2E_CLEANUP=()
    return "$status"
}

# e2e_defer 'shell code': run it at exit (reverse order of registration).
e2e_defer() { E2E_CLEANUP+=("$1"); }

# e2e_init NAME: temp dir, traps, the binary under test.
e2e_init() {
    local name=$1
    [[ $(id -u) -eq 0 ]] || e2e_die "run as root (certbot, useradd and the access probe need it)"
    CERTRELOAD=${CERTRELOAD:-$E2E_ROOT/.build/release/certreload}
    [[ $CERTRELOAD == /* ]] || CERTRELOAD="$PWD/$CERTRELOAD"
    [[ -x $CERTRELOAD ]] || e2e_die "no certreload binary at $CERTRELOAD (swift build -c release, or set CERTRELOAD=)"
    E2E_TMP=$(mktemp -d "/tmp/certreload-e2e-$name.XXXXXX")
    # mktemp makes 0700 dirs: the service user must be able to walk down to the files.
    chmod 0755 "$E2E_TMP"
    E2E_OUT=$E2E_TMP/out
    mkdir -p "$E2E_OUT"
    trap e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if [[ ${E2E_KEEP:-0} == 1 ]]; then
        e2e_log "keeping $E2E_TMP (E2E_KEEP=1)"
    else
        e2e_defer "rm -rf '$E2E_TMP'"
    fi
    e2e_log "certreload: $CERTRELOAD"
    e2e_log "temp dir:   $E2E_TMP"
}

e2e_require() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || e2e_die "needs '$cmd' (apt-get install it)"
    done
}

# e2e_wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until it succeeds;
# fail (return 1, with a message) when the deadline passes. COMMAND's stdout is discarded,
# its stderr is not (keep it quiet).
e2e_wait_until() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    while ! "$@" >/dev/null; do
        if ((SECONDS >= deadline)); then
            printf 'timed out after %ss waiting for %s\n' "$seconds" "$what" >&2
            return 1
        fi
        sleep 0.1
    done
}

# A free TCP port on 127.0.0.1 (so parallel runs and other worktrees do not collide).
e2e_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Milliseconds since the epoch.
e2e_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- assertions ----------------------------------------------------------------------------

e2e_pass() {
    E2E_PASSED=$((E2E_PASSED + 1))
    printf 'PASS  %s\n' "$1"
}

# e2e_fail WHAT EXPECTED SEEN
e2e_fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("$1")
    printf 'FAIL  %s\n        expected: %s\n        seen:     %s\n' "$1" "$2" "$3"
}

# assert_eq WHAT EXPECTED SEEN
assert_eq() {
    if [[ $2 == "$3" ]]; then e2e_pass "$1"; else e2e_fail "$1" "$2" "$3"; fi
}

# assert_ne WHAT UNEXPECTED SEEN
assert_ne() {
    if [[ $2 != "$3" ]]; then e2e_pass "$1"; else e2e_fail "$1" "anything but $2" "$3"; fi
}

# assert_word WHAT WORD LIST: WORD is one of the space-separated words of LIST.
assert_word() {
    if [[ " $3 " == *" $2 "* ]]; then e2e_pass "$1"; else e2e_fail "$1" "'$2' among [$3]" "[$3]"; fi
}

# assert_no_word WHAT WORD LIST
assert_no_word() {
    if [[ " $3 " != *" $2 "* ]]; then e2e_pass "$1"; else e2e_fail "$1" "no '$2' among [$3]" "[$3]"; fi
}

# assert_no_words WHAT "W1 W2" LIST: none of the words appears.
assert_no_words() {
    local word found=()
    for word in $2; do [[ " $3 " == *" $word "* ]] && found+=("$word"); done
    if ((${#found[@]} == 0)); then e2e_pass "$1"; else e2e_fail "$1" "none of [$2]" "[$3]"; fi
}

# assert_lt WHAT LIMIT VALUE (integers)
assert_lt() {
    if (($3 < $2)); then e2e_pass "$1"; else e2e_fail "$1" "< $2" "$3"; fi
}

# assert_file_lacks WHAT NEEDLE FILE...: the fixed string NEEDLE appears in none of the files.
assert_file_lacks() {
    local what=$1 needle=$2
    shift 2
    local hits
    hits=$(grep -lF -- "$needle" "$@" 2>/dev/null || true)
    if [[ -z $hits ]]; then e2e_pass "$what"; else e2e_fail "$what" "no '$needle' in $# files" "found in: $(echo "$hits" | tr '\n' ' ')"; fi
}

# e2e_secret VALUE: a token or password this script hands certreload; e2e_finish checks that
# no captured output holds it (nor the body of any private key under $E2E_TMP or the booted root).
# (A file, so that a call inside $(…) counts too.)
e2e_secret() { printf '%s\n' "$1" >>"$E2E_TMP/.secret-needles"; }

# e2e_secret_sweep: greps everything certreload said or wrote for every secret — captured
# stdout/stderr and journals ($E2E_OUT), state files — and fails on any hit. The peers' own
# records (certbot's and pebble's logs, what a server stand-in received: stalwart_standin*,
# standin-*) are not certreload's output and are left out.
e2e_secret_sweep() {
    local needles=$E2E_TMP/.secret-needles key files=() hits
    touch "$needles"
    # The first base64 line of each private key: a random 64-character string.
    while IFS= read -r -d '' key; do
        sed -n '2p' "$key" >>"$needles"
    done < <(find "$E2E_TMP" ${SD_ROOT:+"$SD_ROOT/etc/letsencrypt/archive"} -type f \( -name 'privkey*.pem' -o -name '*.key' \) -print0 2>/dev/null)
    sed -i '/^.\{0,7\}$/d' "$needles"  # nothing short enough to match by chance
    while IFS= read -r -d '' key; do files+=("$key"); done < <(
        find "$E2E_OUT" "$E2E_TMP" ${SD_ROOT:+"$SD_ROOT/var/lib/certreload"} -type f \( -path "$E2E_OUT/*" -o -name '*.state' \) \
            ! -name 'certbot*.log' ! -path '*/pebble/*' ! -name 'standin-*' ! -name 'stalwart_standin*' -print0 2>/dev/null | sort -zu)
    if ((${#files[@]} == 0)) || [[ ! -s $needles ]]; then return 0; fi
    # The sweep itself can fail: a planted copy of the first secret must be found.
    sed -n '1p' "$needles" >"$E2E_TMP/.sweep-canary"
    grep -qF -f "$needles" "$E2E_TMP/.sweep-canary" || e2e_fail "the secret sweep finds a planted secret" "found" "not found"
    rm -f "$E2E_TMP/.sweep-canary"
    hits=$(grep -lF -f "$needles" -- "${files[@]}" 2>/dev/null || true)
    if [[ -z $hits ]]; then
        e2e_pass "no secret in any output: $(wc -l <"$needles") secrets (tokens, passwords, private keys) over ${#files[@]} captured files"
    else
        e2e_fail "no secret in any output" "no hit" "found in: $(echo "$hits" | tr '\n' ' ')"
    fi
}

# e2e_finish: summary; exit status 0 only when nothing failed.
e2e_finish() {
    e2e_secret_sweep
    printf '\n%s: %d passed, %d failed' "${1:-summary}" "$E2E_PASSED" "$E2E_FAILED"
    if ((${E2E_SKIPPED:-0} > 0)); then printf ', %d skipped' "$E2E_SKIPPED"; fi
    printf '\n'
    local f
    for f in "${E2E_FAILURES[@]}"; do printf '  failed: %s\n' "$f"; done
    ((E2E_FAILED == 0))
}

# --- JSON (python3; no jq needed) ----------------------------------------------------------

# json_eval FILE EXPR: evaluates a Python expression over the report `d`, with helpers:
#   L(name)        the lineage named name (None if absent)
#   codes(name)    its problem codes, in order
#   prob(name, c)  its first problem with code c (None if none)
#   access_codes(name)  its access problem codes
# Booleans print as true/false, None as null, lists as space-separated words.
json_eval() {
    python3 - "$1" "$2" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        d = json.load(f)
except Exception as e:
    print("unparsable-json:%s" % type(e).__name__)
    sys.exit(0)
def L(name):
    return next((l for l in d.get("lineages", []) if l.get("name") == name), None)
def codes(name):
    l = L(name)
    return [p["code"] for p in l["problems"]] if l else ["no-such-lineage"]
ACCESS = {"not-traversable", "unreadable", "access-lost-on-renewal"}
def access_codes(name):
    return [c for c in codes(name) if c in ACCESS]
def prob(name, code):
    l = L(name)
    return next((p for p in l["problems"] if p["code"] == code), None) if l else None
try:
    v = eval(sys.argv[2])
except Exception as e:
    v = "error:%s" % type(e).__name__
def show(v):
    if v is True: return "true"
    if v is False: return "false"
    if v is None: return "null"
    if isinstance(v, (list, tuple)): return " ".join(show(x) for x in v)
    return str(v)
print(show(v))
PY
}

# --- running certreload --------------------------------------------------------------------

# cr_run TAG ARGS...: runs "$CERTRELOAD" ARGS under a timeout (CR_TIMEOUT, default 30 s),
# stdout to $E2E_OUT/TAG.out, stderr to TAG.err; sets CR_RC, CR_MS (wall time) and CR_OUT.
cr_run() {
    local tag=$1
    shift
    CR_OUT=$E2E_OUT/$tag.out
    local start
    start=$(e2e_now_ms)
    set +e
    timeout --kill-after=2 "${CR_TIMEOUT:-30}" "$CERTRELOAD" "$@" >"$CR_OUT" 2>"$E2E_OUT/$tag.err"
    CR_RC=$?
    set -e
    CR_MS=$(($(e2e_now_ms) - start))
}

# cr_check TAG ARGS...: `certreload check ARGS --format json`, output in $CR_OUT (JSON).
cr_check() {
    local tag=$1
    shift
    cr_run "$tag" check "$@" --format json
}

# cr_text TAG ARGS...: the same check in text form, printed indented for the log.
cr_text() {
    local tag=$1
    shift
    cr_run "$tag.text" check "$@"
    sed 's/^/    | /' "$CR_OUT" "$E2E_OUT/$tag.text.err"
    printf '    | (exit %s)\n' "$CR_RC"
}

# --- pebble on loopback --------------------------------------------------------------------

# pebble_start: makes a tiny CA, a TLS certificate for 127.0.0.1, a config on free ports, and
# starts pebble with the always-valid, no-sleep, no-nonce-rejection settings. Sets
# PEBBLE_DIR, PEBBLE_URL, PEBBLE_CA (the bundle certbot must trust), PEBBLE_MGMT_URL.
# PEBBLE_CERT_VALIDITY (seconds) sets the lifetime of the certificates it issues (default:
# pebble's five years).
pebble_start() {
    e2e_require pebble openssl curl
    PEBBLE_DIR=$E2E_TMP/pebble
    mkdir -p "$PEBBLE_DIR"
    local d=$PEBBLE_DIR
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=certreload e2e pebble CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/tls.ext"
    openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/tls.ext" -out "$d/tls.pem" 2>/dev/null
    local port mport
    port=$(e2e_free_port)
    mport=$(e2e_free_port)
    while [[ $mport == "$port" ]]; do mport=$(e2e_free_port); done
    cat >"$d/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$port",
    "managementListenAddress": "127.0.0.1:$mport",
    "certificate": "$d/tls.pem",
    "privateKey": "$d/tls.key",
    "httpPort": 5002,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false${PEBBLE_CERT_VALIDITY:+,
    \"certificateValidityPeriod\": $PEBBLE_CERT_VALIDITY}
  }
}
EOF
    PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
        pebble -config "$d/config.json" >"$d/pebble.log" 2>&1 &
    PEBBLE_PID=$!
    e2e_defer "pebble_stop"
    PEBBLE_URL=https://127.0.0.1:$port/dir
    PEBBLE_MGMT_URL=https://127.0.0.1:$mport
    PEBBLE_CA=$d/ca.pem
    if ! e2e_wait_until 30 "pebble at $PEBBLE_URL" pebble_ready; then
        sed 's/^/    pebble| /' "$d/pebble.log" >&2
        e2e_die "pebble did not start"
    fi
    e2e_log "pebble pid $PEBBLE_PID at $PEBBLE_URL"
}

pebble_ready() {
    kill -0 "$PEBBLE_PID" 2>/dev/null || e2e_die "pebble exited: $(tail -n 5 "$PEBBLE_DIR/pebble.log")"
    curl -sf --max-time 2 --cacert "$PEBBLE_CA" "$PEBBLE_URL" >/dev/null
}

pebble_stop() {
    [[ -n ${PEBBLE_PID:-} ]] || return 0
    if kill -0 "$PEBBLE_PID" 2>/dev/null; then
        kill "$PEBBLE_PID" 2>/dev/null || true
        e2e_wait_until 10 "pebble to exit" pebble_gone || kill -9 "$PEBBLE_PID" 2>/dev/null || true
    fi
    wait "$PEBBLE_PID" 2>/dev/null || true
    PEBBLE_PID=
}

pebble_gone() { ! kill -0 "$PEBBLE_PID" 2>/dev/null; }

# --- certbot against pebble -----------------------------------------------------------------

# certbot_run ARGS...: certbot with the e2e directories, pebble's server and CA, bounded time.
# CERTBOT_DIR is certbot's --config-dir ($E2E_TMP/letsencrypt unless set before).
certbot_run() {
    e2e_require certbot
    CERTBOT_DIR=${CERTBOT_DIR:-$E2E_TMP/letsencrypt}
    mkdir -p "$E2E_TMP/certbot-work" "$E2E_TMP/certbot-logs"
    local log=$E2E_OUT/certbot.log
    if ! REQUESTS_CA_BUNDLE=$PEBBLE_CA timeout --kill-after=5 "${CERTBOT_TIMEOUT:-180}" certbot "$@" \
        --non-interactive --server "$PEBBLE_URL" \
        --config-dir "$CERTBOT_DIR" --work-dir "$E2E_TMP/certbot-work" --logs-dir "$E2E_TMP/certbot-logs" \
        >>"$log" 2>&1; then
        tail -n 30 "$log" | sed 's/^/    certbot| /' >&2
        return 1
    fi
}

# certbot_issue NAME -d DOMAIN [-d DOMAIN...]: a new lineage live/NAME (dns challenge,
# manual hook /bin/true: pebble validates nothing with PEBBLE_VA_ALWAYS_VALID=1).
certbot_issue() {
    local name=$1
    shift
    certbot_run certonly --agree-tos --email e2e@example.org --no-eff-email \
        --manual --preferred-challenges dns --manual-auth-hook /bin/true \
        --cert-name "$name" "$@"
}

# certbot_renew [NAME]: forced renewal of one lineage (or all), no random sleep.
certbot_renew() {
    if [[ $# -gt 0 ]]; then
        certbot_run renew --force-renewal --no-random-sleep-on-renew --cert-name "$1"
    else
        certbot_run renew --force-renewal --no-random-sleep-on-renew
    fi
}

# --- accounts and permissions ----------------------------------------------------------------

# e2e_service_user NAME: a system user (created if absent, removed at exit if created here).
e2e_service_user() {
    local name=$1
    if ! id -u "$name" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "$name"
        e2e_defer "userdel '$name'; groupdel '$name'"
        e2e_log "created service user $name"
    fi
}

# The archive file a live link resolves to.
real_of() { readlink -f "$1"; }

# grant_group CONFIG GROUP: the lasting fix: group + g+rx on live/, archive/ and the lineage
# dirs, group + g+r on every lineage's current archive key (certbot copies both to new keys).
grant_group() {
    local config=$1 group=$2 lineage
    chgrp "$group" "$config/live" "$config/archive"
    chmod g+rx "$config/live" "$config/archive"
    for lineage in "$config"/live/*/; do
        lineage=${lineage%/}
        local name=${lineage##*/}
        chgrp "$group" "$lineage" "$config/archive/$name"
        chmod g+rx "$lineage" "$config/archive/$name"
        local key
        key=$(real_of "$lineage/privkey.pem")
        chgrp "$group" "$key"
        chmod g+r "$key"
    done
}

# revoke_group CONFIG: back to certbot's defaults (root group, no group bits on the dirs and key).
revoke_group() {
    local config=$1 lineage
    chgrp root "$config/live" "$config/archive"
    chmod 0700 "$config/live" "$config/archive"
    for lineage in "$config"/live/*/; do
        lineage=${lineage%/}
        local name=${lineage##*/}
        chgrp root "$lineage" "$config/archive/$name"
        chmod 0755 "$lineage" "$config/archive/$name"
        local key
        key=$(real_of "$lineage/privkey.pem")
        chgrp root "$key"
        chmod 0600 "$key"
    done
}

# grant_acl CONFIG USER: access through ACL entries only.
grant_acl() {
    local config=$1 user=$2 lineage
    setfacl -m "u:$user:rx" "$config/live" "$config/archive"
    for lineage in "$config"/live/*/; do
        lineage=${lineage%/}
        local name=${lineage##*/}
        setfacl -m "u:$user:rx" "$lineage" "$config/archive/$name"
        setfacl -m "u:$user:r" "$(real_of "$lineage/privkey.pem")"
    done
}

# revoke_acl CONFIG: remove every ACL under CONFIG.
revoke_acl() { setfacl -R -b "$1"; }

# --- reload, deploy, verify: servers on loopback and what they serve ------------------------

# e2e_skip WHAT REASON: a check that cannot run here, said loudly (counted, never silent).
E2E_SKIPPED=0
e2e_skip() {
    E2E_SKIPPED=$((E2E_SKIPPED + 1))
    printf 'SKIP  %s\n        reason: %s\n' "$1" "$2"
}

# assert_contains WHAT NEEDLE FILE: the fixed string NEEDLE appears in FILE.
assert_contains() {
    if grep -qF -- "$2" "$3" 2>/dev/null; then
        e2e_pass "$1"
    else
        e2e_fail "$1" "'$2' in ${3##*/}" "$(tail -c 600 "$3" 2>/dev/null | tr '\n' '|')"
    fi
}

# assert_not_contains WHAT NEEDLE FILE
assert_not_contains() {
    if ! grep -qF -- "$2" "$3" 2>/dev/null; then
        e2e_pass "$1"
    else
        e2e_fail "$1" "no '$2' in ${3##*/}" "$(grep -F -- "$2" "$3" | head -n 3 | tr '\n' '|')"
    fi
}

# cert_sha256 PEM: SHA-256 of the (first) certificate's DER, lowercase hex, no colons.
cert_sha256() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f' || true
}

# served_sha256 PORT SNI [STARTTLS]: the same fingerprint of the leaf that 127.0.0.1:PORT
# presents to an independent client (openssl s_client, SNI sent); STARTTLS is s_client's
# -starttls protocol (smtp, imap, pop3). Empty when no certificate was presented.
served_sha256() {
    local port=$1 sni=$2 proto=${3:-}
    local args=(-connect "127.0.0.1:$port" -servername "$sni")
    [[ -n $proto ]] && args+=(-starttls "$proto")
    { timeout --kill-after=2 10 openssl s_client "${args[@]}" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 2>/dev/null |
        sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; } || true
}

# serves PORT SNI SHA [STARTTLS]: succeeds when the server presents exactly that leaf.
serves() { [[ $(served_sha256 "$1" "$2" "${4:-}") == "$3" ]]; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# e2e_wait_port SECONDS WHAT PORT
e2e_wait_port() { e2e_wait_until "$1" "$2 on 127.0.0.1:$3" port_open "$3"; }

# pid_alive PID
pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
pid_gone() { ! pid_alive "$1"; }

# e2e_stop_pid PID [SECONDS]: SIGTERM, wait (bounded) for it to go, then SIGKILL.
e2e_stop_pid() {
    local pid=$1 seconds=${2:-10}
    [[ -n $pid ]] || return 0
    pid_alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    e2e_wait_until "$seconds" "process $pid to exit" pid_gone "$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# e2e_stop_pidfile FILE [SECONDS]: the same for the process in a pid file (daemons).
e2e_stop_pidfile() {
    [[ -s $1 ]] || return 0
    local pid
    pid=$(tr -dc '0-9' <"$1")
    e2e_stop_pid "$pid" "${2:-10}"
}

# cr_show TAG ARGS...: cr_run, then its stdout and stderr printed indented for the log.
cr_show() {
    local tag=$1
    shift
    cr_run "$tag" "$@"
    sed 's/^/    | /' "$CR_OUT" "$E2E_OUT/$tag.err"
    printf '    | (certreload %s: exit %s, %s ms)\n' "$1" "$CR_RC" "$CR_MS"
}

# deploy_hook_script CONFIG: writes $E2E_TMP/deploy-hook.sh, the deploy hook certbot runs:
# `certreload deploy --config CONFIG`, its output appended to $E2E_OUT/hook.out (and passed
# on to certbot), its exit status written to $E2E_OUT/hook.rc. Prints the script's path.
deploy_hook_script() {
    local hook=$E2E_TMP/deploy-hook.sh
    cat >"$hook" <<HOOK
#!/bin/sh
# certbot's deploy hook for the e2e test (RENEWED_LINEAGE and RENEWED_DOMAINS from certbot).
echo "hook: RENEWED_LINEAGE=\$RENEWED_LINEAGE RENEWED_DOMAINS=\$RENEWED_DOMAINS" >>'$E2E_OUT/hook.out'
'$CERTRELOAD' deploy --config '$1' >'$E2E_OUT/hook.run' 2>&1
rc=\$?
cat '$E2E_OUT/hook.run' >>'$E2E_OUT/hook.out'
cat '$E2E_OUT/hook.run'
echo \$rc >'$E2E_OUT/hook.rc'
exit \$rc
HOOK
    chmod 0755 "$hook"
    echo "$hook"
}

# certbot_renew_with_hook NAME HOOK: forced renewal of NAME with --deploy-hook HOOK.
certbot_renew_with_hook() {
    certbot_run renew --force-renewal --no-random-sleep-on-renew --cert-name "$1" --deploy-hook "$2"
}

# certbot_log: certbot's own debug log (it records every hook's output).
certbot_log() { echo "$E2E_TMP/certbot-logs/letsencrypt.log"; }

# certbot_forget_hook NAME: `certbot renew --deploy-hook X` saves X as renew_hook in
# renewal/NAME.conf, and every later `certbot renew` runs it again; remove it so that a later
# renewal really runs without the hook.
certbot_forget_hook() {
    sed -i '/^renew_hook = /d' "$CERTBOT_DIR/renewal/$1.conf"
}

# show_log TAG FILE...: the last 30 lines of the files that exist, indented, for diagnosis.
show_log() {
    local tag=$1 file
    shift
    for file in "$@"; do
        [[ -r $file ]] || continue
        tail -n 30 "$file" | sed "s/^/    $tag| /" || true
    done
}

# nginx_start LIVE SERVER_NAME: nginx (master + one worker) on a free loopback port serving
# LIVE/fullchain.pem and LIVE/privkey.pem, with its own config, pid file and logs under
# $E2E_TMP/nginx; stopped at exit. Sets NGINX_DIR, NGINX_PORT, NGINX_PIDFILE, NGINX_MASTER.
nginx_start() {
    local live=$1 name=$2
    NGINX_DIR=$E2E_TMP/nginx
    mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
    NGINX_PORT=$(e2e_free_port)
    NGINX_PIDFILE=$NGINX_DIR/nginx.pid
    local nd=$NGINX_DIR
    cat >"$nd/nginx.conf" <<EOF
daemon on;
master_process on;
worker_processes 1;
pid $NGINX_PIDFILE;
error_log $nd/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        server_name $name example.test;
        ssl_certificate $live/fullchain.pem;
        ssl_certificate_key $live/privkey.pem;
        location / { return 200 "certreload e2e nginx\n"; }
    }
}
EOF
    nginx -t -q -p "$nd" -e "$nd/logs/error.log" -c "$nd/nginx.conf" || e2e_die "nginx -t refused $nd/nginx.conf"
    e2e_defer "e2e_stop_pidfile '$NGINX_PIDFILE'"
    nginx -p "$nd" -e "$nd/logs/error.log" -c "$nd/nginx.conf" || e2e_die "nginx did not start: $(tail -n 5 "$nd/logs/error.log")"
    if ! e2e_wait_until 20 "nginx on :$NGINX_PORT" nginx_up; then
        show_log nginx "$nd/logs/error.log"
        e2e_die "nginx did not start"
    fi
    NGINX_MASTER=$(tr -dc '0-9' <"$NGINX_PIDFILE")
    e2e_log "nginx master pid $NGINX_MASTER on 127.0.0.1:$NGINX_PORT"
}

# nginx_up: the pid file is written and nginx accepts connections.
nginx_up() { [[ -s $NGINX_PIDFILE ]] && port_open "$NGINX_PORT"; }

# nginx_settled_serves SNI SHA: nginx's old workers are gone (one left) and three probes in a
# row present that leaf. After a graceful reload an old worker may still answer for a moment.
nginx_settled_serves() {
    local i
    [[ $(pgrep -P "$NGINX_MASTER" | wc -l) -eq 1 ]] || return 1
    for i in 1 2 3; do serves "$NGINX_PORT" "$1" "$2" || return 1; done
}

# --- mail servers on loopback: Postfix and Dovecot -------------------------------------------

# e2e_new_port: a free loopback port not handed out before in this run (E2E_PORTS).
E2E_PORTS=" "
e2e_new_port() {
    local port
    port=$(e2e_free_port)
    while [[ $E2E_PORTS == *" $port "* ]]; do port=$(e2e_free_port); done
    E2E_PORTS+="$port "
    echo "$port"
}

# mail_skip_reasons: sets SKIP_POSTFIX and SKIP_DOVECOT to why each cannot run here (empty
# when it can): the packages or their accounts are missing.
# shellcheck disable=SC2034 # read by the scripts that source this file
mail_skip_reasons() {
    SKIP_POSTFIX=
    SKIP_DOVECOT=
    if ! command -v postfix >/dev/null || [[ ! -x /usr/lib/postfix/sbin/master ]]; then
        SKIP_POSTFIX="postfix is not installed (scripts/install-deps --test installs it)"
    elif ! id postfix >/dev/null 2>&1 || ! getent group postdrop >/dev/null; then
        SKIP_POSTFIX="the postfix user or the postdrop group is missing (a broken postfix package)"
    fi
    if ! command -v dovecot >/dev/null || [[ ! -x /usr/lib/dovecot/imap-login ]]; then
        SKIP_DOVECOT="dovecot-imapd is not installed (scripts/install-deps --test installs it)"
    elif ! id dovecot >/dev/null 2>&1 || ! id dovenull >/dev/null 2>&1; then
        SKIP_DOVECOT="the dovecot or dovenull user is missing (a broken dovecot package)"
    fi
}

# smtp_starttls PORT: prints yes when the server's EHLO answer offers STARTTLS, no otherwise.
smtp_starttls() {
    python3 - "$1" <<'PY' 2>/dev/null || echo "no answer"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example.test", timeout=5)
s.ehlo()
print("yes" if s.has_extn("starttls") else "no")
s.quit()
PY
}
smtp_offers() { [[ $(smtp_starttls "$1") == "$2" ]]; }

# postfix_start LIVE [MYHOSTNAME]: a Postfix instance of its own (config dir, queue, data dir,
# maillog under $E2E_TMP/postfix), smtpd with STARTTLS on a free loopback port serving
# LIVE/privkey.pem + LIVE/fullchain.pem; waits (bounded) until it offers STARTTLS; stopped at
# exit. Sets POSTFIX_DIR, POSTFIX_CONF (for `postfix -c`), POSTFIX_PORT, POSTFIX_PIDFILE,
# POSTFIX_MASTER. Call mail_skip_reasons first: it needs SKIP_POSTFIX empty.
postfix_start() {
    local live=$1 host=${2:-mail.example.test}
    POSTFIX_DIR=$E2E_TMP/postfix
    POSTFIX_CONF=$POSTFIX_DIR/etc
    POSTFIX_PORT=$(e2e_new_port)
    POSTFIX_PIDFILE=$POSTFIX_DIR/spool/pid/master.pid
    local pd=$POSTFIX_DIR
    mkdir -p "$POSTFIX_CONF" "$pd/spool" "$pd/data"
    chown postfix "$pd/data" # master.lock and the TLS caches live there, written as postfix
    cat >"$POSTFIX_CONF/main.cf" <<EOF
# certreload e2e: a Postfix instance of its own, listening on loopback only.
compatibility_level = 3.6
queue_directory = $pd/spool
data_directory = $pd/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $pd/maillog
maillog_file_prefixes = $pd
myhostname = $host
mydomain = example.test
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtpd_banner = \$myhostname ESMTP certreload-e2e
smtpd_tls_chain_files = $live/privkey.pem, $live/fullchain.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
EOF
    cat >"$POSTFIX_CONF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$POSTFIX_PORT inet  n       -       n       -       -       smtpd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    e2e_defer "/usr/sbin/postfix -c '$POSTFIX_CONF' stop >/dev/null 2>&1; e2e_stop_pidfile '$POSTFIX_PIDFILE'"
    if ! /usr/sbin/postfix -c "$POSTFIX_CONF" start >"$E2E_OUT/postfix-start.out" 2>&1; then
        show_log postfix "$E2E_OUT/postfix-start.out" "$pd/maillog"
        e2e_die "postfix -c $POSTFIX_CONF start failed"
    fi
    if ! e2e_wait_until 30 "Postfix to offer STARTTLS on :$POSTFIX_PORT" smtp_offers "$POSTFIX_PORT" yes; then
        show_log postfix "$E2E_OUT/postfix-start.out" "$pd/maillog"
        e2e_die "Postfix did not start"
    fi
    POSTFIX_MASTER=$(tr -dc '0-9' <"$POSTFIX_PIDFILE")
    e2e_log "postfix master pid $POSTFIX_MASTER on 127.0.0.1:$POSTFIX_PORT"
}

# postfix_reload: `postfix -c POSTFIX_CONF reload`, its output in $E2E_OUT/postfix-reload.out.
postfix_reload() { /usr/sbin/postfix -c "$POSTFIX_CONF" reload >>"$E2E_OUT/postfix-reload.out" 2>&1; }

# dovecot_start LIVE: a Dovecot instance of its own (config file, base and state dirs, log under
# $E2E_TMP/dovecot), IMAP with STARTTLS and IMAPS on free loopback ports serving
# LIVE/fullchain.pem + LIVE/privkey.pem; waits (bounded) until both ports accept; stopped at
# exit. Sets DOVECOT_DIR, DOVECOT_CONF (for `dovecot -c`, `doveadm -c`), DOVECOT_IMAP_PORT,
# DOVECOT_IMAPS_PORT, DOVECOT_PIDFILE, DOVECOT_MASTER. Needs SKIP_DOVECOT empty.
dovecot_start() {
    local live=$1
    DOVECOT_DIR=$E2E_TMP/dovecot
    DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf
    DOVECOT_PIDFILE=$DOVECOT_DIR/run/master.pid
    DOVECOT_IMAP_PORT=$(e2e_new_port)
    DOVECOT_IMAPS_PORT=$(e2e_new_port)
    local dd=$DOVECOT_DIR
    mkdir -p "$dd/run" "$dd/state"
    cat >"$DOVECOT_CONF" <<EOF
# certreload e2e: a Dovecot instance of its own, listening on loopback only.
base_dir = $dd/run
state_dir = $dd/state
log_path = $dd/dovecot.log
info_log_path = $dd/dovecot.log
instance_name = certreload-e2e
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$live/fullchain.pem
ssl_key = <$live/privkey.pem
auth_mechanisms = plain
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_IMAPS_PORT
    ssl = yes
  }
}
EOF
    e2e_defer "e2e_stop_pidfile '$DOVECOT_PIDFILE'"
    if ! dovecot -c "$DOVECOT_CONF" >"$E2E_OUT/dovecot-start.out" 2>&1; then
        show_log dovecot "$E2E_OUT/dovecot-start.out" "$dd/dovecot.log"
        e2e_die "dovecot -c $DOVECOT_CONF failed"
    fi
    if ! e2e_wait_until 30 "Dovecot on :$DOVECOT_IMAP_PORT and :$DOVECOT_IMAPS_PORT" dovecot_up; then
        show_log dovecot "$E2E_OUT/dovecot-start.out" "$dd/dovecot.log"
        e2e_die "Dovecot did not start"
    fi
    DOVECOT_MASTER=$(tr -dc '0-9' <"$DOVECOT_PIDFILE")
    e2e_log "dovecot master pid $DOVECOT_MASTER on 127.0.0.1:$DOVECOT_IMAP_PORT (imap) and :$DOVECOT_IMAPS_PORT (imaps)"
}

# dovecot_up: the pid file is written and both listeners accept connections.
dovecot_up() { [[ -s $DOVECOT_PIDFILE ]] && port_open "$DOVECOT_IMAP_PORT" && port_open "$DOVECOT_IMAPS_PORT"; }

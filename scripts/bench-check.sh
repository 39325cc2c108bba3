#!/usr/bin/env bash
# Benchmark (prints numbers; not a test): `certreload check` as whole processes on 1 and on
# 1,000 certbot-style lineages, against the shell + openssl script administrators write today.
#
#   sudo scripts/bench-check.sh
#   CERTRELOAD=path/to/certreload   binary under test (default .build/release/certreload)
#   BENCH_RUNS=N                     timed runs per command (default 20; baseline fewer)
#   BENCH_FULL_BASELINE=1            time the baseline on all 1,000 lineages instead of
#                                    extrapolating from 100 (it takes about a minute a run)
#   BENCH_KEEP=1                     keep the generated trees
#
# As root, certreload runs with --user nobody, so its privilege-dropping access probe (a
# forked child that takes nobody's uid and groups and tries every directory and file) is
# part of the time. The baseline checks no access at all: it is the lighter of the two.
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CERTRELOAD=${CERTRELOAD:-$root_dir/.build/release/certreload}
[[ $CERTRELOAD == /* ]] || CERTRELOAD="$PWD/$CERTRELOAD"
[[ -x $CERTRELOAD ]] || { echo "no certreload binary at $CERTRELOAD (swift build -c release, or CERTRELOAD=)" >&2; exit 2; }
RUNS=${BENCH_RUNS:-20}
N_BIG=1000
N_SAMPLE=100          # the baseline's extrapolation sample
HOST=www.bench.test   # every benchmark certificate covers *.bench.test

work=$(mktemp -d /tmp/certreload-bench.XXXXXX)
chmod 0755 "$work"
if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "keeping $work"; else trap 'rm -rf "$work"' EXIT; fi

user_args=()
svc_group=root
if [[ $(id -u) -eq 0 ]]; then
    user_args=(--user nobody)
    svc_group=$(id -gn nobody)
    as="as root with --user nobody (privilege-dropping probe included)"
else
    as="as $(id -un), without --user (NOT root: no privilege-dropping probe)"
fi

# --- certificates: a root, an intermediate, and four leaf templates (3 ECDSA P-256, 1 RSA 2048) --
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=Bench Root" -keyout "$pki/root.key" -out "$pki/root.pem" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$pki/int.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Bench Intermediate" \
    -keyout "$pki/int.key" -out "$pki/int.csr" 2>/dev/null
openssl x509 -req -in "$pki/int.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" -CAcreateserial \
    -days 30 -extfile "$pki/int.ext" -out "$pki/int.pem" 2>/dev/null
templates=4
for t in $(seq 1 $templates); do
    name=template$t.bench.test
    if ((t == templates)); then keyopts=(-newkey rsa:2048); else keyopts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
    openssl req -new "${keyopts[@]}" -nodes -subj "/CN=$name" -keyout "$pki/leaf$t.key" -out "$pki/leaf$t.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,DNS:*.bench.test\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$name" >"$pki/leaf$t.ext"
    openssl x509 -req -in "$pki/leaf$t.csr" -CA "$pki/int.pem" -CAkey "$pki/int.key" -CAcreateserial \
        -days 20 -extfile "$pki/leaf$t.ext" -out "$pki/leaf$t.pem" 2>/dev/null
done

# make_tree DIR COUNT: certbot's layout with COUNT lineages (one certificate each, keys from the templates), the
# lasting group fix for nobody applied (group on live/, archive/, keys; certbot's modes else).
make_tree() {
    local dir=$1 count=$2 i
    mkdir -p "$dir/live" "$dir/archive" "$dir/renewal"
    echo "certbot-style benchmark tree" >"$dir/live/README"
    for i in $(seq -f '%04g' 1 "$count"); do
        local name=lineage$i.bench.test t=$((10#$i % templates + 1))
        mkdir -p "$dir/live/$name" "$dir/archive/$name"
        # Every lineage gets its own certificate (as in real life; only the intermediate is
        # shared), issued for the template's key: certreload parses each distinct PEM block
        # once, so copies of one certificate would flatter it.
        printf 'subjectAltName=DNS:%s,DNS:*.bench.test\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$name" >"$pki/lineage.ext"
        openssl x509 -req -in "$pki/leaf$t.csr" -CA "$pki/int.pem" -CAkey "$pki/int.key" -set_serial "$((10#$i + 1000))" \
            -days 20 -extfile "$pki/lineage.ext" -out "$dir/archive/$name/cert1.pem" 2>/dev/null
        cp "$pki/int.pem" "$dir/archive/$name/chain1.pem"
        cat "$dir/archive/$name/cert1.pem" "$pki/int.pem" >"$dir/archive/$name/fullchain1.pem"
        cp "$pki/leaf$t.key" "$dir/archive/$name/privkey1.pem"
        local kind
        for kind in cert chain fullchain privkey; do
            ln -s "../../archive/$name/${kind}1.pem" "$dir/live/$name/$kind.pem"
        done
    done
    chmod 0700 "$dir/live" "$dir/archive"
    chmod 0644 "$dir"/archive/*/*.pem
    chmod 0600 "$dir"/archive/*/privkey1.pem
    chgrp "$svc_group" "$dir/live" "$dir/archive" "$dir"/archive/*/privkey1.pem
    chmod g+rx "$dir/live" "$dir/archive"
    chmod g+r "$dir"/archive/*/privkey1.pem
}
echo "building trees in $work ..."
make_tree "$work/t1" 1
make_tree "$work/t$N_SAMPLE" $N_SAMPLE
make_tree "$work/t$N_BIG" $N_BIG

# --- the baseline: what administrators script today with the openssl command line ----------
baseline=$work/baseline.sh
cat >"$baseline" <<'EOF'
#!/bin/bash
# usage: baseline.sh CERTBOT_DIR ROOT_CA HOSTNAME
dir=$1 ca=$2 host=$3 bad=0
for lineage in "$dir"/live/*/; do
    lineage=${lineage%/}
    name=${lineage##*/}
    for kind in cert chain fullchain privkey; do
        real=$(readlink -f "$lineage/$kind.pem")
        if [ ! -f "$real" ]; then echo "$name: $kind.pem missing"; bad=1; continue 2; fi
        printf -v "$kind" '%s' "$real"
    done
    openssl x509 -noout -enddate -checkend $((14 * 86400)) -in "$cert" >/dev/null || { echo "$name: expires within 14 days"; bad=1; }
    [ "$(openssl pkey -in "$privkey" -pubout)" = "$(openssl x509 -in "$cert" -noout -pubkey)" ] || { echo "$name: key does not match"; bad=1; }
    openssl verify -CAfile "$ca" -untrusted "$chain" "$cert" >/dev/null || { echo "$name: chain does not verify"; bad=1; }
    cat "$cert" "$chain" | cmp -s - "$fullchain" || { echo "$name: fullchain is not cert+chain"; bad=1; }
    openssl x509 -noout -checkhost "$host" -in "$cert" | grep -q 'does match' || { echo "$name: $host not covered"; bad=1; }
done
exit $bad
EOF
chmod +x "$baseline"

# --- preflight: every command must succeed on its tree ----------------------------------------
preflight() {
    local out
    if ! out=$("$@" 2>&1); then
        echo "preflight failed: $*" >&2
        echo "$out" | tail -n 20 >&2
        exit 1
    fi
}
cr1=("$CERTRELOAD" check --certbot-dir "$work/t1" "${user_args[@]}" --hostname "$HOST")
crN=("$CERTRELOAD" check --certbot-dir "$work/t$N_BIG" "${user_args[@]}" --hostname "$HOST")
crN_self=("$CERTRELOAD" check --certbot-dir "$work/t$N_BIG" --hostname "$HOST")
bl1=("$baseline" "$work/t1" "$pki/root.pem" "$HOST")
blS=("$baseline" "$work/t$N_SAMPLE" "$pki/root.pem" "$HOST")
blN=("$baseline" "$work/t$N_BIG" "$pki/root.pem" "$HOST")
preflight "${cr1[@]}"
preflight "${crN[@]}"
preflight "${crN_self[@]}"
preflight "${bl1[@]}"
preflight "${blS[@]}"
count=$("$CERTRELOAD" check --certbot-dir "$work/t$N_BIG" "${user_args[@]}" --format json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for l in d["lineages"] if l["usable"]))')
echo "preflight: every command exits 0; certreload finds $count usable lineages in the big tree"

# --- timing ------------------------------------------------------------------------------------
# median_ms NAME RUNS COMMAND...: median wall time of COMMAND as a whole process, in ms.
if command -v hyperfine >/dev/null 2>&1; then
    timer="hyperfine $(hyperfine --version | awk '{print $2}')"
    median_ms() {
        local name=$1 runs=$2
        shift 2
        local json=$work/$name.json cmd="" arg
        for arg in "$@"; do cmd+="$(printf '%q ' "$arg")"; done
        hyperfine --shell=none --warmup 2 --runs "$runs" --style none --export-json "$json" "$cmd" >/dev/null 2>&1 ||
            { echo "hyperfine failed for: $cmd" >&2; exit 1; }
        python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$json"
    }
else
    timer="shell loop with date +%s%N (install hyperfine for better numbers)"
    median_ms() {
        local name=$1 runs=$2 i start times=()
        shift 2
        "$@" >/dev/null 2>&1
        for ((i = 0; i < runs; i++)); do
            start=$(date +%s%N)
            "$@" >/dev/null 2>&1
            times+=($((($(date +%s%N) - start) / 1000)))
        done
        printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f\n", m / 1000}'
    }
fi

echo "timing with $timer, $RUNS runs per certreload command ..."
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(median_ms start "$RUNS" "$CERTRELOAD" --version)
t_cr1=$(median_ms cr1 "$RUNS" "${cr1[@]}")
t_crN=$(median_ms crN "$RUNS" "${crN[@]}")
t_crN_self=$(median_ms crN_self "$RUNS" "${crN_self[@]}")
t_bl1=$(median_ms bl1 "$RUNS" "${bl1[@]}")
if [[ ${BENCH_FULL_BASELINE:-0} == 1 ]]; then
    t_blN=$(median_ms blN 3 "${blN[@]}")
    bl_note="measured, 3 runs"
else
    t_blS=$(median_ms blS 5 "${blS[@]}")
    t_blN=$(python3 -c "print('%.1f' % ($t_blS * $N_BIG / $N_SAMPLE))")
    bl_note="EXTRAPOLATED: ${t_blS} ms for $N_SAMPLE lineages x $((N_BIG / N_SAMPLE)); BENCH_FULL_BASELINE=1 measures it"
fi

# --- report ---------------------------------------------------------------------------------------
verdict() { python3 -c "import sys; print('meets' if $1 else 'MISSES')"; }
cores=$(nproc)
echo
echo "certreload check benchmark: $(uname -m), $cores core(s), $(openssl version | awk '{print $1, $2}'), $timer"
echo "load average before / after timing: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates every number)"
echo "certreload $as"
echo "trees: certbot layout, relative links into archive/, ECDSA P-256 and RSA 2048 leaves + intermediate; --hostname $HOST"
echo "baseline: bash + openssl per lineage: readlink -f x4, test -f, x509 -checkend, pkey -pubout vs x509 -pubkey,"
echo "          verify -untrusted chain, cmp fullchain = cert+chain, x509 -checkhost (no access check)"
echo
printf '%-44s %12s\n' "median wall time" "ms"
printf '%-44s %12s\n' "certreload --version (process start floor)" "$t_start"
printf '%-44s %12s\n' "certreload, 1 lineage" "$t_cr1"
printf '%-44s %12s\n' "certreload, $N_BIG lineages" "$t_crN"
printf '%-44s %12s\n' "certreload, $N_BIG lineages, as itself (no --user)" "$t_crN_self"
printf '%-44s %12s\n' "baseline, 1 lineage" "$t_bl1"
printf '%-44s %12s   (%s)\n' "baseline, $N_BIG lineages" "$t_blN" "$bl_note"
echo
r1=$(python3 -c "print('%.1f' % ($t_bl1 / $t_cr1))")
rN=$(python3 -c "print('%.1f' % ($t_blN / $t_crN))")
printf '%-44s %11sx\n' "speed-up, 1 lineage (baseline / certreload)" "$r1"
printf '%-44s %11sx\n' "speed-up, $N_BIG lineages" "$rN"
echo
echo "targets:"
printf '  %-40s %s (%s ms)\n' "1 lineage < 15 ms" "$(verdict "$t_cr1 < 15")" "$t_cr1"
printf '  %-40s %s (%s ms, %s cores)\n' "$N_BIG lineages < 1 s on 2 cores" "$(verdict "$t_crN < 1000")" "$t_crN" "$cores"
printf '  %-40s %s (%sx at 1, %sx at %s)\n' ">= 10x faster than the baseline" "$(verdict "$r1 >= 10 and $rN >= 10")" "$r1" "$rN" "$N_BIG"

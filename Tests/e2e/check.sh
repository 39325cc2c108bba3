#!/usr/bin/env bash
# End-to-end test of `certreload check` against real certbot lineages issued by a real
# pebble on loopback, checked as a real service user. Runs as root; bounded in time;
# cleans up (pebble, temp dir, the service user if it created it) on every exit.
#
#   sudo Tests/e2e/check.sh            # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init check
e2e_require python3 setfacl getfacl mkfifo timeout
SVC=${E2E_SERVICE_USER:-certreload-e2e-svc}
WILD=example.test       # lineage with example.test + *.example.test
PLAIN=plain.test        # lineage with plain.example.test only

e2e_section "setup: pebble, certbot lineages, service user"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$WILD" -d example.test -d '*.example.test' || e2e_die "certbot could not issue $WILD"
certbot_issue "$PLAIN" -d plain.example.test || e2e_die "certbot could not issue $PLAIN"
e2e_service_user "$SVC"
e2e_log "issued: $(ls "$C/live" | tr '\n' ' ')"
e2e_log "live/ $(stat -c '%A %U:%G' "$C/live"), archive/ $(stat -c '%A %U:%G' "$C/archive"), key $(stat -c '%A %U:%G' "$(real_of "$C/live/$WILD/privkey.pem")")"

# Checks as root first: the lineages themselves are sound (chain, key, dates) before any
# access question.
cr_check root-sanity --certbot-dir "$C"
assert_eq "as root: both lineages usable (exit 0)" "0 true" "$CR_RC $(json_eval "$CR_OUT" 'd["usable"]')"
assert_eq "as root: $WILD sans" "example.test *.example.test" "$(json_eval "$CR_OUT" "sorted(L('$WILD')['certificate']['sans'], key=lambda s: s.startswith('*'))")"
assert_eq "as root: $WILD version 1" "1" "$(json_eval "$CR_OUT" "L('$WILD')['version']")"
assert_eq "as root: no problems at all on either lineage" "" "$(json_eval "$CR_OUT" "codes('$WILD') + codes('$PLAIN')")"

# ---------------------------------------------------------------------------------------------
e2e_section "1. certbot's default permissions"
cr_text s1 --certbot-dir "$C" --user "$SVC"
cr_check s1 --certbot-dir "$C" --user "$SVC"
assert_eq "default perms: exit 1" "1" "$CR_RC"
assert_eq "default perms: report unusable" "false" "$(json_eval "$CR_OUT" 'd["usable"]')"
assert_eq "default perms: access decided by trying as $SVC" "$SVC tried" "$(json_eval "$CR_OUT" '[d["access"]["user"], d["access"]["method"]]')"
for name in "$WILD" "$PLAIN"; do
    assert_word "default perms: $name has not-traversable" not-traversable "$(json_eval "$CR_OUT" "codes('$name')")"
    assert_eq "default perms: $name not-traversable names <config>/live" "$C/live" "$(json_eval "$CR_OUT" "prob('$name','not-traversable')['path']")"
    assert_eq "default perms: $name problem names user $SVC" "$SVC" "$(json_eval "$CR_OUT" "prob('$name','not-traversable')['user']")"
done
assert_eq "default perms: exactly one access problem per lineage (the first blocking dir)" "not-traversable" "$(json_eval "$CR_OUT" "access_codes('$WILD')")"

# ---------------------------------------------------------------------------------------------
e2e_section "2. the classic trap: group access on live/ only (chmod -R / chgrp -R)"
chmod -R g+rX "$C/live"
chgrp -R "$SVC" "$C/live"
cr_text s2 --certbot-dir "$C" --user "$SVC"
cr_check s2 --certbot-dir "$C" --user "$SVC"
assert_eq "live/ only: exit 1" "1" "$CR_RC"
for name in "$WILD" "$PLAIN"; do
    assert_eq "live/ only: $name unusable" "false" "$(json_eval "$CR_OUT" "L('$name')['usable']")"
    assert_eq "live/ only: $name not-traversable names <config>/archive" "$C/archive" "$(json_eval "$CR_OUT" "prob('$name','not-traversable')['path']")"
done
assert_eq "live/ only: fix names archive/" "chgrp $SVC $C/archive && chmod g+rx $C/archive" "$(json_eval "$CR_OUT" "prob('$WILD','not-traversable')['fix']")"

# ---------------------------------------------------------------------------------------------
e2e_section "3. the lasting fix: group on live/, archive/, lineage dirs and the archive key"
revoke_group "$C"
grant_group "$C" "$SVC"
cr_text s3 --certbot-dir "$C" --user "$SVC"
cr_check s3 --certbot-dir "$C" --user "$SVC"
assert_eq "group fix: exit 0" "0" "$CR_RC"
assert_eq "group fix: report usable" "true" "$(json_eval "$CR_OUT" 'd["usable"]')"
for name in "$WILD" "$PLAIN"; do
    assert_eq "group fix: $name no access problems" "" "$(json_eval "$CR_OUT" "access_codes('$name')")"
done
S3_SHA=$(json_eval "$CR_OUT" "L('$WILD')['certificate']['sha256']")
S3_VERSION=$(json_eval "$CR_OUT" "L('$WILD')['version']")

# ---------------------------------------------------------------------------------------------
e2e_section "4. ACL-only access (group fix undone)"
revoke_group "$C"
grant_acl "$C" "$SVC"
getfacl -p "$(real_of "$C/live/$WILD/privkey.pem")" 2>/dev/null | sed 's/^/    acl| /'
cr_text s4 --certbot-dir "$C" --user "$SVC"
cr_check s4 --certbot-dir "$C" --user "$SVC"
assert_eq "ACL only: exit 0" "0" "$CR_RC"
for name in "$WILD" "$PLAIN"; do
    assert_eq "ACL only: $name usable" "true" "$(json_eval "$CR_OUT" "L('$name')['usable']")"
    assert_eq "ACL only: $name warns access-lost-on-renewal (and nothing else about access)" "access-lost-on-renewal" "$(json_eval "$CR_OUT" "access_codes('$name')")"
    assert_eq "ACL only: $name warning is a warning on the archive key" "warning $(real_of "$C/live/$name/privkey.pem")" "$(json_eval "$CR_OUT" "[prob('$name','access-lost-on-renewal')['severity'], prob('$name','access-lost-on-renewal')['path']]")"
done

# The forecast comes true: renew $PLAIN while access is ACL-only.
certbot_renew "$PLAIN" || e2e_die "certbot renew $PLAIN failed"
cr_check s4-renewed --certbot-dir "$C" --user "$SVC" "$PLAIN"
assert_eq "ACL only, after renewal: $PLAIN unusable (exit 1)" "1 false" "$CR_RC $(json_eval "$CR_OUT" "L('$PLAIN')['usable']")"
assert_eq "ACL only, after renewal: unreadable names the new archive key" "$(real_of "$C/live/$PLAIN/privkey.pem")" "$(json_eval "$CR_OUT" "prob('$PLAIN','unreadable')['path']")"

# ---------------------------------------------------------------------------------------------
e2e_section "5. renewal after the group fix keeps access"
revoke_acl "$C"
revoke_group "$C"
grant_group "$C" "$SVC"
cr_check s5-before --certbot-dir "$C" --user "$SVC" "$WILD"
assert_eq "before renewal: $WILD usable" "0 true" "$CR_RC $(json_eval "$CR_OUT" 'd["usable"]')"
certbot_renew "$WILD" || e2e_die "certbot renew $WILD failed"
e2e_log "new key: $(stat -c '%A %U:%G' "$(real_of "$C/live/$WILD/privkey.pem")") $(real_of "$C/live/$WILD/privkey.pem")"
cr_text s5 --certbot-dir "$C" --user "$SVC" "$WILD"
cr_check s5 --certbot-dir "$C" --user "$SVC" "$WILD"
assert_eq "after renewal: exit 0" "0" "$CR_RC"
assert_eq "after renewal: $WILD usable" "true" "$(json_eval "$CR_OUT" "L('$WILD')['usable']")"
assert_eq "after renewal: $WILD no access problems" "" "$(json_eval "$CR_OUT" "access_codes('$WILD')")"
if [[ $S3_VERSION =~ ^[0-9]+$ ]]; then next_version=$((S3_VERSION + 1)); else next_version="(version before renewal unknown: $S3_VERSION)"; fi
assert_eq "after renewal: version went up by one" "$next_version" "$(json_eval "$CR_OUT" "L('$WILD')['version']")"
assert_ne "after renewal: sha256 changed" "$S3_SHA" "$(json_eval "$CR_OUT" "L('$WILD')['certificate']['sha256']")"

# ---------------------------------------------------------------------------------------------
e2e_section "6. hostnames"
hostcheck() { # hostcheck LINEAGE HOST EXPECTED_RC COVERED(yes|no)
    local lineage=$1 host=$2 rc=$3 covered=$4
    cr_check "s6-$lineage-$host" --certbot-dir "$C" --user "$SVC" --hostname "$host" "$lineage"
    local seen
    seen=$(json_eval "$CR_OUT" "'hostname-not-covered' in codes('$lineage')")
    if [[ $covered == yes ]]; then
        assert_eq "$lineage --hostname $host: covered (exit 0, no hostname-not-covered)" "0 false" "$CR_RC $seen"
    else
        assert_eq "$lineage --hostname $host: hostname-not-covered (exit 1)" "1 true" "$CR_RC $seen"
    fi
}
hostcheck "$WILD" mail.example.test 0 yes
hostcheck "$WILD" example.test 0 yes
hostcheck "$WILD" a.b.example.test 1 no
hostcheck "$PLAIN" x.example.test 1 no
hostcheck "$PLAIN" plain.example.test 0 yes
cr_check s6-multi --certbot-dir "$C" --user "$SVC" --hostname mail.example.test --hostname a.b.example.test "$WILD"
assert_eq "$WILD two hostnames, one uncovered: the problem names it" "1 true" "$CR_RC $(json_eval "$CR_OUT" "'a.b.example.test' in prob('$WILD','hostname-not-covered')['message'] and 'mail.example.test' not in prob('$WILD','hostname-not-covered')['message']")"

# ---------------------------------------------------------------------------------------------
e2e_section "7. exit codes"
cr_check s7-ok --certbot-dir "$C" --user "$SVC"
assert_eq "exit 0 when every lineage is usable" "0" "$CR_RC"
cr_run s7-ok-text check --certbot-dir "$C" --user "$SVC"
assert_eq "exit 0 in text format too" "0" "$CR_RC"
cr_check s7-nouser --certbot-dir "$C" --user no-such-user-e2e
assert_eq "exit 2 for an unknown user" "2" "$CR_RC"
cr_check s7-nodir --certbot-dir "$E2E_TMP/does-not-exist" --user "$SVC"
assert_eq "exit 2 for a missing certbot dir" "2" "$CR_RC"
cr_check s7-nolineage --certbot-dir "$C" --user "$SVC" no-such-lineage.test
assert_eq "exit 2 for an unknown lineage name" "2" "$CR_RC"
cr_check s7-badopt --certbot-dir "$C" --no-such-option
assert_eq "exit 2 for an unknown option" "2" "$CR_RC"
assert_eq "the unknown option is named, with where the options are listed" \
    "certreload: unknown option '--no-such-option' for certreload check|  fix: certreload check --help lists its options" \
    "$(paste -sd'|' "$E2E_OUT/s7-badopt.err")"
cr_run s7-typo check --certbot-dir "$C" --warn-day 3
assert_eq "a near miss: exit 2 and the option meant" "2 yes" "$CR_RC $(grep -q 'did you mean --warn-days?' "$E2E_OUT/s7-typo.err" && echo yes)"
CERTRELOAD_CERTBOT_DIR=$C cr_check s7-env --user "$SVC"
assert_eq "CERTRELOAD_CERTBOT_DIR is honoured (exit 0, two lineages)" "0 2" "$CR_RC $(json_eval "$CR_OUT" 'len(d["lineages"])')"
cr_check s7-renewed-lineage --user "$SVC" "$C/live/$WILD"
assert_eq "a live/NAME path (RENEWED_LINEAGE) works as the argument" "0 $WILD" "$CR_RC $(json_eval "$CR_OUT" '[l["name"] for l in d["lineages"]]')"
revoke_group "$C"
cr_check s7-blocked --certbot-dir "$C" --user "$SVC"
assert_eq "exit 1 when a lineage is unusable" "1" "$CR_RC"
grant_group "$C" "$SVC"

# OpenSSL is loaded on first use (x86_64): a command that needs no certificate runs without
# libssl.so.3; one that does stops with what is missing and how to get it. The library is
# hidden by mounting /dev/null over it in a private mount namespace.
if [[ $(uname -m) == x86_64 ]] && command -v unshare >/dev/null; then
    libssl=$(ldconfig -p | awk '/libssl\.so\.3 / { print $NF; exit }')
    libssl=$(readlink -f "$libssl")
    without_ssl() { unshare -m --propagation private sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' _ "$libssl" "$@"; }
    assert_eq "without libssl: --version runs (exit 0)" "$("$CERTRELOAD" --version) 0" "$(set +e; v=$(without_ssl "$CERTRELOAD" --version 2>&1); echo "$v $?")"
    set +e
    nossl_err=$(without_ssl "$CERTRELOAD" check --certbot-dir "$C" --user "$SVC" 2>&1 >/dev/null)
    nossl_rc=$?
    set -e
    assert_eq "without libssl: check exits 1" "1" "$nossl_rc"
    e2e_log "    without libssl: $(head -c 300 <<<"$nossl_err" | tr '\n' '|')"
    assert_eq "without libssl: check names the library, and the package as the fix" "yes yes" \
        "$(grep -qF 'certreload: cannot load OpenSSL 3: libssl.so.3' <<<"$nossl_err" && echo yes) $(grep -qF 'fix: apt-get install libssl3' <<<"$nossl_err" && echo yes)"
    assert_eq "with libssl again: check exit 0" "0" "$(set +e; "$CERTRELOAD" check --certbot-dir "$C" --user "$SVC" >/dev/null 2>&1; echo $?)"
fi


# ---------------------------------------------------------------------------------------------
e2e_section "8. safety: FIFOs, link loops, huge files, secrets"
# Each case on its own copy of the (group-fixed) tree; cp -a keeps the relative links.
clone() { # clone NAME -> prints the copy's config dir
    local dir=$E2E_TMP/safety-$1
    cp -a "$C" "$dir"
    echo "$dir"
}

F=$(clone fifo)
for kind in privkey cert; do
    lineage=$WILD
    [[ $kind == cert ]] && lineage=$PLAIN
    target=$(real_of "$F/live/$lineage/$kind.pem")
    rm "$target"
    mkfifo -m 0640 "$target"
    chgrp "$SVC" "$target"
done
CR_TIMEOUT=10 cr_check s8-fifo --certbot-dir "$F" --user "$SVC"
assert_ne "FIFO: certreload returns before the 10 s timeout (rc=$CR_RC, ${CR_MS} ms)" "124" "$CR_RC"
assert_lt "FIFO: certreload returns promptly (< 3000 ms)" 3000 "$CR_MS"
assert_eq "FIFO: exit 1" "1" "$CR_RC"
assert_eq "FIFO as privkey target: not-regular-file on the FIFO" "$(real_of "$F/live/$WILD/privkey.pem")" "$(json_eval "$CR_OUT" "prob('$WILD','not-regular-file')['path']")"
assert_eq "FIFO as cert target: not-regular-file on the FIFO" "$(real_of "$F/live/$PLAIN/cert.pem")" "$(json_eval "$CR_OUT" "prob('$PLAIN','not-regular-file')['path']")"
CR_TIMEOUT=10 cr_run s8-fifo-text check --certbot-dir "$F" --user "$SVC"
assert_eq "FIFO: text run also returns promptly with exit 1" "1" "$CR_RC"
CR_TIMEOUT=10 cr_check s8-fifo-root --certbot-dir "$F"
assert_eq "FIFO: run as root (no --user) also returns with exit 1" "1" "$CR_RC"

Lp=$(clone loop)
rm "$Lp/live/$WILD/chain.pem"
ln -s chain.pem "$Lp/live/$WILD/chain.pem"                        # a link to itself
rm "$Lp/live/$PLAIN/fullchain.pem"
ln -s loop-b "$Lp/live/$PLAIN/loop-a"
ln -s loop-a "$Lp/live/$PLAIN/loop-b"
ln -s loop-a "$Lp/live/$PLAIN/fullchain.pem"                      # into a two-link loop
CR_TIMEOUT=10 cr_check s8-loop --certbot-dir "$Lp" --user "$SVC"
assert_eq "link loop: exit 1" "1" "$CR_RC"
assert_word "self link: link-loop" link-loop "$(json_eval "$CR_OUT" "codes('$WILD')")"
assert_word "two-link loop: link-loop" link-loop "$(json_eval "$CR_OUT" "codes('$PLAIN')")"

Bg=$(clone big)
big=$(real_of "$Bg/live/$WILD/fullchain.pem")
{ cat "$big"; head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'A'; } >"$big.tmp"
mv "$big.tmp" "$big"
CR_TIMEOUT=10 cr_check s8-big --certbot-dir "$Bg" --user "$SVC" "$WILD"
assert_eq "2 MiB fullchain: exit 1" "1" "$CR_RC"
assert_eq "2 MiB fullchain: too-large on that file" "$big" "$(json_eval "$CR_OUT" "prob('$WILD','too-large')['path']")"

Ks=$(clone key-as-cert)
cert_link=$Ks/live/$WILD/cert.pem
key_name=$(basename "$(real_of "$Ks/live/$WILD/privkey.pem")")
rm "$cert_link"
ln -s "../../archive/$WILD/$key_name" "$cert_link"                 # cert.pem -> the private key
cr_check s8-key-as-cert --certbot-dir "$Ks" --user "$SVC" "$WILD"
assert_eq "cert.pem pointing at the private key: unusable (exit 1)" "1" "$CR_RC"
cr_text s8-key-as-cert --certbot-dir "$Ks" --user "$SVC" "$WILD"
Kc=$(clone key-in-chain)
chain=$(real_of "$Kc/live/$PLAIN/chain.pem")
cat "$(real_of "$Kc/live/$PLAIN/privkey.pem")" >>"$chain"                 # a key pasted into the chain
cr_check s8-key-in-chain --certbot-dir "$Kc" --user "$SVC" "$PLAIN"
cr_run s8-key-in-chain-text check --certbot-dir "$Kc" --user "$SVC" "$PLAIN"
e2e_log "    (key pasted into chain.pem: exit $CR_RC, codes: $(json_eval "$E2E_OUT/s8-key-in-chain.out" "codes('$PLAIN')"))"

mapfile -t outputs < <(find "$E2E_OUT" -type f \( -name '*.out' -o -name '*.err' \))
# The PEM label may be named ("block 1 is PRIVATE KEY, not CERTIFICATE"); the key itself never.
assert_file_lacks "no output of certreload (${#outputs[@]} files, stdout and stderr) contains a PEM key header" "BEGIN PRIVATE KEY" "${outputs[@]}"
key_line=$(sed -n 2p "$(real_of "$Kc/live/$PLAIN/privkey.pem")")
assert_file_lacks "no output of certreload contains the private key's base64 text" "$key_line" "${outputs[@]}"

e2e_finish "check.sh"

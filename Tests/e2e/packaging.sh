#!/usr/bin/env bash
# End-to-end test of Packaging/: install.sh into temporary DESTDIRs (file list, modes,
# @bindir@ substitution), the generated man page and completions, `systemd-analyze verify`
# and `systemd-analyze security --offline=true` on the units as installed, the certbot deploy
# hook (sh -n, shellcheck, and a real `certbot renew` against pebble running it).
# Touches nothing outside its temp dir. Runs as root (certbot).
#
#   sudo Tests/e2e/packaging.sh          # CERTRELOAD=path/to/binary to test another build
#
# PACKAGING_MAX_EXPOSURE (default 2.4, as measured): the highest exposure score accepted for
# the services; a hardening line lost raises the score and fails the test.
set -euo pipefail
# e2e-scope: package  (tests the installed package: skipped by run-all.sh --binary-only)
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init packaging
e2e_require install sed python3 systemd-analyze sh
INSTALL=$E2E_ROOT/Packaging/install.sh
MAX_EXPOSURE=${PACKAGING_MAX_EXPOSURE:-2.4}

# file_list DIR: "path MODE" for every file and link under DIR, sorted.
file_list() { (cd "$1" && find . \( -type f -o -type l \) -printf '%P %m\n' | LC_ALL=C sort); }

# assert_has NAME NEEDLE TEXT: TEXT contains NEEDLE (a fixed string, across lines).
assert_has() {
    if grep -qF -- "$2" <<<"$3"; then e2e_pass "$1"; else e2e_fail "$1" "text containing '$2'" "$3"; fi
}

# ---------------------------------------------------------------------------------------------
e2e_section "1. install.sh into DESTDIR, default PREFIX (/usr/local), no certbot hook"
D1=$E2E_TMP/stage-local
"$INSTALL" --destdir "$D1" --binary "$CERTRELOAD" >"$E2E_OUT/install1.out" 2>"$E2E_OUT/install1.err"
assert_eq "install.sh exit 0" "0" "$?"
expected="etc/certreload/certreload.toml.example 644
usr/local/bin/certreload 755
usr/local/lib/systemd/system/certreload.service 644
usr/local/lib/systemd/system/certreload@.path 644
usr/local/lib/systemd/system/certreload@.service 644
usr/local/share/bash-completion/completions/certreload 644
usr/local/share/man/man1/certreload.1 644
usr/local/share/zsh/site-functions/_certreload 644"
assert_eq "file list and modes under DESTDIR" "$expected" "$(file_list "$D1")"
assert_eq "every directory 0755" "" "$(find "$D1" -mindepth 1 -type d ! -perm 0755 -printf '%m %P\n')"
assert_eq "install.sh prints each file it installed" "$(file_list "$D1" | sed "s|^|$D1/|; s| [0-9]*$||" | LC_ALL=C sort)" \
    "$(LC_ALL=C sort "$E2E_OUT/install1.out")"
assert_eq "no certbot hook without --with-certbot-hook" "no" "$([[ -e $D1/etc/letsencrypt ]] && echo yes || echo no)"
assert_eq "@bindir@ replaced everywhere" "" "$(grep -rl '@bindir@' "$D1" || true)"
assert_eq "ExecStart of the watch daemon" "ExecStart=/usr/local/bin/certreload watch" \
    "$(grep '^ExecStart=' "$D1/usr/local/lib/systemd/system/certreload.service")"
assert_eq "ExecStart of the path unit's oneshot" "ExecStart=/usr/local/bin/certreload deploy --lineage %i --settle 2" \
    "$(grep '^ExecStart=' "$D1/usr/local/lib/systemd/system/certreload@.service")"
assert_eq "installed binary is the one built" "$("$CERTRELOAD" --version)" "$("$D1/usr/local/bin/certreload" --version)"
assert_eq "example configuration copied verbatim" "" "$(cmp "$E2E_ROOT/Packaging/certreload.toml.example" "$D1/etc/certreload/certreload.toml.example" 2>&1)"

e2e_section "2. install.sh --with-certbot-hook, PREFIX=/usr (environment variables)"
D2=$E2E_TMP/stage-usr
DESTDIR=$D2 PREFIX=/usr CERTRELOAD_BINARY=$CERTRELOAD "$INSTALL" --with-certbot-hook >"$E2E_OUT/install2.out" 2>&1
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
UNITDIR=${UNITDIR:-/lib/systemd/system}
UNITDIR=${UNITDIR#/}
expected="etc/certreload/certreload.toml.example 644
etc/letsencrypt/renewal-hooks/deploy/certreload-deploy-hook 755
$UNITDIR/certreload.service 644
$UNITDIR/certreload@.path 644
$UNITDIR/certreload@.service 644
usr/bin/certreload 755
usr/share/bash-completion/completions/certreload 644
usr/share/man/man1/certreload.1 644
usr/share/zsh/site-functions/_certreload 644"
assert_eq "file list and modes, PREFIX=/usr with hook (units in systemd's $UNITDIR)" \
    "$(LC_ALL=C sort <<<"$expected")" "$(file_list "$D2")"
assert_eq "hook execs the installed binary" "certreload=/usr/bin/certreload" \
    "$(grep '^certreload=' "$D2/etc/letsencrypt/renewal-hooks/deploy/certreload-deploy-hook")"
assert_eq "units name the installed binary" "ExecStart=/usr/bin/certreload watch" \
    "$(grep '^ExecStart=' "$D2/$UNITDIR/certreload.service")"

set +e
"$INSTALL" --destdir "$E2E_TMP/stage-bad" --binary "$CERTRELOAD" --no-such-option >"$E2E_OUT/install3.out" 2>&1
rc=$?
set -e
assert_eq "unknown option: exit 2, nothing installed" "2 no" "$rc $([[ -e $E2E_TMP/stage-bad ]] && echo yes || echo no)"

# ---------------------------------------------------------------------------------------------
e2e_section "3. man page and completions match the binary's commands"
MAN=$D1/usr/local/share/man/man1/certreload.1
# The subcommands as `certreload --help` lists them (two-space indent under SUBCOMMANDS:).
subcommands=$("$CERTRELOAD" --help | awk '/^SUBCOMMANDS:/ {on = 1; next} on && /^  [a-z]/ {print $1}' | tr '\n' ' ')
assert_eq "certreload --help lists the nine subcommands" "9" "$(wc -w <<<"$subcommands")"
e2e_log "subcommands: $subcommands"
missing=""
for sub in $subcommands; do grep -q "^\.It Em $sub\$" "$MAN" || missing+="$sub "; done
assert_eq "man page has a section for every subcommand" "" "$missing"
assert_eq "man page header" ".Dt CERTRELOAD 1" "$(grep '^\.Dt' "$MAN")"
if command -v man >/dev/null; then
    rendered=$(MANWIDTH=100 man -l "$MAN" 2>"$E2E_OUT/man.err")
    assert_has "man renders the page" "certreload — Keep TLS servers" "$rendered"
    assert_eq "man renders without warnings" "" "$(cat "$E2E_OUT/man.err")"
else
    e2e_log "SKIP  man page rendering: no man(1) (apt-get install man-db)"
fi
BASHCOMP=$D1/usr/local/share/bash-completion/completions/certreload
assert_eq "bash completion parses (bash -n)" "" "$(bash -n "$BASHCOMP" 2>&1)"
missing=""
for sub in $subcommands; do
    got=$(bash -c 'source "$1"; COMP_WORDS=(certreload ""); COMP_CWORD=1; COMP_LINE="certreload "; COMP_POINT=${#COMP_LINE}; _certreload; printf "%s\n" "${COMPREPLY[@]}"' _ "$BASHCOMP" 2>/dev/null || true)
    grep -qx "$sub" <<<"$got" || missing+="$sub "
done
assert_eq "bash completion offers every subcommand after 'certreload '" "" "$missing"
assert_eq "zsh completion is a #compdef file" "#compdef certreload" "$(head -n 1 "$D1/usr/local/share/zsh/site-functions/_certreload")"
if command -v zsh >/dev/null; then
    assert_eq "zsh completion parses (zsh -n)" "" "$(zsh -n "$D1/usr/local/share/zsh/site-functions/_certreload" 2>&1)"
else
    e2e_log "SKIP  zsh -n: zsh is not installed"
fi

# ---------------------------------------------------------------------------------------------
e2e_section "4. systemd-analyze verify on every unit, as installed"
# systemd-analyze verify works offline (no PID 1 needed). It checks that ExecStart= names an
# executable: the installed units name /usr/local/bin/certreload, which exists only once the
# package is really installed, so the copies verified here point into DESTDIR instead; MANPATH
# makes it find the installed man page behind Documentation=man:certreload(1).
V=$E2E_TMP/verify
mkdir -p "$V"
for unit in certreload.service certreload@.service certreload@.path; do
    sed "s|/usr/local/bin/certreload|$D1/usr/local/bin/certreload|g" "$D1/usr/local/lib/systemd/system/$unit" >"$V/$unit"
done
set +e
(cd "$V" && MANPATH=$D1/usr/local/share/man systemd-analyze verify \
    certreload.service certreload@.service certreload@.path \
    certreload@example.com.service certreload@example.com-0001.path) >"$E2E_OUT/verify.out" 2>&1
rc=$?
set -e
sed 's/^/    verify| /' "$E2E_OUT/verify.out"
assert_eq "systemd-analyze verify: exit 0, no warnings (3 units + 2 instances)" "0 " "$rc $(cat "$E2E_OUT/verify.out")"

# The check is not vacuous: a broken unit is reported.
sed -e 's/^Type=notify/Type=notfy/' -e 's/^WatchdogSec=60/WatchdogSec=sixty/' "$V/certreload.service" >"$V/broken.service"
set +e
(cd "$V" && MANPATH=$D1/usr/local/share/man systemd-analyze verify broken.service) >"$E2E_OUT/verify-broken.out" 2>&1
set -e
assert_has "control: verify reports a bad Type=" "Failed to parse service type, ignoring: notfy" "$(cat "$E2E_OUT/verify-broken.out")"

# ---------------------------------------------------------------------------------------------
e2e_section "5. systemd-analyze security --offline=true"
score_of() { sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$1"; }
for unit in certreload.service certreload@example.com.service; do
    out=$E2E_OUT/security-$unit.out
    (cd "$V" && systemd-analyze security --offline=true --no-pager "$unit") >"$out" 2>&1 || true
    score=$(score_of "$out")
    grep '^✗' "$out" | sed 's/^/    exposure| /' || true
    e2e_log "exposure score $unit: ${score:-none} ($(grep '^→' "$out" | sed 's/.*: [0-9.]* //'))"
    assert_eq "$unit: exposure $score <= $MAX_EXPOSURE" "yes" \
        "$(awk -v s="${score:-99}" -v m="$MAX_EXPOSURE" 'BEGIN { print (s + 0 <= m + 0) ? "yes" : "no" }')"
done
# For the record: the same unit without its sandbox block.
sed '/^# --- sandbox/,/^# --- end of sandbox/d' "$V/certreload.service" >"$V/unsandboxed.service"
(cd "$V" && systemd-analyze security --offline=true --no-pager unsandboxed.service) >"$E2E_OUT/security-unsandboxed.out" 2>&1 || true
e2e_log "exposure score certreload.service without its sandbox block: $(score_of "$E2E_OUT/security-unsandboxed.out")"
sandbox() { sed -n '/^# --- sandbox/,/^# --- end of sandbox/p' "$1"; }
assert_ne "the watch daemon has a sandbox block" "" "$(sandbox "$E2E_ROOT/Packaging/certreload.service")"
assert_eq "sandbox identical in certreload.service and certreload@.service" \
    "$(sandbox "$E2E_ROOT/Packaging/certreload.service")" "$(sandbox "$E2E_ROOT/Packaging/certreload@.service")"

# ---------------------------------------------------------------------------------------------
e2e_section "6. certbot deploy hook: syntax, shellcheck, behaviour"
HOOK_SRC=$E2E_ROOT/Packaging/certbot/certreload-deploy-hook
HOOK=$D2/etc/letsencrypt/renewal-hooks/deploy/certreload-deploy-hook
assert_eq "hook: sh -n" "" "$(sh -n "$HOOK" 2>&1)"
assert_eq "hook: starts with #!/bin/sh" "#!/bin/sh" "$(head -n 1 "$HOOK")"
if command -v shellcheck >/dev/null; then
    assert_eq "hook: shellcheck -s sh (template and installed)" "" "$(shellcheck -s sh "$HOOK_SRC" "$HOOK" 2>&1)"
    assert_eq "install.sh and this test: shellcheck" "" "$(shellcheck -x --source-path=SCRIPTDIR "$INSTALL" "${BASH_SOURCE[0]}" 2>&1)"
else
    e2e_log "SKIP  shellcheck: not installed (scripts/install-deps --test installs it)"
fi
# The installed hook, pointed at the binary under test.
sed "s|/usr/bin/certreload|$CERTRELOAD|" "$HOOK" >"$E2E_TMP/hook"
chmod 0755 "$E2E_TMP/hook"
set +e
env -u RENEWED_LINEAGE "$E2E_TMP/hook" >"$E2E_OUT/hook-noenv.out" 2>&1
rc=$?
set -e
assert_eq "hook without RENEWED_LINEAGE: exit 2" "2" "$rc"
# Copied by hand, @bindir@ left as is: the hook runs the certreload in PATH.
set +e
PATH=$(dirname "$CERTRELOAD"):$PATH CERTRELOAD_CONFIG=$E2E_TMP/absent.toml RENEWED_LINEAGE=/nonexistent/live/x sh "$HOOK_SRC" >"$E2E_OUT/hook-raw.out" 2>&1
set -e
assert_has "hook copied by hand runs certreload from PATH" "certreload: $E2E_TMP/absent.toml" "$(cat "$E2E_OUT/hook-raw.out")"
assert_has "hook without RENEWED_LINEAGE: says so" "RENEWED_LINEAGE is not set" "$(cat "$E2E_OUT/hook-noenv.out")"

# A real certbot: the hook in <config-dir>/renewal-hooks/deploy/, a configuration with one
# target on the lineage whose reload is /bin/true (the hook's job is to get there).
e2e_require certbot pebble
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
mkdir -p "$CERTBOT_DIR/renewal-hooks/deploy"
cp "$E2E_TMP/hook" "$CERTBOT_DIR/renewal-hooks/deploy/certreload-deploy-hook"
export CERTRELOAD_CONFIG=$E2E_TMP/certreload.toml
cat >"$CERTRELOAD_CONFIG" <<EOF
certbot-dir = "$CERTBOT_DIR"
state-dir = "$E2E_TMP/state"

[target.hooktest]
lineages = ["hook.test"]
user     = "root"
reload   = { command = ["/bin/true"] }
EOF
"$CERTRELOAD" config check >"$E2E_OUT/config-check.out" 2>&1 || e2e_die "test configuration invalid: $(cat "$E2E_OUT/config-check.out")"
: >"$E2E_OUT/certbot.log"
certbot_issue hook.test -d hook.test || e2e_die "certbot could not issue hook.test"
assert_eq "first issuance: certbot 2.1 runs no directory deploy hook" "" "$(grep -F "certreload deploy: lineage" "$E2E_OUT/certbot.log" || true)"
: >"$E2E_OUT/certbot.log"
certbot_renew hook.test || e2e_die "certbot could not renew hook.test"
renew_log=$(cat "$E2E_OUT/certbot.log" "$E2E_TMP/certbot-logs/letsencrypt.log" 2>/dev/null)
assert_has "renewal: certbot ran the hook, certreload deploy got the lineage" "certreload deploy: lineage hook.test" "$renew_log"
assert_has "renewal: the target was checked and reloaded" "[hooktest] OK: deployed" "$renew_log"
assert_eq "renewal: the hook did not fail" "" "$(grep -i "hook.*\(error\|failed\)" <<<"$renew_log" || true)"

e2e_finish "packaging.sh"

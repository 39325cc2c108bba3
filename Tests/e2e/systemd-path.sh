#!/usr/bin/env bash
# certreload@NAME.path and the certbot deploy hook under real systemd as PID 1 (the booted
# Debian root of Tests/e2e/systemd/lib.sh), installed from the .deb; then the package's
# removal and purge.
#   1. the watch daemon disabled, certreload@NAME.path enabled: a real `certbot renew` inside
#      starts certreload@NAME.service, which reloads nginx.service once (over the bus) and
#      ends Result=success; nginx serves the new certificate; a second renewal triggers it
#      again (systemd issue #31941: path units can miss symlink replacements);
#   2. the path unit disabled, the package's deploy hook linked into renewal-hooks/deploy/:
#      certbot's own certbot.service, started with the lineage due, runs it, and the events
#      land in the journal under certbot.service;
#   3. apt-get remove stops the units and keeps /etc/certreload/certreload.toml; purge drops
#      it and /var/lib/certreload.
#
#   sudo Tests/e2e/systemd-path.sh     # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# e2e-scope: package  (tests the installed package: skipped by run-all.sh --binary-only)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=systemd/lib.sh
source "$here/systemd/lib.sh"

e2e_init systemd-path
e2e_require openssl python3 curl unshare nsenter dpkg-deb
NAME=example.test
HOST=www.example.test
MSG_RELOADED=5b2f1e8c3a7d4e6f9b0c1d2e3f4a5b6c

e2e_section "setup: pebble, the booted system, the package, a lineage, nginx.service"
pebble_start
sd_boot
sd_install_certreload
sd_certbot_setup
sd_issue "$NAME" -d "$NAME" -d "$HOST" || e2e_die "certbot could not issue $NAME inside"
V1=$(sd_cert_sha "$NAME")
sd_nginx "$NAME" "$HOST"
cat >"$E2E_TMP/certreload.toml" <<TOML
[target.web]
lineages = ["$NAME"]
user = "root"
hostnames = ["$HOST"]
reload = { systemd = "nginx.service", mode = "reload" }
verify = ["https://$HOST:$SD_NGINX_PORT"]
connect = "127.0.0.1"
TOML
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
nginx_reloads() { sd_journal -u nginx.service -o cat | grep -c '^Reloaded ' || true; }
SVC=certreload@$NAME.service
PATHU=certreload@$NAME.path
# Runs of the oneshot: systemd logs one "Finished" (or "Failed") line per run under the unit.
runs() { sd_journal -u "$SVC" -o cat | grep -c -E '^(Finished|Failed to start) ' || true; }
reloaded_entries() { sd_json_entries -u "$SVC" "MESSAGE_ID=$MSG_RELOADED" | grep -c . || true; }

e2e_section "1. certreload@$NAME.path, the daemon disabled"
assert_eq "certreload.service is not enabled" "disabled" "$(sd_exec systemctl is-enabled certreload.service || true)"
sd_exec systemctl enable --now "$PATHU" >/dev/null 2>&1
assert_eq "$PATHU active (waiting)" "active waiting" "$(sd_unit_prop "$PATHU" ActiveState) $(sd_unit_prop "$PATHU" SubState)"
PATHS=$(sd_exec systemctl show -p Paths --value "$PATHU")
e2e_log "Paths=$PATHS"
sd_assert_has "it watches live/$NAME (PathChanged=)" "/etc/letsencrypt/live/$NAME (PathChanged)" "$PATHS"
# For comparison (systemd issue #31941), a path unit on the link itself instead of the
# directory: systemd follows the link and watches the archive file it points to, which
# certbot never touches again; the count of its runs is printed, not asserted.
cat >"$E2E_TMP/link-watch.path" <<UNIT
[Path]
PathChanged=/etc/letsencrypt/live/$NAME/fullchain.pem
Unit=certreload-e2e-link-watch.service
UNIT
printf '[Service]\nType=oneshot\nExecStart=/bin/echo fullchain.pem changed\n' >"$E2E_TMP/link-watch.service"
sd_put "$E2E_TMP/link-watch.path" /etc/systemd/system/certreload-e2e-link-watch.path
sd_put "$E2E_TMP/link-watch.service" /etc/systemd/system/certreload-e2e-link-watch.service
sd_exec systemctl daemon-reload
sd_exec systemctl start certreload-e2e-link-watch.path
link_runs() { sd_journal -u certreload-e2e-link-watch.service -o cat | grep -c '^fullchain.pem changed' || true; }
for round in 1 2; do
    R0=$(runs)
    N0=$(nginx_reloads)
    E0=$(reloaded_entries)
    sd_renew "$NAME" || e2e_die "certbot renew failed inside (round $round)"
    V=$(sd_cert_sha "$NAME")
    ran() { (($(runs) > R0)) && [[ $(sd_unit_prop "$SVC" ActiveState) != activating ]]; }
    if e2e_wait_until 60 "$SVC to run after renewal $round" ran; then
        e2e_pass "renewal $round: the path unit started $SVC"
    else
        e2e_fail "renewal $round: the path unit started $SVC" "a run" "none (path unit: $(sd_unit_prop "$PATHU" SubState))"
    fi
    e2e_wait_until 30 "nginx to serve the certificate of renewal $round" sd_nginx_serves "$HOST" "$V" || true
    assert_eq "renewal $round: $SVC Result=success" "success" "$(sd_unit_prop "$SVC" Result)"
    assert_eq "renewal $round: nginx.service reloaded exactly once" "$((N0 + 1))" "$(nginx_reloads)"
    assert_eq "renewal $round: one 'reloaded' entry (MESSAGE_ID) from $SVC" "$((E0 + 1))" "$(reloaded_entries)"
    assert_eq "renewal $round: nginx serves the renewed certificate (s_client)" "$V" "$(served_sha256 "$SD_NGINX_PORT" "$HOST")"
    e2e_log "renewal $round: $(($(runs) - R0)) run(s) of $SVC"
done
assert_ne "certificate changed over the two renewals" "$V1" "$(sd_cert_sha "$NAME")"
e2e_log "for comparison, PathChanged= on live/$NAME/fullchain.pem itself ran $(link_runs) time(s) over the 2 renewals"
sd_exec systemctl stop certreload-e2e-link-watch.path
sd_exec systemctl disable --now "$PATHU" >/dev/null 2>&1

e2e_section "2. the package's deploy hook, run by certbot's own certbot.service"
sd_exec ln -s /usr/share/certreload/certreload-deploy-hook /etc/letsencrypt/renewal-hooks/deploy/certreload
# The lineage is due: pebble's certificates last years, so renew_before_expiry reaches back.
sd_exec sed -i '1a renew_before_expiry = 3650 days' "/etc/letsencrypt/renewal/$NAME.conf"
mkdir -p "$E2E_TMP/certbot.service.d"
printf '[Service]\nEnvironment=REQUESTS_CA_BUNDLE=%s\n' "$SD_PEBBLE_CA" >"$E2E_TMP/certbot.service.d/pebble.conf"
sd_put "$E2E_TMP/certbot.service.d/pebble.conf" /etc/systemd/system/certbot.service.d/pebble.conf
sd_exec systemctl daemon-reload
N0=$(nginx_reloads)
BEFORE=$(sd_cert_sha "$NAME")
HOOK_RC=0
sd_exec timeout 200 systemctl start certbot.service || HOOK_RC=$?
assert_eq "systemctl start certbot.service: exit 0" "0" "$HOOK_RC"
assert_eq "certbot.service Result=success" "success" "$(sd_unit_prop certbot.service Result)"
AFTER=$(sd_cert_sha "$NAME")
assert_ne "certbot.service renewed the due lineage" "$BEFORE" "$AFTER"
assert_eq "the hook reloaded nginx.service once" "$((N0 + 1))" "$(nginx_reloads)"
assert_eq "nginx serves what certbot.service renewed" "$AFTER" "$(served_sha256 "$SD_NGINX_PORT" "$HOST")"
HOOK_ENTRIES=$(sd_json_entries _SYSTEMD_UNIT=certbot.service "MESSAGE_ID=$MSG_RELOADED")
assert_eq "journalctl _SYSTEMD_UNIT=certbot.service MESSAGE_ID=reloaded: the hook's event" "ok" \
    "$(sd_field_check "$HOOK_ENTRIES" CERTRELOAD_TARGET=web CERTRELOAD_CODE=reloaded SYSLOG_IDENTIFIER=certreload)"

e2e_section "3. apt-get remove, then purge"
sd_exec systemctl enable --now "$PATHU" >/dev/null 2>&1
sd_exec apt-get remove -y -o Dpkg::Use-Pty=0 certreload >"$E2E_OUT/apt-remove.log" 2>&1 || e2e_fail "apt-get remove" "exit 0" "$(tail -n 3 "$E2E_OUT/apt-remove.log")"
assert_eq "removal stopped $PATHU" "inactive" "$(sd_exec systemctl is-active "$PATHU" || true)"
assert_eq "the binary is gone" "no" "$([[ -e $SD_ROOT/usr/bin/certreload ]] && echo yes || echo no)"
assert_eq "the configuration is kept on remove" "yes" "$([[ -f $SD_ROOT/etc/certreload/certreload.toml ]] && echo yes || echo no)"
sd_exec apt-get purge -y -o Dpkg::Use-Pty=0 certreload >"$E2E_OUT/apt-purge.log" 2>&1 || e2e_fail "apt-get purge" "exit 0" "$(tail -n 3 "$E2E_OUT/apt-purge.log")"
assert_eq "purge drops /etc/certreload" "no" "$([[ -e $SD_ROOT/etc/certreload ]] && echo yes || echo no)"
assert_eq "purge drops /var/lib/certreload" "no" "$([[ -e $SD_ROOT/var/lib/certreload ]] && echo yes || echo no)"
assert_eq "purge drops the enablement link of $PATHU" "" \
    "$(find "$SD_ROOT/etc/systemd/system" -name 'certreload@*' 2>/dev/null)"
e2e_finish "systemd-path.sh"

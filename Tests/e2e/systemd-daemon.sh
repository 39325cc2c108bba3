#!/usr/bin/env bash
# certreload.service under real systemd as PID 1 (Tests/e2e/systemd/lib.sh boots a Debian
# bookworm root), installed from the .deb with `apt-get install ./certreload_*.deb`, running
# with the full shipped sandbox. certbot runs inside against pebble on the host; nginx runs
# inside as Debian's nginx.service; the Stalwart stand-in (Tests/Support/stalwart_standin.py,
# simulating 1.0) listens on the host's loopback.
#   1. the package: files, modes, nothing enabled or started;
#   2. Type=notify reaches active (running), STATUS= shown by systemctl status,
#      `systemd-analyze security` inside gives the README's score;
#   3. a real `certbot renew`: the Stalwart target (token only through LoadCredential= and
#      token-credential) and nginx.service (systemd = target, over the real bus) are each
#      reloaded once; nginx then serves the new certificate (certreload verify, s_client);
#   4. journalctl MESSAGE_ID=… finds reloaded, reload failed, expiring, became unreadable,
#      readable again, each with its CERTRELOAD_* fields; MESSAGE_ID and CODE_* once per
#      entry; no token anywhere in the journal;
#   5. systemctl reload with a broken configuration fails and the daemon keeps the old one;
#      a fixed one is taken;
#   6. the sandbox: a command target writing outside the state directory fails (EROFS) and a
#      ReadWritePaths= drop-in lifts it; no "Failed to set thread priority" in the journal;
#   7. systemd reload faults against the real manager: a reload that fails, hangs, does not
#      apply, a masked, inactive or missing unit, a caller without privilege (RELIABILITY.md).
#
#   sudo Tests/e2e/systemd-daemon.sh     # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# e2e-scope: package  (tests the installed package: skipped by run-all.sh --binary-only)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=systemd/lib.sh
source "$here/systemd/lib.sh"

e2e_init systemd-daemon
e2e_require openssl python3 curl unshare nsenter dpkg-deb
NAME=example.test
HOST=www.example.test
TOKEN=API_$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
MSG_RELOADED=5b2f1e8c3a7d4e6f9b0c1d2e3f4a5b6c
MSG_FAILED=8d4c2b1a0f9e4d3c8b7a6f5e4d3c2b1a
MSG_UNREADABLE=c3e1a9f75b2d4c68a0e4f1b3d5c7e9a2
MSG_EXPIRING=e7a5c3b1d9f24e6a8c0b2d4f6a8c0e1b
MSG_READABLE=a4d6f8b0c2e44a6c8e0f2b4d6f8a0c2e
# The README's Sandbox section: "... scores them **2.2 (OK)**".
README_SCORE=$(sed -n 's/.*scores them \*\*\([0-9.]*\) (OK)\*\*.*/\1/p' "$E2E_ROOT/README.md" | head -n1)

e2e_section "setup: pebble on the host, the booted system, the package"
pebble_start
sd_boot
sd_install_certreload
e2e_log "installed ${SD_DEB##*/}"

e2e_section "1. the package as installed"
assert_eq "binary /usr/bin/certreload runs" "$("$CERTRELOAD" --version)" "$(sd_exec certreload --version)"
for file in /lib/systemd/system/certreload.service /lib/systemd/system/certreload@.service \
    /lib/systemd/system/certreload@.path /etc/certreload/certreload.toml.example \
    /usr/share/man/man1/certreload.1.gz /usr/share/bash-completion/completions/certreload \
    /usr/share/zsh/site-functions/_certreload /usr/share/certreload/certreload-deploy-hook; do
    assert_eq "installed: $file" "yes" "$([[ -f $SD_ROOT$file ]] && echo yes || echo no)"
done
assert_eq "/var/lib/certreload is 0700 root" "700 root" "$(stat -c '%a %U' "$SD_ROOT/var/lib/certreload")"
assert_eq "the deploy hook is not active (nothing in renewal-hooks/deploy/)" "" \
    "$(ls -A "$SD_ROOT/etc/letsencrypt/renewal-hooks/deploy" 2>/dev/null || true)"
assert_eq "certreload.service not enabled" "disabled" "$(sd_exec systemctl is-enabled certreload.service || true)"
assert_eq "certreload.service not started" "inactive" "$(sd_exec systemctl is-active certreload.service || true)"
assert_eq "no certreload unit loaded but the templates" "" \
    "$(sd_exec systemctl list-units --all --no-legend --plain 'certreload*' | awk '{print $1}')"

e2e_section "setup: a lineage issued inside, nginx.service, the Stalwart stand-in, the configuration"
sd_certbot_setup
sd_issue "$NAME" -d "$NAME" -d "$HOST" || e2e_die "certbot could not issue $NAME inside"
sd_exec useradd --system --no-create-home --shell /usr/sbin/nologin --user-group stalwart
sd_grant_group stalwart
V1=$(sd_cert_sha "$NAME")
sd_nginx "$NAME" "$HOST"
assert_eq "before renewal: nginx.service serves version 1" "$V1" "$(served_sha256 "$SD_NGINX_PORT" "$HOST")"
sd_stalwart "$TOKEN"
TOKEN=$SD_STALWART_TOKEN  # the API key the stand-in made from that secret
e2e_secret "$TOKEN"
printf '%s' "$TOKEN" >"$E2E_TMP/stalwart.token"
sd_put "$E2E_TMP/stalwart.token" /etc/certreload/stalwart.token 0600
mkdir -p "$E2E_TMP/dropin"
printf '[Service]\nLoadCredential=stalwart.token:/etc/certreload/stalwart.token\n' >"$E2E_TMP/dropin/credential.conf"
sd_put "$E2E_TMP/dropin/credential.conf" /etc/systemd/system/certreload.service.d/credential.conf
# reload failed and expiring come from the `aging` target: its command fails, and every
# certificate pebble issues expires within warn-days = 3650.
write_config() { # write_config [EXTRA TOML]
    cat >"$E2E_TMP/certreload.toml" <<TOML
settle = 1
settle-max = 30

[target.mail]
lineages = ["$NAME"]
user = "stalwart"
hostnames = ["$NAME"]
reload = { stalwart = "$SD_STALWART_URL", api = "jmap", token-credential = "stalwart.token" }

[target.web]
lineages = ["$NAME"]
user = "root"
hostnames = ["$HOST"]
reload = { systemd = "nginx.service", mode = "reload" }
verify = ["https://$HOST:$SD_NGINX_PORT"]
connect = "127.0.0.1"

[target.aging]
lineages = ["$NAME"]
user = "root"
warn-days = 3650
reload = { command = ["/bin/false"] }
${1:-}
TOML
    sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
}
write_config
assert_eq "certreload config check accepts it (inside)" "0" "$(sd_exec certreload config check >"$E2E_OUT/config-check.out" 2>&1; echo $?)"
assert_file_lacks "the token is not in the configuration" "$TOKEN" "$SD_ROOT/etc/certreload/certreload.toml"

e2e_section "2. certreload.service: Type=notify, STATUS=, the sandbox score"
sd_exec systemctl daemon-reload
START_MS=$(e2e_now_ms)
sd_exec systemctl start certreload.service || { sd_journal -u certreload.service | tail -n 30; e2e_die "certreload.service did not start"; }
e2e_log "systemctl start returned after $(($(e2e_now_ms) - START_MS)) ms (it waits for READY=1)"
assert_eq "active (running)" "active running" "$(sd_unit_prop certreload.service ActiveState) $(sd_unit_prop certreload.service SubState)"
assert_eq "Type=notify" "notify" "$(sd_unit_prop certreload.service Type)"
assert_eq "WatchdogSec as shipped (60 s)" "1min" "$(sd_unit_prop certreload.service WatchdogUSec)"
STATUS=$(sd_unit_prop certreload.service StatusText)
assert_ne "STATUS= is set" "" "$STATUS"
e2e_log "STATUS=$STATUS"
sd_assert_has "systemctl status shows the Status: line" "Status: \"$STATUS\"" \
    "$(sd_exec systemctl status --no-pager certreload.service 2>&1 || true)"
MAINPID=$(sd_unit_prop certreload.service MainPID)
assert_eq "ProtectSystem=strict took effect: / is read-only for the daemon" "ro" \
    "$(sd_exec awk '$5 == "/" { split($6, o, ","); print o[1] }' "/proc/$MAINPID/mountinfo" | tail -n1)"
assert_eq "the daemon runs with seccomp filters" "2" \
    "$(sd_exec awk '/^Seccomp:/ { print $2 }' "/proc/$MAINPID/status")"
sd_exec systemd-analyze security --no-pager certreload.service >"$E2E_OUT/security.txt" 2>&1 || true
SCORE=$(sed -n 's/.*Overall exposure level for certreload.service: \([0-9.]*\).*/\1/p' "$E2E_OUT/security.txt")
e2e_log "systemd-analyze security inside the booted system: $SCORE (README: $README_SCORE)"
assert_eq "exposure score inside the booted system is the README's" "$README_SCORE" "$SCORE"

e2e_section "3. a real certbot renew: Stalwart (LoadCredential=) and nginx.service (systemd bus), once each"
# Settled before the renewal: the start pass is done (READY=1 came before `systemctl start`
# returned) and the `aging` target's failing reload is retrying on its own.
nginx_reloads() { sd_journal -u nginx.service -o cat | grep -c '^Reloaded ' || true; }
S0=$(sd_stalwart_reloads)
N0=$(nginx_reloads)
e2e_log "before renewal: $S0 Stalwart reload(s), $N0 nginx reload(s) (the start pass may deploy once)"
sd_renew "$NAME" || e2e_die "certbot renew failed inside"
V2=$(sd_cert_sha "$NAME")
assert_ne "certbot renewed: cert.pem changed" "$V1" "$V2"
stalwart_reloaded() { (($(sd_stalwart_reloads) > S0)); }
nginx_reloaded() { (($(nginx_reloads) > N0)); }
e2e_wait_until 60 "the Stalwart stand-in to be asked to reload" stalwart_reloaded || true
e2e_wait_until 60 "nginx.service to be reloaded" nginx_reloaded || true
e2e_wait_until 30 "nginx.service to serve the renewed certificate" sd_nginx_serves "$HOST" "$V2" || true
# A second settle window with nothing new: the counts must stay where they are.
settled_ms=$(($(e2e_now_ms) + 3000))
e2e_wait_until 10 "a further settle window" bash -c "(( \$(date +%s%3N) >= $settled_ms ))"
assert_eq "Stalwart target reloaded exactly once" "$((S0 + 1))" "$(sd_stalwart_reloads)"
assert_eq "nginx.service reloaded exactly once (over the bus: systemd logged it)" "$((N0 + 1))" "$(nginx_reloads)"
LAST=$(grep ReloadTlsCertificates "$SD_STALWART_RECORD" | tail -n 1)  # registry reads may follow the reload
sd_assert_has "the Stalwart reload carried the token from LoadCredential=" "\"Bearer $TOKEN\"" "$LAST"
sd_assert_has "the Stalwart reload is JMAP x:Action/set" 'x:Action/set' "$LAST"
assert_eq "nginx serves the renewed certificate (openssl s_client)" "$V2" "$(served_sha256 "$SD_NGINX_PORT" "$HOST")"
VERIFY_RC=0
sd_exec certreload verify web >"$E2E_OUT/verify.out" 2>&1 || VERIFY_RC=$?
assert_eq "certreload verify web: exit 0 (serving what is on disk)" "0" "$VERIFY_RC"
assert_eq "certreload.service still running, not restarted" "$MAINPID active" \
    "$(sd_unit_prop certreload.service MainPID) $(sd_unit_prop certreload.service ActiveState)"

e2e_section "4. the journal, field by field"
check_event() { # check_event WHAT MESSAGE_ID FIELD=VALUE...
    local what=$1 id=$2
    shift 2
    local entries
    entries=$(sd_json_entries -u certreload.service "MESSAGE_ID=$id")
    assert_eq "journalctl MESSAGE_ID=$id: $what" "ok" "$(sd_field_check "$entries" "$@")"
}
check_event "reloaded (mail)" "$MSG_RELOADED" CERTRELOAD_TARGET=mail CERTRELOAD_CODE=reloaded SYSLOG_IDENTIFIER=certreload
check_event "reloaded (web)" "$MSG_RELOADED" CERTRELOAD_TARGET=web CERTRELOAD_CODE=reloaded PRIORITY=*
check_event "reload failed (aging)" "$MSG_FAILED" CERTRELOAD_TARGET=aging 'CERTRELOAD_CODE=*'
check_event "expiring (aging, warn-days 3650)" "$MSG_EXPIRING" CERTRELOAD_LINEAGE="$NAME" CERTRELOAD_CODE=expiring-soon
# Access: archive/NAME closed to stalwart (IN_ATTRIB on a watched directory), then opened again.
sd_exec chmod 0700 "/etc/letsencrypt/archive/$NAME"
unreadable_logged() { [[ $(sd_field_check "$(sd_json_entries -u certreload.service "MESSAGE_ID=$MSG_UNREADABLE")" CERTRELOAD_USER=stalwart) == ok ]]; }
e2e_wait_until 30 "the daemon to report archive/ unreadable to stalwart" unreadable_logged || true
check_event "became unreadable (archive/NAME 0700)" "$MSG_UNREADABLE" CERTRELOAD_USER=stalwart CERTRELOAD_CODE=not-traversable \
    CERTRELOAD_PATH="/etc/letsencrypt/archive/$NAME"
sd_exec chmod 0755 "/etc/letsencrypt/archive/$NAME"
readable_logged() { [[ $(sd_field_check "$(sd_json_entries -u certreload.service "MESSAGE_ID=$MSG_READABLE")" CERTRELOAD_USER=stalwart) == ok ]]; }
e2e_wait_until 30 "the daemon to report it readable again" readable_logged || true
check_event "readable again (archive/NAME 0755)" "$MSG_READABLE" CERTRELOAD_USER=stalwart CERTRELOAD_CODE=readable-again
sd_journal -o export >"$E2E_OUT/journal.export"
assert_file_lacks "the token appears nowhere in the journal" "$TOKEN" "$E2E_OUT/journal.export"
assert_file_lacks "nor in the unit's environment" "$TOKEN" <(sd_exec systemctl show certreload.service)

e2e_section "5. systemctl reload: a broken configuration refused, a fixed one taken"
cp "$E2E_TMP/certreload.toml" "$E2E_TMP/certreload.toml.good"
printf '[target.oops]\nlineages = "not a list"\n' >>"$E2E_TMP/certreload.toml"
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
RELOAD_RC=0
sd_exec systemctl reload certreload.service >"$E2E_OUT/reload-broken.out" 2>&1 || RELOAD_RC=$?
assert_ne "systemctl reload with a broken configuration fails" "0" "$RELOAD_RC"
assert_eq "the daemon keeps running, same pid" "$MAINPID active running" \
    "$(sd_unit_prop certreload.service MainPID) $(sd_unit_prop certreload.service ActiveState) $(sd_unit_prop certreload.service SubState)"
sd_assert_has "the refusal names the key, in the reload's journal" "lineages" \
    "$(sd_journal -u certreload.service --since "-60s" -o cat)"
# Fixed: the `aging` target dropped; the daemon takes it (STATUS= counts one target fewer).
write_config
sed -i '/^\[target.aging\]/,$d' "$E2E_TMP/certreload.toml"
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
RELOAD_RC=0
sd_exec systemctl reload certreload.service >"$E2E_OUT/reload-fixed.out" 2>&1 || RELOAD_RC=$?
assert_eq "systemctl reload with the fixed configuration succeeds" "0" "$RELOAD_RC"
sd_assert_has "before: STATUS= counts three targets" "for 3 targets" "$STATUS"
status_two_targets() { [[ $(sd_unit_prop certreload.service StatusText) == *"for 2 targets"* ]]; }
e2e_wait_until 20 "STATUS= to count two targets" status_two_targets || true
sd_assert_has "after: the fixed configuration is in use (two targets)" "for 2 targets" "$(sd_unit_prop certreload.service StatusText)"
e2e_log "STATUS=$(sd_unit_prop certreload.service StatusText)"
assert_eq "still the same process" "$MAINPID" "$(sd_unit_prop certreload.service MainPID)"

e2e_section "6. the sandbox: a command target writing outside the state directory, thread priorities"
# A reload command that writes a file under /var/log (as `postfix reload` writes under
# /var/spool/postfix): ProtectSystem=strict makes it fail; the README's drop-in lifts it.
cat >"$E2E_TMP/writer" <<'SH'
#!/bin/sh
date >>/var/log/certreload-e2e-writer.log
SH
sd_put "$E2E_TMP/writer" /usr/local/bin/certreload-e2e-writer 0755
write_config '[target.writer]
lineages = ["'"$NAME"'"]
user = "root"
reload = { command = ["/usr/local/bin/certreload-e2e-writer"] }'
sed -i '/^\[target.aging\]/,/^reload = { command = \["\/bin\/false"\] }/d' "$E2E_TMP/certreload.toml"
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
sd_exec systemctl reload certreload.service || true
writer_failed() { [[ $(sd_field_check "$(sd_json_entries -u certreload.service "MESSAGE_ID=$MSG_FAILED" CERTRELOAD_TARGET=writer)" CERTRELOAD_TARGET=writer) == ok ]]; }
e2e_wait_until 30 "the writer target's reload to fail under ProtectSystem=strict" writer_failed || true
assert_eq "command writing to /var/log fails inside the sandbox" "ok" \
    "$(sd_field_check "$(sd_json_entries -u certreload.service "MESSAGE_ID=$MSG_FAILED" CERTRELOAD_TARGET=writer)" CERTRELOAD_TARGET=writer)"
sd_assert_has "and says why (read-only file system)" "Read-only file system" \
    "$(sd_journal -u certreload.service -o cat | grep -i 'writer' || true)"
printf '[Service]\nReadWritePaths=/var/log\n' >"$E2E_TMP/dropin/writable.conf"
sd_put "$E2E_TMP/dropin/writable.conf" /etc/systemd/system/certreload.service.d/writable.conf
sd_exec systemctl daemon-reload
sd_exec systemctl restart certreload.service
writer_wrote() { [[ -s $SD_ROOT/var/log/certreload-e2e-writer.log ]]; }
e2e_wait_until 30 "the writer target to reload with ReadWritePaths=/var/log" writer_wrote || true
assert_eq "with the ReadWritePaths= drop-in the command's write succeeds" "yes" "$(writer_wrote && echo yes || echo no)"

# A signal target whose process runs as another user (nobody), found through its unit's
# MainPID: ProtectProc=invisible hides that process in the daemon's /proc, but the signal
# needs only kill(2) and CAP_KILL, so it arrives.
cat >"$E2E_TMP/hup-logger" <<'SH'
#!/bin/sh
trap 'echo "got SIGHUP"' HUP
echo "waiting as $(id -un)"
while :; do sleep 1 & wait $!; done
SH
sd_put "$E2E_TMP/hup-logger" /usr/local/bin/certreload-e2e-hup-logger 0755
sd_exec systemd-run --quiet --unit=certreload-e2e-nobody.service -p User=nobody /usr/local/bin/certreload-e2e-hup-logger
write_config '[target.signalled]
lineages = ["'"$NAME"'"]
user = "root"
reload = { signal = "HUP", unit = "certreload-e2e-nobody.service" }'
sed -i '/^\[target.aging\]/,/^reload = { command = \["\/bin\/false"\] }/d' "$E2E_TMP/certreload.toml"
sd_put "$E2E_TMP/certreload.toml" /etc/certreload/certreload.toml 0600
sd_exec systemctl reload certreload.service || true
got_hup() { sd_journal -u certreload-e2e-nobody.service -o cat | grep -q 'got SIGHUP'; }
e2e_wait_until 30 "the process running as nobody to get SIGHUP" got_hup || true
assert_eq "signal target under ProtectProc=invisible reaches a process of another user" "yes" "$(got_hup && echo yes || echo no)"

# Dispatch's worker threads set their nice value; the units allow setpriority back
# (SystemCallFilter=setpriority), so the EPERM refusals (errno=1, one per new worker thread)
# are gone. The one nice -4 request per start still fails without CAP_SYS_NICE (errno=13).
JOURNAL_TEXT=$(sd_journal -u certreload.service -o cat)
EPERM_LINES=$(grep -c 'Failed to set thread priority.*errno=1$' <<<"$JOURNAL_TEXT" || true)
EACCES_LINES=$(grep -c 'Failed to set thread priority.*errno=13$' <<<"$JOURNAL_TEXT" || true)
STARTS=$(grep -c '^Started certreload.service' <<<"$JOURNAL_TEXT" || true)
e2e_log "'Failed to set thread priority' lines: errno=1 $EPERM_LINES, errno=13 $EACCES_LINES, over $STARTS start(s)"
assert_eq "no 'Failed to set thread priority … errno=1' (setpriority refused by seccomp)" "0" "$EPERM_LINES"
assert_lt "errno=13 (nice -4 without CAP_SYS_NICE) at most once per start" "$((STARTS + 1))" "$EACCES_LINES"

e2e_section "7. systemd reload faults, against the real manager (issue 11)"
# Units whose reload fails, hangs, does not exist, is masked or inactive; and a caller without
# privilege. Each `certreload reload` must end within its bound (30 s for a systemd target)
# with its stable code, and the message must name the unit.
fault_unit() { # fault_unit NAME SERVICE-LINES
    printf '[Unit]\nDescription=certreload e2e fault: %s\n[Service]\n%b\n' "$1" "$2" >"$E2E_TMP/fault-$1.service"
    sd_put "$E2E_TMP/fault-$1.service" "/lib/systemd/system/certreload-fault-$1.service"
}
fault_unit fails 'ExecStart=/bin/sleep infinity\nExecReload=/bin/false'
fault_unit hangs 'ExecStart=/bin/sleep infinity\nExecReload=/bin/sleep infinity\nTimeoutStartSec=infinity'
fault_unit noreload 'ExecStart=/bin/sleep infinity'
fault_unit inactive 'ExecStart=/bin/sleep infinity\nExecReload=/bin/true'
fault_unit masked 'ExecStart=/bin/sleep infinity\nExecReload=/bin/true'
fault_unit works 'ExecStart=/bin/sleep infinity\nExecReload=/bin/true'
sd_exec systemctl daemon-reload
sd_exec systemctl start certreload-fault-fails.service certreload-fault-hangs.service \
    certreload-fault-noreload.service certreload-fault-works.service
sd_exec systemctl mask --quiet certreload-fault-masked.service
# Files outside certbot, owned by nobody, so the unprivileged run passes its check.
sd_exec install -d -m 0755 /etc/certreload-e2e
sd_exec install -o nobody -m 0600 "/etc/letsencrypt/live/$NAME/fullchain.pem" /etc/certreload-e2e/fullchain.pem
sd_exec install -o nobody -m 0600 "/etc/letsencrypt/live/$NAME/privkey.pem" /etc/certreload-e2e/privkey.pem
{
    printf 'state-dir = "/tmp/certreload-faults-state"\n'
    for fault in fails hangs noreload inactive masked missing works; do
        printf '[target.%s]\ncert = "/etc/certreload-e2e/fullchain.pem"\nkey = "/etc/certreload-e2e/privkey.pem"\nuser = "nobody"\n' "$fault"
        printf 'reload = { systemd = "certreload-fault-%s.service" }\n' "$fault"
    done
} >"$E2E_TMP/faults.toml"
sd_put "$E2E_TMP/faults.toml" /etc/certreload-e2e/faults.toml 0644
systemd_fault() { # systemd_fault FAULT EXPECTED-CODE [RUNNER...]: one reload, its code, time and unit named
    local fault=$1 want=$2 out=$E2E_OUT/systemd-fault-$1.out start elapsed code
    shift 2
    start=$(e2e_now_ms)
    sd_exec "$@" certreload reload --config /etc/certreload-e2e/faults.toml --force "${fault%-as-nobody}" >"$out" 2>&1 || true
    elapsed=$(($(e2e_now_ms) - start))
    code=$(grep -o '\[reload-[a-z-]*\]' "$out" | head -n1 | tr -d '[]' || true)
    [[ -n $code ]] || { grep -q 'systemd ReloadUnit .*: done' "$out" && code=ok; }
    assert_eq "systemd fault $fault: $want" "$want" "${code:-none}"
    assert_lt "systemd fault $fault ends within its bound (30 s + start-up)" 35000 "$elapsed"
    [[ $want == ok ]] || assert_contains "systemd fault $fault: the message names the unit" "certreload-fault-${fault%-as-nobody}.service" "$out"
    printf 'reload systemd\t%s\t%s\t%s\n' "$fault (real systemd)" "${code:-none}" "$(awk -v ms="$elapsed" 'BEGIN { printf "%.1f", ms / 1000 }')" \
        >>"${CERTRELOAD_FAULT_LEDGER:-/dev/null}"
    e2e_log "$fault: $(grep -m1 'error \[' "$out" || head -n1 "$out") (${elapsed} ms)"
}
systemd_fault works ok
systemd_fault fails reload-failed
systemd_fault noreload reload-failed
systemd_fault inactive reload-failed
systemd_fault masked reload-failed
systemd_fault missing reload-failed
systemd_fault works-as-nobody reload-unauthorized setpriv --reuid=nobody --regid=nogroup --clear-groups
systemd_fault hangs reload-timeout
sd_exec systemctl stop certreload-fault-hangs.service certreload-fault-fails.service \
    certreload-fault-noreload.service certreload-fault-works.service || true

e2e_section "stop"
STOP_MS=$(e2e_now_ms)
sd_exec systemctl stop certreload.service
e2e_log "systemctl stop took $(($(e2e_now_ms) - STOP_MS)) ms"
assert_eq "stopped cleanly (Result=success)" "inactive success" \
    "$(sd_unit_prop certreload.service ActiveState) $(sd_unit_prop certreload.service Result)"
sd_journal -u certreload.service >"$E2E_OUT/certreload.journal" || true
e2e_finish "systemd-daemon.sh"

#!/usr/bin/env bash
# End-to-end test of `certreload deploy` and `verify` with real mail servers on loopback:
# Postfix (its own config directory, smtpd with STARTTLS on a high port, reloaded by the
# command `postfix -c DIR reload`) and Dovecot (its own config file, IMAP with STARTTLS and
# IMAPS on high ports, reloaded by SIGHUP to its master's pid file), both serving a lineage
# issued by real certbot from a real pebble. A forced `certbot renew` with the deploy hook
# `certreload deploy` must leave both serving the new certificate (smtp, imap, imaps); then,
# with TLS switched off on the SMTP listener, `certreload verify` must say
# starttls-not-offered and exit 1.
#
#   sudo Tests/e2e/reload-mail.sh         # CERTRELOAD=path/to/binary to test another build
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_init reload-mail
e2e_require openssl python3 curl timeout
NAME=example.test
HOST=mail.example.test

mail_skip_reasons
if [[ -n $SKIP_POSTFIX && -n $SKIP_DOVECOT ]]; then
    e2e_skip "every mail test" "$SKIP_POSTFIX; $SKIP_DOVECOT"
    e2e_finish "reload-mail.sh"
    exit
fi

e2e_section "setup: pebble, lineage $NAME"
pebble_start
CERTBOT_DIR=$E2E_TMP/letsencrypt
C=$CERTBOT_DIR
certbot_issue "$NAME" -d example.test -d '*.example.test' || e2e_die "certbot could not issue $NAME"
LIVE=$C/live/$NAME
V1=$(cert_sha256 "$LIVE/cert.pem")
e2e_log "issued $NAME: cert sha256 $V1"

# --- Postfix ----------------------------------------------------------------------------------
if [[ -z $SKIP_POSTFIX ]]; then
    e2e_section "setup: Postfix (its own config dir, STARTTLS on a loopback port)"
    postfix_start "$LIVE" "$HOST"
    SMTP=$POSTFIX_PORT
    PCONF=$POSTFIX_CONF
    assert_eq "before renewal: Postfix serves cert version 1 over STARTTLS (openssl s_client)" "$V1" "$(served_sha256 "$SMTP" "$HOST" smtp)"
else
    e2e_skip "Postfix (smtp://, starttls-not-offered)" "$SKIP_POSTFIX"
fi

# --- Dovecot ----------------------------------------------------------------------------------
if [[ -z $SKIP_DOVECOT ]]; then
    e2e_section "setup: Dovecot (its own config file, IMAP STARTTLS and IMAPS on loopback ports)"
    dovecot_start "$LIVE"
    IMAP=$DOVECOT_IMAP_PORT
    IMAPS=$DOVECOT_IMAPS_PORT
    DPID=$DOVECOT_PIDFILE
    e2e_wait_until 15 "Dovecot to serve version 1 over IMAPS" serves "$IMAPS" "$HOST" "$V1" || true
    assert_eq "before renewal: Dovecot serves cert version 1 over IMAP STARTTLS (openssl s_client)" "$V1" "$(served_sha256 "$IMAP" "$HOST" imap)"
    assert_eq "before renewal: Dovecot serves cert version 1 over IMAPS (openssl s_client)" "$V1" "$(served_sha256 "$IMAPS" "$HOST")"
else
    e2e_skip "Dovecot (imap://, imaps://)" "$SKIP_DOVECOT"
fi

# --- certreload's configuration ---------------------------------------------------------------
CONF=$E2E_TMP/certreload.toml
{
    printf 'certbot-dir = "%s"\nstate-dir = "%s"\n' "$C" "$E2E_TMP/state"
    if [[ -z $SKIP_POSTFIX ]]; then
        cat <<EOF

[target.smtp]
lineages = ["$NAME"]
user = "root"
hostnames = ["$HOST"]
reload = { command = ["/usr/sbin/postfix", "-c", "$PCONF", "reload"], timeout = 30 }
verify = ["smtp://$HOST:$SMTP"]
connect = "127.0.0.1"
verify-timeout = 20
EOF
    fi
    if [[ -z $SKIP_DOVECOT ]]; then
        cat <<EOF

[target.imap]
lineages = ["$NAME"]
user = "root"
hostnames = ["$HOST"]
reload = { signal = "HUP", pidfile = "$DPID" }
verify = ["imap://$HOST:$IMAP", "imaps://$HOST:$IMAPS"]
connect = "127.0.0.1"
verify-timeout = 20
EOF
    fi
} >"$CONF"
cr_show config-check config check --config "$CONF"
assert_eq "config check accepts the configuration (exit 0)" "0" "$CR_RC"
cr_show verify-v1 verify --config "$CONF"
assert_eq "certreload verify before renewal: exit 0" "0" "$CR_RC"

# ---------------------------------------------------------------------------------------------
e2e_section "1. certbot renew --deploy-hook 'certreload deploy': both servers reloaded and verified"
HOOK=$(deploy_hook_script "$CONF")
certbot_renew_with_hook "$NAME" "$HOOK" || e2e_fail "certbot renew with the deploy hook succeeds" "exit 0" "certbot failed (see above)"
V2=$(cert_sha256 "$LIVE/cert.pem")
assert_ne "renewal wrote a new certificate" "$V1" "$V2"
sed 's/^/    hook| /' "$E2E_OUT/hook.out" 2>/dev/null || true
assert_eq "the deploy hook exited 0" "0" "$(cat "$E2E_OUT/hook.rc" 2>/dev/null || echo 'no hook.rc: hook did not run')"
if [[ -z $SKIP_POSTFIX ]]; then
    assert_contains "hook output: postfix reload ran" "[smtp] reloaded command /usr/sbin/postfix -c $PCONF reload: ran" "$E2E_OUT/hook.out"
    assert_contains "hook output: [smtp] verified smtp://" "[smtp] verified smtp://$HOST:$SMTP" "$E2E_OUT/hook.out"
    assert_contains "hook output: [smtp] OK: deployed" "[smtp] OK: deployed" "$E2E_OUT/hook.out"
    assert_contains "certbot's log records [smtp] OK: deployed" "[smtp] OK: deployed" "$(certbot_log)"
    assert_eq "after deploy: Postfix serves the renewed cert over STARTTLS (openssl s_client)" "$V2" "$(served_sha256 "$SMTP" "$HOST" smtp)"
fi
if [[ -z $SKIP_DOVECOT ]]; then
    assert_contains "hook output: SIGHUP sent to Dovecot's master" "[imap] reloaded SIGHUP to the process in $DPID" "$E2E_OUT/hook.out"
    assert_contains "hook output: [imap] verified imap://" "[imap] verified imap://$HOST:$IMAP" "$E2E_OUT/hook.out"
    assert_contains "hook output: [imap] verified imaps://" "[imap] verified imaps://$HOST:$IMAPS" "$E2E_OUT/hook.out"
    assert_contains "hook output: [imap] OK: deployed" "[imap] OK: deployed" "$E2E_OUT/hook.out"
    assert_contains "certbot's log records [imap] OK: deployed" "[imap] OK: deployed" "$(certbot_log)"
    assert_eq "after deploy: Dovecot serves the renewed cert over IMAP STARTTLS (openssl s_client)" "$V2" "$(served_sha256 "$IMAP" "$HOST" imap)"
    assert_eq "after deploy: Dovecot serves the renewed cert over IMAPS (openssl s_client)" "$V2" "$(served_sha256 "$IMAPS" "$HOST")"
fi
cr_show verify-v2 verify --config "$CONF"
assert_eq "certreload verify after deploy (smtp, imap, imaps): exit 0" "0" "$CR_RC"
assert_eq "certreload verify after deploy: every target OK: verified" "$(grep -c '^\[target\.' "$CONF")" "$(grep -c '\] OK: verified$' "$CR_OUT" || true)"

# ---------------------------------------------------------------------------------------------
if [[ -z $SKIP_POSTFIX ]]; then
    e2e_section "2. TLS switched off on the SMTP listener: verify says starttls-not-offered"
    postconf -c "$PCONF" -e 'smtpd_tls_security_level = none' 'smtpd_tls_chain_files ='
    postfix_reload || e2e_fail "postfix reload (TLS off)" "exit 0" "$(cat "$E2E_OUT/postfix-reload.out")"
    e2e_wait_until 30 "Postfix to stop offering STARTTLS" smtp_offers "$SMTP" no || true
    assert_eq "Postfix's EHLO no longer offers STARTTLS (python smtplib)" "no" "$(smtp_starttls "$SMTP")"
    sed 's/^verify-timeout = 20/verify-timeout = 3/' "$CONF" >"$CONF.quick"
    cr_show verify-notls verify --config "$CONF.quick" smtp
    assert_eq "certreload verify smtp without TLS: exit 1" "1" "$CR_RC"
    assert_contains "certreload verify smtp without TLS: starttls-not-offered" "[starttls-not-offered]" "$CR_OUT"
    assert_contains "certreload verify smtp without TLS: FAILED: failed" "[smtp] FAILED: failed" "$CR_OUT"
    if [[ -z $SKIP_DOVECOT ]]; then
        cr_show verify-notls-all verify --config "$CONF.quick"
        assert_eq "certreload verify (all targets, one broken): exit 1, imap still OK: verified" "1 yes" \
            "$CR_RC $(grep -qF '[imap] OK: verified' "$CR_OUT" && echo yes || echo no)"
    fi
fi

e2e_finish "reload-mail.sh"

#!/bin/bash
# The check administrators script today, for the benchmark (not a test): for every lineage
# under CERTBOT_DIR/live, with the openssl command line, as root, and the service user's
# access tried with `sudo -u USER test -r` on the four files the server opens.
#   baseline-check.sh CERTBOT_DIR ROOT_CA HOSTNAME USER
# Exit 1 when any lineage fails a check.
dir=$1 ca=$2 host=$3 user=$4 bad=0
for lineage in "$dir"/live/*/; do
    lineage=${lineage%/}
    name=${lineage##*/}
    for kind in cert chain fullchain privkey; do
        real=$(readlink -f "$lineage/$kind.pem")
        if [ ! -f "$real" ]; then echo "$name: $kind.pem missing"; bad=1; continue 2; fi
        printf -v "$kind" '%s' "$real"
    done
    for kind in cert chain fullchain privkey; do
        sudo -u "$user" test -r "$lineage/$kind.pem" || { echo "$name: $user cannot read $kind.pem"; bad=1; }
    done
    openssl x509 -noout -checkend $((14 * 86400)) -in "$cert" >/dev/null || { echo "$name: expires within 14 days"; bad=1; }
    [ "$(openssl pkey -in "$privkey" -pubout)" = "$(openssl x509 -in "$cert" -noout -pubkey)" ] || { echo "$name: key does not match"; bad=1; }
    openssl verify -CAfile "$ca" -untrusted "$chain" "$cert" >/dev/null || { echo "$name: chain does not verify"; bad=1; }
    cat "$cert" "$chain" | cmp -s - "$fullchain" || { echo "$name: fullchain is not cert+chain"; bad=1; }
    openssl x509 -noout -checkhost "$host" -in "$cert" | grep -q 'does match' || { echo "$name: $host not covered"; bad=1; }
done
exit $bad

#!/usr/bin/env python3
"""certbot's renewal of one lineage in a tree made by make_trees.py, step by step (not certbot).

  renew.py prepare TREE NAME     writes archive/NAME/{cert,chain,fullchain,privkey}N.pem for the
                                 next version N (a new leaf for the lineage's key, as with
                                 --reuse-key; certbot's modes and the key's group kept); prints N
  renew.py link TREE NAME N      points the four links at version N the way certbot 2.1 does:
                                 previous_*.pem links first, then unlink()+symlink() per link in
                                 the order cert, privkey, chain, fullchain, then the previous_
                                 links removed; prints CLOCK_MONOTONIC ns right after the last
                                 link update (fullchain.pem), the moment a deploy hook could run

The issuing intermediate is TREE/../pki (make_trees.py's cache).
"""
import datetime
import os
import re
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

PARTS = ("cert", "privkey", "chain", "fullchain")


def versions(archive):
    found = [int(m.group(1)) for f in os.listdir(archive) if (m := re.fullmatch(r"cert(\d+)\.pem", f))]
    return max(found) if found else 0


def prepare(tree, name):
    pki = os.path.join(os.path.dirname(tree), "pki")
    archive = os.path.join(tree, "archive", name)
    last = versions(archive)
    nxt = last + 1
    with open(os.path.join(pki, "intermediate.key"), "rb") as f:
        int_key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(archive, "chain%d.pem" % last), "rb") as f:
        chain_pem = f.read()
    intermediate = x509.load_pem_x509_certificate(chain_pem)
    key_path = os.path.join(archive, "privkey%d.pem" % last)
    with open(key_path, "rb") as f:
        key_pem = f.read()
    key = serialization.load_pem_private_key(key_pem, None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(intermediate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=89))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("*.bench.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()), critical=False)
        .sign(int_key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    old = os.stat(key_path)
    for part, data, mode in (("cert", cert_pem, 0o644), ("privkey", key_pem, 0o600),
                             ("chain", chain_pem, 0o644), ("fullchain", cert_pem + chain_pem, 0o644)):
        path = os.path.join(archive, "%s%d.pem" % (part, nxt))
        with open(path, "wb") as f:  # certbot writes archive files in place
            f.write(data)
        os.chmod(path, mode)
        if part == "privkey":  # certbot keeps the previous key's group and its group bits
            os.chown(path, -1, old.st_gid)
            os.chmod(path, 0o600 | (old.st_mode & 0o074))
    print(nxt)


def link(tree, name, version):
    live = os.path.join(tree, "live", name)
    for part in PARTS:
        previous = os.path.join(live, "previous_%s.pem" % part)
        os.symlink(os.path.realpath(os.path.join(live, part + ".pem")), previous)
    for part in PARTS:
        path = os.path.join(live, part + ".pem")
        os.unlink(path)
        os.symlink("../../archive/%s/%s%d.pem" % (name, part, version), path)
    done = time.monotonic_ns()
    for part in PARTS:
        os.unlink(os.path.join(live, "previous_%s.pem" % part))
    print(done)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "link":
        link(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)

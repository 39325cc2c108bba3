#!/usr/bin/env python3
"""Generates certbot-layout trees for certreload's benchmarks (not a test).

  make_trees.py [--key-cycle ec256,rsa2048,...] CACHE_DIR COUNT [COUNT...]
                  prints one line per tree: COUNT PATH SECONDS

Each tree CACHE_DIR/tree-COUNT is certbot's layout: live/NAME/{cert,chain,fullchain,privkey}.pem
as relative links into archive/NAME/*1.pem, renewal/NAME.conf (what `certbot certificates`
reads), certbot's modes (live/ and archive/ 0700, keys 0600) and the lasting group fix for
the service user (group on live/, archive/ and every key, g+rx / g+r).

Every lineage has its own leaf certificate (serial, names), signed by one shared ECDSA
intermediate under one root, covering NAME and *.bench.test. Keys come from a fixed pool
(KEYS_PER_TYPE per type), reused across lineages, because generating 10,000 RSA-4096 keys
takes hours: the key types cycle ECDSA P-256, RSA 2048, ECDSA P-256, RSA 4096 (so half the
lineages are ECDSA, a quarter each RSA 2048 and RSA 4096). certreload parses every PEM block
it reads, so reused keys do not flatter it; its per-run cache keys on the certificate bytes.

A tree is reused while its stamp (generator version, group, age under 30 days) matches;
the certificates are valid for 89 days like Let's Encrypt's.
"""
import argparse
import datetime
import grp
import json
import os
import shutil
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

GENERATOR_VERSION = 1
KEYS_PER_TYPE = 4
KEY_CYCLE = ["ec256", "rsa2048", "ec256", "rsa4096"]
MAX_AGE = 30 * 86400
HOST_DOMAIN = "bench.test"


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def new_key(kind):
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))


def load_or_make_pki(cache, cycle):
    """The root, the intermediate and the key pool, generated once per cache directory."""
    pki = os.path.join(cache, "pki")
    os.makedirs(pki, exist_ok=True)

    def key_at(name, kind):
        path = os.path.join(pki, name + ".key")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return serialization.load_pem_private_key(f.read(), None)
        key = new_key(kind)
        with open(path + ".tmp", "wb") as f:
            f.write(pem_key(key))
        os.replace(path + ".tmp", path)
        return key

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key = key_at("root", "ec256")
    int_key = key_at("intermediate", "ec256")
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certreload bench root")])
    int_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certreload bench intermediate")])
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=120))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    intermediate = (
        x509.CertificateBuilder().subject_name(int_name).issuer_name(root_name).public_key(int_key.public_key())
        .serial_number(2).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=110))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(int_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pool = {kind: [key_at("%s-%d" % (kind, i), kind) for i in range(KEYS_PER_TYPE)] for kind in set(cycle)}
    with open(os.path.join(pki, "root.pem"), "wb") as f:
        f.write(pem_cert(root))
    return root, intermediate, int_key, pool


def leaf(name, serial, key, intermediate, int_key, now):
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(intermediate.subject).public_key(key.public_key()).serial_number(serial)
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=89))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("*." + HOST_DOMAIN)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()), critical=False)
        .sign(int_key, hashes.SHA256())
    )


def write(path, data, mode):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_tree(cache, count, group, cycle):
    tree = os.path.join(cache, "tree-%d%s" % (count, "" if cycle == KEY_CYCLE else "-" + "-".join(cycle)))
    stamp_path = os.path.join(tree, ".bench-stamp")
    want = {"version": GENERATOR_VERSION, "count": count, "group": group}
    if cycle != KEY_CYCLE:
        want["cycle"] = cycle
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
        if all(stamp.get(k) == v for k, v in want.items()) and time.time() - stamp["created"] < MAX_AGE:
            return tree
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(tree, ignore_errors=True)
    root, intermediate, int_key, pool = load_or_make_pki(cache, cycle)
    gid = grp.getgrnam(group).gr_gid
    now = datetime.datetime.now(datetime.timezone.utc)
    int_pem = pem_cert(intermediate)
    key_pem = {kind: [pem_key(k) for k in keys] for kind, keys in pool.items()}
    for sub in ("live", "archive", "renewal"):
        os.makedirs(os.path.join(tree, sub))
    write(os.path.join(tree, "live", "README"), b"certbot-layout benchmark tree\n", 0o644)
    for i in range(1, count + 1):
        name = "lineage%05d.%s" % (i, HOST_DOMAIN)
        kind = cycle[i % len(cycle)]
        index = (i // len(cycle)) % KEYS_PER_TYPE
        cert_pem = pem_cert(leaf(name, 1000 + i, pool[kind][index], intermediate, int_key, now))
        live = os.path.join(tree, "live", name)
        archive = os.path.join(tree, "archive", name)
        os.makedirs(live)
        os.makedirs(archive)
        write(os.path.join(archive, "cert1.pem"), cert_pem, 0o644)
        write(os.path.join(archive, "chain1.pem"), int_pem, 0o644)
        write(os.path.join(archive, "fullchain1.pem"), cert_pem + int_pem, 0o644)
        write(os.path.join(archive, "privkey1.pem"), key_pem[kind][index], 0o640)
        os.chown(os.path.join(archive, "privkey1.pem"), 0, gid)
        for part in ("cert", "chain", "fullchain", "privkey"):
            os.symlink("../../archive/%s/%s1.pem" % (name, part), os.path.join(live, part + ".pem"))
        conf = (
            "# renew_before_expiry = 30 days\nversion = 2.1.0\n"
            "archive_dir = {t}/archive/{n}\ncert = {t}/live/{n}/cert.pem\nprivkey = {t}/live/{n}/privkey.pem\n"
            "chain = {t}/live/{n}/chain.pem\nfullchain = {t}/live/{n}/fullchain.pem\n\n"
            "[renewalparams]\naccount = 0123456789abcdef0123456789abcdef\nauthenticator = manual\n"
            "server = https://127.0.0.1:14000/dir\nkey_type = {k}\n"
        ).format(t=tree, n=name, k="ecdsa" if kind.startswith("ec") else "rsa")
        write(os.path.join(tree, "renewal", name + ".conf"), conf.encode(), 0o644)
    for sub in ("live", "archive"):
        os.chown(os.path.join(tree, sub), 0, gid)
        os.chmod(os.path.join(tree, sub), 0o750)
    with open(stamp_path, "w") as f:
        json.dump(dict(want, created=time.time()), f)
    return tree


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key-cycle", default=",".join(KEY_CYCLE), help="key types in turn (ec256, rsa2048, rsa4096)")
    parser.add_argument("--group", default="nogroup", help="the service user's group given access")
    parser.add_argument("cache")
    parser.add_argument("counts", nargs="+", type=int)
    args = parser.parse_args()
    cycle = args.key_cycle.split(",")
    os.makedirs(args.cache, exist_ok=True)
    os.chmod(args.cache, 0o755)
    for count in args.counts:
        started = time.time()
        tree = make_tree(args.cache, count, args.group, cycle)
        print("%d %s %.1f" % (count, tree, time.time() - started), flush=True)


if __name__ == "__main__":
    main()

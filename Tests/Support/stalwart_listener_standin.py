#!/usr/bin/env python3
"""A STAND-IN for Stalwart's SMTP and implicit-TLS listeners (Stalwart cannot run here).

It answers only what Stalwart's source (v0.16.18, /work/.mirror/stalwartlabs+stalwart)
says, for the doctor e2e test; each behaviour names its source file:

- It names itself `stalwart` (/proc/PID/comm), as the real service's process is named, and
  runs as whatever account starts it (the test runs it as the account `stalwart`).
- At start it reads the certificate and key files it is given, as that account. A file it
  cannot read leaves it with no certificate, and then it serves a self-signed certificate it
  generates for its host name: crates/common/src/network/tls.rs (resolve_certificate: no
  certificates -> tls_self_signed_cert) and crates/common/src/config/inner.rs
  (build_self_signed_cert from rcgen's generate_simple_self_signed; here openssl makes it).
- SMTP: greeting "220 Stalwart ESMTP at your service." (crates/smtp/src/inbound/spawn.rs);
  EHLO answers the capabilities of crates/smtp/src/inbound/ehlo.rs, and STARTTLS only when
  the listener has TLS on (`self.instance.acceptor.is_tls()`, from the listener's `useTls`,
  crates/common/src/config/server/listener.rs) -- the certificate plays no part. The first
  line's wording comes from the smtp-proto crate's EhloResponse ("HOST you had me at EHLO").
- An implicit-TLS listener (imaps-style) does the TLS handshake at once with the same
  certificate and closes after it (the probe needs only the handshake).

  --smtp PORT --use-tls true|false   the SMTP listener and its TLS switch
  --implicit PORT                    an implicit-TLS listener
  --cert FULLCHAIN --key PRIVKEY     files to load (as this account)
  --hostname NAME                    for the greeting and the self-signed fallback
  --state DIR                        where the generated self-signed pair goes
  --lifetime SECONDS                 exit by itself after this long (default 300)

Prints "READY" once every listener accepts connections.
"""
import argparse
import ctypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading

TIMEOUT = 10


def set_process_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NAME = 15
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


def load_context(args):
    """The TLS context: the configured files if readable, else a generated self-signed pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.cert, args.key)
        print("loaded %s and %s" % (args.cert, args.key), file=sys.stderr, flush=True)
        return context
    except (OSError, ssl.SSLError) as error:
        print("cannot load certificate: %s; no certificates: serving a self-signed one" % error, file=sys.stderr, flush=True)
    cert = os.path.join(args.state, "self-signed.pem")
    key = os.path.join(args.state, "self-signed.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
         "-subj", "/CN=rcgen self signed cert", "-addext", "subjectAltName=DNS:%s" % args.hostname,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context.load_cert_chain(cert, key)
    return context


def smtp_session(conn, args, context):
    conn.settimeout(TIMEOUT)
    reader = conn.makefile("rb")
    conn.sendall(b"220 Stalwart ESMTP at your service.\r\n")
    while True:
        line = reader.readline()
        if not line:
            return
        command = line.strip().split(b" ")[0].upper()
        if command == b"EHLO":
            caps = [b"%s you had me at EHLO" % args.hostname.encode(), b"8BITMIME", b"BINARYMIME",
                    b"ENHANCEDSTATUSCODES", b"SMTPUTF8", b"PIPELINING", b"CHUNKING"]
            if args.use_tls == "true":
                caps.append(b"STARTTLS")
            caps.append(b"SIZE 104857600")
            out = b"".join(b"250-" + c + b"\r\n" for c in caps[:-1]) + b"250 " + caps[-1] + b"\r\n"
            conn.sendall(out)
        elif command == b"STARTTLS" and args.use_tls == "true":
            conn.sendall(b"220 2.0.0 Ready to start TLS.\r\n")
            try:
                tls = context.wrap_socket(conn, server_side=True)
                tls.settimeout(TIMEOUT)
                tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            return
        elif command == b"QUIT":
            conn.sendall(b"221 2.0.0 Bye.\r\n")
            return
        else:
            conn.sendall(b"502 5.5.1 Command not implemented.\r\n")


def implicit_session(conn, context):
    conn.settimeout(TIMEOUT)
    try:
        tls = context.wrap_socket(conn, server_side=True)
        tls.settimeout(TIMEOUT)
        tls.recv(1)
    except (OSError, ssl.SSLError):
        pass


def serve(listener, handler):
    while True:
        conn, _ = listener.accept()
        def run(c=conn):
            try:
                handler(c)
            except OSError:
                pass
            finally:
                c.close()
        threading.Thread(target=run, daemon=True).start()


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smtp", type=int)
    parser.add_argument("--use-tls", choices=["true", "false"], default="true")
    parser.add_argument("--implicit", type=int)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--hostname", default="localhost")
    parser.add_argument("--state", required=True)
    parser.add_argument("--lifetime", type=float, default=300)
    args = parser.parse_args()
    set_process_name("stalwart")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    context = load_context(args)
    threads = []
    if args.smtp:
        s = listen(args.smtp)
        threads.append(threading.Thread(target=serve, args=(s, lambda c: smtp_session(c, args, context)), daemon=True))
    if args.implicit:
        s = listen(args.implicit)
        threads.append(threading.Thread(target=serve, args=(s, lambda c: implicit_session(c, context)), daemon=True))
    for t in threads:
        t.start()
    print("READY", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A small SMTP/IMAP/POP3 server with STARTTLS, for certreload's verify-probe tests.

It speaks just enough of each protocol for a client to upgrade to TLS (Python's ssl
module, that is real OpenSSL), then waits for the client to hang up. It listens on
127.0.0.1, prints "READY <port>" on stdout once it accepts connections, and exits by
itself after --lifetime seconds (or on SIGTERM).

  --starttls offer    advertise STARTTLS/STLS and accept it (default)
  --starttls absent   do not advertise it and reject the command (TLS not enabled)
  --starttls refuse   advertise it but refuse the command (454 / NO / -ERR)
  --cert/--key        the certificate (PEM, may hold a chain) served to clients
  --nosni-cert/--nosni-key  served instead to clients that send no SNI
  --renewed-cert/--renewed-key with --renew-after N: served from connection N+1 on,
                      as if the server had been reloaded after a renewal
"""
import argparse
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading

CONNECTION_TIMEOUT = 10


class Lines:
    """CRLF lines from a plain socket, without reading past the line asked for."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def readline(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
            if len(self.buffer) > 8192:
                return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")


def make_contexts(args):
    def context(cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    main = context(args.cert, args.key) if args.cert else None
    nosni = context(args.nosni_cert, args.nosni_key) if args.nosni_cert else None
    if main is not None and nosni is not None:
        def choose(sslobj, server_name, _ctx):
            if server_name is None:
                sslobj.context = nosni
            return None

        main.sni_callback = choose
    return main


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(CONNECTION_TIMEOUT)
        args = self.server.args
        lines = Lines(sock)
        try:
            upgrade = {"smtp": self.smtp, "imap": self.imap, "pop3": self.pop3}[args.protocol](sock, lines, args)
            if upgrade and self.server.tls is not None:
                if lines.buffer:
                    return
                tls = self.server.context_for_next_connection().wrap_socket(sock, server_side=True)
                try:
                    while tls.recv(4096):
                        pass
                except (OSError, ssl.SSLError):
                    pass
        except (OSError, ssl.SSLError):
            pass

    @staticmethod
    def say(sock, *lines):
        sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def smtp(self, sock, lines, args):
        self.say(sock, "220-localhost certreload test ESMTP", "220 ready")
        while True:
            line = lines.readline()
            if line is None:
                return False
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["250-localhost", "250-PIPELINING", "250-SIZE 10240000"]
                if args.starttls != "absent":
                    caps.append("250-STARTTLS")
                caps.append("250 8BITMIME")
                self.say(sock, *caps)
            elif verb == "STARTTLS":
                if args.starttls == "offer":
                    self.say(sock, "220 2.0.0 Ready to start TLS")
                    return True
                if args.starttls == "refuse":
                    self.say(sock, "454 4.7.0 TLS not available due to temporary reason")
                else:
                    self.say(sock, "502 5.5.1 Command not recognized")
            elif verb == "QUIT":
                self.say(sock, "221 2.0.0 Bye")
                return False
            else:
                self.say(sock, "500 5.5.2 Syntax error")

    def imap(self, sock, lines, args):
        self.say(sock, "* OK [CAPABILITY IMAP4rev1] certreload test IMAP ready")
        while True:
            line = lines.readline()
            if line is None:
                return False
            parts = line.split(" ")
            tag, command = parts[0], (parts[1].upper() if len(parts) > 1 else "")
            if command == "CAPABILITY":
                caps = "* CAPABILITY IMAP4rev1 LITERAL+"
                if args.starttls != "absent":
                    caps += " STARTTLS LOGINDISABLED"
                self.say(sock, caps, tag + " OK CAPABILITY completed")
            elif command == "STARTTLS":
                if args.starttls == "offer":
                    self.say(sock, tag + " OK Begin TLS negotiation now")
                    return True
                if args.starttls == "refuse":
                    self.say(sock, tag + " NO [UNAVAILABLE] TLS is not available")
                else:
                    self.say(sock, tag + " BAD Unknown command")
            elif command == "LOGOUT":
                self.say(sock, "* BYE", tag + " OK LOGOUT completed")
                return False
            else:
                self.say(sock, tag + " BAD Unknown command")

    def pop3(self, sock, lines, args):
        self.say(sock, "+OK certreload test POP3 ready")
        while True:
            line = lines.readline()
            if line is None:
                return False
            verb = line.split(" ", 1)[0].upper()
            if verb == "CAPA":
                caps = ["+OK Capability list follows", "USER", "TOP"]
                if args.starttls != "absent":
                    caps.append("STLS")
                caps.append(".")
                self.say(sock, *caps)
            elif verb == "STLS":
                if args.starttls == "offer":
                    self.say(sock, "+OK Begin TLS negotiation")
                    return True
                self.say(sock, "-ERR TLS not available" if args.starttls == "refuse" else "-ERR Unknown command")
            elif verb == "QUIT":
                self.say(sock, "+OK Bye")
                return False
            else:
                self.say(sock, "-ERR Unknown command")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    connections = 0
    renewed = None
    lock = threading.Lock()

    def context_for_next_connection(self):
        with self.lock:
            self.connections += 1
            if self.renewed is not None and self.connections > self.args.renew_after:
                return self.renewed
            return self.tls


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=["smtp", "imap", "pop3"], default="smtp")
    parser.add_argument("--starttls", choices=["offer", "absent", "refuse"], default="offer")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--nosni-cert")
    parser.add_argument("--nosni-key")
    parser.add_argument("--renewed-cert")
    parser.add_argument("--renewed-key")
    parser.add_argument("--renew-after", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=60)
    args = parser.parse_args()
    if args.starttls == "offer" and not args.cert:
        parser.error("--starttls offer needs --cert and --key")

    # Exit by ourselves, whatever happens to the test that started us.
    timer = threading.Timer(args.lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    server = Server(("127.0.0.1", args.port), Handler)
    server.args = args
    server.tls = make_contexts(args)
    if args.renewed_cert:
        server.renewed = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.renewed.load_cert_chain(args.renewed_cert, args.renewed_key)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A hostile HTTP/TLS/SMTP peer for certreload's fault tests: it misbehaves on purpose.

Not a stand-in for any real server: each --mode is one fault a real server (or the network
in front of it) can show. It listens on 127.0.0.1 (a free port), prints "READY <port>" on
stdout, and exits by itself after --lifetime seconds or on SIGTERM.

It counts connections: "OPEN <n>" on stdout whenever the number of client connections
still open changes, so a test can see that certreload closed every connection it opened
(no leaked descriptors).

HTTP modes (any request):
  silent          accept, never read, never answer
  read-no-answer  read the request, never answer
  status:N        answer N with a short JSON error body (500, 401, 403 ...)
  redirect        302 to http://127.0.0.1:9/elsewhere (must not be followed)
  not-json        200 with an HTML page
  truncated-json  200, Content-Length of a full body, half of it sent, then close
  huge-body       200 with a 50 MB JSON-looking body
  ok              200 {"ok": true} (control)
TLS modes (--cert/--key; the handshake is real OpenSSL through Python's ssl module):
  tls:MODE        TLS first, then MODE as above
  tls-close-mid-handshake   read the ClientHello, then close
  tls-switch      serve --cert for --switch-after seconds, then --new-cert (a reload
                  that takes a while)
SMTP modes:
  smtp-slow-greeting   a multi-line 220 greeting, one byte a second
  smtp-starttls-refused      EHLO lists STARTTLS, then STARTTLS is answered
                             "454 4.7.0 TLS not available due to local problem"
  smtp-starttls-then-close   STARTTLS is answered 220, then the connection closes
                             before the TLS handshake
"""
import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time

lock = threading.Lock()
open_connections = 0


def changed(delta):
    global open_connections
    with lock:
        open_connections += delta
        print(f"OPEN {open_connections}", flush=True)


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def respond(conn, status, body, content_type="application/json", extra=""):
    reason = {200: "OK", 302: "Found", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}.get(status, "Status")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n")
    conn.sendall(head.encode() + body)


def hold(conn, stop):
    """Keeps the connection until the client closes it (or the server stops)."""
    conn.settimeout(0.2)
    while not stop.is_set():
        try:
            if conn.recv(65536) == b"":
                return
        except socket.timeout:
            continue
        except OSError:
            return


def http(conn, mode, stop):
    if mode == "silent":
        return hold(conn, stop)
    if read_request(conn) is None:
        return
    if mode == "read-no-answer":
        return hold(conn, stop)
    if mode.startswith("status:"):
        status = int(mode.split(":")[1])
        respond(conn, status, json.dumps({"type": "about:blank", "status": status, "detail": "hostile server"}).encode())
    elif mode == "redirect":
        respond(conn, 302, b"", extra="Location: http://127.0.0.1:9/elsewhere\r\n")
    elif mode == "not-json":
        respond(conn, 200, b"<html><body>Welcome to nginx!</body></html>", content_type="text/html")
    elif mode == "truncated-json":
        body = b'{"methodResponses":[["x:Action/set",{"created":{"r1":{"id":"a"}}},"c1"]],"sessionState":"x"}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body[: len(body) // 2])
        return  # and close: the body is cut short
    elif mode == "huge-body":
        size = 50 * 1024 * 1024
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode())
        chunk = b"[" * 65536
        sent = 0
        try:
            while sent < size and not stop.is_set():
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            return
    else:  # ok
        respond(conn, 200, b'{"ok": true}')
    hold(conn, stop)


def serve(conn, args, contexts, started, stop):
    changed(+1)
    try:
        conn.settimeout(None)
        mode = args.mode
        if mode == "smtp-slow-greeting":
            for byte in b"220-mail.example.com ESMTP slow\r\n220-still greeting\r\n220 done\r\n":
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(1)
            return hold(conn, stop)
        if mode in ("smtp-starttls-refused", "smtp-starttls-then-close"):
            reader = conn.makefile("rb")
            conn.sendall(b"220 mail.example.com ESMTP\r\n")
            while not stop.is_set():
                line = reader.readline(1024)
                if not line:
                    return
                verb = line.strip().upper()
                if verb.startswith(b"EHLO"):
                    conn.sendall(b"250-mail.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS" and mode == "smtp-starttls-refused":
                    conn.sendall(b"454 4.7.0 TLS not available due to local problem\r\n")
                elif verb == b"STARTTLS":
                    conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                    return
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")
        if mode == "tls-close-mid-handshake":
            conn.recv(4096)  # the ClientHello
            return
        if mode.startswith("tls"):
            context = contexts["new"] if mode == "tls-switch" and time.monotonic() - started >= args.switch_after else contexts["old"]
            conn = context.wrap_socket(conn, server_side=True)
            mode = mode[4:] if mode.startswith("tls:") else "ok"
        http(conn, mode, stop)
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        try:
            conn.close()
        finally:
            changed(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--new-cert")
    parser.add_argument("--new-key")
    parser.add_argument("--switch-after", type=float, default=30)
    parser.add_argument("--lifetime", type=float, default=120)
    args = parser.parse_args()

    contexts = {}
    for name, cert, key in (("old", args.cert, args.key), ("new", args.new_cert, args.new_key)):
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            contexts[name] = context

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    print(f"READY {listener.getsockname()[1]}", flush=True)
    while not stop.is_set() and time.monotonic() - started < args.lifetime:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, args, contexts, started, stop), daemon=True).start()
    stop.set()
    sys.exit(0)


if __name__ == "__main__":
    main()

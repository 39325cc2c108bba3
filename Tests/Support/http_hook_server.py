#!/usr/bin/env python3
"""A generic HTTP endpoint for the HTTP reload target's tests (not any real server).

  POST/PUT/GET /hook      answers --hook-status, after checking --token / --basic if given
  /moved-here, /moved-away  307 to /hook on the same host, and on another host

It binds 127.0.0.1 on a free port, prints that port on the first line of stdout, appends
every request it receives (method, path, headers, body) as one JSON line to --record, and
exits by itself after --lifetime seconds.
"""
import argparse
import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--token", help="the token a request must carry as Authorization: Bearer")
parser.add_argument("--basic", help="username:password a request may carry as Basic instead")
parser.add_argument("--echo-auth", action="store_true",
                    help="repeat the received Authorization header in error answers (as a careless server might)")
parser.add_argument("--hook-status", type=int, default=204)
parser.add_argument("--record", required=True)
parser.add_argument("--lifetime", type=float, default=60.0)
args = parser.parse_args()

record_lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    server_version = "HookServer/0 (certreload test endpoint)"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *a):  # quiet
        pass

    def record(self, body):
        entry = {"method": self.command, "path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()], "body": body.decode("utf-8", "replace")}
        with record_lock, open(args.record, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if args.token is None and args.basic is None:
            return True
        got = self.headers.get("Authorization", "")
        if args.token is not None and got == "Bearer " + args.token:
            return True
        return args.basic is not None and got == "Basic " + base64.b64encode(args.basic.encode()).decode()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.record(body)
        path = self.path.split("?")[0]
        if path in ("/moved-here", "/moved-away"):
            location = "/hook" if path == "/moved-here" else "http://127.0.0.2:%d/hook" % self.server.server_address[1]
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/hook":
            if not self.authorized():
                detail = "authenticate first"
                if args.echo_auth:
                    detail += "; received: " + self.headers.get("Authorization", "(none)")
                return self.answer(401, {"status": 401, "detail": detail})
            return self.answer(args.hook_status, {"status": args.hook_status})
        detail = "no such path"
        if args.echo_auth:
            detail += "; received: " + self.headers.get("Authorization", "(none)")
        self.answer(404, {"status": 404, "detail": detail})

    do_GET = do_POST = do_PUT = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait(args.lifetime)
os._exit(0)

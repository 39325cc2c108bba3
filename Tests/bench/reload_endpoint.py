#!/usr/bin/env python3
"""A loopback HTTP reload endpoint for certreload's benchmarks and idle test (not a server).

Binds 127.0.0.1 on a free port, prints the port on the first line of stdout, and appends one
JSON line per request to --record: {"t": CLOCK_MONOTONIC ns when the request line arrived,
"method", "path", "length"}. Answers 200 with an empty JSON object (what certreload's `http`
reload kind accepts: any 2xx). Exits by itself after --lifetime seconds or on SIGTERM.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--record", required=True)
parser.add_argument("--lifetime", type=float, default=600)
args = parser.parse_args()
lock = threading.Lock()
record = open(args.record, "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one_request(self):
        self.arrived = time.monotonic_ns()
        super().handle_one_request()

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with lock:
            record.write(json.dumps({"t": self.arrived, "method": self.command, "path": self.path, "length": length}) + "\n")
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_GET = answer

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Timer(args.lifetime, server.shutdown).start()
server.serve_forever()

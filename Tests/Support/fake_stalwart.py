#!/usr/bin/env python3
"""A FAKE Stalwart for certreload's tests. It is not Stalwart.

It answers the two reload APIs the way Stalwart documents them:
  POST /jmap/                   JMAP x:Action/set creating ReloadTlsCertificates (0.16+)
  GET  /api/reload/certificate  REST, 200 {"data":{"errors":{},"warnings":{}}} (0.15)
plus POST/PUT /hook, a generic endpoint for the HTTP reload target, and /moved-here and
/moved-away, which redirect to /hook on the same host and on another host.

It binds 127.0.0.1 on a free port, prints that port on the first line of stdout, appends
every request it receives (method, path, headers, body) as one JSON line to --record, and
exits by itself after --lifetime seconds.
"""
import argparse
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--jmap", default="ok",
                    choices=["ok", "notcreated", "forbidden", "unknown-method", "unknown-capability", "absent"])
parser.add_argument("--rest", default="ok", choices=["ok", "errors", "warnings", "absent"])
parser.add_argument("--token", help="the API key a request must carry as Authorization: Bearer")
parser.add_argument("--basic", help="username:password a request may carry as Basic instead")
parser.add_argument("--echo-auth", action="store_true",
                    help="repeat the received Authorization header in error answers (as a careless server might)")
parser.add_argument("--hook-status", type=int, default=204)
parser.add_argument("--record", required=True)
parser.add_argument("--lifetime", type=float, default=60.0)
args = parser.parse_args()

record_lock = threading.Lock()


class FakeStalwart(BaseHTTPRequestHandler):
    server_version = "FakeStalwart/0 (certreload test double)"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *a):  # quiet
        pass

    def record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
        }
        with record_lock, open(args.record, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def answer(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if args.token is None and args.basic is None:
            return True
        got = self.headers.get("Authorization", "")
        if args.token is not None and got == "Bearer " + args.token:
            return True
        if args.basic is not None and got == "Basic " + base64.b64encode(args.basic.encode()).decode():
            return True
        return False

    def refuse(self):
        detail = "You have to authenticate first."
        if args.echo_auth:
            detail += " Received: " + self.headers.get("Authorization", "(none)")
        self.answer(401, {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": detail})

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.record(body)
        path = self.path.split("?")[0]
        if path == "/jmap/" and self.command == "POST":
            return self.jmap(body)
        if path == "/api/reload/certificate" and self.command == "GET":
            return self.rest()
        if path in ("/moved-here", "/moved-away"):
            # Redirects for the HTTP client: same host, or another host (never to be followed).
            location = "/hook" if path == "/moved-here" else "http://127.0.0.2:%d/hook" % self.server.server_address[1]
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/hook":
            if not self.authorized():
                return self.refuse()
            return self.answer(args.hook_status, {"status": args.hook_status})
        self.answer(404, {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "The requested resource does not exist."})

    do_GET = do_POST = do_PUT = handle_any

    def jmap(self, body):
        if args.jmap == "absent":
            return self.answer(404, {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not found"})
        if not self.authorized():
            return self.refuse()
        try:
            request = json.loads(body)
        except ValueError:
            return self.answer(400, {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400, "detail": "not JSON"})
        if args.jmap == "unknown-capability":
            return self.answer(400, {"type": "urn:ietf:params:jmap:error:unknownCapability", "status": 400,
                                     "detail": "Unknown capability urn:stalwart:jmap"})
        responses = []
        for name, arguments, call_id in request.get("methodCalls", []):
            if name != "x:Action/set" or args.jmap == "unknown-method":
                responses.append(["error", {"type": "unknownMethod"}, call_id])
                continue
            created, not_created = {}, {}
            for key, obj in arguments.get("create", {}).items():
                if obj.get("@type") != "ReloadTlsCertificates":
                    not_created[key] = {"type": "invalidProperties", "description": "unknown action"}
                elif args.jmap == "ok":
                    created[key] = {"id": "a1"}
                elif args.jmap == "forbidden":
                    not_created[key] = {"type": "forbidden", "description": "Missing permission actionReloadTlsCertificates"}
                else:
                    not_created[key] = {"type": "invalidPatch",
                                        "description": "Failed to load certificate 'default': No private key found in PEM"}
            result = {"accountId": "x", "newState": "1"}
            result["created"] = created or None
            result["notCreated"] = not_created or None
            responses.append(["x:Action/set", result, call_id])
        self.answer(200, {"methodResponses": responses, "sessionState": "0"})

    def rest(self):
        if args.rest == "absent":
            return self.answer(404, {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not found"})
        if not self.authorized():
            return self.refuse()
        errors, warnings = {}, {}
        if args.rest == "errors":
            errors = {"certificate.default": "Failed to parse certificate: No certificates found in PEM"}
        if args.rest == "warnings":
            warnings = {"certificate.old": "certificate expires in 3 days"}
        self.answer(200, {"data": {"errors": errors, "warnings": warnings}})


server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStalwart)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait(args.lifetime)
os._exit(0)

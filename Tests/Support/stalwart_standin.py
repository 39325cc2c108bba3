#!/usr/bin/env python3
"""A STAND-IN for Stalwart, for certreload's tests. It is not Stalwart.

Stalwart cannot run here, so this answers the requests certreload sends the way Stalwart's
own source answers them, and nothing else. Every answer carries a comment naming the file
and tag of github.com/stalwartlabs/stalwart it comes from. Versions simulated (--version):

  0.15     tag v0.15.5: REST /api/reload/certificate; /jmap/ without the urn:stalwart:jmap
           capability; API keys as Bearer api_<base64(name:secret)>, only on /api/.
  0.16.10  tags v0.16.0 ... v0.16.10: JMAP x:Action/set ReloadTlsCertificates and registry
           reads; reload keeps each certificate object's stored notValidAfter (never re-read).
  0.16.11  tags v0.16.11 ... v0.16.18: as 0.16.10, but reload re-reads file-backed
           certificates and refreshes the stored metadata (commit 14593e6f).
  1.0      branch v1.0.0 (commit f4514059): the files read here are identical to v0.16.18.

What is left out is simply absent (other methods, other objects, other properties); the
objects' properties are the subset certreload reads, with Stalwart's names and shapes.

It binds 127.0.0.1 on a free port and prints that port on the first line of stdout, then one
JSON line {"credential name": "value for Authorization"} with the API keys it "created"
(Stalwart shows a key's secret once, at creation). It appends every request it receives as
one JSON line to --record, and exits by itself after --lifetime seconds.
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--version", default="1.0", choices=["0.15", "0.16.10", "0.16.11", "1.0"])
parser.add_argument("--api-key", action="append", default=[], metavar="NAME:SECRET:PERMISSIONS",
                    help="an API key with comma-separated permissions (0.15 names such as settings-reload; "
                         "0.16 names such as sysActionCreate)")
parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD:PERMISSIONS",
                    help="an account (or app password) usable with Basic authentication")
parser.add_argument("--certificate", action="append", default=[], metavar="ID:KIND:CERT:KEY",
                    help="a certificate object: KIND file (File paths), text (the files' contents copied in "
                         "as Text, as Stalwart's 0.15->0.16 migration does) or env (EnvironmentVariable names)")
parser.add_argument("--listener", action="append", default=[], metavar="NAME,PROTOCOL,ADDR:PORT,USETLS,IMPLICIT",
                    help="a NetworkListener object, e.g. smtp,smtp,0.0.0.0:25,true,false; an smtp listener on "
                         "127.0.0.1:0 is really served (SMTP with STARTTLS) on a free port, announced as "
                         "\"@listener:NAME\" in the JSON line")
parser.add_argument("--default-certificate", help="SystemSettings.defaultCertificateId (0.16) / certificate.ID.default (0.15)")
parser.add_argument("--broken-macro", action="store_true",
                    help="0.15: an unrelated setting of the local configuration holds a %%{file:...}%% macro "
                         "naming a file that does not exist")
parser.add_argument("--record", required=True)
parser.add_argument("--lifetime", type=float, default=60.0)
args = parser.parse_args()

V015 = args.version == "0.15"
REFRESHES_METADATA = args.version in ("0.16.11", "1.0")
lock = threading.Lock()


def fail(message):
    print("stalwart_standin.py: " + message, file=sys.stderr, flush=True)
    sys.exit(2)


# --- Credentials ---------------------------------------------------------------------------

credentials = {}   # Authorization header value -> set of permissions
created_keys = {}  # name -> Authorization header value, printed once at start
for index, spec in enumerate(args.api_key):
    name, _, rest = spec.partition(":")
    secret, _, permissions = rest.partition(":")
    if V015:
        # crates/http/src/auth/authenticate.rs (v0.15.5) decode_bearer_token: on /api/ a Bearer
        # token "api_" + base64("name:secret") is taken as plain credentials of that principal.
        token = "api_" + base64.b64encode(("%s:%s" % (name, secret)).encode()).decode()
    else:
        # crates/common/src/auth/credential.rs (v0.16.18, v1.0.0) ApiKey::build:
        # "API_" + URL_SAFE_NO_PAD(account_id u32 BE, credential_id u32 BE, 20-byte secret).
        raw = (index + 1).to_bytes(4, "big") + (index + 1).to_bytes(4, "big") + hashlib.sha1(secret.encode()).digest()
        token = "API_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    credentials["Bearer " + token] = {"perms": set(filter(None, permissions.split(","))), "kind": "apikey"}
    created_keys[name] = "Bearer " + token
for spec in args.user:
    name, _, rest = spec.partition(":")
    password, _, permissions = rest.partition(":")
    basic = "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    credentials[basic] = {"perms": set(filter(None, permissions.split(","))), "kind": "basic"}
    created_keys[name] = basic


# --- Certificates --------------------------------------------------------------------------

def utc(seconds):
    # crates/registry/src/types/datetime.rs (v0.16.18) Display: "%04d-%02d-%02dT%02d:%02d:%02dZ".
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_certificate(pem):
    """(sans, issuer, notBefore, notAfter) of the first certificate in pem, as ParsedCert::parse
    (crates/common/src/network/acme/order.rs, v0.16.18) reads them: CN and DNS names, the issuer's
    RDNs; raises ValueError with Stalwart's wording when there is none."""
    start = pem.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        # order.rs (v0.16.18): AcmeError::Crypto("No certificates found in PEM"), shown through
        # AcmeError's Display (crates/common/src/network/acme/mod.rs: "Cryptographic error: {}").
        raise ValueError("Cryptographic error: No certificates found in PEM")
    end = pem.find("-----END CERTIFICATE-----", start)
    path = "/tmp/stalwart-standin-%d-%d.pem" % (os.getpid(), threading.get_ident())
    with open(path, "w") as f:
        f.write(pem[start:end + 25] + "\n")
    try:
        decoded = ssl._ssl._test_decode_cert(path)
    except Exception as error:
        raise ValueError("Cryptographic error: Failed to parse X.509 certificate: %s" % error)
    finally:
        os.unlink(path)
    names = []
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value not in names:
                names.append(value)
    for kind, value in decoded.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address") and value not in names:
            names.append(value)
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}
    issuer = ", ".join("%s=%s" % (short.get(k, k), v) for rdn in decoded.get("issuer", ()) for k, v in rdn)
    return (names, issuer, ssl.cert_time_to_seconds(decoded["notBefore"]), ssl.cert_time_to_seconds(decoded["notAfter"]))


def read_secret_file(path):
    # crates/registry/src/utils/secret.rs (v0.16.18) SecretKeyFile::secret: the file's text,
    # trimmed at the end; errors "Failed to read secret from file '{path}': {err}" and
    # "Secret in file '{path}' is empty".
    try:
        with open(path) as f:
            content = f.read().rstrip()
    except OSError as error:
        raise ValueError("Failed to read secret from file '%s': %s (os error %d)" % (path, error.strerror, error.errno))
    if not content:
        raise ValueError("Secret in file '%s' is empty" % path)
    return content


class CertificateObject:
    """One x:Certificate object (crates/registry/src/schema/structs.rs, v0.16.18: certificate
    PublicText, privateKey SecretText, subjectAlternativeNames, notValidAfter, notValidBefore,
    issuer), or for 0.15 the keys certificate.ID.cert / .private-key of the local configuration."""

    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) != 4 or parts[1] not in ("file", "text", "env"):
            fail("--certificate ID:file|text|env:CERT:KEY, got %r" % spec)
        self.id, self.kind, self.cert_path, self.key_path = parts
        if self.kind == "text":
            with open(self.cert_path) as f:
                self.cert_text = f.read()
            with open(self.key_path) as f:
                self.key_text = f.read()
        # crates/jmap/src/registry/mapping/tls.rs (v0.16.18) validate_certificate: on creation the
        # server parses the certificate and stores sans, issuer and the two dates.
        self.sans, self.issuer, self.not_before, self.not_after = parse_certificate(self.certificate_value())

    def certificate_value(self):
        # crates/registry/src/utils/secret.rs (v0.16.18) PublicText::value.
        if self.kind == "text":
            return self.cert_text
        if self.kind == "env":
            return os.environ[self.cert_path]
        return read_secret_file(self.cert_path)

    def private_key_value(self):
        # crates/registry/src/utils/secret.rs (v0.16.18) SecretText::secret.
        if self.kind == "text":
            return self.key_text
        if self.kind == "env":
            return os.environ[self.key_path]
        return read_secret_file(self.key_path)

    def jmap(self):
        # crates/registry/src/schema/structs_impl.rs (v0.16.18) IntoValue for Certificate,
        # PublicText ({"@type","value"} / {"@type","filePath"} / {"@type","variableName"}),
        # SecretText (Text: "secret" is MASKED_PASSWORD "****", prelude.rs); Map<String> is
        # {"name": true} (crates/registry/src/types/map.rs).
        if self.kind == "text":
            certificate = {"@type": "Text", "value": self.cert_text}
            private_key = {"@type": "Text", "secret": "****"}
        elif self.kind == "env":
            certificate = {"@type": "EnvironmentVariable", "variableName": self.cert_path}
            private_key = {"@type": "EnvironmentVariable", "variableName": self.key_path}
        else:
            certificate = {"@type": "File", "filePath": self.cert_path}
            private_key = {"@type": "File", "filePath": self.key_path}
        return {
            "id": self.id,
            "certificate": certificate,
            "privateKey": private_key,
            "subjectAlternativeNames": {name: True for name in self.sans},
            "notValidAfter": utc(self.not_after),
            "notValidBefore": utc(self.not_before),
            "issuer": self.issuer,
        }


certificates = [CertificateObject(spec) for spec in args.certificate]
listeners = []
for index, spec in enumerate(args.listener):
    parts = spec.split(",")
    if len(parts) != 5:
        fail("--listener NAME,PROTOCOL,ADDR:PORT,USETLS,IMPLICIT, got %r" % spec)
    # crates/registry/src/schema/structs.rs (v0.16.18) NetworkListener: name, bind (Map of
    # socket addresses), protocol (enums_impl.rs: smtp, lmtp, http, imap, pop3, manageSieve),
    # useTls (default true, structs_impl.rs), tlsImplicit (default false).
    listeners.append({"id": "l%d" % index, "name": parts[0], "bind": {parts[2]: True}, "protocol": parts[1],
                      "useTls": parts[3] == "true", "tlsImplicit": parts[4] == "true"})


# The certificates the listeners serve, by name ("*" for the default): (certificate PEM, key PEM).
served = {}
served_dir = None  # made when the first TLS session needs a chain file


def serve_map(objects_built, previous):
    """The name → certificate map after a reload (crates/common/src/config/server/tls.rs)."""
    # 0.15: reload_certificates (crates/common/src/manager/reload.rs, v0.15.5) inserts into a
    # clone of the current map; 0.16 (crates/common/src/cache/reload.rs, v0.16.18) stores a new one.
    certificates_map = dict(previous) if V015 else {}
    expirations = {}
    for obj, public, secret in objects_built:
        names = list(obj.sans)
        # 0.16: the default certificate (SystemSettings.defaultCertificateId) is added under "*";
        # 0.15: certificate.ID.default = true does the same.
        if args.default_certificate == obj.id:
            names.append("*")
        for name in names:
            # 0.16 "Ensure that the most up-to-date certificate is used" (by notValidAfter).
            if not V015 and expirations.get(name, -1) >= obj.not_after:
                continue
            expirations[name] = obj.not_after
            certificates_map[name[2:] if name.startswith("*.") else name] = (public, secret)
    return certificates_map


def resolve(name):
    # crates/common/src/network/tls.rs (v0.16.18) CertificateResolver::resolve_certificate: exact
    # name, else the parent domain (wildcards), else "*", else the only one, else any one; with
    # none a generated self-signed certificate (not simulated here: the handshake fails).
    with lock:
        if name is not None:
            found = served.get(name) or (served.get(name.split(".", 1)[1]) if "." in name else None)
            if found:
                return found
        if "*" in served:
            return served["*"]
        return next(iter(served.values()), None)


def has_private_key(pem):
    # crates/common/src/config/server/tls.rs build_certified_key: rustls_pemfile items PKCS#8
    # "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY" (v0.15.5 and v0.16.18).
    return any(("-----BEGIN %s-----" % label) in pem for label in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"))


def reload_015():
    """GET /api/reload/certificate on 0.15: {"data": {"warnings": {}, "errors": {}}}."""
    errors = {}
    built = []
    # crates/common/src/manager/config.rs (v0.15.5) build_config: resolve_all_macros() runs over the
    # whole local configuration, so a broken macro anywhere reports on every reload.
    if args.broken_macro:
        # crates/utils/src/config/mod.rs (v0.15.5) resolve_macro_type: ConfigError::Macro
        # "Failed to read file {file_name:?}: {err}", under the key holding the macro.
        errors["tracer.log.path"] = {"type": "macro",
                                     "error": 'Failed to read file "/var/log/stalwart/missing": No such file or directory (os error 2)'}
    for obj in certificates:
        if obj.kind != "file":
            continue
        # 0.15 stores certificate.ID.cert = "%{file:PATH}%" and re-reads it on every reload.
        values = {}
        for key, path in (("cert", obj.cert_path), ("private-key", obj.key_path)):
            try:
                with open(path) as f:
                    values[key] = f.read()
            except OSError as error:
                # crates/utils/src/config/mod.rs (v0.15.5): Macro error "Failed to read file {path:?}: {err}"
                # ({path:?} is Rust's Debug quoting); the value keeps the unexpanded macro.
                errors["certificate.%s.%s" % (obj.id, key)] = {
                    "type": "macro", "error": 'Failed to read file "%s": %s (os error %d)' % (path, error.strerror, error.errno)}
                values[key] = "%{file:" + path + "}%"
        # crates/common/src/config/server/tls.rs (v0.15.5) build_certified_key and parse_certificates:
        # ConfigError::Build under "certificate.ID"; a certificate that fails is not inserted, and
        # reload_certificates (crates/common/src/manager/reload.rs) started from a clone of the
        # current map: the previous certificate for those names stays served.
        if "-----BEGIN CERTIFICATE-----" not in values["cert"]:
            errors["certificate.%s" % obj.id] = {"type": "build", "error": "No certificates found."}
        elif not has_private_key(values["private-key"]):
            errors["certificate.%s" % obj.id] = {"type": "build", "error": "No private keys found."}
        else:
            # 0.15 takes the names from the certificate it just read.
            obj.sans, obj.issuer, obj.not_before, obj.not_after = parse_certificate(values["cert"])
            built.append((obj, values["cert"], values["private-key"]))
    served.update(serve_map(built, served))
    # crates/http/src/management/reload.rs (v0.15.5): JsonResponse {"data": result.config}; Config
    # serialises warnings and errors (crates/utils/src/config/mod.rs, serde tag "type", camelCase).
    return {"data": {"warnings": {}, "errors": errors}}


def reload_016():
    """ReloadTlsCertificates on 0.16/1.0: the list of build errors (first one is reported)."""
    # crates/common/src/config/server/tls.rs parse_certificates: v0.16.10 for the stored-metadata
    # model, v0.16.11 / v0.16.18 / v1.0.0 for the refreshing one.
    errors = []
    built = []
    now = time.time()
    expired = []
    for obj in list(certificates):
        file_backed = obj.kind == "file"
        refreshed = None
        if REFRESHES_METADATA and file_backed:
            try:
                pem = obj.certificate_value()
            except ValueError as error:
                errors.append((obj.id, "Failed to obtain certificate value: %s" % error))
                continue
            try:
                refreshed = parse_certificate(pem)
            except ValueError as error:
                errors.append((obj.id, "Invalid certificate: %s" % error))
                continue
        not_after = refreshed[3] if refreshed else obj.not_after
        not_before = refreshed[2] if refreshed else obj.not_before
        if not_after <= now:
            expired.append(obj)  # deleted from the registry below
            continue
        if not_before > now:
            continue  # "Skip certificates that are not yet valid"
        try:
            secret = obj.private_key_value()
        except ValueError as error:
            errors.append((obj.id, "Failed to obtain private key secret: %s" % error))
            continue
        try:
            public = obj.certificate_value()
        except ValueError as error:
            errors.append((obj.id, "Failed to obtain certificate value: %s" % error))
            continue
        if refreshed:
            # v0.16.11+: RegistryWrite::update with the re-read sans, issuer and dates.
            obj.sans, obj.issuer, obj.not_before, obj.not_after = refreshed
        # build_certified_key (v0.16.18): the key first, then the certificates.
        if not has_private_key(secret):
            errors.append((obj.id, "Invalid certificate: No private keys found."))
        elif "-----BEGIN CERTIFICATE-----" not in public:
            errors.append((obj.id, "Invalid certificate: No certificates found."))
        else:
            # Names from the object's stored subjectAlternativeNames (refreshed only on 0.16.11+).
            built.append((obj, public, secret))
    # "Remove expired certificates": RegistryWrite::delete_object for each.
    for obj in expired:
        certificates.remove(obj)
    new_map = serve_map(built, served)
    served.clear()
    served.update(new_map)
    return errors


# --- HTTP ----------------------------------------------------------------------------------

JMAP_CORE = "urn:ietf:params:jmap:core"
STALWART = "urn:stalwart:jmap"
# crates/jmap-proto/src/request/capability.rs (v0.15.5) lists the capabilities 0.15 knows;
# urn:stalwart:jmap is not among them.
KNOWN_015 = {JMAP_CORE, "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission",
             "urn:ietf:params:jmap:vacationresponse", "urn:ietf:params:jmap:contacts",
             "urn:ietf:params:jmap:calendars", "urn:ietf:params:jmap:websocket", "urn:ietf:params:jmap:sieve",
             "urn:ietf:params:jmap:blob", "urn:ietf:params:jmap:quota", "urn:ietf:params:jmap:principals"}


class Answer(Exception):
    def __init__(self, status, payload, headers=()):
        self.status, self.payload, self.headers = status, payload, list(headers)


def unauthorized():
    # crates/http/src/api/mod.rs (v0.16.18) / crates/http/src/management/mod.rs (v0.15.5)
    # HttpResponse::unauthorized(true): 401, application/problem+json, RequestError::unauthorized()
    # (crates/jmap-proto/src/error/request.rs), WWW-Authenticate Bearer and Basic.
    bearer = 'Bearer realm="Stalwart Server"' if V015 else \
        'Bearer realm="Stalwart Server", resource_metadata="/.well-known/oauth-protected-resource"'
    return Answer(401, {"type": "about:blank", "status": 401, "title": "Unauthorized",
                        "detail": "You have to authenticate first."},
                  [("WWW-Authenticate", bearer), ("WWW-Authenticate", 'Basic realm="Stalwart Server"')])


def not_found():
    # crates/jmap-proto/src/error/request.rs RequestError::not_found (v0.15.5, v0.16.18), for
    # trc::ResourceEvent::NotFound (crates/http/src/request.rs, crates/http/src/api/mod.rs).
    return Answer(404, {"type": "about:blank", "status": 404, "title": "Not Found",
                        "detail": "The requested resource does not exist on this server."})


def method_forbidden(description):
    # crates/jmap-proto/src/error/method.rs (v0.16.18) MethodErrorWrapper: {"type", "description"}.
    return {"type": "forbidden", "description": description}


class StandIn(BaseHTTPRequestHandler):
    server_version = "StalwartStandIn/0 (certreload test stand-in, not Stalwart)"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *a):  # quiet
        pass

    def record(self, body):
        entry = {"method": self.command, "path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()], "body": body.decode("utf-8", "replace")}
        with lock, open(args.record, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def send(self, status, payload, headers=(), content_type="application/json"):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authenticate(self, api):
        """The permissions of the request's credentials, or Answer(401)."""
        got = self.headers.get("Authorization", "")
        entry = credentials.get(got)
        if entry is None:
            raise unauthorized()
        # crates/http/src/request.rs (v0.15.5): /jmap/ calls authenticate_headers(.., false), so
        # decode_bearer_token treats "api_…" as an OAuth token, which fails: 401.
        if V015 and entry["kind"] == "apikey" and not api:
            raise unauthorized()
        return entry["perms"]

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.record(body)
        path = self.path.split("?")[0]
        try:
            # crates/http/src/request.rs (v0.15.5, v0.16.18): "jmap" then "" matches both /jmap and /jmap/.
            if path in ("/jmap", "/jmap/") and self.command == "POST":
                status, payload = self.jmap(body)
                # JMAP problem answers are application/problem+json (crates/jmap/src/api/mod.rs).
                return self.send(status, payload)
            if path.startswith("/api/"):
                return self.send(200, self.api(path))
            raise not_found()
        except Answer as answer:
            self.send(answer.status, answer.payload, answer.headers, "application/problem+json")

    do_GET = do_POST = do_PUT = handle_any

    def api(self, path):
        if not V015:
            # crates/http/src/api/mod.rs (v0.16.18) handle_api_request: no "reload" arm; `_ => NotFound`.
            raise not_found()
        perms = self.authenticate(api=True)
        if path != "/api/reload/certificate" or self.command != "GET":
            raise not_found()
        # crates/http/src/management/reload.rs (v0.15.5): assert_has_permission(SettingsReload) →
        # SecurityEvent::Unauthorized → RequestError::forbidden() (crates/jmap/src/api/mod.rs).
        if "settings-reload" not in perms:
            raise Answer(403, {"type": "about:blank", "status": 403, "title": "Forbidden",
                               "detail": "You do not have enough permissions to access this resource."})
        with lock:
            return reload_015()

    def jmap(self, body):
        perms = self.authenticate(api=False)
        try:
            request = json.loads(body)
        except ValueError as error:
            # crates/jmap-proto/src/error/request.rs RequestError::not_json.
            raise Answer(400, {"type": "urn:ietf:params:jmap:error:notJSON", "status": 400,
                               "detail": "Failed to parse JSON: %s" % error})
        using = request.get("using", [])
        if V015:
            unknown = [c for c in using if c not in KNOWN_015]
            if unknown:
                # crates/jmap-proto/src/request/capability.rs (v0.15.5) CapabilityIds::deserialize:
                # de::Error::custom("Unknown capability: {capability_str:?}"), which
                # Request::parse (request/parser.rs) turns into JmapEvent::NotRequest: 400 notRequest
                # (serde_json appends " at line L column C"; the column here is approximate).
                column = body.decode("utf-8", "replace").find(unknown[0]) + len(unknown[0]) + 1
                raise Answer(400, {"type": "urn:ietf:params:jmap:error:notRequest", "status": 400,
                                   "detail": 'Unknown capability: "%s" at line 1 column %d' % (unknown[0], column)})
        responses = []
        for name, arguments, call_id in request.get("methodCalls", []):
            responses.append(self.call(name, arguments or {}, call_id, perms))
        # crates/jmap-proto/src/response/mod.rs (v0.16.18): methodResponses, sessionState.
        return 200, {"methodResponses": responses, "sessionState": "0"}

    def call(self, name, arguments, call_id, perms):
        # crates/jmap/src/api/auth.rs (v0.16.18) assert_has_jmap_permission: get → the object's
        # get permission (crates/registry/src/schema/properties_impl.rs); set → validate_set.
        gets = {"x:Certificate/get": "sysCertificateGet", "x:NetworkListener/get": "sysNetworkListenerGet",
                "x:SystemSettings/get": "sysSystemSettingsGet"}
        if name in gets:
            if gets[name] not in perms:
                return ["error", method_forbidden("You are not authorized to perform this action"), call_id]
            return [name, self.registry_get(name, arguments), call_id]
        if name == "x:Action/set":
            if not ({"sysActionCreate", "sysActionUpdate", "sysActionDestroy"} & perms):
                return ["error", method_forbidden("You are not authorized to create, update or destroy objects of this type"), call_id]
            if "sysActionCreate" not in perms and arguments.get("create"):
                return ["error", method_forbidden("You are not authorized to create objects of this type"), call_id]
            return [name, self.action_set(arguments, perms), call_id]
        # crates/jmap-proto/src/request/parser.rs (v0.16.18): a method name it does not parse is
        # JmapEvent::UnknownMethod with the name as details (error/method.rs: "unknownMethod").
        return ["error", {"type": "unknownMethod", "description": name}, call_id]

    def registry_get(self, name, arguments):
        # crates/jmap/src/registry/get.rs (v0.16.18): list (ids null → all), notFound; a singleton id
        # with no stored object answers the defaults (Object::from(object_type)).
        with lock:
            if name == "x:Certificate/get":
                objects = [c.jmap() for c in certificates]
            elif name == "x:NetworkListener/get":
                objects = [dict(l) for l in listeners]
            else:
                # crates/registry/src/schema/structs.rs (v0.16.18) SystemSettings.defaultCertificateId: Option<Id>.
                objects = [{"id": "singleton", "defaultCertificateId": args.default_certificate}]
        ids = arguments.get("ids")
        found = objects if ids is None else [o for o in objects if o["id"] in ids]
        missing = [] if ids is None else [i for i in ids if i not in {o["id"] for o in objects}]
        # crates/jmap-proto/src/method/get.rs GetResponse: accountId, state, list, notFound.
        return {"accountId": "b", "list": found, "notFound": missing}

    def action_set(self, arguments, perms):
        created, not_created = {}, {}
        for key, value in (arguments.get("create") or {}).items():
            if value.get("@type") != "ReloadTlsCertificates":
                # Only ReloadTlsCertificates is simulated; other actions are left out.
                not_created[key] = {"type": "invalidProperties", "description": "not simulated by the stand-in"}
                continue
            # crates/jmap/src/registry/mapping/action.rs (v0.16.18, v1.0.0): permission of the action.
            if "actionReloadTlsCertificates" not in perms:
                not_created[key] = {"type": "forbidden",
                                    "description": "Insufficient permissions to perform action of type ReloadTlsCertificates"}
                continue
            with lock:
                errors = reload_016()
            if not errors:
                # set.response.created(id, now()): {"id": <Id>} (crates/jmap-proto/src/method/set.rs).
                created[key] = {"id": "%x" % int(time.time())}
            else:
                # crates/jmap/src/registry/mapping/mod.rs map_bootstrap_error: only the first error;
                # Error::Build → validationFailed with description and objectId
                # (crates/registry/src/types/id.rs ObjectId {object, id}).
                object_id, message = errors[0]
                not_created[key] = {"type": "validationFailed", "description": message,
                                    "objectId": {"object": "Certificate", "id": object_id}}
        # crates/jmap-proto/src/method/set.rs (v0.16.18) SetResponse: created and notCreated are
        # left out when empty (skip_serializing_if).
        result = {"accountId": "b", "newState": "1"}
        if created:
            result["created"] = created
        if not_created:
            result["notCreated"] = not_created
        return result


# --- SMTP (a listener with protocol smtp on 127.0.0.1:0) --------------------------------------

chain_files = {}


def chain_file(pair):
    """A file with (certificate PEM, key PEM), written once per pair."""
    global served_dir
    if pair not in chain_files:
        if served_dir is None:
            served_dir = tempfile.mkdtemp(prefix="stalwart-standin-")
        path = os.path.join(served_dir, "%d.pem" % len(chain_files))
        with open(path, "w") as f:
            f.write(pair[1].strip() + "\n" + pair[0].strip() + "\n")
        chain_files[pair] = path
    return chain_files[pair]


def tls_context(pair):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file(pair))
    return context


def sni_callback(sock, name, _context):
    pair = resolve(name)
    if pair is None:
        return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
    sock.context = tls_context(pair)
    return None


def smtp_session(connection, listener):
    # crates/smtp/src/inbound/spawn.rs (v0.16.18): the greeting when none is configured.
    stream = connection.makefile("rwb", buffering=0)
    is_tls = False
    try:
        stream.write(b"220 Stalwart ESMTP at your service.\r\n")
        while True:
            line = stream.readline()
            if not line:
                return
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"EHLO":
                # crates/smtp/src/inbound/ehlo.rs (v0.15.5, v0.16.18): ENHANCEDSTATUSCODES, 8BITMIME,
                # BINARYMIME, SMTPUTF8 always; STARTTLS when the session is not TLS yet and the
                # listener's acceptor is TLS (useTls / tls.enable), whatever its certificates.
                # (The first line's text comes from the smtp-proto crate; only the host is shown.)
                capabilities = ["8BITMIME", "BINARYMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
                if not is_tls and listener["useTls"]:
                    capabilities.append("STARTTLS")
                lines = ["localhost"] + capabilities
                stream.write("".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", text)
                                     for i, text in enumerate(lines)).encode())
            elif verb == b"STARTTLS":
                # crates/smtp/src/inbound/session.rs (v0.16.18) Request::StartTls.
                if is_tls:
                    stream.write(b"504 5.7.4 Already in TLS mode.\r\n")
                elif not listener["useTls"]:
                    stream.write(b"502 5.7.0 TLS not available.\r\n")
                else:
                    stream.write(b"220 2.0.0 Ready to start TLS.\r\n")
                    default = resolve(None)
                    if default is None:
                        return
                    context = tls_context(default)
                    context.sni_callback = sni_callback
                    connection = context.wrap_socket(connection, server_side=True)
                    stream = connection.makefile("rwb", buffering=0)
                    is_tls = True
            elif verb == b"QUIT":
                stream.write(b"221 2.0.0 Bye.\r\n")
                return
            else:
                stream.write(b"500 5.5.1 Invalid command.\r\n")
    except (OSError, ssl.SSLError):
        return
    finally:
        connection.close()


def serve_smtp(sock, listener):
    while True:
        connection, _ = sock.accept()
        connection.settimeout(30)
        threading.Thread(target=smtp_session, args=(connection, listener), daemon=True).start()


# The certificates as loaded at start (a reload of everything).
with lock:
    if V015:
        start_errors = reload_015()
    else:
        start_errors = reload_016()
for listener in listeners:
    address = list(listener["bind"])[0]
    if listener["protocol"] == "smtp" and address == "127.0.0.1:0":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        listener["bind"] = {"127.0.0.1:%d" % port: True}
        created_keys["@listener:" + listener["name"]] = port
        threading.Thread(target=serve_smtp, args=(sock, listener), daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
server.daemon_threads = True
print(server.server_address[1], flush=True)
print(json.dumps(created_keys), flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()


def leave(*_):
    # The chain files hold (test) private keys: remove them whichever way the stand-in ends.
    if served_dir is not None:
        shutil.rmtree(served_dir, ignore_errors=True)
    os._exit(0)


signal.signal(signal.SIGTERM, leave)
signal.signal(signal.SIGINT, leave)
threading.Event().wait(args.lifetime)
leave()

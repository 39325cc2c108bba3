#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import Logging
internal import CCurl
internal import CCertReloadShims.Curl

/// Where an HTTP API listens: an `http(s)://host[:port][/base]` URL, or `unix:/path/to.sock`.
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// `http://host:port` plus the base path, without a trailing slash; `http://localhost` for a socket.
    public var baseURL: String
    /// The unix socket the requests go to (CURLOPT_UNIX_SOCKET_PATH), or nil for TCP.
    public var unixSocket: String?

    /// Parses the `url` of a reload target. Refuses other schemes and credentials in the URL.
    public init(_ text: String) throws(ReloadError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else {
                throw ReloadError(.reloadFailed, "url '\(text)' names a unix socket by a relative path",
                                  fix: "give the socket's absolute path, e.g. unix:/run/caddy/admin.sock")
            }
            unixSocket = path
            baseURL = "http://localhost"
            return
        }
        let lower = text.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw ReloadError(.reloadFailed, "url '\(HTTPEndpoint.redact(text))' is neither http(s):// nor unix:/path",
                              fix: "use e.g. https://mail.example.com or unix:/run/caddy/admin.sock")
        }
        let afterScheme = text[text.firstRange(of: "://")!.upperBound...]
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else {
            throw ReloadError(.reloadFailed, "url '\(HTTPEndpoint.redact(text))' carries credentials",
                              fix: "remove them from the URL and use token-file (or username and password-file)")
        }
        guard !authority.isEmpty else {
            throw ReloadError(.reloadFailed, "url '\(text)' has no host")
        }
        var base = text
        while base.hasSuffix("/") { base.removeLast() }
        baseURL = base
        unixSocket = nil
    }

    /// The URL of `path` (which starts with "/") below the base.
    public func url(_ path: String) -> String { baseURL + path }

    public var isHTTPS: Bool { unixSocket == nil && baseURL.lowercased().hasPrefix("https://") }

    /// `https://host:port/base` or `unix:/path`, for messages (no query, no credentials).
    public var description: String {
        if let unixSocket { return "unix:\(unixSocket)" }
        return HTTPEndpoint.redact(baseURL)
    }

    /// A URL with any user info and query removed, safe for messages and logs.
    public static func redact(_ url: String) -> String {
        var text = url
        if let query = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = String(text[..<query]) }
        if let schemeEnd = text.firstRange(of: "://") {
            let rest = text[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                text = String(text[..<schemeEnd.upperBound]) + String(rest[rest.index(after: at)...])
            }
        }
        return text
    }
}

/// One HTTP request. Credentials go in `authorization`, never in `headers`, so that no
/// message or log line can carry them.
public struct HTTPRequest: Sendable {
    public enum Authorization: Sendable {
        case bearer(token: String)
        case basic(username: String, password: String)
    }

    public var method: String
    public var endpoint: HTTPEndpoint
    /// Appended to the endpoint's base URL: "/jmap/", "/load", or "" for the base itself.
    public var path: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    public var authorization: Authorization?
    /// Seconds to establish the connection (TCP and TLS).
    public var connectTimeout: Double
    /// Seconds for the whole exchange, connection included.
    public var timeout: Double
    /// Whom the endpoint's TLS certificate must chain to.
    public var trust: EndpointTrust
    /// Answers larger than this are cut; `HTTPResponse.truncated` tells.
    public var responseLimit: Int = 1 << 20
    /// Further strings that must never appear in a message (the server may echo them).
    public var secrets: [String] = []
    /// Raised when the caller gives up: the transfer is aborted within curl's progress tick.
    public var cancellation: CancellationFlag?

    public init(
        method: String, endpoint: HTTPEndpoint, path: String, headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, authorization: Authorization? = nil, connectTimeout: Double = 10,
        timeout: Double = 30, trust: EndpointTrust = .system
    ) {
        self.method = method
        self.endpoint = endpoint
        self.path = path.isEmpty || path.hasPrefix("/") ? path : "/" + path
        self.headers = headers
        self.body = body
        self.authorization = authorization
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.trust = trust
    }

    /// "POST https://mail.example.com/jmap/", for messages.
    public var summary: String { "\(method) \(HTTPEndpoint.redact(endpoint.url(path)))" + (endpoint.unixSocket.map { " via unix:\($0)" } ?? "") }

    /// Everything this request must not reveal: its credentials and `secrets`.
    var redactor: Redactor {
        var values = secrets
        switch authorization {
        case .bearer(let token): values.append(token)
        case .basic(let username, let password):
            values.append(password)
            values.append(Redactor.base64(Array("\(username):\(password)".utf8)))
        case nil: break
        }
        return Redactor(secrets: values)
    }
}

/// What the server answered.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header lines of the final answer, names as sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The body was longer than the request's `responseLimit`.
    public var truncated: Bool

    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as JSON, or nil when it is not JSON.
    public var json: JSON? { try? JSONParser.parse(body) }
}

/// Sends HTTP requests with libcurl, one easy handle per request.
///
/// TLS peers are always verified. Redirects are followed only to the same scheme, host and
/// port (and then at most five times); a redirect elsewhere is an error.
public struct HTTPClient: Sendable {
    public var logger: Logger?
    /// Aborts every transfer of this client once raised.
    public var cancellation: CancellationFlag?

    public init(logger: Logger? = nil, cancellation: CancellationFlag? = nil) {
        self.logger = logger
        self.cancellation = cancellation
    }

    /// The client a reload uses: its logger, and its cancellation.
    public init(context: ReloadContext) {
        self.init(logger: context.logger, cancellation: context.cancellation)
    }

    /// Sends the request and returns any answer, whatever its status. Throws only when no
    /// answer came: `reload-unreachable`, `reload-timeout`, or `reload-failed`.
    public func send(_ request: HTTPRequest) throws(ReloadError) -> HTTPResponse {
        let started = MonotonicClock.now()
        var current = request
        for _ in 0...5 {
            var remaining = request.timeout - (MonotonicClock.now() - started)
            if remaining <= 0 { remaining = 0.001 }
            current.timeout = remaining
            current.connectTimeout = min(request.connectTimeout, remaining)
            if current.cancellation == nil { current.cancellation = cancellation }
            logger?.debug("HTTP request", metadata: ["request": "\(current.summary)"])
            let (response, redirect) = try CurlTransfer(request: current).perform()
            logger?.debug("HTTP answer", metadata: ["request": "\(current.summary)", "status": "\(response.status)"])
            guard (300..<400).contains(response.status), let redirect else { return response }
            let origin = HTTPClient.origin(current.endpoint.url(current.path))
            guard HTTPClient.origin(redirect) == origin, let pathStart = HTTPClient.pathStart(redirect) else {
                throw ReloadError(
                    .reloadFailed,
                    "\(current.summary) was redirected (\(response.status)) to \(HTTPEndpoint.redact(redirect)), another host; certreload does not follow that",
                    fix: "set the target's url to the address the server redirects to")
            }
            // Same origin: keep the endpoint (and socket), take the new path.
            current.path = String(redirect[pathStart...])
            current.endpoint.baseURL = origin
        }
        throw ReloadError(.reloadFailed, "\(request.summary) was redirected more than five times")
    }

    /// "https://host:port" of a URL, lowercased.
    static func origin(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url.lowercased() }
        let rest = url[schemeEnd.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        return String(url[..<end]).lowercased()
    }

    static func pathStart(_ url: String) -> String.Index? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        return url[schemeEnd.upperBound...].firstIndex(of: "/")
    }
}

/// Removes secrets from text that goes into messages, and shortens it to one line.
struct Redactor: Sendable {
    var secrets: [String]

    func scrub(_ text: String) -> String {
        var out = text
        for secret in secrets where !secret.isEmpty {
            out = out.replacing(secret, with: "[redacted]")
        }
        return out
    }

    /// The server's words, on one line, at most `limit` characters, without secrets.
    func excerpt(_ text: String, limit: Int = 300) -> String {
        // Only the head of a long answer is looked at (a 50 MB body must not cost seconds);
        // the tail of that head is dropped after scrubbing, so no part of a secret cut at
        // the boundary survives.
        let longest = secrets.map(\.count).max() ?? 0
        let head = text.prefix(limit * 8 + 2 * longest)
        // Scrubbed before and after it is made one line: dropping control characters or
        // folding spaces must not join the pieces of a secret again (found by FuzzJSON: a
        // token echoed with NULs inside came out whole).
        let folded = Redactor(secrets: secrets + secrets.map(Self.oneLine))
        var line = folded.scrub(Self.oneLine(scrub(String(head))))
        if head.endIndex != text.endIndex { line = String(line.dropLast(longest)) }
        return line.count > limit ? String(line.prefix(limit)) + "…" : line
    }

    /// A short server-chosen word (a JMAP error type, an object id, a configuration key), fit
    /// for a message: every server string that reaches one goes through here or `excerpt`.
    func word(_ text: String) -> String { excerpt(text, limit: 80) }

    /// Whitespace runs become one space, other control characters are dropped, the ends trimmed.
    static func oneLine(_ text: String) -> String {
        var line = ""
        var lastWasSpace = false
        for character in text {
            let isSpace = character.isWhitespace || character.isNewline
            if isSpace {
                if !lastWasSpace && !line.isEmpty { line.append(" ") }
            } else if character.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) {
                line.append(character)
            }
            lastWasSpace = isSpace
        }
        return line.hasSuffix(" ") ? String(line.dropLast()) : line
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let b0 = UInt32(chunk[0])
            let b1: UInt32 = chunk.count > 1 ? UInt32(chunk[1]) : 0
            let b2: UInt32 = chunk.count > 2 ? UInt32(chunk[2]) : 0
            let value: UInt32 = (b0 << 16) | (b1 << 8) | b2
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(chunk.count > 1 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            out.append(chunk.count > 2 ? alphabet[Int(value & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// curl's XFERINFOFUNCTION: aborts when the request's `CancellationFlag` (the data pointer,
/// kept alive by the request the transfer holds) is raised.
private let abortWhenRaised: @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = {
    data, _, _, _, _ in
    guard let data else { return 0 }
    return Unmanaged<CancellationFlag>.fromOpaque(data).takeUnretainedValue().isRaised ? 1 : 0
}

/// One libcurl transfer: owns the easy handle, the header list, the capture buffers and
/// the error buffer, and frees them all in deinit.
final class CurlTransfer {
    private let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let body: UnsafeMutablePointer<certreload_curl_buffer>
    private let headerBytes: UnsafeMutablePointer<certreload_curl_buffer>
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let request: HTTPRequest
    private var setupError: ReloadError?

    init(request: HTTPRequest) throws(ReloadError) {
        self.request = request
        let initResult = certreload_curl_global_init_once()
        guard initResult == CURLE_OK else {
            throw ReloadError(.reloadFailed, "libcurl could not be initialised: \(String(cString: curl_easy_strerror(initResult)))")
        }
        guard let handle = curl_easy_init() else {
            throw ReloadError(.reloadFailed, "libcurl could not create a handle (out of memory?)")
        }
        self.handle = handle
        body = .allocate(capacity: 1)
        body.initialize(to: certreload_curl_buffer(data: nil, length: 0, capacity: 0, limit: request.responseLimit, dropped: 0, failed: 0))
        headerBytes = .allocate(capacity: 1)
        headerBytes.initialize(to: certreload_curl_buffer(data: nil, length: 0, capacity: 0, limit: 256 * 1024, dropped: 0, failed: 0))
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        try configure()
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        certreload_curl_buffer_free(body)
        body.deallocate()
        certreload_curl_buffer_free(headerBytes)
        headerBytes.deallocate()
        errorBuffer.deallocate()
    }

    private func check(_ code: CURLcode, _ what: String) throws(ReloadError) {
        guard code == CURLE_OK else {
            throw ReloadError(.reloadFailed, "libcurl refused \(what) for \(request.summary): \(String(cString: curl_easy_strerror(code)))",
                              fix: code == CURLE_UNKNOWN_OPTION || code == CURLE_NOT_BUILT_IN ? "install a libcurl built with this feature (libcurl4-openssl-dev)" : nil)
        }
    }

    private func milliseconds(_ seconds: Double) -> Int {
        max(1, Int((seconds * 1000).rounded(.up)))
    }

    private func configure() throws(ReloadError) {
        let r = request
        try check(certreload_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "the error buffer")
        try check(certreload_curl_setopt_string(handle, CURLOPT_URL, r.endpoint.url(r.path)), "the URL")
        try check(certreload_curl_http_only(handle), "restricting protocols to HTTP(S)")
        if let socket = r.endpoint.unixSocket {
            try check(certreload_curl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, socket), "the unix socket path")
        }
        try check(certreload_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(certreload_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "not following redirects")
        try check(certreload_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(min(r.connectTimeout, r.timeout))), "the connect timeout")
        try check(certreload_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(r.timeout)), "the timeout")
        let verifies = r.trust != .unverified
        try check(certreload_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, verifies ? 1 : 0), "TLS peer verification")
        try check(certreload_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, verifies ? 2 : 0), "TLS host verification")
        if case .caFile(let caFile) = r.trust {
            try check(certreload_curl_setopt_string(handle, CURLOPT_CAINFO, caFile), "ca-file \(caFile)")
        }
        try check(certreload_curl_setopt_string(handle, CURLOPT_USERAGENT, "certreload"), "the user agent")
        try check(certreload_curl_capture(handle, body, headerBytes), "the write callbacks")
        if let flag = r.cancellation {
            // curl calls the progress function about once a second and whenever data moves;
            // a non-zero answer aborts the transfer with CURLE_ABORTED_BY_CALLBACK.
            try check(certreload_curl_setopt_pointer(handle, CURLOPT_XFERINFOFUNCTION, unsafeBitCast(abortWhenRaised, to: UnsafeMutableRawPointer.self)), "the progress callback")
            try check(certreload_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(flag).toOpaque()), "the progress data")
            try check(certreload_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0), "progress callbacks")
        }

        let method = r.method.uppercased()
        if let bytes = r.body {
            // COPYPOSTFIELDS copies POSTFIELDSIZE bytes; a trailing NUL keeps an empty body's pointer valid.
            let terminated = bytes + [0]
            let code = terminated.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    certreload_curl_set_body(handle, chars.baseAddress, bytes.count)
                }
            }
            try check(code, "the request body")
            if method != "POST" {
                try check(certreload_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method), "method \(method)")
            }
        } else if method == "GET" {
            try check(certreload_curl_setopt_long(handle, CURLOPT_HTTPGET, 1), "GET")
        } else if method == "HEAD" {
            try check(certreload_curl_setopt_long(handle, CURLOPT_NOBODY, 1), "HEAD")
        } else {
            try check(certreload_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method), "method \(method)")
        }

        var lines = r.headers.map { "\($0.name): \($0.value)" }
        if r.endpoint.unixSocket != nil && !r.headers.contains(where: { $0.name.lowercased() == "host" }) {
            // A socket has no host name; an empty Host is what HTTP/1.1 asks for then, and
            // what Caddy's admin endpoint accepts on a socket.
            lines.append("Host;")
        }
        // curl adds "Expect: 100-continue" to larger bodies; the servers here do not need it.
        lines.append("Expect:")
        for line in lines {
            guard let appended = curl_slist_append(headerList, line) else {
                throw ReloadError(.reloadFailed, "libcurl could not build the header list (out of memory?)")
            }
            headerList = appended
        }
        try check(certreload_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), "the headers")

        switch r.authorization {
        case .bearer(let token): try check(certreload_curl_auth_bearer(handle, token), "bearer authentication")
        case .basic(let username, let password): try check(certreload_curl_auth_basic(handle, username, password), "basic authentication")
        case nil: break
        }
    }

    /// Runs the transfer; returns the answer and the redirect target, if any.
    func perform() throws(ReloadError) -> (HTTPResponse, String?) {
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else { throw transportError(code) }
        var status = 0
        _ = certreload_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var redirectPointer: UnsafePointer<CChar>?
        _ = certreload_curl_getinfo_string(handle, CURLINFO_REDIRECT_URL, &redirectPointer)
        let redirect = redirectPointer.map { String(cString: $0) }
        let bodyBytes = body.pointee.data.map { Array(UnsafeBufferPointer(start: $0, count: body.pointee.length)) } ?? []
        let headerText = headerBytes.pointee.data.map {
            String(decoding: UnsafeBufferPointer(start: $0, count: headerBytes.pointee.length), as: UTF8.self)
        } ?? ""
        let response = HTTPResponse(
            status: status, headers: CurlTransfer.lastHeaderBlock(headerText), body: bodyBytes,
            truncated: body.pointee.dropped > 0)
        return (response, redirect)
    }

    /// The header lines of the final answer (curl also hands over 100-continue blocks).
    static func lastHeaderBlock(_ text: String) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.hasPrefix("HTTP/") { headers = []; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" }))
            headers.append((name, value))
        }
        return headers
    }

    private func transportError(_ code: CURLcode) -> ReloadError {
        let detail = request.redactor.excerpt(
            errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code)))
        let target = request.summary
        switch code {
        case CURLE_ABORTED_BY_CALLBACK:
            return ReloadError(
                .reloadTimeout, "\(target) was cut short: certreload had to stop (its deadline or shutdown grace ran out) before the server answered",
                fix: "check that the server is running and responsive, or give the run more time (deploy --timeout)")
        case CURLE_OPERATION_TIMEDOUT:
            return ReloadError(
                .reloadTimeout, "\(target) got no answer within \(CurlTransfer.seconds(request.timeout)) (curl: \(detail))",
                fix: "check that the server is running and responsive, or raise the reload timeout")
        case CURLE_COULDNT_RESOLVE_HOST:
            return ReloadError(.reloadUnreachable, "\(target): DNS lookup failed (curl: \(detail))",
                               fix: "check the host name in the target's url")
        case CURLE_COULDNT_CONNECT:
            let what = request.endpoint.unixSocket.map { "cannot connect to the socket \($0)" } ?? "connection failed"
            return ReloadError(.reloadUnreachable, "\(target): \(what) (curl: \(detail))",
                               fix: "check that the server runs and listens at \(request.endpoint)")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            let caFile: String
            if case .caFile(let path) = request.trust { caFile = path } else { caFile = "" }
            let fix = code == CURLE_SSL_CACERT_BADFILE
                ? "check that ca-file \(caFile) exists, is readable and holds PEM certificates"
                : "set the target's ca-file to the CA that issued the server's certificate, or use the name the certificate is for"
            return ReloadError(.reloadUnreachable, "\(target): TLS handshake failed (curl: \(detail))", fix: fix)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return ReloadError(.reloadFailed, "\(target): the URL is not usable (curl: \(detail))",
                               fix: "use an http://, https:// or unix:/path url")
        case CURLE_WRITE_ERROR where body.pointee.failed != 0 || headerBytes.pointee.failed != 0:
            return ReloadError(.reloadFailed, "\(target): out of memory while reading the answer")
        default:
            return ReloadError(.reloadFailed, "\(target) failed: \(detail)")
        }
    }

    static func seconds(_ value: Double) -> String { DurationText.seconds(value) }
}

extension ReloadError {
    /// The error for an answer that is not a success: 401/403 → `reload-unauthorized` with
    /// `unauthorizedFix`, anything else → `reload-failed` with the server's own words.
    static func httpStatus(
        _ response: HTTPResponse, to request: HTTPRequest, server: String, unauthorizedFix: String
    ) -> ReloadError {
        let said = serverWords(response, redactor: request.redactor)
        let suffix = said.isEmpty ? "" : ": \(said)"
        switch response.status {
        case 401, 403:
            let what = request.authorization == nil ? "no credentials were configured" : "the credentials were refused"
            return ReloadError(
                .reloadUnauthorized, "\(server) answered \(response.status) to \(request.summary) (\(what))\(suffix)",
                fix: unauthorizedFix)
        default:
            return ReloadError(.reloadFailed, "\(server) answered \(response.status) to \(request.summary)\(suffix)")
        }
    }

    /// What a server said in an error answer: a JSON error/detail/description/message member
    /// when there is one, else the body's text; one line, bounded, without secrets.
    static func serverWords(_ response: HTTPResponse, redactor: Redactor) -> String {
        if let json = response.json {
            for key in ["error", "detail", "description", "message", "title", "type"] {
                if let value = json[member: key], value != .null { return redactor.excerpt(value.displayText) }
            }
        }
        return redactor.excerpt(response.text)
    }
}
